"""AdminService over a real grpclib server: tasks, workflows, launch plans, projects, domains, version."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import anyio
import pytest
from grpclib import GRPCError
from grpclib.const import Status

import asyncrun
from asyncrun._proto.flyteidl import admin, core
from asyncrun._proto.flyteidl.service import AdminServiceStub
from asyncrun.sandbox._runner import Runner
from asyncrun.sandbox._store import Store

from .conftest import (
    DOMAIN,
    INT,
    PROJECT,
    STR,
    bind,
    default_parameters,
    expect_status,
    ident,
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


@pytest.fixture
async def runner(store: Store, tmp_path: Path) -> AsyncIterator[Runner]:
    """Entity tests run nothing: a runner that is never started."""
    yield Runner(store, tmp_path / "data")


def add_task(version: str = "v1", *, image: str = "python:3.11", name: str = "add") -> core.TaskTemplate:
    return task_template(
        task_id(name, version), inputs=variables(a=INT, b=INT), outputs=variables(o0=INT), args=["run", image]
    )


def create_task(
    stub: AdminServiceStub, template: core.TaskTemplate, identifier: core.Identifier | None = None
) -> Coroutine[Any, Any, admin.TaskCreateResponse]:
    chosen = identifier if identifier is not None else template.id
    return stub.create_task(admin.TaskCreateRequest(id=chosen, spec=admin.TaskSpec(template=template)))


def adder_workflow(version: str = "v1", name: str = "adder") -> core.WorkflowTemplate:
    return workflow_template(
        workflow_id(name, version),
        [task_node("n0", task_id("add"), bind("a", promise("", "x")), bind("b", promise("", "y")))],
        inputs=variables(x=INT, y=INT),
        outputs=variables(o0=INT),
        output_bindings=[bind("o0", promise("n0", "o0"))],
    )


async def register_adder(stub: AdminServiceStub, version: str = "v1") -> None:
    await create_task(stub, add_task())
    template = adder_workflow(version)
    await stub.create_workflow(
        admin.WorkflowCreateRequest(id=template.id, spec=admin.WorkflowSpec(template=template))
    )


# ----------------------------------------------------------------------------------------------------
# Tasks
# ----------------------------------------------------------------------------------------------------


async def test_task_registration_is_idempotent_by_content(stub: AdminServiceStub) -> None:
    template = add_task()
    await create_task(stub, template)
    # flytekit re-sends the same request up to four times, concurrently with other registrations.
    await expect_status(
        create_task(stub, template), Status.ALREADY_EXISTS, "task with identical structure already exists"
    )
    await expect_status(
        create_task(stub, add_task(image="other:1")),
        Status.INVALID_ARGUMENT,
        "task with different structure already exists",
    )
    stored = await stub.get_task(admin.ObjectGetRequest(id=task_id("add")))
    assert stored.closure is not None and stored.closure.compiled_task is not None
    assert stored.closure.compiled_task.template == template
    assert stored.closure.created_at is not None


async def test_the_registered_template_carries_the_request_id(stub: AdminServiceStub) -> None:
    template = add_task()
    template.id = task_id("something-else", "v0")
    await create_task(stub, template, identifier=task_id("add"))
    stored = await stub.get_task(admin.ObjectGetRequest(id=task_id("add")))
    assert stored.closure is not None and stored.closure.compiled_task is not None
    assert stored.closure.compiled_task.template is not None
    assert stored.closure.compiled_task.template.id == task_id("add")


async def test_map_order_does_not_make_a_task_different(stub: AdminServiceStub) -> None:
    first, second = add_task(), add_task()
    first.config = {"a": "1", "b": "2"}
    second.config = {"b": "2", "a": "1"}
    second.interface = core.TypedInterface(inputs=variables(b=INT, a=INT), outputs=variables(o0=INT))
    await create_task(stub, first)
    await expect_status(create_task(stub, second), Status.ALREADY_EXISTS)


async def test_concurrent_identical_registrations_store_one_task(stub: AdminServiceStub) -> None:
    outcomes: list[Status | None] = []

    async def register() -> None:
        try:
            await create_task(stub, add_task())
            outcomes.append(None)
        except GRPCError as exc:
            outcomes.append(exc.status)

    async with anyio.create_task_group() as task_group:
        for _ in range(8):
            task_group.start_soon(register)
    assert sorted(outcomes, key=str) == [None] + [Status.ALREADY_EXISTS] * 7


def _without(field: str) -> core.TaskTemplate:
    template = add_task()
    if field == "type":
        template.type = ""
    elif field == "metadata":
        template.metadata = None
    elif field == "interface":
        template.interface = None
    elif field == "image":
        assert template.container is not None
        template.container.image = ""
    elif field == "runtime version":
        assert template.metadata is not None and template.metadata.runtime is not None
        template.metadata.runtime.version = ""
    return template


@pytest.mark.parametrize("field", ["type", "metadata", "interface", "image", "runtime version"])
async def test_incomplete_tasks_are_rejected_and_not_stored(stub: AdminServiceStub, field: str) -> None:
    await expect_status(create_task(stub, _without(field)), Status.INVALID_ARGUMENT, f"missing {field}")
    await expect_status(stub.get_task(admin.ObjectGetRequest(id=task_id("add"))), Status.NOT_FOUND)


@pytest.mark.parametrize(
    ("identifier", "message"),
    [
        (ident(core.ResourceType.WORKFLOW, "add"), "unexpected resource type workflow"),
        (ident(core.ResourceType.TASK, "add", version=""), "missing version"),
        (ident(core.ResourceType.TASK, ""), "missing name"),
        (ident(core.ResourceType.TASK, "add", project=""), "missing project"),
        (ident(core.ResourceType.TASK, "add", project="nope"), "project [nope] is not registered"),
        (
            core.Identifier(
                resource_type=core.ResourceType.TASK, project=PROJECT, domain="qa", name="add", version="v1"
            ),
            "domain [qa] is unrecognized",
        ),
    ],
)
async def test_bad_identifiers_are_invalid_arguments_and_store_nothing(
    stub: AdminServiceStub, identifier: core.Identifier, message: str
) -> None:
    await expect_status(create_task(stub, add_task(), identifier), Status.INVALID_ARGUMENT, message)
    listing = await stub.list_task_ids(
        admin.NamedEntityIdentifierListRequest(project=PROJECT, domain=DOMAIN, limit=10)
    )
    assert listing.entities == []
    await expect_status(create_task(stub, add_task(), core.Identifier()), Status.INVALID_ARGUMENT)


async def test_gets_answer_not_found_and_invalid_argument(stub: AdminServiceStub) -> None:
    await expect_status(stub.get_task(admin.ObjectGetRequest(id=task_id("ghost"))), Status.NOT_FOUND)
    await expect_status(stub.get_workflow(admin.ObjectGetRequest(id=workflow_id("ghost"))), Status.NOT_FOUND)
    await expect_status(
        stub.get_launch_plan(admin.ObjectGetRequest(id=launch_plan_id("ghost"))), Status.NOT_FOUND
    )
    await expect_status(
        stub.get_task(admin.ObjectGetRequest(id=workflow_id("ghost"))), Status.INVALID_ARGUMENT
    )
    await expect_status(stub.get_task(admin.ObjectGetRequest()), Status.INVALID_ARGUMENT, "missing id")


# ----------------------------------------------------------------------------------------------------
# Workflows
# ----------------------------------------------------------------------------------------------------


async def test_a_workflow_is_stored_compiled(stub: AdminServiceStub) -> None:
    await register_adder(stub)
    stored = await stub.get_workflow(admin.ObjectGetRequest(id=workflow_id("adder")))
    compiled = stored.closure.compiled_workflow if stored.closure else None
    assert compiled is not None and compiled.primary is not None and compiled.primary.template is not None
    assert [node.id for node in compiled.primary.template.nodes] == ["start-node", "n0", "end-node"]
    assert compiled.primary.template.id == workflow_id("adder")
    assert [task.template.id for task in compiled.tasks if task.template] == [task_id("add")]
    first_binding = compiled.primary.template.nodes[1].inputs[0].binding
    assert first_binding is not None and first_binding.promise is not None
    assert first_binding.promise.node_id == "start-node"


async def test_workflow_registration_is_idempotent_and_checks_its_tasks(stub: AdminServiceStub) -> None:
    template = adder_workflow()
    request = admin.WorkflowCreateRequest(id=template.id, spec=admin.WorkflowSpec(template=template))
    await expect_status(
        stub.create_workflow(request),
        Status.INVALID_ARGUMENT,
        "failed to compile workflow for [flytesnacks:development:adder:v1]",
    )
    await expect_status(stub.get_workflow(admin.ObjectGetRequest(id=workflow_id("adder"))), Status.NOT_FOUND)
    await create_task(stub, add_task())
    await stub.create_workflow(request)
    await expect_status(
        stub.create_workflow(request), Status.ALREADY_EXISTS, "workflow with identical structure"
    )
    changed = adder_workflow()
    changed.outputs.clear()
    assert changed.interface is not None
    changed.interface.outputs = core.VariableMap()
    await expect_status(
        stub.create_workflow(
            admin.WorkflowCreateRequest(id=template.id, spec=admin.WorkflowSpec(template=changed))
        ),
        Status.INVALID_ARGUMENT,
        "workflow with different structure",
    )


# ----------------------------------------------------------------------------------------------------
# Launch plans
# ----------------------------------------------------------------------------------------------------


async def test_a_launch_plan_lists_every_input_a_launch_needs(stub: AdminServiceStub) -> None:
    await register_adder(stub)
    spec = launch_plan_spec(workflow_id("adder"), defaults=default_parameters(y=(INT, integer(5))))
    await stub.create_launch_plan(admin.LaunchPlanCreateRequest(id=launch_plan_id("adder"), spec=spec))
    stored = await stub.get_launch_plan(admin.ObjectGetRequest(id=launch_plan_id("adder")))
    assert stored.closure is not None and stored.closure.state == admin.LaunchPlanState.INACTIVE
    assert stored.closure.expected_inputs is not None
    parameters = stored.closure.expected_inputs.parameters
    assert parameters["x"].required is True and parameters["y"].default == integer(5)
    assert stored.spec is not None and stored.spec.default_inputs is not None
    assert stored.spec.default_inputs.parameters == parameters
    assert stored.closure.expected_outputs == variables(o0=INT)
    request = admin.LaunchPlanCreateRequest(id=launch_plan_id("adder"), spec=spec)
    await expect_status(stub.create_launch_plan(request), Status.ALREADY_EXISTS, "launch plan with identical")
    fixed = launch_plan_spec(workflow_id("adder"), fixed=literals(y=integer(1)))
    await expect_status(
        stub.create_launch_plan(admin.LaunchPlanCreateRequest(id=launch_plan_id("adder"), spec=fixed)),
        Status.INVALID_ARGUMENT,
        "launch plan with different structure",
    )


async def test_fixed_inputs_are_not_expected_at_launch(stub: AdminServiceStub) -> None:
    await register_adder(stub)
    spec = launch_plan_spec(workflow_id("adder"), fixed=literals(y=integer(1)))
    await stub.create_launch_plan(admin.LaunchPlanCreateRequest(id=launch_plan_id("fixed"), spec=spec))
    stored = await stub.get_launch_plan(admin.ObjectGetRequest(id=launch_plan_id("fixed")))
    assert stored.closure is not None and stored.closure.expected_inputs is not None
    assert list(stored.closure.expected_inputs.parameters) == ["x"]


@pytest.mark.parametrize(
    ("spec", "status", "message"),
    [
        (
            launch_plan_spec(workflow_id("adder"), defaults=default_parameters(z=(INT, None))),
            Status.INVALID_ARGUMENT,
            "unexpected default_input z",
        ),
        (
            launch_plan_spec(workflow_id("adder"), defaults=default_parameters(x=(STR, string("1")))),
            Status.INVALID_ARGUMENT,
            "invalid default_input wrong type x",
        ),
        (
            launch_plan_spec(workflow_id("adder"), fixed=literals(x=string("1"))),
            Status.INVALID_ARGUMENT,
            "invalid fixed_input wrong type x",
        ),
        (
            launch_plan_spec(workflow_id("adder", "v9")),
            Status.NOT_FOUND,
            "workflow [flytesnacks:development:adder:v9]",
        ),
        (launch_plan_spec(task_id("add")), Status.INVALID_ARGUMENT, "unexpected resource type task"),
    ],
)
async def test_bad_launch_plans_are_rejected_and_not_stored(
    stub: AdminServiceStub, spec: admin.LaunchPlanSpec, status: Status, message: str
) -> None:
    await register_adder(stub)
    await expect_status(
        stub.create_launch_plan(admin.LaunchPlanCreateRequest(id=launch_plan_id("bad"), spec=spec)),
        status,
        message,
    )
    await expect_status(
        stub.get_launch_plan(admin.ObjectGetRequest(id=launch_plan_id("bad"))), Status.NOT_FOUND
    )


async def test_activating_a_version_deactivates_the_others(stub: AdminServiceStub) -> None:
    await register_adder(stub)
    named = admin.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="adder")
    for version in ("v1", "v2"):
        await stub.create_launch_plan(
            admin.LaunchPlanCreateRequest(
                id=launch_plan_id("adder", version), spec=launch_plan_spec(workflow_id("adder"))
            )
        )
    await expect_status(
        stub.get_active_launch_plan(admin.ActiveLaunchPlanRequest(id=named)), Status.NOT_FOUND
    )
    for version in ("v1", "v2"):
        await stub.update_launch_plan(
            admin.LaunchPlanUpdateRequest(
                id=launch_plan_id("adder", version), state=admin.LaunchPlanState.ACTIVE
            )
        )
        active = await stub.get_active_launch_plan(admin.ActiveLaunchPlanRequest(id=named))
        assert active.id == launch_plan_id("adder", version)
    v1 = await stub.get_launch_plan(admin.ObjectGetRequest(id=launch_plan_id("adder", "v1")))
    assert v1.closure is not None and v1.closure.state == admin.LaunchPlanState.INACTIVE
    await stub.update_launch_plan(
        admin.LaunchPlanUpdateRequest(id=launch_plan_id("adder", "v2"), state=admin.LaunchPlanState.INACTIVE)
    )
    await expect_status(
        stub.get_active_launch_plan(admin.ActiveLaunchPlanRequest(id=named)), Status.NOT_FOUND
    )
    await expect_status(
        stub.update_launch_plan(
            admin.LaunchPlanUpdateRequest(
                id=launch_plan_id("adder", "v7"), state=admin.LaunchPlanState.ACTIVE
            )
        ),
        Status.NOT_FOUND,
    )
    active_only = await stub.list_launch_plans(
        admin.ResourceListRequest(id=named, limit=10, filters="eq(state,1)")
    )
    assert active_only.launch_plans == []


# ----------------------------------------------------------------------------------------------------
# Listing
# ----------------------------------------------------------------------------------------------------


async def test_id_listings_are_sorted_by_name_and_paged(stub: AdminServiceStub) -> None:
    for name in ("c.task", "a.task", "b.task", "d.task", "e.task"):
        await create_task(stub, add_task(name=name))
        await create_task(stub, add_task("v2", name=name))
    names: list[str] = []
    token = ""
    tokens = []
    while True:
        page = await stub.list_task_ids(
            admin.NamedEntityIdentifierListRequest(project=PROJECT, domain=DOMAIN, limit=2, token=token)
        )
        names += [entity.name for entity in page.entities]
        tokens.append(page.token)
        token = page.token
        if not token:
            break
    assert names == ["a.task", "b.task", "c.task", "d.task", "e.task"]
    assert tokens == ["2", "4", ""]


async def test_latest_version_lookup_as_flytekit_does_it(stub: AdminServiceStub) -> None:
    for version in ("v1", "v2", "v3"):
        await create_task(stub, add_task(version))
    named = admin.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name="add")
    latest = await stub.list_tasks(
        admin.ResourceListRequest(id=named, limit=1, sort_by=admin.Sort(key="created_at"))
    )
    assert [task.id.version for task in latest.tasks if task.id] == ["v3"]
    assert latest.token == "1"
    filtered = await stub.list_tasks(
        admin.ResourceListRequest(
            id=named,
            limit=5,
            filters="value_in(version,v1;v3)",
            sort_by=admin.Sort(key="version", direction=admin.SortDirection.ASCENDING),
        )
    )
    assert [task.id.version for task in filtered.tasks if task.id] == ["v1", "v3"]
    assert filtered.token == ""


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            admin.ResourceListRequest(
                id=admin.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN), limit=0
            ),
            "invalid value for limit",
        ),
        (
            admin.ResourceListRequest(
                id=admin.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN), limit=5, token="-3"
            ),
            "invalid pagination token",
        ),
        (
            admin.ResourceListRequest(
                id=admin.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN), limit=5, token="next"
            ),
            "invalid pagination token",
        ),
        (
            admin.ResourceListRequest(
                id=admin.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
                limit=5,
                sort_by=admin.Sort(key="phase"),
            ),
            "invalid sort key",
        ),
        (
            admin.ResourceListRequest(
                id=admin.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
                limit=5,
                filters="eq(colour,red)",
            ),
            "unknown task filter field 'colour'",
        ),
        (
            admin.ResourceListRequest(
                id=admin.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN),
                limit=5,
                filters="regex(name,x)",
            ),
            "unrecognized filter function 'regex'",
        ),
        (
            admin.ResourceListRequest(id=admin.NamedEntityIdentifier(project=PROJECT), limit=5),
            "missing domain",
        ),
        (admin.ResourceListRequest(limit=5), "missing id"),
    ],
)
async def test_bad_list_requests_are_invalid_arguments(
    stub: AdminServiceStub, request_: admin.ResourceListRequest, message: str
) -> None:
    await expect_status(stub.list_tasks(request_), Status.INVALID_ARGUMENT, message)


async def test_projects_domains_and_version(stub: AdminServiceStub, store: Store) -> None:
    await store.ensure_project("team-a", description="from the config")
    projects = await stub.list_projects(admin.ProjectListRequest(limit=100))
    assert sorted(project.id for project in projects.projects) == ["default", "flytesnacks", "team-a"]
    assert [domain.id for domain in projects.projects[0].domains] == ["development", "staging", "production"]
    paged = await stub.list_projects(admin.ProjectListRequest(limit=2))
    assert len(paged.projects) == 2 and paged.token == "2"
    domains = await stub.get_domains(admin.GetDomainRequest())
    assert [domain.name for domain in domains.domains] == ["development", "staging", "production"]
    version = await stub.get_version(admin.GetVersionRequest())
    assert version.control_plane_version is not None
    assert version.control_plane_version.version == f"v{asyncrun.__version__}"
    assert version.control_plane_version.build == "asyncrun-sandbox"
    with pytest.raises(ValueError, match="invalid project id"):
        await store.ensure_project("Not_A_Label")


async def test_a_server_fault_is_internal_never_unknown(
    stub: AdminServiceStub, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(key: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "get_task", broken)
    message = await expect_status(stub.get_task(admin.ObjectGetRequest(id=task_id("add"))), Status.INTERNAL)
    assert "disk on fire" in message


async def test_registrations_survive_a_restart_and_newer_schemas_are_refused(tmp_path: Path) -> None:
    import contextlib
    import sqlite3

    from asyncrun.sandbox._store import MIGRATIONS, StoreError

    path = tmp_path / "restart" / "sandbox.db"
    async with Store(path) as first:
        await first.create_task(add_task())
        await first.ensure_project("team-b")
    reopened = await Store.open(path)
    try:
        task = await reopened.get_task(("flytesnacks", "development", "add", "v1"))
        assert task is not None and task.id == task_id("add")
        assert reopened.project_state("team-b") == admin.ProjectProjectState.ACTIVE
    finally:
        await reopened.close()
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("SELECT MAX(version) FROM schema_version").fetchone() == (len(MIGRATIONS),)
        connection.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS) + 1,))
    with pytest.raises(StoreError, match="newer than this asyncrun"):
        await Store.open(path)
