"""Serialization: specs the official flyteidl reads, container args `asyncrun-execute` accepts, every kind of
binding, and a version that follows the content and nothing else."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2
from google.protobuf import json_format

from asyncrun._exceptions import DefinitionError, UsageError
from asyncrun._execute import parse_args
from asyncrun._proto.flyteidl import admin, core
from asyncrun._version import __version__
from asyncrun.client._package import build_package, select_files
from asyncrun.client._serialize import (
    DEFAULT_IMAGE,
    RegistrationPlan,
    SerializationSettings,
    container_args,
    launch_plan_spec,
    plan_registration,
    task_template,
    workflow_template,
)
from asyncrun.sdk._graph import Node, Promise
from asyncrun.sdk._literals import literal_map, python_values
from asyncrun.sdk._loader import load_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXECUTE = str(Path(sys.executable).parent / "asyncrun-execute")
MD5 = bytes(range(16))

FLOW = """
from typing import Optional

from asyncrun import LaunchPlan, task, workflow


@task(
    retries=3,
    cache=True,
    cache_version="v2",
    timeout=90,
    environment={"B": "2", "A": "1"},
    container_image="gpu",
    interruptible=True,
)
def heavy(x: int, note: Optional[str] = None) -> int:
    \"\"\"Do heavy things.

    Args:
        x: the input.
    \"\"\"
    return x * 2


@task
def total(values: list[int], weights: dict[str, int], scale: float = 1.0) -> float:
    return scale * sum(values) * sum(weights.values())


@workflow
def inner(a: int = 1) -> int:
    return heavy(x=a)


inner_lp = LaunchPlan.create("inner_fixed", inner, fixed_inputs={"a": 5})


@workflow
def outer(n: int, tag: Optional[str], label: str = "x") -> tuple[float, int]:
    \"\"\"The outer workflow.\"\"\"
    h = heavy(x=n, note=tag)
    i = inner(a=h)
    j = inner()
    k = inner_lp()
    t = total(values=[1, 2], weights={"z": 1, "y": 2}, scale=2.0)
    return t, h


outer_lp = LaunchPlan.create(
    "outer_nightly", outer, default_inputs={"label": "nightly"}, fixed_inputs={"n": 7}
)
"""


@pytest.fixture
def load(tmp_path: Path, request: pytest.FixtureRequest):
    """Write `source` as a module of a project folder and import it with the loader; undone afterwards."""
    loaded: list[str] = []
    path_before = list(sys.path)
    default_name = "flow_" + re.sub(r"\W", "_", request.node.name)[:40]

    def load_source(source: str, folder: Path | None = None, name: str = default_name) -> ModuleType:
        target = (folder or tmp_path / "proj") / f"{name}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(source))
        loaded.append(name)
        return load_file(target).module

    yield load_source
    for name in loaded:
        sys.modules.pop(name, None)
    sys.path[:] = path_before


SETTINGS = SerializationSettings(
    project="flytesnacks",
    domain="development",
    image="ghcr.io/me/app:1",
    distribution="/blobs/p/d/ABC/fastabc.tar.gz",
    images={"gpu": "ghcr.io/me/gpu:2"},
)

UPSTREAM = {admin.TaskSpec: task_pb2.TaskSpec, admin.WorkflowSpec: workflow_pb2.WorkflowSpec}
UPSTREAM[admin.LaunchPlanSpec] = launch_plan_pb2.LaunchPlanSpec


def upstream(spec: Any) -> Any:
    """Decode our bytes with the official flyteidl, and check it understood every field we set."""
    decoded = UPSTREAM[type(spec)].FromString(bytes(spec))
    assert json_format.MessageToDict(decoded) == spec.to_dict()
    return decoded


def entries(plan: RegistrationPlan) -> list[tuple[core.Identifier, Any]]:
    return [*plan.tasks, *plan.workflows, *plan.launch_plans]


# ---------------------------------------------------------------------------------------------
# Wire compatibility


def test_every_spec_of_a_plan_decodes_with_the_official_flyteidl(load) -> None:
    mod = load(FLOW)
    for entity in (mod.outer, mod.outer_lp, mod.heavy):
        plan = plan_registration(entity, SETTINGS, code_md5=MD5)
        for ident, spec in entries(plan):
            decoded = upstream(spec)
            assert ident.version == plan.version
            if isinstance(spec, admin.TaskSpec | admin.WorkflowSpec):
                assert decoded.template.id.name == ident.name
                assert decoded.template.id.version == plan.version


def test_task_template_as_flyteidl_sees_it(load) -> None:
    mod = load(FLOW)
    settings = SerializationSettings(
        project="p",
        domain="d",
        images={"gpu": "ghcr.io/me/gpu:2"},
        resource_requests={"mem": "2Gi", "cpu": "1"},
        resource_limits={"ephemeral_storage": "10Gi", "GPU": "1"},
    )
    template = upstream(admin.TaskSpec(template=task_template(mod.heavy, settings, "v1"))).template
    assert (template.id.resource_type, template.id.name, template.id.version) == (
        1,
        f"{mod.__name__}.heavy",
        "v1",
    )
    assert template.type == "python-task"
    meta = template.metadata
    assert (meta.runtime.type, meta.runtime.version, meta.runtime.flavor) == (1, __version__, "asyncrun")
    assert meta.retries.retries == 3 and meta.timeout.seconds == 90
    assert meta.discoverable and meta.discovery_version == "v2"
    assert meta.HasField("interruptible") and meta.interruptible
    assert template.container.image == "ghcr.io/me/gpu:2"  # the task's named image, resolved
    assert [(e.key, e.value) for e in template.container.env] == [("A", "1"), ("B", "2")]
    assert [(r.name, r.value) for r in template.container.resources.requests] == [(1, "1"), (3, "2Gi")]
    assert [(r.name, r.value) for r in template.container.resources.limits] == [(2, "1"), (5, "10Gi")]
    assert list(template.container.command) == []
    inputs = template.interface.inputs.variables
    assert inputs["x"].type.simple == 1 and inputs["x"].description == "the input."
    assert [v.structure.tag for v in inputs["note"].type.union_type.variants] == ["str", "none"]
    assert template.interface.outputs.variables["o0"].type.simple == 1


def test_a_plain_task_sets_no_cache_and_no_interruptible(load) -> None:
    mod = load(FLOW)
    meta = upstream(admin.TaskSpec(template=task_template(mod.total, SETTINGS, "v"))).template.metadata
    assert not meta.discoverable and meta.discovery_version == "" and meta.retries.retries == 0
    assert not meta.HasField("interruptible") and not meta.HasField("timeout")
    image = task_template(mod.total, SerializationSettings(project="p", domain="d"), "v").container
    assert image is not None and image.image == DEFAULT_IMAGE


def test_unknown_or_repeated_resources_are_usage_errors(load) -> None:
    mod = load(FLOW)
    with pytest.raises(UsageError, match="unknown resource 'disk'"):
        task_template(
            mod.total, SerializationSettings(project="p", domain="d", resource_limits={"disk": "1"}), "v"
        )
    twice = SerializationSettings(project="p", domain="d", resource_requests={"mem": "1Gi", "memory": "2Gi"})
    with pytest.raises(UsageError, match="twice"):
        task_template(mod.total, twice, "v")


# ---------------------------------------------------------------------------------------------
# The task process's command line


def test_container_args_are_exactly_the_execute_flags(load) -> None:
    mod = load(FLOW)
    args = container_args(mod.heavy, SETTINGS)
    assert args == [
        "asyncrun-execute",
        "--inputs",
        "{{.input}}",
        "--output-prefix",
        "{{.outputPrefix}}",
        "--raw-output-data-prefix",
        "{{.rawOutputDataPrefix}}",
        "--checkpoint-path",
        "{{.checkpointOutputPrefix}}",
        "--prev-checkpoint",
        "{{.prevCheckpointPrefix}}",
        "--distribution",
        "/blobs/p/d/ABC/fastabc.tar.gz",
        "--dest-dir",
        ".",
        "--task-module",
        mod.__name__,
        "--task-name",
        "heavy",
    ]
    parsed = parse_args(args[1:])
    assert (parsed.task_module, parsed.task_name, parsed.distribution) == (
        mod.__name__,
        "heavy",
        SETTINGS.distribution,
    )
    no_code = SerializationSettings(project="p", domain="d", destination_dir="/app")
    args = container_args(mod.heavy, no_code)
    assert "--distribution" not in args and args[args.index("--dest-dir") + 1] == "/app"
    assert parse_args(args[1:]).distribution == ""


def test_registered_args_run_the_task_from_the_built_package(load, tmp_path: Path) -> None:
    mod = load(FLOW)
    root = tmp_path / "proj"
    package = build_package(root, select_files(root, "auto", [mod]), tmp_path / "dist")
    settings = SerializationSettings(project="p", domain="d", distribution=str(package.path))
    template = task_template(mod.heavy, settings, "v")
    assert template.container is not None
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    (work / "inputs.pb").write_bytes(bytes(literal_map({"x": 21}, {"x": int})))
    rendered = {
        "{{.input}}": str(work / "inputs.pb"),
        "{{.outputPrefix}}": str(out),
        "{{.rawOutputDataPrefix}}": str(tmp_path / "raw"),
        "{{.checkpointOutputPrefix}}": str(tmp_path / "ckpt"),
        "{{.prevCheckpointPrefix}}": "",
    }
    args = [rendered.get(a, a) for a in template.container.args]
    assert args[0] == "asyncrun-execute"
    proc = subprocess.run([EXECUTE, *args[1:]], cwd=work, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert not (out / "error.pb").exists(), (out / "error.pb").read_bytes()
    outputs = core.LiteralMap.parse((out / "outputs.pb").read_bytes())
    assert python_values(outputs, {"o0": int}) == {"o0": 42}


# ---------------------------------------------------------------------------------------------
# Workflows and bindings


def _bindings(node: core.Node) -> dict[str, core.BindingData]:
    return {b.var: b.binding for b in node.inputs if b.binding is not None}


def _promise(node_id: str, var: str) -> core.BindingData:
    return core.BindingData(promise=core.OutputReference(node_id=node_id, var=var))


def _int(value: int) -> core.BindingData:
    return core.BindingData(scalar=core.Scalar(primitive=core.Primitive(integer=value)))


def test_workflow_nodes_and_bindings_of_every_kind(load) -> None:
    mod = load(FLOW)
    # The SDK's builder refuses promises nested in a list or dict today (it checks each against the
    # container's type), so add such a call the way a builder would record it.
    mod.outer.nodes.append(
        Node(
            "n5",
            mod.total,
            {
                "values": [Promise("n0", "o0", int), 3, Promise("n1", "o0", int)],
                "weights": {"b": Promise("n3", "o0", int), "a": Promise("n2", "o0", int)},
            },
            ["n0", "n1", "n3", "n2"],
        )
    )
    template, nested = workflow_template(mod.outer, SETTINGS, "v")
    upstream(admin.WorkflowSpec(template=template, sub_workflows=nested))
    m = mod.__name__
    nodes = {n.id: n for n in template.nodes}
    assert list(nodes) == ["n0", "n1", "n2", "n3", "n4", "n5"]

    n0 = nodes["n0"]  # heavy(x=n, note=tag): workflow inputs are promises of node ""
    assert _bindings(n0) == {"x": _promise("", "n"), "note": _promise("", "tag")}
    assert n0.task_node is not None and n0.task_node.reference_id == core.Identifier(
        resource_type=core.ResourceType.TASK,
        project="flytesnacks",
        domain="development",
        name=f"{m}.heavy",
        version="v",
    )
    assert n0.metadata == core.NodeMetadata(
        name="heavy", timeout=timedelta(seconds=90), retries=core.RetryStrategy(retries=3), interruptible=True
    )

    n1, n2 = nodes["n1"], nodes["n2"]  # sub-workflow calls: one bound to a promise, one defaulted
    assert n1.workflow_node is not None and n1.workflow_node.sub_workflow_ref is not None
    assert n1.workflow_node.sub_workflow_ref.name == f"{m}.inner"
    assert n1.workflow_node.sub_workflow_ref.resource_type == core.ResourceType.WORKFLOW
    assert _bindings(n1) == {"a": _promise("n0", "o0")} and n1.upstream_node_ids == ["n0"]
    assert _bindings(n2) == {"a": _int(1)} and n2.upstream_node_ids == []

    n3 = nodes["n3"]  # a launch plan call: its fixed input is not bound, and there are no defaults to fill
    assert n3.workflow_node is not None and n3.workflow_node.launchplan_ref is not None
    assert n3.workflow_node.launchplan_ref.name == "inner_fixed"
    assert n3.workflow_node.launchplan_ref.resource_type == core.ResourceType.LAUNCH_PLAN
    assert n3.inputs == [] and n3.metadata is not None and n3.metadata.name == "inner_fixed"

    n4 = _bindings(nodes["n4"])  # constants whose literal is a collection or map: bindings of scalars
    assert n4["values"] == core.BindingData(
        collection=core.BindingDataCollection(bindings=[_int(1), _int(2)])
    )
    assert n4["weights"] == core.BindingData(map=core.BindingDataMap(bindings={"y": _int(2), "z": _int(1)}))
    assert n4["scale"].scalar == core.Scalar(primitive=core.Primitive(float_value=2.0))

    n5 = _bindings(nodes["n5"])  # a list and a dict holding promises and constants; a default filled in
    assert n5["values"] == core.BindingData(
        collection=core.BindingDataCollection(bindings=[_promise("n0", "o0"), _int(3), _promise("n1", "o0")])
    )
    weights = n5["weights"].map
    assert weights is not None and list(weights.bindings) == ["a", "b"]  # sorted: canonical bytes
    assert weights.bindings == {"a": _promise("n2", "o0"), "b": _promise("n3", "o0")}
    assert n5["scale"].scalar == core.Scalar(primitive=core.Primitive(float_value=1.0))
    assert nodes["n5"].upstream_node_ids == ["n0", "n1", "n3", "n2"]

    assert [(b.var, b.binding) for b in template.outputs] == [
        ("o0", _promise("n4", "o0")),
        ("o1", _promise("n0", "o0")),
    ]
    assert template.metadata == core.WorkflowMetadata()
    assert template.metadata_defaults == core.WorkflowMetadataDefaults()
    assert [t.id.name for t in nested if t.id is not None] == [f"{m}.inner"]


def test_promises_in_a_container_need_a_container_type(load) -> None:
    mod = load(FLOW)
    mod.outer.nodes.append(Node("n5", mod.heavy, {"x": [Promise("n0", "o0", int)]}, ["n0"]))
    with pytest.raises(
        DefinitionError, match="a list of promises cannot feed an input of type <class 'int'>"
    ):
        workflow_template(mod.outer, SETTINGS, "v")


def test_an_omitted_optional_input_is_bound_to_none(load) -> None:
    mod = load(FLOW)
    template, nested = workflow_template(mod.inner, SETTINGS, "v")
    assert nested == []
    note = _bindings(template.nodes[0])["note"]
    assert note.scalar is not None and note.scalar.union is not None
    assert note.scalar.union.value == core.Literal(scalar=core.Scalar(none_type=core.Void()))


def test_sub_workflows_are_sent_transitively(load) -> None:
    mod = load(
        FLOW
        + """
@workflow
def top(n: int) -> tuple[float, int]:
    return outer(n=n, tag=None)
"""
    )
    _, nested = workflow_template(mod.top, SETTINGS, "v")
    assert [t.id.name for t in nested if t.id is not None] == [
        f"{mod.__name__}.inner",
        f"{mod.__name__}.outer",
    ]


def test_a_constant_of_the_wrong_type_is_a_definition_error(load) -> None:
    mod = load(
        """
        from asyncrun import task, workflow

        @task
        def double(x: int) -> int:
            return 2 * x

        @workflow
        def bad() -> int:
            return double(x="seven")
        """
    )
    with pytest.raises(DefinitionError, match=r"bad node n0 input x"):
        workflow_template(mod.bad, SETTINGS, "v")


# ---------------------------------------------------------------------------------------------
# Launch plans


def test_default_launch_plan_parameters(load) -> None:
    mod = load(FLOW)
    wf_id = core.Identifier(
        resource_type=core.ResourceType.WORKFLOW, project="p", domain="d", name="w", version="v"
    )
    spec = upstream(launch_plan_spec(mod.outer, wf_id, SETTINGS))
    params = spec.default_inputs.parameters
    assert params["n"].required and not params["n"].HasField("default")
    assert params["label"].default.scalar.primitive.string_value == "x"
    assert params["tag"].default.scalar.union.value.scalar.HasField("none_type")  # Optional: None
    assert params["tag"].var.type.HasField("union_type")
    assert len(spec.fixed_inputs.literals) == 0
    assert spec.workflow_id.name == "w"
    for name in ("entity_metadata", "fixed_inputs", "labels", "annotations", "raw_output_data_config"):
        assert spec.HasField(name), name  # sent empty, as flytekit sends them


def test_launch_plan_defaults_and_fixed_inputs(load) -> None:
    mod = load(FLOW)
    wf_id = core.Identifier(resource_type=core.ResourceType.WORKFLOW, name="w")
    spec = upstream(launch_plan_spec(mod.outer_lp, wf_id, SETTINGS))
    assert sorted(spec.default_inputs.parameters) == ["label", "tag"]  # fixed `n` is not a parameter
    assert spec.default_inputs.parameters["label"].default.scalar.primitive.string_value == "nightly"
    assert dict(spec.fixed_inputs.literals)["n"].scalar.primitive.integer == 7


# ---------------------------------------------------------------------------------------------
# Registration plans


def test_plan_for_a_workflow_registers_dependencies_first(load) -> None:
    mod = load(FLOW)
    m = mod.__name__
    plan = plan_registration(mod.outer, SETTINGS, code_md5=MD5)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", plan.version)
    assert [i.name for i, _ in plan.tasks] == [f"{m}.heavy", f"{m}.total"]
    assert [i.name for i, _ in plan.workflows] == [f"{m}.inner", f"{m}.outer"]
    assert [i.name for i, _ in plan.launch_plans] == ["inner_fixed", f"{m}.outer"]
    # A workflow calling a launch plan needs it to exist, and a launch plan its workflow.
    assert [(i.resource_type, i.name) for i, _ in plan.ordered] == [
        (core.ResourceType.WORKFLOW, f"{m}.inner"),
        (core.ResourceType.LAUNCH_PLAN, "inner_fixed"),
        (core.ResourceType.WORKFLOW, f"{m}.outer"),
        (core.ResourceType.LAUNCH_PLAN, f"{m}.outer"),
    ]
    assert plan.target == plan.launch_plans[-1][0]
    assert plan.target.resource_type == core.ResourceType.LAUNCH_PLAN
    for ident, spec in entries(plan):
        assert (ident.project, ident.domain, ident.version) == ("flytesnacks", "development", plan.version)
        if isinstance(spec, admin.LaunchPlanSpec):
            assert spec.workflow_id is not None and spec.workflow_id.version == plan.version
    wf_spec = {i.name: s for i, s in plan.workflows}[f"{m}.outer"]
    assert wf_spec.description is not None and wf_spec.description.short_description == "The outer workflow."


def test_plan_for_a_launch_plan_skips_the_default_one(load) -> None:
    mod = load(FLOW)
    plan = plan_registration(mod.outer_lp, SETTINGS, code_md5=MD5)
    assert [i.name for i, _ in plan.launch_plans] == ["inner_fixed", "outer_nightly"]
    assert plan.target.name == "outer_nightly" and plan.target.resource_type == core.ResourceType.LAUNCH_PLAN
    assert plan.ordered[-1][0] == plan.target


def test_plan_for_a_task_is_just_the_task(load) -> None:
    mod = load(FLOW)
    plan = plan_registration(mod.heavy, SETTINGS, code_md5=MD5)
    assert [i.name for i, _ in plan.tasks] == [f"{mod.__name__}.heavy"]
    assert plan.workflows == [] and plan.launch_plans == [] and plan.ordered == []
    assert plan.target == plan.tasks[0][0] and plan.target.resource_type == core.ResourceType.TASK


def test_version_is_stable_and_ignores_where_the_checkout_lives(load, tmp_path: Path) -> None:
    versions, digests = [], []
    for folder in (tmp_path / "a", tmp_path / "elsewhere" / "b"):
        mod = load(FLOW, folder=folder, name="flow_moved")
        package = build_package(folder, select_files(folder, "auto", [mod]), tmp_path / "dist")
        digests.append(package.md5)
        versions.append(plan_registration(mod.outer, SETTINGS, code_md5=package.md5).version)
        versions.append(plan_registration(mod.outer, SETTINGS, code_md5=package.md5).version)
    assert digests[0] == digests[1]
    assert len(set(versions)) == 1


def test_version_follows_code_defaults_and_settings(load, tmp_path: Path) -> None:
    mod = load(FLOW, folder=tmp_path / "one", name="flow_versions")
    base = plan_registration(mod.outer, SETTINGS, code_md5=MD5).version
    other_code = plan_registration(mod.outer, SETTINGS, code_md5=bytes(16)).version
    other_image = SerializationSettings(**{**SETTINGS.__dict__, "image": "ghcr.io/me/app:2"})
    image = plan_registration(mod.outer, other_image, code_md5=MD5).version
    other_dist = SerializationSettings(**{**SETTINGS.__dict__, "distribution": "/blobs/other.tar.gz"})
    dist = plan_registration(mod.outer, other_dist, code_md5=MD5).version
    mod = load(
        FLOW.replace('label: str = "x"', 'label: str = "y"'), folder=tmp_path / "two", name="flow_versions"
    )
    default = plan_registration(mod.outer, SETTINGS, code_md5=MD5).version
    assert len({base, other_code, image, dist, default}) == 5


def test_dict_order_in_the_source_does_not_change_the_version(load, tmp_path: Path) -> None:
    mod = load(FLOW, folder=tmp_path / "one", name="flow_order")
    first = plan_registration(mod.outer, SETTINGS, code_md5=MD5)
    swapped = FLOW.replace('weights={"z": 1, "y": 2}', 'weights={"y": 2, "z": 1}')
    swapped = swapped.replace('environment={"B": "2", "A": "1"}', 'environment={"A": "1", "B": "2"}')
    assert swapped != FLOW
    mod = load(swapped, folder=tmp_path / "two", name="flow_order")
    second = plan_registration(mod.outer, SETTINGS, code_md5=MD5)
    assert first.version == second.version
    assert [bytes(s) for _, s in entries(first)] == [bytes(s) for _, s in entries(second)]


def test_two_entities_with_one_name_are_refused(load) -> None:
    mod = load(
        """
        from asyncrun import task, workflow

        def make():
            @task
            def dup(x: int) -> int:
                return x
            return dup

        dup = make()
        dup_again = make()

        @workflow
        def both(x: int) -> int:
            return dup_again(x=dup(x=x))
        """
    )
    with pytest.raises(DefinitionError, match="two different tasks are named"):
        plan_registration(mod.both, SETTINGS, code_md5=MD5)


def test_a_task_the_task_process_cannot_import_is_refused(load) -> None:
    mod = load(
        """
        from asyncrun import task, workflow

        def make():
            @task
            def hidden(x: int) -> int:
                return x
            return hidden

        @workflow
        def uses_hidden(x: int) -> int:
            return make()(x=x)
        """
    )
    with pytest.raises(DefinitionError, match="cannot run remotely"):
        plan_registration(mod.uses_hidden, SETTINGS, code_md5=MD5)


def test_a_launch_plan_named_like_the_default_one_is_refused(load) -> None:
    mod = load(
        """
        from asyncrun import LaunchPlan, task, workflow

        @task
        def one() -> int:
            return 1

        @workflow
        def base() -> int:
            return one()

        clash = LaunchPlan.create(__name__ + ".top", base)

        @workflow
        def top() -> int:
            return clash()
        """
    )
    with pytest.raises(DefinitionError, match="default launch plan"):
        plan_registration(mod.top, SETTINGS, code_md5=MD5)


@pytest.mark.parametrize("file", ["hello.py", "types_demo.py"])
def test_the_examples_serialize(file: str) -> None:
    loaded = load_file(EXAMPLES / file)
    entities = loaded.entities()
    assert entities
    for _, entity in entities:
        plan = plan_registration(entity, SETTINGS, code_md5=MD5)
        for _, spec in entries(plan):
            upstream(spec)
