"""The HTTP API under /nodes-stats: validate the request, build the report off the event loop, answer JSON.

Why a module of its own: it is the one place that knows HTTP. `register_routes` is the single table of
every path. Handlers raise `ApiError` for bad input and one wrapper turns it into `{"error": ...}` with
its status, so no handler carries its own try/except and no bad request ever becomes a 500.
"""

from __future__ import annotations

import asyncio
import json
import re
from functools import partial
from urllib.parse import urlsplit

from aiohttp import web

from .logs import warn_once
from .memory import UNLOAD_FIELDS, UNLOAD_GROUP, MemoryManager, check_override, kind_of
from .settings import SettingsError, validate
from .tracker import TIERS, Thresholds, UsageStore, iso, model_report, package_report, usage_report
from .writer import Writer

MAX_QUERY_LENGTH = 200
MAX_PAGE = 100_000
COMPRESS_ABOVE_BYTES = 4096
REPORT_MAX_AGE_SECONDS = 60
"""A cached model report is rebuilt at least this often, so tiers age even when nothing else changes."""
MODEL_PAGES_KEPT = 16
"""Encoded /models pages (filter and paging combinations) kept for the current report only."""
MAX_BODY_BYTES = 64 * 1024
"""Every body this API takes is a few bytes of JSON; a larger one is refused before it is parsed."""


class ApiError(Exception):
    """A request we refuse, with the status and a message that says what to change."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def register_routes(routes: web.RouteTableDef, api: "StatsApi", memory: MemoryManager | None = None) -> None:
    """Every /nodes-stats route. ComfyUI serves each under /api/nodes-stats/... as well."""
    routes.get("/nodes-stats/packages")(_json_route(api.packages))
    routes.get("/nodes-stats/usage")(_json_route(api.usage))
    routes.get("/nodes-stats/models")(_json_route(api.models))
    routes.get("/nodes-stats/status")(_json_route(api.status))
    routes.post("/nodes-stats/reset")(_json_route(api.reset))
    memory_api = MemoryApi(api.writer, memory)
    routes.get("/nodes-stats/loaded")(_json_route(memory_api.loaded))
    routes.get("/nodes-stats/unload/config")(_json_route(memory_api.config))
    routes.put("/nodes-stats/unload/config")(_json_route(memory_api.change_config))
    routes.put("/nodes-stats/unload/models/{model_type}/{model_name:.+}")(_json_route(memory_api.override))
    routes.post("/nodes-stats/unload/now")(_json_route(memory_api.unload_now))
    routes.get("/nodes-stats/unload/analytics")(_json_route(memory_api.analytics))


def _json_route(handler):
    """Wrap a handler returning (data, headers) into an aiohttp handler with our error shape and headers."""

    async def route(request: web.Request) -> web.Response:
        try:
            data, headers = await handler(request)
            status = 200
        except ApiError as error:
            data, headers, status = {"error": error.message}, {}, error.status
        except Exception as error:
            warn_once(f"route:{request.path}", "%s failed (%s)", request.path, error, exc_info=True)
            data, headers, status = {"error": f"internal error: {error}"}, {}, 500
        body = data if isinstance(data, bytes) else await asyncio.get_running_loop().run_in_executor(None, _encode, data)
        response = web.Response(body=body, status=status, content_type="application/json", headers=headers)
        response.headers["Cache-Control"] = "no-store"
        if len(body) > COMPRESS_ABOVE_BYTES:
            response.enable_compression()
        return response

    route.__name__ = handler.__name__
    return route


def _encode(data) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: a file name that is not UTF-8, a header echoed back
        return json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class StatsApi:
    """The handlers. Reports are computed in the default executor: SQLite and folder listings never block the loop."""

    def __init__(self, writer: Writer, thresholds: Thresholds | None = None):
        self.writer = writer
        self.thresholds = thresholds or Thresholds()
        self._model_cache: tuple[tuple, list[dict]] | None = None
        self._model_pages: dict[tuple, tuple[list[dict], bytes, int]] = {}

    async def packages(self, request: web.Request):
        params = _query(request, {"status"})
        statuses = _choices(params, "status", TIERS)
        report = await self._off_loop(self._package_report)
        return [p for p in report if not statuses or p["status"] in statuses], {}

    async def usage(self, request: web.Request):
        params = _query(request, {"package"})
        report = await self._off_loop(self._usage_report)
        package = params.get("package")
        return [n for n in report if package is None or n["package"] == package], {}

    async def models(self, request: web.Request):
        params = _query(request, {"type", "status", "q", "offset", "limit"})
        statuses = _choices(params, "status", TIERS)
        types = _choices(params, "type", None)
        text = _text(params, "q")
        offset, limit = _integer(params, "offset", 0, 0, 10**9), _integer(params, "limit", MAX_PAGE, 1, MAX_PAGE)
        report = await self._off_loop(self._model_report)
        unknown = types - {section["model_type"] for section in report}
        if unknown:
            raise ApiError(400, f"unknown model type {sorted(unknown)[0]!r}; known: {', '.join(s['model_type'] for s in report)}")
        page_key = (frozenset(statuses), frozenset(types), text, offset, limit)
        cached = self._model_pages.get(page_key)
        if cached is None or cached[0] is not report:  # a page of an older report (built during a rebuild)
            body, total = await asyncio.get_running_loop().run_in_executor(
                None, _model_page, report, statuses, types, text, offset, limit
            )
            if len(self._model_pages) >= MODEL_PAGES_KEPT:
                self._model_pages.clear()
            cached = self._model_pages[page_key] = (report, body, total)
        return cached[1], {"X-Total-Count": str(cached[2])}

    async def status(self, request: web.Request):
        _query(request, set())
        store = await self._ready_store()
        recorded = await asyncio.get_running_loop().run_in_executor(None, store.prompt_count)
        return {
            "tracking": True,
            "prompts_recorded": recorded,
            "prompts_dropped": self.writer.dropped,
            "prompts_queued": self.writer.queued,
        }, {}

    async def reset(self, request: web.Request):
        _query(request, set())
        _require_same_origin(request)
        body = await _json_body(request)
        if not isinstance(body, dict) or body.get("confirm") is not True:
            raise ApiError(400, 'reset deletes every recorded statistic; send the JSON body {"confirm": true} to do it')
        await self._ready_store()
        await asyncio.wrap_future(self.writer.submit(UsageStore.reset))
        return {"ok": True, "status": "ok"}, {}

    # ---- reports (executor threads)

    async def _off_loop(self, build):
        store = await self._ready_store()
        return await asyncio.get_running_loop().run_in_executor(None, partial(build, store))

    async def _ready_store(self) -> UsageStore:
        store = await asyncio.get_running_loop().run_in_executor(None, self.writer.wait_ready, 5.0)
        if store is None:
            raise ApiError(503, self.writer.unavailable or "usage stats are still starting; try again in a moment")
        return store

    def _package_report(self, store: UsageStore) -> list[dict]:
        packages = self.writer.packages
        installed = packages.installed()
        first = store.package_first_installed()
        self._note_first_sightings(packages=[p.name for p in installed if p.name not in first])
        return package_report(store.node_rows(), installed, packages.packages_by_class(), first, store.now(), self.thresholds)

    def _usage_report(self, store: UsageStore) -> list[dict]:
        return usage_report(store.node_rows(), self.writer.packages.packages_by_class())

    def _model_report(self, store: UsageStore) -> list[dict]:
        """The full model report, rebuilt only when a listing, the database or the minute changed.

        At 20k files building it costs far more than any request should; what it depends on is the model
        listings (mapper version), every write (store version) and the clock (tiers age: one minute at most).
        """
        models = self.writer.models
        installed = models.installed()
        key = (models.version, store.version, store.now() // REPORT_MAX_AGE_SECONDS, self.thresholds)
        cached = self._model_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        report = self._build_model_report(store, models, installed)
        self._model_cache = (key, report)
        self._model_pages = {}  # pages of the old report would keep all of it alive
        return report

    def _build_model_report(self, store: UsageStore, models, installed) -> list[dict]:
        first = store.model_first_installed()
        self._note_first_sightings(models=[(t, n) for t, names in installed.items() for n in names if (t, n) not in first])
        return model_report(store.model_rows(), installed, first, store.now(), models.same_file_keys(), self.thresholds)

    def _note_first_sightings(self, packages=(), models=()) -> None:
        """Items this report met for the first time are remembered from now on (by the writer, the only writer)."""
        if packages or models:
            self.writer.submit(lambda store: store.note_installed(packages, models))


def _model_page(report: list[dict], statuses: set[str], types: set[str], text: str, offset: int, limit: int):
    """(encoded JSON body, total matches) of one filtered page of the model report."""
    filtered = [
        (section["model_type"], model)
        for section in report
        if not types or section["model_type"] in types
        for model in section["models"]
        if (not statuses or model["status"] in statuses) and (not text or text in model["model_name"].lower())
    ]
    return _encode(_group_by_type(filtered[offset : offset + limit])), len(filtered)


def _group_by_type(rows: list[tuple[str, dict]]) -> list[dict]:
    sections: dict[str, list[dict]] = {}
    for model_type, model in rows:
        sections.setdefault(model_type, []).append(model)
    return [{"model_type": t, "models": models} for t, models in sections.items()]


# --------------------------------------------------------------------------- request parsing


def _query(request: web.Request, allowed: set[str]) -> dict[str, str]:
    """The query parameters, refusing names this route does not know (a typo should not pass silently)."""
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise ApiError(400, f"unknown query parameter {unknown[0]!r}; this route takes: {known}")
    return {name: request.query.get(name) for name in request.query}


def _choices(params: dict[str, str], name: str, allowed: tuple[str, ...] | None) -> set[str]:
    """A comma-separated parameter such as status=safe_to_remove,consider_removing."""
    value = params.get(name)
    if value is None:
        return set()
    chosen = {part.strip() for part in value.split(",") if part.strip()}
    if not chosen or any(len(c) > MAX_QUERY_LENGTH or not re.fullmatch(r"[\w.\-]+", c) for c in chosen):
        raise ApiError(400, f"{name} must be a comma-separated list of names")
    bad = sorted(chosen - set(allowed)) if allowed is not None else []
    if bad:
        raise ApiError(400, f"unknown {name} {bad[0]!r}; use one of: {', '.join(allowed)}")
    return chosen


def _text(params: dict[str, str], name: str) -> str:
    value = params.get(name) or ""
    if len(value) > MAX_QUERY_LENGTH:
        raise ApiError(400, f"{name} is longer than {MAX_QUERY_LENGTH} characters")
    return value.lower()


def _integer(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name)
    if value is None:
        return default
    if not re.fullmatch(r"\d{1,10}", value) or not low <= int(value) <= high:
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}")
    return int(value)


async def _json_body(request: web.Request):
    if request.content_type != "application/json":
        raise ApiError(415, "send the body as JSON with the header Content-Type: application/json")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        text = await request.text()
    except web.HTTPException as error:  # e.g. over ComfyUI's upload size limit
        raise ApiError(error.status, f"could not read the body ({error.reason})") from None
    except (UnicodeDecodeError, LookupError) as error:  # not UTF-8, or an unknown charset
        raise ApiError(400, f"the body is not valid JSON ({error})") from None
    if len(text) > MAX_BODY_BYTES:
        raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ApiError(400, f"the body is not valid JSON ({error})") from None


def _require_same_origin(request: web.Request) -> None:
    """Refuse a browser request sent by another site: ComfyUI checks Origin only for loopback hosts."""
    origin = request.headers.get("Origin")
    if origin is None:
        return  # not a browser, or a same-origin GET-like navigation; curl and scripts send none
    try:
        netloc = urlsplit(origin).netloc.lower()
    except ValueError:  # e.g. "http://[::1": not an origin any page of ours sends
        netloc = None
    if origin == "null" or netloc != request.host.lower():
        raise ApiError(403, f"refused: this request comes from another site ({origin})")


# --------------------------------------------------------------------------- memory: loaded models and idle unload


class MemoryApi:
    """The /loaded and /unload handlers, over memory.MemoryManager (None when it could not be installed)."""

    def __init__(self, writer: Writer, memory: MemoryManager | None):
        self.writer = writer
        self.memory = memory
        self._changing = asyncio.Lock()
        """One change at a time: two PUTs validated against the same values would each drop the other's change."""

    async def loaded(self, request: web.Request):
        _query(request, set())
        status = await asyncio.get_running_loop().run_in_executor(None, self._manager().status)
        return _with_iso_times(status), {}

    async def config(self, request: web.Request):
        _query(request, set())
        return (await self._settled_manager()).config.as_dict(), {}

    async def change_config(self, request: web.Request):
        _query(request, set())
        _require_same_origin(request)
        manager = await self._settled_manager()
        changes = await _json_body(request)
        async with self._changing:
            try:
                values = validate(UNLOAD_FIELDS, manager.config.as_dict(), changes)
            except SettingsError as error:
                raise ApiError(400, str(error)) from None
            await self._write(lambda store: store.save_settings(UNLOAD_GROUP, values))
            manager.config.replace(values)
        return values, {}

    async def override(self, request: web.Request):
        _query(request, set())
        _require_same_origin(request)
        manager = await self._settled_manager()
        model_type, model_name = request.match_info["model_type"], request.match_info["model_name"]
        known = set(self.writer.models.tracked_types())  # canonical names, as loads are recorded
        if model_type not in known:
            raise ApiError(400, f"unknown model type {model_type!r}; known: {', '.join(sorted(known))}")
        if len(model_name) > MAX_NAME_LENGTH or not model_name.isprintable():
            raise ApiError(400, f"the model name must be printable text of at most {MAX_NAME_LENGTH} characters")
        try:
            seconds = check_override(await _json_body(request))
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
        _query(request, set())
        _require_same_origin(request)
        manager = self._manager()
        body = await _json_body(request)
        if not isinstance(body, dict) or body.get("confirm") is not True:
            raise ApiError(400, 'this unloads every model ComfyUI holds; send the JSON body {"confirm": true} to do it')
        models = await asyncio.get_running_loop().run_in_executor(None, manager.watch.loaded)
        if not await asyncio.get_running_loop().run_in_executor(None, manager.unload, "asked for"):
            raise ApiError(409, "ComfyUI is running or has queued prompts; nothing was unloaded, try again when it is idle")
        names = [m["model_name"] or m["class_name"] for m in models]
        return {"ok": True, "requested": True, "models": names}, {}

    async def analytics(self, request: web.Request):
        _query(request, set())
        manager = self._manager()
        store = await asyncio.get_running_loop().run_in_executor(None, self.writer.wait_ready, 5.0)
        if store is None:
            raise ApiError(503, self.writer.unavailable or "usage stats are still starting; try again in a moment")
        return await asyncio.get_running_loop().run_in_executor(None, load_analytics, store, manager), {}

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
        if await asyncio.get_running_loop().run_in_executor(None, self.writer.wait_ready, 5.0) is None:
            raise ApiError(503, self.writer.unavailable or "usage stats are still starting; try again in a moment")
        await asyncio.wrap_future(self.writer.submit(task))


MAX_NAME_LENGTH = 1000
_TIME_FIELDS = ("now", "idle_since", "next_unload", "last_unload", "loaded_at", "last_used", "unload_at")


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
