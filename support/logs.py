"""The extension's logger and its once-per-reason warning.

Why a module of its own: the hook, the writer, the mapper and the routes all degrade the same way, with one
clear `[usage-stats]` line per kind of failure, never a line per prompt flooding ComfyUI's console.
ComfyUI logs on the root logger; `__name__` inside a custom-node pack is a file path, so the name is fixed.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("usage_stats")

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(reason: str, message: str, *args, exc_info: bool = False) -> None:
    """Log `message` at WARNING the first time `reason` happens in this process, and never again."""
    with _warned_lock:
        if reason in _warned:
            return
        _warned.add(reason)
    log.warning("[usage-stats] " + message, *args, exc_info=exc_info)
