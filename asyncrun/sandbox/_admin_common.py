"""What every AdminService handler shares: the service's state, status helpers and request validation.

Validation runs before any store access, so bad input is answered cheaply (flytekit retries every error
three more times) and never leaves anything stored half-way.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, NoReturn

from grpclib import GRPCError
from grpclib.const import Status

from asyncrun._proto.flyteidl import admin, core
from asyncrun._proto.flyteidl.service import AdminServiceBase
from asyncrun.sandbox._compiler import IdKey, format_id, id_key
from asyncrun.sandbox._query import Query, QueryError, build_query, next_token
from asyncrun.sandbox._store import ExecutionKey, Store

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from asyncrun.sandbox._runner import Runner

__all__ = [
    "AdminState",
    "already_exists",
    "invalid",
    "list_query",
    "not_found",
    "page_token",
    "validate_execution_id",
    "validate_identifier",
    "validate_node_execution_id",
    "validate_project_domain",
]


def invalid(message: str) -> NoReturn:
    """Raise INVALID_ARGUMENT."""
    raise GRPCError(Status.INVALID_ARGUMENT, message)


def not_found(message: str) -> NoReturn:
    """Raise NOT_FOUND."""
    raise GRPCError(Status.NOT_FOUND, message)


def already_exists(message: str) -> NoReturn:
    """Raise ALREADY_EXISTS."""
    raise GRPCError(Status.ALREADY_EXISTS, message)


class AdminState(AdminServiceBase):
    """The state the AdminService handler mixins share, and the checks they all use.

    Args:
        store: the open sandbox store.
        runner: the executor that runs created executions.
        console_url: the sandbox console's base URL (`…/console`); "" when there is none.
    """

    def __init__(self, store: Store, runner: Runner, *, console_url: str = "") -> None:
        self.store = store
        self.runner = runner
        self.console_url = console_url.rstrip("/")
        # Single-task runs: task key -> (launch plan key, workflow key, launch plan spec) generated for it.
        self.flytegen: dict[IdKey, tuple[IdKey, IdKey, bytes]] = {}


def validate_project_domain(store: Store, project: str, domain: str, *, must_exist: bool = True) -> None:
    """Check a project and domain as FlyteAdmin does before it touches its database.

    Raises:
        GRPCError: INVALID_ARGUMENT when a part is empty, the project is not registered or not ACTIVE, or
            the domain is not configured.
    """
    if not project:
        invalid("missing project")
    if not domain:
        invalid("missing domain")
    if not must_exist:
        return
    state = store.project_state(project)
    if state is None:
        known = ", ".join(sorted(store.known_projects()))
        invalid(f"project [{project}] is not registered (registered projects: {known})")
    if state != admin.ProjectProjectState.ACTIVE:
        invalid(f"project [{project}] is not active (state {state.name})")
    if domain not in store.domains:
        invalid(f"domain [{domain}] is unrecognized by system (domains: {', '.join(store.domains)})")


def validate_identifier(
    store: Store,
    identifier: core.Identifier | None,
    resource_type: core.ResourceType,
    *,
    must_exist: bool = False,
) -> IdKey:
    """Check an entity identifier: present, of `resource_type`, every part non-empty (project/domain too
    when `must_exist`).

    Returns:
        The identifier's key.

    Raises:
        GRPCError: INVALID_ARGUMENT describing the first problem.
    """
    if identifier is None:
        invalid("missing id")
    if identifier.resource_type != resource_type:
        invalid(
            f"unexpected resource type {identifier.resource_type.name.lower()} for identifier "
            f"[{format_id(identifier)}], expected {resource_type.name.lower()} instead"
        )
    validate_project_domain(store, identifier.project, identifier.domain, must_exist=must_exist)
    if not identifier.name:
        invalid("missing name")
    if not identifier.version:
        invalid("missing version")
    return id_key(identifier)


def validate_execution_id(identifier: core.WorkflowExecutionIdentifier | None) -> ExecutionKey:
    """A WorkflowExecutionIdentifier with project, domain and name set.

    Raises:
        GRPCError: INVALID_ARGUMENT when it is missing or incomplete.
    """
    if identifier is None:
        invalid("missing id")
    for part in ("project", "domain", "name"):
        if not getattr(identifier, part):
            invalid(f"missing {part}")
    return ExecutionKey.of(identifier)


def validate_node_execution_id(identifier: core.NodeExecutionIdentifier | None) -> tuple[ExecutionKey, str]:
    """A NodeExecutionIdentifier with a node id and a complete execution id.

    Raises:
        GRPCError: INVALID_ARGUMENT when it is missing or incomplete.
    """
    if identifier is None:
        invalid("missing id")
    if not identifier.node_id:
        invalid("missing node_id")
    return validate_execution_id(identifier.execution_id), identifier.node_id


@contextlib.contextmanager
def _query_errors() -> Iterator[None]:
    try:
        yield
    except QueryError as exc:
        invalid(str(exc))


def list_query(
    entity: str,
    *,
    filters: str,
    sort_by: admin.Sort | None,
    limit: int,
    token: str,
    conditions: Iterable[tuple[str, Sequence[object]]] = (),
    ids: bool = False,
    allow_unlimited: bool = False,
) -> Query:
    """`build_query` with its errors answered as INVALID_ARGUMENT."""
    with _query_errors():
        return build_query(
            entity,
            filters=filters,
            sort_by=sort_by,
            limit=limit,
            token=token,
            conditions=conditions,
            ids=ids,
            allow_unlimited=allow_unlimited,
        )


def page_token(query: Query, page_length: int) -> str:
    """The `token` of a list response (see `next_token`)."""
    return next_token(query, page_length)
