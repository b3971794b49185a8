"""A faithful stand-in for ComfyUI's comfy/cli_args.py: the parsed command line, as `args`.

Only what the extension reads, with ComfyUI's defaults (`--listen 127.0.0.1`, `--port 8188`, no TLS).
"""

import argparse

args = argparse.Namespace(listen="127.0.0.1", port=8188, tls_keyfile=None, tls_certfile=None)
