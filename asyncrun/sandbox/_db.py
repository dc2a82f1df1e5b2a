"""The sandbox database's plumbing: schema and migrations, the connection, and shared row helpers.

One connection in WAL mode. Every call runs in the database's own thread, one at a time, in the order
they were made, so a slow disk never stalls the event loop and statements never interleave; each write
is one `BEGIN IMMEDIATE … COMMIT` transaction, and a call that was made is finished even if the caller is
cancelled. The thread runs whatever calls are waiting before it wakes the event loop once with all their
results: a busy sandbox makes dozens of calls per execution, and two thread switches for each (a worker
thread from anyio's pool, then the loop) cost more than the statements themselves.

Protos are stored as bytes (specs, closures, literal maps); the columns next to them are copies of the
fields lists filter and sort on (phase by enum *name*, timestamps as integer microseconds since the
epoch, durations in microseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import enum
import queue
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import anyio

from asyncrun._proto.flyteidl import admin, core
from asyncrun.sandbox._query import Query, to_micros

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "DEFAULT_DOMAINS",
    "DEFAULT_PROJECTS",
    "MIGRATIONS",
    "NODE_TERMINAL",
    "TASK_TERMINAL",
    "WORKFLOW_TERMINAL",
    "CreateOutcome",
    "Database",
    "ExecutionKey",
    "StoreError",
    "utc_now",
]

T = TypeVar("T")

DEFAULT_PROJECTS: tuple[str, ...] = ("flytesnacks", "default")
DEFAULT_DOMAINS: tuple[str, ...] = ("development", "staging", "production")

WORKFLOW_TERMINAL = frozenset(
    {
        core.WorkflowExecutionPhase.SUCCEEDED,
        core.WorkflowExecutionPhase.FAILED,
        core.WorkflowExecutionPhase.ABORTED,
        core.WorkflowExecutionPhase.TIMED_OUT,
    }
)
NODE_TERMINAL = frozenset(
    {
        core.NodeExecutionPhase.SUCCEEDED,
        core.NodeExecutionPhase.FAILED,
        core.NodeExecutionPhase.ABORTED,
        core.NodeExecutionPhase.SKIPPED,
        core.NodeExecutionPhase.TIMED_OUT,
        core.NodeExecutionPhase.RECOVERED,
    }
)
TASK_TERMINAL = frozenset(
    {
        core.TaskExecutionPhase.SUCCEEDED,
        core.TaskExecutionPhase.FAILED,
        core.TaskExecutionPhase.ABORTED,
    }
)


def utc_now() -> datetime.datetime:
    """The current time, timezone-aware (protobuf Timestamps require it)."""
    return datetime.datetime.now(datetime.UTC)


def micros(when: datetime.datetime | None) -> int | None:
    """A timestamp column value: microseconds since the epoch, or None."""
    return to_micros(when) if when is not None else None


def duration_micros(delta: datetime.timedelta | None) -> int | None:
    """A duration column value in microseconds, or None."""
    return delta // datetime.timedelta(microseconds=1) if delta is not None else None


class StoreError(RuntimeError):
    """The database cannot be used (e.g. it was written by a newer asyncrun)."""


class CreateOutcome(enum.Enum):
    """The result of an idempotent registration."""

    CREATED = "created"
    IDENTICAL = "identical"
    DIFFERENT = "different"


class ExecutionKey(NamedTuple):
    """(project, domain, name) of a workflow execution."""

    project: str
    domain: str
    name: str

    @classmethod
    def of(cls, identifier: core.WorkflowExecutionIdentifier) -> ExecutionKey:
        """The key of a WorkflowExecutionIdentifier."""
        return cls(identifier.project, identifier.domain, identifier.name)

    def to_id(self) -> core.WorkflowExecutionIdentifier:
        """The WorkflowExecutionIdentifier for this key."""
        return core.WorkflowExecutionIdentifier(project=self.project, domain=self.domain, name=self.name)


# ----------------------------------------------------------------------------------------------------
# Schema
# ----------------------------------------------------------------------------------------------------

_ENTITY_COLUMNS = """
    id INTEGER PRIMARY KEY,
    project TEXT NOT NULL,
    domain TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    digest BLOB NOT NULL,
    closure BLOB NOT NULL,
    short_description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
"""

_V1: tuple[str, ...] = (
    """CREATE TABLE projects (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        state INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    f"""CREATE TABLE tasks ({_ENTITY_COLUMNS}
        type TEXT NOT NULL DEFAULT '',
        UNIQUE (project, domain, name, version)
    )""",
    f"""CREATE TABLE workflows ({_ENTITY_COLUMNS}
        UNIQUE (project, domain, name, version)
    )""",
    f"""CREATE TABLE launch_plans ({_ENTITY_COLUMNS}
        spec BLOB NOT NULL,
        state INTEGER NOT NULL DEFAULT 0,
        workflow_project TEXT NOT NULL,
        workflow_domain TEXT NOT NULL,
        workflow_name TEXT NOT NULL,
        workflow_version TEXT NOT NULL,
        UNIQUE (project, domain, name, version)
    )""",
    "CREATE INDEX launch_plans_by_state ON launch_plans (project, domain, name, state)",
    """CREATE TABLE executions (
        id INTEGER PRIMARY KEY,
        execution_project TEXT NOT NULL,
        execution_domain TEXT NOT NULL,
        execution_name TEXT NOT NULL,
        launch_plan_project TEXT NOT NULL,
        launch_plan_domain TEXT NOT NULL,
        launch_plan_name TEXT NOT NULL,
        launch_plan_version TEXT NOT NULL,
        workflow_project TEXT NOT NULL,
        workflow_domain TEXT NOT NULL,
        workflow_name TEXT NOT NULL,
        workflow_version TEXT NOT NULL,
        task_project TEXT NOT NULL DEFAULT '',
        task_domain TEXT NOT NULL DEFAULT '',
        task_name TEXT NOT NULL DEFAULT '',
        task_version TEXT NOT NULL DEFAULT '',
        phase TEXT NOT NULL,
        state INTEGER NOT NULL DEFAULT 0,
        mode INTEGER NOT NULL DEFAULT 0,
        principal TEXT NOT NULL DEFAULT '',
        error_kind TEXT NOT NULL DEFAULT '',
        error_code TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        started_at INTEGER,
        duration INTEGER,
        spec BLOB NOT NULL,
        closure BLOB NOT NULL,
        inputs BLOB NOT NULL,
        outputs BLOB,
        UNIQUE (execution_project, execution_domain, execution_name)
    )""",
    "CREATE INDEX executions_by_time ON executions (execution_project, execution_domain, created_at)",
    "CREATE INDEX executions_by_phase ON executions (phase)",
    """CREATE TABLE node_executions (
        id INTEGER PRIMARY KEY,
        execution_project TEXT NOT NULL,
        execution_domain TEXT NOT NULL,
        execution_name TEXT NOT NULL,
        node_id TEXT NOT NULL,
        spec_node_id TEXT NOT NULL,
        parent_node_id TEXT,
        phase TEXT NOT NULL,
        error_kind TEXT NOT NULL DEFAULT '',
        error_code TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        started_at INTEGER,
        duration INTEGER,
        closure BLOB NOT NULL,
        metadata BLOB NOT NULL,
        input_uri TEXT NOT NULL DEFAULT '',
        inputs BLOB,
        outputs BLOB,
        UNIQUE (execution_project, execution_domain, execution_name, node_id)
    )""",
    """CREATE INDEX node_executions_by_parent
        ON node_executions (execution_project, execution_domain, execution_name, parent_node_id)""",
    """CREATE TABLE task_executions (
        id INTEGER PRIMARY KEY,
        task_project TEXT NOT NULL,
        task_domain TEXT NOT NULL,
        task_name TEXT NOT NULL,
        task_version TEXT NOT NULL,
        execution_project TEXT NOT NULL,
        execution_domain TEXT NOT NULL,
        execution_name TEXT NOT NULL,
        node_id TEXT NOT NULL,
        retry_attempt INTEGER NOT NULL,
        phase TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        started_at INTEGER,
        duration INTEGER,
        closure BLOB NOT NULL,
        input_uri TEXT NOT NULL DEFAULT '',
        inputs BLOB,
        outputs BLOB,
        UNIQUE (execution_project, execution_domain, execution_name, node_id, retry_attempt)
    )""",
)

# Signals (gate node inputs, `_signals.py`) and the task cache (`_catalog.py`).
_V2: tuple[str, ...] = (
    """CREATE TABLE signals (
        id INTEGER PRIMARY KEY,
        execution_project TEXT NOT NULL,
        execution_domain TEXT NOT NULL,
        execution_name TEXT NOT NULL,
        signal_id TEXT NOT NULL,
        type BLOB NOT NULL,
        value BLOB,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (execution_project, execution_domain, execution_name, signal_id)
    )""",
    """CREATE TABLE catalog_artifacts (
        id INTEGER PRIMARY KEY,
        dataset_project TEXT NOT NULL,
        dataset_domain TEXT NOT NULL,
        dataset_name TEXT NOT NULL,
        dataset_version TEXT NOT NULL,
        tag TEXT NOT NULL,
        artifact_id TEXT NOT NULL,
        outputs BLOB NOT NULL,
        source BLOB,
        created_at INTEGER NOT NULL,
        UNIQUE (dataset_project, dataset_domain, dataset_name, dataset_version, tag)
    )""",
    """CREATE TABLE catalog_reservations (
        dataset_project TEXT NOT NULL,
        dataset_domain TEXT NOT NULL,
        dataset_name TEXT NOT NULL,
        dataset_version TEXT NOT NULL,
        tag TEXT NOT NULL,
        owner TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (dataset_project, dataset_domain, dataset_name, dataset_version, tag)
    )""",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
"""Ordered schema migrations; migration i (0-based) brings the schema to version i + 1. Append only."""


def page_sql(sql: str, query: Query, *, group_by: str = "") -> tuple[str, tuple[object, ...]]:
    """`sql` with the query's WHERE, an optional GROUP BY, its ORDER BY and LIMIT/OFFSET; and the params."""
    where = f" WHERE {query.where}" if query.where else ""
    group = f" GROUP BY {group_by}" if group_by else ""
    return f"{sql}{where}{group} ORDER BY {query.order_by} LIMIT ? OFFSET ?", (
        *query.params,
        query.limit,
        query.offset,
    )


def error_columns(error: core.ExecutionError | None) -> tuple[str, str]:
    """The (error_kind, error_code) columns of a closure's error."""
    if error is None:
        return "", ""
    return error.kind.name or "", error.code


class Database:
    """The connection and its lifecycle; `Store` adds the tables' operations."""

    def __init__(
        self,
        path: Path | str,
        *,
        domains: Sequence[str] = DEFAULT_DOMAINS,
        projects: Sequence[str] = DEFAULT_PROJECTS,
    ) -> None:
        self.path = Path(path)
        self.domains: tuple[str, ...] = tuple(domains)
        self._seed_projects = tuple(projects)
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Registered entities parsed once and shared (`Store._shared`); used in the database's thread only.
        self._parsed: dict[tuple[str, tuple[str, ...]], tuple[tuple[Any, ...], Any]] = {}
        # Project states by id, so identifier validation on the hot path needs no query.
        self._projects: dict[str, admin.ProjectProjectState] = {}

    # ------------------------------------------------------------------------------------------------
    # Lifecycle and plumbing
    # ------------------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        """Open the connection and apply missing migrations, each in one transaction (idempotent).

        Raises:
            StoreError: the database has a newer schema than this asyncrun knows.
        """
        if self._connection is None:
            await self._call(self._open_sync)

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=5000")
            connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            (current,) = connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"{self.path} has schema version {current}, newer than this asyncrun "
                    f"({len(MIGRATIONS)}); upgrade asyncrun or use another sandbox folder"
                )
            for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
                connection.execute("BEGIN IMMEDIATE")
                try:
                    for statement in statements:
                        connection.execute(statement)
                    connection.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
            self._projects = {
                row[0]: admin.ProjectProjectState(row[1])
                for row in connection.execute("SELECT id, state FROM projects")
            }
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    async def close(self) -> None:
        """Close the connection (idempotent) and end the database's thread."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._call(connection.close)
        if self._thread is not None:
            self._calls.put(None)
            self._thread = None

    async def _call(self, work: Callable[[], T]) -> T:
        """Run `work` in the database's thread, after the calls made before it; wait for its result."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=_serve_calls, args=(self._calls,), name="asyncrun sandbox database", daemon=True
            )
            self._thread.start()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._calls.put(_Call(work, future))
        # Not abandoned on cancellation: a call that was made always finishes (or rolls back) first.
        with anyio.CancelScope(shield=True):
            result = await future
        return result

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            with self._lock:
                return work(self._require())

        return await self._call(run)

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            with self._lock:
                connection = self._require()
                connection.execute("BEGIN IMMEDIATE")
                try:
                    result = work(connection)
                    connection.execute("COMMIT")
                except BaseException:
                    # Also when COMMIT fails (a full disk): a transaction left open would make every
                    # later write fail with "cannot start a transaction within a transaction".
                    if connection.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            connection.execute("ROLLBACK")
                    raise
                return result

        return await self._call(run)

    def _require(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreError("the store is not open")
        return self._connection


class _Call(NamedTuple):
    work: Callable[[], Any]
    future: asyncio.Future[Any]


def _serve_calls(calls: queue.SimpleQueue[_Call | None]) -> None:
    """The database's thread: run calls in order until told to stop (None); results go back in batches."""
    while True:
        batch = [calls.get()]
        with contextlib.suppress(queue.Empty):
            while True:
                batch.append(calls.get_nowait())
        results: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        stop = False
        for call in batch:
            if call is None:
                stop = True
                continue
            try:
                outcome: tuple[bool, Any] = (True, call.work())
            except BaseException as exc:  # handed to the caller, as a worker thread would
                outcome = (False, exc)
            results.setdefault(call.future.get_loop(), []).append((call.future, *outcome))
        for loop, settled in results.items():
            with contextlib.suppress(RuntimeError):  # that event loop has closed: nobody waits
                loop.call_soon_threadsafe(_settle, settled)
        if stop:
            return


def _settle(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in settled:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
