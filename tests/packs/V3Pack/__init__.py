"""A V3 (comfy_api io.ComfyNode) pack whose model input is an io.Combo, for acceptance tests."""
import folder_paths
from comfy_api.latest import ComfyExtension, io


class V3PackLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="V3PackLoader",
            category="tests",
            inputs=[io.Combo.Input("vae_name", options=folder_paths.get_filename_list("vae"))],
            outputs=[io.String.Output()],
        )

    @classmethod
    def execute(cls, vae_name) -> io.NodeOutput:
        return io.NodeOutput(vae_name)


class V3PackExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [V3PackLoader]


async def comfy_entrypoint() -> V3PackExtension:
    return V3PackExtension()
