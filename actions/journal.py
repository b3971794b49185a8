"""Append-only, fsynced journals: what the extension is about to do to a file, and what became of it.

Why a module of its own: a crash between "the file moved" and "we wrote down that it moved" must never strand
a file. So every move is written down *before* it happens (an intent: source, destination and the file's
identity), made, then its outcome is written. An intent without an outcome is settled from what is on disk:
the file is found at exactly one of its two places (or, after a hard-link move, at both: one link is dropped)
and the journal says which. Journals are plain JSON lines beside the files they describe, so they outlive a
lost or corrupt database.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ..support.logs import log, warn_once
from .moves import ActionRefused, fail_point, move_no_replace, sync_folder

DONE, UNDONE, MISSING = "done", "undone", "missing"
"""Outcomes: the move happened; it did not (the file is where it was); the file is at neither place."""


@dataclass
class Move:
    """One intended move (or deletion, when `destination` is None) and, once known, its outcome."""

    id: int
    action: str
    source: str
    destination: str | None
    device: int
    inode: int
    size: int
    at: int
    by: str
    details: dict = field(default_factory=dict)
    outcome: str | None = None

    def record(self) -> dict:
        return {
            "intent": self.action, "id": self.id, "from": self.source, "to": self.destination, "device": self.device,
            "inode": self.inode, "size": self.size, "at": self.at, "by": self.by, **self.details,
        }

    @classmethod
    def from_record(cls, record: dict) -> "Move":
        known = {"intent", "id", "from", "to", "device", "inode", "size", "at", "by"}
        return cls(
            record["id"], record["intent"], record["from"], record["to"], record["device"], record["inode"],
            record["size"], record["at"], record["by"], {k: v for k, v in record.items() if k not in known},
        )


class Journal:
    """One JSON-lines file; `append` returns only once the record is on disk."""

    def __init__(self, path: str):
        self.path = path

    def append(self, record: dict) -> None:
        # ASCII: a file name that is not UTF-8 (lone surrogates) survives the round trip through JSON.
        line = (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
        created = not os.path.exists(self.path)
        if created:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":  # a record torn by a crash: start on a line of our own
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            sync_folder(os.path.dirname(self.path))

    def records(self) -> list[dict]:
        """Every whole record; a torn line (a crash in the middle of a write) is skipped with one warning."""
        try:
            with open(self.path, "rb") as file:
                lines = file.read().splitlines()
        except FileNotFoundError:
            return []
        records = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                warn_once(f"torn:{self.path}", "skipped a torn line in %s (a crash while writing it)", self.path)
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def moves(self) -> list[Move]:
        """Every move recorded here, in order, each with its outcome (None while unsettled)."""
        moves: list[Move] = []
        open_moves: dict[tuple[int, str], Move] = {}
        for record in self.records():
            if "intent" in record:
                move = open_moves[(record["id"], record["intent"])] = Move.from_record(record)
                moves.append(move)
            elif "outcome" in record and (move := open_moves.pop((record["id"], record["action"]), None)):
                move.outcome = record["outcome"]
        return moves

    def begin(self, move: Move) -> None:
        self.append(move.record())

    def finish(self, move: Move, outcome: str, at: int, settled: bool = False) -> None:
        move.outcome = outcome
        record = {"outcome": outcome, "id": move.id, "action": move.action, "at": at}
        self.append({**record, "settled": True} if settled else record)

    def settle(self, at: int) -> list[Move]:
        """Give every unfinished move its outcome from what is on disk; returns the moves settled."""
        unsettled = [move for move in self.moves() if move.outcome is None]
        for move in unsettled:
            outcome = settle_from_disk(move)
            self.finish(move, outcome, at, settled=True)
            log.warning("[usage-stats] an interrupted %s of %s was settled: %s", move.action, move.source, outcome)
        return unsettled


def journalled_move(journal: Journal, move: Move, target, name: str | None = None) -> None:
    """Intent on disk, then the move, then its outcome: a crash anywhere leaves a journal that settles it."""
    journal.begin(move)
    fail_point(move.action, "after-intent")
    try:
        move_no_replace(move.source, target, name or os.path.basename(move.destination))
    except ActionRefused:
        journal.finish(move, UNDONE, move.at)
        raise
    fail_point(move.action, "after-move")
    sync_folder(os.path.dirname(move.source))
    sync_folder(os.path.dirname(move.destination))
    fail_point(move.action, "before-commit")
    journal.finish(move, DONE, move.at)


def settle_from_disk(move: Move) -> str:
    """Where the file of an interrupted move is now: the outcome to record (never 'both places', never 'neither'
    while the file exists at either)."""
    at_source = _is(move.source, move)
    if move.destination is None:  # a deletion
        return UNDONE if at_source else DONE
    at_destination = _is(move.destination, move)
    if at_destination and at_source:  # a hard-link move stopped between link and unlink: one file, two names
        os.unlink(move.source)
    if at_destination:
        return DONE
    return UNDONE if at_source else MISSING


def _is(path: str, move: Move) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == (move.device, move.inode)

