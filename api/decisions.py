"""The decision handlers: disk space, references, the keep list, quarantine, packs, duplicates, history import."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..actions.moves import ActionRefused
from ..evidence import outputs
from ..evidence.workflows import node_type_references
from ..reports import disk, duplicates
from ..support.files import model_path
from ..support.jobs import Job
from .access import listens_beyond_loopback
from .requests import ApiError, integer_param, is_short_text, json_body, query_params, text_param
from .app import App


class DecisionsApi:
    """Disk space, references, the keep list, and the actions that change files (quarantine, packs).

    Every action is a POST with a JSON confirmation from a page of this server's own origin, refused with 403
    while ComfyUI listens beyond loopback unless the `allow_remote_actions` setting allows it, and runs in an
    executor thread through `decisions` (actions/), one at a time, never on the thread that records prompts.
    """

    def __init__(self, app: App):
        self.app = app
        self.reports = app.reports
        self.decisions = app.decisions
        self.duplicates_job = Job("duplicate search")
        self.history_job = Job("history import")

    async def disk(self, request: web.Request):
        text = text_param(query_params(request, {"q"}), "q")
        report = await self.app.off_loop(self.reports.model_report)
        return await asyncio.get_running_loop().run_in_executor(None, disk.totals, report, text), {}

    async def references(self, request: web.Request):
        query_params(request, set())
        models = await self.app.off_loop(self.reports.model_report)
        packages = await self.app.off_loop(self.reports.package_report)
        evidence = self.reports.evidence
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
        query_params(request, set())
        body = await json_body(request)
        if not isinstance(body, dict) or body.get("kind") not in ("model", "package") or not isinstance(body.get("keep"), bool):
            raise ApiError(400, 'send {"kind": "model", "model_type": "checkpoints", "name": "…", "keep": true} '
                                '(a "package" has no model_type)')
        kind, name, keep = body["kind"], body.get("name"), body["keep"]
        model_type = body.get("model_type") if kind == "model" else ""
        if not is_short_text(name) or (kind == "model" and not is_short_text(model_type)):
            raise ApiError(400, "name (and, for a model, model_type) must be non-empty strings")
        await self._act(self.decisions.set_kept, kind, model_type, name, keep)
        return {"kind": body["kind"], "model_type": model_type, "name": name, "kept": body["keep"]}, {}

    async def quarantine_list(self, request: web.Request):
        query_params(request, set())
        items = await self._act(self.decisions.quarantined)
        return {"items": items, "files": len(items), "bytes": sum(i["size"] for i in items)}, {}

    async def actions_log(self, request: web.Request):
        params = query_params(request, {"limit"})
        limit = integer_param(params, "limit", 200, 1, 10_000)
        return await self._act(self.decisions.actions, limit), {}

    async def quarantine(self, request: web.Request):
        body, by = await self._action_request(request)
        models = body.get("models")
        if not isinstance(models, list) or not models or not all(isinstance(m, dict) for m in models):
            raise ApiError(400, 'send {"confirm": true, "models": [{"model_type": "checkpoints", "model_name": "…"}]}')
        moved, refused = [], []
        fleet_refusals = await self._fleet_refusals()
        for model in models:
            model_type, name = model.get("model_type"), model.get("model_name")
            try:  # against the listing as it is now, after the moves before it
                if (model_type, name) in fleet_refusals:
                    raise ApiError(409, fleet_refusals[(model_type, name)])
                moved.append(await self._act(self._quarantine_one, model_type, name, by))
            except ApiError as error:
                refused.append({"model_type": model_type, "model_name": name, "error": error.message, "status": error.status})
        if not moved:
            raise ApiError(refused[0]["status"], refused[0]["error"])
        self._share("quarantine", [f"{m['model_type']}/{m['model_name']}" for m in moved], by)
        return {"moved": moved, "refused": refused}, {}

    async def restore(self, request: web.Request):
        body, by = await self._action_request(request)
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ApiError(400, 'send {"confirm": true, "ids": [1, 2]} with the ids of GET /nodes-stats/quarantine')
        restored = [await self._act(self.decisions.restore, i, by) for i in ids]
        self._share("restore", [f"{r['model_type']}/{r['model_name']}" for r in restored], by)
        return {"restored": restored}, {}

    async def empty(self, request: web.Request):
        body, by = await self._action_request(request)
        confirmed = body.get("confirm_bytes")
        if not isinstance(confirmed, int) or isinstance(confirmed, bool):
            raise ApiError(400, 'deleting is for good: send {"confirm": true, "confirm_bytes": N} with the bytes '
                                'GET /nodes-stats/quarantine shows')
        emptied = await self._act(self.decisions.empty, confirmed, by)
        self._share("delete", [f"{emptied['deleted']} quarantined files, {emptied['bytes']} bytes"], by)
        return emptied, {}

    async def disable_pack(self, request: web.Request):
        body, by = await self._action_request(request)
        return await self._act(self.decisions.disable_pack, body.get("package"), by), {}

    async def enable_pack(self, request: web.Request):
        body, by = await self._action_request(request)
        return await self._act(self.decisions.enable_pack, body.get("package"), by), {}

    async def duplicates(self, request: web.Request):
        query_params(request, set())
        return self._duplicates_status(), {}

    def _duplicates_status(self) -> dict:
        """The search's status, and whether it hashes every file (a shared store) or files of equal size only."""
        return {**self.duplicates_job.status(), "every_file": self.app.shared is not None}

    async def scan_duplicates(self, request: web.Request):
        """Start the duplicate search (it only reads files: same origin is all it needs)."""
        query_params(request, set())
        store = await self.app.ready_store()
        writer = self.app.writer

        def work(progress):
            return duplicates.find_duplicates(
                self.app.models.installed(), model_path, store.cached_hashes(),
                lambda hashes, names: writer.submit(lambda s: s.save_hashes(hashes, names), wait_seconds=60),
                progress, every_file=self.app.shared is not None,
            )

        if not self.duplicates_job.start(work):
            raise ApiError(409, "a duplicate search is already running; cancel it or wait for it to finish")
        return self._duplicates_status(), {}

    async def cancel_duplicates(self, request: web.Request):
        query_params(request, set())
        return {"cancelled": self.duplicates_job.cancel()}, {}

    async def history_import(self, request: web.Request):
        query_params(request, set())
        return self.history_job.status(), {}

    async def start_history_import(self, request: web.Request):
        """Opt in to reading past outputs' prompts into the history (it writes statistics, so it is confirmed)."""
        query_params(request, set())
        body = await json_body(request)
        if not isinstance(body, dict) or body.get("confirm") is not True:
            raise ApiError(400, 'importing adds the prompts found in your output images to the history; send {"confirm": true}')
        store = await self.app.ready_store()
        writer = self.app.writer

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
        query_params(request, set())
        return {"cancelled": self.history_job.cancel()}, {}

    async def _action_request(self, request: web.Request) -> tuple[dict, str]:
        """The checks every action passes before anything is touched; returns the body and who asked."""
        query_params(request, set())
        if listens_beyond_loopback(self.app.access.listen) and not self.app.config["allow_remote_actions"]:
            raise ApiError(
                403,
                "refused: ComfyUI listens beyond this computer (--listen), so anyone on the network could move your files; "
                "turn on the allow_remote_actions setting to allow it",
            )
        body = await json_body(request)
        if not isinstance(body, dict) or body.get("confirm") is not True:
            raise ApiError(400, 'this action changes files on disk; send a JSON body with "confirm": true')
        return body, f"{request.remote or 'unknown'}"

    async def _act(self, action, *args):
        """Run one decision in an executor thread (actions/ serialises them); a refusal becomes its HTTP error."""
        try:
            return await asyncio.get_running_loop().run_in_executor(None, action, *args)
        except ActionRefused as refused:
            raise ApiError(refused.status, refused.message) from None

    def _share(self, action: str, targets: list[str], by: str) -> None:
        """With a shared store, tell every machine what this one did to files on the shared volume."""
        if self.app.shared is not None:
            for target in targets:
                self.app.shared.share_action(action, target, by)

    async def _fleet_refusals(self) -> dict[tuple[str, str], str]:
        """With a shared store, the files no machine may quarantine now, and why: the volume is everyone's, so
        a file any machine uses, or one a silent machine lists, stays where every machine expects it."""
        if self.app.shared is None:
            return {}
        refusals = {}
        for section in await self.app.off_loop(self.reports.model_report):
            for model in section["models"]:
                key = (section["model_type"], model["model_name"])
                if model["status"] == "used":
                    refusals[key] = f"refused: {key[1]} is in use on the fleet (last used {model['last_seen']})"
                elif model["evidence_incomplete"]:
                    refusals[key] = f"refused: another machine may still use {key[1]}: {model['evidence_incomplete']}"
        return refusals

    def _quarantine_one(self, model_type, model_name, by: str) -> dict:
        return self.decisions.quarantine(model_type, model_name, self.app.models.installed(), by)
