"""What every handler shares, built once by __init__.py and handed to each family of handlers.

Why an object of its own: handlers must not find their collaborators by reaching into each other (or into
the writer's fields). One writer (the store's only writer, with the one `Config` in force), one report
service, the decisions, who may ask, and memory: each handler family takes this and nothing else.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable

from ..actions.decisions import Decisions
from ..memory.manager import MemoryManager
from ..recording.shared import Shipper
from ..recording.writer import Writer
from ..reports.service import Reports
from ..tracker import UsageStore
from .access import Access
from .requests import ApiError


def no_queue() -> dict:
    return {"running": None, "pending": None}


@dataclass
class App:
    writer: Writer
    reports: Reports
    decisions: Decisions
    access: Access
    memory: MemoryManager | None = None
    queue_state: Callable[[], dict] = no_queue
    comfy_users: Callable[[], dict[str, str]] = dict
    shared: Shipper | None = None

    @property
    def config(self):
        """The settings in force: the writer's, the one `Config` every part reads."""
        return self.writer.config

    @property
    def models(self):
        """The model listings (ModelMapper): the writer's, so a listing a report read is the one it records."""
        return self.writer.models

    async def ready_store(self) -> UsageStore:
        """The store once the writer opened it; a 503 that says why while it is starting or could not."""
        store = await asyncio.get_running_loop().run_in_executor(None, self.writer.wait_ready, 5.0)
        if store is None:
            raise ApiError(503, self.writer.unavailable or "usage stats are still starting; try again in a moment")
        return store

    async def off_loop(self, build, *args):
        """`build(store, *args)` in an executor thread: SQLite and folder listings never block the event loop.

        With a shared store, reports read the fleet's; if it fails them, this machine's own (which the
        report service caps, since other machines' use is unknown then).
        """
        local = await self.ready_store()
        return await asyncio.get_running_loop().run_in_executor(None, self._build, build, local, args)

    def _build(self, build, local: UsageStore, args: tuple):
        shared = self.shared
        store = shared.reading_store(local) if shared else local
        if store is local:
            return build(local, *args)
        what = getattr(build, "__name__", "a report")
        try:
            result = build(store, *args)
        except Exception as error:  # the shared store went away mid-read, or a read of it is broken: never a 500
            shared.read_failed(error, what)
            return build(local, *args)
        shared.read_succeeded(what)
        return result
