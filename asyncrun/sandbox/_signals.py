"""Signals: the values gate nodes wait for (`approve`, `wait_for_input`), and FlyteAdmin's SignalService.

Follows FlyteAdmin's signal manager:

- `GetOrCreateSignal` returns the signal of (execution, signal id), creating it with the request's type.
  The engine calls it when a gate starts waiting. Asking again with another type is ALREADY_EXISTS
  (FlyteAdmin's insert fails on the unique key then).
- `SetSignal` stores a value. The signal must exist (INVALID_ARGUMENT "failed to validate that signal
  … exists", as FlyteAdmin answers) and the value must fit its type (INVALID_ARGUMENT). Setting it again
  replaces the stored value, as in FlyteAdmin; a gate already released keeps the value it got.
- `ListSignals` lists one execution's signals with FlyteAdmin's filters (`signal_id`, `created_at`,
  `updated_at`), sort keys and paging; a limit is required.

`Signals.wait` is the engine's side: it returns the value once one is set, woken by `SetSignal` in this
process without polling.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

import anyio

from asyncrun._proto.flyteidl import admin, core
from asyncrun._proto.flyteidl.service import SignalServiceBase
from asyncrun.sandbox._admin_common import (
    already_exists,
    invalid,
    list_query,
    page_token,
    validate_execution_id,
)
from asyncrun.sandbox._db import ExecutionKey, micros, page_sql, utc_now
from asyncrun.sandbox._guard import GuardedService
from asyncrun.sandbox._typecheck import describe_literal, describe_type, literal_matches

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from asyncrun.sandbox._db import Database
    from asyncrun.sandbox._query import Query

__all__ = ["SignalConflictError", "SignalService", "Signals"]

_KEY_WHERE = "execution_project = ? AND execution_domain = ? AND execution_name = ? AND signal_id = ?"
_COLUMNS = "execution_project, execution_domain, execution_name, signal_id, type, value"

SignalKey = tuple[ExecutionKey, str]


class SignalConflictError(ValueError):
    """A signal exists with another type than the one asked for."""


def _signal(row: Sequence[Any]) -> admin.Signal:
    project, domain, name, signal_id, type_bytes, value = row
    return admin.Signal(
        id=core.SignalIdentifier(
            signal_id=signal_id,
            execution_id=core.WorkflowExecutionIdentifier(project=project, domain=domain, name=name),
        ),
        type=core.LiteralType.parse(type_bytes),
        value=core.Literal.parse(value) if value is not None else None,
    )


class Signals:
    """The signals table of the sandbox store, and the waiters of gates in this process.

    Args:
        db: the open store (its `_V2` schema holds `signals`).
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        # Woken when a signal gets its value; an entry lives while a gate waits on its key.
        self._set: dict[SignalKey, anyio.Event] = {}
        self._waiters: collections.Counter[SignalKey] = collections.Counter()

    async def get_or_create(self, key: SignalKey, literal_type: core.LiteralType) -> admin.Signal:
        """The signal of `key`, created with `literal_type` when missing.

        Raises:
            SignalConflictError: it exists with another type.
        """
        (project, domain, name), signal_id = key
        params = (project, domain, name, signal_id)
        type_bytes = bytes(literal_type)

        def write(connection: sqlite3.Connection) -> Sequence[Any]:
            row: Sequence[Any] | None = connection.execute(
                f"SELECT {_COLUMNS} FROM signals WHERE {_KEY_WHERE}", params
            ).fetchone()
            if row is not None:
                if core.LiteralType.parse(row[4]) != literal_type:
                    raise SignalConflictError(
                        f"signal [{signal_id}] of execution [{name}] exists with type "
                        f"{describe_type(core.LiteralType.parse(row[4]))}, not {describe_type(literal_type)}"
                    )
                return row
            now = micros(utc_now())
            connection.execute(
                f"INSERT INTO signals ({_COLUMNS}, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
                (*params, type_bytes, now, now),
            )
            return (*params, type_bytes, None)

        return _signal(await self._db._write(write))

    async def get(self, key: SignalKey) -> admin.Signal | None:
        """The signal of `key`, or None."""
        (project, domain, name), signal_id = key
        params = (project, domain, name, signal_id)

        def read(connection: sqlite3.Connection) -> Sequence[Any] | None:
            row: Sequence[Any] | None = connection.execute(
                f"SELECT {_COLUMNS} FROM signals WHERE {_KEY_WHERE}", params
            ).fetchone()
            return row

        row = await self._db._read(read)
        return None if row is None else _signal(row)

    async def set_value(self, key: SignalKey, value: core.Literal) -> bool:
        """Store the value of an existing signal and wake its waiters; False when there is no such signal."""
        (project, domain, name), signal_id = key
        params = (bytes(value), micros(utc_now()), project, domain, name, signal_id)
        updated = await self._db._write(
            lambda connection: (
                connection.execute(
                    f"UPDATE signals SET value = ?, updated_at = ? WHERE {_KEY_WHERE}", params
                ).rowcount
            )
        )
        if updated:
            event = self._set.pop(key, None)
            if event is not None:
                event.set()
        return bool(updated)

    async def list(self, query: Query) -> list[admin.Signal]:
        """One page of signals matching `query` (an `entity="signal"` query)."""
        sql, params = page_sql(f"SELECT {_COLUMNS} FROM signals", query)
        rows = await self._db._read(lambda connection: connection.execute(sql, params).fetchall())
        return [_signal(row) for row in rows]

    async def wait(self, key: SignalKey, literal_type: core.LiteralType) -> core.Literal:
        """Create the signal if needed, then wait for its value (the engine's gate nodes).

        Raises:
            SignalConflictError: the signal exists with another type.
        """
        self._waiters[key] += 1
        try:
            while True:
                # Registered before reading, so a value set between the read and the wait is not missed.
                event = self._set.setdefault(key, anyio.Event())
                signal = await self.get_or_create(key, literal_type)
                if signal.value is not None:
                    return signal.value
                await event.wait()
        finally:  # a value, a timeout or an abort: the event goes with its last waiter
            self._waiters[key] -= 1
            if self._waiters[key] <= 0:
                del self._waiters[key]
                self._set.pop(key, None)


class SignalService(GuardedService, SignalServiceBase):
    """FlyteAdmin's `flyteidl.service.SignalService` for the sandbox.

    Args:
        signals: the signal store shared with the engine.
    """

    def __init__(self, signals: Signals) -> None:
        self.signals = signals

    async def get_or_create_signal(self, message: admin.SignalGetOrCreateRequest) -> admin.Signal:
        """The signal of (execution, signal id), created with the request's type when missing."""
        key = _signal_key(message.id)
        if message.type is None:
            invalid("missing type")
        try:
            return await self.signals.get_or_create(key, message.type)
        except SignalConflictError as exc:
            already_exists(str(exc))

    async def list_signals(self, message: admin.SignalListRequest) -> admin.SignalList:
        """One page of an execution's signals."""
        if message.workflow_execution_id is None:
            invalid("missing execution_id")
        execution = validate_execution_id(message.workflow_execution_id)
        query = list_query(
            "signal",
            filters=message.filters,
            sort_by=message.sort_by,
            limit=message.limit,
            token=message.token,
            conditions=[
                ("execution_project = ? AND execution_domain = ? AND execution_name = ?", tuple(execution))
            ],
        )
        signals = await self.signals.list(query)
        return admin.SignalList(signals=signals, token=page_token(query, len(signals)))

    async def set_signal(self, message: admin.SignalSetRequest) -> admin.SignalSetResponse:
        """Set a signal's value, checked against its type."""
        key = _signal_key(message.id)
        if message.value is None:
            invalid("missing value")
        signal = await self.signals.get(key)
        if signal is None:
            invalid(f"failed to validate that signal [{_describe(key)}] exists, err: [signal does not exist]")
        if not literal_matches(message.value, signal.type):
            invalid(
                f"requested signal value [{describe_literal(message.value)}] is not castable to "
                f"existing signal type [{describe_type(signal.type)}]"
            )
        if not await self.signals.set_value(key, message.value):
            invalid(f"failed to validate that signal [{_describe(key)}] exists, err: [signal does not exist]")
        return admin.SignalSetResponse()


def _signal_key(identifier: core.SignalIdentifier | None) -> SignalKey:
    if identifier is None:
        invalid("missing id")
    if identifier.execution_id is None:
        invalid("missing execution_id")
    if not identifier.signal_id:
        invalid("missing signal_id")
    return validate_execution_id(identifier.execution_id), identifier.signal_id


def _describe(key: SignalKey) -> str:
    (project, domain, name), signal_id = key
    return f"{project}/{domain}/{name}/{signal_id}"
