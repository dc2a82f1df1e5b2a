"""The daemon's journal: every tracked execution, who waits for it, and what was last seen, in SQLite.

WAL mode with `synchronous=NORMAL`: a committed transaction is in the WAL file before the call
returns, so a daemon killed with SIGKILL loses nothing it had journaled (only a power cut could
lose the last transactions). The daemon journals a state *before* telling any subscriber about it,
so nothing a CLI was told can be forgotten by a restarted daemon.

All methods are synchronous and run one at a time on a worker thread (`Journal.call`), since
sqlite3 blocks.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from .._filelock import FileLock
from ._paths import DaemonAlreadyRunningError, ensure_private_dir
from ._tracked import Key, Tracked

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from ._protocol import JSON

T = TypeVar("T")
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
    endpoint TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    unreachable_since REAL,
    last_error TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS executions (
    endpoint TEXT NOT NULL,
    project TEXT NOT NULL,
    domain TEXT NOT NULL,
    name TEXT NOT NULL,
    phase TEXT NOT NULL,
    found INTEGER NOT NULL,
    url TEXT NOT NULL,
    error TEXT,
    outputs TEXT,
    outputs_state TEXT NOT NULL,
    interest INTEGER NOT NULL,
    tracked_at REAL NOT NULL,
    phase_changed_at REAL NOT NULL,
    seen_at REAL,
    terminal_at REAL,
    PRIMARY KEY (endpoint, project, domain, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscribers (
    subscriber TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    project TEXT NOT NULL,
    domain TEXT NOT NULL,
    name TEXT NOT NULL,
    wait_for TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (subscriber, endpoint, project, domain, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subscribers_by_execution ON subscribers (endpoint, project, domain, name);
"""

_COLUMNS = (
    "endpoint, project, domain, name, phase, found, url, error, outputs, outputs_state, interest, "
    "tracked_at, phase_changed_at, seen_at, terminal_at"
)
_UPSERT = f"""
INSERT INTO executions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (endpoint, project, domain, name) DO UPDATE SET
    phase = excluded.phase, found = excluded.found, url = excluded.url, error = excluded.error,
    outputs = excluded.outputs, outputs_state = excluded.outputs_state, interest = excluded.interest,
    phase_changed_at = excluded.phase_changed_at, seen_at = excluded.seen_at,
    terminal_at = excluded.terminal_at
"""


class Journal:
    """Durable state of one daemon. Open with `Journal.open(path)`; one daemon per journal file."""

    def __init__(self, conn: sqlite3.Connection, path: Path, lock: FileLock) -> None:
        self.path = path
        self._conn = conn
        self._lock = lock
        self._limiter = anyio.CapacityLimiter(1)

    @classmethod
    def open(cls, path: Path) -> Journal:
        """Open (creating it 0600 in a 0700 folder) and lock the journal at `path`."""
        ensure_private_dir(path.parent)
        lock = FileLock(path.with_name(path.name + ".lock"))
        if not lock.acquire(timeout=2.0):
            raise DaemonAlreadyRunningError(f"another daemon is using the journal {path}")
        try:
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
            path.chmod(0o600)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except BaseException:
            lock.release()
            raise
        return cls(conn, path, lock)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run one of the synchronous methods on the journal's worker thread."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._lock.release()

    # ---------------------------------------------------------------- reading

    def load_endpoints(self) -> dict[str, JSON]:
        """endpoint → {"config": {...}, "unreachable_since": float | None, "last_error": str | None}."""
        rows = self._conn.execute("SELECT endpoint, config, unreachable_since, last_error FROM endpoints")
        return {
            endpoint: {"config": json.loads(config), "unreachable_since": since, "last_error": error}
            for endpoint, config, since, error in rows
        }

    def load_executions(self) -> list[Tracked]:
        """Every journaled execution, with `durable_subscribers` counted from the subscribers table."""
        waits: dict[Key, int] = {}
        for endpoint, project, domain, name, count in self._conn.execute(
            "SELECT endpoint, project, domain, name, count(*) FROM subscribers "
            "GROUP BY endpoint, project, domain, name"
        ):
            waits[(endpoint, project, domain, name)] = count
        out: list[Tracked] = []
        for row in self._conn.execute(f"SELECT {_COLUMNS} FROM executions"):
            (endpoint, project, domain, name, phase, found, url, error, outputs, outputs_state, interest) = (
                row[:11]
            )
            tracked_at, phase_changed_at, seen_at, terminal_at = row[11:]
            key = (endpoint, project, domain, name)
            item = Tracked(
                key,
                tracked_at=tracked_at,
                phase=phase,
                url=url,
                found=bool(found),
                error=json.loads(error) if error else None,
                outputs=json.loads(outputs) if outputs else None,
                outputs_state=outputs_state,
                interest=interest,
                phase_changed_at=phase_changed_at,
                seen_at=seen_at,
                terminal_at=terminal_at,
            )
            item.durable_subscribers = waits.get(key, 0)
            out.append(item)
        return out

    def count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM executions").fetchone()[0])

    # ---------------------------------------------------------------- writing

    def save_endpoint(self, endpoint: str, config: JSON) -> None:
        self._conn.execute(
            "INSERT INTO endpoints (endpoint, config, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (endpoint) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
            (endpoint, json.dumps(config, sort_keys=True), time.time()),
        )

    def save_endpoint_health(
        self, endpoint: str, unreachable_since: float | None, last_error: str | None
    ) -> None:
        self._conn.execute(
            "UPDATE endpoints SET unreachable_since = ?, last_error = ?, updated_at = ? WHERE endpoint = ?",
            (unreachable_since, last_error, time.time(), endpoint),
        )

    def save(self, items: Iterable[Tracked]) -> None:
        """Insert or update these executions, all in one transaction."""
        rows = [
            (
                t.endpoint,
                t.project,
                t.domain,
                t.name,
                t.phase,
                int(t.found),
                t.url,
                json.dumps(t.error) if t.error is not None else None,
                json.dumps(t.outputs) if t.outputs is not None else None,
                t.outputs_state,
                t.interest,
                t.tracked_at,
                t.phase_changed_at,
                t.seen_at,
                t.terminal_at,
            )
            for t in items
        ]
        if rows:
            with self._transaction():
                self._conn.executemany(_UPSERT, rows)

    def delete(self, keys: Iterable[Key]) -> None:
        keys = list(keys)
        if keys:
            with self._transaction():
                self._conn.executemany(
                    "DELETE FROM executions WHERE endpoint = ? AND project = ? AND domain = ? AND name = ?",
                    keys,
                )
                self._conn.executemany(
                    "DELETE FROM subscribers WHERE endpoint = ? AND project = ? AND domain = ? AND name = ?",
                    keys,
                )

    def add_subscriber(self, subscriber: str, keys: Iterable[Key], wait_for: str) -> list[Key]:
        """Journal a wait; returns the keys it did not hold already (a reconnecting CLI re-sends its wait)."""
        now = time.time()
        with self._transaction():
            held = set(self.subscriber_keys(subscriber))
            new = [key for key in dict.fromkeys(keys) if key not in held]
            self._conn.executemany(  # one statement for all: a wait may name 100,000 runs
                "INSERT OR IGNORE INTO subscribers "
                "(subscriber, endpoint, project, domain, name, wait_for, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(subscriber, *key, wait_for, now) for key in new],
            )
        return new

    def remove_subscriber(self, subscriber: str) -> list[Key]:
        """Forget a finished wait; returns the keys it held."""
        with self._transaction():
            keys: list[Key] = [
                (e, p, d, n)
                for e, p, d, n in self._conn.execute(
                    "SELECT endpoint, project, domain, name FROM subscribers WHERE subscriber = ?",
                    (subscriber,),
                )
            ]
            self._conn.execute("DELETE FROM subscribers WHERE subscriber = ?", (subscriber,))
        return keys

    def subscriber_keys(self, subscriber: str) -> list[Key]:
        return [
            (e, p, d, n)
            for e, p, d, n in self._conn.execute(
                "SELECT endpoint, project, domain, name FROM subscribers WHERE subscriber = ?", (subscriber,)
            )
        ]

    def prune(self, finished_before: float) -> list[Key]:
        """Drop settled executions that finished before `finished_before` and have no journaled waiter.

        Journaled waits older than that go first: their CLI died with an old daemon and never came back.
        """
        with self._transaction():
            self._conn.execute("DELETE FROM subscribers WHERE created_at < ?", (finished_before,))
            keys: list[Key] = [
                (e, p, d, n)
                for e, p, d, n in self._conn.execute(
                    "SELECT endpoint, project, domain, name FROM executions AS x "
                    "WHERE terminal_at IS NOT NULL AND terminal_at < ? AND NOT EXISTS ("
                    "SELECT 1 FROM subscribers AS s WHERE s.endpoint = x.endpoint AND s.project = x.project "
                    "AND s.domain = x.domain AND s.name = x.name)",
                    (finished_before,),
                )
            ]
            self._conn.executemany(
                "DELETE FROM executions WHERE endpoint = ? AND project = ? AND domain = ? AND name = ?", keys
            )
        return keys

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error (the connection runs in autocommit mode)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
