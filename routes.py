"""The HTTP API under /nodes-stats: validate the request, build the report off the event loop, answer JSON.

Why a module of its own: it is the one place that knows HTTP. `register_routes` is the single table of
every path. Handlers raise `ApiError` for bad input and one wrapper turns it into
`{"ok": false, "status": N, "error": ...}`, so no handler carries its own try/except and no bad request ever
becomes a 500; the same wrapper lets in only requests for this server (access.py).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterable

from aiohttp import web

from . import disk, duplicates, exports, outputs
from .access import Access, is_loopback, listens_beyond_loopback, split_host
from .actions.decisions import Decisions
from .actions.moves import ActionRefused
from .evidence import EvidenceSource, mark_rows, mark_witnesses, with_switched_off
from .jobs import Job
from .logs import warn_once
from .memory import UNLOAD_FIELDS, UNLOAD_GROUP, MemoryManager, check_override, kind_of
from .settings import CONFIG_FIELDS, Config, SettingsError, check_config, validate
from .tracker import (
    DAY, EVERYTHING, KINDS, TIERS, Thresholds, UsageStore, View, daily_series_report, iso, model_report, package_report,
    summary_report, usage_report,
)
from .workflows import node_type_references
from .writer import Writer, WriterBusy

MAX_QUERY_LENGTH = 200
MAX_PAGE = 100_000
COMPRESS_ABOVE_BYTES = 4096
AGING_STEP_SECONDS = 3600
"""A cached report is classified again at least this often, so tiers age when nothing else changes.

Tiers are counted in days, and a late step only ever shows an item as less removable than it is."""
SIZES_MAX_AGE_SECONDS = 600
"""Sizes are read again at least this often: a file rewritten under its own name changes no listing."""
MODEL_PAGES_KEPT = 16
"""Encoded /models pages (filter and paging combinations) kept for the current report only."""
MAX_BODY_BYTES = 64 * 1024
"""Every body this API takes is a few bytes of JSON; a larger one is refused before it is parsed."""
MAX_DAYS = 3650
LIVE_WINDOW_SECONDS = 3600
VIEW_PARAMS = {"days", "user"}


class ApiError(Exception):
    """A request we refuse, with the status and a message that says what to change."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def register_routes(
    routes: web.RouteTableDef,
    access: Access,
    api: "StatsApi",
    decisions: "DecisionsApi",
    memory: MemoryManager | None = None,
) -> None:
    """Every /nodes-stats route, each answering only requests `access` lets in. ComfyUI serves each under
    /api/nodes-stats/... as well."""
    _json_route = partial(_guarded_json_route, access)
    routes.get("/nodes-stats/packages")(_json_route(api.packages))
    routes.get("/nodes-stats/usage")(_json_route(api.usage))
    routes.get("/nodes-stats/models")(_json_route(api.models))
    routes.get("/nodes-stats/status")(_json_route(api.status))
    routes.post("/nodes-stats/reset")(_json_route(api.reset))
    routes.get("/nodes-stats/history")(_json_route(api.history))
    routes.get("/nodes-stats/summary")(_json_route(api.summary))
    routes.get("/nodes-stats/realtime")(_json_route(api.realtime))
    routes.get("/nodes-stats/export")(_json_route(api.export))
    routes.get("/nodes-stats/config")(_json_route(api.config))
    routes.put("/nodes-stats/config")(_json_route(api.update_config))
    routes.get("/nodes-stats/disk")(_json_route(decisions.disk))
    routes.get("/nodes-stats/references")(_json_route(decisions.references))
    routes.post("/nodes-stats/keep")(_json_route(decisions.keep))
    routes.get("/nodes-stats/quarantine")(_json_route(decisions.quarantine_list))
    routes.post("/nodes-stats/quarantine")(_json_route(decisions.quarantine))
    routes.post("/nodes-stats/quarantine/restore")(_json_route(decisions.restore))
    routes.post("/nodes-stats/quarantine/empty")(_json_route(decisions.empty))
    routes.post("/nodes-stats/packages/disable")(_json_route(decisions.disable_pack))
    routes.post("/nodes-stats/packages/enable")(_json_route(decisions.enable_pack))
    routes.get("/nodes-stats/actions")(_json_route(decisions.actions_log))
    routes.get("/nodes-stats/duplicates")(_json_route(decisions.duplicates))
    routes.post("/nodes-stats/duplicates/scan")(_json_route(decisions.scan_duplicates))
    routes.post("/nodes-stats/duplicates/cancel")(_json_route(decisions.cancel_duplicates))
    routes.get("/nodes-stats/history-import")(_json_route(decisions.history_import))
    routes.post("/nodes-stats/history-import")(_json_route(decisions.start_history_import))
    routes.post("/nodes-stats/history-import/cancel")(_json_route(decisions.cancel_history_import))
    memory_api = MemoryApi(api.writer, memory)
    routes.get("/nodes-stats/loaded")(_json_route(memory_api.loaded))
    routes.get("/nodes-stats/unload/config")(_json_route(memory_api.config))
    routes.put("/nodes-stats/unload/config")(_json_route(memory_api.change_config))
    routes.put("/nodes-stats/unload/models/{model_type}/{model_name:.+}")(_json_route(memory_api.override))
    routes.post("/nodes-stats/unload/now")(_json_route(memory_api.unload_now))
    routes.get("/nodes-stats/unload/analytics")(_json_route(memory_api.analytics))


def _guarded_json_route(access: Access, handler):
    """Wrap a handler returning (data, headers) into an aiohttp handler with our error shape and headers, that
    answers only requests for this server's own names (every route: they show absolute paths), and takes
    changes only from pages of its own origin."""

    async def route(request: web.Request) -> web.Response:
        try:
            refusal = access.host_refusal(request.headers.get("Host"))
            if refusal is None and request.method not in ("GET", "HEAD"):
                refusal = access.origin_refusal(request.headers.get("Origin"), request.headers.get("Host"))
            if refusal is not None:
                raise ApiError(403, refusal)
            data, headers = await handler(request)
            status = 200
        except ApiError as error:
            data, headers, status = _error_body(error.status, error.message), {}, error.status
        except WriterBusy as error:
            data, headers, status = _error_body(503, str(error)), {}, 503
        except Exception as error:  # logged in full for the user; the answer never shows internals
            warn_once(f"route:{request.path}", "%s failed (%s)", request.path, error, exc_info=True)
            data, headers, status = _error_body(500, "internal error; the ComfyUI log has the details"), {}, 500
        if isinstance(data, Download):  # every check passed before the first byte; a dropped client ends it
            return await data.send(request)
        body = data if isinstance(data, bytes) else await asyncio.get_running_loop().run_in_executor(None, _encode, data)
        response = web.Response(body=body, status=status, content_type="application/json", headers=headers)
        response.headers["Cache-Control"] = "no-store"
        if len(body) > COMPRESS_ABOVE_BYTES:
            response.enable_compression()
        return response

    route.__name__ = handler.__name__
    return route


@dataclass(frozen=True)
class Download:
    """A file answer, streamed in chunks so a large export never sits whole in memory as one response."""

    filename: str
    content_type: str
    chunks: Iterable[bytes]

    async def send(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "Content-Type": self.content_type,
            "Content-Disposition": f'attachment; filename="{self.filename}"',
            "Cache-Control": "no-store",
        })
        await response.prepare(request)
        for chunk in self.chunks:
            await response.write(chunk)
        await response.write_eof()
        return response


def _error_body(status: int, message: str) -> dict:
    """The one shape of every error this API answers."""
    return {"ok": False, "status": status, "error": message}


def _encode(data) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: a file name that is not UTF-8, a header echoed back
        return json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class StatsApi:
    """The handlers. Reports are computed in the default executor: SQLite and folder listings never block the loop."""

    def __init__(
        self,
        writer: Writer,
        queue_state: Callable[[], dict] = lambda: {"running": None, "pending": None},
        comfy_users: Callable[[], dict[str, str]] = dict,
        evidence: EvidenceSource | None = None,
        import_seconds: Callable[[], dict[str, float]] = dict,
    ):
        self.writer = writer
        self.queue_state = queue_state
        self.comfy_users = comfy_users
        self.evidence = evidence
        self.import_seconds = import_seconds
        self._file_facts = Memo()
        self._model_evidence = Memo()
        self._model_report_memo = Memo()
        self._model_pages: dict[tuple, tuple[list[dict], bytes, int]] = {}
        self._changing = asyncio.Lock()
        """One settings change at a time, each validated against the values the one before it saved."""

    async def packages(self, request: web.Request):
        params = _query(request, {"status"} | VIEW_PARAMS)
        statuses = _choices(params, "status", TIERS)
        view = await self._view(params)
        report = await self._off_loop(self._package_report, view)
        return [p for p in report if not statuses or p["status"] in statuses], {}

    async def usage(self, request: web.Request):
        params = _query(request, {"package"} | VIEW_PARAMS)
        view = await self._view(params)
        report = await self._off_loop(self._usage_report, view)
        package = params.get("package")
        return [n for n in report if package is None or n["package"] == package], {}

    async def models(self, request: web.Request):
        params = _query(request, {"type", "status", "q", "offset", "limit"} | VIEW_PARAMS)
        statuses = _choices(params, "status", TIERS)
        types = _choices(params, "type", None)
        text = _text(params, "q")
        offset, limit = _integer(params, "offset", 0, 0, 10**9), _integer(params, "limit", MAX_PAGE, 1, MAX_PAGE)
        view = await self._view(params)
        report = await self._off_loop(self._model_report, view)
        unknown = types - {section["model_type"] for section in report}
        if unknown:
            raise ApiError(400, f"unknown model type {sorted(unknown)[0]!r}; known: {', '.join(s['model_type'] for s in report)}")
        page_key = (frozenset(statuses), frozenset(types), text, offset, limit, view)
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
        recorded, users = await asyncio.get_running_loop().run_in_executor(
            None, lambda: (store.prompt_count(), self._known_users(store))
        )
        return {
            "tracking": self.writer.config["tracking"],
            "prompts_recorded": recorded,
            "prompts_dropped": self.writer.dropped,
            "prompts_queued": self.writer.queued,
            "users": [{"id": user, "name": name} for user, name in sorted(users.items())],
        }, {}

    async def reset(self, request: web.Request):
        _query(request, set())
        body = await _json_body(request)
        if not isinstance(body, dict) or body.get("confirm") is not True:
            raise ApiError(400, 'reset deletes every recorded statistic; send the JSON body {"confirm": true} to do it')
        await self._ready_store()
        await asyncio.wrap_future(self.writer.reset())
        return {"ok": True, "status": "ok"}, {}

    async def history(self, request: web.Request):
        params = _query(request, {"kind", "id"} | VIEW_PARAMS)
        kind = params.get("kind") or "prompt"
        if kind not in KINDS:
            raise ApiError(400, f"unknown kind {kind!r}; use one of: {', '.join(KINDS)}")
        item = _text(params, "id", lower=False)
        if kind != "prompt" and not item:
            raise ApiError(400, f"id is required for kind={kind} (e.g. id=checkpoints/sd15.safetensors for a model)")
        view = await self._view(params)
        store = await self._ready_store()
        series = await asyncio.get_running_loop().run_in_executor(None, daily_series_report, store, kind, item, view)
        return {"kind": kind, "id": item, "days": params.get("days", "all"), "user": view.user, "series": series}, {}

    async def summary(self, request: web.Request):
        params = _query(request, VIEW_PARAMS)
        view = await self._view(params)
        store = await self._ready_store()
        data = await asyncio.get_running_loop().run_in_executor(None, summary_report, store, view)
        return {"days": params.get("days", "all"), "user": view.user, **data}, {}

    async def realtime(self, request: web.Request):
        _query(request, set())
        store = await self._ready_store()
        since = store.now() - LIVE_WINDOW_SECONDS
        outcomes, models = await asyncio.get_running_loop().run_in_executor(
            None, lambda: (store.outcomes_since(since), store.models_used_since(since))
        )
        return {
            "since": iso(since),
            "prompts": sum(n for outcome, n in outcomes.items() if outcome != "rejected"),
            "successes": outcomes.get("success", 0),
            "failures": outcomes.get("error", 0),
            "interrupted": outcomes.get("interrupted", 0),
            "rejected": outcomes.get("rejected", 0),
            "queue": self.queue_state(),
            "models": [{"model_type": t, "model_name": n, "count": c, "last_seen": iso(last)} for t, n, c, last in models],
        }, {}

    async def export(self, request: web.Request):
        params = _query(request, {"format", "what"} | VIEW_PARAMS)
        file_format = _one_of(params, "format", exports.FORMATS, "csv")
        what = _one_of(params, "what", exports.WHAT, "models")
        view = await self._view(params)
        rows = await self._off_loop(self._export_rows, what, view)
        return Download(
            f"usage-stats-{what}-{params.get('days', 'all')}.{file_format}",
            exports.CONTENT_TYPES[file_format],
            exports.encode(file_format, rows),
        ), {}

    async def config(self, request: web.Request):
        _query(request, set())
        return self._config_answer(), {}

    async def update_config(self, request: web.Request):
        _query(request, set())
        changes = await _json_body(request)
        if isinstance(changes, dict) and "allow_remote_actions" in changes and not _from_this_computer(request):
            raise ApiError(403, "refused: allow_remote_actions guards file actions against the network, so it can be "
                                "changed only from this computer (a page or script at 127.0.0.1 or localhost)")
        await self._ready_store()
        async with self._changing:
            try:
                values = check_config(validate(CONFIG_FIELDS, self.writer.config.as_dict(), changes))
            except SettingsError as error:
                raise ApiError(400, str(error)) from None
            known = self.writer.models.model_types()
            unknown = sorted(set(values["model_types"]) - set(known))
            if unknown:
                raise ApiError(400, f"model_types: unknown type {unknown[0]!r}; known: {', '.join(known)}")
            await asyncio.wrap_future(self.writer.submit(partial(self._save_config, values)))
            await asyncio.get_running_loop().run_in_executor(None, self.writer.apply_config, values)
        return self._config_answer(), {}

    def _config_answer(self) -> dict:
        return {
            "config": self.writer.config.as_dict(),
            "fields": [field.describe() for field in CONFIG_FIELDS],
            "model_types": self.writer.models.model_types(),
        }

    def _save_config(self, values: dict, store: UsageStore) -> None:
        """Writer thread: store the config; turning tracking back on restarts every item's aging clock."""
        if values["tracking"] and not self.writer.config["tracking"]:
            self.writer.resumed_at = store.now()
            store.save_settings("watch", {"resumed_at": self.writer.resumed_at})
        store.save_settings("config", values)

    # ---- reports (executor threads)

    async def _off_loop(self, build, *args):
        store = await self._ready_store()
        return await asyncio.get_running_loop().run_in_executor(None, partial(build, store, *args))

    async def _ready_store(self) -> UsageStore:
        store = await asyncio.get_running_loop().run_in_executor(None, self.writer.wait_ready, 5.0)
        if store is None:
            raise ApiError(503, self.writer.unavailable or "usage stats are still starting; try again in a moment")
        return store

    async def _view(self, params: dict[str, str]) -> View:
        """The `days` and `user` parameters as a View; a user nobody knows is refused, not shown as zeros."""
        days = _days(params)
        user = params.get("user")
        store = await self._ready_store()
        if user is not None:
            known = await asyncio.get_running_loop().run_in_executor(None, self._known_users, store)
            if user not in known:
                raise ApiError(400, f"unknown user {user[:MAX_QUERY_LENGTH]!r}; known: {', '.join(sorted(known))}")
        return View(None if days is None else store.now() // DAY - days + 1, user)

    def _known_users(self, store: UsageStore) -> dict[str, str]:
        """user id -> display name: ComfyUI's users (with their names) and everyone who ever sent a prompt."""
        return {**{user: user for user in store.users()}, **self.comfy_users()}

    def _thresholds(self, store: UsageStore) -> Thresholds:
        """The configured thresholds; while tracking is off nothing ages, and after it resumes, only from then."""
        config = self.writer.config
        watched_since = self.writer.resumed_at if config["tracking"] else store.now()
        return Thresholds(config["consider_days"], config["safe_days"], watched_since)

    def _package_report(self, store: UsageStore, view: View = EVERYTHING) -> list[dict]:
        packages = self.writer.packages
        installed = packages.installed()
        first = store.package_first_installed()
        package_of = packages.packages_by_class()
        evidence, references, kept = self.evidence.for_packages(package_of) if self.evidence else ({}, {}, set())
        report = package_report(
            store.node_rows(), installed, package_of, first, store.now(), self._thresholds(store),
            view, store.totals("node", view), evidence,
        )
        mark_rows(report, lambda p: p["package"], references, kept)
        seconds = self.import_seconds()
        for row in report:
            row["import_seconds"] = seconds.get(row["package"])
        return report

    def _usage_report(self, store: UsageStore, view: View) -> list[dict]:
        return usage_report(store.node_rows(), self.writer.packages.packages_by_class(), view, store.totals("node", view))

    def _model_report(self, store: UsageStore, view: View = EVERYTHING) -> list[dict]:
        """The full model report, rebuilt from three cached parts, each keyed by only what it depends on.

        At 20k files the sizes (a stat per file) and the saved workflows' evidence cost most; they follow the
        listings (and the workflows), while the classification follows every write, the clock and the view.
        """
        models = self.writer.models
        installed = models.installed()
        now = store.now()
        facts_key = (models.version, now // SIZES_MAX_AGE_SECONDS)
        infos = self._file_facts.get(facts_key, lambda: disk.stat_listing(installed, _full_path))
        evidence_key = (models.version, self.evidence.version() if self.evidence else None)
        evidence = self._model_evidence.get(
            evidence_key, lambda: self.evidence.for_models(installed) if self.evidence else ({}, {}, set())
        )
        thresholds = self._thresholds(store)
        key = (facts_key, evidence_key, store.version, now // AGING_STEP_SECONDS, thresholds, view)
        report = self._model_report_memo.get(
            key, lambda: self._build_model_report(store, models, installed, infos, evidence, thresholds, view)
        )
        return report

    def _build_model_report(
        self, store: UsageStore, models, installed, infos, evidence, thresholds: Thresholds, view: View
    ) -> list[dict]:
        self._model_pages = {}  # pages of the old report would keep all of it alive
        same_file = {**models.same_file_keys(), **disk.identities(infos)}  # every name of one file shares its usage
        evidence, references, kept = evidence
        switched_off_in = store.reference_rows()
        report = model_report(
            store.model_rows(), installed, store.model_first_installed(), store.now(), same_file, thresholds, view,
            store.totals("model", view), with_switched_off(evidence, switched_off_in),
        )
        for section in report:
            mark_rows(section["models"], lambda m, t=section["model_type"]: (t, m["model_name"]), references, kept)
        disk.attach_sizes(report, infos)
        _attach_load_stats(report, store.load_rows())
        mark_witnesses(report, store.witness_rows(), switched_off_in)
        return report

    def _export_rows(self, store: UsageStore, what: str, view: View) -> list[dict]:
        if what == "models":
            return exports.model_rows(self._model_report(store, view))
        if what == "packages":
            return exports.package_rows(self._package_report(store, view))
        if what == "nodes":
            return self._usage_report(store, view)
        return exports.daily_rows(store, view)


class Memo:
    """One cached value and the key it was built for: built again only when asked with another key.

    Two threads asking at once may both build; the last one's value stays. Nothing is ever wrong, only
    done twice, which is cheaper than making every reader wait behind a lock.
    """

    def __init__(self):
        self._entry: tuple[object, object] | None = None

    def get(self, key, build):
        entry = self._entry
        if entry is None or entry[0] != key:
            entry = self._entry = (key, build())
        return entry[1]


def _attach_load_stats(report: list[dict], loads: dict[tuple[str, str], tuple[int, int, int, int]]) -> None:
    """Each model row's `load_count` and `average_load_seconds` (memory.py records every load)."""
    for section in report:
        for model in section["models"]:
            count, total_ms, *_ = loads.get((section["model_type"], model["model_name"]), (0, 0))
            model["load_count"] = count
            model["average_load_seconds"] = round(total_ms / count / 1000, 3) if count else None


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
    params = {name: request.query.get(name) for name in request.query}
    for name, value in params.items():
        _require_storable([name, value], f"the query parameter {ascii(name)}")
    return params


def _path_values(request: web.Request) -> dict[str, str]:
    """The values matched in the route's path ({model_type}, {model_name}...), each one storable."""
    values = dict(request.match_info)
    _require_storable(values, "the path")
    return values


def _require_storable(value, where: str) -> None:
    """Refuse text SQLite cannot store or a name cannot hold (a lone surrogate, a NUL) anywhere in `value`.

    One check for every value a request brings (query, path, JSON body), so no handler meets such text and
    turns it into a 500. Iterative: a body nested near the JSON parser's depth limit must not exhaust the stack.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and not _is_storable(item):
            raise ApiError(400, f"{where} holds text that cannot be stored ({ascii(item[:MAX_QUERY_LENGTH])}): "
                                "a NUL character or a lone surrogate; send valid Unicode text without NUL")


def _is_storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


def _text(params: dict[str, str], name: str, lower: bool = True) -> str:
    value = params.get(name) or ""
    if len(value) > MAX_QUERY_LENGTH:
        raise ApiError(400, f"{name} is longer than {MAX_QUERY_LENGTH} characters")
    return value.lower() if lower else value


def _one_of(params: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name, default)
    if value not in allowed:
        raise ApiError(400, f"unknown {name} {value[:MAX_QUERY_LENGTH]!r}; use one of: {', '.join(allowed)}")
    return value


def _days(params: dict[str, str]) -> int | None:
    """`days`: 7, 30, 90 or any whole number up to MAX_DAYS, or 'all' (the default): None."""
    value = params.get("days", "all")
    if value == "all":
        return None
    if not re.fullmatch(r"\d{1,4}", value) or not 1 <= int(value) <= MAX_DAYS:
        raise ApiError(400, f"days must be all or a whole number of days from 1 to {MAX_DAYS} (e.g. 7, 30, 90)")
    return int(value)


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
        body = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ApiError(400, f"the body is not valid JSON ({error})") from None
    _require_storable(body, "the JSON body")
    return body


def _from_this_computer(request: web.Request) -> bool:
    """A client on this machine, asking by a loopback name, from a loopback page or from no page (a script).
    A reverse proxy on this machine counts as local: it is the user's own."""
    origin = request.headers.get("Origin")
    host_name, _port = split_host(request.headers.get("Host"), 80)
    origin_name, _port = split_host(origin.partition("://")[2], 80) if origin else ("localhost", None)
    return is_loopback(request.remote) and is_loopback(host_name) and is_loopback(origin_name)


# --------------------------------------------------------------------------- decisions and actions (issue 7)


def _full_path(model_type: str, name: str) -> str | None:
    import folder_paths

    return folder_paths.get_full_path(model_type, name)


class DecisionsApi:
    """Disk space, references, the keep list, and the actions that change files (quarantine, packs).

    Every action is a POST with a JSON confirmation from a page of this server's own origin, refused with 403
    while ComfyUI listens beyond loopback unless the `allow_remote_actions` setting allows it, and runs in an
    executor thread through `decisions` (actions/), one at a time, never on the thread that records prompts.
    """

    def __init__(self, api: StatsApi, decisions: Decisions, config: Config, listen: str | None):
        self.api = api
        self.decisions = decisions
        self.config = config
        self.listen = listen
        self.duplicates_job = Job("duplicate search")
        self.history_job = Job("history import")

    async def disk(self, request: web.Request):
        _query(request, set())
        report = await self.api._off_loop(self.api._model_report)
        return disk.totals(report), {}

    async def references(self, request: web.Request):
        _query(request, set())
        models = await self.api._off_loop(self.api._model_report)
        packages = await self.api._off_loop(self.api._package_report)
        evidence = self.api.evidence
        saved = await asyncio.get_running_loop().run_in_executor(None, evidence.workflows.scan) if evidence else {}
        return {
            "node_types": [{"class_type": t, "workflows": names} for t, names in node_type_references(saved).items()],
            "models": [
                {"model_type": s["model_type"], "model_name": m["model_name"], "workflows": m["workflows"]}
                for s in models for m in s["models"] if m.get("workflows")
            ],
            "packages": [{"package": p["package"], "workflows": p["workflows"]} for p in packages if p.get("workflows")],
        }, {}

    async def keep(self, request: web.Request):
        _query(request, set())
        body = await _json_body(request)
        if not isinstance(body, dict) or body.get("kind") not in ("model", "package") or not isinstance(body.get("keep"), bool):
            raise ApiError(400, 'send {"kind": "model", "model_type": "checkpoints", "name": "…", "keep": true} '
                                '(a "package" has no model_type)')
        kind, name, keep = body["kind"], body.get("name"), body["keep"]
        model_type = body.get("model_type") if kind == "model" else ""
        if not _short_text(name) or (kind == "model" and not _short_text(model_type)):
            raise ApiError(400, "name (and, for a model, model_type) must be non-empty strings")
        await self._act(self.decisions.set_kept, kind, model_type, name, keep)
        return {"ok": True, "kind": body["kind"], "model_type": model_type, "name": name, "kept": body["keep"]}, {}

    async def quarantine_list(self, request: web.Request):
        _query(request, set())
        items = await self._act(self.decisions.quarantined)
        return {"items": items, "files": len(items), "bytes": sum(i["size"] for i in items)}, {}

    async def actions_log(self, request: web.Request):
        params = _query(request, {"limit"})
        limit = _integer(params, "limit", 200, 1, 10_000)
        return await self._act(self.decisions.actions, limit), {}

    async def quarantine(self, request: web.Request):
        body, by = await self._action_request(request)
        models = body.get("models")
        if not isinstance(models, list) or not models or not all(isinstance(m, dict) for m in models):
            raise ApiError(400, 'send {"confirm": true, "models": [{"model_type": "checkpoints", "model_name": "…"}]}')
        moved, refused = [], []
        for model in models:
            model_type, name = model.get("model_type"), model.get("model_name")
            try:  # against the listing as it is now, after the moves before it
                moved.append(await self._act(self._quarantine_one, model_type, name, by))
            except ApiError as error:
                refused.append({"model_type": model_type, "model_name": name, "error": error.message, "status": error.status})
        if not moved:
            raise ApiError(refused[0]["status"], refused[0]["error"])
        return {"moved": moved, "refused": refused}, {}

    async def restore(self, request: web.Request):
        body, by = await self._action_request(request)
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ApiError(400, 'send {"confirm": true, "ids": [1, 2]} with the ids of GET /nodes-stats/quarantine')
        restored = [await self._act(self.decisions.restore, i, by) for i in ids]
        return {"restored": restored}, {}

    async def empty(self, request: web.Request):
        body, by = await self._action_request(request)
        confirmed = body.get("confirm_bytes")
        if not isinstance(confirmed, int) or isinstance(confirmed, bool):
            raise ApiError(400, 'deleting is for good: send {"confirm": true, "confirm_bytes": N} with the bytes '
                                'GET /nodes-stats/quarantine shows')
        return await self._act(self.decisions.empty, confirmed, by), {}

    async def disable_pack(self, request: web.Request):
        body, by = await self._action_request(request)
        return await self._act(self.decisions.disable_pack, body.get("package"), by), {}

    async def enable_pack(self, request: web.Request):
        body, by = await self._action_request(request)
        return await self._act(self.decisions.enable_pack, body.get("package"), by), {}

    async def duplicates(self, request: web.Request):
        _query(request, set())
        return self.duplicates_job.status(), {}

    async def scan_duplicates(self, request: web.Request):
        """Start the duplicate search (it only reads files: same origin is all it needs)."""
        _query(request, set())
        store = await self.api._ready_store()
        writer = self.api.writer

        def work(progress):
            return duplicates.find_duplicates(
                writer.models.installed(), _full_path, store.cached_hashes(),
                lambda rows: writer.submit(lambda s: s.save_hashes(rows), wait_seconds=60), progress,
            )

        if not self.duplicates_job.start(work):
            raise ApiError(409, "a duplicate search is already running; cancel it or wait for it to finish")
        return self.duplicates_job.status(), {}

    async def cancel_duplicates(self, request: web.Request):
        _query(request, set())
        return {"cancelled": self.duplicates_job.cancel()}, {}

    async def history_import(self, request: web.Request):
        _query(request, set())
        return self.history_job.status(), {}

    async def start_history_import(self, request: web.Request):
        """Opt in to reading past outputs' prompts into the history (it writes statistics, so it is confirmed)."""
        _query(request, set())
        body = await _json_body(request)
        if not isinstance(body, dict) or body.get("confirm") is not True:
            raise ApiError(400, 'importing adds the prompts found in your output images to the history; send {"confirm": true}')
        store = await self.api._ready_store()
        writer = self.api.writer

        def work(progress):
            import folder_paths

            def record(batch):
                return writer.submit(lambda s: s.record_imported(batch), wait_seconds=60).result(60)

            before = store.tracking_since() or store.now()
            return outputs.import_history(folder_paths.get_output_directory(), before, writer.extract, record, progress)

        if not self.history_job.start(work):
            raise ApiError(409, "the history import is already running; cancel it or wait for it to finish")
        return self.history_job.status(), {}

    async def cancel_history_import(self, request: web.Request):
        _query(request, set())
        return {"cancelled": self.history_job.cancel()}, {}

    async def _action_request(self, request: web.Request) -> tuple[dict, str]:
        """The checks every action passes before anything is touched; returns the body and who asked."""
        _query(request, set())
        if listens_beyond_loopback(self.listen) and not self.config["allow_remote_actions"]:
            raise ApiError(
                403,
                "refused: ComfyUI listens beyond this computer (--listen), so anyone on the network could move your files; "
                "turn on the allow_remote_actions setting to allow it",
            )
        body = await _json_body(request)
        if not isinstance(body, dict) or body.get("confirm") is not True:
            raise ApiError(400, 'this action changes files on disk; send a JSON body with "confirm": true')
        return body, f"{request.remote or 'unknown'}"

    async def _act(self, action, *args):
        """Run one decision in an executor thread (actions/ serialises them); a refusal becomes its HTTP error."""
        try:
            return await asyncio.get_running_loop().run_in_executor(None, action, *args)
        except ActionRefused as refused:
            raise ApiError(refused.status, refused.message) from None

    def _quarantine_one(self, model_type, model_name, by: str) -> dict:
        return self.decisions.quarantine(model_type, model_name, self.api.writer.models.installed(), by)


def _short_text(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 1000


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
        manager = await self._settled_manager()
        changes = await _json_body(request)
        async with self._changing:
            try:
                values = validate(UNLOAD_FIELDS, manager.config.as_dict(), changes)
            except SettingsError as error:
                raise ApiError(400, str(error)) from None
            await self._write(lambda store: store.save_settings(UNLOAD_GROUP, values))
            manager.config.replace(values)
            manager.apply()
        return values, {}

    async def override(self, request: web.Request):
        _query(request, set())
        path = _path_values(request)
        manager = await self._settled_manager()
        model_type, model_name = path["model_type"], path["model_name"]
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
