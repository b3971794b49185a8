"""The README documents every route and the two set-up commands; CI runs the README's test command."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from usage_stats.api.access import Access
from usage_stats.api.app import App
from usage_stats.api.routes import register_routes

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


class RecordingRoutes:
    def __init__(self):
        self.paths = []

    def get(self, path):
        self.paths.append(("GET", path))
        return lambda handler: handler

    def post(self, path):
        self.paths.append(("POST", path))
        return lambda handler: handler

    def put(self, path):
        self.paths.append(("PUT", path))
        return lambda handler: handler


def registered_routes():
    routes = RecordingRoutes()
    register_routes(routes, App(writer=None, reports=None, decisions=None, access=Access(None, 8188)))
    return routes.paths


@pytest.mark.parametrize("method, path", registered_routes())
def test_every_route_is_documented_in_the_readme(method, path):
    path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)  # a matcher such as {model_name:.+} reads as {model_name}
    assert f"`{method} {path}" in README


def test_the_readmes_code_fences_balance():
    """An unclosed fence turns the rest of the page into code."""
    fences = re.findall(r"^```(\w*)$", README, flags=re.M)
    assert len(fences) % 2 == 0
    assert all(language == "" for language in fences[1::2]), "a fence opens where one should close"


def every_setting():
    from usage_stats.memory.manager import UNLOAD_FIELDS
    from usage_stats.recording.settings import CONFIG_FIELDS

    return [*CONFIG_FIELDS, *UNLOAD_FIELDS]


@pytest.mark.parametrize("field", every_setting(), ids=lambda field: field.name)
def test_every_setting_is_in_a_readme_table_with_its_default(field):
    assert f"| `{field.name}` | `{json.dumps(field.default)}` |" in README


def module_table() -> set[str]:
    """The names in the README's table of modules (the one headed "| file | its one job |")."""
    table = README.split("| file | its one job |", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^\| `([\w./]+)` \|", table, flags=re.M))


def test_the_module_table_names_every_module_and_folder_and_nothing_else():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    tops = {path.split("/")[0] + ("/" if "/" in path else "") for path in tracked}
    tree = {top for top in tops if top.endswith(".py") or (top.endswith("/") and not top.startswith((".", "_")))}
    tree -= {"docs/"}  # pictures and benchmark notes
    assert module_table() == tree


def test_ci_runs_the_test_command_the_readme_gives():
    commands = re.findall(r"^(scripts/\w+)\s+#", README, flags=re.M)
    assert commands == ["scripts/sandbox", "scripts/test"]
    assert (REPO / ".ci" / "run").read_text().strip().endswith("scripts/test")
