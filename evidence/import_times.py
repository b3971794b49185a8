"""Each custom-node pack's import time at start, as ComfyUI itself measured and logged it.

Why from the log: ComfyUI times every custom-node import (nodes.py, `init_external_custom_nodes`) and keeps
the figures only long enough to log them ("   0.4 seconds: /ComfyUI/custom_nodes/SomePack"). Timing a pack
again would mean importing it again, running its code twice; reading ComfyUI's lines costs nothing. A
logging handler catches them as they are written (ComfyUI logs them after every pack, ours included, was
imported) and ignores every line after them; ComfyUI's own log buffer (`app.logger`) is the fallback.
The figure has ComfyUI's precision: a tenth of a second.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Iterable

from ..domain.values import storable

HEADER = "Import times for custom nodes"
LINE = re.compile(r"^\s*(\d+(?:\.\d+)?) seconds(?: \(IMPORT FAILED\))?: (.+?)\s*$")


def pack_times(lines: Iterable[str]) -> dict[str, float]:
    """pack name -> seconds, from ComfyUI's import-time lines among any other log lines."""
    seconds = {}
    for line in lines:
        match = LINE.match(line)
        if match and os.path.isabs(match.group(2)):
            name = os.path.basename(os.path.normpath(match.group(2)))
            seconds[storable(name[:-3] if name.endswith(".py") else name)] = float(match.group(1))
    return seconds


class ImportTimes(logging.Handler):
    """Attach to the root logger before ComfyUI finishes importing packs; `seconds()` answers afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self._seconds: dict[str, float] = {}
        self._in_block = False
        self._done = False
        self._lock_times = threading.Lock()

    def attach(self) -> "ImportTimes":
        logging.getLogger().addHandler(self)
        return self

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # another module's malformed log call is not ours to fail on
            return
        if self._done:
            return
        if HEADER in message:
            self._in_block = True
            return
        if not self._in_block:
            return
        found = pack_times(message.splitlines())
        if found:
            with self._lock_times:
                self._seconds.update(found)
        else:  # the block is over; staying attached (a removal while the logger loops could skip a handler)
            self._done = True

    def seconds(self) -> dict[str, float]:
        with self._lock_times:
            if not self._seconds:
                self._seconds.update(pack_times(_comfyui_log_lines()))
            return dict(self._seconds)


def _comfyui_log_lines() -> list[str]:
    """The lines still in ComfyUI's own log buffer (the last few hundred), or none outside ComfyUI."""
    try:
        from app.logger import get_logs
    except ImportError:
        return []
    return [line for entry in list(get_logs() or []) for line in str(entry.get("m", "")).splitlines()]
