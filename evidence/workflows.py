"""Which saved workflows use which model files and node types.

Why a module of its own: a workflow the user saved for later is evidence the prompt log cannot hold (it may
not have run since the extension was installed), and reading it has its own rules: ComfyUI's UI format
(`nodes` with `type` and `widgets_values`, subgraphs under `definitions.subgraphs`, nested to any depth),
the API format (`{id: {class_type, inputs}}`), files that are huge, broken or hostile. Each file is parsed
again only when its size or mtime changed. Nothing here decides a tier: evidence/source.py turns what is found
into caps and reasons.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass

from ..domain.values import normalise
from ..mapper import LORA_TAG, loose_lookup
from ..support.files import open_regular
from ..support.logs import warn_once

MAX_WORKFLOW_BYTES = 32 * 1024 * 1024
"""A saved workflow larger than this is not read (a real one is kilobytes; this bounds memory and time)."""
MAX_DEPTH = 64
"""How deep subgraphs and nested values are followed; deeper structures are not workflows."""


@dataclass(frozen=True)
class Uses:
    """What one workflow file names: node types, and every string value that may be a model file."""

    node_types: frozenset[str] = frozenset()
    values: frozenset[str] = frozenset()


def uses_in(data) -> Uses:
    """Node types and candidate model names in a parsed workflow, UI or API format, subgraphs included."""
    node_types: set[str] = set()
    values: set[str] = set()
    _walk(data, node_types, values, 0)
    return Uses(frozenset(node_types), frozenset(values))


def _walk(data, node_types: set[str], values: set[str], depth: int) -> None:
    """Every node (a dict with a string `type` or `class_type`) anywhere in the tree; every string value kept.

    Walking the whole tree, instead of only `nodes` and `definitions.subgraphs`, finds nodes wherever a
    frontend version puts them; a string that is not a model name simply matches nothing.
    """
    if depth > MAX_DEPTH:
        return
    if isinstance(data, dict):
        for key in ("type", "class_type"):
            if isinstance(data.get(key), str) and ("widgets_values" in data or "inputs" in data or "id" in data):
                node_types.add(data[key])
        for value in data.values():
            _walk(value, node_types, values, depth + 1)
    elif isinstance(data, list):
        for value in data:
            _walk(value, node_types, values, depth + 1)
    elif isinstance(data, str) and 0 < len(data) <= 1024:
        values.add(normalise(data))
        if "<lora:" in data.lower():
            values.update(normalise(name.strip()) for name, _weights in LORA_TAG.findall(data))


class SavedWorkflows:
    """The saved workflows of every user (`user/<user>/workflows/**/*.json`), read once per change."""

    def __init__(self, user_directory: str | None = None):
        self._user_directory = user_directory
        self._cache: dict[str, tuple[tuple[int, int], Uses]] = {}
        self._lock = threading.Lock()
        self.version = 0
        """Bumped whenever a workflow was added, changed or removed: a cache key for reports."""

    def user_directory(self) -> str:
        if self._user_directory is None:
            import folder_paths

            return folder_paths.get_user_directory()
        return self._user_directory

    def scan(self) -> dict[str, Uses]:
        """Display name -> what it uses, for every saved workflow (re-parsing only files that changed)."""
        with self._lock:
            found = dict(_workflow_files(self.user_directory()))
            cache = {}
            for path in found.values():
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                stamp = (st.st_size, st.st_mtime_ns)
                cached = self._cache.get(path)
                cache[path] = cached if cached and cached[0] == stamp else (stamp, _read(path, st.st_size))
            if cache.keys() != self._cache.keys() or any(cache[p][0] != self._cache[p][0] for p in cache):
                self.version += 1
            self._cache = cache
            return {shown: cache[path][1] for shown, path in found.items() if path in cache}


def _workflow_files(user_directory: str):
    """(display name, path): `portrait.json` for the default user, `alice: portrait.json` for others.

    System folders (`__*`, ours among them) and hidden ones are not users.
    """
    try:
        users = sorted(os.listdir(user_directory))
    except OSError:
        return
    for user in users:
        root = os.path.join(user_directory, user, "workflows")
        if user.startswith(("_", ".")) or not os.path.isdir(root):
            continue
        for directory, subdirs, files in os.walk(root):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for name in sorted(files):
                if name.lower().endswith(".json"):
                    path = os.path.join(directory, name)
                    relative = os.path.relpath(path, root).replace(os.sep, "/")
                    yield (relative if user == "default" else f"{user}: {relative}"), path


def _read(path: str, size: int) -> Uses:
    if size > MAX_WORKFLOW_BYTES:
        warn_once(f"workflow-size:{path}", "not reading the saved workflow %s: %d bytes is too large", path, size)
        return Uses()
    try:
        with open_regular(path) as handle:  # a FIFO named *.json would otherwise block every report for good
            return uses_in(json.loads(handle.read(MAX_WORKFLOW_BYTES)))
    except (OSError, ValueError, RecursionError) as error:
        warn_once(f"workflow:{path}", "cannot read the saved workflow %s (%s)", path, error)
        return Uses()


def model_references(workflows: dict[str, Uses], installed: dict[str, list[str]]) -> dict[tuple[str, str], list[str]]:
    """(type, name) -> the workflows naming it, as listed or as packs spell it (without its extension or its
    subfolder). A name that may mean files of several types counts for each: when a workflow could mean
    either file, both are needed."""
    by_name = loose_lookup(installed)
    references: dict[tuple[str, str], list[str]] = {}
    for shown, uses in workflows.items():
        for value in uses.values:
            for key in by_name.get(value, ()):
                references.setdefault(key, []).append(shown)
    return references


def package_references(workflows: dict[str, Uses], package_of: dict[str, str]) -> dict[str, list[str]]:
    """pack -> the workflows using one of its node types (types no loaded pack provides cannot be credited)."""
    references: dict[str, set[str]] = {}
    for shown, uses in workflows.items():
        for node_type in uses.node_types:
            package = package_of.get(node_type)
            if package is not None:
                references.setdefault(package, set()).add(shown)
    return {package: sorted(names) for package, names in references.items()}




def node_type_references(workflows: dict[str, Uses]) -> dict[str, list[str]]:
    """node type -> the workflows using it, node types in name order."""
    references: dict[str, list[str]] = {}
    for shown, uses in sorted(workflows.items()):
        for node_type in uses.node_types:
            references.setdefault(node_type, []).append(shown)
    return dict(sorted(references.items()))
