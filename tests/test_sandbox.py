"""The first run: the sandbox's sample data shows sizes, duplicates and packs, and scripts/sandbox answers.

The sample data is checked on disk (sparse files of the stated sizes, duplicates by content); the script
itself is started as a user would, with PORT, in a cache of its own that reuses the built ComfyUI.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from comfyui import REPO, comfyui_paths, until

sys.path.insert(0, str(REPO / "scripts"))
import sandbox_data  # noqa: E402


def test_sample_models_have_real_sizes_and_take_no_space(tmp_path):
    sandbox_data.main(tmp_path)
    for sample in sandbox_data.MODELS:
        stat = (tmp_path / "models" / sample.path).stat()
        assert stat.st_size == sample.size
        assert stat.st_blocks * 512 < 64 * 1024, f"{sample.path} is not sparse"
    assert sum(s.size for s in sandbox_data.MODELS) > 40 * 2**30


def head_of(path: Path) -> bytes:
    """The first bytes of a sample file (reading it whole would read gigabytes of its hole)."""
    with open(path, "rb") as file:
        return file.read(80)


def test_duplicates_share_bytes_and_equal_sizes_do_not_imply_it(tmp_path):
    sandbox_data.main(tmp_path)
    head = {s.path: head_of(tmp_path / "models" / s.path) for s in sandbox_data.MODELS}
    assert head["checkpoints/dreamshaper_8.safetensors"] == head["checkpoints/downloads/dreamshaper_8 (1).safetensors"]
    assert head["vae/sdxl_vae.safetensors"] == head["vae/backup/sdxl_vae.safetensors"]
    same_size = [s.path for s in sandbox_data.MODELS if s.size == 334_641_164]
    assert len({head[p] for p in same_size}) == 2, "the fp16-fix VAE has the SDXL VAE's size but other bytes"


def test_sample_packs_have_used_and_unused_nodes(tmp_path):
    sandbox_data.main(tmp_path)
    for name, pack in sandbox_data.PACKS.items():
        source = (tmp_path / "custom_nodes" / name / "__init__.py").read_text()
        for node in pack["nodes"]:
            assert f'"{node}"' in source
    last_used = [last for pack in sandbox_data.PACKS.values() for last in pack["nodes"].values()]
    assert None in last_used and any(last is not None for last in last_used)


@pytest.mark.comfyui
def test_the_sandbox_prints_its_url_on_the_given_port_once_it_answers(tmp_path):
    comfyui_dir, python = comfyui_paths()
    cache = tmp_path / "cache"
    cache.mkdir()
    real_cache = comfyui_dir.parent
    for entry in (comfyui_dir.name, "venv", ".ready-v1", "tests-requirements.txt"):
        (cache / entry).symlink_to(real_cache / entry)
    newest = Path(os.environ["COMFYUI_FRONTEND_NEWEST"]).parent.parent
    (cache / newest.name).symlink_to(newest)
    from comfyui import free_port

    port = free_port()
    env = {**os.environ, "PORT": str(port), "USAGE_STATS_CACHE": str(cache)}
    out = tmp_path / "sandbox.out"
    with open(out, "wb") as handle:
        process = subprocess.Popen([str(REPO / "scripts" / "sandbox")], env=env, stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ready = until(lambda: re.search(r"ready: (http://\S+)", out.read_text()), 120, "the ready line")
        assert ready.group(1) == f"http://127.0.0.1:{port}"
        import urllib.request

        with urllib.request.urlopen(f"{ready.group(1)}/nodes-stats/disk", timeout=10) as response:
            assert b"safe_to_remove" in response.read()
        printed = out.read_text()
        assert "Traceback" not in printed and "IMPORT FAILED" not in printed
        assert "torchaudio" in printed  # the missing audio nodes are explained, not shown as a failure
        assert "import time: 0.4 seconds: ComfyUI-Sample-Old-Effects" in printed
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(30)


def test_the_readme_states_what_the_samples_hold():
    readme = (REPO / "README.md").read_text()
    total = sum(s.size for s in sandbox_data.MODELS) / 2**30
    assert f"**{len(sandbox_data.MODELS)} model files of realistic sizes, {total:.0f} GB in all**" in readme
    assert "https://github.com/comfyui-usage-stats/comfyui-usage-stats" in readme and "<this repository>" not in readme
