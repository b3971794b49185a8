"""Shared fixtures.

Unit tests import the extension's modules as the package `usage_stats` against `tests/fake_comfyui`, a
small but faithful stand-in for ComfyUI's `folder_paths`, `nodes` and `server` (real files, real listing
and mtime-cache behaviour). Tests marked `comfyui` start the real ComfyUI from scripts/comfyui-env.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS / "fake_comfyui"))
sys.path.insert(0, str(TESTS))

# The checkout is a ComfyUI pack (relative imports); expose it as a package without running its wiring.
_package = types.ModuleType("usage_stats")
_package.__path__ = [str(REPO)]
sys.modules.setdefault("usage_stats", _package)

from comfyui import ComfyServer, comfyui_paths  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Real-server tests need the built ComfyUI. Without it they skip locally, but fail in CI."""
    if comfyui_paths() is not None:
        return
    reason = "needs the real ComfyUI: run the tests through scripts/test"
    needing = [i for i in items if "comfyui" in i.keywords or "browser" in i.keywords]
    if needing and os.environ.get("CI"):
        raise pytest.UsageError(f"{len(needing)} tests {reason}")
    for item in needing:
        item.add_marker(pytest.mark.skip(reason=reason))


NOW = 1_800_000_000
"""The clock of the `store` fixture (2027-01-15): tests move it through `store.clock_state["now"]`."""


@pytest.fixture
def store(tmp_path):
    """A fresh UsageStore on disk whose clock the test sets."""
    from usage_stats.tracker import UsageStore

    clock = {"now": NOW}
    db = UsageStore(str(tmp_path / "usage_stats.db"), clock=lambda: clock["now"])
    db.clock_state = clock
    yield db
    db.close()


@pytest.fixture
def fake_comfy(tmp_path, monkeypatch):
    """A fresh fake ComfyUI rooted in tmp_path: models/, custom_nodes/, user/."""
    import folder_paths
    import nodes

    folder_paths.configure(tmp_path)
    nodes.reset()
    yield types.SimpleNamespace(base=tmp_path, models=tmp_path / "models", folder_paths=folder_paths, nodes=nodes)
    nodes.reset()


@pytest.fixture
def make_server(tmp_path_factory):
    """Factory for real ComfyUI servers; every server it made is stopped at the end of the test."""
    servers: list[ComfyServer] = []

    def make(extra_args: tuple[str, ...] = (), base: Path | None = None, env: dict[str, str] | None = None) -> ComfyServer:
        server = ComfyServer(base or tmp_path_factory.mktemp("comfyui"), extra_args, env)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def import_fresh(name: str):
    """Re-import a module of the extension (for tests that change what it reads at import)."""
    sys.modules.pop(f"usage_stats.{name}", None)
    return importlib.import_module(f"usage_stats.{name}")


# ---- browser suites that run on both frontends


@pytest.fixture(scope="module", params=["pinned", "newest"])
def frontend(request):
    """The frontend ComfyUI 0.3.75 pins (1.32.9), then the newer one scripts/comfyui-env installs beside it."""
    return request.param


@pytest.fixture(scope="module")
def sample_server(tmp_path_factory, frontend):
    """A real ComfyUI with the sandbox's sample data (scripts/sandbox_data.py) on the given frontend."""
    from browser_helpers import frontend_args, quiet

    sys.path.insert(0, str(REPO / "scripts"))
    import sandbox_data

    base = tmp_path_factory.mktemp(f"sample-{frontend}")
    sandbox_data.main(base)
    with ComfyServer(quiet(base), frontend_args(frontend)) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (a module may define its own)."""
    from browser_helpers import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# ---- a real PostgreSQL, for the shared store


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server for the session (Debian's binaries; scripts/comfyui-env installs them)."""
    from postgres import PostgresServer, binaries

    if binaries() is None:
        if os.environ.get("CI"):
            raise pytest.UsageError("PostgreSQL is not installed: run the tests through scripts/test")
        pytest.skip("needs PostgreSQL's server binaries (scripts/comfyui-env installs them)")
    server = PostgresServer().start()
    yield server
    server.remove()


@pytest.fixture
def shared_url(postgres):
    """The URL of a fresh, empty database on the session's PostgreSQL."""
    return postgres.create_database()
