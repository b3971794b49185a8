"""A small, faithful stand-in for ComfyUI's `server.PromptServer`, for unit tests of the wiring.

The on_prompt chain behaves as ComfyUI's does: each handler gets the previous one's return value, and a
handler that raises is logged and skipped (its input passes on).
"""

from __future__ import annotations

import logging

from aiohttp import web


class PromptServer:
    instance: "PromptServer | None" = None

    def __init__(self):
        PromptServer.instance = self
        self.routes = web.RouteTableDef()
        self.on_prompt_handlers = []

    def add_on_prompt_handler(self, handler) -> None:
        self.on_prompt_handlers.append(handler)

    def trigger_on_prompt(self, json_data):
        for handler in self.on_prompt_handlers:
            try:
                json_data = handler(json_data)
            except Exception:
                logging.warning("[ERROR] An error occurred during the on_prompt_handler processing", exc_info=True)
        return json_data
