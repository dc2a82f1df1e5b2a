"""The sandbox's FlyteAdmin: every AdminService RPC, backed by the SQLite store and the local runner.

The handlers live in `_admin_entities` (tasks, workflows, launch plans, projects, domains, version) and
`_admin_executions` (executions, node and task executions); validation and status helpers in
`_admin_common`. `GuardedService` comes first so that no fault is ever answered as UNKNOWN.
"""

from __future__ import annotations

from asyncrun._proto.flyteidl.service import AdminServiceBase
from asyncrun.sandbox._admin_entities import EntityHandlers
from asyncrun.sandbox._admin_executions import ExecutionHandlers
from asyncrun.sandbox._guard import GuardedService

__all__ = ["AdminService"]


class AdminService(GuardedService, EntityHandlers, ExecutionHandlers, AdminServiceBase):
    """FlyteAdmin v1 `AdminService` for the sandbox; serve it with `grpclib.server.Server([service])`.

    Args:
        store: the open sandbox store.
        runner: the runner executions are submitted to (started separately with `run_forever`).
        console_url: the sandbox console's base URL; task executions then link to their execution's page.

    Its generated coroutine methods (`create_task`, `get_execution`, …) can also be awaited directly; they
    raise `grpclib.GRPCError` with FlyteAdmin's status codes.
    """
