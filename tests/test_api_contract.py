"""The API's contract, walked over every registered route: one error shape, refusals that say why, and no
route that answers a page of another site."""

from __future__ import annotations

import json

import pytest
from api_app import AppClient
from comfyui import place_file
from usage_stats.mapper import ModelMapper, PackageMapper
from usage_stats.recording.writer import Writer
from usage_stats.tracker import UsageStore


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    import folder_paths

    base = tmp_path_factory.mktemp("contract")
    folder_paths.configure(base)
    writer = Writer(lambda: UsageStore(str(base / "usage_stats.db")), PackageMapper(own_pack="us"), ModelMapper())
    writer.start()
    client = AppClient(writer, str(base / "decisions"))
    yield client
    client.close()
    writer.stop()


def every_route(app: AppClient) -> list[tuple[str, str]]:
    paths = {(r.method, r.resource.canonical.replace("{model_type}", "checkpoints").replace("{model_name}", "x"))
             for r in app.client.server.app.router.routes()}
    return sorted(p for p in paths if p[0] != "HEAD")


def assert_error(status: int, body: bytes, headers: dict, expected: int) -> dict:
    assert status == expected, (status, body[:300])
    assert headers["Content-Type"].startswith("application/json") and headers["Cache-Control"] == "no-store"
    data = json.loads(body)
    assert set(data) == {"ok", "status", "error"} and data["ok"] is False and data["status"] == expected, data
    assert isinstance(data["error"], str) and len(data["error"]) > 10, data
    return data


def test_every_route_refuses_an_unknown_query_parameter_with_the_one_error_shape(app):
    routes = every_route(app)
    assert len(routes) >= 30
    for method, path in routes:
        status, body, headers = app.call(method, f"{path}?no_such_parameter=1", json={})
        data = assert_error(status, body, headers, 400)
        assert "no_such_parameter" in data["error"], (path, data)


def test_every_route_refuses_another_sites_host_with_the_reason(app):
    for method, path in every_route(app):
        status, body, headers = app.call(method, path, json={}, headers={"Host": f"evil.example:{app.port}"})
        assert "not a name of this server" in assert_error(status, body, headers, 403)["error"]


def test_every_change_refuses_another_sites_page(app):
    changes = [(m, p) for m, p in every_route(app) if m != "GET"]
    assert len(changes) >= 15
    for method, path in changes:
        status, body, headers = app.call(method, path, json={}, headers={"Origin": "http://evil.example"})
        assert "another site" in assert_error(status, body, headers, 403)["error"]


def test_no_read_hands_the_writer_anything(app, monkeypatch):
    """A GET only reads, even when it meets a model file for the first time: first sightings are the writer's
    own inventory, and until it is taken a report counts the file as first seen now."""
    from pathlib import Path

    import folder_paths

    app.writer.flush()  # the writer's inventory at start is taken
    place_file(Path(folder_paths.models_dir) / "checkpoints" / "new-since-start.safetensors")
    handed = []
    monkeypatch.setattr(app.writer, "submit", lambda task, wait_seconds=0: handed.append(task))
    for method, path in every_route(app):
        if method == "GET":
            assert app.call(method, path)[0] in (200, 404, 503), path  # 503: no memory manager in this app
    assert handed == []


def test_a_change_answers_an_object_with_ok_true_and_a_read_answers_the_resource(app):
    for method, path, body in [("PUT", "/nodes-stats/config", {}), ("POST", "/nodes-stats/reset", {"confirm": True}),
                               ("POST", "/nodes-stats/duplicates/cancel", {})]:
        status, data = app.json(method, path, body)
        assert status == 200 and data["ok"] is True and len(data) > 1, (path, data)
    status, data = app.json("GET", "/nodes-stats/config")
    assert status == 200 and "ok" not in data and "config" in data


def test_a_full_writer_queue_answers_503_at_once(app, monkeypatch):
    """A burst of prompts fills the writer's queue: a change is refused at once, never blocking the event loop."""
    import queue

    def full(item):
        raise queue.Full

    monkeypatch.setattr(app.writer._queue, "put_nowait", full)
    status, body, headers = app.call("POST", "/nodes-stats/reset", json={"confirm": True})
    assert "busy" in assert_error(status, body, headers, 503)["error"]


def test_this_computers_own_host_names_are_let_in():
    """A browser on the network may open ComfyUI by the computer's name; a rebinding page cannot carry that Host."""
    import socket

    from usage_stats.api.access import Access

    access = Access("0.0.0.0", 8188, machine=("studio-pc", "studio-pc.local"))
    assert access.host_refusal("studio-pc:8188") is None and access.host_refusal("STUDIO-PC.local:8188") is None
    assert access.host_refusal("studio-pc.evil.example:8188") is not None
    assert access.host_refusal("studio-pc:8189") is not None
    assert access.host_refusal("proxy.lan") is not None
    assert Access("127.0.0.1", 8188, names=("proxy.lan:80",)).host_refusal("proxy.lan") is None
    assert socket.gethostname().lower() in Access.from_comfyui().machine
