"""Executions, node executions and task executions in the sandbox database."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from asyncrun._proto.flyteidl import admin, core
from asyncrun.sandbox._compiler import IdKey, id_key
from asyncrun.sandbox._db import (
    NODE_TERMINAL,
    TASK_TERMINAL,
    WORKFLOW_TERMINAL,
    Database,
    ExecutionKey,
    duration_micros,
    error_columns,
    micros,
    page_sql,
    utc_now,
)
from asyncrun.sandbox._query import to_micros

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Mapping, Sequence

    from asyncrun.sandbox._query import Query

__all__ = ["ExecutionRecords"]


class ExecutionRecords(Database):
    """Operations on executions and their node and task executions (mixed into `Store`)."""

    # ------------------------------------------------------------------------------------------------
    # Executions
    # ------------------------------------------------------------------------------------------------

    @staticmethod
    def _execution_columns(closure: admin.ExecutionClosure) -> dict[str, object]:
        error_kind, error_code = error_columns(closure.error)
        state = closure.state_change_details.state if closure.state_change_details else 0
        return {
            "phase": closure.phase.name,
            "state": int(state),
            "error_kind": error_kind,
            "error_code": error_code,
            "created_at": micros(closure.created_at) or 0,
            "updated_at": micros(closure.updated_at) or 0,
            "started_at": micros(closure.started_at),
            "duration": duration_micros(closure.duration),
        }

    async def create_execution(
        self,
        execution: admin.Execution,
        inputs: core.LiteralMap,
        *,
        launch_plan: IdKey,
        workflow: IdKey,
        task: IdKey | None = None,
    ) -> bool:
        """Store a new execution.

        Returns:
            False (and nothing stored) when an execution with this (project, domain, name) exists.
        """
        assert execution.id is not None and execution.closure is not None and execution.spec is not None
        key = ExecutionKey.of(execution.id)
        metadata = execution.spec.metadata
        columns: dict[str, object] = {
            "execution_project": key.project,
            "execution_domain": key.domain,
            "execution_name": key.name,
            **dict(
                zip(
                    ("launch_plan_project", "launch_plan_domain", "launch_plan_name", "launch_plan_version"),
                    launch_plan,
                    strict=True,
                )
            ),
            **dict(
                zip(
                    ("workflow_project", "workflow_domain", "workflow_name", "workflow_version"),
                    workflow,
                    strict=True,
                )
            ),
            **dict(
                zip(
                    ("task_project", "task_domain", "task_name", "task_version"),
                    task or ("", "", "", ""),
                    strict=True,
                )
            ),
            "mode": int(metadata.mode) if metadata else 0,
            "principal": metadata.principal if metadata else "",
            **self._execution_columns(execution.closure),
            "spec": bytes(execution.spec),
            "closure": bytes(execution.closure),
            "inputs": bytes(inputs),
        }
        sql = (
            f"INSERT INTO executions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            " ON CONFLICT (execution_project, execution_domain, execution_name) DO NOTHING"
        )
        return await self._write(
            lambda connection: connection.execute(sql, tuple(columns.values())).rowcount == 1
        )

    _EXECUTION_SELECT = (
        "SELECT execution_project, execution_domain, execution_name, spec, closure FROM executions"
    )
    _BY_EXECUTION = "execution_project = ? AND execution_domain = ? AND execution_name = ?"

    @staticmethod
    def _execution(row: Sequence[Any]) -> admin.Execution:
        return admin.Execution(
            id=ExecutionKey(*row[:3]).to_id(),
            spec=admin.ExecutionSpec.parse(row[3]),
            closure=admin.ExecutionClosure.parse(row[4]),
        )

    async def get_execution(self, key: ExecutionKey) -> admin.Execution | None:
        """An execution, or None."""
        sql = f"{self._EXECUTION_SELECT} WHERE {self._BY_EXECUTION}"

        def work(connection: sqlite3.Connection) -> admin.Execution | None:
            row = connection.execute(sql, key).fetchone()
            return self._execution(row) if row is not None else None

        return await self._read(work)

    async def get_execution_launch(self, key: ExecutionKey) -> tuple[IdKey, IdKey] | None:
        """(launch plan key, workflow key) an execution runs, or None if it does not exist."""
        sql = (
            "SELECT launch_plan_project, launch_plan_domain, launch_plan_name, launch_plan_version, "
            "workflow_project, workflow_domain, workflow_name, workflow_version FROM executions "
            f"WHERE {self._BY_EXECUTION}"
        )

        def work(connection: sqlite3.Connection) -> tuple[IdKey, IdKey] | None:
            row = connection.execute(sql, key).fetchone()
            return (tuple(row[:4]), tuple(row[4:])) if row is not None else None

        return await self._read(work)

    async def get_execution_data(
        self, key: ExecutionKey
    ) -> tuple[core.LiteralMap, core.LiteralMap | None] | None:
        """(inputs, outputs or None) of an execution, or None if it does not exist."""
        sql = f"SELECT inputs, outputs FROM executions WHERE {self._BY_EXECUTION}"

        def work(connection: sqlite3.Connection) -> tuple[core.LiteralMap, core.LiteralMap | None] | None:
            row = connection.execute(sql, key).fetchone()
            if row is None:
                return None
            return core.LiteralMap.parse(row[0]), core.LiteralMap.parse(row[1]) if row[
                1
            ] is not None else None

        return await self._read(work)

    async def list_executions(self, query: Query) -> list[admin.Execution]:
        """Executions matching a compiled `execution` query."""
        sql, params = page_sql(self._EXECUTION_SELECT, query)
        return await self._read(
            lambda connection: [self._execution(row) for row in connection.execute(sql, params)]
        )

    async def update_execution(
        self,
        key: ExecutionKey,
        change: Callable[[admin.ExecutionClosure], bool],
        *,
        outputs: core.LiteralMap | None = None,
    ) -> admin.ExecutionClosure | None:
        """Atomically read, change and write an execution's closure.

        Args:
            key: the execution.
            change: edits the closure in place and returns True to write it, False to leave the row alone.
                It runs inside the transaction (in a worker thread), so it must only compute.
            outputs: stored with the change when given.

        Returns:
            The written closure, or None when the execution does not exist or `change` declined.
        """

        def work(connection: sqlite3.Connection) -> admin.ExecutionClosure | None:
            row = connection.execute(
                f"SELECT closure FROM executions WHERE {self._BY_EXECUTION}", key
            ).fetchone()
            if row is None:
                return None
            closure = admin.ExecutionClosure.parse(row[0])
            if not change(closure):
                return None
            columns = {**self._execution_columns(closure), "closure": bytes(closure)}
            if outputs is not None:
                columns["outputs"] = bytes(outputs)
            assignments = ", ".join(f"{name} = ?" for name in columns)
            connection.execute(
                f"UPDATE executions SET {assignments} WHERE {self._BY_EXECUTION}", (*columns.values(), *key)
            )
            return closure

        return await self._write(work)

    async def unfinished_executions(
        self,
    ) -> list[tuple[ExecutionKey, core.WorkflowExecutionPhase, admin.ExecutionMetadataExecutionMode]]:
        """Executions not in a terminal phase, oldest first: (key, phase, launch mode)."""
        terminal = [phase.name for phase in WORKFLOW_TERMINAL]
        sql = (
            f"SELECT execution_project, execution_domain, execution_name, phase, mode FROM executions "
            f"WHERE phase NOT IN ({', '.join('?' * len(terminal))}) ORDER BY created_at, id"
        )
        return await self._read(
            lambda connection: [
                (
                    ExecutionKey(*row[:3]),
                    core.WorkflowExecutionPhase[row[3]],
                    admin.ExecutionMetadataExecutionMode(row[4]),
                )
                for row in connection.execute(sql, terminal)
            ]
        )

    # ------------------------------------------------------------------------------------------------
    # Node and task executions (written only by the runner, whole rows at a time)
    # ------------------------------------------------------------------------------------------------

    async def put_node_execution(
        self,
        node: admin.NodeExecution,
        *,
        parent_node_id: str | None = None,
        inputs: core.LiteralMap | None = None,
        outputs: core.LiteralMap | None = None,
    ) -> None:
        """Insert or replace a node execution; `inputs`/`outputs` are kept from before when None."""
        assert node.id is not None and node.id.execution_id is not None and node.closure is not None
        key = ExecutionKey.of(node.id.execution_id)
        closure = node.closure
        error_kind, error_code = error_columns(closure.error)
        metadata = node.metadata or admin.NodeExecutionMetaData()
        columns: dict[str, object] = {
            "execution_project": key.project,
            "execution_domain": key.domain,
            "execution_name": key.name,
            "node_id": node.id.node_id,
            "spec_node_id": metadata.spec_node_id or node.id.node_id,
            "parent_node_id": parent_node_id,
            "phase": closure.phase.name,
            "error_kind": error_kind,
            "error_code": error_code,
            "created_at": micros(closure.created_at) or 0,
            "updated_at": micros(closure.updated_at) or 0,
            "started_at": micros(closure.started_at),
            "duration": duration_micros(closure.duration),
            "closure": bytes(closure),
            "metadata": bytes(metadata),
            "input_uri": node.input_uri,
            "inputs": bytes(inputs) if inputs is not None else None,
            "outputs": bytes(outputs) if outputs is not None else None,
        }
        await self._write(
            lambda connection: connection.execute(
                *_upsert(
                    "node_executions",
                    columns,
                    ("execution_project", "execution_domain", "execution_name", "node_id"),
                )
            )
        )

    _NODE_SELECT = (
        "SELECT execution_project, execution_domain, execution_name, node_id, input_uri, closure, "
        "metadata FROM node_executions"
    )

    @staticmethod
    def _node_execution(row: Sequence[Any]) -> admin.NodeExecution:
        identifier = core.NodeExecutionIdentifier(node_id=row[3], execution_id=ExecutionKey(*row[:3]).to_id())
        return admin.NodeExecution(
            id=identifier,
            input_uri=row[4],
            closure=admin.NodeExecutionClosure.parse(row[5]),
            metadata=admin.NodeExecutionMetaData.parse(row[6]),
        )

    async def get_node_execution(self, key: ExecutionKey, node_id: str) -> admin.NodeExecution | None:
        """A node execution by its (unique) node id, or None."""
        sql = f"{self._NODE_SELECT} WHERE {self._BY_EXECUTION} AND node_id = ?"

        def work(connection: sqlite3.Connection) -> admin.NodeExecution | None:
            row = connection.execute(sql, (*key, node_id)).fetchone()
            return self._node_execution(row) if row is not None else None

        return await self._read(work)

    async def get_node_execution_data(
        self, key: ExecutionKey, node_id: str
    ) -> tuple[core.LiteralMap | None, core.LiteralMap | None] | None:
        """(inputs, outputs) of a node execution (each None until known), or None if it does not exist."""
        return await self._get_data(
            "node_executions", f"{self._BY_EXECUTION} AND node_id = ?", (*key, node_id)
        )

    async def list_node_executions(self, query: Query) -> list[admin.NodeExecution]:
        """Node executions matching a compiled `node_execution` query."""
        sql, params = page_sql(self._NODE_SELECT, query)
        return await self._read(
            lambda connection: [self._node_execution(row) for row in connection.execute(sql, params)]
        )

    async def put_task_execution(
        self,
        task: admin.TaskExecution,
        *,
        inputs: core.LiteralMap | None = None,
        outputs: core.LiteralMap | None = None,
    ) -> None:
        """Insert or replace a task execution (one attempt); `inputs`/`outputs` are kept when None."""
        identifier = task.id
        assert identifier is not None and identifier.task_id is not None and task.closure is not None
        node = identifier.node_execution_id
        assert node is not None and node.execution_id is not None
        key = ExecutionKey.of(node.execution_id)
        closure = task.closure
        columns: dict[str, object] = {
            **dict(
                zip(
                    ("task_project", "task_domain", "task_name", "task_version"),
                    id_key(identifier.task_id),
                    strict=True,
                )
            ),
            "execution_project": key.project,
            "execution_domain": key.domain,
            "execution_name": key.name,
            "node_id": node.node_id,
            "retry_attempt": identifier.retry_attempt,
            "phase": closure.phase.name,
            "created_at": micros(closure.created_at) or 0,
            "updated_at": micros(closure.updated_at) or 0,
            "started_at": micros(closure.started_at),
            "duration": duration_micros(closure.duration),
            "closure": bytes(closure),
            "input_uri": task.input_uri,
            "inputs": bytes(inputs) if inputs is not None else None,
            "outputs": bytes(outputs) if outputs is not None else None,
        }
        await self._write(
            lambda connection: connection.execute(
                *_upsert(
                    "task_executions",
                    columns,
                    ("execution_project", "execution_domain", "execution_name", "node_id", "retry_attempt"),
                )
            )
        )

    _TASK_SELECT = (
        "SELECT task_project, task_domain, task_name, task_version, execution_project, "
        "execution_domain, execution_name, node_id, retry_attempt, input_uri, closure "
        "FROM task_executions"
    )
    _BY_TASK_ATTEMPT = (
        "task_project = ? AND task_domain = ? AND task_name = ? AND task_version = ? AND "
        "execution_project = ? AND execution_domain = ? AND execution_name = ? AND node_id = ? AND "
        "retry_attempt = ?"
    )

    @staticmethod
    def _task_execution(row: Sequence[Any]) -> admin.TaskExecution:
        identifier = core.TaskExecutionIdentifier(
            task_id=core.Identifier(core.ResourceType.TASK, *row[:4]),
            node_execution_id=core.NodeExecutionIdentifier(
                node_id=row[7], execution_id=ExecutionKey(*row[4:7]).to_id()
            ),
            retry_attempt=row[8],
        )
        return admin.TaskExecution(
            id=identifier, input_uri=row[9], closure=admin.TaskExecutionClosure.parse(row[10])
        )

    @staticmethod
    def _task_attempt_params(identifier: core.TaskExecutionIdentifier) -> tuple[object, ...]:
        assert identifier.task_id is not None and identifier.node_execution_id is not None
        node = identifier.node_execution_id
        assert node.execution_id is not None
        return (
            *id_key(identifier.task_id),
            *ExecutionKey.of(node.execution_id),
            node.node_id,
            identifier.retry_attempt,
        )

    async def get_task_execution(
        self, identifier: core.TaskExecutionIdentifier
    ) -> admin.TaskExecution | None:
        """A task execution by its full identifier, or None."""
        sql = f"{self._TASK_SELECT} WHERE {self._BY_TASK_ATTEMPT}"
        params = self._task_attempt_params(identifier)

        def work(connection: sqlite3.Connection) -> admin.TaskExecution | None:
            row = connection.execute(sql, params).fetchone()
            return self._task_execution(row) if row is not None else None

        return await self._read(work)

    async def get_task_execution_data(
        self, identifier: core.TaskExecutionIdentifier
    ) -> tuple[core.LiteralMap | None, core.LiteralMap | None] | None:
        """(inputs, outputs) of a task execution, or None if it does not exist."""
        return await self._get_data(
            "task_executions", self._BY_TASK_ATTEMPT, self._task_attempt_params(identifier)
        )

    async def list_task_executions(self, query: Query) -> list[admin.TaskExecution]:
        """Task executions matching a compiled `task_execution` query."""
        sql, params = page_sql(self._TASK_SELECT, query)
        return await self._read(
            lambda connection: [self._task_execution(row) for row in connection.execute(sql, params)]
        )

    async def _get_data(
        self, table: str, where: str, params: Sequence[object]
    ) -> tuple[core.LiteralMap | None, core.LiteralMap | None] | None:
        def work(
            connection: sqlite3.Connection,
        ) -> tuple[core.LiteralMap | None, core.LiteralMap | None] | None:
            row = connection.execute(f"SELECT inputs, outputs FROM {table} WHERE {where}", params).fetchone()
            if row is None:
                return None
            return tuple(
                core.LiteralMap.parse(blob) if blob is not None else None  # type: ignore[return-value]
                for blob in row
            )

        return await self._read(work)

    async def interrupt_children(
        self,
        key: ExecutionKey,
        *,
        aborted: bool,
        error: core.ExecutionError,
        ended_at: datetime.datetime | None = None,
    ) -> None:
        """End every unfinished node and task execution of an execution left behind by a crash.

        Args:
            key: the execution.
            aborted: mark them ABORTED (the execution was being aborted) instead of FAILED with `error`.
            error: the error recorded on failed children.
            ended_at: when they ended, for their durations (default: now); the crashed sandbox's last
                heartbeat, so its downtime is not counted.
        """
        now = utc_now()
        end = min(now, ended_at) if ended_at is not None else now
        node_phase = core.NodeExecutionPhase.ABORTED if aborted else core.NodeExecutionPhase.FAILED
        task_phase = core.TaskExecutionPhase.ABORTED if aborted else core.TaskExecutionPhase.FAILED

        def finish(closure: admin.NodeExecutionClosure | admin.TaskExecutionClosure) -> None:
            closure.updated_at = now
            if closure.started_at is not None:
                closure.duration = max(end - closure.started_at, datetime.timedelta(0))
            if not aborted:
                closure.error = core.ExecutionError.parse(bytes(error))

        def work(connection: sqlite3.Connection) -> None:
            open_nodes = [phase.name for phase in core.NodeExecutionPhase if phase not in NODE_TERMINAL]
            rows = connection.execute(
                f"SELECT id, closure FROM node_executions WHERE {self._BY_EXECUTION} "
                f"AND phase IN ({', '.join('?' * len(open_nodes))})",
                (*key, *open_nodes),
            ).fetchall()
            for row_id, blob in rows:
                node_closure = admin.NodeExecutionClosure.parse(blob)
                node_closure.phase = node_phase
                finish(node_closure)
                connection.execute(
                    "UPDATE node_executions SET phase = ?, closure = ?, updated_at = ?, duration = ?, "
                    "error_kind = ?, error_code = ? WHERE id = ?",
                    (
                        node_phase.name,
                        bytes(node_closure),
                        to_micros(now),
                        duration_micros(node_closure.duration),
                        *error_columns(node_closure.error),
                        row_id,
                    ),
                )
            open_tasks = [phase.name for phase in core.TaskExecutionPhase if phase not in TASK_TERMINAL]
            rows = connection.execute(
                f"SELECT id, closure FROM task_executions WHERE {self._BY_EXECUTION} "
                f"AND phase IN ({', '.join('?' * len(open_tasks))})",
                (*key, *open_tasks),
            ).fetchall()
            for row_id, blob in rows:
                task_closure = admin.TaskExecutionClosure.parse(blob)
                task_closure.phase = task_phase
                finish(task_closure)
                connection.execute(
                    "UPDATE task_executions SET phase = ?, closure = ?, updated_at = ?, duration = ? "
                    "WHERE id = ?",
                    (
                        task_phase.name,
                        bytes(task_closure),
                        to_micros(now),
                        duration_micros(task_closure.duration),
                        row_id,
                    ),
                )

        await self._write(work)


def _upsert(
    table: str, columns: Mapping[str, object], unique: Sequence[str]
) -> tuple[str, tuple[object, ...]]:
    """INSERT … ON CONFLICT DO UPDATE; blob columns passed as None keep their stored value."""
    keep_when_null = ("inputs", "outputs")
    updates = ", ".join(
        f"{name} = COALESCE(excluded.{name}, {name})"
        if name in keep_when_null
        else f"{name} = excluded.{name}"
        for name in columns
        if name not in unique and name != "created_at"
    )
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(unique)}) DO UPDATE SET {updates}"
    )
    return sql, tuple(columns.values())
