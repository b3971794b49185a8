"""A background job with progress that can be cancelled: the shape of every long read the user starts.

Why a module of its own: finding duplicates (hashing gigabytes) and importing history from past outputs
(reading thousands of images) take minutes, must never hold up ComfyUI's event loop or the writer thread,
and must report how far they got and stop when asked. One job of each kind runs at a time; starting it
again while it runs is refused, so a double click never hashes everything twice.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from .logs import warn_once


class Cancelled(Exception):
    """Raised inside a job's work when the user cancelled it."""


MAX_SKIPPED_LISTED = 100
"""Skipped files named in a job's status; beyond this they are only counted."""


class Progress:
    """What a running job reports: units done of a total (files, bytes) and the files it passed over, read by any thread."""

    def __init__(self, cancel: threading.Event):
        self._cancel = cancel
        self.done = 0
        self.total = 0
        self.unit = "files"
        self.skipped: list[dict] = []
        self.skipped_count = 0

    def skip(self, path: str, reason: str) -> None:
        """Report a file the job did not read, and why (a FIFO, a socket, an empty image...)."""
        self.skipped_count += 1
        if len(self.skipped) < MAX_SKIPPED_LISTED:
            self.skipped.append({"path": path, "reason": reason})

    def step(self, amount: int = 1) -> None:
        """Count progress, and stop the job here if it was cancelled."""
        self.done += amount
        self.check()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()


class Job:
    """Runs `work(progress)` on its own daemon thread; `status()` says where it is and what it found."""

    def __init__(self, name: str):
        self.name = name
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self.state = "idle"
        self.progress = Progress(self._cancel)
        self.result = None
        self.error: str | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None

    def start(self, work: Callable[[Progress], object]) -> bool:
        """Start unless already running; returns whether it started."""
        with self._lock:
            if self.state == "running":
                return False
            self._cancel.clear()
            self.progress = Progress(self._cancel)
            self.state, self.result, self.error = "running", None, None
            self.started_at, self.finished_at = time.time(), None
            self._thread = threading.Thread(target=self._run, args=(work,), name=f"usage-stats-{self.name}", daemon=True)
            self._thread.start()
            return True

    def cancel(self) -> bool:
        """Ask a running job to stop at its next step; returns whether one was running."""
        if self.state != "running":
            return False
        self._cancel.set()
        return True

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, work) -> None:
        try:
            result, state = work(self.progress), "done"
        except Cancelled:
            result, state = None, "cancelled"
        except Exception as error:  # a job's failure is reported, never raised into ComfyUI
            warn_once(f"job:{self.name}", "%s failed (%s)", self.name, error, exc_info=True)
            result, state, self.error = None, "failed", str(error)
        with self._lock:
            self.result, self.state, self.finished_at = result, state, time.time()

    def status(self) -> dict:
        return {
            "state": self.state,
            "progress": {"done": self.progress.done, "total": self.progress.total, "unit": self.progress.unit},
            "skipped": list(self.progress.skipped),
            "skipped_count": self.progress.skipped_count,
            "error": self.error,
            "result": self.result,
        }
