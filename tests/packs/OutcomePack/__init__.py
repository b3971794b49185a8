"""Output nodes whose outcome a test chooses: one waits (and can be interrupted), one fails while it runs."""
import time

import comfy.model_management
import folder_paths


def _inputs():
    return {"required": {"seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 120.0}),
                         "ckpt": (folder_paths.get_filename_list("checkpoints"),)}}


class OutcomeWait:
    CATEGORY = "tests"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return _inputs()

    def run(self, seconds, ckpt):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            comfy.model_management.throw_exception_if_processing_interrupted()
            time.sleep(0.02)
        return {}


class OutcomeFail(OutcomeWait):
    def run(self, seconds, ckpt):
        raise RuntimeError("failing on purpose")


NODE_CLASS_MAPPINGS = {"OutcomeWait": OutcomeWait, "OutcomeFail": OutcomeFail}
