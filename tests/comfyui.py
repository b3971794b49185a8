"""A real ComfyUI server with this extension installed, for acceptance, fault and browser tests.

Each server gets its own base directory (models, custom_nodes, user), a free port on 127.0.0.1, and this
checkout linked into custom_nodes. The ComfyUI tree and its Python come from scripts/comfyui-env, via the
COMFYUI_DIR and COMFYUI_PYTHON environment variables that scripts/test sets.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACK_NAME = "comfyui-usage-stats"


def comfyui_paths() -> tuple[Path, str] | None:
    """(ComfyUI source dir, its python) when scripts/comfyui-env has been run, else None."""
    directory, python = os.environ.get("COMFYUI_DIR"), os.environ.get("COMFYUI_PYTHON")
    if directory and python and (Path(directory) / "main.py").exists():
        return Path(directory), python
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def place_file(path: Path, content: bytes = b"x") -> Path:
    """A 1-byte placeholder model file (ComfyUI lists files by name; nothing reads them in these tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def prompt_using(checkpoint: str) -> dict:
    """A prompt ComfyUI accepts (it has an output node); it fails later, at execution, on the placeholder model."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 1]}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "4": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["3", 0],
            "seed": 0, "steps": 1, "cfg": 1.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "t"}},
    }


def until(check, timeout: float = 20.0, what: str = "", server: "ComfyServer | None" = None):
    """Poll `check()` until it returns something truthy and return that (the writer and ComfyUI's worker are
    asynchronous); on timeout, fail saying what did not happen, with the server's log when given one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    log = f"\n{server.log()[-3000:]}" if server else ""
    raise AssertionError(f"{what or 'the check'} did not happen within {timeout} s; last: {check()}{log}")


class ComfyServer:
    """One ComfyUI process. `base` is its --base-directory; call start(), then stop() (or use `with`)."""

    def __init__(self, base: Path, extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None):
        paths = comfyui_paths()
        if paths is None:
            raise RuntimeError("COMFYUI_DIR / COMFYUI_PYTHON are not set: run the tests through scripts/test")
        self.comfyui_dir, self.python = paths
        self.base = base
        self.extra_args = extra_args
        self.env = env or {}
        """Extra environment variables of the process (the crash tests set USAGE_STATS_FAIL_AT)."""
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = base / "comfyui.log"
        for folder in ("models", "custom_nodes", "user/default", "input", "output"):
            (base / folder).mkdir(parents=True, exist_ok=True)
        link = base / "custom_nodes" / PACK_NAME
        if not link.exists():
            link.symlink_to(REPO, target_is_directory=True)
        settings = base / "user" / "default" / "comfy.settings.json"
        if not settings.exists():  # the first-run template browser would cover the page in browser tests
            settings.write_text(json.dumps({"Comfy.TutorialCompleted": True}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def models(self) -> Path:
        return self.base / "models"

    @property
    def custom_nodes(self) -> Path:
        return self.base / "custom_nodes"

    @property
    def database(self) -> Path:
        return self.base / "user" / "__nodes_stats" / "usage_stats.db"

    def start(self, timeout: float = 90.0) -> "ComfyServer":
        command = [
            self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
            "--base-directory", str(self.base), "--database-url", "sqlite:///:memory:", *self.extra_args,
        ]
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            command, cwd=self.comfyui_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                self.get("/system_stats", timeout=1)
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"ComfyUI did not answer within {timeout:.0f} s:\n{self.log()[-4000:]}")

    def stop(self, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGINT)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(15)

    def restart(self) -> "ComfyServer":
        self.stop()
        return self.start()

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # ---- HTTP

    def request(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 30):
        """(status, parsed JSON or raw text, headers) without raising on 4xx/5xx."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        hdrs.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, _parse(response.read()), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, _parse(error.read()), dict(error.headers)

    def get(self, path: str, timeout: float = 30):
        status, data, _ = self.request("GET", path, timeout=timeout)
        if status != 200:
            raise AssertionError(f"GET {path} -> {status}: {data}")
        return data

    def queue_prompt(self, prompt: dict) -> tuple[int, dict]:
        status, data, _ = self.request("POST", "/prompt", {"prompt": prompt})
        return status, data

    def wait_recorded(self, count: int, timeout: float = 10.0) -> dict:
        """Wait until the extension has written `count` prompts to its database (the writer is asynchronous)."""
        def recorded():
            status = self.get("/nodes-stats/status")
            return status if status.get("prompts_recorded", 0) >= count else None

        return until(recorded, timeout, f"{count} recorded prompts")

    def flush(self) -> None:
        """Return once the extension's writer has handled everything queued before this call: a settings write
        (an empty change) is queued behind it and answers only when written. "Nothing happened" is checked
        after this, never after a sleep."""
        status, data, _ = self.request("PUT", "/nodes-stats/config", {})
        assert status == 200, data

    def wait_job(self, path: str, timeout: float = 30.0) -> dict:
        """Poll a background job's status (`/nodes-stats/duplicates`, `/nodes-stats/history-import`) until it
        stops running; its status."""
        return until(lambda: (s := self.get(path))["state"] != "running" and s, timeout, f"{path} to finish", self)

    def model(self, model_type: str, name: str) -> dict | None:
        """One model row from /nodes-stats/models, or None when it is not listed."""
        for section in self.get("/nodes-stats/models"):
            if section["model_type"] == model_type:
                for model in section["models"]:
                    if model["model_name"] == name:
                        return model
        return None

    def package(self, name: str) -> dict | None:
        return next((p for p in self.get("/nodes-stats/packages") if p["package"] == name), None)


def _parse(raw: bytes):
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def copy_pack(source: Path, custom_nodes: Path) -> None:
    """Install a test pack (a folder or a single .py file) into a server's custom_nodes."""
    target = custom_nodes / source.name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy(source, target)
