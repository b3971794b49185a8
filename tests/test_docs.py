"""The README documents every route and the two set-up commands; CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from usage_stats.access import Access
from usage_stats.routes import DecisionsApi, StatsApi, register_routes

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
    api = StatsApi(writer=None)
    register_routes(routes, Access(None, 8188), api, DecisionsApi(api, None, None, None))
    return routes.paths


@pytest.mark.parametrize("method, path", registered_routes())
def test_every_route_is_documented_in_the_readme(method, path):
    path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)  # a matcher such as {model_name:.+} reads as {model_name}
    assert f"`{method} {path}" in README


def test_ci_runs_the_test_command_the_readme_gives():
    commands = re.findall(r"^(scripts/\w+)\s+#", README, flags=re.M)
    assert commands == ["scripts/sandbox", "scripts/test"]
    assert (REPO / ".ci" / "run").read_text().strip().endswith("scripts/test")
