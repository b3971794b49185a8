"""The layout is the architecture: each folder one job, every import pointing down, all SQL in the store.

A newcomer reads where a change goes from the tree alone; these tests keep the tree honest.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAYERS = [
    {"__init__"},
    {"api"},
    {"reports", "actions", "memory"},
    {"recording"},
    {"evidence"},
    {"tracker", "mapper"},
    {"store"},
    {"domain", "support"},
]
"""From the top (ComfyUI's entry point) down. A module may import its own room and any room below its own."""


def our_modules() -> list[Path]:
    return sorted(p for p in REPO.rglob("*.py") if p.relative_to(REPO).parts[0] not in ("tests", "scripts", "docs")
                  and not any(part.startswith(".") for part in p.relative_to(REPO).parts))


def room_of(path: Path) -> str:
    relative = path.relative_to(REPO)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def layer_of(room: str) -> int:
    return next(index for index, rooms in enumerate(LAYERS) if room in rooms)


def imported_rooms(path: Path) -> set[str]:
    """The rooms (top-level folders or modules of ours) that `path` imports from."""
    package = list(path.relative_to(REPO).parts[:-1])
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            target = package[: len(package) - (node.level - 1)] + [p for p in (node.module or "").split(".") if p]
            rooms |= {target[0]} if target else {alias.name for alias in node.names}
    return rooms


@pytest.mark.parametrize("path", our_modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_import_points_down(path):
    room = room_of(path)
    upward = {other for other in imported_rooms(path) - {room} if layer_of(other) <= layer_of(room)}
    assert not upward, f"{path.relative_to(REPO)} ({room}) imports from a room at or above its own: {sorted(upward)}"


def test_every_room_has_a_layer():
    rooms = {room_of(path) for path in our_modules()}
    assert rooms == set().union(*LAYERS)


def test_the_domain_values_import_nothing_of_ours():
    assert imported_rooms(REPO / "domain" / "values.py") == set()


def test_all_sql_lives_in_the_store():
    speaks_sql = {str(p.relative_to(REPO)) for p in our_modules() if re.search(r"\.execute(many)?\(", p.read_text())}
    assert speaks_sql and all(path == "tracker.py" or path.startswith("store/") for path in speaks_sql), speaks_sql
