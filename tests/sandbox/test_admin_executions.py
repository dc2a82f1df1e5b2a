"""AdminService over a real grpclib server: creating, reading, listing and terminating executions.

The runner here is never started, so executions stay QUEUED unless a test moves them: phases are exactly
what each test sets up. (tests/sandbox/test_runner.py covers running them.)
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpclib.const import Status

from asyncrun._proto.flyteidl import admin, core
from asyncrun._proto.flyteidl.service import AdminServiceStub
from asyncrun.sandbox._runner import Runner
from asyncrun.sandbox._store import ExecutionKey, Store, utc_now

from .conftest import (
    DOMAIN,
    INT,
    PROJECT,
    STR,
    bind,
    default_parameters,
    execution_spec,
    expect_status,
    integer,
    launch_plan_id,
    launch_plan_spec,
    literals,
    promise,
    string,
    task_id,
    task_node,
    task_template,
    variables,
    workflow_id,
    workflow_template,
)

pytestmark = pytest.mark.anyio

Phase = core.WorkflowExecutionPhase


@pytest.fixture
async def runner(store: Store, tmp_path: Path) -> AsyncIterator[Runner]:
    """A runner that is never started: executions wait in QUEUED."""
    yield Runner(store, tmp_path / "data")


@pytest.fixture
async def registered(stub: AdminServiceStub) -> None:
    """Task `add(a, b)`, workflow `adder(x, y, z)`, and launch plan `adder` with y=5 and z fixed to 7."""
    add = task_template(task_id("add"), inputs=variables(a=INT, b=INT), outputs=variables(o0=INT))
    await stub.create_task(admin.TaskCreateRequest(id=add.id, spec=admin.TaskSpec(template=add)))
    greet = task_template(task_id("hello.greet"), inputs=variables(name=STR), outputs=variables(o0=STR))
    await stub.create_task(admin.TaskCreateRequest(id=greet.id, spec=admin.TaskSpec(template=greet)))
    template = workflow_template(
        workflow_id("adder"),
        [
            task_node("n0", task_id("add"), bind("a", promise("", "x")), bind("b", promise("", "y"))),
            task_node("n1", task_id("add"), bind("a", promise("n0", "o0")), bind("b", promise("", "z"))),
        ],
        inputs=variables(x=INT, y=INT, z=INT),
        outputs=variables(o0=INT),
        output_bindings=[bind("o0", promise("n1", "o0"))],
    )
    await stub.create_workflow(
        admin.WorkflowCreateRequest(id=template.id, spec=admin.WorkflowSpec(template=template))
    )
    spec = launch_plan_spec(
        workflow_id("adder"), defaults=default_parameters(y=(INT, integer(5))), fixed=literals(z=integer(7))
    )
    await stub.create_launch_plan(admin.LaunchPlanCreateRequest(id=launch_plan_id("adder"), spec=spec))


def create(
    name: str = "",
    inputs: core.LiteralMap | None = None,
    *,
    launch: core.Identifier | None = None,
    project: str = PROJECT,
    domain: str = DOMAIN,
) -> admin.ExecutionCreateRequest:
    return admin.ExecutionCreateRequest(
        project=project,
        domain=domain,
        name=name,
        spec=execution_spec(launch if launch is not None else launch_plan_id("adder")),
        inputs=inputs if inputs is not None else literals(x=integer(1)),
    )


def get(name: str) -> admin.WorkflowExecutionGetRequest:
    return admin.WorkflowExecutionGetRequest(id=ExecutionKey(PROJECT, DOMAIN, name).to_id())


async def names_listed(
    stub: AdminServiceStub, filters: str = "", sort_by: admin.Sort | None = None
) -> list[str]:
    listing = await stub.list_executions(
        admin.ResourceListRequest(
            id=admin.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
            limit=100,
            filters=filters,
            sort_by=sort_by,
        )
    )
    return [execution.id.name for execution in listing.executions if execution.id]


@pytest.mark.usefixtures("registered")
async def test_an_execution_is_created_queued_with_merged_inputs(stub: AdminServiceStub) -> None:
    request = create("first-run")
    response = await stub.create_execution(request)
    assert response.id == ExecutionKey(PROJECT, DOMAIN, "first-run").to_id()
    execution = await stub.get_execution(get("first-run"))
    closure = execution.closure
    assert closure is not None and closure.phase == Phase.QUEUED
    assert closure.created_at is not None and closure.updated_at is not None
    assert closure.workflow_id == workflow_id("adder")
    assert closure.state_change_details is not None
    assert closure.state_change_details.state == admin.ExecutionState.EXECUTION_ACTIVE
    assert closure.error is None and closure.outputs is None and closure.abort_metadata is None
    # The spec comes back as sent, byte for byte (notably spec.launch_plan and disable_all=false).
    assert execution.spec is not None and request.spec is not None
    assert bytes(execution.spec) == bytes(request.spec)
    data = await stub.get_execution_data(admin.WorkflowExecutionGetDataRequest(id=response.id))
    assert data.full_inputs is not None
    assert data.full_inputs.literals == {"x": integer(1), "y": integer(5), "z": integer(7)}


@pytest.mark.usefixtures("registered")
@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (literals(x=integer(1), w=integer(2)), "invalid input w"),
        (literals(x=integer(1), z=integer(2)), "invalid input z"),
        (literals(y=integer(2)), "expected_inputs x missing"),
        (literals(x=string("one")), "invalid x input wrong type. Expected INTEGER, but got string 'one'"),
    ],
)
async def test_bad_inputs_are_rejected_and_nothing_is_stored(
    stub: AdminServiceStub, inputs: core.LiteralMap, message: str
) -> None:
    await expect_status(stub.create_execution(create("bad-inputs", inputs)), Status.INVALID_ARGUMENT, message)
    await expect_status(stub.get_execution(get("bad-inputs")), Status.NOT_FOUND)
    assert await names_listed(stub) == []


@pytest.mark.usefixtures("registered")
async def test_execution_names(stub: AdminServiceStub) -> None:
    generated = await stub.create_execution(create())
    assert generated.id is not None and re.fullmatch(r"a[bcdfghjklmnpqrstvwxz2456789]{19}", generated.id.name)
    await stub.create_execution(create("Mixed-Case-9"))
    await stub.get_execution(get("Mixed-Case-9"))
    await stub.create_execution(create("a" * 63))
    for bad in ("9lives", "has_underscore", "dots.too", "-dash", "a" * 64):
        await expect_status(stub.create_execution(create(bad)), Status.INVALID_ARGUMENT)
    await expect_status(
        stub.create_execution(create("Mixed-Case-9")), Status.ALREADY_EXISTS, "already exists"
    )
    assert sorted(await names_listed(stub)) == sorted([generated.id.name, "Mixed-Case-9", "a" * 63])


@pytest.mark.usefixtures("registered")
async def test_a_task_id_launches_through_generated_entities(stub: AdminServiceStub) -> None:
    request = create("one-task", literals(name=string("y")), launch=task_id("hello.greet"))
    await stub.create_execution(request)
    execution = await stub.get_execution(get("one-task"))
    assert execution.spec is not None and execution.spec.launch_plan == task_id("hello.greet")
    assert execution.closure is not None and execution.closure.workflow_id == workflow_id(
        ".flytegen.hello.greet"
    )
    workflow = await stub.get_workflow(admin.ObjectGetRequest(id=workflow_id(".flytegen.hello.greet")))
    compiled = workflow.closure.compiled_workflow if workflow.closure else None
    assert compiled is not None and compiled.primary is not None and compiled.primary.template is not None
    assert [node.id for node in compiled.primary.template.nodes] == ["start-node", "hellogreet", "end-node"]
    assert [task.template.id for task in compiled.tasks if task.template] == [task_id("hello.greet")]
    generated_lp = await stub.get_launch_plan(
        admin.ObjectGetRequest(id=launch_plan_id(".flytegen.hello.greet"))
    )
    assert generated_lp.spec is not None and generated_lp.spec.workflow_id == workflow_id(
        ".flytegen.hello.greet"
    )
    # Running the task again reuses them (kept by the server), with this run's own inputs and checks.
    await stub.create_execution(
        create("one-task-again", literals(name=string("z")), launch=task_id("hello.greet"))
    )
    await expect_status(
        stub.create_execution(create("one-task-bad", literals(), launch=task_id("hello.greet"))),
        Status.INVALID_ARGUMENT,
        "expected_inputs name missing",
    )
    data = [
        await stub.get_execution_data(admin.WorkflowExecutionGetDataRequest(id=get(name).id))
        for name in ("one-task", "one-task-again")
    ]
    assert [d.full_inputs.literals if d.full_inputs else None for d in data] == [
        literals(name=string("y")).literals,
        literals(name=string("z")).literals,
    ]


@pytest.mark.usefixtures("registered")
async def test_a_bad_single_task_launch_generates_nothing(stub: AdminServiceStub) -> None:
    await expect_status(
        stub.create_execution(create("no-name", literals(), launch=task_id("hello.greet"))),
        Status.INVALID_ARGUMENT,
        "expected_inputs name missing",
    )
    await expect_status(
        stub.get_workflow(admin.ObjectGetRequest(id=workflow_id(".flytegen.hello.greet"))), Status.NOT_FOUND
    )


@pytest.mark.usefixtures("registered")
@pytest.mark.parametrize(
    ("request_", "status", "message"),
    [
        (
            create("r", launch=launch_plan_id("ghost")),
            Status.NOT_FOUND,
            "launch plan [flytesnacks:development:ghost",
        ),
        (create("r", launch=task_id("ghost")), Status.NOT_FOUND, "task [flytesnacks:development:ghost"),
        (
            create("r", launch=workflow_id("adder")),
            Status.INVALID_ARGUMENT,
            "resource type must be LAUNCH_PLAN or TASK",
        ),
        (create("r", project="nope"), Status.INVALID_ARGUMENT, "project [nope] is not registered"),
        (create("r", domain="qa"), Status.INVALID_ARGUMENT, "domain [qa] is unrecognized"),
        (create("r", project=""), Status.INVALID_ARGUMENT, "missing project"),
        (
            admin.ExecutionCreateRequest(project=PROJECT, domain=DOMAIN, name="r"),
            Status.INVALID_ARGUMENT,
            "missing spec",
        ),
    ],
)
async def test_bad_launches(
    stub: AdminServiceStub, request_: admin.ExecutionCreateRequest, status: Status, message: str
) -> None:
    await expect_status(stub.create_execution(request_), status, message)
    await expect_status(stub.get_execution(get("r")), Status.NOT_FOUND)


async def test_reading_unknown_or_incomplete_ids(stub: AdminServiceStub) -> None:
    await expect_status(stub.get_execution(get("ghost")), Status.NOT_FOUND)
    await expect_status(
        stub.get_execution_data(admin.WorkflowExecutionGetDataRequest(id=get("ghost").id)), Status.NOT_FOUND
    )
    await expect_status(
        stub.get_execution(
            admin.WorkflowExecutionGetRequest(id=core.WorkflowExecutionIdentifier(project=PROJECT, name="x"))
        ),
        Status.INVALID_ARGUMENT,
        "missing domain",
    )
    node = core.NodeExecutionIdentifier(node_id="n0", execution_id=get("ghost").id)
    await expect_status(stub.get_node_execution(admin.NodeExecutionGetRequest(id=node)), Status.NOT_FOUND)
    await expect_status(
        stub.get_node_execution_data(admin.NodeExecutionGetDataRequest(id=node)), Status.NOT_FOUND
    )
    await expect_status(
        stub.get_node_execution(
            admin.NodeExecutionGetRequest(id=core.NodeExecutionIdentifier(execution_id=get("ghost").id))
        ),
        Status.INVALID_ARGUMENT,
        "missing node_id",
    )
    attempt = core.TaskExecutionIdentifier(task_id=task_id("add"), node_execution_id=node, retry_attempt=0)
    await expect_status(stub.get_task_execution(admin.TaskExecutionGetRequest(id=attempt)), Status.NOT_FOUND)
    await expect_status(
        stub.get_task_execution_data(admin.TaskExecutionGetDataRequest(id=attempt)), Status.NOT_FOUND
    )
    listing = await stub.list_node_executions(
        admin.NodeExecutionListRequest(workflow_execution_id=get("ghost").id, limit=100)
    )
    assert listing.node_executions == [] and listing.token == ""
    await expect_status(
        stub.list_node_executions(
            admin.NodeExecutionListRequest(workflow_execution_id=get("ghost").id, limit=0)
        ),
        Status.INVALID_ARGUMENT,
        "limit",
    )
    await expect_status(
        stub.list_task_executions(admin.TaskExecutionListRequest(limit=10)), Status.INVALID_ARGUMENT
    )


@pytest.mark.usefixtures("registered")
async def test_terminate(stub: AdminServiceStub) -> None:
    await expect_status(
        stub.terminate_execution(admin.ExecutionTerminateRequest(id=get("ghost").id)), Status.NOT_FOUND
    )
    await stub.create_execution(create("stop-me"))
    await stub.terminate_execution(admin.ExecutionTerminateRequest(id=get("stop-me").id, cause="not needed"))
    # Nothing was running, so it is ABORTED at once.
    closure = (await stub.get_execution(get("stop-me"))).closure
    assert closure is not None and closure.phase == Phase.ABORTED
    assert closure.abort_metadata is not None and closure.abort_metadata.cause == "not needed"
    await expect_status(
        stub.terminate_execution(admin.ExecutionTerminateRequest(id=get("stop-me").id)),
        Status.FAILED_PRECONDITION,
        "Cannot abort an already terminated workflow execution",
    )


@pytest.mark.usefixtures("registered")
async def test_list_executions_filters_sorts_and_pages(stub: AdminServiceStub, store: Store) -> None:
    for name in ("run-a", "run-b", "run-c", "run-d"):
        await stub.create_execution(create(name))

    def ended(phase: core.WorkflowExecutionPhase, *, archived: bool = False):  # type: ignore[no-untyped-def]
        def change(closure: admin.ExecutionClosure) -> bool:
            closure.phase, closure.started_at = phase, utc_now()
            if archived and closure.state_change_details is not None:
                closure.state_change_details.state = admin.ExecutionState.EXECUTION_ARCHIVED
            return True

        return change

    await store.update_execution(ExecutionKey(PROJECT, DOMAIN, "run-b"), ended(Phase.SUCCEEDED))
    await store.update_execution(ExecutionKey(PROJECT, DOMAIN, "run-c"), ended(Phase.RUNNING))
    await store.update_execution(ExecutionKey(PROJECT, DOMAIN, "run-d"), ended(Phase.FAILED, archived=True))

    # Newest first by default; archived executions only when the filter asks about state.
    assert await names_listed(stub) == ["run-c", "run-b", "run-a"]
    assert await names_listed(stub, filters="eq(state,1)") == ["run-d"]
    assert await names_listed(stub, filters="value_in(phase,RUNNING;SUCCEEDED)") == ["run-c", "run-b"]
    assert await names_listed(stub, filters="value_in(execution.name,run-a;run-c;run-x)") == [
        "run-c",
        "run-a",
    ]
    assert await names_listed(stub, filters="eq(launch_plan.name,adder)+eq(phase,QUEUED)") == ["run-a"]
    assert await names_listed(stub, filters="eq(workflow.name,adder)+ne(phase,QUEUED)") == ["run-c", "run-b"]
    ascending = admin.Sort(key="created_at", direction=admin.SortDirection.ASCENDING)
    assert await names_listed(stub, sort_by=ascending) == ["run-a", "run-b", "run-c"]
    assert await names_listed(stub, filters="gte(created_at,2000-01-01T00:00:00Z)") == [
        "run-c",
        "run-b",
        "run-a",
    ]

    named = admin.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN)
    first = await stub.list_executions(admin.ResourceListRequest(id=named, limit=2, sort_by=ascending))
    assert [e.id.name for e in first.executions if e.id] == ["run-a", "run-b"] and first.token == "2"
    second = await stub.list_executions(
        admin.ResourceListRequest(id=named, limit=2, sort_by=ascending, token=first.token)
    )
    assert [e.id.name for e in second.executions if e.id] == ["run-c"] and second.token == ""

    for request, message in (
        (admin.ResourceListRequest(id=named, limit=5, token="x"), "invalid pagination token"),
        (admin.ResourceListRequest(id=named, limit=5, sort_by=admin.Sort(key="version")), "invalid sort key"),
        (
            admin.ResourceListRequest(id=named, limit=5, filters="eq(version,v1)"),
            "unknown execution filter field",
        ),
        (admin.ResourceListRequest(id=named, limit=5, filters="starts_with(name,r)"), "unrecognized filter"),
        (admin.ResourceListRequest(id=named, limit=5, filters="eq(phase,DONE)"), "invalid phase"),
    ):
        await expect_status(stub.list_executions(request), Status.INVALID_ARGUMENT, message)
