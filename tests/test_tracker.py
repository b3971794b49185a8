"""The store and the rules: schema and migrations, writes, honest aging, tiers, reports, legacy import."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import NOW
from usage_stats.store import database, schema
from usage_stats.domain.tiers import Thresholds, classify
from usage_stats.domain.values import DAY, EVERYTHING, InstalledPackage, Outcome, PromptUse, View, iso
from usage_stats.reports.models import model_report
from usage_stats.reports.packages import package_report
from usage_stats.tracker import UsageStore


def use(ts, nodes=None, models=(), **verdict):
    return PromptUse(ts, nodes or {}, frozenset(models), **verdict)


# ---- schema


def test_a_new_database_is_at_the_latest_schema_version_in_wal_mode(store):
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_failing_migration_rolls_back_and_stays_pending(tmp_path, monkeypatch):
    def broken(db):
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(RuntimeError):
        database.open_database(str(tmp_path / "db.sqlite"))
    db = sqlite3.connect(tmp_path / "db.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS) - 1
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchone() is None


def test_rerunning_migrations_applies_each_once(tmp_path):
    path = str(tmp_path / "db.sqlite")
    database.open_database(path).close()
    db = database.open_database(path)
    assert schema.migrate(db) == len(schema.MIGRATIONS)


def test_a_database_from_a_newer_extension_is_refused_not_moved_aside(tmp_path):
    path = tmp_path / "db.sqlite"
    sqlite3.connect(path).execute(f"PRAGMA user_version = {len(schema.MIGRATIONS) + 1}")
    with pytest.raises(sqlite3.DatabaseError, match="newer"):
        database.open_database(str(path))
    assert path.exists() and not list(tmp_path.glob("*.corrupt-*"))


def test_a_corrupt_file_is_moved_aside_and_a_fresh_database_created(tmp_path, caplog):
    path = tmp_path / "usage_stats.db"
    path.write_bytes(b"this is not a database" * 100)
    db = database.open_database(str(path), clock=lambda: NOW)
    assert db.execute("SELECT COUNT(*) FROM node_usage").fetchone() == (0,)
    aside = list(tmp_path.glob("usage_stats.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    assert "moved it aside" in caplog.text


# ---- writes


def test_record_counts_each_prompt_and_keeps_first_and_last_seen(store):
    store.record([use(NOW - 10, {"KSampler": "__builtin__"}, [("checkpoints", "a.safetensors")])])
    store.record([use(NOW, {"KSampler": "__builtin__"}, [("checkpoints", "a.safetensors")]),
                  use(NOW - 20, {"KSampler": "__builtin__"})])
    assert store.node_rows() == [("KSampler", "__builtin__", 3, NOW - 20, NOW)]
    assert store.model_rows() == [("checkpoints", "a.safetensors", 2, NOW - 10, NOW)]
    assert store.prompt_count() == 3


def test_first_sightings_are_never_moved_later(store):
    store.note_installed(packages=["Pack"], models=[("vae", "v.safetensors")])
    store.clock_state["now"] = NOW + 50 * DAY
    store.note_installed(packages=["Pack"], models=[("vae", "v.safetensors")])
    assert store.package_first_installed() == {"Pack": NOW}
    assert store.model_first_installed() == {("vae", "v.safetensors"): NOW}


def test_a_write_that_changes_nothing_keeps_the_version_so_cached_reports_stay(store):
    store.note_installed(packages=["Pack"], models=[("vae", "v.safetensors")])
    store.save_settings("config", {"safe_days": 60})
    version = store.version
    store.note_installed(packages=["Pack"], models=[("vae", "v.safetensors")])
    store.save_settings("config", {"safe_days": 60})
    assert store.version == version
    store.note_installed(models=[("vae", "w.safetensors")])
    assert store.version == version + 1


def test_reset_clears_usage_models_and_sightings(store):
    store.record([use(NOW, {"KSampler": "__builtin__"}, [("vae", "v.safetensors")])])
    store.note_installed(packages=["Pack"], models=[("vae", "v.safetensors")])
    store.reset()
    assert (store.node_rows(), store.model_rows(), store.prompt_count()) == ([], [], 0)
    assert (store.package_first_installed(), store.model_first_installed()) == ({}, {})


def test_a_legacy_node_stats_database_is_imported_once(store, tmp_path):
    legacy = tmp_path / "legacy.db"
    with sqlite3.connect(legacy) as db:
        db.executescript("""
            CREATE TABLE node_usage (class_type TEXT PRIMARY KEY, package TEXT, count INTEGER, first_seen TEXT, last_seen TEXT);
            CREATE TABLE prompt_log (id INTEGER PRIMARY KEY, timestamp TEXT, class_types TEXT);
            INSERT INTO node_usage VALUES ('KSampler', '__builtin__', 4,
                                           '2026-01-01T00:00:00+00:00', '2026-02-01T00:00:00+00:00');
            INSERT INTO node_usage VALUES ('Broken', NULL, 1, 'not a date', 'x');
            INSERT INTO prompt_log VALUES (1, '2026-02-01T00:00:00+00:00', '[]');
        """)
    store.record([use(NOW, {"KSampler": "__builtin__"})])
    assert store.import_legacy(str(legacy)) is True
    assert store.import_legacy(str(legacy)) is False
    (row,) = store.node_rows()
    assert row[:3] == ("KSampler", "__builtin__", 5) and iso(row[3]) == "2026-01-01T00:00:00+00:00"
    assert store.prompt_count() == 2


# ---- tiers


@pytest.mark.parametrize(
    "last_used, first_installed, installed, cap, expected",
    [
        (NOW - 1 * DAY, NOW - 400 * DAY, True, None, "used"),
        (NOW - 45 * DAY, NOW - 400 * DAY, True, None, "consider_removing"),
        (NOW - 61 * DAY, NOW - 400 * DAY, True, None, "safe_to_remove"),
        (None, NOW - 1 * DAY, True, None, "unused_new"),
        (None, NOW - 45 * DAY, True, None, "consider_removing"),
        (None, NOW - 90 * DAY, True, None, "safe_to_remove"),
        (None, None, True, None, "unused_new"),  # never seen installed before: its clock starts now
        (NOW - 90 * DAY, NOW - 400 * DAY, False, None, "uninstalled"),
        (None, NOW - 90 * DAY, True, "unused_new", "unused_new"),
        (None, NOW - 90 * DAY, True, "consider_removing", "consider_removing"),
        (NOW - 1 * DAY, NOW - 90 * DAY, True, "unused_new", "used"),  # a cap never makes an item look less used
    ],
)
def test_classify(last_used, first_installed, installed, cap, expected):
    assert classify(last_used, first_installed, NOW, installed=installed, cap=cap) == expected


def test_a_pack_first_seen_today_is_new_even_when_the_log_holds_old_prompts():
    rows = [("OldNode", "OldPack", 3, NOW - 90 * DAY, NOW - 90 * DAY)]
    packs = [InstalledPackage("NewPack", ["NewNode"]), InstalledPackage("OldPack", ["OldNode"])]
    report = {p["package"]: p for p in package_report(rows, packs, {"OldNode": "OldPack"}, {"NewPack": NOW}, NOW)}
    assert report["NewPack"]["status"] == "unused_new"
    assert report["OldPack"]["status"] == "safe_to_remove"


def test_packs_whose_use_cannot_be_observed_are_never_suggested_for_removal():
    long_ago = NOW - 400 * DAY
    packs = [
        InstalledPackage("FrontendOnly"),
        InstalledPackage("Disabled", disabled=True),
        InstalledPackage("Broken", import_failed=True),
        InstalledPackage("ComfyUI-Manager", ["ManagerNode"], protected=True),
    ]
    first = {p.name: long_ago for p in packs}
    report = {p["package"]: p for p in package_report([], packs, {}, first, NOW)}
    assert report["FrontendOnly"]["status"] == "unused_new" and report["FrontendOnly"]["frontend_only"]
    assert report["Disabled"]["status"] == "consider_removing" and not report["Disabled"]["installed"]
    assert report["Broken"]["status"] == "consider_removing" and report["Broken"]["import_failed"]
    assert report["ComfyUI-Manager"]["status"] == "unused_new"
    assert all(p["reasons"] for p in report.values())


def test_history_of_a_missing_pack_is_credited_to_it_once_it_is_installed_again():
    rows = [("FooNode", "__unknown__", 2, NOW - DAY, NOW - DAY)]
    report = package_report(rows, [InstalledPackage("Foo", ["FooNode"])], {"FooNode": "Foo"}, {"Foo": NOW}, NOW)
    assert [(p["package"], p["total_executions"], p["status"]) for p in report] == [("Foo", 2, "used")]


def test_model_report_lists_installed_and_used_models_by_type():
    rows = [("checkpoints", "a.safetensors", 2, NOW - DAY, NOW - DAY), ("vae", "gone.safetensors", 1, NOW - DAY, NOW - DAY)]
    installed = {"checkpoints": ["a.safetensors", "b.safetensors"], "vae": []}
    report = model_report(rows, installed, {("checkpoints", "b.safetensors"): NOW - 90 * DAY}, NOW)
    flat = {(s["model_type"], m["model_name"]): m["status"] for s in report for m in s["models"]}
    assert flat == {("checkpoints", "a.safetensors"): "used", ("checkpoints", "b.safetensors"): "safe_to_remove",
                    ("vae", "gone.safetensors"): "uninstalled"}


def test_the_same_file_under_two_types_is_used_when_either_name_is():
    rows = [("checkpoints", "m.safetensors", 1, NOW - DAY, NOW - DAY)]
    installed = {"checkpoints": ["m.safetensors"], "ipadapter": ["m.safetensors"]}
    same = {("checkpoints", "m.safetensors"): "/models/m.safetensors", ("ipadapter", "m.safetensors"): "/models/m.safetensors"}
    first = {("ipadapter", "m.safetensors"): NOW - 90 * DAY}
    report = model_report(rows, installed, first, NOW, same_file=same)
    assert {m["status"] for s in report for m in s["models"]} == {"used"}


def test_a_name_used_long_ago_is_used_while_another_name_of_its_file_was_used_since():
    rows = [("checkpoints", "m.safetensors", 1, NOW - DAY, NOW - DAY),
            ("ipadapter", "m.safetensors", 4, NOW - 300 * DAY, NOW - 200 * DAY)]
    installed = {"checkpoints": ["m.safetensors"], "ipadapter": ["m.safetensors"]}
    same = {key: "/models/m.safetensors" for key in (("checkpoints", "m.safetensors"), ("ipadapter", "m.safetensors"))}
    report = model_report(rows, installed, {}, NOW, same_file=same)
    ipadapter = next(s for s in report if s["model_type"] == "ipadapter")["models"][0]
    assert ipadapter["status"] == "used" and ipadapter["count"] == 4
    assert "last used as checkpoints/m.safetensors, the same file" in ipadapter["reasons"]


def test_preview_decoders_are_never_suggested_for_removal():
    report = model_report([], {"vae_approx": ["taesd_decoder.pth"]}, {("vae_approx", "taesd_decoder.pth"): NOW - 400 * DAY}, NOW)
    (model,) = report[0]["models"]
    assert model["status"] == "unused_new" and model["reasons"]


def test_retention_prunes_old_detail_without_changing_any_total(store):
    old = [use(NOW - (200 + i % 3) * DAY, {"KSampler": "__builtin__"}, [("vae", "v.safetensors")]) for i in range(12)]
    store.record(old + [use(NOW, {"KSampler": "__builtin__"})])
    before = (store.prompt_count(), store.node_rows(), store.model_rows(), store.totals("model"), store.totals("node"))
    cutoff = NOW - 180 * DAY
    assert [store.prune_detail(cutoff, batch=5) for _ in range(4)] == [5, 5, 2, 0]
    assert (store.prompt_count(), store.node_rows(), store.model_rows(), store.totals("model"), store.totals("node")) == before
    db = sqlite3.connect(store.path)
    assert db.execute("SELECT COUNT(*) FROM prompt_log").fetchone() == (1,)
    assert db.execute("SELECT SUM(prompts), COUNT(*) FROM daily WHERE kind = 'prompt'").fetchone() == (13, 4)


# ---- outcomes, days and users


def test_a_rejected_prompt_is_kept_apart_and_never_counts_as_use(store):
    typo = ("checkpoints", "typo.safetensors")
    store.record([use(NOW, {"KSampler": "__builtin__"}, [typo], accepted=False)])
    assert (store.node_rows(), store.model_rows(), store.prompt_count()) == ([], [], 0)
    assert store.totals("model")["checkpoints/typo.safetensors"].rejected == 1
    report = model_report([], {"checkpoints": [typo[1]]}, {typo: NOW - 90 * DAY}, NOW, totals=store.totals("model"))
    (model,) = report[0]["models"]
    assert (model["status"], model["count"], model["rejected_count"]) == ("safe_to_remove", 0, 1)


def test_an_outcome_lands_on_the_log_row_and_on_every_daily_row_of_its_prompt(store):
    prompt = use(NOW, {"KSampler": "__builtin__", "Glow": "GlowPack"}, [("vae", "v.safetensors")])
    (row_id,) = store.record([prompt])
    store.record_outcomes([Outcome(prompt, row_id, "error", exec_ms=1200, cached_nodes=1)])
    for kind, item in [("prompt", ""), ("node", "Glow"), ("package", "GlowPack"), ("model", "vae/v.safetensors")]:
        totals = store.totals(kind)[item]
        assert (totals.prompts, totals.failures, totals.successes, totals.exec_ms) == (1, 1, 0, 1200)
    assert store.outcomes_since(NOW - 10) == {"error": 1}
    assert store.execution_times() == [1200]


def test_record_returns_the_log_row_of_each_prompt_in_order(store):
    first = store.record([use(NOW), use(NOW)])
    second = store.record([use(NOW, accepted=False)])
    assert first + second == [1, 2, 3]


def test_a_view_counts_its_window_and_its_user_but_tiers_count_everyone(store):
    store.record([
        use(NOW - 40 * DAY, {"A": "PackA"}, user="bob"),
        use(NOW - DAY, {"A": "PackA"}, user="bob"),
        use(NOW - 2 * DAY, {"B": "PackB"}, user="alice"),
    ])
    installed = [InstalledPackage("PackA", ["A"]), InstalledPackage("PackB", ["B"])]
    first = {"PackA": NOW - 400 * DAY, "PackB": NOW - 400 * DAY}
    alice_week = View(since_day=NOW // DAY - 6, user="alice")
    report = package_report(store.node_rows(), installed, {"A": "PackA", "B": "PackB"}, first, NOW,
                            view=alice_week, totals=store.totals("node", alice_week))
    by_name = {p["package"]: p for p in report}
    assert (by_name["PackA"]["total_executions"], by_name["PackA"]["status"]) == (0, "used")  # bob still uses it
    assert by_name["PackB"]["total_executions"] == 1
    assert store.totals("node", View(since_day=NOW // DAY - 6))["A"].prompts == 1
    assert store.totals("node")["A"].prompts == 2
    assert store.users() == ["alice", "bob"]


def test_nothing_ages_from_before_tracking_resumed():
    resumed_yesterday = Thresholds(watched_since=NOW - DAY)
    assert classify(None, NOW - 90 * DAY, NOW, thresholds=resumed_yesterday) == "unused_new"
    assert classify(NOW - 90 * DAY, NOW - 400 * DAY, NOW, thresholds=resumed_yesterday) == "used"
    assert classify(NOW - 90 * DAY, NOW - 400 * DAY, NOW, thresholds=Thresholds(watched_since=NOW - 45 * DAY)) == (
        "consider_removing"
    )


def test_migrating_a_v2_database_keeps_every_prompt_total(tmp_path):
    path = tmp_path / "v2.db"
    db = sqlite3.connect(path, isolation_level=None)
    for migration in schema.MIGRATIONS[:2]:
        migration(db)
    db.execute("PRAGMA user_version = 2")
    db.execute("INSERT INTO prompt_log (ts) VALUES (?), (?)", (NOW, NOW - DAY))
    db.execute("INSERT INTO prompt_days VALUES (?, 7)", (NOW // DAY - 300,))
    db.close()
    store = UsageStore(str(path))
    assert store.prompt_count() == 9
    store.close()


def test_the_node_reports_count_a_prompt_recorded_after_their_last_read(store, fake_comfy):
    """The node types' daily totals are kept between reads (summing them is most of a packages report): a
    write must show in the next one."""
    from usage_stats.domain.tiers import DEFAULT_THRESHOLDS
    from usage_stats.mapper import ModelMapper, PackageMapper
    from usage_stats.reports.service import Reports

    reports = Reports(PackageMapper(own_pack="us"), ModelMapper(), lambda now: DEFAULT_THRESHOLDS)
    last_week = View(since_day=NOW // DAY - 6)
    upscale = PromptUse(NOW, {"Upscale": "upscale-pack"}, frozenset())
    store.record([upscale])

    def count(view):
        return {n["class_type"]: n["count"] for n in reports.usage_report(store, view)}["Upscale"]

    assert count(last_week) == 1 and count(EVERYTHING) == 1
    [row_id] = store.record([upscale])
    assert count(last_week) == 2
    store.record_outcomes([Outcome(upscale, row_id, "error", 10)])
    [pack] = [p for p in reports.package_report(store, last_week) if p["package"] == "upscale-pack"]
    assert [node["failures"] for node in pack["nodes"]] == [1]
