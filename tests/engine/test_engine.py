"""Handler-level tests of the engine: an in-memory recorder, tasks as coroutines, no sockets."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from asyncrun import engine
from asyncrun.engine import Phase

from .helpers import Catalog, Launcher, Recoverable, Ref, Values, make_engine, resolve, task_node

pytestmark = pytest.mark.anyio


async def double(x: int) -> dict[str, Any]:
    return {"o0": x * 2}


async def add(a: int, b: int) -> dict[str, Any]:
    return {"o0": a + b}


async def boom(x: int) -> dict[str, Any]:
    raise ValueError(f"boom {x}")


def graph(*nodes: engine.Node, outputs: dict[str, Any] | None = None, **options: Any) -> engine.Graph:
    return engine.Graph(tuple(nodes), outputs or {}, **options)


async def test_a_chain_passes_outputs_along_and_records_each_node() -> None:
    runner, recorder, _ = make_engine()
    g = graph(
        task_node("n0", double, x=Ref("", "x")),
        task_node("n1", add, ("n0",), a=Ref("n0", "o0"), b=1),
        outputs={"o0": Ref("n1", "o0")},
    )
    assert await runner.run_graph(g, {"x": 3}) == {"o0": 7}
    n1 = recorder.nodes["n1"]
    assert n1.phases == [Phase.QUEUED, Phase.RUNNING, Phase.SUCCEEDED]
    assert (n1.inputs, n1.outputs, n1.attempts) == ({"a": 6, "b": 1}, {"o0": 7}, [None])
    assert n1.cache == engine.CacheStatus.CACHE_DISABLED


async def test_independent_nodes_overlap_within_max_parallelism() -> None:
    async def wait(tag: str) -> dict[str, Any]:
        await anyio.sleep(0.05)
        return {"o0": tag}

    nodes = [task_node(f"n{i}", wait, tag=str(i)) for i in range(3)]
    runner, _, launcher = make_engine()
    await runner.run_graph(graph(*nodes), {})
    # all three start before any ends
    assert [event for event, _ in launcher.events[:3]] == ["start"] * 3
    runner, _, launcher = make_engine(max_parallelism=1)
    await runner.run_graph(graph(*nodes), {})
    assert [event for event, _ in launcher.events] == ["start", "end"] * 3


async def test_recoverable_failures_are_retried_others_are_not() -> None:
    calls: list[int] = []

    async def flaky(x: int) -> dict[str, Any]:
        calls.append(x)
        if len(calls) < 3:
            raise Recoverable(f"try {len(calls)}")
        return {"o0": x}

    runner, recorder, _ = make_engine()
    node = engine.Node("n0", engine.TaskCall(flaky, "flaky", retries=2), {"x": 1})
    assert await runner.run_graph(graph(node, outputs={"o": Ref("n0", "o0")}), {}) == {"o": 1}
    assert [a.message if a else None for a in recorder.nodes["n0"].attempts] == ["try 1", "try 2", None]

    runner, recorder, _ = make_engine()
    node = engine.Node("n0", engine.TaskCall(boom, "boom", retries=5), {"x": 1})
    with pytest.raises(engine.NodeFailed, match="boom 1"):
        await runner.run_graph(graph(node), {})
    assert len(recorder.nodes["n0"].attempts) == 1
    assert recorder.nodes["n0"].phase == Phase.FAILED


async def test_a_node_whose_last_attempt_timed_out_ends_timed_out() -> None:
    async def slow() -> dict[str, Any]:
        await anyio.sleep(5)
        return {}

    runner, recorder, _ = make_engine()
    node = engine.Node("n0", engine.TaskCall(slow, "slow", retries=1, timeout=0.01), {})
    with pytest.raises(engine.NodeFailed) as failed:
        await runner.run_graph(graph(node), {})
    assert failed.value.phase == Phase.TIMED_OUT
    assert len(recorder.nodes["n0"].attempts) == 2  # a timeout uses a retry


async def test_first_failure_cancels_siblings_and_skips_downstream() -> None:
    async def forever() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError

    runner, recorder, _ = make_engine()
    g = graph(
        task_node("bad", boom, x=1),
        task_node("slow", forever),
        task_node("after", double, ("bad",), x=Ref("bad", "o0")),
    )
    with pytest.raises(engine.NodeFailed, match="boom 1"):
        await runner.run_graph(g, {})
    assert recorder.nodes["slow"].phase == Phase.ABORTED
    assert "after" not in recorder.nodes


def branch_graph(else_error: str | None = None) -> engine.Graph:
    async def small(x: int) -> dict[str, Any]:
        return {"o0": f"small {x}"}

    async def big(x: int) -> dict[str, Any]:
        return {"o0": f"big {x}"}

    async def other(x: int) -> dict[str, Any]:
        return {"o0": f"other {x}"}

    lt = engine.Comparison("LT", engine.Operand(var="x"), engine.Operand(value=10))
    between = engine.Conjunction(
        "AND",
        engine.Comparison("GTE", engine.Operand(var="x"), engine.Operand(value=10)),
        engine.Comparison("LT", engine.Operand(var="x"), engine.Operand(value=100)),
    )
    branch = engine.Branch(
        cases=(
            (lt, task_node("t-small", small, x=Ref("", "x"))),
            (between, task_node("t-big", big, x=Ref("", "x"))),
        ),
        else_node=None if else_error else task_node("t-other", other, x=Ref("", "x")),
        else_error=else_error,
    )
    return graph(engine.Node("b", branch, {"x": Ref("", "x")}), outputs={"o0": Ref("b", "o0")})


@pytest.mark.parametrize(
    ("x", "expected", "taken"),
    [(3, "small 3", "t-small"), (50, "big 50", "t-big"), (500, "other 500", "t-other")],
)
async def test_branch_runs_the_first_true_case_and_skips_the_others(
    x: int, expected: str, taken: str
) -> None:
    runner, recorder, _ = make_engine()
    assert await runner.run_graph(branch_graph(), {"x": x}) == {"o0": expected}
    children = {r.unique_id: r for r in recorder.nodes.values() if r.parent == "b"}
    assert set(children) == {"b-0-t-small", "b-0-t-big", "b-0-t-other"}
    for unique_id, record in children.items():
        want = Phase.SUCCEEDED if unique_id == f"b-0-{taken}" else Phase.SKIPPED
        assert record.phase == want, unique_id
    assert recorder.nodes["b"].outputs == {"o0": expected}


async def test_branch_else_fail_fails_with_the_message() -> None:
    runner, recorder, _ = make_engine()
    with pytest.raises(engine.NodeFailed, match="x is far too big") as failed:
        await runner.run_graph(branch_graph(else_error="x is far too big"), {"x": 500})
    assert failed.value.failure.kind == "USER"
    assert recorder.nodes["b"].phase == Phase.FAILED


async def test_branch_comparing_different_types_fails_without_coercion() -> None:
    runner, _, _ = make_engine()
    with pytest.raises(engine.NodeFailed, match="different primitives types"):
        await runner.run_graph(branch_graph(), {"x": 3.5})


async def test_failure_node_runs_with_inputs_and_error_and_the_graph_still_fails() -> None:
    seen: list[dict[str, Any]] = []

    async def handler(x: int, err: Any) -> dict[str, Any]:
        seen.append({"x": x, "err": err})
        return {}

    runner, recorder, _ = make_engine()
    g = engine.Graph(
        (task_node("n0", boom, x=Ref("", "x")),),
        {},
        failure_node=task_node("efn", handler, x=Ref("", "x")),
        failure_error_input="err",
    )
    with pytest.raises(engine.NodeFailed, match="boom 4"):
        await runner.run_graph(g, {"x": 4})
    assert seen == [{"x": 4, "err": {"message": "boom 4", "failed_node_id": "efn"}}]
    assert recorder.nodes["efn"].phase == Phase.SUCCEEDED


async def test_sleep_gate_succeeds_without_outputs() -> None:
    runner, recorder, _ = make_engine()
    g = graph(
        engine.Node("sleep", engine.Sleep(0.01)),
        task_node("n1", double, ("sleep",), x=2),
        outputs={"o0": Ref("n1", "o0")},
    )
    assert await runner.run_graph(g, {}) == {"o0": 4}
    assert recorder.nodes["sleep"].phases == [Phase.QUEUED, Phase.RUNNING, Phase.SUCCEEDED]


async def test_array_maps_lists_broadcasts_scalars_and_keeps_order() -> None:
    async def scale(x: int, factor: int) -> dict[str, Any]:
        await anyio.sleep(0.01 * (5 - x))  # later indices finish first
        return {"o0": x * factor}

    runner, recorder, _ = make_engine()
    array = engine.ArrayMap(engine.Node("t", engine.TaskCall(scale, "scale")), output_names=("o0",))
    g = graph(engine.Node("map", array, {"x": [1, 2, 3, 4], "factor": 10}), outputs={"o0": Ref("map", "o0")})
    assert await runner.run_graph(g, {}) == {"o0": [10, 20, 30, 40]}
    assert [r.unique_id for r in recorder.nodes.values() if r.parent == "map"] == [
        f"map-0-n{i}" for i in range(4)
    ]
    assert recorder.nodes["map-0-n2"].inputs == {"x": 3, "factor": 10}


async def test_array_tolerates_failures_down_to_min_success_ratio() -> None:
    async def odd_fails(x: int) -> dict[str, Any]:
        if x == 3:
            raise ValueError("three")
        return {"o0": x}

    runner, recorder, _ = make_engine()
    array = engine.ArrayMap(
        engine.Node("t", engine.TaskCall(odd_fails, "odd_fails")), min_success_ratio=0.5, output_names=("o0",)
    )
    g = graph(engine.Node("map", array, {"x": [1, 2, 3, 4]}), outputs={"o0": Ref("map", "o0")})
    assert await runner.run_graph(g, {}) == {"o0": [1, 2, None, 4]}
    assert recorder.nodes["map-0-n2"].phase == Phase.FAILED

    runner, _, _ = make_engine()
    strict = engine.ArrayMap(engine.Node("t", engine.TaskCall(odd_fails, "odd_fails")), output_names=("o0",))
    with pytest.raises(engine.NodeFailed, match="three"):
        await runner.run_graph(graph(engine.Node("map", strict, {"x": [1, 3]})), {})


async def test_array_needing_more_successes_than_items_fails_before_running_any() -> None:
    runner, recorder, launcher = make_engine()
    array = engine.ArrayMap(engine.Node("t", engine.TaskCall(double, "double")), min_successes=5)
    with pytest.raises(engine.NodeFailed, match="needs 5 successful items but has only 3") as failed:
        await runner.run_graph(graph(engine.Node("map", array, {"x": [1, 2, 3]})), {})
    assert failed.value.failure.kind == "USER"
    assert launcher.events == []
    assert recorder.nodes["map"].phase == Phase.FAILED


async def test_array_failure_summary_quotes_the_first_items_shortened() -> None:
    async def loud_failure(x: int) -> dict[str, Any]:
        raise ValueError("Traceback (most recent call last):\n" + "  a frame\n" * 500 + f"item {x} " * 100)

    runner, _, _ = make_engine()
    # min_successes=1: every item runs before the node gives up
    strict = engine.ArrayMap(engine.Node("t", engine.TaskCall(loud_failure, "loud_failure")), min_successes=1)
    with pytest.raises(engine.NodeFailed) as failed:
        await runner.run_graph(graph(engine.Node("map", strict, {"x": list(range(25))})), {})
    message = failed.value.failure.message
    assert message.startswith("25 of 25 array items failed, at least 1 must succeed: [0] …")
    assert message.endswith("and 15 more")
    assert "[9] …" in message and "item 9" in message and "[10]" not in message and "item 10" not in message
    assert len(message) < 10 * 400


async def test_array_retries_each_index_on_its_own() -> None:
    tries: dict[int, int] = {}

    async def once_flaky(x: int) -> dict[str, Any]:
        tries[x] = tries.get(x, 0) + 1
        if x == 2 and tries[x] == 1:
            raise Recoverable("first try of 2")
        return {"o0": x}

    runner, recorder, _ = make_engine()
    array = engine.ArrayMap(
        engine.Node("t", engine.TaskCall(once_flaky, "once_flaky", retries=1)), output_names=("o0",)
    )
    g = graph(engine.Node("map", array, {"x": [1, 2]}), outputs={"o0": Ref("map", "o0")})
    assert await runner.run_graph(g, {}) == {"o0": [1, 2]}
    assert tries == {1: 1, 2: 2}
    assert len(recorder.nodes["map-0-n1"].attempts) == 2


async def test_array_with_different_list_lengths_fails() -> None:
    runner, _, _ = make_engine()
    array = engine.ArrayMap(engine.Node("t", engine.TaskCall(add, "add")), output_names=("o0",))
    with pytest.raises(engine.NodeFailed, match="different lengths"):
        await runner.run_graph(graph(engine.Node("map", array, {"a": [1, 2], "b": [1]})), {})


async def test_cache_hit_skips_the_task_and_overwrite_recomputes() -> None:
    calls: list[int] = []

    async def counted(x: int) -> dict[str, Any]:
        calls.append(x)
        return {"o0": len(calls)}

    catalog = Catalog()
    node = engine.Node("n0", engine.TaskCall(counted, "counted", cache=True), {"x": 1})
    g = graph(node, outputs={"o0": Ref("n0", "o0")})
    statuses = []
    for overwrite in (False, False, True):
        runner, recorder, _ = make_engine(catalog=catalog, overwrite_cache=overwrite)
        outputs = await runner.run_graph(g, {})
        statuses.append((outputs["o0"], recorder.nodes["n0"].cache))
    assert statuses == [
        (1, engine.CacheStatus.CACHE_POPULATED),
        (1, engine.CacheStatus.CACHE_HIT),
        (2, engine.CacheStatus.CACHE_POPULATED),
    ]
    runner, _, _ = make_engine(catalog=catalog)
    assert (await runner.run_graph(g, {}))["o0"] == 2  # the overwritten value is what is cached now


async def test_cache_serialize_computes_each_key_once() -> None:
    calls: list[int] = []

    async def slow_counted(x: int) -> dict[str, Any]:
        calls.append(x)
        await anyio.sleep(0.05)
        return {"o0": x * 10}

    catalog = Catalog()
    call = engine.TaskCall(slow_counted, "slow_counted", cache=True, cache_serialize=True)
    g = graph(engine.Node("a", call, {"x": 1}), engine.Node("b", call, {"x": 1}))
    runner, recorder, _ = make_engine(catalog=catalog)
    await runner.run_graph(g, {})
    assert calls == [1]
    assert sorted(r.cache.name for r in recorder.nodes.values() if r.cache) == [
        "CACHE_HIT",
        "CACHE_POPULATED",
    ]


async def test_the_cache_key_is_computed_once_per_node() -> None:
    catalog = Catalog()
    call = engine.TaskCall(double, "double", cache=True, cache_serialize=True)
    runner, recorder, _ = make_engine(catalog=catalog)
    await runner.run_graph(graph(engine.Node("a", call, {"x": 1}), engine.Node("b", call, {"x": 2})), {})
    # miss, then reservation, then store: one key per node all the same
    assert sorted(catalog.keys) == [("double", (("x", 1),)), ("double", (("x", 2),))]
    assert recorder.nodes["a"].cache_key == ("double", (("x", 1),))  # the recorder gets it too


async def test_a_cache_write_failure_keeps_the_outputs_and_reports_put_failure() -> None:
    catalog = Catalog(fail_store=True)
    node = engine.Node("n0", engine.TaskCall(double, "double", cache=True), {"x": 4})
    runner, recorder, _ = make_engine(catalog=catalog)
    assert await runner.run_graph(graph(node, outputs={"o": Ref("n0", "o0")}), {}) == {"o": 8}
    record = recorder.nodes["n0"]
    assert (record.phase, record.cache) == (Phase.SUCCEEDED, engine.CacheStatus.CACHE_PUT_FAILURE)


async def test_sub_workflow_nodes_are_children_of_their_node() -> None:
    runner, recorder, _ = make_engine()
    inner = graph(task_node("n0", double, x=Ref("", "x")), outputs={"y": Ref("n0", "o0")})
    g = graph(engine.Node("sub", engine.SubWorkflow(inner), {"x": 5}), outputs={"o0": Ref("sub", "y")})
    assert await runner.run_graph(g, {}) == {"o0": 10}
    assert recorder.nodes["sub-0-n0"].parent == "sub"


async def test_a_task_that_returns_a_graph_runs_it_as_its_children() -> None:
    class DynamicLauncher(Launcher):
        async def run_attempt(self, call: engine.TaskCall, inputs: Any, handle: Any, **kw: Any) -> Any:
            if call.name != "expand":
                return await super().run_attempt(call, inputs, handle, **kw)
            children = tuple(task_node(f"dn{i}", double, x=i) for i in range(inputs["n"]))
            outputs = {"o0": [Ref(f"dn{i}", "o0") for i in range(inputs["n"])]}
            return engine.AttemptResult(graph=engine.Graph(children, outputs))

    class ListValues(Values):
        def resolve(self, bindings: Any, results: Any, where: str) -> dict[str, Any]:
            resolved = {}
            for name, value in (bindings or {}).items():
                resolved[name] = (
                    [resolve(item, results) for item in value]
                    if isinstance(value, list)
                    else resolve(value, results)
                )
            return resolved

    recorder = engine.MemoryRecorder()
    runner = engine.Engine(values=ListValues(), recorder=recorder, launcher=DynamicLauncher())
    g = graph(engine.Node("d", engine.TaskCall(None, "expand"), {"n": 3}), outputs={"o0": Ref("d", "o0")})
    assert await runner.run_graph(g, {}) == {"o0": [0, 2, 4]}
    assert recorder.nodes["d"].dynamic
    assert [r.unique_id for r in recorder.nodes.values() if r.parent == "d"] == [
        "d-0-dn0",
        "d-0-dn1",
        "d-0-dn2",
    ]


class Signals:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    async def wait(self, gate: engine.WaitForSignal, handle: Any) -> Any:
        if gate.signal_id not in self.values:
            await anyio.sleep_forever()
        return self.values[gate.signal_id]


@pytest.mark.parametrize(("answer", "expected"), [(True, {"o0": 5}), (False, "reject signal")])
async def test_approve_gate_passes_its_inputs_on_or_fails(answer: bool, expected: Any) -> None:
    runner, _, _ = make_engine(signals=Signals({"ok": answer}))
    g = graph(
        engine.Node("gate", engine.WaitForSignal("approve", "ok"), {"o0": 5}),
        outputs={"o0": Ref("gate", "o0")},
    )
    if isinstance(expected, dict):
        assert await runner.run_graph(g, {}) == expected
    else:
        with pytest.raises(engine.NodeFailed, match=expected):
            await runner.run_graph(g, {})


async def test_signal_gate_outputs_the_value_and_times_out_without_one() -> None:
    runner, _, _ = make_engine(signals=Signals({"factor": 7}))
    gate = engine.WaitForSignal("signal", "factor", output_name="o0")
    g = graph(engine.Node("gate", gate), outputs={"o0": Ref("gate", "o0")})
    assert await runner.run_graph(g, {}) == {"o0": 7}
    runner, recorder, _ = make_engine(signals=Signals({}))
    waiting = engine.WaitForSignal("signal", "factor", timeout=0.01)
    with pytest.raises(engine.NodeFailed, match="got no signal"):
        await runner.run_graph(graph(engine.Node("gate", waiting)), {})
    assert recorder.nodes["gate"].phase == Phase.TIMED_OUT


async def test_recoverable_system_failures_have_their_own_budget_of_three_retries() -> None:
    class SystemFailing(Launcher):
        async def run_attempt(self, call: engine.TaskCall, inputs: Any, handle: Any, **kw: Any) -> Any:
            self.events.append(("start", handle.unique_id))
            return engine.AttemptResult(
                failure=engine.Failure("SYSTEM:LoadFailed", "no module", "SYSTEM", True)
            )

    recorder = engine.MemoryRecorder()
    launcher = SystemFailing()
    runner = engine.Engine(values=Values(), recorder=recorder, launcher=launcher)
    with pytest.raises(engine.NodeFailed, match="no module"):
        await runner.run_graph(graph(engine.Node("n0", engine.TaskCall(None, "t", retries=0), {})), {})
    assert len(launcher.events) == 4  # the first attempt and 3 system retries, whatever `retries` says


async def test_without_fail_fast_independent_nodes_finish_and_downstream_is_skipped() -> None:
    runner, recorder, _ = make_engine()
    g = graph(
        task_node("bad", boom, x=1),
        task_node("fine", double, x=2),
        task_node("after", double, ("bad",), x=Ref("bad", "o0")),
        task_node("later", double, ("after",), x=Ref("after", "o0")),
        fail_fast=False,
    )
    with pytest.raises(engine.NodeFailed, match="boom 1"):
        await runner.run_graph(g, {})
    phases = {node_id: record.phase for node_id, record in recorder.nodes.items()}
    assert phases == {
        "bad": Phase.FAILED,
        "fine": Phase.SUCCEEDED,
        "after": Phase.SKIPPED,
        "later": Phase.SKIPPED,
    }
