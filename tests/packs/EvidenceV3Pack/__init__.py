"""A V3 pack (comfy_api io.ComfyNode) whose loader picks its model with an io.Combo and really opens it."""
import comfy.utils
import folder_paths
from comfy_api.latest import ComfyExtension, io


class MiniV3VaeLoader(io.ComfyNode):
    """A V3 (comfy_api io.ComfyNode) loader whose model picker is an io.Combo, as core nodes are written now."""

    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="MiniV3VaeLoader", category="tests/evidence", is_output_node=True,
                         inputs=[io.Combo.Input("vae_name", options=folder_paths.get_filename_list("vae"))], outputs=[])

    @classmethod
    def execute(cls, vae_name) -> io.NodeOutput:
        comfy.utils.load_torch_file(folder_paths.get_full_path_or_raise("vae", vae_name), safe_load=True)
        return io.NodeOutput()


class EvidenceExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [MiniV3VaeLoader]


async def comfy_entrypoint() -> EvidenceExtension:
    return EvidenceExtension()
