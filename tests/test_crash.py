"""A crash at any step of any file action leaves every file in exactly one place, listed and usable.

Each case starts a real ComfyUI told to exit at one named step (USAGE_STATS_FAIL_AT, actions/moves.py), makes
the action crash it there, then starts it again (in some cases over a database replaced by garbage, as a disk
fault would leave it) and checks where the file is: moved when the crash came after the move, where it was
when the crash came before, never at both places or neither, its bytes unchanged, and the way back working.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from comfyui import ComfyServer, copy_pack, place_file

pytestmark = pytest.mark.comfyui

PACKS = Path(__file__).parent / "packs"
NAME = "sub/crash ü.safetensors"
BYTES = b"\x00model" * 500
MODEL = {"model_type": "checkpoints", "model_name": NAME}
STEPS = ("after-intent", "after-move", "before-commit")
ACTIONS = ("quarantine", "restore", "empty", "disable", "enable")
CASES = [(action, step, step == "after-move") for action in ACTIONS for step in STEPS]
"""Every action at every step; after the move, the database is also replaced by garbage before the restart (the
step before the commit differs only by the folders' fsync, so it covers the same crash with the database intact)."""


def act(server: ComfyServer, path: str, body: dict):
    return server.request("POST", path, {"confirm": True, **body}, {"Origin": server.url})


def quarantined(server: ComfyServer) -> list[dict]:
    return server.get("/nodes-stats/quarantine")["items"]


def prepare(server: ComfyServer, action: str) -> tuple[str, dict]:
    """Bring the install to where `action` can run (successful actions: the fail point is another's); returns
    the request that crashes."""
    if action in ("restore", "empty"):
        assert act(server, "/nodes-stats/quarantine", {"models": [MODEL]})[0] == 200
    if action == "enable":
        assert act(server, "/nodes-stats/packages/disable", {"package": "V1Pack"})[0] == 200
    if action == "restore":
        return "/nodes-stats/quarantine/restore", {"ids": [quarantined(server)[0]["id"]]}
    if action == "empty":
        return "/nodes-stats/quarantine/empty", {"confirm_bytes": len(BYTES)}
    if action == "quarantine":
        return "/nodes-stats/quarantine", {"models": [MODEL]}
    return f"/nodes-stats/packages/{action}", {"package": "V1Pack"}


def crash(server: ComfyServer, path: str, body: dict) -> None:
    try:
        act(server, path, body)
    except OSError:  # the connection dies with the process
        pass
    assert server.process.wait(30) == 70, server.log()[-3000:]


def garble(database: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    database.write_bytes(b"not a database " * 100)


@pytest.mark.parametrize("action, step, garbage", CASES, ids=[f"{a}-{s}{'-garbage-db' if g else ''}" for a, s, g in CASES])
def test_a_crash_at_any_step_leaves_every_file_in_exactly_one_place(make_server, action, step, garbage):
    server = make_server(env={"USAGE_STATS_FAIL_AT": f"{action}:{step}"})
    original = place_file(server.models / "checkpoints" / NAME, BYTES)
    copy_pack(PACKS / "V1Pack", server.custom_nodes)
    server.start()
    path, body = prepare(server, action)
    crash(server, path, body)
    if garbage:
        garble(server.database)
    server.env = {}
    server.start()

    moved = step != "after-intent"
    if action in ("disable", "enable"):
        check_pack(server, disabled=(action == "disable") == moved)
    else:
        in_quarantine = {"quarantine": moved, "restore": not moved, "empty": not moved}[action]
        deleted = action == "empty" and moved
        check_model(server, original, in_quarantine, deleted)


def check_model(server: ComfyServer, original: Path, in_quarantine: bool, deleted: bool) -> None:
    held = quarantined(server)
    assert original.exists() == (not in_quarantine and not deleted), (held, server.log()[-2000:])
    assert len(held) == int(in_quarantine), held
    if deleted:
        assert not list((server.models / ".usage-stats-quarantine").rglob("*.safetensors"))
        return
    if in_quarantine:
        [entry] = held
        assert Path(entry["quarantined"]).read_bytes() == BYTES and entry["original"] == str(original)
        status, data, _ = act(server, "/nodes-stats/quarantine/restore", {"ids": [entry["id"]]})
        assert status == 200, data
        assert quarantined(server) == []
    assert original.read_bytes() == BYTES
    assert server.model("checkpoints", NAME) is not None
    status, data, _ = act(server, "/nodes-stats/quarantine", {"models": [MODEL]})  # and it can go again
    assert status == 200, data


def check_pack(server: ComfyServer, disabled: bool) -> None:
    enabled_path, disabled_path = server.custom_nodes / "V1Pack", server.custom_nodes / ".disabled" / "V1Pack"
    assert (enabled_path.exists(), disabled_path.exists()) == (not disabled, disabled)
    status, data, _ = act(server, f"/nodes-stats/packages/{'enable' if disabled else 'disable'}", {"package": "V1Pack"})
    assert status == 200, data
    assert (enabled_path.exists(), disabled_path.exists()) == (disabled, not disabled)
