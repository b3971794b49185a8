"""The table of every route under /nodes-stats, and which handler answers it.

Why a module of its own: one place lists every path, so a new route is one line here and one handler in
the family it belongs to (stats, decisions, memory); api/requests.py gives them all one error shape.
"""

from __future__ import annotations

from functools import partial

from aiohttp import web

from .app import App
from .decisions import DecisionsApi
from .memory import MemoryApi
from .requests import guarded_json_route
from .stats import StatsApi


def register_routes(routes: web.RouteTableDef, app: App) -> None:
    """Every /nodes-stats route, each answering only requests `app.access` lets in. ComfyUI serves each under
    /api/nodes-stats/... as well."""
    _json_route = partial(guarded_json_route, app.access)
    api, decisions, memory_api = StatsApi(app), DecisionsApi(app), MemoryApi(app)
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
    routes.get("/nodes-stats/shared")(_json_route(api.shared))
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
    routes.get("/nodes-stats/loaded")(_json_route(memory_api.loaded))
    routes.get("/nodes-stats/unload/config")(_json_route(memory_api.config))
    routes.put("/nodes-stats/unload/config")(_json_route(memory_api.change_config))
    routes.put("/nodes-stats/unload/models/{model_type}/{model_name:.+}")(_json_route(memory_api.override))
    routes.post("/nodes-stats/unload/now")(_json_route(memory_api.unload_now))
    routes.get("/nodes-stats/unload/analytics")(_json_route(memory_api.analytics))
