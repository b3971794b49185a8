"""What happened to each prompt after the hook saw it: who sent it, whether ComfyUI accepted it, how it ended.

Why a module of its own: ComfyUI has no lifecycle API for this (its on_prompt hook runs before validation and
gets neither the request nor the outcome), so the extension listens at two of ComfyUI's own seams and turns
what it hears into plain messages for the writer:
- a request middleware around `POST /prompt`: the user who sent it (the `comfy-user` header, as ComfyUI's
  user manager reads it) and ComfyUI's answer (200 = queued, anything else = rejected);
- a wrapper around the prompt queue's `task_done`: the execution messages ComfyUI stores with each prompt
  (success, error or interruption, its duration, the nodes served from cache).
Both call ComfyUI's own code exactly as before, and anything of ours that fails is logged once and skipped.
"""

from __future__ import annotations

from typing import Callable

from aiohttp import web

from ..domain.values import DEFAULT_USER
from ..support.logs import warn_once
from .writer import Finished, Submission, Writer, current_submission

PROMPT_PATHS = frozenset({"/prompt", "/api/prompt"})


def submission_middleware(writer: Writer, user_of: Callable[[web.Request], str]):
    """An aiohttp middleware that tells the hook who sent each prompt, and the writer what ComfyUI answered."""

    @web.middleware
    async def usage_stats_submissions(request: web.Request, handler):
        if request.method != "POST" or request.path not in PROMPT_PATHS or not writer.config["tracking"]:
            return await handler(request)
        submission = Submission(user=_user(request, user_of))
        token = current_submission.set(submission)
        accepted = False
        try:
            response = await handler(request)
            accepted = response.status == 200
            return response
        finally:
            current_submission.reset(token)
            writer.on_verdict(submission, accepted)

    return usage_stats_submissions


def _user(request: web.Request, user_of: Callable[[web.Request], str]) -> str:
    """The ComfyUI user of the request ("default" without --multi-user, or for a user ComfyUI does not know)."""
    try:
        return str(user_of(request))[:100]
    except Exception:  # KeyError for an unknown comfy-user header: ComfyUI still queues the prompt
        return DEFAULT_USER


def wrap_task_done(prompt_queue, on_finished: Callable[[Finished], None]) -> None:
    """Wrap `prompt_queue.task_done` (on the instance) so each finished prompt reaches `on_finished`.

    The queue item is read before ComfyUI's own task_done pops it; ComfyUI's call runs unchanged either way.
    """
    original = prompt_queue.task_done

    def task_done(item_id, *args, **kwargs):
        finished = None
        try:
            status = kwargs["status"] if "status" in kwargs else (args[1] if len(args) > 1 else None)
            finished = finished_from(prompt_queue.currently_running.get(item_id), status)
        except Exception as error:
            warn_once("task-done", "could not read how a prompt ended (%s)", error)
        result = original(item_id, *args, **kwargs)
        if finished is not None:
            try:
                on_finished(finished)
            except Exception as error:
                warn_once("task-done", "could not record how a prompt ended (%s)", error)
        return result

    prompt_queue.task_done = task_done


def finished_from(item, status) -> Finished | None:
    """Read a queue item `(number, prompt_id, prompt, …)` and its ExecutionStatus into a Finished message."""
    if item is None or status is None:
        return None
    messages = {event: data for event, data in status.messages if isinstance(data, dict)}
    if "execution_interrupted" in messages:
        result = "interrupted"
    else:
        result = "success" if status.status_str == "success" else "error"
    stamps = [data["timestamp"] for data in messages.values() if isinstance(data.get("timestamp"), (int, float))]
    started = messages.get("execution_start", {}).get("timestamp")
    exec_ms = int(max(stamps) - started) if isinstance(started, (int, float)) and stamps else None
    cached = messages.get("execution_cached", {}).get("nodes")
    return Finished(str(item[1]), result, exec_ms, len(cached) if isinstance(cached, list) else None)


def queue_state(prompt_queue) -> dict:
    """How many prompts ComfyUI is running and how many wait, read without taking the queue's lock."""
    try:
        return {"running": len(prompt_queue.currently_running), "pending": len(prompt_queue.queue)}
    except Exception as error:
        warn_once("queue-state", "could not read ComfyUI's queue (%s)", error)
        return {"running": None, "pending": None}
