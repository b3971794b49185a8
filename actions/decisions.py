"""The user's decisions on this machine: the keep list, the quarantine, pack moves and the log of them all.

Why a module of its own: everything here must outlive the statistics database (a corrupt one is moved aside and
starts afresh), so none of it lives there. The keep list and pack moves are journalled in `decisions.jsonl`
beside the database, quarantine moves in each quarantine's own manifest; the actions log is read back from
those journals. One lock serialises every action, and none runs on the thread that records prompts, so
deleting gigabytes never holds up the statistics.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

from ..domain.values import iso
from . import packs, quarantine
from .journal import DONE, Journal, Move
from .moves import ActionRefused, identity

JOURNAL = "decisions.jsonl"
LEGACY_BY = "recorded before journals"


class Decisions:
    """Every action the API offers, each one at a time, and what they left behind."""

    def __init__(self, folder: str, is_protected_pack: Callable[[str], bool], clock: Callable[[], float] = time.time):
        self.journal = Journal(os.path.join(folder, JOURNAL))
        self.is_protected_pack = is_protected_pack
        self._clock = clock
        self._lock = threading.Lock()
        self.version = 0
        """Changes whenever the keep list changes (reports that show pins are rebuilt)."""

    def now(self) -> int:
        return int(self._clock())

    # ---- start

    def take_over(self, store) -> None:
        """At start, on the writer thread: adopt what an older version kept in `store`, then settle every move."""
        legacy = store.legacy_decisions()
        if legacy is not None:
            self.adopt_legacy(legacy)
            store.drop_legacy_decisions()
        self.settle()

    def settle(self) -> None:
        """Settle every move a crash interrupted (the pack journal and every quarantine on disk)."""
        with self._lock:
            self.journal.settle(self.now())
            self._holdings()

    def adopt_legacy(self, legacy: dict) -> None:
        """Take over the keep list, quarantine and actions log an older version kept in the database."""
        with self._lock:
            kept = self._kept()
            for kind, model_type, name, since in legacy["keep_list"]:
                if (kind, model_type, name) not in kept:
                    self.journal.append({"keep": True, "kind": kind, "model_type": model_type, "name": name, "at": since})
            for _id, model_type, model_name, original, quarantined, _size, at in legacy["quarantine"]:
                self._adopt_quarantined(model_type, model_name, original, quarantined, at)
            for at, action, target, source, destination, by in legacy["actions_log"]:
                self.journal.append(
                    {"legacy_action": action, "target": target, "from": source, "to": destination, "at": at, "by": by}
                )
            self.version += 1

    def _adopt_quarantined(self, model_type: str, model_name: str, original: str, quarantined: str, at: int) -> None:
        if not os.path.isfile(quarantined):
            return
        move = Move(self._new_id(), "quarantine", original, quarantined, *identity(quarantined), at, LEGACY_BY,
                    {"model_type": model_type, "model_name": model_name, "folder": None, "adopted": True})
        manifest = quarantine.manifest(quarantine.root_of(move))
        if all(m.destination != quarantined for m in manifest.moves()):
            manifest.begin(move)
            manifest.finish(move, DONE, at)

    # ---- keep list

    def kept(self) -> set[tuple[str, str, str]]:
        """(kind, model_type, name) of every pinned item ('model' with its type, or 'package' with '')."""
        with self._lock:
            return set(self._kept())

    def _kept(self) -> dict[tuple[str, str, str], int]:
        kept: dict[tuple[str, str, str], int] = {}
        for record in self.journal.records():
            if "keep" in record:
                key = (record["kind"], record["model_type"], record["name"])
                if record["keep"]:
                    kept.setdefault(key, record["at"])
                else:
                    kept.pop(key, None)
        return kept

    def set_kept(self, kind: str, model_type: str, name: str, keep: bool) -> None:
        with self._lock:
            self.journal.append({"keep": keep, "kind": kind, "model_type": model_type, "name": name, "at": self.now()})
            self.version += 1

    # ---- quarantine

    def quarantined(self) -> list[dict]:
        """What every quarantine holds now (each settled against the disk first), oldest first."""
        with self._lock:
            return [_entry(move) for move in self._holdings()]

    def quarantine(self, model_type, model_name, listing: dict[str, list[str]], by: str) -> dict:
        with self._lock:
            move = quarantine.quarantine(model_type, model_name, listing, self._new_id(), self.now(), by)
            return {"id": move.id, "model_type": model_type, "model_name": model_name, "from": move.source,
                    "to": move.destination, "size": move.size}

    def restore(self, entry_id: int, by: str) -> dict:
        with self._lock:
            entry = next((move for move in self._holdings() if move.id == entry_id), None)
            if entry is None:
                raise ActionRefused(404, f"nothing in quarantine has id {entry_id!r}")
            quarantine.restore(entry, self.now(), by)
            return {**_entry(entry), "restored": True}

    def empty(self, confirmed_bytes, by: str) -> dict:
        """Delete every quarantined file for good, only if the caller confirmed the exact size that will go."""
        with self._lock:
            entries = self._holdings()
            total = sum(move.size for move in entries)
            if confirmed_bytes != total:
                raise ActionRefused(409, f"the quarantine holds {total} bytes in {len(entries)} files; confirm by "
                                         f'sending {{"confirm_bytes": {total}}}')
            for entry in entries:
                quarantine.delete(entry, self.now(), by)
            return {"deleted": len(entries), "bytes": total}

    def _holdings(self) -> list[Move]:
        held = [m for root in quarantine.roots_on_disk() for m in quarantine.holdings(root, self.now(), self._new_id)]
        return sorted(held, key=lambda move: move.id)

    # ---- packs

    def disable_pack(self, name, by: str) -> dict:
        return self._move_pack(packs.disable, name, by)

    def enable_pack(self, name, by: str) -> dict:
        return self._move_pack(packs.enable, name, by)

    def _move_pack(self, move_pack, name, by: str) -> dict:
        name = packs.check_pack_name(name, self.is_protected_pack)
        with self._lock:
            move = move_pack(self.journal, name, self._new_id(), self.now(), by)
        return {"package": name, "from": move.source, "to": move.destination, "restart_required": True}

    # ---- the actions log

    def actions(self, limit: int = 200) -> list[dict]:
        """Every action that took effect, newest first."""
        with self._lock:
            journals = self._journals()
            done = [
                _logged(move) for journal in journals for move in journal.moves()
                if move.outcome == DONE and not move.details.get("adopted")  # a record taken over, not an action
            ]
            legacy = [_legacy_logged(r) for r in self.journal.records() if "legacy_action" in r]
        # Newest first; of two in the same second, the one journalled later (the sort keeps equal keys' order).
        newest = sorted(reversed(legacy + done), key=lambda entry: entry["at"], reverse=True)[:limit]
        return [{**entry, "at": iso(entry["at"])} for entry in newest]

    def _new_id(self) -> int:
        """An id no move ever had: above every id in every journal, and above the clock in milliseconds, so
        even ids from a quarantine folder someone deleted are never handed out again."""
        highest = max((r["id"] for journal in self._journals() for r in journal.records() if "id" in r), default=0)
        return max(highest + 1, int(self._clock() * 1000))


    def _journals(self) -> list[Journal]:
        """This machine's decisions journal and the manifest of every quarantine on disk."""
        return [self.journal] + [quarantine.manifest(root) for root in quarantine.roots_on_disk()]


def _entry(move: Move) -> dict:
    return {
        "id": move.id, "model_type": move.details["model_type"], "model_name": move.details["model_name"],
        "original": move.source, "quarantined": move.destination, "size": move.size, "at": iso(move.at),
    }


def _logged(move: Move) -> dict:
    target = move.details.get("package") or f"{move.details.get('model_type')}/{move.details.get('model_name')}"
    return {"id": move.id, "at": move.at, "action": move.action, "target": target, "from": move.source,
            "to": move.destination, "requested_by": move.by}


def _legacy_logged(record: dict) -> dict:
    return {"id": None, "at": record["at"], "action": record["legacy_action"], "target": record["target"],
            "from": record["from"], "to": record["to"], "requested_by": record["by"]}
