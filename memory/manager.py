"""What ComfyUI holds in memory, what loading it cost, and when to give it back.

Why a module of its own: it is the only part of the extension that reaches into ComfyUI's model management.
Three things live here:

- `LoadWatch` learns which file each loaded model came from and how long loading took. It wraps a few of
  ComfyUI's functions (`folder_paths.get_full_path` and `get_full_path_or_raise`, `comfy.utils.load_torch_file`,
  `ModelPatcher.__init__`, `model_management.load_models_gpu`); every wrapper calls the original with the same
  arguments and returns or raises exactly what it did, and our part runs in a guard that logs once and never
  raises. It is also the second witness of use: every model file ComfyUI resolves or reads while a node of a
  prompt executes is reported as loaded by that prompt (`on_used`). Calls outside a node's execution (the
  extension's own listing, sizes and hashing, ComfyUI's validation) have no executing prompt and never count.
- `UnloadPolicy` is pure arithmetic: a model's idle timeout (per kind, per-model override, night window) and
  when the next unload is due. Unit tests drive it with their own clock.
- `MemoryManager` reads ComfyUI's list of loaded models and, once ComfyUI has been idle past the shortest due
  timeout, asks ComfyUI's own prompt worker to unload, with the queue flags that `POST /free` sets. The worker
  reads them between prompts only, so nothing is unloaded during a prompt; the flags are set under the
  queue's lock and only while the queue is empty, so a prompt queued at that moment runs first.

ComfyUI 0.3.75 offers no way to unload one model between prompts from outside the worker thread, so a due
timeout unloads everything (the per-kind timeouts decide when, not what).
"""

from __future__ import annotations

import functools
import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Callable

from ..domain.values import normalise
from ..recording.settings import Config, Field, SettingsError, restore
from ..support.logs import log, warn_once

MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
POLL_SECONDS = 1.0
"""How often the manager looks at the queue and the loaded models: one cheap check, never during a prompt."""
RETRY_SECONDS = 30.0
"""An unload asked for but not done (the worker was busy, or failed) is asked for again after this long."""
MAX_KNOWN_PATHS = 10_000

KIND_BY_FOLDER = {
    # The kinds of loaded model with their own timeout (diffusion, text_encoder, vae, other), by folder type.
    "checkpoints": "diffusion", "diffusion_models": "diffusion", "unet": "diffusion",
    "text_encoders": "text_encoder", "clip": "text_encoder",
    "vae": "vae", "vae_approx": "vae",
}

UNLOAD_FIELDS = (
    Field("enabled", False, bool, help="Unload models once ComfyUI has been idle longer than their timeout."),
    Field("diffusion_seconds", 1800, int, 1, MAX_TIMEOUT_SECONDS, help="Idle timeout of diffusion models and checkpoints."),
    Field("text_encoder_seconds", 1800, int, 1, MAX_TIMEOUT_SECONDS, help="Idle timeout of text encoders (CLIP, T5...)."),
    Field("vae_seconds", 1800, int, 1, MAX_TIMEOUT_SECONDS, help="Idle timeout of VAEs."),
    Field("other_seconds", 1800, int, 1, MAX_TIMEOUT_SECONDS, help="Idle timeout of every other model."),
    Field("free_cache", True, bool, help="Also drop ComfyUI's cached node outputs, which is what gives RAM back."),
    Field("night_enabled", False, bool, help="Multiply every timeout during the night window (local time)."),
    Field("night_start_hour", 22, int, 0, 23, help="First hour of the night window."),
    Field("night_end_hour", 7, int, 0, 23, help="Hour the night window ends (it may wrap past midnight)."),
    Field("night_multiplier", 0.5, float, 0.05, 20, help="Factor on every timeout at night (0.5 halves them)."),
)
UNLOAD_GROUP = "unload"
OVERRIDE_FIELD = Field("timeout_seconds", None, int, 1, MAX_TIMEOUT_SECONDS)


def check_override(body) -> int | None:
    """The per-model timeout in a PUT body: {"timeout_seconds": 600}, or null to follow the type again."""
    if not isinstance(body, dict) or set(body) != {"timeout_seconds"}:
        raise SettingsError("timeout_seconds", 'send {"timeout_seconds": <seconds>} or {"timeout_seconds": null}')
    value = body["timeout_seconds"]
    return None if value is None else OVERRIDE_FIELD.check(value)


def kind_of(folder_type: str | None, class_path: str) -> str:
    """The kind of a loaded model: by its folder, except for a checkpoint file (it holds a diffusion model, a
    text encoder and a VAE) or an unknown file, which go by what the loaded object is."""
    if folder_type in KIND_BY_FOLDER and folder_type != "checkpoints":
        return KIND_BY_FOLDER[folder_type]
    path = class_path.lower()
    if path.startswith("comfy.model_base."):
        return "diffusion"
    if "clip_vision" in path:
        return "other"
    if "clip" in path or ".text_encoders." in path:
        return "text_encoder"
    if any(part in path for part in ("autoencoder", "taesd", ".vae")):
        return "vae"
    return KIND_BY_FOLDER.get(folder_type or "", "other")


# --------------------------------------------------------------------------- the policy (pure)


@dataclass(frozen=True)
class Loaded:
    """One model in memory, as the policy needs it."""

    key: tuple[str, str] | None  # (model type, file name), None when we could not tell its file
    kind: str
    last_used: float


class UnloadPolicy:
    """Timeouts and due times from the unload settings and the per-model overrides; no I/O, no clock of its own."""

    def __init__(self, values: dict, overrides: dict[tuple[str, str], int], local_hour: Callable[[float], int]):
        self.values = values
        self.overrides = overrides
        self._local_hour = local_hour

    def base_timeout(self, kind: str, key: tuple[str, str] | None) -> int:
        if key in self.overrides:
            return self.overrides[key]
        return self.values[f"{kind}_seconds"]

    def is_night(self, now: float) -> bool:
        if not self.values["night_enabled"]:
            return False
        start, end, hour = self.values["night_start_hour"], self.values["night_end_hour"], self._local_hour(now)
        if start == end:
            return False  # start == end is an empty window, not the whole day
        return start <= hour < end if start < end else hour >= start or hour < end

    def timeout(self, kind: str, key: tuple[str, str] | None, now: float) -> float:
        """Seconds of idleness after which this model should go, at time `now`."""
        factor = self.values["night_multiplier"] if self.is_night(now) else 1
        seconds = self.base_timeout(kind, key) * factor
        return int(seconds) if seconds == int(seconds) else round(seconds, 1)

    def due_at(self, model: Loaded, idle_since: float, now: float) -> float:
        """When this model is due: its timeout after ComfyUI last went idle or it was last used, whichever is later."""
        return max(idle_since, model.last_used) + self.timeout(model.kind, model.key, now)

    def next_unload(self, models: list[Loaded], idle_since: float, now: float) -> float | None:
        """When the next unload is due (it unloads all: see the module docstring), or None if never."""
        if not self.values["enabled"] or not models:
            return None
        return min(self.due_at(m, idle_since, now) for m in models)


def local_hour(ts: float) -> int:
    return time.localtime(ts).tm_hour


# --------------------------------------------------------------------------- watching loads (wraps ComfyUI)


@dataclass
class Origin:
    """The file a model object was built from, and how long reading it took."""

    key: tuple[str, str]
    read_seconds: float


@dataclass
class LoadRecord:
    """One model ComfyUI loaded: when, how long it took (file read + moving it to its device), last use."""

    origin: Origin | None
    loaded_at: float
    load_seconds: float
    last_used: float


def wrap(owner, name: str, before: Callable | None, after: Callable) -> None:
    """Replace owner.name by a wrapper that behaves exactly like it: same arguments, same result, same
    exceptions. `before(*args, **kwargs)` and `after(state, result, seconds, *args, **kwargs)` are ours: if
    they fail, one log line, and the original still runs and returns as if we were not there."""
    original = getattr(owner, name)
    if getattr(original, "__usage_stats_wrapped__", False):
        return

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        try:
            state = before(*args, **kwargs) if before else None
            ours = True
        except Exception as error:
            warn_once(f"wrap:{name}", "stopped watching %s (%s)", name, error, exc_info=True)
            state, ours = None, False
        started = time.perf_counter()
        result = original(*args, **kwargs)
        if ours:
            try:
                after(state, result, time.perf_counter() - started, *args, **kwargs)
            except Exception as error:
                warn_once(f"wrap:{name}", "stopped watching %s (%s)", name, error, exc_info=True)
        return result

    wrapper.__usage_stats_wrapped__ = True
    setattr(owner, name, wrapper)


class LoadWatch:
    """Which file each model object came from, and each load into memory with its cost.

    The file: a loader resolves a name (`get_full_path`), reads the file (`load_torch_file`) and builds a
    ModelPatcher, all while one node runs. The patcher's model is tagged with the file last read by that
    node (ComfyUI's executing context), so a patcher built later by another node is never tagged wrongly.
    The load: `load_models_gpu` adds models to `current_loaded_models`; the new entries after a call are
    the loads, and its duration (shared by size when one call loads several) is their cost.
    """

    def __init__(self, clock: Callable[[], float] = time.time, on_load: Callable | None = None):
        self._clock = clock
        self.on_load = on_load
        """Called with ((type, name), seconds, at) for each load of a known file, on ComfyUI's worker thread."""
        self.on_used: Callable[[str, tuple[str, str]], None] | None = None
        """Called with (prompt id, (type, name)) once per file a running prompt resolves or reads (worker thread)."""
        self._witnessed: tuple[object, set] = (None, set())  # (prompt id, files reported for it)
        self._executing = _executing_context_reader()  # the node running on this thread, if any
        self._paths: dict[str, tuple[str, str]] = {}
        self._keys: dict[tuple, tuple[str, str]] = {}  # (folder name, file name) as called -> (type, name)
        self._last_read = threading.local()
        self._origins: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model object -> Origin
        self._loads: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model object -> LoadRecord
        self._lock = threading.Lock()
        self.last_activity = 0.0
        """When ComfyUI last asked for a model (a prompt running): idleness is counted from after it."""

    def install(self) -> None:
        import comfy.model_management
        import comfy.model_patcher
        import comfy.utils
        import folder_paths

        wrap(folder_paths, "get_full_path", None, self._after_resolve)
        wrap(folder_paths, "get_full_path_or_raise", None, self._after_resolve)
        wrap(comfy.utils, "load_torch_file", None, self._after_read)
        wrap(comfy.model_patcher.ModelPatcher, "__init__", None, self._after_patcher)
        wrap(comfy.model_management, "load_models_gpu", self._before_load, self._after_load)

    # ---- the wrappers' halves (ComfyUI's threads)

    def _after_resolve(self, _state, full_path, _seconds, *args, **kwargs) -> None:
        """Remember which file a path is, and witness it for the running prompt. Runs on every resolve, so
        the (folder, name) -> key work is done once per name, not per call."""
        if not isinstance(full_path, str):
            return
        names = (args[0], args[1]) if len(args) >= 2 else _arguments(args, kwargs, "folder_name", "filename")
        key = self._keys.get(names)
        if key is None:
            folder_name, filename = names
            if not isinstance(folder_name, str) or not isinstance(filename, str):
                return
            import folder_paths

            if len(self._keys) >= MAX_KNOWN_PATHS:
                self._keys.clear()
            canonical = getattr(folder_paths, "map_legacy", lambda n: n)(folder_name)
            key = self._keys[names] = (canonical, normalise(filename))
        if len(self._paths) >= MAX_KNOWN_PATHS:
            self._paths.clear()
        self._paths[full_path] = key
        if self.on_used is not None:
            self._witness((key,))

    def _after_read(self, _state, _result, seconds, *args, **kwargs) -> None:
        (ckpt,) = _arguments(args, kwargs, "ckpt")
        key = self._paths.get(ckpt) if isinstance(ckpt, str) else None
        executing = self._executing()
        self._last_read.value = (executing, Origin(key, seconds) if key else None)
        if executing is not None and key is None and isinstance(ckpt, str):
            self._witness(_keys_of_path(ckpt))  # a file a node found by itself, without get_full_path

    def _witness(self, keys) -> None:
        """Report files resolved or read by the prompt executing on this thread, each once per prompt."""
        executing = self._executing() if self.on_used is not None else None
        if executing is None:
            return
        prompt_id, seen = self._witnessed
        if prompt_id != executing[0]:
            prompt_id, seen = self._witnessed = (executing[0], set())
        for key in keys:
            if key not in seen:
                seen.add(key)
                self.on_used(prompt_id, key)

    def _after_patcher(self, _state, _result, _seconds, patcher, *args, **kwargs) -> None:
        model = patcher.model
        last = getattr(self._last_read, "value", None)
        if model is None or last is None or last[1] is None or last[0] != self._executing():
            return
        with self._lock:
            self._origins.setdefault(model, last[1])

    def _before_load(self, *args, **kwargs) -> list:
        import comfy.model_management

        return list(comfy.model_management.current_loaded_models)  # keeps them alive: identities stay unique

    def _after_load(self, before: list, _result, seconds: float, models, *args, **kwargs) -> None:
        import comfy.model_management

        now = self._clock()
        self.last_activity = now
        with self._lock:
            for patcher in list(models):
                record = self._loads.get(getattr(patcher, "model", None))
                if record is not None:
                    record.last_used = now
            seen = {id(m) for m in before}
            new = [m for m in list(comfy.model_management.current_loaded_models) if id(m) not in seen and m.model is not None]
            sizes = [max(1, _size(m)) for m in new]
            for entry, size in zip(new, sizes, strict=True):
                model = entry.model.model
                origin = self._origins.get(model)
                first = model not in self._loads  # a reload of a model kept in RAM reads no file
                spent = seconds * size / sum(sizes) + (origin.read_seconds if origin and first else 0.0)
                self._loads[model] = LoadRecord(origin, now, spent, now)
                if origin is not None and self.on_load is not None:
                    self.on_load(origin.key, spent, now)

    # ---- reading (any thread)

    def loaded(self) -> list[dict]:
        """What ComfyUI holds now, most recently loaded first (ComfyUI's own order)."""
        import comfy.model_management

        rows = []
        for entry in list(comfy.model_management.current_loaded_models):
            patcher = entry.model
            model = getattr(patcher, "model", None)
            if model is None:
                continue
            with self._lock:
                record = self._loads.get(model)
                origin = record.origin if record else self._origins.get(model)
            class_path = f"{type(model).__module__}.{type(model).__qualname__}"
            key = origin.key if origin else None
            device = getattr(entry, "device", None)
            rows.append({
                "model_type": key[0] if key else None,
                "model_name": key[1] if key else None,
                "class_name": type(model).__name__,
                "kind": kind_of(key[0] if key else None, class_path),
                "device": str(device),
                "memory": "RAM" if getattr(device, "type", "cpu") == "cpu" else "VRAM",
                "size_bytes": _size(entry),
                "loaded_bytes": _loaded_size(patcher),
                **_dynamic_fields(patcher),
                "loaded_at": record.loaded_at if record else None,
                "load_seconds": round(record.load_seconds, 3) if record else None,
                "last_used": record.last_used if record else None,
            })
        return rows


def _arguments(args: tuple, kwargs: dict, *names: str) -> tuple:
    """The first len(names) arguments of a call, however they were passed (None when absent)."""
    return tuple(args[i] if i < len(args) else kwargs.get(name) for i, name in enumerate(names))


def _executing_context_reader() -> Callable[[], tuple | None]:
    """A function answering: (prompt id, node id) of the node running on this thread, or None outside a node
    (or in a ComfyUI without execution contexts). ComfyUI's import is done once: it runs on every resolve."""
    try:
        from comfy_execution.utils import get_executing_context
    except ImportError:
        return lambda: None

    def executing():
        context = get_executing_context()
        return (context.prompt_id, context.node_id) if context is not None else None

    return executing


def _keys_of_path(path: str) -> list[tuple[str, str]]:
    """(type, name) of a file by the folders ComfyUI lists for each type (every type whose folder holds it)."""
    import folder_paths

    canonical = getattr(folder_paths, "map_legacy", lambda n: n)
    real = os.path.realpath(path)
    keys = []
    for model_type, (folders, _extensions) in list(folder_paths.folder_names_and_paths.items()):
        for folder in folders:
            root = os.path.realpath(folder)
            if real.startswith(root + os.sep):
                keys.append((canonical(model_type), normalise(os.path.relpath(real, root))))
    return keys


def _size(entry) -> int:
    try:
        return int(entry.model_memory())
    except Exception:
        return 0


def _loaded_size(patcher) -> int:
    try:
        return int(patcher.loaded_size())
    except Exception:
        return 0


def _dynamic_fields(patcher) -> dict:
    """What the figures mean under the newest ComfyUI's dynamic VRAM (ModelPatcherDynamic, comfy-aimdo).

    There `device` is the GPU even while most weights sit in pinned RAM and stream in while sampling, and a
    memory-mapped file "loads" in no time: `loaded_bytes` is what is resident on the device, `ram_bytes` what
    is held in RAM, and `load_is_lazy` says the load time does not include reading the weights.
    """
    try:
        dynamic = bool(patcher.is_dynamic())
    except Exception:  # a ComfyUI (or a pack's patcher) without dynamic VRAM
        dynamic = False
    try:
        ram_bytes = int(patcher.loaded_ram_size())
    except Exception:
        ram_bytes = None
    return {"dynamic": dynamic, "ram_bytes": ram_bytes, "load_is_lazy": dynamic}


# --------------------------------------------------------------------------- the manager


class MemoryManager:
    """Idle unload on its own thread: watches ComfyUI's queue once a second and asks the worker to unload."""

    def __init__(self, watch: LoadWatch, prompt_queue, clock: Callable[[], float] = time.time,
                 local_hour: Callable[[float], int] = local_hour):
        self.watch = watch
        watch.on_load = self._note_load
        self.queue = prompt_queue
        self._clock = clock
        self._local_hour = local_hour
        self.config = Config(UNLOAD_FIELDS)
        self.overrides: dict[tuple[str, str], int] = {}
        self.idle_since = clock()
        self._seen_tasks = None
        self._asked_at: float | None = None
        self.unloads = 0
        self.last_unload: float | None = None
        self._watching = False
        self._watching_lock = threading.Lock()
        self.writer = None
        self.ready = threading.Event()
        """Set once the stored settings are in place: a change made before that would be overwritten."""

    def restore(self, stored: dict, overrides: dict[tuple[str, str], int]) -> None:
        """Settings as stored, each checked again (an older version may have written them)."""
        self.config.replace(restore(UNLOAD_FIELDS, stored, UNLOAD_GROUP))
        self.overrides = dict(overrides)

    def _note_load(self, key: tuple[str, str], seconds: float, at: float) -> None:
        """Called on ComfyUI's worker thread: hands the load to the writer (a non-blocking queue put)."""
        if self.writer is not None:
            (model_type, model_name), when = key, int(at)
            self.writer.submit(lambda store: store.record_load(model_type, model_name, seconds, when))

    def policy(self) -> UnloadPolicy:
        return UnloadPolicy(self.config.as_dict(), dict(self.overrides), self._local_hour)

    def start(self, writer) -> None:
        """Restore the stored settings once the database is open (on the writer thread), then watch if idle
        unload is on. No thread of ours runs while it is off."""
        self.writer = writer
        writer.submit(self._restore_stored).add_done_callback(self._settled)

    def _restore_stored(self, store) -> None:
        self.restore(store.load_settings(UNLOAD_GROUP), store.unload_overrides())

    def _settled(self, restored) -> None:
        """The stored settings are in place (or, without a database, the defaults stay): changes may come."""
        if restored.exception() is not None and not self.writer.unavailable:  # else the writer said why, once
            warn_once("unload-settings", "could not read the unload settings (%s); idle unload stays off", restored.exception())
        self.ready.set()
        self.apply()

    def apply(self) -> None:
        """Start the watcher if idle unload is on and it is not running (it ends by itself once turned off)."""
        with self._watching_lock:
            if self.config["enabled"] and not self._watching:
                self._watching = True
                threading.Thread(target=self._watch, name="usage-stats-memory", daemon=True).start()

    def _watch(self) -> None:
        """Look once a second while idle unload is on (a daemon thread: it holds nothing that needs closing)."""
        while True:
            time.sleep(POLL_SECONDS)
            with self._watching_lock:
                if not self.config["enabled"]:
                    self._watching = False
                    return
            try:
                self.tick()
            except Exception as error:  # never the end of the thread: look again next second
                warn_once("memory-tick", "idle unload check failed (%s); will try again", error, exc_info=True)

    # ---- the decision (the manager's thread; tests call it with their clock)

    def is_busy(self) -> bool:
        """Something runs or waits in ComfyUI's queue; a change of its task counter means a prompt ran since."""
        counter = getattr(self.queue, "task_counter", None)
        ran = counter != self._seen_tasks
        self._seen_tasks = counter
        return ran or self.queue.get_tasks_remaining() > 0

    def tick(self) -> bool:
        """One look: True if an unload was asked for now."""
        now = self._clock()
        if self.is_busy():
            self.idle_since, self._asked_at = now, None  # a new round: its unload is asked for afresh
            return False
        self.idle_since = max(self.idle_since, self.watch.last_activity)
        if not self.config["enabled"]:
            return False
        models = self.loaded_for_policy()
        due = self.policy().next_unload(models, self.idle_since, now)
        if due is None or now < due:
            return False
        if self._asked_at is not None and now - self._asked_at < RETRY_SECONDS:
            return False  # asked already; the worker unloads between prompts, or we ask again later
        return self.unload(reason="idle")

    def loaded_for_policy(self) -> list[Loaded]:
        return [_as_loaded(row) for row in self.watch.loaded()]

    def unload(self, reason: str) -> bool:
        """Ask ComfyUI's worker to unload every model, as POST /free does, only if the queue is empty now.

        The check and the flags happen under the queue's own lock, so no prompt slips in between; the worker
        reads the flags after its next `get` and, if a prompt arrived meanwhile, runs that prompt first.
        """
        try:
            with self.queue.mutex:
                if self.queue.get_tasks_remaining() > 0:
                    return False
                self.queue.set_flag("unload_models", True)
                if self.config["free_cache"]:
                    self.queue.set_flag("free_memory", True)
        except Exception as error:
            warn_once("unload", "could not ask ComfyUI to unload models (%s); will try again later", error)
            self._asked_at = self._clock()
            return False
        self._asked_at = self.last_unload = self._clock()
        self.unloads += 1
        log.info("[usage-stats] asked ComfyUI to unload its models (%s)", reason)
        return True

    # ---- reading (routes)

    def status(self) -> dict:
        """What is loaded, each model's due time, and when the next unload happens (None: never)."""
        now = self._clock()
        policy = self.policy()
        rows = self.watch.loaded()
        for row in rows:
            loaded = _as_loaded(row)
            row["timeout_seconds"] = policy.timeout(loaded.kind, loaded.key, now)
            row["unload_at"] = policy.due_at(loaded, self.idle_since, now) if policy.values["enabled"] else None
        due = [r["unload_at"] for r in rows if r["unload_at"] is not None]
        return {
            "enabled": policy.values["enabled"],
            "now": now,
            "idle_since": self.idle_since,
            "busy": self.queue.get_tasks_remaining() > 0,
            "night": policy.is_night(now),
            "next_unload": min(due) if due else None,
            "unloads": self.unloads,
            "last_unload": self.last_unload,
            "models": rows,
        }


def _as_loaded(row: dict) -> Loaded:
    """A row of LoadWatch.loaded() as the policy reads it."""
    key = (row["model_type"], row["model_name"]) if row["model_type"] is not None else None
    return Loaded(key, row["kind"], row["last_used"] or 0.0)


def start_memory(prompt_server, writer) -> MemoryManager | None:
    """Watch loads and run idle unload; None (with one log line) where ComfyUI's model management differs."""
    try:
        watch = LoadWatch()
        watch.on_used = writer.on_loaded
        manager = MemoryManager(watch, prompt_server.prompt_queue)
        watch.install()
    except Exception as error:
        warn_once("memory", "not watching loaded models (%s); usage tracking carries on", error, exc_info=True)
        return None
    manager.start(writer)
    return manager
