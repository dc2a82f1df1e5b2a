"""Fuzz a real running sandbox over gRPC: list, get, create and register requests with random
filters, sort keys, tokens, limits and identifiers, and raw undecodable request bodies.

Every answer is OK or a client-fault status (never INTERNAL or UNKNOWN), the server stays up, and a
rejected request changes nothing that the list calls show.
"""

from __future__ import annotations

import datetime
import os
import string
from pathlib import Path
from typing import Any

import pytest
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Cardinality, Status
from grpclib.encoding.base import CodecBase
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from asyncrun._proto.flyteidl import admin, core, service
from asyncrun._proto.flyteidl.service import (
    AdminServiceBase,
    AdminServiceStub,
    DataProxyServiceBase,
    SignalServiceBase,
)

from .strategies import budget
from .test_sandbox_query import filters as any_filters
from .test_sandbox_query import limits as any_limits
from .test_sandbox_query import sorts as any_sorts
from .test_sandbox_query import tokens as any_tokens

pytestmark = pytest.mark.anyio

PROJECT, DOMAIN = "flytesnacks", "development"
CLIENT_FAULTS = {
    Status.INVALID_ARGUMENT,
    Status.NOT_FOUND,
    Status.ALREADY_EXISTS,
    Status.FAILED_PRECONDITION,
}
INT = core.LiteralType(simple=core.SimpleType.INTEGER)

# Proto strings: any text that encodes as UTF-8.
proto_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


def often(valid: st.SearchStrategy[Any], anything: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly `valid` (so requests get past the first check), else `anything`."""
    return st.one_of(valid, valid, valid, anything)


projects = often(
    st.just(PROJECT), st.one_of(st.sampled_from(["", "flytesnacks ", "Flytesnacks"]), proto_text)
)
domains = often(st.just(DOMAIN), st.one_of(st.sampled_from(["", "production", "Development"]), proto_text))
names = often(
    st.sampled_from(["fuzz_task", "fuzz_wf", "fuzz_lp", "n0", "a1"]), st.one_of(st.just(""), proto_text)
)
versions = often(st.just("v1"), st.one_of(st.sampled_from(["v2", ""]), proto_text))
resource_types = st.sampled_from(list(core.ResourceType))


def identifiers(*kinds: core.ResourceType) -> st.SearchStrategy[core.Identifier | None]:
    """Identifiers, mostly of one of `kinds` (the types the call expects)."""
    return often(
        st.builds(
            core.Identifier,
            resource_type=st.sampled_from(kinds) if kinds else resource_types,
            project=projects,
            domain=domains,
            name=names,
            version=versions,
        ),
        st.one_of(st.none(), st.builds(core.Identifier, resource_types, projects, domains, names, versions)),
    )


TASKS, WORKFLOWS, LAUNCH_PLANS = (
    identifiers(core.ResourceType.TASK),
    identifiers(core.ResourceType.WORKFLOW),
    identifiers(core.ResourceType.LAUNCH_PLAN),
)
named_ids = often(
    st.builds(admin.NamedEntityIdentifier, project=projects, domain=domains, name=names),
    st.one_of(
        st.none(), st.builds(admin.NamedEntityIdentifier, project=projects, domain=domains, name=names)
    ),
)
execution_ids = often(
    st.builds(core.WorkflowExecutionIdentifier, project=projects, domain=domains, name=names), st.none()
)
node_execution_ids = often(
    st.builds(core.NodeExecutionIdentifier, node_id=names, execution_id=execution_ids), st.none()
)
literals = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(
        lambda v: core.Literal(scalar=core.Scalar(primitive=core.Primitive(integer=v)))
    ),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(
        lambda v: core.Literal(scalar=core.Scalar(primitive=core.Primitive(integer=v)))
    ),
    proto_text.map(lambda v: core.Literal(scalar=core.Scalar(primitive=core.Primitive(string_value=v)))),
    st.floats().map(lambda v: core.Literal(scalar=core.Scalar(primitive=core.Primitive(float_value=v)))),
    st.just(core.Literal()),
    st.just(core.Literal(collection=core.LiteralCollection(literals=[core.Literal()]))),
)
literal_maps = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(
        lambda v: core.LiteralMap(
            literals={"x": core.Literal(scalar=core.Scalar(primitive=core.Primitive(integer=v)))}
        )
    ),
    st.dictionaries(often(st.just("x"), proto_text), literals, max_size=3).map(
        lambda values: core.LiteralMap(literals=values)
    ),
)


filters = often(st.sampled_from(["", "eq(name,fuzz_task)", "value_in(phase,RUNNING;QUEUED)"]), any_filters)
sorts = often(st.sampled_from([None, admin.Sort(key="created_at")]), any_sorts)
limits = often(st.integers(min_value=1, max_value=200), any_limits)
tokens = often(st.sampled_from(["", "0", "1"]), any_tokens)


def task_template(identifier: core.Identifier) -> core.TaskTemplate:
    return core.TaskTemplate(
        id=identifier,
        type="python-task",
        metadata=core.TaskMetadata(
            runtime=core.RuntimeMetadata(type=core.RuntimeMetadataRuntimeType.FLYTE_SDK, version="1.16.31")
        ),
        interface=core.TypedInterface(
            inputs=core.VariableMap(variables={"x": core.Variable(type=INT)}), outputs=core.VariableMap()
        ),
        container=core.Container(image="python:3.11", args=["true"]),
    )


def ident(resource_type: core.ResourceType, name: str, version: str = "v1") -> core.Identifier:
    return core.Identifier(
        resource_type=resource_type, project=PROJECT, domain=DOMAIN, name=name, version=version
    )


TASK_ID = ident(core.ResourceType.TASK, "fuzz_task")
WORKFLOW_ID = ident(core.ResourceType.WORKFLOW, "fuzz_wf")
LAUNCH_PLAN_ID = ident(core.ResourceType.LAUNCH_PLAN, "fuzz_lp")


def workflow_template() -> core.WorkflowTemplate:
    x = core.Binding(
        var="x", binding=core.BindingData(promise=core.OutputReference(node_id="start-node", var="x"))
    )
    return core.WorkflowTemplate(
        id=WORKFLOW_ID,
        metadata=core.WorkflowMetadata(),
        interface=core.TypedInterface(
            inputs=core.VariableMap(variables={"x": core.Variable(type=INT)}), outputs=core.VariableMap()
        ),
        nodes=[
            core.Node(
                id="n0",
                metadata=core.NodeMetadata(name="n0"),
                inputs=[x],
                task_node=core.TaskNode(reference_id=TASK_ID),
            )
        ],
        metadata_defaults=core.WorkflowMetadataDefaults(),
    )


@pytest.fixture
async def admin_stub(sandbox):
    """A client of the test sandbox, with one task, workflow and launch plan registered."""
    channel = Channel(sandbox.host, sandbox.port)
    stub = AdminServiceStub(channel)
    await stub.create_task(
        admin.TaskCreateRequest(id=TASK_ID, spec=admin.TaskSpec(template=task_template(TASK_ID)))
    )
    await stub.create_workflow(
        admin.WorkflowCreateRequest(id=WORKFLOW_ID, spec=admin.WorkflowSpec(template=workflow_template()))
    )
    await stub.create_launch_plan(
        admin.LaunchPlanCreateRequest(
            id=LAUNCH_PLAN_ID,
            spec=admin.LaunchPlanSpec(
                workflow_id=WORKFLOW_ID,
                entity_metadata=admin.LaunchPlanMetadata(),
                default_inputs=core.ParameterMap(
                    parameters={"x": core.Parameter(var=core.Variable(type=INT), required=True)}
                ),
                fixed_inputs=core.LiteralMap(),
            ),
        )
    )
    try:
        yield stub
    finally:
        channel.close()


async def call(request: Any) -> Any:
    """Await one RPC; return its response, or its status when it is a client fault."""
    try:
        return await request
    except GRPCError as exc:
        assert exc.status in CLIENT_FAULTS, f"{exc.status.name}: {exc.message}"
        assert exc.message and "\n" not in exc.message.strip(), exc.message
        return exc.status


async def snapshot(stub: AdminServiceStub) -> tuple[object, ...]:
    """What the list calls show: registered entities, executions, .flytegen entities, projects."""
    everything = admin.ResourceListRequest(
        id=admin.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN), limit=1000
    )
    tasks = await stub.list_tasks(everything)
    workflows = await stub.list_workflows(everything)
    launch_plans = await stub.list_launch_plans(everything)
    executions = await stub.list_executions(everything)
    projects = await stub.list_projects(admin.ProjectListRequest(limit=0))
    return (
        sorted(bytes(t.id) for t in tasks.tasks),
        sorted(bytes(w.id) for w in workflows.workflows),
        sorted((bytes(lp.id), lp.closure.state if lp.closure else None) for lp in launch_plans.launch_plans),
        sorted(bytes(e.id) for e in executions.executions),
        sorted(p.id for p in projects.projects),
    )


async def assert_still_serving(stub: AdminServiceStub) -> None:
    version = await stub.get_version(admin.GetVersionRequest())
    assert version.control_plane_version is not None
    task = await stub.get_task(admin.ObjectGetRequest(id=TASK_ID))
    assert task.id == TASK_ID


# ---------------------------------------------------------------- list and get

list_calls = st.one_of(
    st.builds(
        lambda rpc, named, f, s, limit, token: (rpc, admin.ResourceListRequest(named, limit, token, f, s)),
        st.sampled_from(["list_tasks", "list_workflows", "list_launch_plans", "list_executions"]),
        named_ids,
        filters,
        sorts,
        limits.map(lambda v: v % 2**32),
        tokens,
    ),
    st.builds(
        lambda rpc, p, d, f, s, limit, token: (
            rpc,
            admin.NamedEntityIdentifierListRequest(
                project=p, domain=d, limit=limit, token=token, sort_by=s, filters=f
            ),
        ),
        st.sampled_from(["list_task_ids", "list_workflow_ids", "list_launch_plan_ids"]),
        projects,
        domains,
        filters,
        sorts,
        limits.map(lambda v: v % 2**32),
        tokens,
    ),
    st.builds(
        lambda f, s, limit, token: (
            "list_projects",
            admin.ProjectListRequest(limit=limit, token=token, filters=f, sort_by=s),
        ),
        filters,
        sorts,
        limits.map(lambda v: v % 2**32),
        tokens,
    ),
    st.builds(
        lambda ex, parent, f, s, limit, token: (
            "list_node_executions",
            admin.NodeExecutionListRequest(
                workflow_execution_id=ex,
                limit=limit,
                token=token,
                filters=f,
                sort_by=s,
                unique_parent_id=parent,
            ),
        ),
        execution_ids,
        names,
        filters,
        sorts,
        limits.map(lambda v: v % 2**32),
        tokens,
    ),
    st.builds(
        lambda node, f, s, limit, token: (
            "list_task_executions",
            admin.TaskExecutionListRequest(
                node_execution_id=node, limit=limit, token=token, filters=f, sort_by=s
            ),
        ),
        node_execution_ids,
        filters,
        sorts,
        limits.map(lambda v: v % 2**32),
        tokens,
    ),
)
get_calls = st.one_of(
    st.tuples(st.just("get_task"), TASKS.map(lambda i: admin.ObjectGetRequest(id=i))),
    st.tuples(st.just("get_workflow"), WORKFLOWS.map(lambda i: admin.ObjectGetRequest(id=i))),
    st.tuples(st.just("get_launch_plan"), LAUNCH_PLANS.map(lambda i: admin.ObjectGetRequest(id=i))),
    st.tuples(
        st.just("get_active_launch_plan"), named_ids.map(lambda n: admin.ActiveLaunchPlanRequest(id=n))
    ),
    st.tuples(st.just("get_execution"), execution_ids.map(lambda e: admin.WorkflowExecutionGetRequest(id=e))),
    st.tuples(
        st.just("get_execution_data"),
        execution_ids.map(lambda e: admin.WorkflowExecutionGetDataRequest(id=e)),
    ),
    st.tuples(
        st.just("get_node_execution"), node_execution_ids.map(lambda n: admin.NodeExecutionGetRequest(id=n))
    ),
    st.tuples(
        st.just("get_task_execution"),
        st.builds(
            lambda task, node, attempt: admin.TaskExecutionGetRequest(
                id=core.TaskExecutionIdentifier(task_id=task, node_execution_id=node, retry_attempt=attempt)
            ),
            TASKS,
            node_execution_ids,
            st.integers(min_value=0, max_value=2**32 - 1),
        ),
    ),
    st.tuples(
        st.just("update_launch_plan"),
        st.builds(
            admin.LaunchPlanUpdateRequest, id=LAUNCH_PLANS, state=st.sampled_from(list(admin.LaunchPlanState))
        ),
    ),
    st.tuples(
        st.just("terminate_execution"),
        st.builds(admin.ExecutionTerminateRequest, id=execution_ids, cause=proto_text),
    ),
)


@settings(max_examples=budget(100))
@given(request=st.one_of(list_calls, get_calls))
# A NOT_FOUND message quoted the identifier with its line break: two lines.
@example(
    request=(
        "get_task",
        admin.ObjectGetRequest(core.Identifier(TASK_ID.resource_type, PROJECT, "\n", "t", "v")),
    )
)
@example(
    request=("list_tasks", admin.ResourceListRequest(admin.NamedEntityIdentifier(PROJECT, DOMAIN), 5, "²"))
)
@example(
    request=(
        "list_executions",
        admin.ResourceListRequest(admin.NamedEntityIdentifier(PROJECT, DOMAIN), 5, "9" * 25),
    )
)
@example(
    request=(
        "list_executions",
        admin.ResourceListRequest(
            admin.NamedEntityIdentifier(PROJECT, DOMAIN), 5, "", "eq(duration," + "9" * 400 + ")"
        ),
    )
)
async def test_list_and_get_answer_client_faults_only(
    admin_stub: AdminServiceStub, request: tuple[str, Any]
) -> None:
    rpc, message = request
    before = await snapshot(admin_stub)
    answer = await call(getattr(admin_stub, rpc)(message))
    event(f"{rpc}: {answer.name if isinstance(answer, Status) else 'OK'}")
    if isinstance(answer, Status) or not rpc.startswith("update"):
        assert await snapshot(admin_stub) == before, (rpc, answer)
    if rpc == "update_launch_plan" and not isinstance(answer, Status):
        # Put the launch plan back as it was registered, so later examples start from the same state.
        await admin_stub.update_launch_plan(
            admin.LaunchPlanUpdateRequest(id=message.id, state=admin.LaunchPlanState.INACTIVE)
        )
    await assert_still_serving(admin_stub)


# ---------------------------------------------------------------- create and register

execution_names = often(
    st.just(""), st.one_of(names, st.text(string.ascii_lowercase + "-0123456789", min_size=1, max_size=70))
)
create_execution_calls = st.builds(
    lambda project, domain, name, reference, inputs, spec_inputs: admin.ExecutionCreateRequest(
        project=project,
        domain=domain,
        name=name,
        spec=None
        if reference is False
        else admin.ExecutionSpec(
            launch_plan=reference,
            inputs=spec_inputs,
            metadata=admin.ExecutionMetadata(
                mode=admin.ExecutionMetadataExecutionMode.MANUAL, principal="fuzz"
            ),
        ),
        inputs=inputs,
    ),
    projects,
    domains,
    execution_names,
    often(
        st.sampled_from([TASK_ID, LAUNCH_PLAN_ID]),
        st.one_of(st.just(False), st.just(WORKFLOW_ID), identifiers()),
    ),
    literal_maps,
    st.none() | literal_maps,
)
register_calls = st.one_of(
    st.builds(
        lambda i, template_id, kind, image: admin.TaskCreateRequest(
            id=i,
            spec=admin.TaskSpec(
                template=core.TaskTemplate(
                    id=template_id,
                    type=kind,
                    metadata=task_template(TASK_ID).metadata,
                    interface=task_template(TASK_ID).interface,
                    container=core.Container(image=image, args=["true"]),
                )
            ),
        ),
        st.one_of(TASKS, st.just(TASK_ID)),
        TASKS,
        st.sampled_from(["python-task", ""]),
        st.sampled_from(["python:3.11", ""]),
    ),
    st.builds(
        lambda i: admin.WorkflowCreateRequest(id=i, spec=admin.WorkflowSpec(template=workflow_template())),
        st.one_of(WORKFLOWS, st.just(WORKFLOW_ID)),
    ),
    st.builds(
        lambda i, wf, fixed: admin.LaunchPlanCreateRequest(
            id=i,
            spec=admin.LaunchPlanSpec(
                workflow_id=wf, entity_metadata=admin.LaunchPlanMetadata(), fixed_inputs=fixed
            ),
        ),
        st.one_of(LAUNCH_PLANS, st.just(LAUNCH_PLAN_ID)),
        st.one_of(WORKFLOWS, st.just(WORKFLOW_ID)),
        literal_maps,
    ),
)


def _x(value: int) -> core.LiteralMap:
    return core.LiteralMap(
        literals={"x": core.Literal(scalar=core.Scalar(primitive=core.Primitive(integer=value)))}
    )


@settings(max_examples=budget(80))
@given(message=st.one_of(create_execution_calls, register_calls))
@example(message=admin.ExecutionCreateRequest(PROJECT, DOMAIN, "", admin.ExecutionSpec(TASK_ID), _x(1)))
@example(
    message=admin.ExecutionCreateRequest(
        PROJECT, DOMAIN, "fuzz-1", admin.ExecutionSpec(LAUNCH_PLAN_ID), _x(2)
    )
)
@example(
    message=admin.ExecutionCreateRequest(
        PROJECT, DOMAIN, "fuzz-1", admin.ExecutionSpec(LAUNCH_PLAN_ID), _x(2)
    )
)
@example(message=admin.ExecutionCreateRequest(project=PROJECT, domain=DOMAIN, name="a" * 64))
@example(
    message=admin.ExecutionCreateRequest(
        project=PROJECT,
        domain=DOMAIN,
        spec=admin.ExecutionSpec(launch_plan=TASK_ID),
        inputs=core.LiteralMap(
            literals={"x": core.Literal(scalar=core.Scalar(primitive=core.Primitive(float_value=1.5)))}
        ),
    )
)
@pytest.mark.filterwarnings("ignore:ExecutionSpec.inputs is deprecated")  # old clients still send it
async def test_create_and_register_answer_client_faults_only(
    admin_stub: AdminServiceStub, message: Any
) -> None:
    rpc = {
        admin.ExecutionCreateRequest: admin_stub.create_execution,
        admin.TaskCreateRequest: admin_stub.create_task,
        admin.WorkflowCreateRequest: admin_stub.create_workflow,
        admin.LaunchPlanCreateRequest: admin_stub.create_launch_plan,
    }[type(message)]
    before = await snapshot(admin_stub)
    answer = await call(rpc(message))
    event(f"{type(message).__name__}: {answer.name if isinstance(answer, Status) else 'OK'}")
    if isinstance(answer, Status):
        assert await snapshot(admin_stub) == before, answer
    await assert_still_serving(admin_stub)


async def test_the_baseline_requests_are_accepted(admin_stub: AdminServiceStub) -> None:
    """The fuzzed requests start from these valid ones: they succeed, and a duplicate changes nothing."""
    request = admin.ExecutionCreateRequest(
        PROJECT, DOMAIN, "fuzz-1", admin.ExecutionSpec(LAUNCH_PLAN_ID), _x(2)
    )
    created = await admin_stub.create_execution(request)
    assert created.id is not None and created.id.name == "fuzz-1"
    before = await snapshot(admin_stub)
    assert await call(admin_stub.create_execution(request)) == Status.ALREADY_EXISTS
    assert await snapshot(admin_stub) == before
    task_run = await admin_stub.create_execution(
        admin.ExecutionCreateRequest(PROJECT, DOMAIN, "", admin.ExecutionSpec(TASK_ID), _x(1))
    )
    assert task_run.id is not None and task_run.id.name


# ---------------------------------------------------------------- raw bytes


class RawCodec(CodecBase):
    """Sends and receives message bodies as they are, so a test can send bytes no client would."""

    __content_subtype__ = "proto"

    def encode(self, message: Any, message_type: Any) -> bytes:
        return bytes(message)

    def decode(self, data: bytes, message_type: Any) -> bytes:
        return data


def _paths(base: type) -> list[str]:
    return sorted(base.__mapping__(object.__new__(base)))  # type: ignore[arg-type]


METHODS = _paths(AdminServiceBase) + _paths(DataProxyServiceBase) + _paths(SignalServiceBase)
UNDECODABLE = [
    b"\x0a\x04\x12\x02\xff\xfe",  # a string field holding invalid UTF-8
    b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # a varint longer than 10 bytes
    b"\x10\x80",  # a varint cut short
    b"\x0a\x10ab",  # a length past the end
    b"\x0b",  # a group (wire type 3): betterproto2 leaves the scalar field 1 None
]


@pytest.fixture
async def raw_channel(sandbox):
    channel = Channel(sandbox.host, sandbox.port, codec=RawCodec())
    try:
        yield channel
    finally:
        channel.close()


async def raw_call(channel: Channel, path: str, body: bytes) -> Status:
    try:
        async with channel.request(path, Cardinality.UNARY_UNARY, bytes, bytes, timeout=10) as stream:
            await stream.send_message(body, end=True)
            await stream.recv_message()
            await stream.recv_trailing_metadata()
    except GRPCError as exc:
        return exc.status
    return Status.OK


@pytest.mark.parametrize("body", UNDECODABLE, ids=range(len(UNDECODABLE)))
async def test_undecodable_bodies_are_invalid_argument(raw_channel: Channel, body: bytes) -> None:
    """Regression: a body that does not decode as the method's message was answered INTERNAL."""
    statuses = {path: await raw_call(raw_channel, path, body) for path in METHODS}
    decodable = {path: status for path, status in statuses.items() if status != Status.INVALID_ARGUMENT}
    # A message type without the field the bytes name may skip it; none may answer INTERNAL or UNKNOWN.
    assert all(status in CLIENT_FAULTS | {Status.OK} for status in decodable.values()), decodable
    assert statuses["/flyteidl.service.AdminService/GetTask"] == Status.INVALID_ARGUMENT


@settings(max_examples=budget(100))
@given(path=st.sampled_from(METHODS), body=st.binary(max_size=64))
@example(path="/flyteidl.service.AdminService/ListTasks", body=b"\x12\x02\xff\xfe")
@example(path="/flyteidl.service.AdminService/ListProjects", body=b"\x0b")  # a group: limit None
async def test_random_bodies_never_fault_the_server(
    raw_channel: Channel, sandbox, path: str, body: bytes
) -> None:
    status = await raw_call(raw_channel, path, body)
    assert status in CLIENT_FAULTS | {Status.OK}, status.name
    assert await raw_call(raw_channel, "/flyteidl.service.AdminService/GetVersion", b"") == Status.OK


# ---------------------------------------------------------------- the data proxy

path_text = st.one_of(
    proto_text,
    st.sampled_from(
        ["..", "../..", "/etc/passwd", "a/../../b", ".", "a//b", "~", "%2e%2e", "a\\..\\b", "\x00"]
    ),
    st.lists(st.sampled_from(["..", ".", "a", "/", "%", "\\"]), max_size=6).map("".join),
)
upload_requests = st.builds(
    lambda project, domain, filename, root, md5, expires, org: service.CreateUploadLocationRequest(
        project=project,
        domain=domain,
        filename=filename,
        filename_root=root,
        content_md5=md5,
        expires_in=expires,
        org=org,
    ),
    projects,
    domains,
    path_text,
    often(st.just(""), path_text),
    st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=20)),
    st.one_of(
        st.none(), st.timedeltas(min_value=datetime.timedelta(days=-2), max_value=datetime.timedelta(days=30))
    ),
    often(st.just(""), path_text),
)


@pytest.fixture
async def dataproxy(sandbox):
    channel = Channel(sandbox.host, sandbox.port)
    try:
        yield service.DataProxyServiceStub(channel)
    finally:
        channel.close()


@settings(max_examples=budget(80))
@given(
    request=st.one_of(
        upload_requests,
        st.builds(
            service.CreateDownloadLocationRequest,
            native_url=st.one_of(
                path_text, path_text.map(lambda p: "file://" + p), path_text.map(lambda p: "local://" + p)
            ),
        ),
        st.builds(
            service.GetDataRequest,
            flyte_url=st.one_of(
                proto_text,
                st.lists(
                    often(st.sampled_from([PROJECT, DOMAIN, "n0", "i", "o", "d", "0"]), path_text), max_size=7
                ).map(lambda parts: "flyte://v1/" + "/".join(parts)),
            ),
        ),
    )
)
@example(request=service.CreateUploadLocationRequest(PROJECT, DOMAIN, "../../x", content_md5=b"m" * 16))
@example(request=service.CreateUploadLocationRequest(PROJECT, DOMAIN, "x", filename_root="../.."))
@example(request=service.CreateUploadLocationRequest(PROJECT, DOMAIN, "x", filename_root="r", org=".."))
@example(request=service.CreateUploadLocationRequest(PROJECT, DOMAIN, "/etc/passwd", filename_root="r"))
@example(request=service.CreateUploadLocationRequest(PROJECT, DOMAIN, "a/../../b", content_md5=b"m" * 16))
@example(request=service.CreateUploadLocationRequest("..", DOMAIN, "x", content_md5=b"m" * 16))
@example(request=service.CreateDownloadLocationRequest(native_url="file:///etc/passwd"))
async def test_data_proxy_answers_client_faults_and_stays_in_the_blob_root(
    dataproxy: service.DataProxyServiceStub, sandbox, request: Any
) -> None:
    rpc = {
        service.CreateUploadLocationRequest: dataproxy.create_upload_location,
        service.CreateDownloadLocationRequest: dataproxy.create_download_location,
        service.GetDataRequest: dataproxy.get_data,
    }[type(request)]
    answer = await call(rpc(request))
    event(f"{type(request).__name__}: {answer.name if isinstance(answer, Status) else 'OK'}")
    if isinstance(answer, service.CreateUploadLocationResponse):
        assert answer.native_url.startswith("local:///"), answer.native_url
        assert inside(answer.native_url.removeprefix("local://"), Path(sandbox.data_dir) / "blobs"), (
            answer.native_url
        )


def inside(path: str, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(root.resolve())
