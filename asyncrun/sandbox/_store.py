"""SQLite persistence for the sandbox: projects, tasks, workflows, launch plans and (node/task) executions.

`Store` is the one object the admin service and the runner share. The plumbing (connection, migrations,
worker-thread calls) is in `_db`, execution tables in `_store_executions`; this module adds projects and
the registered entities.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NamedTuple, Self, TypeVar

from asyncrun._proto.flyteidl import admin, core
from asyncrun.sandbox._compiler import IdKey, content_digest, id_key
from asyncrun.sandbox._db import (
    DEFAULT_DOMAINS,
    DEFAULT_PROJECTS,
    MIGRATIONS,
    NODE_TERMINAL,
    TASK_TERMINAL,
    WORKFLOW_TERMINAL,
    CreateOutcome,
    ExecutionKey,
    StoreError,
    page_sql,
    utc_now,
)
from asyncrun.sandbox._query import to_micros
from asyncrun.sandbox._store_executions import ExecutionRecords

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from pathlib import Path
    from types import TracebackType

    from asyncrun.sandbox._query import Query

__all__ = [
    "DEFAULT_DOMAINS",
    "DEFAULT_PROJECTS",
    "MIGRATIONS",
    "NODE_TERMINAL",
    "TASK_TERMINAL",
    "WORKFLOW_TERMINAL",
    "CreateOutcome",
    "ExecutionKey",
    "ExecutionToRun",
    "Store",
    "StoreError",
    "utc_now",
]

T = TypeVar("T")

# DNS-1123 label, as FlyteAdmin requires of project ids.
_PROJECT_ID = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class _EntityTable(NamedTuple):
    table: str


_TASKS = _EntityTable("tasks")
_WORKFLOWS = _EntityTable("workflows")
_SHARED_KEPT = 256  # parsed workflows and launch plans kept (`Store._shared`)
_LAUNCH_PLANS = _EntityTable("launch_plans")
_ENTITY_TABLES = {"task": _TASKS, "workflow": _WORKFLOWS, "launch_plan": _LAUNCH_PLANS}


class ExecutionToRun(NamedTuple):
    """An execution as the runner starts it (`Store.execution_to_run`)."""

    execution: admin.Execution
    inputs: core.LiteralMap
    launch_plan_key: IdKey
    workflow_key: IdKey
    launch_plan: admin.LaunchPlan | None
    workflow: admin.Workflow | None


class Store(ExecutionRecords):
    """The sandbox's database: `store = await Store.open(path)` … `await store.close()`, or `async with`.

    Args:
        path: the SQLite file (created with its folder if missing).
        domains: the domains every project has.
        projects: projects created (ACTIVE) when missing.
    """

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        domains: Sequence[str] = DEFAULT_DOMAINS,
        projects: Sequence[str] = DEFAULT_PROJECTS,
    ) -> Self:
        """Open (creating or migrating) the database at `path` and seed its projects.

        Raises:
            StoreError: the database has a newer schema than this asyncrun knows.
        """
        store = cls(path, domains=domains, projects=projects)
        await store.connect()
        return store

    async def connect(self) -> None:
        """Open the connection, apply missing migrations and create the seed projects (idempotent)."""
        await self._connect()
        for project in self._seed_projects:
            await self.ensure_project(project)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------------------------------------
    # Projects
    # ------------------------------------------------------------------------------------------------

    def project_state(self, project: str) -> admin.ProjectProjectState | None:
        """The state of a project, or None if it does not exist (no I/O)."""
        return self._projects.get(project)

    def known_projects(self) -> list[str]:
        """Ids of every project (no I/O)."""
        return list(self._projects)

    async def ensure_project(self, project: str, *, name: str = "", description: str = "") -> None:
        """Create an ACTIVE project unless one with this id exists.

        Raises:
            ValueError: the id is not a DNS-1123 label, the name is longer than 64 characters or the
                description longer than 300.
        """
        if not _PROJECT_ID.match(project):
            raise ValueError(
                f"invalid project id {project!r}: use lowercase letters, digits and '-' "
                "(a DNS-1123 label, at most 63 characters)"
            )
        if len(name) > 64:
            raise ValueError("a project name has at most 64 characters")
        if len(description) > 300:
            raise ValueError("a project description has at most 300 characters")
        if project in self._projects:
            return
        now = to_micros(utc_now())

        def work(connection: sqlite3.Connection) -> admin.ProjectProjectState:
            connection.execute(
                "INSERT OR IGNORE INTO projects (id, name, description, state, created_at, updated_at)"
                " VALUES (?, ?, ?, 0, ?, ?)",
                (project, name or project, description, now, now),
            )
            (state,) = connection.execute("SELECT state FROM projects WHERE id = ?", (project,)).fetchone()
            return admin.ProjectProjectState(state)

        self._projects[project] = await self._write(work)

    async def list_projects(self, query: Query) -> list[admin.Project]:
        """Projects matching a compiled `project` query."""
        domains = [admin.Domain(id=domain, name=domain) for domain in self.domains]

        def work(connection: sqlite3.Connection) -> list[admin.Project]:
            sql, params = page_sql("SELECT id, name, description, state FROM projects", query)
            return [
                admin.Project(
                    id=row[0],
                    name=row[1],
                    description=row[2],
                    domains=domains,
                    state=admin.ProjectProjectState(row[3]),
                )
                for row in connection.execute(sql, params)
            ]

        return await self._read(work)

    # ------------------------------------------------------------------------------------------------
    # Tasks, workflows, launch plans
    # ------------------------------------------------------------------------------------------------

    @staticmethod
    def _insert_entity(
        connection: sqlite3.Connection, table: str, key: IdKey, digest: bytes, columns: Mapping[str, object]
    ) -> CreateOutcome:
        row = connection.execute(
            f"SELECT digest FROM {table} WHERE project = ? AND domain = ? AND name = ? AND version = ?",
            key,
        ).fetchone()
        if row is not None:
            return CreateOutcome.IDENTICAL if row[0] == digest else CreateOutcome.DIFFERENT
        names = ["project", "domain", "name", "version", "digest", *columns]
        connection.execute(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            (*key, digest, *columns.values()),
        )
        return CreateOutcome.CREATED

    async def create_task(self, template: core.TaskTemplate, *, short_description: str = "") -> CreateOutcome:
        """Store a task unless its id exists; `template.id` is the registered id.

        Returns:
            CREATED, or IDENTICAL / DIFFERENT when the id exists, comparing the template's content.
        """
        assert template.id is not None
        key = id_key(template.id)
        now = utc_now()

        def work(connection: sqlite3.Connection) -> CreateOutcome:
            closure = admin.TaskClosure(compiled_task=core.CompiledTask(template=template), created_at=now)
            return self._insert_entity(
                connection,
                _TASKS.table,
                key,
                content_digest(template),
                {
                    "closure": bytes(closure),
                    "short_description": short_description,
                    "type": template.type,
                    "created_at": to_micros(now),
                    "updated_at": to_micros(now),
                },
            )

        return await self._write(work)

    async def create_workflow(
        self,
        identifier: core.Identifier,
        compiled: core.CompiledWorkflowClosure,
        *,
        short_description: str = "",
    ) -> CreateOutcome:
        """Store a compiled workflow unless its id exists (compared by the compiled closure's content)."""
        key = id_key(identifier)
        now = utc_now()

        def work(connection: sqlite3.Connection) -> CreateOutcome:
            closure = admin.WorkflowClosure(compiled_workflow=compiled, created_at=now)
            return self._insert_entity(
                connection,
                _WORKFLOWS.table,
                key,
                content_digest(compiled),
                {
                    "closure": bytes(closure),
                    "short_description": short_description,
                    "created_at": to_micros(now),
                    "updated_at": to_micros(now),
                },
            )

        return await self._write(work)

    async def create_launch_plan(
        self, identifier: core.Identifier, spec: admin.LaunchPlanSpec, closure: admin.LaunchPlanClosure
    ) -> CreateOutcome:
        """Store a launch plan (INACTIVE) unless its id exists (compared by the spec's content)."""
        assert spec.workflow_id is not None
        key = id_key(identifier)
        now = utc_now()
        closure.created_at = closure.updated_at = now
        closure.state = admin.LaunchPlanState.INACTIVE

        def work(connection: sqlite3.Connection) -> CreateOutcome:
            assert spec.workflow_id is not None
            return self._insert_entity(
                connection,
                _LAUNCH_PLANS.table,
                key,
                content_digest(spec),
                {
                    "spec": bytes(spec),
                    "closure": bytes(closure),
                    "state": 0,
                    "workflow_project": spec.workflow_id.project,
                    "workflow_domain": spec.workflow_id.domain,
                    "workflow_name": spec.workflow_id.name,
                    "workflow_version": spec.workflow_id.version,
                    "created_at": to_micros(now),
                    "updated_at": to_micros(now),
                },
            )

        return await self._write(work)

    @staticmethod
    def _task(row: Sequence[Any]) -> admin.Task:
        identifier = core.Identifier(core.ResourceType.TASK, *row[:4])
        return admin.Task(id=identifier, closure=admin.TaskClosure.parse(row[4]), short_description=row[5])

    @staticmethod
    def _workflow(row: Sequence[Any]) -> admin.Workflow:
        identifier = core.Identifier(core.ResourceType.WORKFLOW, *row[:4])
        return admin.Workflow(
            id=identifier, closure=admin.WorkflowClosure.parse(row[4]), short_description=row[5]
        )

    @staticmethod
    def _launch_plan(row: Sequence[Any]) -> admin.LaunchPlan:
        identifier = core.Identifier(core.ResourceType.LAUNCH_PLAN, *row[:4])
        return admin.LaunchPlan(
            id=identifier,
            spec=admin.LaunchPlanSpec.parse(row[6]),
            closure=admin.LaunchPlanClosure.parse(row[4]),
        )

    _ENTITY_SELECT = "SELECT project, domain, name, version, closure, short_description{extra} FROM {table}"

    async def _get_entity(
        self, table: _EntityTable, key: IdKey, build: Callable[[Sequence[Any]], T]
    ) -> T | None:
        extra = ", spec" if table is _LAUNCH_PLANS else ""
        sql = self._ENTITY_SELECT.format(extra=extra, table=table.table)
        sql += " WHERE project = ? AND domain = ? AND name = ? AND version = ?"

        def work(connection: sqlite3.Connection) -> T | None:
            row = connection.execute(sql, key).fetchone()
            return build(row) if row is not None else None

        return await self._read(work)

    async def _list_entities(
        self, table: _EntityTable, query: Query, build: Callable[[Sequence[Any]], T]
    ) -> list[T]:
        extra = ", spec" if table is _LAUNCH_PLANS else ""
        sql, params = page_sql(self._ENTITY_SELECT.format(extra=extra, table=table.table), query)
        return await self._read(lambda connection: [build(row) for row in connection.execute(sql, params)])

    async def get_task(self, key: IdKey) -> admin.Task | None:
        """A registered task, or None."""
        return await self._get_entity(_TASKS, key, self._task)

    async def get_task_templates(self, keys: Iterable[IdKey]) -> dict[IdKey, core.TaskTemplate]:
        """The templates of those tasks among `keys` that are registered (for compiling a workflow)."""
        wanted = list(keys)

        def work(connection: sqlite3.Connection) -> dict[IdKey, core.TaskTemplate]:
            found: dict[IdKey, core.TaskTemplate] = {}
            for key in wanted:
                row = connection.execute(
                    "SELECT closure FROM tasks WHERE project = ? AND domain = ? AND name = ? AND version = ?",
                    key,
                ).fetchone()
                if row is not None:
                    compiled = admin.TaskClosure.parse(row[0]).compiled_task
                    if compiled is not None and compiled.template is not None:
                        found[key] = compiled.template
            return found

        return await self._read(work)

    async def list_tasks(self, query: Query) -> list[admin.Task]:
        """Tasks matching a compiled `task` query."""
        return await self._list_entities(_TASKS, query, self._task)

    async def get_workflow(self, key: IdKey) -> admin.Workflow | None:
        """A registered workflow (with its compiled closure), or None."""
        return await self._get_entity(_WORKFLOWS, key, self._workflow)

    async def list_workflows(self, query: Query) -> list[admin.Workflow]:
        """Workflows matching a compiled `workflow` query."""
        return await self._list_entities(_WORKFLOWS, query, self._workflow)

    async def get_launch_plan(self, key: IdKey) -> admin.LaunchPlan | None:
        """A registered launch plan, or None."""
        return await self._get_entity(_LAUNCH_PLANS, key, self._launch_plan)

    def _shared(self, table: _EntityTable, row: Sequence[Any], build: Callable[[Sequence[Any]], T]) -> T:
        """`build(row)`, parsed once per stored content and then shared (so it must not be changed).

        Registered workflows and launch plans do not change (a launch plan's state aside, which is in
        its row too), but every execution of one parsed them again: for a launch plan of a few tasks,
        more than the rest of creating or starting the execution. Runs in the database's thread.
        """
        cache = self._parsed
        cache_key = (table.table, tuple(row[:4]))
        content = tuple(row[4:])
        hit = cache.get(cache_key)
        if hit is not None and hit[0] == content:
            return hit[1]  # type: ignore[no-any-return]
        parsed = build(row)
        while len(cache) >= _SHARED_KEPT:
            del cache[next(iter(cache))]
        cache[cache_key] = (content, parsed)
        return parsed

    async def launch_plan_to_launch(self, key: IdKey) -> admin.LaunchPlan | None:
        """A registered launch plan, or None, shared between callers (see `_shared`): read only."""
        sql = self._ENTITY_SELECT.format(extra=", spec", table=_LAUNCH_PLANS.table)
        sql += " WHERE project = ? AND domain = ? AND name = ? AND version = ?"

        def work(connection: sqlite3.Connection) -> admin.LaunchPlan | None:
            row = connection.execute(sql, key).fetchone()
            return self._shared(_LAUNCH_PLANS, row, self._launch_plan) if row is not None else None

        return await self._read(work)

    async def execution_to_run(self, key: ExecutionKey) -> ExecutionToRun | None:
        """What the runner reads to start an execution, in one call: the execution, its inputs, and the
        launch plan and workflow it runs (None for one that is not registered; both shared, see
        `_shared`: read only). None: no such execution."""
        sql = (
            f"SELECT execution_project, execution_domain, execution_name, spec, closure, inputs, "
            "launch_plan_project, launch_plan_domain, launch_plan_name, launch_plan_version, "
            "workflow_project, workflow_domain, workflow_name, workflow_version FROM executions "
            f"WHERE {self._BY_EXECUTION}"
        )
        entity_sql = " WHERE project = ? AND domain = ? AND name = ? AND version = ?"
        workflow_sql = self._ENTITY_SELECT.format(extra="", table=_WORKFLOWS.table) + entity_sql
        launch_plan_sql = self._ENTITY_SELECT.format(extra=", spec", table=_LAUNCH_PLANS.table) + entity_sql

        def work(connection: sqlite3.Connection) -> ExecutionToRun | None:
            row = connection.execute(sql, key).fetchone()
            if row is None:
                return None
            launch_plan_key: IdKey = tuple(row[6:10])
            workflow_key: IdKey = tuple(row[10:14])
            workflow = connection.execute(workflow_sql, workflow_key).fetchone()
            launch_plan = connection.execute(launch_plan_sql, launch_plan_key).fetchone()
            return ExecutionToRun(
                execution=self._execution(row[:5]),
                inputs=core.LiteralMap.parse(row[5]),
                launch_plan_key=launch_plan_key,
                workflow_key=workflow_key,
                launch_plan=(
                    self._shared(_LAUNCH_PLANS, launch_plan, self._launch_plan)
                    if launch_plan is not None
                    else None
                ),
                workflow=self._shared(_WORKFLOWS, workflow, self._workflow) if workflow is not None else None,
            )

        return await self._read(work)

    async def get_launch_plan_outputs(self, keys: Iterable[IdKey]) -> dict[IdKey, core.VariableMap | None]:
        """Expected outputs of those launch plans among `keys` that exist (for compiling a workflow)."""
        found: dict[IdKey, core.VariableMap | None] = {}
        for key in keys:
            launch_plan = await self.get_launch_plan(key)
            if launch_plan is not None:
                found[key] = launch_plan.closure.expected_outputs if launch_plan.closure is not None else None
        return found

    async def get_active_launch_plan(self, project: str, domain: str, name: str) -> admin.LaunchPlan | None:
        """The ACTIVE version of a launch plan, or None."""
        sql = self._ENTITY_SELECT.format(extra=", spec", table="launch_plans")
        sql += " WHERE project = ? AND domain = ? AND name = ? AND state = 1 ORDER BY updated_at DESC LIMIT 1"

        def work(connection: sqlite3.Connection) -> admin.LaunchPlan | None:
            row = connection.execute(sql, (project, domain, name)).fetchone()
            return self._launch_plan(row) if row is not None else None

        return await self._read(work)

    async def list_launch_plans(self, query: Query) -> list[admin.LaunchPlan]:
        """Launch plans matching a compiled `launch_plan` query."""
        return await self._list_entities(_LAUNCH_PLANS, query, self._launch_plan)

    async def set_launch_plan_state(self, key: IdKey, state: admin.LaunchPlanState) -> bool:
        """Activate (deactivating every other version of the name) or deactivate a launch plan.

        Returns:
            False if the launch plan does not exist.
        """
        now = utc_now()

        def set_state(
            connection: sqlite3.Connection,
            where: str,
            params: Sequence[object],
            new_state: admin.LaunchPlanState,
        ) -> None:
            rows = connection.execute(
                f"SELECT id, closure FROM launch_plans WHERE {where}", params
            ).fetchall()
            for row_id, blob in rows:
                closure = admin.LaunchPlanClosure.parse(blob)
                closure.state, closure.updated_at = new_state, now
                connection.execute(
                    "UPDATE launch_plans SET state = ?, closure = ?, updated_at = ? WHERE id = ?",
                    (int(new_state), bytes(closure), to_micros(now), row_id),
                )

        def work(connection: sqlite3.Connection) -> bool:
            match = "project = ? AND domain = ? AND name = ? AND version = ?"
            if connection.execute(f"SELECT 1 FROM launch_plans WHERE {match}", key).fetchone() is None:
                return False
            if state == admin.LaunchPlanState.ACTIVE:
                set_state(
                    connection,
                    "project = ? AND domain = ? AND name = ? AND version != ? AND state = 1",
                    key,
                    admin.LaunchPlanState.INACTIVE,
                )
            set_state(connection, match, key, state)
            return True

        return await self._write(work)

    async def list_entity_names(self, kind: str, query: Query) -> list[admin.NamedEntityIdentifier]:
        """Distinct (project, domain, name) of `kind` (`task`, `workflow`, `launch_plan`) for List*Ids."""
        table = _ENTITY_TABLES[kind].table
        sql, params = page_sql(
            f"SELECT project, domain, name FROM {table}", query, group_by="project, domain, name"
        )
        return await self._read(
            lambda connection: [
                admin.NamedEntityIdentifier(project=row[0], domain=row[1], name=row[2])
                for row in connection.execute(sql, params)
            ]
        )
