"""Our routes in a real aiohttp server, wired as __init__.py wires them, for tests that need no ComfyUI.

One place builds the app (the unit tests of the API, the fuzz tests and the access rules all use it), so a
change to the wiring is made once. The server listens on 127.0.0.1 at the port its Access expects.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from comfyui import free_port


class AppClient:
    """A started test server with our routes, and a blocking `call(method, path, **kwargs)` for tests."""

    def __init__(self, writer, data_folder: str, listen: str = "127.0.0.1", middlewares=(), memory=None, shared=None):
        from server import PromptServer

        from usage_stats.actions.decisions import Decisions
        from usage_stats.api.access import Access
        from usage_stats.api.app import App
        from usage_stats.api.routes import register_routes
        from usage_stats.mapper import PackageMapper
        from usage_stats.reports.service import Reports

        self.writer = writer
        self.port = free_port()
        self.access = Access(listen, self.port)
        self.decisions = Decisions(data_folder, PackageMapper(own_pack="comfyui-usage-stats").is_protected)
        reports = Reports(writer.packages, writer.models, writer.thresholds, shared=shared)
        prompt_server = PromptServer()
        register_routes(prompt_server.routes, App(writer, reports, self.decisions, self.access, memory=memory, shared=shared))
        app = web.Application(middlewares=list(middlewares))
        app.add_routes(prompt_server.routes)
        self.loop = asyncio.new_event_loop()
        self.client = TestClient(TestServer(app, host="127.0.0.1", port=self.port), loop=self.loop)
        self.loop.run_until_complete(self.client.start_server())

    def call(self, method: str, path: str, **kwargs) -> tuple[int, bytes, dict]:
        """(status, body, headers) of one request; the Host is the server's own unless a header says otherwise."""
        async def go():
            async with self.client.request(method, path, **kwargs) as response:
                return response.status, await response.read(), dict(response.headers)
        return self.loop.run_until_complete(go())

    def concurrently(self, *requests) -> list[tuple[int, bytes, str]]:
        """Send (method, path, kwargs) requests at once; their (status, body, content type), in order."""
        async def one(method, path, kwargs):
            async with self.client.request(method, path, **kwargs) as response:
                return response.status, await response.read(), response.headers.get("Content-Type", "")

        async def all_at_once():
            return await asyncio.gather(*(one(*request) for request in requests))
        return self.loop.run_until_complete(all_at_once())

    def json(self, method: str, path: str, body=None, headers=None) -> tuple[int, object]:
        status, data, _headers = self.call(method, path, json=body, headers=headers or {})
        return status, json.loads(data)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()
