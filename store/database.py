"""Opening the database file: WAL, migrations, and a corrupt or unreadable file moved aside, never overwritten."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Callable

from ..support.logs import log
from .schema import migrate


def open_database(path: str, clock: Callable[[], float] = time.time) -> sqlite3.Connection:
    """Open (or create) the database for writing, in WAL mode, migrated to the current schema.

    A file SQLite cannot read as a database is moved aside as `<path>.corrupt-<timestamp>`, logged once,
    and a fresh database is created: the old bytes are kept for the user, never overwritten.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        return _connect_and_migrate(path)
    except sqlite3.DatabaseError as error:
        if not _is_corrupt(error) or not os.path.isfile(path):
            raise  # e.g. SQLITE_CANTOPEN on a path we may not use: not the file's fault, never move it
        aside = f"{path}.corrupt-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(clock()))}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.replace(path + suffix, aside + suffix)
        log.warning("[usage-stats] the database could not be read (%s); moved it aside to %s", error, aside)
        return _connect_and_migrate(path)


CORRUPT_ERRORS = frozenset({"SQLITE_NOTADB", "SQLITE_CORRUPT"})


def _is_corrupt(error: sqlite3.DatabaseError) -> bool:
    """Only a file SQLite read and rejected is corrupt; OperationalError (cannot open, locked, I/O) is not."""
    name = getattr(error, "sqlite_errorname", None)
    if name is not None:
        return name.startswith(tuple(CORRUPT_ERRORS))
    return type(error) is sqlite3.DatabaseError and "newer than this extension" not in str(error)


def _connect_and_migrate(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=1.0)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a crash loses at most the last commits
        db.execute("PRAGMA quick_check").fetchone()
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def connect_readonly(path: str) -> sqlite3.Connection:
    """A read-only connection: readers can never write, whatever a bug in a route does."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=5.0)
    db.execute("PRAGMA query_only = ON")
    return db
