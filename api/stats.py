"""The usage handlers: packages, nodes, models, history, the summary, settings, exports."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..domain.values import DAY, KINDS, REMOVAL_ORDER, TIERS, View, iso
from ..recording.settings import CONFIG_FIELDS, SettingsError, check_config, validate
from ..reports import exports
from ..reports.usage import daily_series_report, summary_report
from ..tracker import UsageStore
from .app import App
from .requests import (
    MAX_PAGE,
    MAX_QUERY_LENGTH,
    VIEW_PARAMS,
    ApiError,
    Download,
    EncodedJson,
    choices_param,
    days_param,
    encode_json,
    from_this_computer,
    integer_param,
    json_body,
    one_of_param,
    query_params,
    text_param,
)

LIVE_WINDOW_SECONDS = 3600
MODEL_PAGES_KEPT = 16
"""Encoded /models pages (filter and paging combinations) kept for the current report only."""
MODEL_ORDERS = ("type", "removable")
"""/models `sort=`: by type, then tier from used to uninstalled, then name (the report's own order), or the
panel's: the most removable tier first, then name, types mixed (a type may then head several groups)."""
REMOVABLE_FIRST = (*reversed(REMOVAL_ORDER), "uninstalled")


class StatsApi:
    """The handlers. Reports are computed in the default executor: SQLite and folder listings never block the loop."""

    def __init__(self, app: App):
        self.app = app
        self.reports = app.reports
        self.writer = app.writer
        self._model_pages: dict[tuple, tuple[list[dict], EncodedJson, int]] = {}
        self._changing = asyncio.Lock()
        """One settings change at a time, each validated against the values the one before it saved."""

    async def packages(self, request: web.Request):
        params = query_params(request, {"status"} | VIEW_PARAMS)
        statuses = choices_param(params, "status", TIERS)
        view = await self._view(params)
        report = await self.app.off_loop(self.reports.package_report, view)
        return [p for p in report if not statuses or p["status"] in statuses], {}

    async def usage(self, request: web.Request):
        params = query_params(request, {"package"} | VIEW_PARAMS)
        view = await self._view(params)
        report = await self.app.off_loop(self.reports.usage_report, view)
        package = params.get("package")
        return [n for n in report if package is None or n["package"] == package], {}

    async def models(self, request: web.Request):
        params = query_params(request, {"type", "status", "q", "sort", "offset", "limit"} | VIEW_PARAMS)
        statuses = choices_param(params, "status", TIERS)
        types = choices_param(params, "type", None)
        text = text_param(params, "q")
        order = one_of_param(params, "sort", MODEL_ORDERS, "type")
        offset, limit = integer_param(params, "offset", 0, 0, 10**9), integer_param(params, "limit", MAX_PAGE, 1, MAX_PAGE)
        view = await self._view(params)
        report = await self.app.off_loop(self.reports.model_report, view)
        unknown = types - {section["model_type"] for section in report}
        if unknown:
            raise ApiError(400, f"unknown model type {sorted(unknown)[0]!r}; known: {', '.join(s['model_type'] for s in report)}")
        page_key = (frozenset(statuses), frozenset(types), text, order, offset, limit, view)
        cached = self._model_pages.get(page_key)
        if cached is None or cached[0] is not report:  # a page of an older report (built during a rebuild)
            body, total = await asyncio.get_running_loop().run_in_executor(
                None, _model_page, report, statuses, types, text, order, offset, limit
            )
            if len(self._model_pages) >= MODEL_PAGES_KEPT or any(r is not report for r, *_ in self._model_pages.values()):
                self._model_pages.clear()  # pages of an older report would keep all of it alive
            cached = self._model_pages[page_key] = (report, body, total)
        return cached[1], {"X-Total-Count": str(cached[2])}

    async def status(self, request: web.Request):
        query_params(request, set())
        store = await self.app.ready_store()
        recorded = await asyncio.get_running_loop().run_in_executor(None, store.prompt_count)
        users = await self.app.off_loop(self._known_users)
        return {
            "tracking": self.app.config["tracking"],
            "prompts_recorded": recorded,
            "prompts_dropped": self.writer.dropped,
            "prompts_queued": self.writer.queued,
            "users": [{"id": user, "name": name} for user, name in sorted(users.items())],
        }, {}

    async def reset(self, request: web.Request):
        query_params(request, set())
        body = await json_body(request)
        if not isinstance(body, dict) or body.get("confirm") is not True:
            raise ApiError(400, 'reset deletes every recorded statistic; send the JSON body {"confirm": true} to do it')
        await self.app.ready_store()
        await asyncio.wrap_future(self.writer.reset())
        return {"status": "ok"}, {}

    async def history(self, request: web.Request):
        params = query_params(request, {"kind", "id"} | VIEW_PARAMS)
        kind = params.get("kind") or "prompt"
        if kind not in KINDS:
            raise ApiError(400, f"unknown kind {kind!r}; use one of: {', '.join(KINDS)}")
        item = text_param(params, "id", lower=False)
        if kind != "prompt" and not item:
            raise ApiError(400, f"id is required for kind={kind} (e.g. id=checkpoints/sd15.safetensors for a model)")
        view = await self._view(params)
        series = await self.app.off_loop(daily_series_report, kind, item, view)
        return {"kind": kind, "id": item, "days": params.get("days", "all"), "user": view.user, "series": series}, {}

    async def summary(self, request: web.Request):
        params = query_params(request, VIEW_PARAMS)
        view = await self._view(params)
        data = await self.app.off_loop(summary_report, view)
        return {"days": params.get("days", "all"), "user": view.user, **data}, {}

    async def realtime(self, request: web.Request):
        query_params(request, set())
        since, outcomes, models = await self.app.off_loop(last_hour)
        return {
            "since": iso(since),
            "prompts": sum(n for outcome, n in outcomes.items() if outcome != "rejected"),
            "successes": outcomes.get("success", 0),
            "failures": outcomes.get("error", 0),
            "interrupted": outcomes.get("interrupted", 0),
            "rejected": outcomes.get("rejected", 0),
            "queue": self.app.queue_state(),
            "models": [{"model_type": t, "model_name": n, "count": c, "last_seen": iso(last)} for t, n, c, last in models],
        }, {}

    async def export(self, request: web.Request):
        params = query_params(request, {"format", "what"} | VIEW_PARAMS)
        file_format = one_of_param(params, "format", exports.FORMATS, "csv")
        what = one_of_param(params, "what", exports.WHAT, "models")
        view = await self._view(params)
        rows = await self.app.off_loop(self.reports.export_rows, what, view)
        return Download(
            f"usage-stats-{what}-{params.get('days', 'all')}.{file_format}",
            exports.CONTENT_TYPES[file_format],
            exports.encode(file_format, rows),
        ), {}

    async def shared(self, request: web.Request):
        """Whether this machine reports into a shared store, whether it answers, and the fleet's machines."""
        query_params(request, set())
        shipper = self.app.shared
        if shipper is None:
            return {"configured": False}, {}
        await self.app.ready_store()
        return await asyncio.get_running_loop().run_in_executor(None, shipper.describe), {}

    async def config(self, request: web.Request):
        query_params(request, set())
        return self._config_answer(), {}

    async def update_config(self, request: web.Request):
        query_params(request, set())
        changes = await json_body(request)
        if isinstance(changes, dict) and "allow_remote_actions" in changes and not from_this_computer(request):
            raise ApiError(403, "refused: allow_remote_actions guards file actions against the network, so it can be "
                                "changed only from this computer (a page or script at 127.0.0.1 or localhost)")
        await self.app.ready_store()
        async with self._changing:
            try:
                values = check_config(validate(CONFIG_FIELDS, self.app.config.as_dict(), changes))
            except SettingsError as error:
                raise ApiError(400, str(error)) from None
            known = self.app.models.model_types()
            unknown = sorted(set(values["model_types"]) - set(known))
            if unknown:
                raise ApiError(400, f"model_types: unknown type {unknown[0]!r}; known: {', '.join(known)}")
            await asyncio.wrap_future(self.writer.save_config(values))
            await asyncio.get_running_loop().run_in_executor(None, self.writer.apply_config, values)
        return self._config_answer(), {}

    def _config_answer(self) -> dict:
        return {**self.app.config.describe(), "model_types": self.app.models.model_types()}

    # ---- request context

    async def _view(self, params: dict[str, str]) -> View:
        """The `days`, `user` and `machine` parameters as a View; a user or machine nobody knows is refused,
        not shown as zeros."""
        days = days_param(params)
        user, machine = params.get("user"), params.get("machine")
        store = await self.app.ready_store()
        if user is not None:
            known = await self.app.off_loop(self._known_users)
            if user not in known:
                raise ApiError(400, f"unknown user {user[:MAX_QUERY_LENGTH]!r}; known: {', '.join(sorted(known))}")
        if machine is not None:
            await self._check_machine(machine)
        return View(None if days is None else store.now() // DAY - days + 1, user, machine)

    async def _check_machine(self, machine: str) -> None:
        """A machine of the fleet: its id, as GET /shared lists them."""
        if self.app.shared is None:
            raise ApiError(400, "machine= needs a shared store, and none is configured (see GET /nodes-stats/shared)")
        known = await asyncio.get_running_loop().run_in_executor(None, self.app.shared.machine_ids)
        if machine not in known:
            raise ApiError(400, f"unknown machine {machine[:MAX_QUERY_LENGTH]!r}; known: {', '.join(sorted(known))}")

    def _known_users(self, store: UsageStore) -> dict[str, str]:
        """user id -> display name: ComfyUI's users (with their names) and everyone who ever sent a prompt
        (on any machine of the fleet, with a shared store: a view by user is a fleet-wide view)."""
        return {**{user: user for user in store.users()}, **self.app.comfy_users()}


def last_hour(store: UsageStore) -> tuple[int, dict[str, int], list[tuple[str, str, int, int]]]:
    """(since, outcome -> prompts, models used) of the last hour: /realtime's figures, read from one store."""
    since = store.now() - LIVE_WINDOW_SECONDS
    return since, store.outcomes_since(since), store.models_used_since(since)


def _model_page(report: list[dict], statuses: set[str], types: set[str], text: str, order: str, offset: int, limit: int):
    """(encoded JSON body, total matches) of one filtered page of the model report, in the `order` asked for."""
    filtered = [
        (section["model_type"], model)
        for section in report
        if not types or section["model_type"] in types
        for model in section["models"]
        if (not statuses or model["status"] in statuses) and (not text or text in model["model_name"].lower())
    ]
    if order == "removable":
        filtered.sort(key=lambda row: (REMOVABLE_FIRST.index(row[1]["status"]), row[1]["model_name"].lower()))
    return EncodedJson(encode_json(_group_by_type(filtered[offset : offset + limit]))), len(filtered)


def _group_by_type(rows: list[tuple[str, dict]]) -> list[dict]:
    """Consecutive rows of one type as one group, so the rows keep their order whatever it is."""
    groups: list[dict] = []
    for model_type, model in rows:
        if not groups or groups[-1]["model_type"] != model_type:
            groups.append({"model_type": model_type, "models": []})
        groups[-1]["models"].append(model)
    return groups
