"""Reporting into a shared store: which one (if any), who this machine is, and the thread that delivers.

Why a module of its own: with several ComfyUI machines over one model volume, "is this file still used?"
has one answer only across all of them. Each machine keeps its own SQLite store (the default, and its record
while the network is down); what it owes the shared PostgreSQL store waits in that store's outbox
(store/outbox.py), and the `Shipper` here delivers it in order, on its own thread, so ComfyUI never waits
for the network and an outage or a restart loses nothing.

The shared store is configured by the environment (`COMFYUI_USAGE_STATS_SHARED_STORE`) or by
`shared_store.json` beside the database; never by an HTTP request, so no page can send our statistics
elsewhere. Its password never leaves this module: every URL shown or logged is `redacted`.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

from ..domain.values import iso
from ..evidence.source import SHARED_STORE_UNREACHABLE, SHARED_STORE_UNREADABLE, not_heard_from
from ..support.logs import log

URL_VARIABLE = "COMFYUI_USAGE_STATS_SHARED_STORE"
NAME_VARIABLE = "COMFYUI_USAGE_STATS_MACHINE_NAME"
SETTINGS_FILE = "shared_store.json"
MACHINE_FILE = "machine_id"
DEFAULT_STALE_HOURS = 24
"""A machine silent for longer than this has evidence the fleet lacks: its files are never safe to remove."""
SHIP_BATCH = 500
"""Outbox rows per delivery (one transaction on the shared store)."""
SHIP_INTERVAL_SECONDS = 2.0
"""How often an idle shipper delivers, which is also its heartbeat: the fleet's 'last report'."""
MAX_RETRY_SECONDS = 30.0
NOT_CONNECTED = "not connected yet"
ACTIONS_SHOWN = 20
"""The fleet's latest file actions that GET /shared lists."""


@dataclass(frozen=True)
class SharedSettings:
    url: str
    machine_id: str
    machine_name: str
    stale_hours: int = DEFAULT_STALE_HOURS


def redacted(url: str) -> str:
    """The URL with its password replaced by ***: what routes and log lines may show."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "(an unreadable URL)"


def shared_settings(folder: str, environ=os.environ) -> SharedSettings | None:
    """The shared store this machine reports into, or None (the default: SQLite only).

    The environment wins over the settings file; a settings file that cannot be read is logged and ignored.
    """
    try:
        with open(os.path.join(folder, SETTINGS_FILE), encoding="utf-8") as file:
            stored = json.load(file)
        if not isinstance(stored, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        stored = {}
    except (OSError, ValueError) as error:
        log.warning("[usage-stats] ignoring %s (%s)", os.path.join(folder, SETTINGS_FILE), error)
        stored = {}
    url = environ.get(URL_VARIABLE) or stored.get("url")
    if not url:
        return None
    name = environ.get(NAME_VARIABLE) or stored.get("machine_name") or socket.gethostname()
    stale = stored.get("stale_hours", DEFAULT_STALE_HOURS)
    if not isinstance(stale, int) or isinstance(stale, bool) or stale < 1:
        log.warning("[usage-stats] stale_hours must be a whole number of hours ≥ 1; using %d", DEFAULT_STALE_HOURS)
        stale = DEFAULT_STALE_HOURS
    return SharedSettings(str(url), machine_id(folder), str(name)[:200], stale)


def machine_id(folder: str) -> str:
    """This machine's stable id: made once, kept in a file that is never overwritten (two starts agree)."""
    path = os.path.join(folder, MACHINE_FILE)
    os.makedirs(folder, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as file:
            file.write(str(uuid.uuid4()))
    except FileExistsError:
        pass
    with open(path, encoding="utf-8") as file:
        return file.read().strip()


class Shipper:
    """Delivers the local store's outbox to the shared store, oldest first, each row once.

    The shared store skips rows it applied before (a delivery whose answer was lost), so deleting the
    local rows only after the shared store committed them can never count a prompt twice.
    """

    def __init__(self, writer, settings: SharedSettings, open_fleet: Callable, clock: Callable[[], float] = time.time):
        self.writer = writer
        self.settings = settings
        self._open_fleet = open_fleet
        self._clock = clock
        self.fleet = None
        self.error: str | None = NOT_CONNECTED
        self.read_errors: dict[str, str] = {}
        """What failed reading the shared store while it answered (a bug, not an outage), by the read that failed."""
        self.last_delivery: int | None = None
        self._caps: tuple | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gaps: tuple[object, dict] | None = None
        """The fleet's evidence gaps and the key they were read for (see `evidence_gaps`)."""

    @property
    def reachable(self) -> bool:
        return self.fleet is not None and self.error is None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="usage-stats-shipper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def machine_ids(self) -> set[str]:
        """Every machine a view may ask for: the fleet's while it answers, else this one alone."""
        if self.reachable:
            try:
                known = {machine for machine, *_ in self.fleet.machines()}
            except Exception as error:
                self.read_failed(error, "machine_ids")
            else:
                self.read_succeeded("machine_ids")
                return known
        return {self.settings.machine_id}

    def describe(self) -> dict:
        """What /shared shows (never the password): this machine's reporting, and every machine's last report."""
        fleet, machines, actions = self.fleet, [], []
        if fleet is not None and self.reachable:
            try:
                stale_before = fleet.now() - self.settings.stale_hours * 3600
                machines = [{"id": m, "name": name, "last_report": iso(last), "retired": retired,
                             "silent": not retired and last < stale_before}
                            for m, name, last, retired in fleet.machines()]
                actions = [{"machine": name, "at": iso(at), "action": action, "target": target, "by": by}
                           for name, at, action, target, by in fleet.recent_actions(ACTIONS_SHOWN)]
            except Exception as error:
                self.read_failed(error, "describe")
            else:
                self.read_succeeded("describe")
        return {**self.status(), "machines": machines, "actions": actions}

    def share_action(self, action: str, target: str, by: str) -> None:
        """Owe the shared store a file action taken here (recorded on the writer thread, delivered in order)."""
        self.writer.submit(lambda store: store.owe_action(store.now(), action, target, by))

    def status(self) -> dict:
        """How this machine's reporting goes: never the password."""
        store, read_errors = self.writer.store, list(self.read_errors.values())
        return {
            "configured": True,
            "url": redacted(self.settings.url),
            "machine": {"id": self.settings.machine_id, "name": self.settings.machine_name},
            "reachable": self.reachable,
            "error": self.error or (read_errors[0] if read_errors else None),
            "owed": store.owed_count() if store is not None else None,
            "last_delivery": iso(self.last_delivery),
            "stale_hours": self.settings.stale_hours,
        }

    # ---- what reports read (executor threads)

    def reading_store(self, local):
        """The fleet's store while it answers; else this machine's own, whose report `evidence_gaps` caps."""
        return self.fleet if self.reachable else local

    def read_failed(self, error: Exception, what: str) -> None:
        """Reading `what` from the shared store failed, so the report reads the local store instead (capped).

        A lost connection is an outage: reports read the local store until the shipper gets through again.
        Anything else is a bug (a table missing, a privilege revoked, a query that is wrong): logged once
        with its traceback and shown as the status's `error`, while the next report tries the shared store again.
        """
        if connection_lost(error):
            self._unreachable(error)
            return
        message = f"reading the shared store failed ({what}: {_without_secrets(error, self.settings.url)})"
        if self.read_errors.get(what) != message:
            log.error("[usage-stats] %s; reports read this machine's own statistics instead", message, exc_info=error)
        self.read_errors[what] = message

    def read_succeeded(self, what: str) -> None:
        """`what` read the shared store again: a failure it had before no longer shows in the status."""
        self.read_errors.pop(what, None)

    def evidence_gaps(self, store, installed: dict[str, list[str]]) -> tuple[dict[tuple[str, str], tuple], object]:
        """(type, name) -> the cap and reason of files whose use elsewhere the reading `store` may lack, and a
        key that changes when they do.

        The fleet's gaps are read again only when its silent machines or what any machine delivered changed:
        with a silent machine listing 20,000 files, reading them takes about 100 ms, too much for every request
        of a report that is cached. The key is read before the gaps, so it is never newer than they are.
        """
        if store is not self.fleet:
            caps = self._every_file_capped(installed)
            return caps, next(iter(caps.values()), None)  # every file has the one cap in force: it is the key
        hours = self.settings.stale_hours
        stale_before = store.now() - hours * 3600
        version = store.version
        silent = tuple((m, name) for m, name, last, retired in store.machines() if not retired and last < stale_before)
        key = (version, silent)
        cached = self._gaps
        if cached is None or cached[0] != key:
            listed = store.incomplete_evidence(stale_before)
            gaps = {file: not_heard_from(machines, hours) for file, machines in listed.items()}
            cached = self._gaps = (key, gaps)
        return cached[1], key

    def _every_file_capped(self, installed: dict[str, list[str]]) -> dict[tuple[str, str], tuple]:
        """Every installed file capped (the local store lacks every other machine's use), with the reason why.

        Built again only when the listing or the reason changed: while the shared store is down, every
        report request asks, and 20,000 files are 20,000 entries. The model listings keep the same list
        object for a type whose files did not change (ModelMapper._normalised), so comparing them is exact.
        """
        cap = SHARED_STORE_UNREADABLE if self.reachable and self.read_errors else SHARED_STORE_UNREACHABLE
        cached = self._caps
        if cached is None or cached[0] is not cap or not _same_listing(cached[1], installed):
            cached = self._caps = (cap, installed, {(t, n): cap for t, names in installed.items() for n in names})
        return cached[2]

    # ---- delivering (its own thread)

    def _run(self) -> None:
        store = self.writer.wait_ready(timeout=60)
        retry = SHIP_INTERVAL_SECONDS
        while store is not None and not self._stop.is_set():
            try:
                more = self.ship_once(store)
                retry = SHIP_INTERVAL_SECONDS
                if more:
                    continue
            except Exception as error:
                self._unreachable(error)
                self._disconnect()
                retry = min(MAX_RETRY_SECONDS, retry * 2)
            self._stop.wait(retry if self.error else SHIP_INTERVAL_SECONDS)

    def ship_once(self, store) -> bool:
        """Deliver one batch (or a heartbeat when nothing is owed); True if more is owed."""
        if self.fleet is None:
            self.fleet = self._open_fleet(self.settings.url)
        rows = store.owed(SHIP_BATCH)
        last = self.fleet.deliver(self.settings.machine_id, self.settings.machine_name, store.outbox_stream, rows)
        if rows:
            self.writer.submit(lambda s: s.delivered(last), wait_seconds=30).result(30)
        if self.error is not None:
            log.info("[usage-stats] reporting into the shared store %s", redacted(self.settings.url))
        self.error, self.last_delivery = None, int(self._clock())
        return len(rows) == SHIP_BATCH

    def _unreachable(self, error: Exception) -> None:
        """Reports read the local store from now on; one log line per outage (the outbox keeps every row
        until the shared store is back, and the shipper's next delivery that succeeds ends the outage).

        A delivery that fails for another reason than a lost connection is a bug (a row the shared store
        cannot apply): reports read the local store all the same, since the fleet lacks this machine's
        latest use, but the one log line carries the traceback."""
        url, why = redacted(self.settings.url), _without_secrets(error, self.settings.url)
        lost = connection_lost(error)
        message = f"the shared store {url} is unreachable ({why})" if lost else (
            f"delivering to the shared store {url} failed ({why})")
        if self.error in (None, NOT_CONNECTED):
            log.warning("[usage-stats] %s; recording locally and delivering when it is back", message,
                        exc_info=None if lost else error)
        self.error = message

    def _disconnect(self) -> None:
        """Drop the shipper's connection (its own thread only): the next delivery connects again."""
        if self.fleet is not None:
            self.fleet.close()
            self.fleet = None


def connection_lost(error: Exception) -> bool:
    """Whether a failed read is an outage (the server down, restarting, or the network gone), not a bug.

    psycopg raises OperationalError (or a subclass: AdminShutdown when the server stops or restarts under
    an open connection) for a server that went away, refuses connections or closed the connection, and
    InterfaceError for a connection the client can no longer use; sockets raise OSError.
    """
    if isinstance(error, OSError):
        return True
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))


def _same_listing(before: dict[str, list[str]], now: dict[str, list[str]]) -> bool:
    return before.keys() == now.keys() and all(before[t] is now[t] for t in now)


def _without_secrets(error: Exception, url: str) -> str:
    """A driver's error text with the password cut out, whatever it quotes of the URL."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text
