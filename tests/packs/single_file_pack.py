"""A single-file custom-node pack, for acceptance tests."""


class SingleFileNode:
    CATEGORY = "tests"
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 1})}}

    def run(self, value):
        return (value,)


NODE_CLASS_MAPPINGS = {"SingleFileNode": SingleFileNode}
