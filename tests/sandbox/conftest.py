"""Fixtures and message builders for the sandbox control-plane tests (store, runner, AdminService).

Builders are plain functions; test modules import them with `from .conftest import …`.
"""

from __future__ import annotations

import socket
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.server import Server

from asyncrun._proto.flyteidl import admin, core
from asyncrun._proto.flyteidl.service import AdminServiceStub
from asyncrun.sandbox._admin import AdminService
from asyncrun.sandbox._runner import Runner
from asyncrun.sandbox._store import Store

PROJECT, DOMAIN = "flytesnacks", "development"
INT = core.LiteralType(simple=core.SimpleType.INTEGER)
STR = core.LiteralType(simple=core.SimpleType.STRING)


# ----------------------------------------------------------------------------------------------------
# Builders
# ----------------------------------------------------------------------------------------------------


def ident(
    resource_type: core.ResourceType, name: str, version: str = "v1", project: str = PROJECT
) -> core.Identifier:
    return core.Identifier(
        resource_type=resource_type, project=project, domain=DOMAIN, name=name, version=version
    )


def task_id(name: str, version: str = "v1") -> core.Identifier:
    return ident(core.ResourceType.TASK, name, version)


def workflow_id(name: str, version: str = "v1") -> core.Identifier:
    return ident(core.ResourceType.WORKFLOW, name, version)


def launch_plan_id(name: str, version: str = "v1") -> core.Identifier:
    return ident(core.ResourceType.LAUNCH_PLAN, name, version)


def variables(**types: core.LiteralType) -> core.VariableMap:
    return core.VariableMap(
        variables={name: core.Variable(type=t, description=name) for name, t in types.items()}
    )


def integer(value: int) -> core.Literal:
    return core.Literal(scalar=core.Scalar(primitive=core.Primitive(integer=value)))


def string(value: str) -> core.Literal:
    return core.Literal(scalar=core.Scalar(primitive=core.Primitive(string_value=value)))


def literals(**values: core.Literal) -> core.LiteralMap:
    return core.LiteralMap(literals=values)


def task_template(
    identifier: core.Identifier,
    *,
    inputs: core.VariableMap | None = None,
    outputs: core.VariableMap | None = None,
    args: list[str] | None = None,
    retries: int = 0,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> core.TaskTemplate:
    import datetime

    return core.TaskTemplate(
        id=identifier,
        type="python-task",
        metadata=core.TaskMetadata(
            runtime=core.RuntimeMetadata(type=core.RuntimeMetadataRuntimeType.FLYTE_SDK, version="1.16.31"),
            retries=core.RetryStrategy(retries=retries),
            timeout=datetime.timedelta(seconds=timeout) if timeout else None,
        ),
        interface=core.TypedInterface(
            inputs=inputs or core.VariableMap(), outputs=outputs or core.VariableMap()
        ),
        container=core.Container(
            image="python:3.11",
            args=args if args is not None else ["true"],
            env=[core.KeyValuePair(key=k, value=v) for k, v in (env or {}).items()],
        ),
    )


def promise(node_id: str, var: str) -> core.BindingData:
    return core.BindingData(promise=core.OutputReference(node_id=node_id, var=var))


def bind(var: str, data: core.BindingData) -> core.Binding:
    return core.Binding(var=var, binding=data)


def task_node(
    node_id: str, task: core.Identifier, *bindings: core.Binding, upstream: list[str] | None = None
) -> core.Node:
    return core.Node(
        id=node_id,
        metadata=core.NodeMetadata(name=node_id),
        inputs=list(bindings),
        upstream_node_ids=upstream or [],
        task_node=core.TaskNode(reference_id=task),
    )


def workflow_template(
    identifier: core.Identifier,
    nodes: list[core.Node],
    *,
    inputs: core.VariableMap | None = None,
    outputs: core.VariableMap | None = None,
    output_bindings: list[core.Binding] | None = None,
) -> core.WorkflowTemplate:
    return core.WorkflowTemplate(
        id=identifier,
        metadata=core.WorkflowMetadata(),
        interface=core.TypedInterface(
            inputs=inputs or core.VariableMap(), outputs=outputs or core.VariableMap()
        ),
        nodes=nodes,
        outputs=output_bindings or [],
        metadata_defaults=core.WorkflowMetadataDefaults(),
    )


def default_parameters(**defaults: tuple[core.LiteralType, core.Literal | None]) -> core.ParameterMap:
    return core.ParameterMap(
        parameters={
            name: core.Parameter(var=core.Variable(type=t), default=value)
            if value is not None
            else core.Parameter(var=core.Variable(type=t), required=True)
            for name, (t, value) in defaults.items()
        }
    )


def launch_plan_spec(
    workflow: core.Identifier,
    *,
    defaults: core.ParameterMap | None = None,
    fixed: core.LiteralMap | None = None,
    max_parallelism: int = 0,
) -> admin.LaunchPlanSpec:
    return admin.LaunchPlanSpec(
        workflow_id=workflow,
        entity_metadata=admin.LaunchPlanMetadata(),
        default_inputs=defaults or core.ParameterMap(),
        fixed_inputs=fixed or core.LiteralMap(),
        max_parallelism=max_parallelism,
    )


def execution_spec(launch: core.Identifier, *, max_parallelism: int = 0) -> admin.ExecutionSpec:
    return admin.ExecutionSpec(
        launch_plan=launch,
        metadata=admin.ExecutionMetadata(
            mode=admin.ExecutionMetadataExecutionMode.MANUAL, principal="placeholder"
        ),
        disable_all=False,
        max_parallelism=max_parallelism,
    )


# The task "image" of the runner tests: a Python script that reads inputs.pb with our betterproto classes
# and does what its first argument says.
TASK_SCRIPT = textwrap.dedent(
    """
    import os, sys, time, subprocess

    inputs_path, output_prefix, action, *rest = sys.argv[1:]
    if action == "hang":
        # Before any heavy import, so even a short timeout finds the pids recorded: start a grandchild in
        # the same process group, record both pids, then hang.
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(rest[0] + ".tmp", "w") as handle:
            handle.write(f"{os.getpid()} {child.pid}")
        os.replace(rest[0] + ".tmp", rest[0])
        time.sleep(600)

    from asyncrun._proto.flyteidl import core

    inputs = core.LiteralMap.parse(open(inputs_path, "rb").read())

    def write(name, message):
        with open(os.path.join(output_prefix, name), "wb") as handle:
            handle.write(bytes(message))

    def error(kind, message, code="USER:ValueError"):
        write("error.pb", core.ErrorDocument(error=core.ContainerError(
            code=code, message=message, kind=kind, origin=core.ExecutionErrorErrorKind.USER)))

    def integer(value):
        return core.Literal(scalar=core.Scalar(primitive=core.Primitive(integer=value)))

    def wait_for(path, seconds=30.0):
        for _ in range(int(seconds / 0.05)):
            if os.path.exists(path):
                return
            time.sleep(0.05)
        sys.exit(f"gave up waiting for {path}")

    if action == "add":
        total = sum(lit.scalar.primitive.integer for lit in inputs.literals.values())
        write("outputs.pb", core.LiteralMap(literals={"o0": integer(total)}))
    elif action == "echo-env":
        value = os.environ.get(rest[0], "")
        write("outputs.pb", core.LiteralMap(literals={"o0": core.Literal(scalar=core.Scalar(
            primitive=core.Primitive(string_value=value)))}))
    elif action == "fail":
        error(core.ContainerErrorKind.NON_RECOVERABLE, "boom: " + " ".join(rest))
    elif action == "flaky":
        marker = rest[0]
        attempts = int(open(marker).read()) if os.path.exists(marker) else 0
        open(marker, "w").write(str(attempts + 1))
        if attempts < int(rest[1]):
            error(core.ContainerErrorKind.RECOVERABLE, f"try again ({attempts})")
        else:
            write("outputs.pb", core.LiteralMap(literals={"o0": integer(attempts)}))
    elif action == "exit":
        print("about to exit badly", flush=True)
        sys.exit(int(rest[0]))
    elif action == "nothing":
        pass
    elif action == "big":
        write("outputs.pb", core.LiteralMap(literals={"o0": core.Literal(scalar=core.Scalar(
            primitive=core.Primitive(string_value="x" * int(rest[0]))))}))
    elif action == "rendezvous":
        mine, other, *limit = rest
        open(mine, "w").close()
        wait_for(other, *map(float, limit))
        write("outputs.pb", core.LiteralMap(literals={"o0": integer(1)}))
    """
)


def script_args(script: Path, action: str, *rest: str) -> list[str]:
    """Container args running the test task script (rendered by the runner like propeller would)."""
    return [sys.executable, str(script), "{{.input}}", "{{ .outputPrefix }}", action, *rest]


async def expect_status(call: object, status: Status, match: str = "") -> str:
    """Await `call` and check it fails with `status` (and a message containing `match`)."""
    with pytest.raises(GRPCError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.status == status, caught.value.message
    assert match in (caught.value.message or ""), caught.value.message
    return caught.value.message or ""


async def assert_eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 30.0, what: str = ""
) -> None:
    """Poll `check` until it is true; fail after `within` seconds. The one bounded poll these tests use."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or check}")
        await anyio.sleep(0.02)


# ----------------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------------


@pytest.fixture
def task_script(tmp_path: Path) -> Path:
    path = tmp_path / "task_script.py"
    path.write_text(TASK_SCRIPT)
    return path


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "sandbox.db") as opened:
        yield opened


@pytest.fixture
async def runner(store: Store, tmp_path: Path) -> AsyncIterator[Runner]:
    runner = Runner(store, tmp_path / "data", max_concurrent_tasks=4)
    async with anyio.create_task_group() as task_group:
        await task_group.start(runner.run_forever)
        yield runner
        task_group.cancel_scope.cancel()


@pytest.fixture
def service(store: Store, runner: Runner) -> AdminService:
    return AdminService(store, runner, console_url="http://127.0.0.1:1/console")


@pytest.fixture
async def stub(service: AdminService) -> AsyncIterator[AdminServiceStub]:
    """A real grpclib server on 127.0.0.1 (a free port) and a client stub talking to it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server = Server([service])
    await server.start(sock=sock)
    channel = Channel("127.0.0.1", sock.getsockname()[1])
    try:
        yield AdminServiceStub(channel)
    finally:
        channel.close()
        server.close()
        await server.wait_closed()
        sock.close()
