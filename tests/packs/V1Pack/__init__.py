"""A V1 custom-node pack with a checkpoint input and its own model folder type, for acceptance tests."""
import os

import folder_paths

folder_paths.add_model_folder_path("ipadapter", os.path.join(folder_paths.models_dir, "ipadapter"))


class V1PackLoader:
    CATEGORY = "tests"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt": (folder_paths.get_filename_list("checkpoints"),),
                             "adapter": (folder_paths.get_filename_list("ipadapter"),)}}

    def load(self, ckpt, adapter):
        return (ckpt,)


class V1PackUnused:
    CATEGORY = "tests"
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def run(self):
        return ("",)


NODE_CLASS_MAPPINGS = {"V1PackLoader": V1PackLoader, "V1PackUnused": V1PackUnused}
