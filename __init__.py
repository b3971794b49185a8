"""comfyui-usage-stats: ComfyUI entry point. Wiring only: the hook, the writer thread and the routes.

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
    from .mapper import ModelMapper, PackageMapper
    from .memory import start_memory
    from .routes import StatsApi, register_routes
    from .writer import Writer, open_store

    writer = Writer(open_store, PackageMapper(own_pack=os.path.basename(os.path.dirname(__file__))), ModelMapper())
    register_routes(prompt_server.routes, StatsApi(writer), start_memory(prompt_server, writer))
    prompt_server.add_on_prompt_handler(writer.on_prompt)
    writer.start()
    atexit.register(writer.stop)


try:
    from server import PromptServer

    _install(PromptServer.instance)
except Exception as error:  # outside ComfyUI, or a ComfyUI we cannot hook into: stay out of the way
    logging.getLogger("usage_stats").warning("[usage-stats] not tracking: %s", error)
