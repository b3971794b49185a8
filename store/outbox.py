"""What a machine owes the shared store, as JSON rows of its own database's outbox.

Why an outbox: a machine reporting into a shared PostgreSQL must never lose a prompt to a network outage,
and must never make ComfyUI wait for the network. Each write to the local database also writes, in the
same SQLite transaction, one outbox row saying what the shared store must apply; a shipper delivers the
rows in order, each once (store/postgres.py). So the local record and what is owed can never disagree,
whatever crashes, and the outbox survives a restart because it is the database.

Each row is (op, body): the write method's own inputs, enough to apply it again elsewhere.
"""

from __future__ import annotations

import json

from ..domain.values import Outcome, PromptUse

RECORD, OUTCOMES, INSTALLED, LOAD, RESET = "record", "outcomes", "installed", "load", "reset"
DIGESTS = "digests"
"""Content hashes of listed model names (type, name, digest): one file under two names on two machines."""
ACTION = "action"
"""A file action (quarantine, restore, delete) taken on this machine: on a shared volume it is everyone's."""
SNAPSHOT = "snapshot"
"""Every total of the machine at once (SNAPSHOT_TABLES): sent when a machine joins a shared store,
and in place of an outbox grown past its bound. It replaces the machine's rows, so it may be sent again."""
SNAPSHOT_TABLES = {
    "node_usage": "class_type, package, count, first_seen, last_seen",
    "model_usage": "model_type, model_name, count, first_seen, last_seen, in_prompt, loaded",
    "model_references": "model_type, model_name, count, first_seen, last_seen",
    "daily": "kind, day, item, user, prompts, successes, failures, interrupted, rejected, exec_ms, first_ts, last_ts",
    "package_inventory": "package, first_installed",
    "model_inventory": "model_type, model_name, first_installed",
    "model_loads": "model_type, model_name, load_count, total_ms, last_ms, last_loaded",
    "model_digests": "model_type, model_name, digest",
}
"""What a snapshot carries: every total and first sighting (the prompt log's detail stays local)."""


def _use_row(use: PromptUse) -> list:
    return [use.ts, use.user, use.accepted, use.nodes, sorted(use.models), sorted(use.referenced)]


def _use_of(row: list) -> PromptUse:
    ts, user, accepted, nodes, models, referenced = row
    return PromptUse(ts, nodes, _keys(models), user, accepted, _keys(referenced))


def _keys(pairs: list) -> frozenset[tuple[str, str]]:
    return frozenset((t, n) for t, n in pairs)


def record_body(first_id: int, log_rows: str, nodes: list, models: list, daily: list, referenced: list) -> str:
    """A batch of prompts as the local store wrote it: its prompt-log rows (already JSON, from the first id
    on) and the rows of sums it upserted, so owing costs a few dumps, not a walk of every prompt again."""
    sums = json.dumps({"nodes": nodes, "models": models, "daily": daily, "referenced": referenced})
    return f'{{"first_id": {first_id}, "log": {log_rows}, {sums[1:]}'


def outcomes_body(outcomes: list[Outcome]) -> str:
    return json.dumps([
        [o.row_id, o.result, o.exec_ms, o.cached_nodes, sorted(o.loaded), _use_row(o.use)] for o in outcomes
    ])


def outcomes_of(body: list) -> list[Outcome]:
    return [Outcome(_use_of(use), row_id, result, exec_ms, cached, _keys(loaded))
            for row_id, result, exec_ms, cached, loaded, use in body]


def installed_body(at: int, packages: list[str], models: list[tuple[str, str]]) -> str:
    return json.dumps({"at": at, "packages": packages, "models": models})


def load_body(model_type: str, model_name: str, ms: int, at: int) -> str:
    return json.dumps([model_type, model_name, ms, at])


def action_body(at: int, action: str, target: str, by: str) -> str:
    return json.dumps([at, action, target, by])
