"""comfyui-usage-stats: ComfyUI entry point. Wiring only: the hook, the outcome listeners, the writer thread, the routes.

Importing this outside ComfyUI, with a database that cannot be opened, or even as a lone file rather than
as ComfyUI's pack (as pytest does with a checkout's root), never raises: the extension logs one
`[usage-stats]` line and ComfyUI carries on without it. Hence every import of ours sits inside the guard.
"""

import atexit
import logging
import os

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
WEB_DIRECTORY = "./js"


def _install(prompt_server) -> None:
    from .actions.decisions import Decisions
    from .api.access import Access
    from .api.app import App
    from .api.routes import register_routes
    from .evidence.import_times import ImportTimes
    from .evidence.source import EvidenceSource
    from .evidence.workflows import SavedWorkflows
    from .mapper import ModelMapper, PackageMapper
    from .memory.manager import start_memory
    from .recording.outcomes import queue_state, submission_middleware, wrap_task_done
    from .recording.shared import Shipper, shared_settings
    from .recording.writer import Writer, database_path, open_store
    from .reports.service import Reports
    from .store.postgres import FleetStore

    import_times = ImportTimes().attach()  # before ComfyUI logs the packs' import times, after every import
    packages = PackageMapper(own_pack=os.path.basename(os.path.dirname(__file__)))
    shared = shared_settings(os.path.dirname(database_path()))
    writer = Writer(lambda: open_store(machine=shared and shared.machine_id), packages, ModelMapper())
    shipper = Shipper(writer, shared, FleetStore) if shared else None
    decisions = Decisions(os.path.dirname(database_path()), packages.is_protected)
    evidence = EvidenceSource(SavedWorkflows(), decisions)
    app = App(
        writer,
        Reports(packages, writer.models, writer.thresholds, evidence, import_times.seconds, shipper),
        decisions,
        Access.from_comfyui(),
        start_memory(prompt_server, writer),
        queue_state=lambda: queue_state(prompt_server.prompt_queue),
        comfy_users=lambda: dict(getattr(getattr(prompt_server, "user_manager", None), "users", None) or {}),
        shared=shipper,
    )
    register_routes(prompt_server.routes, app)
    writer.start()
    if shipper:
        shipper.start()
        atexit.register(shipper.stop)
    writer.submit(decisions.take_over)  # the keep list and quarantine of an older version; moves a crash cut short
    atexit.register(writer.stop)
    prompt_server.add_on_prompt_handler(writer.on_prompt)
    try:
        prompt_server.app.middlewares.append(submission_middleware(writer, prompt_server.user_manager.get_request_user_id))
        wrap_task_done(prompt_server.prompt_queue, writer.on_finished)
    except Exception as error:  # a ComfyUI without these seams: count every submitted prompt, as before
        logging.getLogger("usage_stats").warning("[usage-stats] cannot see how prompts end (%s); counting submissions", error)


try:
    from server import PromptServer

    _install(PromptServer.instance)
except Exception as error:  # outside ComfyUI, or a ComfyUI we cannot hook into: stay out of the way
    logging.getLogger("usage_stats").warning("[usage-stats] not tracking: %s", error)
