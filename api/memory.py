"""The memory handlers: loaded models, idle unload settings and analytics."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..domain.values import iso
from ..memory.manager import UNLOAD_FIELDS, UNLOAD_GROUP, MemoryManager, check_override, kind_of
from ..recording.settings import SettingsError, validate
from ..tracker import UsageStore
from .app import App
from .requests import ApiError, json_body, path_values, query_params

MAX_NAME_LENGTH = 1000
_TIME_FIELDS = ("now", "idle_since", "next_unload", "last_unload", "loaded_at", "last_used", "unload_at")


class MemoryApi:
    """The /loaded and /unload handlers, over memory.MemoryManager (None when it could not be installed)."""

    def __init__(self, app: App):
        self.app = app
        self.memory = app.memory
        self._changing = asyncio.Lock()
        """One change at a time: two PUTs validated against the same values would each drop the other's change."""

    async def loaded(self, request: web.Request):
        query_params(request, set())
        status = await asyncio.get_running_loop().run_in_executor(None, self._manager().status)
        return _with_iso_times(status), {}

    async def config(self, request: web.Request):
        query_params(request, set())
        return (await self._settled_manager()).config.describe(), {}

    async def change_config(self, request: web.Request):
        query_params(request, set())
        manager = await self._settled_manager()
        changes = await json_body(request)
        async with self._changing:
            try:
                values = validate(UNLOAD_FIELDS, manager.config.as_dict(), changes)
            except SettingsError as error:
                raise ApiError(400, str(error)) from None
            await self._write(lambda store: store.save_settings(UNLOAD_GROUP, values))
            manager.config.replace(values)
            manager.apply()
        return manager.config.describe(), {}

    async def override(self, request: web.Request):
        query_params(request, set())
        path = path_values(request)
        manager = await self._settled_manager()
        model_type, model_name = path["model_type"], path["model_name"]
        known = set(self.app.models.tracked_types())  # canonical names, as loads are recorded
        if model_type not in known:
            raise ApiError(400, f"unknown model type {model_type!r}; known: {', '.join(sorted(known))}")
        if len(model_name) > MAX_NAME_LENGTH or not model_name.isprintable():
            raise ApiError(400, f"the model name must be printable text of at most {MAX_NAME_LENGTH} characters")
        try:
            seconds = check_override(await json_body(request))
        except SettingsError as error:
            raise ApiError(400, str(error)) from None
        async with self._changing:
            await self._write(lambda store: store.set_unload_override(model_type, model_name, seconds))
            overrides = dict(manager.overrides)
            overrides.pop((model_type, model_name), None)
            if seconds is not None:
                overrides[(model_type, model_name)] = seconds
            manager.overrides = overrides
        return {"model_type": model_type, "model_name": model_name, "timeout_seconds": seconds}, {}

    async def unload_now(self, request: web.Request):
        query_params(request, set())
        manager = self._manager()
        body = await json_body(request)
        if not isinstance(body, dict) or body.get("confirm") is not True:
            raise ApiError(400, 'this unloads every model ComfyUI holds; send the JSON body {"confirm": true} to do it')
        models = await asyncio.get_running_loop().run_in_executor(None, manager.watch.loaded)
        if not await asyncio.get_running_loop().run_in_executor(None, manager.unload, "asked for"):
            raise ApiError(409, "ComfyUI is running or has queued prompts; nothing was unloaded, try again when it is idle")
        names = [m["model_name"] or m["class_name"] for m in models]
        return {"requested": True, "models": names}, {}

    async def analytics(self, request: web.Request):
        query_params(request, set())
        manager = self._manager()
        return await self.app.off_loop(load_analytics, manager), {}

    def _manager(self) -> MemoryManager:
        if self.memory is None:
            raise ApiError(503, "memory tracking is not available in this ComfyUI (the log says why)")
        return self.memory

    async def _settled_manager(self) -> MemoryManager:
        """The manager once its stored settings are read, so a change is never overwritten by the restore."""
        manager = self._manager()
        if not await asyncio.get_running_loop().run_in_executor(None, manager.ready.wait, 5.0):
            raise ApiError(503, "usage stats are still starting; try again in a moment")
        return manager

    async def _write(self, task) -> None:
        await self.app.ready_store()
        await asyncio.wrap_future(self.app.writer.submit(task))


def _with_iso_times(data):
    """Unix times as the ISO 8601 text every other route serves."""
    if isinstance(data, list):
        return [_with_iso_times(item) for item in data]
    if isinstance(data, dict):
        return {k: (iso(int(v)) if k in _TIME_FIELDS and v is not None else _with_iso_times(v)) for k, v in data.items()}
    return data


def load_analytics(store: UsageStore, manager: MemoryManager) -> list[dict]:
    """Per model: loaded now, how often and how slowly it loads, time since last use, and its idle timeout."""
    now = store.now()
    policy = manager.policy()
    loaded = {(m["model_type"], m["model_name"]): m for m in manager.watch.loaded() if m["model_type"] is not None}
    loads = store.load_rows()
    last_seen = {(t, n): last for t, n, _count, _first, last in store.model_rows()}
    rows = []
    for key in sorted(set(loads) | set(loaded) | set(policy.overrides)):
        count, total_ms, last_ms, last_loaded = loads.get(key, (0, 0, None, None))
        current = loaded.get(key)
        last_use = max(filter(None, [last_seen.get(key), current and current["last_used"]]), default=None)
        kind = current["kind"] if current else kind_of(key[0], "")
        rows.append({
            "model_type": key[0],
            "model_name": key[1],
            "kind": kind,
            "loaded": current is not None,
            "load_count": count,
            "average_load_seconds": round(total_ms / count / 1000, 3) if count else None,
            "last_load_seconds": None if last_ms is None else last_ms / 1000,
            "last_loaded": iso(last_loaded),
            "seconds_since_last_use": None if last_use is None else max(0, int(now - last_use)),
            "timeout_seconds": policy.timeout(kind, key, now),
            "override_seconds": policy.overrides.get(key),
        })
    return rows
