"""The two seams into ComfyUI's lifecycle: they change nothing ComfyUI does, even when our side fails."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from server import ExecutionStatus, PromptQueue, UserManager
from usage_stats.recording.outcomes import finished_from, queue_state, submission_middleware, wrap_task_done
from usage_stats.recording.settings import CONFIG_FIELDS, Config
from usage_stats.recording.writer import Finished, current_submission


def run_one(queue: PromptQueue, status) -> dict:
    queue.put((0, "prompt-1", {"1": {}}, {}, ["1"]))
    _, item_id = queue.get()
    queue.task_done(item_id, {"outputs": {}}, status=status)
    return queue.history["prompt-1"]


MESSAGES = [
    ("execution_start", {"prompt_id": "prompt-1", "timestamp": 1_000}),
    ("execution_cached", {"nodes": ["3", "4"], "prompt_id": "prompt-1", "timestamp": 1_010}),
    ("execution_success", {"prompt_id": "prompt-1", "timestamp": 3_500}),
]


def test_task_done_reports_how_the_prompt_ended_and_comfyui_keeps_its_history():
    queue, heard = PromptQueue(), []
    wrap_task_done(queue, heard.append)
    entry = run_one(queue, ExecutionStatus("success", True, MESSAGES))
    assert heard == [Finished("prompt-1", "success", exec_ms=2_500, cached_nodes=2)]
    assert entry["status"]["status_str"] == "success" and not queue.currently_running


def test_an_interrupted_prompt_is_interrupted_not_an_error():
    interrupted = [MESSAGES[0], ("execution_interrupted", {"prompt_id": "prompt-1", "timestamp": 1_200})]
    finished = finished_from((0, "prompt-1"), ExecutionStatus("error", False, interrupted))
    assert (finished.result, finished.exec_ms, finished.cached_nodes) == ("interrupted", 200, None)


def test_a_failing_listener_never_reaches_comfyui():
    queue = PromptQueue()

    def broken(_finished):
        raise RuntimeError("our bug")

    wrap_task_done(queue, broken)
    entry = run_one(queue, ExecutionStatus("success", True, MESSAGES))
    assert entry["prompt"][1] == "prompt-1"


def test_a_status_we_cannot_read_still_lets_comfyui_finish_the_prompt():
    queue, heard = PromptQueue(), []
    wrap_task_done(queue, heard.append)
    entry = run_one(queue, ExecutionStatus("success", True, "not a list of messages"))
    assert heard == [] and entry["status"]["status_str"] == "success"


def test_queue_state_counts_running_and_pending():
    queue = PromptQueue()
    queue.put((0, "a", {}, {}, []))
    queue.put((1, "b", {}, {}, []))
    queue.get()
    assert queue_state(queue) == {"running": 1, "pending": 1}
    assert queue_state(object()) == {"running": None, "pending": None}


class RecordingWriter:
    def __init__(self):
        self.config = Config(CONFIG_FIELDS)
        self.verdicts = []

    def on_verdict(self, submission, accepted):
        self.verdicts.append((submission.user, accepted))


def call(middleware, status: int, headers: dict):
    """POST /prompt through the middleware to a handler answering `status`; returns what the handler saw."""
    seen = {}

    async def handler(request):
        seen["submission"] = current_submission.get()
        return web.json_response({}, status=status)

    request = make_mocked_request("POST", "/prompt", headers=headers)
    response = asyncio.run(middleware(request, handler))
    assert response.status == status
    return seen["submission"]


def test_the_middleware_names_the_user_and_reports_comfyuis_answer():
    writer = RecordingWriter()
    middleware = submission_middleware(writer, UserManager(multi_user=True).get_request_user_id)
    assert call(middleware, 200, {"comfy-user": "default"}).user == "default"
    call(middleware, 400, {"comfy-user": "nobody-we-know"})  # ComfyUI's user manager raises KeyError
    assert writer.verdicts == [("default", True), ("default", False)]
    assert current_submission.get() is None


def test_with_tracking_off_the_middleware_only_passes_the_request_on():
    writer = RecordingWriter()
    writer.config.replace({**writer.config.as_dict(), "tracking": False})
    assert call(submission_middleware(writer, lambda request: "default"), 200, {}) is None
    assert writer.verdicts == []
