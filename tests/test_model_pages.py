"""The reads the Models tab pages with: /models in the panel's order (`sort=removable`) a page at a time, and
/disk's totals for a search, over our routes in a real aiohttp app (no ComfyUI needed)."""

from __future__ import annotations

import json

import pytest
from api_app import AppClient
from comfyui import place_file
from conftest import NOW
from usage_stats.domain.tiers import DEFAULT_THRESHOLDS
from usage_stats.domain.values import DAY, EVERYTHING, PromptUse, View
from usage_stats.mapper import ModelMapper, PackageMapper
from usage_stats.recording.writer import Writer
from usage_stats.tracker import UsageStore

INSTALLED = {
    ("checkpoints", "b_old.safetensors"): NOW - 100 * DAY,
    ("checkpoints", "A_old.safetensors"): NOW - 100 * DAY,
    ("checkpoints", "used.safetensors"): NOW - 100 * DAY,
    ("checkpoints", "middle.safetensors"): NOW - 45 * DAY,
    ("vae", "a_vae_old.safetensors"): NOW - 100 * DAY,
    ("vae", "used_vae.safetensors"): NOW - 100 * DAY,
}
PANEL_ORDER = [  # most removable tier first, then name (case aside), types mixed; the uninstalled last
    ("checkpoints", "A_old.safetensors", "safe_to_remove"),
    ("vae", "a_vae_old.safetensors", "safe_to_remove"),
    ("checkpoints", "b_old.safetensors", "safe_to_remove"),
    ("checkpoints", "middle.safetensors", "consider_removing"),
    ("checkpoints", "used.safetensors", "used"),
    ("vae", "used_vae.safetensors", "used"),
    ("checkpoints", "gone.safetensors", "uninstalled"),
]


@pytest.fixture
def app(fake_comfy, tmp_path):
    """Six installed models of four tiers in two types, and one used model no longer installed."""
    clock = {"now": NOW}
    writer = Writer(lambda: UsageStore(str(tmp_path / "usage.db"), clock=lambda: clock["now"]), PackageMapper(own_pack="us"),
                    ModelMapper())
    writer.start()
    for (model_type, name), first_seen in INSTALLED.items():
        place_file(fake_comfy.models / model_type / name)
        clock["now"] = first_seen
        writer.submit(lambda store, key=(model_type, name): store.note_installed(models=[key])).result()
    uses = [(NOW - DAY, {("checkpoints", "used.safetensors"), ("vae", "used_vae.safetensors")}),
            (NOW - 100 * DAY, {("checkpoints", "gone.safetensors")})]
    writer.submit(lambda store: store.record([PromptUse(ts, {}, frozenset(models)) for ts, models in uses])).result()
    clock["now"] = NOW
    client = AppClient(writer, str(tmp_path / "decisions"))
    yield client
    client.close()
    writer.stop()


def page(app: AppClient, query: str) -> tuple[list[tuple[str, str, str]], int, list[str]]:
    """(rows as (type, name, tier), X-Total-Count, the types heading each group) of one /models answer."""
    status, body, headers = app.call("GET", f"/nodes-stats/models?{query}")
    assert status == 200, body
    groups = json.loads(body)
    rows = [(g["model_type"], m["model_name"], m["status"]) for g in groups for m in g["models"]]
    return rows, int(headers["X-Total-Count"]), [g["model_type"] for g in groups]


def test_sort_removable_is_the_panels_order_and_its_pages_add_up_to_the_whole_list(app):
    rows, total, _ = page(app, "sort=removable")
    assert rows == PANEL_ORDER and total == len(PANEL_ORDER)
    pages = [page(app, f"sort=removable&offset={offset}&limit=3") for offset in (0, 3, 6)]
    assert [row for rows, _, _ in pages for row in rows] == PANEL_ORDER
    assert {total for _, total, _ in pages} == {len(PANEL_ORDER)}
    assert pages[0][2] == ["checkpoints", "vae", "checkpoints"]  # consecutive rows of one type share a group, in order


def test_sort_removable_pages_one_section_of_the_panel_filtered_by_type_tier_and_search(app):
    rows, total, groups = page(app, "sort=removable&type=checkpoints&status=safe_to_remove,consider_removing,unused_new,used"
                                    "&offset=1&limit=2")
    assert rows == [("checkpoints", "b_old.safetensors", "safe_to_remove"),
                    ("checkpoints", "middle.safetensors", "consider_removing")]
    assert total == 4 and groups == ["checkpoints"]
    rows, total, _ = page(app, "sort=removable&q=OLD&limit=2")
    assert [name for _, name, _ in rows] == ["A_old.safetensors", "a_vae_old.safetensors"] and total == 3


def test_the_default_order_is_still_by_type_then_from_used_to_uninstalled(app):
    rows, _, groups = page(app, "")
    assert groups == ["checkpoints", "vae"]
    assert [name for _, name, _ in rows][:3] == ["used.safetensors", "middle.safetensors", "A_old.safetensors"]
    assert page(app, "sort=type")[0] == rows


@pytest.mark.parametrize("value", ["size", "", "REMOVABLE", "removable,type"])
def test_an_unknown_sort_is_refused_with_the_choices(app, value):
    status, body, _ = app.call("GET", f"/nodes-stats/models?sort={value}")
    answer = json.loads(body)
    assert status == 400 and answer["ok"] is False and "sort" in answer["error"], answer
    assert "type, removable" in answer["error"]


def test_disk_totals_for_a_search_count_only_the_models_whose_name_contains_it(app):
    status, everything = app.json("GET", "/nodes-stats/disk")
    assert status == 200 and everything["tiers"]["safe_to_remove"]["files"] == 3
    status, found = app.json("GET", "/nodes-stats/disk?q=OLD")
    assert status == 200
    assert {tier: n["files"] for tier, n in found["tiers"].items() if n["files"]} == {"safe_to_remove": 3}
    assert found["types"]["checkpoints"]["safe_to_remove"] == {"bytes": 2, "files": 2}
    assert found["types"]["vae"]["used"]["files"] == 0
    status, nothing = app.json("GET", "/nodes-stats/disk?q=no-such-name")
    assert status == 200 and sum(n["files"] for n in nothing["tiers"].values()) == 0


def test_disk_refuses_a_search_longer_than_any_name_and_an_unknown_parameter(app):
    status, answer = app.json("GET", "/nodes-stats/disk?q=" + "x" * 5000)
    assert status == 400 and "q is longer" in answer["error"]
    status, answer = app.json("GET", "/nodes-stats/disk?days=7")
    assert status == 400 and "days" in answer["error"]


def test_model_reports_of_three_views_read_in_turns_are_built_once_each(fake_comfy, store):
    """The panel reads a range view's page, the same page for all days and the /disk totals in turns."""
    from usage_stats.reports.service import Reports

    place_file(fake_comfy.models / "checkpoints" / "one.safetensors")
    reports = Reports(PackageMapper(own_pack="us"), ModelMapper(), lambda now: DEFAULT_THRESHOLDS)
    views = [View(NOW // DAY - 6, None), View(None, "alice"), EVERYTHING]
    first = [reports.model_report(store, view) for view in views]
    again = [reports.model_report(store, view) for view in views]
    assert all(map(lambda report, built: report is built, again, first)), "a view's report was built again"
    reports.model_report(store, View(NOW // DAY - 29, None))  # a fourth view: the one asked for longest ago goes
    assert reports.model_report(store, views[0]) is not first[0]


def test_a_page_goes_gzipped_to_a_client_that_takes_it_and_is_compressed_once(app, monkeypatch):
    """A cached page is sent again and again (the panel, scripts): compressing it anew each time was most of a
    warm request at 20,000 models."""
    from usage_stats.api import requests

    monkeypatch.setattr(requests, "COMPRESS_ABOVE_BYTES", 0)  # this page is small; 20,000 models' is megabytes
    compressions = []
    compress = requests.gzip.compress
    monkeypatch.setattr(requests.gzip, "compress", lambda *args, **kwargs: compressions.append(1) or compress(*args, **kwargs))
    status, plain, plain_headers = app.call("GET", "/nodes-stats/models", headers={"Accept-Encoding": "identity"})
    assert status == 200 and "Content-Encoding" not in plain_headers
    for _ in range(2):
        status, body, headers = app.call("GET", "/nodes-stats/models", headers={"Accept-Encoding": "gzip, deflate"})
        assert status == 200 and headers["Content-Encoding"] == "gzip" and body == plain  # the client unzipped it
    assert len(compressions) == 1
