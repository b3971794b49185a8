"""The rules that keep the user's files safe, on real files (tests/fake_comfyui's folder_paths): moves never
replace and never leave their folder, every move is journalled and an interrupted one is settled from the disk,
the quarantine describes itself whatever happens to the database, and ids are never reused."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pytest
from comfyui import place_file
from usage_stats.actions.decisions import Decisions
from usage_stats.actions.journal import DONE, MISSING, UNDONE, Journal, Move
from usage_stats.actions.moves import ActionRefused, folder_below, identity, move_no_replace
from usage_stats.mapper import PackageMapper
from usage_stats.tracker import UsageStore


@pytest.fixture
def models(fake_comfy):
    place_file(fake_comfy.models / "checkpoints" / "sub" / "a.safetensors", b"a" * 10)
    place_file(fake_comfy.models / "checkpoints" / "b.safetensors", b"b" * 20)
    return fake_comfy


def decisions_of(fake_comfy) -> Decisions:
    return Decisions(str(fake_comfy.base / "user" / "__nodes_stats"), PackageMapper(own_pack="us").is_protected)


def listing(fake_comfy) -> dict[str, list[str]]:
    return {"checkpoints": fake_comfy.folder_paths.get_filename_list("checkpoints")}


# --------------------------------------------------------------------------- the move primitive


def test_a_move_never_replaces_an_existing_file(tmp_path):
    place_file(tmp_path / "source", b"mine")
    place_file(tmp_path / "target" / "name", b"theirs")
    with folder_below(str(tmp_path), ["target"]) as folder, pytest.raises(ActionRefused, match="already exists"):
        move_no_replace(str(tmp_path / "source"), folder, "name")
    assert (tmp_path / "source").read_bytes() == b"mine" and (tmp_path / "target" / "name").read_bytes() == b"theirs"


def test_a_move_never_goes_through_a_parent_swapped_for_a_link(tmp_path):
    place_file(tmp_path / "source", b"mine")
    (tmp_path / "root").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "root" / "sub").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ActionRefused, match="is a link"):
        with folder_below(str(tmp_path / "root"), ["sub"], create=True) as folder:
            move_no_replace(str(tmp_path / "source"), folder, "name")
    assert (tmp_path / "source").read_bytes() == b"mine" and not list((tmp_path / "elsewhere").iterdir())


def test_a_folder_moves_whole_and_refuses_an_existing_one(tmp_path):
    place_file(tmp_path / "pack" / "nodes.py", b"code")
    (tmp_path / "disabled" / "pack").mkdir(parents=True)
    with folder_below(str(tmp_path), ["disabled"]) as folder, pytest.raises(ActionRefused):
        move_no_replace(str(tmp_path / "pack"), folder, "pack")
    with folder_below(str(tmp_path), []) as folder:
        move_no_replace(str(tmp_path / "pack"), folder, "renamed")
    assert (tmp_path / "renamed" / "nodes.py").read_bytes() == b"code"


# --------------------------------------------------------------------------- journals


def move_of(tmp_path, source, destination) -> Move:
    return Move(7, "quarantine", str(source), str(destination), *identity(str(source)), 0, "test")


@pytest.mark.parametrize("where, outcome", [("source", UNDONE), ("destination", DONE), ("both", DONE), ("neither", MISSING)])
def test_an_interrupted_move_is_settled_from_where_the_file_is(tmp_path, where, outcome):
    source, destination = tmp_path / "from", tmp_path / "to"
    place_file(source, b"x")
    journal = Journal(str(tmp_path / "journal.jsonl"))
    move = move_of(tmp_path, source, destination)
    journal.begin(move)
    if where in ("destination", "both"):
        os.link(source, destination)  # "both": a link-then-unlink move stopped between the two
    if where in ("destination", "neither"):
        os.unlink(source)
    [settled] = journal.settle(at=1)
    assert settled.outcome == outcome and journal.moves()[0].outcome == outcome
    assert not (source.exists() and destination.exists()), "never in both places"
    assert journal.settle(at=2) == [], "settled once"


def test_a_torn_last_line_is_skipped_and_the_next_record_starts_on_its_own_line(tmp_path):
    journal = Journal(str(tmp_path / "journal.jsonl"))
    journal.append({"keep": True, "kind": "package", "model_type": "", "name": "A", "at": 1})
    with open(journal.path, "ab") as file:
        file.write(b'{"keep": true, "kind": "pack')  # a crash in the middle of a write
    journal.append({"keep": True, "kind": "package", "model_type": "", "name": "B", "at": 2})
    assert [r["name"] for r in journal.records()] == ["A", "B"]


def test_a_name_that_is_not_utf8_survives_the_journal(tmp_path):
    journal = Journal(str(tmp_path / "journal.jsonl"))
    name = os.fsdecode(b"caf\xe9.safetensors")  # a lone surrogate, as Python reads such a name
    journal.append({"name": name})
    assert journal.records() == [{"name": name}]


# --------------------------------------------------------------------------- the quarantine


def test_the_quarantine_lists_and_restores_its_files_with_a_new_database(models):
    decisions = decisions_of(models)
    decisions.quarantine("checkpoints", "sub/a.safetensors", listing(models), by="test")
    UsageStore(str(models.base / "user" / "__nodes_stats" / "usage_stats.db")).close()
    shutil.rmtree(models.base / "user" / "__nodes_stats")  # database and journal gone: only the manifest is left
    fresh = decisions_of(models)
    [entry] = fresh.quarantined()
    original = models.models / "checkpoints" / "sub" / "a.safetensors"
    assert (entry["model_name"], entry["original"]) == ("sub/a.safetensors", str(original))
    fresh.restore(entry["id"], by="test")
    assert (models.models / "checkpoints" / "sub" / "a.safetensors").read_bytes() == b"a" * 10


def test_a_file_found_in_the_quarantine_without_a_record_is_listed_and_restorable(models):
    place_file(models.models / ".usage-stats-quarantine" / "checkpoints" / "old" / "c.safetensors", b"c")
    decisions = decisions_of(models)
    [entry] = decisions.quarantined()
    assert (entry["model_type"], entry["model_name"]) == ("checkpoints", "old/c.safetensors")
    decisions.restore(entry["id"], by="test")
    assert (models.models / "checkpoints" / "old" / "c.safetensors").read_bytes() == b"c"


def test_restore_refuses_a_parent_folder_replaced_by_a_link_out_of_the_model_folder(models, tmp_path_factory):
    decisions = decisions_of(models)
    decisions.quarantine("checkpoints", "sub/a.safetensors", listing(models), by="test")
    outside = tmp_path_factory.mktemp("outside")
    (models.models / "checkpoints" / "sub").rmdir()
    (models.models / "checkpoints" / "sub").symlink_to(outside, target_is_directory=True)
    [entry] = decisions.quarantined()
    with pytest.raises(ActionRefused, match="link"):
        decisions.restore(entry["id"], by="test")
    assert not list(outside.iterdir()) and len(decisions.quarantined()) == 1


def test_ids_are_never_reused_and_a_stale_id_restores_nothing(models):
    decisions = decisions_of(models)
    first = decisions.quarantine("checkpoints", "sub/a.safetensors", listing(models), by="test")
    decisions.restore(first["id"], by="test")
    second = decisions.quarantine("checkpoints", "b.safetensors", listing(models), by="test")
    assert second["id"] != first["id"]
    with pytest.raises(ActionRefused) as refused:
        decisions.restore(first["id"], by="test")
    assert refused.value.status == 404
    assert (models.models / ".usage-stats-quarantine" / "checkpoints" / "b.safetensors").exists()


def test_a_quarantine_of_a_name_already_held_keeps_both(models):
    decisions = decisions_of(models)
    decisions.quarantine("checkpoints", "b.safetensors", listing(models), by="test")
    place_file(models.models / "checkpoints" / "b.safetensors", b"B" * 5)
    decisions.quarantine("checkpoints", "b.safetensors", listing(models), by="test")
    held = models.models / ".usage-stats-quarantine" / "checkpoints"
    assert {p.name: p.read_bytes() for p in held.iterdir()} == {"b.safetensors": b"b" * 20, "b (2).safetensors": b"B" * 5}
    assert sum(e["size"] for e in decisions.quarantined()) == 25


def test_the_keep_list_and_actions_log_outlive_a_corrupt_database(models):
    decisions = decisions_of(models)
    decisions.set_kept("model", "checkpoints", "b.safetensors", True)
    decisions.quarantine("checkpoints", "sub/a.safetensors", listing(models), by="test")
    database = models.base / "user" / "__nodes_stats" / "usage_stats.db"
    database.write_bytes(b"garbage" * 100)
    UsageStore(str(database)).close()  # moved aside, a fresh one made
    again = decisions_of(models)
    assert again.kept() == {("model", "checkpoints", "b.safetensors")}
    assert [a["action"] for a in again.actions()] == ["quarantine"]


def test_what_an_older_version_kept_in_the_database_is_taken_over_once(models):
    """Schema v5 kept the keep list, quarantine and actions log in SQLite; v6 hands them to the journals."""
    path = models.base / "user" / "__nodes_stats" / "usage_stats.db"
    path.parent.mkdir(parents=True)
    held = place_file(models.models / ".usage-stats-quarantine" / "checkpoints" / "sub" / "a.safetensors", b"a" * 10)
    (models.models / "checkpoints" / "sub" / "a.safetensors").unlink()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 0")
    store = UsageStore(str(path))
    with sqlite3.connect(path) as db:  # what a v5 database held, in the tables v6 renamed
        db.execute("INSERT INTO legacy_keep_list VALUES ('package', '', 'SomePack', 5)")
        db.execute("INSERT INTO legacy_quarantine VALUES (1, 'checkpoints', 'sub/a.safetensors', ?, ?, 10, 6)",
                   (str(models.models / "checkpoints" / "sub" / "a.safetensors"), str(held)))
        db.execute("INSERT INTO legacy_actions_log VALUES (1, 6, 'quarantine', 'checkpoints/sub/a.safetensors', 'x', 'y', 'me')")
    decisions = decisions_of(models)
    decisions.take_over(store)
    decisions.take_over(store)
    assert store.legacy_decisions() is None
    assert decisions.kept() == {("package", "", "SomePack")}
    [entry] = decisions.quarantined()
    assert entry["original"] == str(models.models / "checkpoints" / "sub" / "a.safetensors")
    assert [a["requested_by"] for a in decisions.actions()] == ["me"]
    store.close()


def test_every_move_is_written_down_before_it_happens(models, monkeypatch):
    """The intent is on disk when the rename runs: what a crash at that moment finds."""
    from usage_stats.actions import journal as journal_module

    decisions = decisions_of(models)
    seen = []
    real_move = journal_module.move_no_replace

    def spy(source, folder, name):
        manifest = models.models / ".usage-stats-quarantine" / "manifest.jsonl"
        seen.append([json.loads(line) for line in manifest.read_text().splitlines()])
        real_move(source, folder, name)

    monkeypatch.setattr(journal_module, "move_no_replace", spy)
    decisions.quarantine("checkpoints", "b.safetensors", listing(models), by="test")
    [records] = seen
    assert records[-1]["intent"] == "quarantine" and records[-1]["from"].endswith("b.safetensors")
