"""Workflow compilation as FlyteAdmin does it, `.flytegen` entities, digests, and the literal type checks."""

from __future__ import annotations

import datetime

import pytest

from asyncrun._proto.flyteidl import admin, core
from asyncrun.sandbox._compiler import (
    CompileError,
    canonical_bytes,
    compile_workflow,
    content_digest,
    expected_launch_plan_inputs,
    flytegen_launch_plan_spec,
    flytegen_node_id,
    flytegen_workflow,
    id_key,
)
from asyncrun.sandbox._typecheck import literal_matches, types_castable

from .conftest import (
    INT,
    STR,
    bind,
    default_parameters,
    integer,
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

ADD = task_template(task_id("add"), inputs=variables(a=INT, b=INT), outputs=variables(o0=INT))
SHOUT = task_template(task_id("shout"), inputs=variables(s=STR), outputs=variables(o0=STR))
TASKS = {id_key(t.id): t for t in (ADD, SHOUT) if t.id}


def chain() -> core.WorkflowTemplate:
    return workflow_template(
        workflow_id("chain"),
        [
            task_node(
                "n0", task_id("add"), bind("a", promise("", "x")), bind("b", promise("start-node", "x"))
            ),
            task_node("n1", task_id("add"), bind("a", promise("n0", "o0")), bind("b", promise("", "x"))),
        ],
        inputs=variables(x=INT),
        outputs=variables(total=INT),
        output_bindings=[bind("total", promise("n1", "o0"))],
    )


def test_compilation_adds_start_and_end_nodes_rewrites_promises_and_connects_nodes() -> None:
    closure = compile_workflow(chain(), [], TASKS)
    assert closure.primary is not None and closure.primary.template is not None
    template = closure.primary.template
    assert [node.id for node in template.nodes] == ["start-node", "n0", "n1", "end-node"]
    promises = [
        b.binding.promise.node_id for n in template.nodes for b in n.inputs if b.binding and b.binding.promise
    ]
    assert promises == ["start-node", "start-node", "n0", "start-node", "n1"]
    assert template.nodes[-1].inputs[0].var == "total"
    connections = closure.primary.connections
    assert connections is not None
    assert {k: v.ids for k, v in connections.upstream.items()} == {
        "n0": ["start-node"],
        "n1": ["n0"],
        "end-node": ["n1"],
    }
    assert {k: v.ids for k, v in connections.downstream.items()} == {
        "start-node": ["n0"],
        "n0": ["n1"],
        "n1": ["end-node"],
    }


def test_the_closure_embeds_each_referenced_task_once_under_the_exact_reference() -> None:
    template = chain()
    # A reference without a resource type is normalized to TASK, so flytekit's equality check holds.
    assert template.nodes[1].task_node is not None and template.nodes[1].task_node.reference_id is not None
    template.nodes[1].task_node.reference_id.resource_type = core.ResourceType.UNSPECIFIED
    closure = compile_workflow(template, [], TASKS)
    assert [t.template.id for t in closure.tasks if t.template] == [task_id("add")]
    assert closure.primary is not None and closure.primary.template is not None
    references = [n.task_node.reference_id for n in closure.primary.template.nodes if n.task_node]
    assert references == [task_id("add"), task_id("add")]
    assert template.nodes[0].inputs[0].binding is not None
    # The input template is not modified.
    assert template.nodes[0].inputs[0].binding.promise == core.OutputReference(node_id="", var="x")


def test_sub_workflows_are_compiled_and_their_tasks_embedded() -> None:
    inner = workflow_template(
        workflow_id("inner"),
        [task_node("s0", task_id("shout"), bind("s", promise("", "s")))],
        inputs=variables(s=STR),
        outputs=variables(o0=STR),
        output_bindings=[bind("o0", promise("s0", "o0"))],
    )
    outer = workflow_template(
        workflow_id("outer"),
        [
            core.Node(
                id="w0",
                inputs=[bind("s", promise("", "s"))],
                workflow_node=core.WorkflowNode(sub_workflow_ref=workflow_id("inner")),
            )
        ],
        inputs=variables(s=STR),
        outputs=variables(o0=STR),
        output_bindings=[bind("o0", promise("w0", "o0"))],
    )
    closure = compile_workflow(outer, [inner], TASKS)
    assert [w.template.id for w in closure.sub_workflows if w.template] == [workflow_id("inner")]
    assert closure.sub_workflows[0].template is not None
    assert [n.id for n in closure.sub_workflows[0].template.nodes] == ["start-node", "s0", "end-node"]
    assert [t.template.id for t in closure.tasks if t.template] == [task_id("shout")]
    with pytest.raises(CompileError, match="not among the spec's sub_workflows"):
        compile_workflow(outer, [], TASKS)


def _broken(change: str) -> core.WorkflowTemplate:
    template = chain()
    nodes = template.nodes
    if change == "missing task":
        assert nodes[0].task_node is not None
        nodes[0].task_node.reference_id = task_id("add", "v9")
    elif change == "duplicate id":
        nodes[1].id = "n0"
    elif change == "reserved id":
        nodes[0].id = "start-node"
    elif change == "unknown upstream":
        nodes[1].upstream_node_ids = ["n7"]
    elif change == "unknown output":
        assert nodes[1].inputs[0].binding is not None and nodes[1].inputs[0].binding.promise is not None
        nodes[1].inputs[0].binding.promise.var = "o9"
    elif change == "unknown workflow input":
        assert nodes[0].inputs[0].binding is not None and nodes[0].inputs[0].binding.promise is not None
        nodes[0].inputs[0].binding.promise.var = "nope"
    elif change == "unbound input":
        nodes[0].inputs.pop()
    elif change == "extra input":
        nodes[0].inputs.append(bind("c", promise("", "x")))
    elif change == "cycle":
        assert nodes[0].inputs[0].binding is not None and nodes[0].inputs[0].binding.promise is not None
        nodes[0].inputs[0].binding.promise.node_id = "n1"
        nodes[0].inputs[0].binding.promise.var = "o0"
    elif change == "unbound output":
        template.outputs.clear()
    elif change == "no target":
        nodes[1].task_node = None

    return template


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing task", "task flytesnacks:development:add:v9, which is not registered"),
        ("duplicate id", "reserved or used twice"),
        ("reserved id", "reserved or used twice"),
        ("unknown upstream", "waits for node 'n7'"),
        ("unknown output", "reads 'o9', which is not an output of node 'n0'"),
        ("unknown workflow input", "reads 'nope', which is not an output of the workflow inputs"),
        ("unbound input", "does not bind its input 'b'"),
        ("extra input", "binds 'c', which is not an input"),
        ("cycle", "cycle between nodes n0, n1"),
        ("unbound output", "workflow output 'total' is not bound"),
        ("no target", r"has no target \(task, workflow, branch, gate or array\)"),
    ],
)
def test_invalid_workflows_do_not_compile(change: str, message: str) -> None:
    with pytest.raises(CompileError, match=message):
        compile_workflow(_broken(change), [], TASKS)


def test_an_optional_input_may_stay_unbound() -> None:
    optional = core.LiteralType(
        union_type=core.UnionType(variants=[INT, core.LiteralType(simple=core.SimpleType.NONE)])
    )
    task = task_template(task_id("opt"), inputs=variables(a=optional))
    template = workflow_template(workflow_id("w"), [task_node("n0", task_id("opt"))])
    assert compile_workflow(template, [], {id_key(task_id("opt")): task}).tasks


def test_flytegen_names_and_shape() -> None:
    assert flytegen_node_id("hello.say_hello") == "hellosayhello"
    assert flytegen_node_id("a." + "b" * 70) == "b" * 63
    task = task_template(
        task_id("hello.say_hello"), inputs=variables(name=STR), outputs=variables(o0=STR), retries=2
    )
    workflow = flytegen_workflow(task)
    assert workflow.id == workflow_id(".flytegen.hello.say_hello")
    (node,) = workflow.nodes
    assert node.id == "hellosayhello" and node.metadata is not None and node.metadata.retries is not None
    assert node.metadata.retries.retries == 2
    assert node.inputs[0].binding is not None and node.inputs[0].binding.promise == core.OutputReference(
        var="name"
    )
    assert workflow.outputs[0].binding is not None
    assert workflow.outputs[0].binding.promise == core.OutputReference(node_id="hellosayhello", var="o0")
    spec = flytegen_launch_plan_spec(workflow)
    assert spec.default_inputs is not None and spec.default_inputs.parameters["name"].required is True
    compiled = compile_workflow(workflow, [], {id_key(task_id("hello.say_hello")): task})
    assert [t.template.id for t in compiled.tasks if t.template] == [task_id("hello.say_hello")]


def test_canonical_bytes_ignore_map_order_but_not_content() -> None:
    one = core.TaskTemplate(
        config={"a": "1", "b": "2"}, interface=core.TypedInterface(inputs=variables(x=INT, y=STR))
    )
    two = core.TaskTemplate(
        config={"b": "2", "a": "1"}, interface=core.TypedInterface(inputs=variables(y=STR, x=INT))
    )
    assert bytes(one) != bytes(two)
    assert canonical_bytes(one) == canonical_bytes(two)
    assert content_digest(one) == content_digest(two)
    two.config["a"] = "3"
    assert content_digest(one) != content_digest(two)


def test_launch_plan_expected_inputs() -> None:
    inputs = variables(x=INT, y=STR, z=INT)
    spec = launch_plan_spec(
        workflow_id("w"), defaults=default_parameters(y=(STR, string("hi"))), fixed=literals(z=integer(1))
    )
    expected = expected_launch_plan_inputs(inputs, spec)
    assert sorted(expected.parameters) == ["x", "y"]
    assert expected.parameters["x"].required is True and expected.parameters["x"].var is not None
    assert expected.parameters["y"].default == string("hi")
    failures = {
        "unexpected default_input q": launch_plan_spec(
            workflow_id("w"), defaults=default_parameters(q=(INT, None))
        ),
        "invalid default_input wrong type y": launch_plan_spec(
            workflow_id("w"), defaults=default_parameters(y=(INT, integer(1)))
        ),
        "unexpected fixed_input q": launch_plan_spec(workflow_id("w"), fixed=literals(q=integer(1))),
        "invalid fixed_input wrong type z": launch_plan_spec(workflow_id("w"), fixed=literals(z=string("1"))),
    }
    for message, bad in failures.items():
        with pytest.raises(CompileError, match=message):
            expected_launch_plan_inputs(inputs, bad)


def _primitive(**value: object) -> core.Literal:
    return core.Literal(scalar=core.Scalar(primitive=core.Primitive(**value)))  # type: ignore[arg-type]


FLOAT = core.LiteralType(simple=core.SimpleType.FLOAT)
NONE = core.LiteralType(simple=core.SimpleType.NONE)
OPTIONAL_INT = core.LiteralType(union_type=core.UnionType(variants=[INT, NONE]))
FILE = core.LiteralType(blob=core.BlobType(format="", dimensionality=core.BlobTypeBlobDimensionality.SINGLE))
DIRECTORY = core.LiteralType(blob=core.BlobType(dimensionality=core.BlobTypeBlobDimensionality.MULTIPART))
INTS = core.LiteralType(collection_type=INT)
NONE_LITERAL = core.Literal(scalar=core.Scalar(none_type=core.Void()))


@pytest.mark.parametrize(
    ("literal", "literal_type", "fits"),
    [
        (integer(1), INT, True),
        (string("1"), INT, False),
        (integer(1), FLOAT, True),
        (_primitive(float_value=1.5), INT, False),
        (
            _primitive(datetime=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)),
            core.LiteralType(simple=core.SimpleType.DATETIME),
            True,
        ),
        (NONE_LITERAL, OPTIONAL_INT, True),
        (integer(3), OPTIONAL_INT, True),
        (string("x"), OPTIONAL_INT, False),
        (core.Literal(scalar=core.Scalar(union=core.Union(value=integer(3), type=INT))), OPTIONAL_INT, True),
        (core.Literal(collection=core.LiteralCollection(literals=[integer(1), integer(2)])), INTS, True),
        (core.Literal(collection=core.LiteralCollection(literals=[integer(1), string("2")])), INTS, False),
        (integer(1), INTS, False),
        (
            core.Literal(map=core.LiteralMap(literals={"a": integer(1)})),
            core.LiteralType(map_value_type=INT),
            True,
        ),
        (
            core.Literal(
                scalar=core.Scalar(blob=core.Blob(uri="/x", metadata=core.BlobMetadata(type=FILE.blob)))
            ),
            FILE,
            True,
        ),
        (
            core.Literal(
                scalar=core.Scalar(blob=core.Blob(uri="/x", metadata=core.BlobMetadata(type=FILE.blob)))
            ),
            DIRECTORY,
            False,
        ),
        (string("red"), core.LiteralType(enum_type=core.EnumType(values=["red", "blue"])), True),
        (string("green"), core.LiteralType(enum_type=core.EnumType(values=["red", "blue"])), False),
        (
            core.Literal(scalar=core.Scalar(binary=core.Binary(value=b"\x80", tag="msgpack"))),
            core.LiteralType(simple=core.SimpleType.STRUCT),
            True,
        ),
        (integer(1), None, True),
    ],
)
def test_literal_matches(literal: core.Literal, literal_type: core.LiteralType | None, fits: bool) -> None:
    assert literal_matches(literal, literal_type) is fits


def test_types_castable() -> None:
    assert types_castable(INT, INT)
    assert types_castable(INT, FLOAT)
    assert not types_castable(FLOAT, INT)
    assert types_castable(INT, OPTIONAL_INT)
    assert not types_castable(STR, OPTIONAL_INT)
    assert types_castable(INTS, core.LiteralType(collection_type=FLOAT))
    assert not types_castable(FILE, DIRECTORY)
    described = core.LiteralType(simple=core.SimpleType.INTEGER, structure=core.TypeStructure(tag="int"))
    assert types_castable(described, INT)


def test_workflow_digest_is_stable_across_equal_registrations() -> None:
    first = compile_workflow(chain(), [], TASKS)
    second = compile_workflow(core.WorkflowTemplate.parse(bytes(chain())), [], TASKS)
    assert content_digest(first) == content_digest(second)
    assert isinstance(admin.WorkflowClosure(compiled_workflow=first), admin.WorkflowClosure)


def test_a_task_without_a_container_is_refused_naming_its_type() -> None:
    plugin = core.TaskTemplate.parse(bytes(ADD))
    plugin.container, plugin.type = None, "spark"
    assert plugin.id is not None
    template = _broken("none")
    with pytest.raises(CompileError, match="of type 'spark', which has no container"):
        compile_workflow(template, [], {**TASKS, id_key(plugin.id): plugin})
