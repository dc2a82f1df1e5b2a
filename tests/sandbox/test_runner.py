"""The runner: registered tasks run as local subprocesses, with propeller's retry, timeout, abort rules."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import anyio
import pytest
from grpclib import GRPCError
from grpclib.const import Status

from asyncrun._proto.flyteidl import admin, core
from asyncrun.sandbox._admin import AdminService
from asyncrun.sandbox._runner import Runner
from asyncrun.sandbox._store import ExecutionKey, Store, utc_now
from asyncrun.sandbox._templates import TemplateError, TemplateValues, render_args

from .conftest import (
    DOMAIN,
    INT,
    PROJECT,
    STR,
    assert_eventually,
    bind,
    execution_spec,
    integer,
    launch_plan_id,
    launch_plan_spec,
    literals,
    promise,
    script_args,
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
NodePhase = core.NodeExecutionPhase
TaskPhase = core.TaskExecutionPhase


async def launch(
    service: AdminService,
    name: str,
    template: core.WorkflowTemplate,
    tasks: list[core.TaskTemplate],
    inputs: core.LiteralMap | None = None,
    *,
    max_parallelism: int = 0,
    sub_workflows: list[core.WorkflowTemplate] | None = None,
) -> ExecutionKey:
    """Register tasks, the workflow and its launch plan, then create an execution called `name`."""
    for task in tasks:
        assert task.id is not None
        await service.create_task(admin.TaskCreateRequest(id=task.id, spec=admin.TaskSpec(template=task)))
    assert template.id is not None
    await service.create_workflow(
        admin.WorkflowCreateRequest(
            id=template.id, spec=admin.WorkflowSpec(template=template, sub_workflows=sub_workflows or [])
        )
    )
    lp = launch_plan_id(template.id.name)
    await service.create_launch_plan(admin.LaunchPlanCreateRequest(id=lp, spec=launch_plan_spec(template.id)))
    response = await service.create_execution(
        admin.ExecutionCreateRequest(
            project=PROJECT,
            domain=DOMAIN,
            name=name,
            spec=execution_spec(lp, max_parallelism=max_parallelism),
            inputs=inputs or core.LiteralMap(),
        )
    )
    assert response.id is not None
    return ExecutionKey.of(response.id)


async def finished(service: AdminService, key: ExecutionKey, within: float = 30.0) -> admin.Execution:
    """Wait until the execution is in a terminal phase; return it."""
    found: list[admin.Execution] = []

    async def done() -> bool:
        execution = await service.get_execution(admin.WorkflowExecutionGetRequest(id=key.to_id()))
        found[:] = [execution]
        assert execution.closure is not None
        return execution.closure.phase in (Phase.SUCCEEDED, Phase.FAILED, Phase.ABORTED, Phase.TIMED_OUT)

    await assert_eventually(done, within=within, what=f"{key.name} to finish")
    return found[0]


async def nodes_of(
    service: AdminService, key: ExecutionKey, parent: str = "", *, boundaries: bool = False
) -> list[admin.NodeExecution]:
    """The node executions listed under `parent`; start-node and end-node only with `boundaries`."""
    listing = await service.list_node_executions(
        admin.NodeExecutionListRequest(
            workflow_execution_id=key.to_id(),
            limit=100,
            unique_parent_id=parent,
            sort_by=admin.Sort(key="created_at", direction=admin.SortDirection.ASCENDING),
        )
    )
    return [
        node
        for node in listing.node_executions
        if boundaries or (node.id is not None and node.id.node_id not in ("start-node", "end-node"))
    ]


async def attempts_of(service: AdminService, key: ExecutionKey, node_id: str) -> list[admin.TaskExecution]:
    listing = await service.list_task_executions(
        admin.TaskExecutionListRequest(
            node_execution_id=core.NodeExecutionIdentifier(node_id=node_id, execution_id=key.to_id()),
            limit=100,
            sort_by=admin.Sort(key="retry_attempt", direction=admin.SortDirection.ASCENDING),
        )
    )
    return listing.task_executions


def one_task_workflow(
    name: str, task: core.TaskTemplate, **inputs: core.LiteralType
) -> core.WorkflowTemplate:
    assert task.id is not None
    return workflow_template(
        workflow_id(name),
        [task_node("n0", task.id, *(bind(var, promise("", var)) for var in inputs))],
        inputs=variables(**inputs),
        outputs=task.interface.outputs if task.interface else None,
        output_bindings=[
            bind(var, promise("n0", var))
            for var in (task.interface.outputs.variables if task.interface and task.interface.outputs else {})
        ],
    )


async def test_a_two_node_workflow_succeeds_and_records_everything(
    service: AdminService, task_script: Path
) -> None:
    add = task_template(
        task_id("add"),
        inputs=variables(a=INT, b=INT),
        outputs=variables(o0=INT),
        args=script_args(task_script, "add"),
    )
    template = workflow_template(
        workflow_id("chain"),
        [
            task_node("n0", task_id("add"), bind("a", promise("", "x")), bind("b", promise("", "y"))),
            task_node(
                "n1",
                task_id("add"),
                bind("a", promise("n0", "o0")),
                bind("b", core.BindingData(scalar=integer(100).scalar)),
                upstream=["n0"],
            ),
        ],
        inputs=variables(x=INT, y=INT),
        outputs=variables(total=INT),
        output_bindings=[bind("total", promise("n1", "o0"))],
    )
    key = await launch(service, "chain-run", template, [add], literals(x=integer(2), y=integer(3)))
    execution = await finished(service, key)
    closure = execution.closure
    assert closure is not None and closure.phase == Phase.SUCCEEDED, closure
    assert closure.error is None and closure.abort_metadata is None
    assert closure.started_at is not None and closure.duration is not None and closure.created_at is not None
    assert closure.outputs is not None and closure.outputs.uri
    written = await anyio.Path(closure.outputs.uri).read_bytes()
    assert core.LiteralMap.parse(written).literals["total"] == integer(105)

    data = await service.get_execution_data(admin.WorkflowExecutionGetDataRequest(id=key.to_id()))
    assert data.full_outputs is not None and data.full_outputs.literals == {"total": integer(105)}
    assert data.full_inputs is not None and data.full_inputs.literals == {"x": integer(2), "y": integer(3)}

    nodes = await nodes_of(service, key, boundaries=True)
    # FlyteAdmin lists FlytePropeller's start-node and end-node too (flytekit's sync_nodes users read them).
    assert [node.id.node_id for node in nodes if node.id] == ["start-node", "n0", "n1", "end-node"]
    start, *nodes, end = nodes
    for boundary, data_of_boundary in ((start, "full_outputs"), (end, "full_inputs")):
        assert boundary.closure is not None and boundary.closure.phase == NodePhase.SUCCEEDED
        boundary_data = await service.get_node_execution_data(
            admin.NodeExecutionGetDataRequest(id=boundary.id)
        )
        expected = data.full_inputs if boundary is start else data.full_outputs
        assert getattr(boundary_data, data_of_boundary) == expected
    for node in nodes:
        assert node.closure is not None and node.closure.phase == NodePhase.SUCCEEDED
        # Set, although empty: flytekit checks HasField("task_node_metadata").
        assert node.closure.task_node_metadata is not None
        assert node.closure.started_at is not None and node.closure.duration is not None
    node_data = await service.get_node_execution_data(admin.NodeExecutionGetDataRequest(id=nodes[1].id))
    assert node_data.full_inputs is not None and node_data.full_inputs.literals == {
        "a": integer(5),
        "b": integer(100),
    }
    assert node_data.full_outputs is not None and node_data.full_outputs.literals == {"o0": integer(105)}

    attempts = await attempts_of(service, key, "n1")
    assert [(a.id.retry_attempt, a.closure.phase) for a in attempts if a.id and a.closure] == [
        (0, TaskPhase.SUCCEEDED)
    ]
    assert attempts[0].id is not None and attempts[0].id.task_id == task_id("add")
    task_data = await service.get_task_execution_data(admin.TaskExecutionGetDataRequest(id=attempts[0].id))
    assert task_data.full_outputs is not None and task_data.full_outputs.literals == {"o0": integer(105)}


async def test_a_single_task_runs_through_a_generated_workflow(
    service: AdminService, task_script: Path
) -> None:
    add = task_template(
        task_id("hello.add"),
        inputs=variables(a=INT, b=INT),
        outputs=variables(o0=INT),
        args=script_args(task_script, "add"),
    )
    await service.create_task(admin.TaskCreateRequest(id=add.id, spec=admin.TaskSpec(template=add)))
    response = await service.create_execution(
        admin.ExecutionCreateRequest(
            project=PROJECT,
            domain=DOMAIN,
            spec=execution_spec(task_id("hello.add")),
            inputs=literals(a=integer(20), b=integer(22)),
        )
    )
    assert response.id is not None
    key = ExecutionKey.of(response.id)
    execution = await finished(service, key)
    assert execution.closure is not None and execution.closure.phase == Phase.SUCCEEDED
    # The launch plan comes back exactly as sent (a TASK id); the workflow is the generated one.
    assert execution.spec is not None and execution.spec.launch_plan == task_id("hello.add")
    assert execution.closure.workflow_id == workflow_id(".flytegen.hello.add")
    node_ids = [node.id.node_id for node in await nodes_of(service, key, boundaries=True) if node.id]
    assert node_ids == ["start-node", "helloadd", "end-node"]
    data = await service.get_execution_data(admin.WorkflowExecutionGetDataRequest(id=key.to_id()))
    assert data.full_outputs is not None and data.full_outputs.literals == {"o0": integer(42)}


async def test_a_user_error_fails_the_workflow_with_the_task_error(
    service: AdminService, task_script: Path
) -> None:
    fail = task_template(task_id("fail"), args=script_args(task_script, "fail", "bad", "input"), retries=3)
    key = await launch(service, "user-error", one_task_workflow("failing", fail), [fail])
    execution = await finished(service, key)
    closure = execution.closure
    assert closure is not None and closure.phase == Phase.FAILED
    assert closure.error is not None and closure.error.message == "boom: bad input"
    assert closure.error.kind == core.ExecutionErrorErrorKind.USER and closure.error.code == "USER:ValueError"
    assert closure.outputs is None
    (node,) = await nodes_of(service, key)
    assert node.closure is not None and node.closure.phase == NodePhase.FAILED
    assert node.closure.error is not None and node.closure.error.message == "boom: bad input"
    # NON_RECOVERABLE: no retry despite retries=3.
    attempts = await attempts_of(service, key, "n0")
    assert [a.closure.phase for a in attempts if a.closure] == [TaskPhase.FAILED]
    assert attempts[0].closure is not None and attempts[0].closure.error is not None


async def test_a_recoverable_error_is_retried_up_to_the_retry_budget(
    service: AdminService, task_script: Path, tmp_path: Path
) -> None:
    flaky = task_template(
        task_id("flaky"),
        outputs=variables(o0=INT),
        retries=2,
        args=script_args(task_script, "flaky", str(tmp_path / "tries"), "2"),
    )
    key = await launch(service, "flaky-run", one_task_workflow("flaky-wf", flaky), [flaky])
    execution = await finished(service, key)
    assert execution.closure is not None and execution.closure.phase == Phase.SUCCEEDED, execution.closure
    attempts = await attempts_of(service, key, "n0")
    assert [(a.id.retry_attempt, a.closure.phase) for a in attempts if a.id and a.closure] == [
        (0, TaskPhase.FAILED),
        (1, TaskPhase.FAILED),
        (2, TaskPhase.SUCCEEDED),
    ]
    data = await service.get_execution_data(admin.WorkflowExecutionGetDataRequest(id=key.to_id()))
    assert data.full_outputs is not None and data.full_outputs.literals == {"o0": integer(2)}

    exhausted = task_template(
        task_id("flaky", "v2"),
        outputs=variables(o0=INT),
        retries=1,
        args=script_args(task_script, "flaky", str(tmp_path / "tries-2"), "5"),
    )
    key = await launch(service, "flaky-exhausted", one_task_workflow("flaky-wf2", exhausted), [exhausted])
    execution = await finished(service, key)
    assert execution.closure is not None and execution.closure.phase == Phase.FAILED
    assert execution.closure.error is not None and "try again (1)" in execution.closure.error.message
    assert len(await attempts_of(service, key, "n0")) == 2


async def test_a_non_zero_exit_is_a_system_failure_with_the_log_tail(
    service: AdminService, task_script: Path
) -> None:
    bad = task_template(task_id("bad-exit"), args=script_args(task_script, "exit", "3"), retries=2)
    key = await launch(service, "bad-exit", one_task_workflow("bad-exit", bad), [bad])
    execution = await finished(service, key)
    error = execution.closure.error if execution.closure else None
    assert execution.closure is not None and execution.closure.phase == Phase.FAILED
    assert error is not None and error.kind == core.ExecutionErrorErrorKind.SYSTEM
    assert "exited with code 3" in error.message and "about to exit badly" in error.message
    assert len(await attempts_of(service, key, "n0")) == 1


async def test_exiting_without_outputs_or_error_is_a_system_failure(
    service: AdminService, task_script: Path
) -> None:
    silent = task_template(
        task_id("silent"), outputs=variables(o0=INT), args=script_args(task_script, "nothing")
    )
    key = await launch(service, "silent", one_task_workflow("silent", silent), [silent])
    execution = await finished(service, key)
    error = execution.closure.error if execution.closure else None
    assert error is not None and error.kind == core.ExecutionErrorErrorKind.SYSTEM
    assert "without writing outputs.pb or error.pb" in error.message


async def test_a_missing_executable_fails_the_node_clearly(service: AdminService) -> None:
    ghost = task_template(task_id("ghost"), args=["no-such-program-asyncrun", "{{.input}}"])
    key = await launch(service, "ghost", one_task_workflow("ghost", ghost), [ghost])
    execution = await finished(service, key)
    error = execution.closure.error if execution.closure else None
    assert error is not None and "cannot start 'no-such-program-asyncrun'" in error.message


def _pids_alive(pid_file: Path) -> list[int]:
    alive = []
    for pid in map(int, pid_file.read_text().split()):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        # A zombie still answers kill(0); it is dead for our purposes.
        status = Path(f"/proc/{pid}/status")
        if status.exists() and "State:\tZ" in status.read_text():
            continue
        alive.append(pid)
    return alive


async def test_a_timeout_kills_the_process_group_and_is_retried(
    service: AdminService, task_script: Path, tmp_path: Path
) -> None:
    # One pid file per attempt, named through the propeller template variable.
    pid_pattern = str(tmp_path / "pids-{{.perRetryUniqueKey}}")
    slow = task_template(
        task_id("slow"), args=script_args(task_script, "hang", pid_pattern), timeout=1.0, retries=1
    )
    key = await launch(service, "slow", one_task_workflow("slow", slow), [slow])
    execution = await finished(service, key)
    assert execution.closure is not None and execution.closure.phase == Phase.FAILED
    assert execution.closure.error is not None and execution.closure.error.code == "TimeoutExpired"
    (node,) = await nodes_of(service, key)
    assert node.closure is not None and node.closure.phase == NodePhase.TIMED_OUT
    attempts = await attempts_of(service, key, "n0")
    assert [a.closure.phase for a in attempts if a.closure] == [TaskPhase.FAILED, TaskPhase.FAILED]
    # Both attempts started (their pid files exist) and nothing of either is left running.
    assert [_pids_alive(tmp_path / f"pids-slow-n0-{attempt}") for attempt in (0, 1)] == [[], []]


async def test_terminate_kills_the_process_group_and_ends_aborted(
    service: AdminService, task_script: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    hang = task_template(task_id("hang"), args=script_args(task_script, "hang", str(pid_file)))
    key = await launch(service, "to-abort", one_task_workflow("hang", hang), [hang])

    async def started() -> bool:
        return pid_file.exists()

    await assert_eventually(started, what="the task to start")
    assert len(_pids_alive(pid_file)) == 2
    await service.terminate_execution(admin.ExecutionTerminateRequest(id=key.to_id(), cause="enough"))
    execution = await finished(service, key)
    closure = execution.closure
    assert closure is not None and closure.phase == Phase.ABORTED
    assert closure.abort_metadata is not None and closure.abort_metadata.cause == "enough"
    assert closure.error is None
    assert _pids_alive(pid_file) == []
    (node,) = await nodes_of(service, key)
    assert node.closure is not None and node.closure.phase == NodePhase.ABORTED
    attempts = await attempts_of(service, key, "n0")
    assert [a.closure.phase for a in attempts if a.closure] == [TaskPhase.ABORTED]
    with pytest.raises(GRPCError) as caught:
        await service.terminate_execution(admin.ExecutionTerminateRequest(id=key.to_id(), cause="again"))
    assert caught.value.status == Status.FAILED_PRECONDITION


async def _two_rendezvous_nodes(
    service: AdminService, task_script: Path, tmp_path: Path, name: str, max_parallelism: int, patience: float
) -> admin.Execution:
    a, b = str(tmp_path / f"{name}-a"), str(tmp_path / f"{name}-b")
    meet_a = task_template(
        task_id(f"{name}-a"),
        outputs=variables(o0=INT),
        args=script_args(task_script, "rendezvous", a, b, str(patience)),
    )
    meet_b = task_template(
        task_id(f"{name}-b"),
        outputs=variables(o0=INT),
        args=script_args(task_script, "rendezvous", b, a, str(patience)),
    )
    assert meet_a.id is not None and meet_b.id is not None
    template = workflow_template(
        workflow_id(name), [task_node("left", meet_a.id), task_node("right", meet_b.id)]
    )
    key = await launch(service, name, template, [meet_a, meet_b], max_parallelism=max_parallelism)
    return await finished(service, key, within=60)


async def test_independent_nodes_run_concurrently(
    service: AdminService, task_script: Path, tmp_path: Path
) -> None:
    # Each node waits until the other has started: only concurrent execution lets both finish.
    execution = await _two_rendezvous_nodes(
        service, task_script, tmp_path, "meet", max_parallelism=0, patience=30
    )
    assert execution.closure is not None and execution.closure.phase == Phase.SUCCEEDED, execution.closure


async def test_max_parallelism_one_runs_nodes_one_at_a_time(
    service: AdminService, task_script: Path, tmp_path: Path
) -> None:
    # With one slot the first node never sees the second start: it gives up, and the workflow fails.
    execution = await _two_rendezvous_nodes(
        service, task_script, tmp_path, "alone", max_parallelism=1, patience=2
    )
    assert execution.closure is not None and execution.closure.phase == Phase.FAILED
    assert execution.closure.error is not None and "gave up waiting" in execution.closure.error.message


async def test_environment_holds_container_execution_and_propeller_variables(
    service: AdminService, task_script: Path
) -> None:
    outputs = {}
    for variable in ("FLYTE_INTERNAL_EXECUTION_ID", "_F_TK_NM", "FROM_CONTAINER", "FLYTE_ATTEMPT_NUMBER"):
        echo = task_template(
            task_id(f"echo-{variable.lower().strip('_')}"),
            outputs=variables(o0=STR),
            args=script_args(task_script, "echo-env", variable),
            env={"FROM_CONTAINER": "yes"},
        )
        assert echo.id is not None
        name = f"env-{variable.lower().strip('_').replace('_', '-')}"
        key = await launch(service, name, one_task_workflow(f"wf-{echo.id.name}", echo), [echo])
        execution = await finished(service, key)
        assert execution.closure is not None and execution.closure.phase == Phase.SUCCEEDED, execution.closure
        data = await service.get_execution_data(admin.WorkflowExecutionGetDataRequest(id=key.to_id()))
        assert data.full_outputs is not None
        outputs[variable] = (name, data.full_outputs.literals["o0"])
    assert outputs["FLYTE_INTERNAL_EXECUTION_ID"][1] == string(outputs["FLYTE_INTERNAL_EXECUTION_ID"][0])
    assert outputs["_F_TK_NM"][1] == string("echo-f_tk_nm")
    assert outputs["FROM_CONTAINER"][1] == string("yes")
    assert outputs["FLYTE_ATTEMPT_NUMBER"][1] == string("0")


async def test_sub_workflow_nodes_run_inline_as_children(service: AdminService, task_script: Path) -> None:
    add = task_template(
        task_id("add"),
        inputs=variables(a=INT, b=INT),
        outputs=variables(o0=INT),
        args=script_args(task_script, "add"),
    )
    sub = workflow_template(
        workflow_id("inner"),
        [task_node("n0", task_id("add"), bind("a", promise("", "x")), bind("b", promise("", "x")))],
        inputs=variables(x=INT),
        outputs=variables(doubled=INT),
        output_bindings=[bind("doubled", promise("n0", "o0"))],
    )
    outer = workflow_template(
        workflow_id("outer"),
        [
            core.Node(
                id="n0",
                metadata=core.NodeMetadata(name="inner"),
                inputs=[bind("x", promise("", "x"))],
                workflow_node=core.WorkflowNode(sub_workflow_ref=workflow_id("inner")),
            )
        ],
        inputs=variables(x=INT),
        outputs=variables(o0=INT),
        output_bindings=[bind("o0", promise("n0", "doubled"))],
    )
    key = await launch(service, "nested", outer, [add], literals(x=integer(21)), sub_workflows=[sub])
    execution = await finished(service, key)
    assert execution.closure is not None and execution.closure.phase == Phase.SUCCEEDED, execution.closure
    (parent,) = await nodes_of(service, key)
    assert parent.metadata is not None and parent.metadata.is_parent_node
    children = await nodes_of(service, key, parent="n0")
    assert [(c.id.node_id, c.metadata.spec_node_id) for c in children if c.id and c.metadata] == [
        ("n0-0-n0", "n0")
    ]
    data = await service.get_execution_data(admin.WorkflowExecutionGetDataRequest(id=key.to_id()))
    assert data.full_outputs is not None and data.full_outputs.literals == {"o0": integer(42)}


async def test_recover_ends_what_a_crashed_sandbox_left_running(
    store: Store, tmp_path: Path, task_script: Path
) -> None:
    class Parked(Runner):
        """A runner that is never started: executions stay where a crash would leave them."""

    parked = Parked(store, tmp_path / "data")
    service = AdminService(store, parked)
    add = task_template(
        task_id("add"),
        inputs=variables(a=INT, b=INT),
        outputs=variables(o0=INT),
        args=script_args(task_script, "add"),
    )
    template = one_task_workflow("adder", add, a=INT, b=INT)
    running = await launch(service, "was-running", template, [add], literals(a=integer(1), b=integer(2)))
    queued_response = await service.create_execution(
        admin.ExecutionCreateRequest(
            project=PROJECT,
            domain=DOMAIN,
            name="was-queued",
            spec=execution_spec(launch_plan_id("adder")),
            inputs=literals(a=integer(3), b=integer(4)),
        )
    )
    assert queued_response.id is not None
    now = utc_now()

    def to_running(closure: admin.ExecutionClosure) -> bool:
        closure.phase, closure.started_at = Phase.RUNNING, now
        return True

    await store.update_execution(running, to_running)
    await store.put_node_execution(
        admin.NodeExecution(
            id=core.NodeExecutionIdentifier(node_id="n0", execution_id=running.to_id()),
            closure=admin.NodeExecutionClosure(
                phase=NodePhase.RUNNING,
                created_at=now,
                started_at=now,
                task_node_metadata=admin.TaskNodeMetadata(),
            ),
            metadata=admin.NodeExecutionMetaData(spec_node_id="n0"),
        )
    )

    restarted = Runner(store, tmp_path / "data")
    async with anyio.create_task_group() as task_group:
        await task_group.start(restarted.run_forever)  # runs recover() first
        service = AdminService(store, restarted)
        crashed = await finished(service, running)
        assert crashed.closure is not None and crashed.closure.phase == Phase.FAILED
        assert crashed.closure.error is not None and crashed.closure.error.message == "sandbox restarted"
        (node,) = await nodes_of(service, running)
        assert node.closure is not None and node.closure.phase == NodePhase.FAILED
        # A QUEUED execution never started, so the new runner simply runs it.
        resumed = await finished(service, ExecutionKey.of(queued_response.id))
        assert resumed.closure is not None and resumed.closure.phase == Phase.SUCCEEDED
        assert await restarted.recover() == 0

        async def forgotten() -> bool:
            return not restarted._owned  # an ended execution is not kept for ever

        await assert_eventually(forgotten, what="the runner to forget ended executions")
        task_group.cancel_scope.cancel()


# ----------------------------------------------------------------------------------------------------
# Template rendering
# ----------------------------------------------------------------------------------------------------

VALUES = TemplateValues(
    input_prefix="/in",
    output_prefix="/out",
    raw_output_data_prefix="/raw",
    checkpoint_output_prefix="/ck",
    prev_checkpoint_prefix="",
    per_retry_unique_key="key-0",
    task_template_path="/t.pb",
    namespace="p-d",
    inputs={
        "n": integer(7),
        "s": string("x y"),
        "flag": core.Literal(scalar=core.Scalar(primitive=core.Primitive(boolean=True))),
        "d": core.Literal(
            scalar=core.Scalar(primitive=core.Primitive(duration=datetime.timedelta(minutes=1, seconds=30)))
        ),
        "lst": core.Literal(collection=core.LiteralCollection(literals=[integer(1)])),
    },
)


def test_every_propeller_variable_renders_in_both_forms_and_any_case() -> None:
    args = [
        "{{.input}}",
        "{{$Input}}",
        "{{ .inputPrefix }}",
        "{{.OUTPUTPREFIX}}",
        "{{.rawOutputDataPrefix}}",
        "{{.checkpointOutputPrefix}}",
        "x{{.prevCheckpointPrefix}}x",
        "{{.perRetryUniqueKey}}",
        "{{.taskTemplatePath}}",
        "{{.namespace}}",
        "--n={{.Inputs.n}}",
        "{{ $inputs.s }}",
        "{{.Inputs.flag}}",
        "{{.Inputs.d}}",
        "{{.unknown}}",
    ]
    assert render_args(args, VALUES) == [
        "/in/inputs.pb",
        "/in/inputs.pb",
        "/in",
        "/out",
        "/raw",
        "/ck",
        "xx",
        "key-0",
        "/t.pb",
        "p-d",
        "--n=7",
        "x y",
        "true",
        "1m30s",
        "{{.unknown}}",
    ]


def test_a_rendered_value_is_never_expanded_again() -> None:
    values = TemplateValues(
        input_prefix="/in", output_prefix="{{.input}}", raw_output_data_prefix="", checkpoint_output_prefix=""
    )
    assert render_args(["{{.outputPrefix}}"], values) == ["{{.input}}"]


@pytest.mark.parametrize("arg", ["{{.Inputs.missing}}", "{{.Inputs.lst}}"])
def test_inputs_that_cannot_be_rendered_are_errors(arg: str) -> None:
    with pytest.raises(TemplateError):
        render_args([arg], VALUES)


async def test_launch_plan_nodes_run_as_child_executions(service: AdminService, task_script: Path) -> None:
    add = task_template(
        task_id("add"),
        inputs=variables(a=INT, b=INT),
        outputs=variables(o0=INT),
        args=script_args(task_script, "add"),
    )
    child_key = await launch(
        service,
        "direct-child-run",
        one_task_workflow("adder", add, a=INT, b=INT),
        [add],
        literals(a=integer(0), b=integer(0)),
    )
    await finished(service, child_key)
    parent = workflow_template(
        workflow_id("parent"),
        [
            core.Node(
                id="n0",
                metadata=core.NodeMetadata(name="adder"),
                inputs=[bind("a", promise("", "x")), bind("b", core.BindingData(scalar=integer(1).scalar))],
                workflow_node=core.WorkflowNode(launchplan_ref=launch_plan_id("adder")),
            )
        ],
        inputs=variables(x=INT),
        outputs=variables(o0=INT),
        output_bindings=[bind("o0", promise("n0", "o0"))],
    )
    key = await launch(service, "with-child", parent, [], literals(x=integer(41)))
    execution = await finished(service, key)
    assert execution.closure is not None and execution.closure.phase == Phase.SUCCEEDED, execution.closure
    (node,) = await nodes_of(service, key)
    # flytekit follows workflow_node_metadata to the child when the node is not a parent node.
    assert node.metadata is not None and not node.metadata.is_parent_node
    assert node.closure is not None and node.closure.workflow_node_metadata is not None
    child_id = node.closure.workflow_node_metadata.execution_id
    assert child_id is not None
    child = await service.get_execution(admin.WorkflowExecutionGetRequest(id=child_id))
    assert child.closure is not None and child.closure.phase == Phase.SUCCEEDED
    assert child.spec is not None and child.spec.metadata is not None
    assert child.spec.metadata.mode == admin.ExecutionMetadataExecutionMode.CHILD_WORKFLOW
    assert child.spec.metadata.parent_node_execution == node.id
    data = await service.get_execution_data(admin.WorkflowExecutionGetDataRequest(id=key.to_id()))
    assert data.full_outputs is not None and data.full_outputs.literals == {"o0": integer(42)}

    # The child inherits the parent's interruptible override, as FlytePropeller launches it (flytekit's
    # test_executes_nested_workflow_dictating_interruptible); without one it has none either.
    assert child.spec.interruptible is None
    spec = execution_spec(launch_plan_id("parent"))
    spec.interruptible = False
    response = await service.create_execution(
        admin.ExecutionCreateRequest(
            project=PROJECT, domain=DOMAIN, name="not-interruptible", spec=spec, inputs=literals(x=integer(1))
        )
    )
    assert response.id is not None
    key = ExecutionKey.of(response.id)
    await finished(service, key)
    (node,) = await nodes_of(service, key)
    assert node.closure is not None and node.closure.workflow_node_metadata is not None
    child = await service.get_execution(
        admin.WorkflowExecutionGetRequest(id=node.closure.workflow_node_metadata.execution_id)
    )
    assert child.spec is not None and child.spec.interruptible is False


async def test_aborting_a_parent_aborts_its_child_execution(
    service: AdminService, task_script: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    hang = task_template(task_id("hang"), args=script_args(task_script, "hang", str(pid_file)))
    template = one_task_workflow("hanger", hang)
    for_registration = await launch(service, "registers-hanger", template, [hang])
    await service.terminate_execution(
        admin.ExecutionTerminateRequest(id=for_registration.to_id(), cause="setup")
    )
    await finished(service, for_registration)
    pid_file.unlink(missing_ok=True)
    parent = workflow_template(
        workflow_id("waits-for-child"),
        [core.Node(id="n0", workflow_node=core.WorkflowNode(launchplan_ref=launch_plan_id("hanger")))],
    )
    key = await launch(service, "parent-of-hanger", parent, [])

    async def started() -> bool:
        return pid_file.exists()

    await assert_eventually(started, what="the child's task to start")
    (node,) = await nodes_of(service, key)
    assert node.closure is not None and node.closure.workflow_node_metadata is not None
    child_id = node.closure.workflow_node_metadata.execution_id
    assert child_id is not None
    await service.terminate_execution(admin.ExecutionTerminateRequest(id=key.to_id(), cause="stop all"))
    assert (await finished(service, key)).closure.phase == Phase.ABORTED  # type: ignore[union-attr]
    child = await finished(service, ExecutionKey.of(child_id))
    assert child.closure is not None and child.closure.phase == Phase.ABORTED
    assert _pids_alive(pid_file) == []
