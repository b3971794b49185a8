"""What ComfyUI has installed, which pack each node type comes from, and which model files a prompt uses.

Everything ComfyUI-specific about *reading* the install lives here, so the storage and the rules in
domain/ stay plain Python. All of it runs on the writer thread or in a route's executor, never on the
hook path. ComfyUI's modules are imported inside the methods: importing this file outside ComfyUI works.
"""

from __future__ import annotations

import copy
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Iterable

from .domain import switches
from .domain.values import BUILTIN_PACKAGE, InstalledPackage, normalise, storable
from .support.files import model_path, open_regular
from .support.logs import warn_once

NOT_MODEL_TYPES = frozenset({"loras", "configs", "custom_nodes", "temp", "output", "input"})
"""Folder types that are not tracked: LoRAs by the design's default, the rest are not model files."""

CORE_MODEL_TYPES = frozenset({
    "checkpoints", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision", "style_models", "embeddings",
    "diffusers", "vae_approx", "controlnet", "gligen", "upscale_models", "latent_upscale_models", "hypernetworks",
    "photomaker", "classifiers", "model_patches", "audio_encoders", "background_removal", "frame_interpolation",
    "geometry_estimation", "optical_flow", "detection",
})
"""ComfyUI's own folder types of models (0.3.75 and the newest): model types whatever extensions they list."""
MODEL_EXTENSIONS = frozenset({".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl", ".gguf", ".onnx"})
"""File extensions of model weights. Any other folder type is a model type only when it lists these files:
the newest ComfyUI registers `datasets` (every file) and packs register `fonts` (.ttf), which are not models."""

PROTECTED_PACKS = frozenset({"comfyui-manager"})
"""Packs (lower-case folder names) never suggested for removal, besides this extension itself."""
MANAGER_PROJECT = "comfyui-manager"
"""ComfyUI-Manager's `[project] name` in its pyproject.toml (compared normalised, as pip compares names)."""
MANAGER_MODULES = ("glob/manager_server.py", "comfyui_manager/glob/manager_server.py", "cm-cli.py")
"""Files only ComfyUI-Manager ships: its server module (in the folder layout and in the package layout) and its CLI."""
MAX_PYPROJECT_BYTES = 1 << 20

TAESD_VALUES = ("taesd", "taesdxl", "taesd3", "taef1")
"""VAELoader values that stand for an encoder/decoder pair of files in vae_approx, not a listed file, when
ComfyUI does not say (its `nodes.VAELoader.image_taes` does, and the newest lists more: taef2, taeqi2_1)."""
LORA_TAG = re.compile(r"<lora:([^:<>]+)((?::[^:<>]*)*)>", re.IGNORECASE)
"""`<lora:NAME>`, `<lora:NAME:W>` or `<lora:NAME:W:W>` in prompt text, as LoRA-syntax nodes read it."""
MAX_VALUE_DEPTH = 8
MAX_VALUE_ITEMS = 512
"""How deep and how many items of one dict or list input value are read: real ones hold a few entries."""
MAX_LAYOUTS = 4096
"""Distinct sets of input names whose switch layout (switches.siblings) is remembered."""
MAX_GROUP_ROWS = 20
"""The rows a V3 DynamicGroup may have (its _MaxRows in comfy_api/latest/_io.py)."""

EMBEDDING_REF = re.compile(r"(?:^|[\s,(])embedding:([^\s,()]+?)(?::[\d.]+)?(?=[\s,()]|$)")
"""`embedding:NAME` at a word start; a weight such as `(embedding:NAME:1.2)` is not part of NAME."""
EMBEDDING_EXTENSIONS = (".safetensors", ".pt", ".bin")
RESOLVED_CACHE_SIZE = 50_000
"""Distinct (class, input, value) choices remembered between listing changes; beyond this the memo restarts."""


# --------------------------------------------------------------------------- packages


class PackageMapper:
    """Maps class_types to packs and lists the packs on disk, loaded or not."""

    def __init__(self, own_pack: str):
        self.own_pack = own_pack
        self._mapping: dict[str, str] = {}
        self._mapped_count = -1
        self._refusals: dict[str, str | None] = {}  # a pack's path -> why ComfyUI refused it; fixed at start

    def packages_by_class(self) -> dict[str, str]:
        """class_type -> pack for every registered node; rebuilt when ComfyUI registers more nodes."""
        import nodes

        mappings = nodes.NODE_CLASS_MAPPINGS
        if len(mappings) != self._mapped_count:
            dirs = _custom_node_dirs()
            self._mapping = {ct: _package_of(cls, dirs) for ct, cls in list(mappings.items())}
            self._mapped_count = len(mappings)
        return self._mapping

    def installed(self) -> list[InstalledPackage]:
        """Every pack in the custom_nodes folders: loaded, failed to import, or disabled."""
        loaded = _loaded_packs()
        node_types: dict[str, list[str]] = {}
        for class_type, package in self.packages_by_class().items():
            node_types.setdefault(package, []).append(class_type)
        packs = {name: InstalledPackage(name, sorted(node_types.get(name, []))) for name in loaded}
        folders = dict(loaded)
        for name, state, path in _packs_on_disk():
            folders.setdefault(name, path)
            if name in packs:
                continue
            refused = self._refusal(path) if state == "failed" else None
            packs[name] = InstalledPackage(
                name, disabled=state == "disabled", import_failed=state == "failed" and not refused, refused=refused
            )
        for pack in packs.values():
            pack.protected = self.is_protected(folders[pack.name])
        return sorted(packs.values(), key=lambda p: p.name.lower())

    def _refusal(self, path: str) -> str | None:
        """Asked once per pack: ComfyUI decided at start, and asking may hash the pack's files."""
        if path not in self._refusals:
            self._refusals[path] = _refusal_of(path)
        return self._refusals[path]

    def is_protected(self, pack: str) -> bool:
        """Whether a pack (its name, or its path in custom_nodes) manages or observes the install: ComfyUI-Manager
        and this extension are never suggested for removal, nor disabled from here."""
        name = os.path.basename(pack)
        return name == self.own_pack or name.lower() in PROTECTED_PACKS or is_comfyui_manager(pack)


def is_comfyui_manager(pack_path: str) -> bool:
    """Whether the pack folder at `pack_path` is ComfyUI-Manager, whatever the folder is called.

    A GitHub zip extracts to `ComfyUI-Manager-main`, and users rename folders; the manager is still what
    installs and repairs every other pack, so it is recognised by what it is: its pyproject.toml name or
    a module only it ships. A false match only protects a pack, never exposes one.
    """
    if not os.path.isdir(pack_path):
        return False
    return _project_name(pack_path) == MANAGER_PROJECT or any(
        os.path.isfile(os.path.join(pack_path, *module.split("/"))) for module in MANAGER_MODULES
    )


def _project_name(pack_path: str) -> str | None:
    """The `[project] name` of the pack's pyproject.toml, normalised (lower case, runs of -_. as one -)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the module layout alone decides
        return None
    try:
        with open_regular(os.path.join(pack_path, "pyproject.toml")) as handle:
            project = tomllib.loads(handle.read(MAX_PYPROJECT_BYTES).decode("utf-8")).get("project")
    except (OSError, ValueError):
        return None
    name = project.get("name") if isinstance(project, dict) else None
    return re.sub(r"[-_.]+", "-", name).lower() if isinstance(name, str) else None


def _custom_node_dirs() -> list[str]:
    import folder_paths

    return [os.path.normpath(os.path.abspath(d)) for d in folder_paths.get_folder_paths("custom_nodes")]


def _package_of(cls, custom_dirs: list[str]) -> str:
    """ComfyUI stamps RELATIVE_PYTHON_MODULE = 'custom_nodes.<pack>' on what it loads; core classes lack it.

    A class a pack slipped into NODE_CLASS_MAPPINGS by hand has no stamp, but its module name is the
    pack's path (with '.' written as '_x_'), which still names the pack.
    """
    module = getattr(cls, "RELATIVE_PYTHON_MODULE", None)
    if isinstance(module, str) and module.startswith("custom_nodes."):
        return storable(module.split(".", 1)[1])
    module_path = getattr(cls, "__module__", "") or ""
    for directory in custom_dirs:
        if module_path.startswith(directory + os.sep):
            return storable(module_path[len(directory) + 1 :].split(".", 1)[0].replace("_x_", "."))
    return BUILTIN_PACKAGE


def _loaded_packs() -> dict[str, str]:
    """Pack name -> its path, for the packs ComfyUI imported. ComfyUI keys folder packs by name (with the
    folder as value) and single-file ones by full path minus .py."""
    import nodes

    custom_dirs = set(_custom_node_dirs())
    packs = {}
    for key, directory in list(nodes.LOADED_MODULE_DIRS.items()):
        if os.path.isabs(key):
            parent, name, path = os.path.dirname(key), os.path.basename(key), key + ".py"
        else:
            parent, name, path = os.path.dirname(directory), key, directory
        if os.path.normpath(parent) in custom_dirs:
            packs[storable(name)] = path
    return packs


def _packs_on_disk() -> Iterable[tuple[str, str, str]]:
    """(name, "disabled" | "failed", path) for every pack entry in the custom_nodes folders.

    ComfyUI skips `__pycache__`, non-.py files and any name ending in `.disabled` (which also covers
    ComfyUI-Manager's `custom_nodes/.disabled/` folder, whose entries may carry an `@version` suffix).
    Any other entry is "failed" unless the caller finds it among the loaded packs.
    """
    skipped_by_flag = _skipped_by_disable_all_flag()
    for directory in _custom_node_dirs():
        for entry in _listdir(directory):
            path = os.path.join(directory, entry)
            if entry == ".disabled" and os.path.isdir(path):
                for inner in _listdir(path):
                    yield _pack_name(inner.split("@", 1)[0]), "disabled", os.path.join(path, inner)
            elif entry.endswith(".disabled"):
                yield _pack_name(entry[: -len(".disabled")]), "disabled", path
            elif entry == "__pycache__" or entry.startswith(".") or (os.path.isfile(path) and not entry.endswith(".py")):
                continue
            else:
                name = _pack_name(entry)
                yield name, "disabled" if skipped_by_flag(entry) else "failed", path


def _pack_name(entry: str) -> str:
    return storable(entry[:-3] if entry.endswith(".py") else entry)


def _listdir(directory: str) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []


def _skipped_by_disable_all_flag():
    """`--disable-all-custom-nodes` skips every pack not named in `--whitelist-custom-nodes`: disabled, not broken."""
    try:
        from comfy.cli_args import args
    except Exception:
        return lambda entry: False
    if not getattr(args, "disable_all_custom_nodes", False):
        return lambda entry: False
    allowed = set(getattr(args, "whitelist_custom_nodes", None) or [])
    return lambda entry: entry not in allowed


def _refusal_of(path: str) -> str | None:
    """Why the newest ComfyUI refused to load the pack at `path`, or None.

    Before importing a pack it asks `app.governance.pack_refusal(path)` (an organisation's policy) and, under
    `--enable-manager`, the built-in manager's `comfyui_manager.should_be_disabled(path)` (nodes.py
    init_external_custom_nodes); a refused pack never ran, so it did not fail. ComfyUIs without these seams
    refuse nothing; a check that raises refuses nothing either (one log line).
    """
    try:
        return _governance_refusal(path) or _manager_refusal(path)
    except Exception as error:  # their code, our report
        warn_once("refusal", "could not ask ComfyUI whether it refused a pack (%s)", error)
        return None


def _governance_refusal(path: str) -> str | None:
    try:
        from app import governance
    except ImportError:
        return None
    return governance.pack_refusal(path)


def _manager_refusal(path: str) -> str | None:
    from comfy.cli_args import args

    if not getattr(args, "enable_manager", False):
        return None
    import comfyui_manager

    return "blocked by the manager's policy" if comfyui_manager.should_be_disabled(path) else None


# --------------------------------------------------------------------------- models


def as_it_runs(prompt: dict, registered: dict) -> dict:
    """The prompt as ComfyUI will run it, for recording what runs rather than what was asked for.

    The newest ComfyUI swaps node types it retired for their successors after the on_prompt handlers ran
    (server.py post_prompt calls node_replace_manager.apply_replacements), so the prompt we were handed may
    name a type that will never run. When one does, its entries are swapped the same way, by ComfyUI's own
    manager, on a copy: the prompt ComfyUI is about to validate is never touched.
    """
    manager = _node_replacements()
    if manager is None or not any(_is_replaced(node, registered, manager) for node in prompt.values()):
        return prompt
    running = copy.deepcopy(prompt)
    manager.apply_replacements(running)
    return running


def _node_replacements():
    """ComfyUI's node replacement manager (None before it existed, or outside ComfyUI)."""
    try:
        from server import PromptServer
    except ImportError:
        return None
    return getattr(PromptServer.instance, "node_replace_manager", None)


def _is_replaced(node, registered: dict, manager) -> bool:
    class_type = node.get("class_type") if isinstance(node, dict) else None
    return isinstance(class_type, str) and class_type not in registered and manager.has_replacement(class_type)


@dataclass(frozen=True)
class ComboInput:
    """A node input that offers a list of choices, with the folder types its choices came from.

    `offered` ranks the tracked types by how many of the input's choices they hold, best first: it decides
    which type a name means when the same name exists in two folder types. `open_ended` is true when the
    input listed no choices at all (an empty folder, or options the frontend fetches), so it may still
    name a model file.
    """

    offered: tuple[tuple[str, int], ...]
    open_ended: bool = False
    requires: tuple[tuple[tuple[str, str], ...], ...] = ()
    """When ComfyUI reads this input: any of these chains of (input, option) pairs holds (none: always). A
    model picker nested in a V3 DynamicCombo is read only while the combo shows its option."""
    needs_images: tuple[str, ...] = ()
    """The optional image inputs of its own stack entry (switches.py): with none connected it is not applied."""


@dataclass(slots=True)
class Found:
    """The model files one prompt names: `used` (the node loads them) and `referenced` (switched off)."""

    used: set[tuple[str, str]]
    referenced: set[tuple[str, str]]
    missed: bool = False  # it named a possible model file this view of the folders lacks

    def add(self, keys, off: bool) -> None:
        (self.referenced if off else self.used).update(keys)

    def settled(self) -> "Found":
        """Used wins: a file one node loads is used, whatever another node of the prompt switched off."""
        self.referenced -= self.used
        return self


class ModelMapper:
    """Finds the model files a prompt selects, by introspecting each node's inputs against folder_paths."""

    def __init__(self, excluded_types: Iterable[str] = NOT_MODEL_TYPES):
        self.excluded_types = frozenset(excluded_types)
        self.only_types: frozenset[str] | None = None
        self._listings: dict[str, list[str]] = {}
        self._raw_listings: dict[str, tuple[list[str], list[str]]] = {}  # type -> (ComfyUI's names, ours)
        self._model_extensions: frozenset[str] = frozenset()
        self._read_at = float("-inf")  # monotonic, for max_age
        self._read_wall = float("-inf")  # Unix time, to compare with when a prompt was submitted
        self._owners: dict[str, tuple[str, ...]] = {}
        self._embedding_keys: dict[str, tuple[str, ...]] = {}
        self._combos: dict[str, dict[str, ComboInput]] = {}  # class_type -> input name -> its choices
        self._resolved: dict[tuple[str, str, str], set[tuple[str, str]]] = {}
        self._loose: dict[str, tuple[tuple[str, str], ...]] | None = None  # built on first need
        self._layouts: dict[tuple[str, ...], dict | None] = {}  # input names -> entry -> siblings (_layout)
        self._taesd: tuple[str, ...] = TAESD_VALUES
        self.version = 0
        """Bumped whenever a listing changes: a cache key for reports built from the listings."""
        self._lock = threading.RLock()  # the writer extracts while route threads list

    def model_types(self) -> list[str]:
        """Every folder type ComfyUI knows that holds models (custom-node types included), aliases folded.

        A type a pack registers holds models when its extensions are model extensions; with no extensions
        (it lists every file) only when its folders lie in ComfyUI's models folder, and then only its model
        files are listed (`_model_files_only`). Anything else (datasets, fonts, wildcards) never becomes a
        model: never listed, never counted on disk, never offered for quarantine.
        """
        import folder_paths

        canonical = getattr(folder_paths, "map_legacy", lambda name: name)
        types = {canonical(t) for t, entry in list(folder_paths.folder_names_and_paths.items())
                 if _holds_models(canonical(t), entry, folder_paths)}
        return sorted(t for t in types if t == "loras" or t not in NOT_MODEL_TYPES)

    def tracked_types(self) -> list[str]:
        """The model types this mapper tracks: every one but the excluded, or only the chosen ones."""
        chosen = self.only_types
        return [t for t in self.model_types() if t not in self.excluded_types and (chosen is None or t in chosen)]

    def choose_types(self, track_loras: bool, only: Iterable[str] = ()) -> None:
        """Track LoRAs or not, and only the `only` types (empty: every type); takes effect at the next refresh."""
        with self._lock:
            self.excluded_types = NOT_MODEL_TYPES - {"loras"} if track_loras else NOT_MODEL_TYPES
            self.only_types = frozenset(only) or None
            self._read_at = float("-inf")
            self._refresh()

    def installed(self) -> dict[str, list[str]]:
        """The current listing of every tracked type (refreshing the reverse index if anything changed)."""
        with self._lock:
            self.refresh()
            return dict(self._listings)

    def refresh(self, max_age: float = 0.0) -> bool:
        """Re-read each type's listing through ComfyUI's mtime-checked cache; True if any listing changed.

        A file added or removed while ComfyUI runs changes a directory mtime, so the next call sees it.
        With `max_age`, a view younger than that many seconds is kept: each re-read costs a stat per model
        folder, and every stat hands the GIL back and forth with ComfyUI's event loop.
        """
        with self._lock:
            if max_age and time.monotonic() - self._read_at < max_age:
                return False
            return self._refresh()

    def _refresh(self) -> bool:
        import folder_paths

        self._read_at, self._read_wall = time.monotonic(), time.time()
        listings = {}
        for model_type in self.tracked_types():
            try:
                listings[model_type] = self._normalised(model_type, _model_files_only(folder_paths, model_type))
            except Exception as error:  # e.g. a model root that vanished: ComfyUI raises on every call
                warn_once(f"listing:{model_type}", "cannot list %s models (%s); keeping the last listing", model_type, error)
                listings[model_type] = self._listings.get(model_type, [])
        if listings == self._listings:
            return False
        self._model_extensions = _model_extensions(folder_paths, listings)
        self._listings = listings
        self._owners = _owners_by_name(listings)
        self._embedding_keys = _embedding_lookup(listings.get("embeddings", []))
        self._loose = None
        self._taesd = _taesd_values()
        self._combos.clear()  # choices may now point at other types
        self._resolved.clear()
        self.version += 1
        return True

    def _normalised(self, model_type: str, raw: list[str]) -> list[str]:
        """The listing in our spelling, re-spelled only when ComfyUI's listing changed.

        Comparing two lists of the same string objects runs in C; normalising 20,000 names is ~7 ms of
        Python holding the GIL, which every /models request and every writer batch would otherwise pay.
        """
        previous_raw, previous = self._raw_listings.get(model_type, (None, None))
        if raw != previous_raw:
            previous = [normalise(n) for n in raw]
            self._raw_listings[model_type] = (raw, previous)
        return previous

    def models_in(self, prompt: dict, submitted_at: float | None = None) -> Found:
        """The installed model files the prompt names, each once: used, or referenced (switched off).

        A prompt that names a file this view lacks (added a moment ago) makes it re-read the folders, unless
        the view was read after the prompt was submitted (`submitted_at`, Unix seconds): a file the prompt
        names existed then, so that view already shows it. This bounds re-reads to about one per batch.
        """
        with self._lock:
            found = self._models_in(prompt)
            stale = submitted_at is None or self._read_wall < submitted_at
            if found.missed and stale and self._refresh():
                found = self._models_in(prompt)
            return found.settled()

    def _models_in(self, prompt: dict) -> Found:
        """What each node names: choices of its model inputs, names inside dict and list values, and
        `embedding:` / `<lora:...>` in any text. Text that reaches an input through a link is a literal
        input of the node it comes from, which is read as every node's literal inputs are."""
        found = Found(set(), set())
        for node in prompt.values():
            if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
                continue
            inputs = node.get("inputs")
            if isinstance(inputs, dict):
                self._node_models(node["class_type"], inputs, found)
        return found

    def _node_models(self, class_type: str, inputs: dict, found: Found) -> None:
        """One node's files, each used or switched off by its siblings (switches.py) or its DynamicCombo.

        Runs for every node of every prompt on the writer thread, so the common case (a loader's one choice)
        costs a few dict lookups: no sibling layout for a node with one input, none made before a file is named.
        """
        combos = self._combo_inputs(class_type)
        layout = False  # made only for a node that names a file; None for a node without switches of any kind
        for input_name, value in inputs.items():
            if isinstance(value, str):
                combo = combos.get(input_name)
                if combo is not None:
                    resolved = self._resolve_cached(class_type, input_name, value, combo)
                    if resolved:
                        if layout is False:
                            layout = self._layout(inputs) if len(inputs) > 1 else None
                        off = (bool(combo.requires) and _unmet(combo.requires, inputs)) or (
                            bool(combo.needs_images) and all(inputs.get(i) is None for i in combo.needs_images)) or (
                            layout is not None and _switched_off(inputs, input_name, layout))
                        (found.referenced if off else found.used).update(resolved)
                    elif self._could_be_model(value, combo):
                        found.missed = True
                if "embedding:" in value or "<" in value:
                    self._read_text(value, found, off=False)
            elif isinstance(value, dict) or (isinstance(value, list) and not _names_no_file(value)):
                if layout is False:
                    layout = self._layout(inputs) if len(inputs) > 1 else None
                off = layout is not None and isinstance(input_name, str) and _switched_off(inputs, input_name, layout)
                self._read_value(value, found, off, 0, [MAX_VALUE_ITEMS])

    def _layout(self, inputs: dict) -> dict[str, switches.Siblings] | None:
        """The siblings of each entry of a node with these input names, found once per set of names; None
        when no input name is a switch, strength or count (most loaders): nothing to read per prompt."""
        names = tuple(inputs)
        layout = self._layouts.get(names, False)
        if layout is False:
            if len(self._layouts) >= MAX_LAYOUTS:
                self._layouts.clear()
            layout = self._layouts[names] = {} if switches.may_switch(names) else None
        return layout

    def _read_value(self, value, found: Found, off: bool, depth: int, budget: list[int]) -> None:
        """Model names anywhere in a dict or list value (`{"on": true, "lora": "x"}`, `{"__value__": [...]}`),
        each switched off by its own dict's keys or any dict around it."""
        if depth > MAX_VALUE_DEPTH:
            return
        if isinstance(value, dict):
            off = off or switches.dict_off(value)
            items = value.values()
        else:
            items = value
        for item in items:
            budget[0] -= 1
            if budget[0] < 0:
                return
            if isinstance(item, str):
                resolved = self._resolve_loose(item)
                if resolved:
                    found.add(resolved, off)
                elif os.path.splitext(item)[1].lower() in self._model_extensions:
                    found.missed = True
                self._read_text(item, found, off)
            elif isinstance(item, (dict, list)):
                self._read_value(item, found, off, depth + 1, budget)

    def _read_text(self, text: str, found: Found, off: bool) -> None:
        """`embedding:NAME` and `<lora:NAME:W>` in a text; a tag whose every weight is 0 loads nothing."""
        if "embedding:" in text:
            found.add(self._embeddings_in(text), off)
        if "<" in text and "<lora:" in text.lower():
            for name, weights in LORA_TAG.findall(text):
                resolved = self._resolve_loose(name.strip(), only="loras")
                found.add(resolved, off or switches.weights_off(weights[1:]))
                if not resolved and "loras" in self._listings:
                    found.missed = True

    def known(self, keys) -> set[tuple[str, str]]:
        """The (type, name) keys that are tracked, installed files in this view (what ComfyUI loaded may be neither)."""
        with self._lock:
            return {key for key in keys if key[0] in self._owners.get(key[1], ())}

    def _could_be_model(self, value: str, combo: ComboInput) -> bool:
        """A choice of an input that offers tracked model files, or a model-file name in an open-ended input.

        An input that listed choices, none of them tracked files (LoRAs, samplers), never counts as a miss:
        otherwise every prompt with a LoRA would re-read the model folders.
        """
        if combo.offered:
            return True
        return combo.open_ended and os.path.splitext(value)[1].lower() in self._model_extensions

    def same_file_keys(self) -> dict[tuple[str, str], str]:
        """(type, name) -> real path, only for types whose folders overlap (the only way two keys share a file)."""
        import folder_paths

        listings = self.installed()
        overlapping = _types_with_overlapping_dirs({t: folder_paths.get_folder_paths(t) for t in listings})
        keys = {}
        for model_type in overlapping:
            for name in listings[model_type]:
                full = model_path(model_type, name)
                if full:
                    keys[(model_type, name)] = os.path.realpath(full)
        return keys

    # ---- internals

    def _combo_inputs(self, class_type: str) -> dict[str, ComboInput]:
        """The class's choice inputs by name, introspected once per class (V3 rebuilds its schema on every call)."""
        if class_type not in self._combos:
            import nodes

            cls = nodes.NODE_CLASS_MAPPINGS.get(class_type)
            if cls is None:
                return {}  # not cached: the class may be registered later
            try:
                spec = cls.INPUT_TYPES()
                choices, images = _choice_inputs(spec), _optional_images(spec)
            except Exception as error:
                warn_once(f"input-types:{class_type}", "cannot read the inputs of %s (%s)", class_type, error)
                choices, images = {}, ()
            self._combos[class_type] = {
                name: ComboInput(_rank_types(options, self._owners), open_ended=not options, requires=requires,
                                 needs_images=switches.same_entry(name, images))
                for name, (options, requires) in choices.items()
            }
        return self._combos[class_type]

    def _resolve_cached(self, class_type: str, input_name: str, value: str, combo: ComboInput) -> set[tuple[str, str]]:
        """_resolve, remembered until the next listing change: most prompts pick the same few files again."""
        key = (class_type, input_name, value)
        resolved = self._resolved.get(key)
        if resolved is None:
            if len(self._resolved) >= RESOLVED_CACHE_SIZE:
                self._resolved.clear()
            resolved = self._resolved[key] = self._resolve(value, combo)
        return resolved

    def _resolve(self, value: str, combo: ComboInput) -> set[tuple[str, str]]:
        name = normalise(value)
        owners = self._owners.get(name)
        if not owners:
            if name in self._taesd:
                return {("vae_approx", n) for n in self._listings.get("vae_approx", []) if _is_taesd_part(n, name)}
            return set()
        if len(owners) == 1:
            return {(owners[0], name)}
        scores = {t: score for t, score in combo.offered if t in owners}
        if not scores:  # the input offered none of them: when unsure, count every candidate as used
            return {(t, name) for t in owners}
        best = max(scores.values())
        return {(t, name) for t, score in scores.items() if score == best}

    def _resolve_loose(self, value: str, only: str | None = None) -> tuple[tuple[str, str], ...]:
        """The files a pack's free-form name means: as listed, without its extension, or without its
        subfolder (`x`, `x.safetensors` and `sub/x` all find `sub/x.safetensors`); every match counts."""
        if self._loose is None:
            self._loose = loose_lookup(self._listings, self._model_extensions)
        keys = self._loose.get(normalise(value), ())
        return tuple(k for k in keys if k[0] == only) if only else keys

    def _embeddings_in(self, text: str) -> set[tuple[str, str]]:
        found = set()
        for reference in EMBEDDING_REF.findall(text):
            for name in self._embedding_keys.get(normalise(reference).rstrip(",").lower(), ()):
                found.add(("embeddings", name))
        return found


def _holds_models(model_type: str, entry, folder_paths) -> bool:
    """Whether a folder type (name, (folders, extensions)) holds model files: see ModelMapper.model_types."""
    if model_type in CORE_MODEL_TYPES:
        return True
    try:
        folders, extensions = entry
    except (TypeError, ValueError):
        return False
    if extensions:
        return any(isinstance(e, str) and e.lower() in MODEL_EXTENSIONS for e in extensions)
    models_dir = getattr(folder_paths, "models_dir", None)
    return bool(models_dir and folders) and all(
        os.path.realpath(f).startswith(os.path.realpath(models_dir) + os.sep) for f in folders)


def _model_files_only(folder_paths, model_type: str) -> list[str]:
    """ComfyUI's listing of a type; for a type that lists every file, only its model files."""
    names = folder_paths.get_filename_list(model_type)
    if model_type in CORE_MODEL_TYPES or folder_paths.folder_names_and_paths.get(model_type, ((), ()))[1]:
        return names
    return [n for n in names if os.path.splitext(n)[1].lower() in MODEL_EXTENSIONS]


def _switched_off(inputs: dict, name: str, layout: dict[str, switches.Siblings]) -> bool:
    found = layout.get(name)
    if found is None:
        found = layout[name] = switches.siblings(tuple(inputs), name)
    return found is not switches.NO_SIBLINGS and switches.is_off(inputs, name, found)


def _unmet(requires: tuple, inputs: dict) -> bool:
    """A nested input whose DynamicCombo shows another option: ComfyUI does not read it."""
    return bool(requires) and not any(all(inputs.get(p) == option for p, option in chain) for chain in requires)


def _names_no_file(pair: list) -> bool:
    """A `[node_id, output_slot]` link to another node's output (or any pair ending in a number)."""
    return len(pair) == 2 and isinstance(pair[1], int)


def loose_lookup(listings: dict[str, list[str]], extensions: frozenset[str] = MODEL_EXTENSIONS) -> dict[str, tuple]:
    """Every spelling a pack may use for a listed file -> the (type, name) keys it can mean."""
    lookup: dict[str, set[tuple[str, str]]] = {}
    for model_type, names in listings.items():
        for name in names:
            base = name.rsplit("/", 1)[-1]
            spellings = {name, base}
            for spelling in (name, base):
                stem, extension = os.path.splitext(spelling)
                if extension.lower() in extensions:
                    spellings.add(stem)
            for spelling in spellings:
                lookup.setdefault(spelling, set()).add((model_type, name))
    return {spelling: tuple(sorted(keys)) for spelling, keys in lookup.items()}


def _taesd_values() -> tuple[str, ...]:
    """The image-decoder names ComfyUI's VAELoader offers for pairs of files in vae_approx."""
    try:
        import nodes

        values = getattr(nodes.VAELoader, "image_taes", None)
    except Exception:  # outside ComfyUI, or a ComfyUI without the class
        values = None
    return tuple(v for v in values if isinstance(v, str)) if isinstance(values, (list, tuple)) else TAESD_VALUES


def _model_extensions(folder_paths, listings: dict[str, list[str]]) -> frozenset[str]:
    """Every file extension a tracked folder type accepts (ComfyUI's model extensions at least)."""
    extensions = set(getattr(folder_paths, "supported_pt_extensions", ()))
    for model_type in listings:
        extensions.update(e for e in folder_paths.folder_names_and_paths.get(model_type, ((), ()))[1] if e)
    return frozenset(e.lower() for e in extensions)


def _optional_images(spec) -> tuple[str, ...]:
    """The node's optional IMAGE inputs: a link a stack entry may need before it applies its file."""
    optional = spec.get("optional") if isinstance(spec, dict) else None
    return tuple(
        name for name, declaration in (optional.items() if isinstance(optional, dict) else ())
        if isinstance(name, str) and isinstance(declaration, (tuple, list)) and declaration and declaration[0] == "IMAGE"
    )


def _choice_inputs(spec, prefix: str = "", chain: tuple = (), depth: int = 0) -> dict[str, tuple[list[str], tuple]]:
    """Input name -> (offered strings, conditions), for inputs declared as a list (V1) or as "COMBO" with
    options (V1/V3), and for those nested in V3 dynamic inputs under the dotted names a prompt gives them
    (comfy_api/latest/_io.py: DynamicCombo `parent.child` while the parent shows that option, DynamicGroup
    `group.<row>.field`, DynamicSlot `slot.child`). Autogrow inputs are sockets only: no choices.

    The conditions are alternatives, each a chain of (input, option) pairs that must all hold; `()` is none.
    """
    choices: dict[str, tuple[list[str], tuple]] = {}
    for section in ("required", "optional"):
        declared = spec.get(section) if isinstance(spec, dict) else None
        for name, declaration in (declared or {}).items() if isinstance(declared, dict) else ():
            if not isinstance(declaration, (tuple, list)) or not declaration:
                continue
            kind, full = declaration[0], f"{prefix}{name}"
            extra = declaration[1] if len(declaration) > 1 and isinstance(declaration[1], dict) else {}
            if isinstance(kind, (list, tuple)):
                options = kind
            elif kind == "COMBO":
                options = extra.get("options") or []
            else:
                if depth < MAX_VALUE_DEPTH:
                    for nested, (offered, requires) in _dynamic_choices(kind, extra, full, chain, depth + 1).items():
                        _merge_choice(choices, nested, offered, requires)
                continue
            _merge_choice(choices, full, [normalise(o) for o in options if isinstance(o, str)], (chain,) if chain else ())
    return choices


def _merge_choice(choices: dict, name: str, offered: list[str], requires: tuple) -> None:
    """One input name offered under several DynamicCombo options: any of their conditions lets ComfyUI read it."""
    if name in choices:
        known, earlier = choices[name]
        seen = set(known)
        offered = known + [o for o in offered if o not in seen]
        requires = earlier + requires if earlier and requires else ()
    choices[name] = (offered, requires)


def _dynamic_choices(kind, extra: dict, full: str, chain: tuple, depth: int) -> dict[str, tuple[list[str], tuple]]:
    """The choice inputs nested in one V3 dynamic input, as ComfyUI's `_expand_schema_for_dynamic` names them."""
    found: dict[str, tuple[list[str], tuple]] = {}
    nested: list[tuple] = []  # (spec, prefix, chain)
    if kind == "COMFY_DYNAMICCOMBO_V3":
        nested = [(o.get("inputs"), f"{full}.", (*chain, (full, o["key"])))
                  for o in extra.get("options") or [] if isinstance(o, dict) and isinstance(o.get("key"), str)]
    elif kind == "COMFY_DYNAMICGROUP_V3":
        rows = extra.get("max", MAX_GROUP_ROWS)
        rows = min(rows, MAX_GROUP_ROWS) if isinstance(rows, int) else MAX_GROUP_ROWS
        nested = [(extra.get("template"), f"{full}.{row}.", chain) for row in range(rows)]
    elif kind == "COMFY_DYNAMICSLOT_V3":
        nested = [(extra.get("inputs"), f"{full}.", chain)]
    for spec, prefix, conditions in nested:
        for name, (offered, requires) in _choice_inputs(spec, prefix, conditions, depth).items():
            _merge_choice(found, name, offered, requires)
    return found


def _rank_types(options: list[str], owners: dict[str, tuple[str, ...]]) -> tuple[tuple[str, int], ...]:
    """Tracked types by how many of the options they hold, best first (via the name -> types index)."""
    scores: dict[str, int] = {}
    for option in set(options):
        for model_type in owners.get(option, ()):
            scores[model_type] = scores.get(model_type, 0) + 1
    return tuple(sorted(scores.items(), key=lambda ts: -ts[1]))


def _owners_by_name(listings: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
    owners: dict[str, list[str]] = {}
    for model_type, names in listings.items():
        for name in names:
            owners.setdefault(name, []).append(model_type)
    return {name: tuple(types) for name, types in owners.items()}


def _embedding_lookup(names: list[str]) -> dict[str, tuple[str, ...]]:
    """Every spelling `embedding:X` may use for a file -> the files it can load.

    ComfyUI tries X as given and with .safetensors/.pt/.bin, in every embeddings folder and all its
    subfolders, so `embedding:foo` also finds `sub/foo.pt`. Matching is case-insensitive to stay
    conservative on case-insensitive file systems.
    """
    lookup: dict[str, set[str]] = {}
    for name in names:
        spellings = {name, os.path.basename(name)}
        for spelling in list(spellings):
            stem, extension = os.path.splitext(spelling)
            if extension.lower() in EMBEDDING_EXTENSIONS:
                spellings.add(stem)
        for spelling in spellings:
            lookup.setdefault(spelling.lower(), set()).add(name)
    return {key: tuple(sorted(files)) for key, files in lookup.items()}


def _is_taesd_part(file_name: str, value: str) -> bool:
    base = os.path.basename(file_name)
    return base.startswith(f"{value}_encoder.") or base.startswith(f"{value}_decoder.")


def _types_with_overlapping_dirs(dirs_by_type: dict[str, list[str]]) -> set[str]:
    """Types sharing a directory, or with one directory inside another's: the same file under two types."""
    real = [(t, os.path.realpath(d)) for t, dirs in dirs_by_type.items() for d in dirs]
    overlapping = set()
    for i, (type_a, dir_a) in enumerate(real):
        for type_b, dir_b in real[i + 1 :]:
            if type_a != type_b and (dir_a == dir_b or dir_a.startswith(dir_b + os.sep) or dir_b.startswith(dir_a + os.sep)):
                overlapping |= {type_a, type_b}
    return overlapping
