"""No request a page of another site can make reaches our routes, on a real ComfyUI.

DNS rebinding is the attack an Origin check alone misses: the page's own name is made to point at 127.0.0.1,
so its requests carry `Host` and `Origin` both of the attacker's name, which agree. Every route must answer
only to this server's own names; changes also need a page of the same origin. Each refused request is made
with a body that would otherwise succeed, and afterwards nothing on disk or in the statistics has changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from comfyui import ComfyServer, copy_pack, place_file, prompt_using

pytestmark = pytest.mark.comfyui

PACKS = Path(__file__).parent / "packs"
MODEL = {"model_type": "checkpoints", "model_name": "victim.safetensors"}


def changes(server: ComfyServer) -> list[tuple[str, str, dict]]:
    """Every state-changing route, each with a body it would act on if the request were allowed."""
    return [
        ("POST", "/nodes-stats/quarantine", {"confirm": True, "models": [MODEL]}),
        ("POST", "/nodes-stats/quarantine/restore", {"confirm": True, "ids": [1]}),
        ("POST", "/nodes-stats/quarantine/empty", {"confirm": True, "confirm_bytes": 0}),
        ("POST", "/nodes-stats/packages/disable", {"confirm": True, "package": "V1Pack"}),
        ("POST", "/nodes-stats/packages/enable", {"confirm": True, "package": "V1Pack"}),
        ("POST", "/nodes-stats/keep", {"kind": "package", "name": "V1Pack", "keep": True}),
        ("POST", "/nodes-stats/reset", {"confirm": True}),
        ("PUT", "/nodes-stats/config", {"tracking": False, "allow_remote_actions": True}),
        ("PUT", "/nodes-stats/unload/config", {"enabled": True}),
        ("PUT", "/nodes-stats/unload/models/checkpoints/victim.safetensors", {"timeout_seconds": 60}),
        ("POST", "/nodes-stats/unload/now", {"confirm": True}),
        ("POST", "/nodes-stats/duplicates/scan", {}),
        ("POST", "/nodes-stats/history-import", {"confirm": True}),
    ]


def foreign(server: ComfyServer) -> list[dict]:
    """Host/Origin pairs a page of another site can produce (by rebinding its name, or as itself)."""
    port = server.port
    return [
        {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"},  # DNS rebinding
        {"Host": f"evil.example:{port}"},  # rebinding, a request without Origin
        {"Host": f"evil.example:{port}", "Origin": f"http://127.0.0.1:{port}"},  # foreign Host, loopback Origin
        {"Host": f"127.0.0.1:{port}", "Origin": f"http://evil.example:{port}"},  # loopback Host, foreign Origin
        {"Host": f"localhost.evil.example:{port}", "Origin": f"http://localhost.evil.example:{port}"},
        {"Host": f"127.0.0.1.nip.example:{port}", "Origin": f"http://127.0.0.1.nip.example:{port}"},
        {"Host": f"127.0.0.1:{port + 1}", "Origin": f"http://127.0.0.1:{port + 1}"},  # another local port's page
        {"Host": f"192.0.2.7:{port}", "Origin": f"http://192.0.2.7:{port}"},  # an address not of this machine
        {"Host": f"127.0.0.1:{port}", "Origin": "null"},  # a sandboxed frame or a file:// page
    ]


def snapshot(server: ComfyServer) -> tuple:
    """What an attack could change: every file under the base (its bytes), the statistics, the settings."""
    paths = [p for p in sorted(server.base.rglob("*")) if "__pycache__" not in p.parts]
    ours = ("usage_stats.db", "comfyui.log")  # the database is checked through the API (SQLite rewrites pages)
    files = {str(p.relative_to(server.base)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in paths if p.is_file() and not p.name.startswith(ours)}
    folders = [str(p.relative_to(server.base)) for p in paths if p.is_dir()]
    settings = server.get("/nodes-stats/config")["config"], server.get("/nodes-stats/unload/config")["config"]
    return files, folders, server.get("/nodes-stats/status")["prompts_recorded"], settings


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    comfy = ComfyServer(tmp_path_factory.mktemp("security"))
    place_file(comfy.models / "checkpoints" / "victim.safetensors", b"v" * 100)
    copy_pack(PACKS / "V1Pack", comfy.custom_nodes)
    with comfy:
        assert comfy.queue_prompt(prompt_using("victim.safetensors"))[0] == 200
        comfy.wait_recorded(1)
        yield comfy


def test_no_page_of_another_site_changes_anything(server):
    before = snapshot(server)
    for method, path, body in changes(server):
        for headers in foreign(server):
            status, data, _ = server.request(method, path, body, headers)
            assert status == 403, (method, path, headers, status, data)
    assert snapshot(server) == before


def test_reads_answer_only_to_this_servers_own_names(server):
    for headers in foreign(server)[:3] + foreign(server)[4:8]:
        status, data, _ = server.request("GET", "/nodes-stats/models", headers=headers)
        assert status == 403 and "refused" in data["error"], (headers, status, data)
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", f"[::1]:{server.port}"):
        status, data, _ = server.request("GET", "/nodes-stats/models", headers={"Host": host})
        assert status == 200, (host, data)


def test_a_refusal_says_why(server):
    status, data, _ = server.request("POST", "/nodes-stats/reset", {"confirm": True},
                                     {"Host": f"evil.example:{server.port}", "Origin": f"http://evil.example:{server.port}"})
    assert status == 403 and "'evil.example' is not a name of this server" in data["error"]


def test_the_same_page_still_acts(server):
    status, data, _ = server.request("POST", "/nodes-stats/keep", {"kind": "package", "name": "V1Pack", "keep": True},
                                     {"Origin": server.url})
    assert status == 200, data
    assert server.package("V1Pack")["kept"] is True


def test_listening_on_every_address_refuses_rebinding_and_actions_from_the_network(make_server):
    server = make_server(("--listen", "0.0.0.0"))
    place_file(server.models / "checkpoints" / "victim.safetensors", b"v" * 100)
    copy_pack(PACKS / "V1Pack", server.custom_nodes)
    server.start()
    before = snapshot(server)
    for method, path, body in changes(server):
        for headers in foreign(server):
            assert server.request(method, path, body, headers)[0] == 403, (path, headers)
    # This machine's own address by its loopback name: the host is ours, but file actions stay off the network.
    status, data, _ = server.request("POST", "/nodes-stats/quarantine", {"confirm": True, "models": [MODEL]},
                                     {"Origin": server.url})
    assert status == 403 and "allow_remote_actions" in data["error"]
    # Only a loopback page (or script) may lift that guard, never a page of another site.
    status, data, _ = server.request("PUT", "/nodes-stats/config", {"allow_remote_actions": True},
                                     {"Origin": f"http://evil.example:{server.port}"})
    assert status == 403
    assert snapshot(server) == before
    status, data, _ = server.request("PUT", "/nodes-stats/config", {"allow_remote_actions": True}, {"Origin": server.url})
    assert status == 200 and data["config"]["allow_remote_actions"] is True
