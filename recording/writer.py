"""The on_prompt hook and the one thread that writes: prompts leave the event loop here and reach SQLite.

Why a module of its own: the hook runs on ComfyUI's event loop before every prompt is even validated, so
it must cost O(1) and can never fail; all real work (introspection, pack mapping, SQL) happens on one
writer thread, in batches of one transaction each. Every other write (reset, first sightings, the legacy
import) is a task on the same thread, so there is exactly one writer and SQLite never sees two.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import Future
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Callable

from ..domain.tiers import Thresholds
from ..domain.values import DAY, DEFAULT_USER, UNKNOWN_PACKAGE, Outcome, PromptUse, storable
from ..mapper import ModelMapper, PackageMapper, as_it_runs
from ..support.logs import log, warn_once
from ..tracker import PRUNE_BATCH, UsageStore
from .settings import CONFIG_FIELDS, Config, restore

QUEUE_SIZE = 10_000
"""Prompts waiting for the writer; beyond this the hook drops (and counts) rather than block ComfyUI."""
PENDING_LIMIT = 100_000
"""Prompts the writer holds in memory while the database is locked by someone else."""
IDLE_SECONDS = 1.0
BATCH_WINDOW_SECONDS = 0.05
"""How long the writer gathers prompts into one batch: one transaction per burst, not per prompt, while
prompts arrive one by one (each transaction costs the event loop GIL time). While prompts keep coming the
writer gathers window after window, so a burst is written once it is over, not while its requests wait."""
MAX_GATHER_SECONDS = 0.25
"""The longest the writer gathers while messages keep coming (prompts, and the outcomes of a long queue as it
runs): under a steady stream prompts reach the disk this much later, a burst of ~100 requests is over by then."""
FULL_BATCH = QUEUE_SIZE // 2
"""Messages that make a batch worth writing at once, however fast more arrive (a backlog or a flood)."""
HAND_OVER_EVERY = 32
"""Messages the writer reads between two hand-overs of the interpreter. Reading a prompt is pure Python
(~30 µs): a batch read in one go would keep ComfyUI's event loop waiting for the GIL until Python forces a
switch (5 ms); handing over every 32 messages lets a waiting request in within about a millisecond."""
MAX_BACKOFF_SECONDS = 2.0
MODEL_VIEW_MAX_AGE_SECONDS = 1.0
"""How old the writer's view of the model folders may get before a batch re-reads them. A prompt naming a
file the view lacks re-reads them at once (ModelMapper.models_in), so a model added just now still counts."""
PRUNE_INTERVAL_SECONDS = 3600
"""How often the idle writer looks for prompt-log rows older than the retention window."""
VERDICT_WAIT_SECONDS = 60
"""How long a prompt waits for ComfyUI's verdict (accepted or rejected) before it counts as accepted:
a missing verdict is missing evidence, and counting the prompt keeps its items out of "safe to remove"."""
TRACKED_OUTCOMES = 20_000
"""Accepted prompts whose outcome the writer still waits for (the queue of a very busy ComfyUI)."""
_STOP = object()


class WriterBusy(RuntimeError):
    """The writer's queue is full: a task was not queued (nothing happened)."""


@dataclass
class Submission:
    """One POST /prompt as the request middleware sees it: who sent it, and the id the hook gave the prompt."""

    user: str = DEFAULT_USER
    prompt_id: str | None = None


current_submission: ContextVar[Submission | None] = ContextVar("usage_stats_submission", default=None)
"""Set by the request middleware around ComfyUI's /prompt handler, which calls the hook in the same task:
the hook's only way to learn the request's user (ComfyUI hands it the JSON body alone)."""


@dataclass(frozen=True)
class _Submitted:
    ts: float
    prompt: dict
    prompt_id: str
    user: str
    accepted: bool | None  # None: ComfyUI's verdict follows (from the middleware)


@dataclass(frozen=True)
class _Verdict:
    prompt_id: str
    accepted: bool


@dataclass(frozen=True)
class _Loaded:
    prompt_id: str
    key: tuple[str, str]


@dataclass(frozen=True)
class Finished:
    """How an accepted prompt ended, as ComfyUI's prompt queue reported it."""

    prompt_id: str
    result: str  # success | error | interrupted
    exec_ms: int | None = None
    cached_nodes: int | None = None


def database_path() -> str:
    """`user/__nodes_stats/usage_stats.db`: a system-user folder that ComfyUI's /userdata API cannot reach."""
    import folder_paths

    if hasattr(folder_paths, "get_system_user_directory"):
        folder = folder_paths.get_system_user_directory("nodes_stats")
    else:  # ComfyUI before system users: a folder that is not a user id is unreachable all the same
        folder = os.path.join(folder_paths.get_user_directory(), "__nodes_stats")
    return os.path.join(folder, "usage_stats.db")


def legacy_database_path() -> str:
    """Where the older Node Stats extension kept its database (reachable through /userdata: we only read it)."""
    import folder_paths

    return os.path.join(folder_paths.get_user_directory(), "nodes_stats", "usage_stats.db")


def open_store(clock: Callable[[], float] = time.time, machine: str | None = None) -> UsageStore:
    """Open our database; on its first creation, import an older Node Stats history if there is one.

    `machine`: the id this machine reports under into a shared store (recording/shared.py), if one is configured.
    """
    path, legacy = database_path(), legacy_database_path()
    is_new = not os.path.exists(path)
    store = UsageStore(path, clock, machine)
    if is_new and os.path.exists(legacy):
        try:
            store.import_legacy(legacy)
        except sqlite3.Error as error:
            warn_once("legacy-import", "could not import the old Node Stats history at %s (%s)", legacy, error)
    return store


class Writer:
    """Owns the prompt queue, the writer thread and the store it writes to."""

    def __init__(
        self,
        open_store: Callable[[], UsageStore],
        packages: PackageMapper,
        models: ModelMapper,
        clock: Callable[[], float] = time.time,
        queue_size: int = QUEUE_SIZE,
        config: Config | None = None,
        hand_over: Callable[[], None] = partial(time.sleep, 0),
    ):
        self._open_store = open_store
        self.config = config or Config(CONFIG_FIELDS)
        self.packages = packages
        self.models = models
        self._clock = clock
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._urgent = threading.Event()  # a task or the stop signal is queued: end the gathering now
        self._hand_over = hand_over
        """Gives other threads the interpreter (the GIL) for a moment; tests pass a recorder."""
        self._accepting = True
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.store: UsageStore | None = None
        self.unavailable: str | None = None
        self.resumed_at: int | None = None
        """When tracking was last turned back on (None: never paused): nothing ages from before it."""
        self.dropped = 0
        self.written = 0
        self._next_prune = 0.0
        self._noted_version = -1
        self._pending: list[tuple[str, PromptUse]] = []  # prompts with their verdict, not written yet
        self._awaiting_verdict: OrderedDict[str, tuple[float, PromptUse]] = OrderedDict()
        self._running: OrderedDict[str, tuple[PromptUse, int]] = OrderedDict()  # prompt id -> (use, log row)
        self._finished: dict[str, Finished] = {}  # outcomes whose prompt is not written yet
        self._loaded: OrderedDict[str, set] = OrderedDict()  # prompt id -> files ComfyUI loaded while it ran
        self._spellings: dict[str, str] = {}  # class_type -> storable(class_type)

    # ---- the hook (event loop)

    def on_prompt(self, json_data):
        """ComfyUI's on_prompt handler: enqueue the prompt and hand back exactly what came in.

        A prompt without an id (the key missing, or null) gets the uuid4 ComfyUI would have given it, so its
        outcome can be matched later; ComfyUI then uses that id (the newest one mints one for null as well).
        """
        try:
            if self._accepting and self.config["tracking"]:
                prompt = json_data.get("prompt")
                if isinstance(prompt, dict):
                    if json_data.get("prompt_id") is None:
                        json_data["prompt_id"] = str(uuid.uuid4())
                    submission = current_submission.get()
                    prompt_id = str(json_data["prompt_id"])
                    user, accepted = (submission.user, None) if submission else (DEFAULT_USER, True)
                    self._queue.put_nowait(_Submitted(self._clock(), prompt, prompt_id, user, accepted))
                    if submission:
                        submission.prompt_id = prompt_id
        except queue.Full:
            self.dropped += 1
            warn_once("queue-full", "the writer is behind; dropping prompts from the statistics (ComfyUI is unaffected)")
        except Exception as error:  # a malformed request body: not ours to judge, and never ours to fail
            warn_once("hook", "could not read a prompt (%s)", error)
        return json_data

    def on_verdict(self, submission: Submission, accepted: bool) -> None:
        """ComfyUI answered a POST /prompt: accepted (queued) or rejected (validation failed)."""
        if submission.prompt_id is not None:
            self._put_quietly(_Verdict(submission.prompt_id, accepted))

    def on_finished(self, finished: Finished) -> None:
        """An accepted prompt ended (called on ComfyUI's worker thread)."""
        if self.config["tracking"]:
            self._put_quietly(finished)

    def on_loaded(self, prompt_id: str, key: tuple[str, str]) -> None:
        """ComfyUI resolved or read a model file while this prompt ran (memory.LoadWatch, worker thread)."""
        if self.config["tracking"]:
            self._put_quietly(_Loaded(str(prompt_id), key))

    def _put_quietly(self, message) -> None:
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            warn_once("queue-full", "the writer is behind; dropping prompts from the statistics (ComfyUI is unaffected)")

    # ---- control (any thread)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="usage-stats-writer", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        """Prompts and tasks waiting for the writer thread."""
        return self._queue.qsize()

    def wait_ready(self, timeout: float) -> UsageStore | None:
        """The store once it is open, or None if it could not be opened (see `unavailable`)."""
        self._ready.wait(timeout)
        return self.store

    def submit(self, task: Callable[[UsageStore], object], wait_seconds: float = 0.0) -> Future:
        """Run `task(store)` on the writer thread after every prompt queued before it is written.

        A full queue fails the future with WriterBusy at once (a request answers 503, never blocking the event
        loop); a background thread that may wait for room says how long in `wait_seconds`.
        """
        future: Future = Future()
        if not self._accepting:
            future.set_exception(RuntimeError(self.unavailable or "the writer has stopped"))
            return future
        try:
            self._queue.put((task, future), timeout=wait_seconds) if wait_seconds else self._queue.put_nowait((task, future))
            self._urgent.set()
        except queue.Full:
            future.set_exception(WriterBusy("the statistics writer is busy with a burst of prompts; try again in a moment"))
        if self.unavailable:  # the store failed while this was being queued: nothing will ever run it
            self._fail_waiting_tasks()
        return future

    def flush(self, timeout: float = 5.0) -> None:
        """Block until everything queued so far is on disk."""
        self.submit(lambda store: None, wait_seconds=timeout).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, close the database and end the thread (called at interpreter exit)."""
        if self._thread is None or not self._thread.is_alive():
            return
        self._accepting = False
        try:
            self._queue.put(_STOP, timeout=timeout)
            self._urgent.set()
        except queue.Full:
            pass
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("[usage-stats] the writer did not finish within %.0f s; the last prompts may be missing", timeout)

    def reset(self) -> Future:
        """Forget every statistic, and every prompt and outcome still in flight from before (on the writer thread).

        A prompt queued before the reset may end after it; had its outcome been kept, it would add a success
        to the fresh rows without its prompt, and successes would outnumber prompts.
        """
        return self.submit(self._reset)

    def _reset(self, store: UsageStore) -> None:
        store.reset()
        self._pending.clear()
        self._awaiting_verdict.clear()
        self._running.clear()
        self._finished.clear()
        self._loaded.clear()

    def thresholds(self, now: int) -> Thresholds:
        """The configured thresholds; while tracking is off nothing ages, and after it resumes, only from then."""
        watched_since = self.resumed_at if self.config["tracking"] else now
        return Thresholds(self.config["consider_days"], self.config["safe_days"], watched_since)

    def save_config(self, values: dict) -> Future:
        """Queue the write of checked settings; turning tracking back on restarts every item's aging clock.
        Apply them (`apply_config`) once written."""
        return self.submit(partial(self._save_config, values))

    def _save_config(self, values: dict, store: UsageStore) -> None:
        if values["tracking"] and not self.config["tracking"]:
            self.resumed_at = store.now()
            store.save_settings("watch", {"resumed_at": self.resumed_at})
        store.save_settings("config", values)

    def apply_config(self, values: dict) -> None:
        """Make `values` the settings in force: the hook, the tracked model types and retention follow at once."""
        self.config.replace(values)
        self.models.choose_types(values["track_loras"], values["model_types"])
        self.prune_soon()

    # ---- the writer thread

    def _run(self) -> None:
        try:
            self.store = self._open_store()
            self.resumed_at = self.store.load_settings("watch").get("resumed_at")
            self.apply_config(restore(CONFIG_FIELDS, self.store.load_settings("config"), "config"))
        except Exception as error:
            self._accepting = False
            self.unavailable = f"the usage database could not be opened: {error}"
            log.warning("[usage-stats] %s; tracking is off until ComfyUI restarts", self.unavailable)
            self._fail_waiting_tasks()
            return
        finally:
            self._ready.set()
        try:
            self._loop(self.store)
        finally:
            self.store.close()

    def _fail_waiting_tasks(self) -> None:
        """No store, no task will ever run: fail the futures of those already queued, so no one waits on them."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if _is_task(item):
                item[1].set_exception(RuntimeError(self.unavailable))

    def _loop(self, store: UsageStore) -> None:
        backoff = 0.0
        self._note_installed(store)
        while True:
            items = self._take(timeout=backoff or IDLE_SECONDS)
            self._release_overdue_verdicts()
            if not items and not self._pending:
                self._note_listing_changes(store)
                self._prune_when_idle(store)
                continue
            stop = _STOP in items
            if items:
                self.models.refresh(max_age=MODEL_VIEW_MAX_AGE_SECONDS)
            for position, item in enumerate(items, 1):
                if item is not _STOP:
                    backoff = self._handle(store, item, backoff)
                if position % HAND_OVER_EVERY == 0:
                    self._hand_over()
            self._note_listing_changes(store)  # the view may have changed inside models_in
            backoff = self._write(store, backoff)
            if stop:
                return

    def _handle(self, store: UsageStore, item, backoff: float) -> float:
        """Take one message from the queue: a prompt, ComfyUI's verdict on it, how it ended, or a task."""
        if isinstance(item, _Submitted):
            use = self._extract(item)
            if item.accepted is None:
                self._awaiting_verdict[item.prompt_id] = (time.monotonic(), use)
            else:
                self._hold(item.prompt_id, use)
        elif isinstance(item, _Verdict):
            waiting = self._awaiting_verdict.pop(item.prompt_id, None)
            if waiting is not None:
                self._hold(item.prompt_id, _with_verdict(waiting[1], item.accepted))
        elif isinstance(item, Finished):
            waiting = self._awaiting_verdict.pop(item.prompt_id, None)
            if waiting is not None:  # it ran, so ComfyUI accepted it, whatever the verdict message says later
                self._hold(item.prompt_id, waiting[1])
            if self._knows(item.prompt_id):
                self._finished[item.prompt_id] = item  # else a prompt we never saw: queued by other code
        elif isinstance(item, _Loaded):
            if self._knows(item.prompt_id) or item.prompt_id in self._awaiting_verdict:
                self._loaded.setdefault(item.prompt_id, set()).add(item.key)
                while len(self._loaded) > TRACKED_OUTCOMES:
                    self._loaded.popitem(last=False)
        else:
            backoff = self._write(store, backoff)
            _run_task(store, *item)
        return backoff

    def _knows(self, prompt_id: str) -> bool:
        """A prompt the writer recorded or holds, whose outcome it waits for."""
        return prompt_id in self._running or any(p == prompt_id for p, _ in self._pending)

    def _hold(self, prompt_id: str, use: PromptUse) -> None:
        if len(self._pending) < PENDING_LIMIT:
            self._pending.append((prompt_id, use))
        else:
            self.dropped += 1
            warn_once("pending-full", "the database stayed locked too long; dropping prompts beyond %d", PENDING_LIMIT)

    def _release_overdue_verdicts(self) -> None:
        """Prompts whose verdict never came count as accepted (see VERDICT_WAIT_SECONDS)."""
        deadline = time.monotonic() - VERDICT_WAIT_SECONDS
        while self._awaiting_verdict:
            prompt_id, (since, use) = next(iter(self._awaiting_verdict.items()))
            if since > deadline:
                return
            del self._awaiting_verdict[prompt_id]
            self._hold(prompt_id, use)

    def _prune_when_idle(self, store: UsageStore) -> None:
        """Between prompts, delete prompt-log detail older than the retention window: one small batch per idle second."""
        now = self._clock()
        if now < self._next_prune:
            return
        try:
            deleted = store.prune_detail(int(now) - self.config["retention_days"] * DAY)
        except sqlite3.Error as error:
            warn_once("prune", "could not prune old prompt-log rows (%s); will try again later", error)
            deleted = 0
        if deleted < PRUNE_BATCH:  # caught up: look again in an hour
            self._next_prune = now + PRUNE_INTERVAL_SECONDS

    def prune_soon(self) -> None:
        """Apply a new retention window at the writer's next idle moment rather than within the hour."""
        self._next_prune = 0.0

    def _take(self, timeout: float) -> list:
        """Wait for one item, then gather: prompts arriving one by one, or in a burst, become one batch.

        The writer gathers until a window (BATCH_WINDOW_SECONDS) brings nothing new, MAX_GATHER_SECONDS pass
        or FULL_BATCH messages wait. It waits on `_urgent`, not on the queue: a prompt put meanwhile does not
        wake it (waking once per prompt took the GIL from the event loop in the middle of the very request
        that queued it), while a task (flush, reset) or the stop signal ends the gathering at once.
        """
        try:
            items = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        if not _is_urgent(items[0]):
            self._gather()
        self._urgent.clear()  # before draining: a task queued after this point sets it again for the next batch
        while len(items) < QUEUE_SIZE and not _is_urgent(items[-1]):
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _gather(self) -> None:
        """Let the queue fill while prompts keep coming (see `_take`)."""
        deadline = time.monotonic() + MAX_GATHER_SECONDS
        seen = -1
        while True:
            waiting = self._queue.qsize()
            if waiting == seen or waiting >= FULL_BATCH or time.monotonic() >= deadline:
                return
            seen = waiting
            if self._urgent.wait(BATCH_WINDOW_SECONDS):
                return

    def _write(self, store: UsageStore, backoff: float) -> float:
        """Store the pending prompts, then the outcomes now matched to a written prompt; returns the next backoff.

        While another process holds the write lock the prompts stay in memory and the writer retries,
        waiting longer each time: nothing is lost and nothing waits on the event loop.
        """
        try:
            if self._pending:
                self._store(store, self._pending)
            self._store_outcomes(store)
        except sqlite3.OperationalError as error:
            warn_once("locked", "the database is busy (%s); holding prompts in memory and retrying", error)
            return min(MAX_BACKOFF_SECONDS, max(0.05, backoff * 2))
        return 0.0

    def _store(self, store: UsageStore, pending: list) -> None:
        """Write the batch in one transaction. If SQLite rejects a prompt in it, write the others one by one
        and drop (and count) only the rejected ones. A busy database raises OperationalError to the caller;
        prompts already written have left `pending` by then, so only the rest is retried.
        """
        try:
            self._remember_rows(pending, store.record([use for _, use in pending]))
            pending.clear()
            return
        except sqlite3.OperationalError:
            raise
        except Exception as error:
            warn_once("unstorable", "could not store a prompt (%s); skipping it", error)
        while pending:
            try:
                self._remember_rows(pending[:1], store.record([pending[0][1]]))
            except sqlite3.OperationalError:
                raise
            except Exception:
                self.dropped += 1
            del pending[0]

    def _remember_rows(self, written: list, row_ids: list[int]) -> None:
        """Keep each accepted prompt's log row until its outcome arrives (bounded: the oldest are forgotten)."""
        self.written += len(row_ids)
        for (prompt_id, use), row_id in zip(written, row_ids, strict=True):
            if use.accepted:
                self._running[prompt_id] = (use, row_id)
        while len(self._running) > TRACKED_OUTCOMES:
            self._running.popitem(last=False)

    def _store_outcomes(self, store: UsageStore) -> None:
        """Write the outcomes whose prompt is on disk; the others wait for their prompt (or a restart)."""
        ready = [prompt_id for prompt_id in self._finished if prompt_id in self._running]
        if not ready:
            return
        outcomes = [Outcome(*self._running[p], self._finished[p].result, self._finished[p].exec_ms,
                            self._finished[p].cached_nodes, frozenset(self.models.known(self._loaded.pop(p, ()))))
                    for p in ready]
        store.record_outcomes(outcomes)
        for prompt_id in ready:
            del self._running[prompt_id], self._finished[prompt_id]

    def extract(self, ts: float, prompt: dict) -> PromptUse:
        """What one prompt used, read the way the hook's prompts are (the history import reads past prompts)."""
        return self._extract(_Submitted(ts, prompt, "", DEFAULT_USER, True))

    def _extract(self, submitted: _Submitted) -> PromptUse:
        """What one prompt used. Runs on the writer thread; a failure costs that prompt's details, nothing else."""
        nodes: dict[str, str] = {}
        models: set = set()
        referenced: set = set()
        try:
            package_of = self.packages.packages_by_class()  # once per prompt, not per node
            prompt = as_it_runs(submitted.prompt, package_of)
            for node in list(prompt.values()):
                class_type = node.get("class_type") if isinstance(node, dict) else None
                if isinstance(class_type, str):
                    nodes.setdefault(self._spelled(class_type), package_of.get(class_type, UNKNOWN_PACKAGE))
            found = self.models.models_in(prompt, submitted_at=submitted.ts)
            models, referenced = found.used, found.referenced
        except Exception as error:
            warn_once("extract", "could not read every model of a prompt (%s)", error, exc_info=True)
        return PromptUse(int(submitted.ts), nodes, frozenset(models), storable(submitted.user), submitted.accepted is not False,
                         frozenset(referenced))

    def _spelled(self, class_type: str) -> str:
        """storable(class_type), remembered: the same few node types come in every prompt."""
        spelled = self._spellings.get(class_type)
        if spelled is None:
            if len(self._spellings) >= QUEUE_SIZE:
                self._spellings.clear()
            spelled = self._spellings[class_type] = storable(class_type)
        return spelled

    def _note_listing_changes(self, store: UsageStore) -> None:
        """A listing a report or a prompt re-read since the last inventory: its new items are first seen now.

        Reports never write; they treat an item not yet noted as first seen at the time they are built.
        """
        if self.models.version != self._noted_version:
            self._note_installed(store)

    def _note_installed(self, store: UsageStore) -> None:
        """Record first sightings of what is installed now, so never-used items age from today, not earlier."""
        try:
            installed = self.models.installed()
            self._noted_version = self.models.version
            store.note_installed(
                packages=[p.name for p in self.packages.installed()],
                models=[(t, n) for t, names in installed.items() for n in names],
            )
        except Exception as error:
            warn_once("inventory", "could not take the inventory of installed items (%s)", error, exc_info=True)


def _is_task(item) -> bool:
    """A (task, future) pair from `submit`."""
    return isinstance(item, tuple) and isinstance(item[1], Future)


def _is_urgent(item) -> bool:
    return item is _STOP or _is_task(item)


def _with_verdict(use: PromptUse, accepted: bool) -> PromptUse:
    return dataclasses.replace(use, accepted=accepted)


def _run_task(store: UsageStore, task: Callable[[UsageStore], object], future: Future) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(task(store))
    except BaseException as error:
        future.set_exception(error)
