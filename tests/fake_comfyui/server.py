"""A small, faithful stand-in for ComfyUI's `server.PromptServer`, for unit tests of the wiring.

The on_prompt chain behaves as ComfyUI's does: each handler gets the previous one's return value, and a
handler that raises is logged and skipped (its input passes on). The prompt queue's task_done pops the
running item and keeps it in history, and the user manager answers as ComfyUI's does without --multi-user
(with it: the `comfy-user` header, refused with KeyError when unknown).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from aiohttp import web


class ExecutionStatus(NamedTuple):
    status_str: str
    completed: bool
    messages: list


class PromptQueue:
    def __init__(self):
        self.queue: list = []
        self.currently_running: dict = {}
        self.history: dict = {}
        self._next = 0

    def put(self, item) -> None:
        self.queue.append(item)

    def get(self):
        item = self.queue.pop(0)
        self._next += 1
        self.currently_running[self._next] = item
        return item, self._next

    def task_done(self, item_id, history_result, status, process_item=None):
        prompt = self.currently_running.pop(item_id)
        self.history[prompt[1]] = {"prompt": prompt, "outputs": {}, "status": status._asdict() if status else None}


class UserManager:
    def __init__(self, multi_user: bool = False):
        self.multi_user = multi_user
        self.users = {"default": "default"}

    def get_request_user_id(self, request) -> str:
        user = "default"
        if self.multi_user and "comfy-user" in request.headers:
            user = request.headers["comfy-user"]
        if user not in self.users:
            raise KeyError("Unknown user: " + user)
        return user


class PromptServer:
    instance: "PromptServer | None" = None

    def __init__(self):
        PromptServer.instance = self
        self.routes = web.RouteTableDef()
        self.app = web.Application()
        self.prompt_queue = PromptQueue()
        self.user_manager = UserManager()
        self.on_prompt_handlers = []

    def add_on_prompt_handler(self, handler) -> None:
        self.on_prompt_handlers.append(handler)

    def trigger_on_prompt(self, json_data):
        for handler in self.on_prompt_handlers:
            try:
                json_data = handler(json_data)
            except Exception:
                logging.warning("[ERROR] An error occurred during the on_prompt_handler processing", exc_info=True)
        return json_data
