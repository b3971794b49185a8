"""A small, faithful stand-in for ComfyUI's `execution.PromptQueue`, for unit tests of idle unload.

What idle unload relies on behaves as ComfyUI 0.3.75's does: one re-entrant `mutex` guards the queue, the
running items and the flags; `get` moves an item to `currently_running` and bumps `task_counter`;
`set_flag` stores a flag the worker reads (and clears) with `get_flags` after its next `get`.
"""

from __future__ import annotations

import heapq
import threading


class PromptQueue:
    def __init__(self, server=None):
        self.server = server
        self.mutex = threading.RLock()
        self.not_empty = threading.Condition(self.mutex)
        self.task_counter = 0
        self.queue = []
        self.currently_running = {}
        self.flags = {}

    def put(self, item) -> None:
        with self.mutex:
            heapq.heappush(self.queue, item)
            self.not_empty.notify()

    def get(self, timeout=None):
        with self.not_empty:
            while not self.queue:
                self.not_empty.wait(timeout=timeout)
                if timeout is not None and not self.queue:
                    return None
            item = heapq.heappop(self.queue)
            number = self.task_counter
            self.currently_running[number] = item
            self.task_counter += 1
            return item, number

    def task_done(self, item_id) -> None:
        with self.mutex:
            self.currently_running.pop(item_id)

    def get_tasks_remaining(self) -> int:
        with self.mutex:
            return len(self.queue) + len(self.currently_running)

    def set_flag(self, name, data) -> None:
        with self.mutex:
            self.flags[name] = data
            self.not_empty.notify()

    def get_flags(self, reset=True) -> dict:
        with self.mutex:
            if reset:
                flags, self.flags = self.flags, {}
                return flags
            return dict(self.flags)
