"""Bytes written by asyncrun's betterproto2 classes are read correctly by the official flyteidl classes,
and back.

Every case builds the same value twice, independently: once with asyncrun's classes (the way asyncrun code
does), once as the expected official flyteidl message (from its proto-JSON form). Then:

- forward: the official class decodes `bytes(ours)` to exactly the expected message;
- reverse: asyncrun decodes the official bytes to exactly our instance, and re-encodes them to bytes that the
  official class decodes to the expected message again.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flyteidl.admin import common_pb2 as up_admin_common
from flyteidl.admin import execution_pb2 as up_execution
from flyteidl.admin import launch_plan_pb2 as up_launch_plan
from flyteidl.admin import node_execution_pb2 as up_node_execution
from flyteidl.admin import signal_pb2 as up_signal
from flyteidl.admin import task_execution_pb2 as up_task_execution
from flyteidl.admin import task_pb2 as up_admin_task
from flyteidl.core import dynamic_job_pb2 as up_dynamic_job
from flyteidl.core import identifier_pb2 as up_identifier
from flyteidl.core import literals_pb2 as up_literals
from flyteidl.core import tasks_pb2 as up_tasks
from flyteidl.core import workflow_pb2 as up_workflow
from flyteidl.service import auth_pb2 as up_auth
from flyteidl.service import dataproxy_pb2 as up_dataproxy
from google.protobuf import json_format

from asyncrun._proto.flyteidl import admin, core, service
from asyncrun._proto.google import protobuf as gp

if TYPE_CHECKING:
    from collections.abc import Callable

    import betterproto2
    from google.protobuf.message import Message as UpstreamMessage


def _dict(msg: UpstreamMessage) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def _quiet(build: Callable[[], betterproto2.Message]) -> betterproto2.Message:
    """Build a message that sets deprecated fields (betterproto2 warns on those) without the warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return build()


@dataclass(frozen=True)
class Case:
    id: str
    ours: Callable[[], betterproto2.Message]
    upstream_cls: type[UpstreamMessage]
    expected: dict[str, Any]  # proto-JSON of the expected official message

    def expected_msg(self) -> UpstreamMessage:
        return json_format.ParseDict(self.expected, self.upstream_cls())


# ----------------------------------------------------------------------------------------------------
# Shared building blocks (asyncrun side / expected proto-JSON side)
# ----------------------------------------------------------------------------------------------------

T0 = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
T0_JSON = "2024-05-01T12:30:15.123456Z"
T1 = datetime(2024, 5, 1, 12, 31, 45, tzinfo=UTC)
T1_JSON = "2024-05-01T12:31:45Z"


def task_id() -> core.Identifier:
    return core.Identifier(
        resource_type=core.ResourceType.TASK,
        project="flytesnacks",
        domain="development",
        name="hello.say_hello",
        version="v1-abc",
    )


TASK_ID_JSON = {
    "resource_type": "TASK",
    "project": "flytesnacks",
    "domain": "development",
    "name": "hello.say_hello",
    "version": "v1-abc",
}


def wf_id() -> core.Identifier:
    return core.Identifier(
        resource_type=core.ResourceType.WORKFLOW,
        project="flytesnacks",
        domain="development",
        name="hello.wf",
        version="v1-abc",
        org="acme",
    )


WF_ID_JSON = {
    "resource_type": "WORKFLOW",
    "project": "flytesnacks",
    "domain": "development",
    "name": "hello.wf",
    "version": "v1-abc",
    "org": "acme",
}


def lp_id() -> core.Identifier:
    return core.Identifier(
        resource_type=core.ResourceType.LAUNCH_PLAN,
        project="flytesnacks",
        domain="development",
        name="hello.wf",
        version="v1-abc",
    )


LP_ID_JSON = {**TASK_ID_JSON, "resource_type": "LAUNCH_PLAN", "name": "hello.wf"}


def exec_id() -> core.WorkflowExecutionIdentifier:
    return core.WorkflowExecutionIdentifier(project="flytesnacks", domain="development", name="abc123")


EXEC_ID_JSON = {"project": "flytesnacks", "domain": "development", "name": "abc123"}


def node_exec_id() -> core.NodeExecutionIdentifier:
    return core.NodeExecutionIdentifier(node_id="n0", execution_id=exec_id())


NODE_EXEC_ID_JSON = {"node_id": "n0", "execution_id": EXEC_ID_JSON}


def simple(t: core.SimpleType) -> core.LiteralType:
    return core.LiteralType(simple=t)


def str_lit(value: str) -> core.Literal:
    return core.Literal(scalar=core.Scalar(primitive=core.Primitive(string_value=value)))


def str_lit_json(value: str) -> dict[str, Any]:
    return {"scalar": {"primitive": {"string_value": value}}}


def int_lit(value: int) -> core.Literal:
    return core.Literal(scalar=core.Scalar(primitive=core.Primitive(integer=value)))


def int_lit_json(value: int) -> dict[str, Any]:
    return {"scalar": {"primitive": {"integer": str(value)}}}


def promise(node_id: str, var: str, *path: str | int) -> core.BindingData:
    attrs = [
        core.PromiseAttribute(string_value=p) if isinstance(p, str) else core.PromiseAttribute(int_value=p)
        for p in path
    ]
    return core.BindingData(promise=core.OutputReference(node_id=node_id, var=var, attr_path=attrs))


def promise_json(node_id: str, var: str, *path: str | int) -> dict[str, Any]:
    ref: dict[str, Any] = {"node_id": node_id, "var": var}
    if path:
        ref["attr_path"] = [{"string_value": p} if isinstance(p, str) else {"int_value": p} for p in path]
    return {"promise": ref}


# ----------------------------------------------------------------------------------------------------
# Literals: one case per kind, so a failure names the kind
# ----------------------------------------------------------------------------------------------------

BLOB_SINGLE = core.Blob(
    metadata=core.BlobMetadata(
        type=core.BlobType(format="csv", dimensionality=core.BlobTypeBlobDimensionality.SINGLE)
    ),
    uri="s3://bucket/data/a.csv",
)
BLOB_MULTIPART = core.Blob(
    metadata=core.BlobMetadata(type=core.BlobType(dimensionality=core.BlobTypeBlobDimensionality.MULTIPART)),
    uri="s3://bucket/data/dir/",
)

LITERALS: dict[str, tuple[Callable[[], core.Literal], dict[str, Any]]] = {
    "none_type": (
        lambda: core.Literal(scalar=core.Scalar(none_type=core.Void())),
        {"scalar": {"none_type": {}}},
    ),
    "integer": (lambda: int_lit(42), int_lit_json(42)),
    "integer_zero": (lambda: int_lit(0), int_lit_json(0)),
    "integer_negative": (lambda: int_lit(-7), int_lit_json(-7)),
    "integer_int64_max": (lambda: int_lit(2**63 - 1), int_lit_json(2**63 - 1)),
    "float": (
        lambda: core.Literal(scalar=core.Scalar(primitive=core.Primitive(float_value=-3.25))),
        {"scalar": {"primitive": {"float_value": -3.25}}},
    ),
    "float_zero": (
        lambda: core.Literal(scalar=core.Scalar(primitive=core.Primitive(float_value=0.0))),
        {"scalar": {"primitive": {"float_value": 0.0}}},
    ),
    "string": (lambda: str_lit("héllo, wörld ✓"), str_lit_json("héllo, wörld ✓")),
    "string_empty": (lambda: str_lit(""), str_lit_json("")),
    "boolean_true": (
        lambda: core.Literal(scalar=core.Scalar(primitive=core.Primitive(boolean=True))),
        {"scalar": {"primitive": {"boolean": True}}},
    ),
    "boolean_false": (
        lambda: core.Literal(scalar=core.Scalar(primitive=core.Primitive(boolean=False))),
        {"scalar": {"primitive": {"boolean": False}}},
    ),
    "datetime": (
        lambda: core.Literal(scalar=core.Scalar(primitive=core.Primitive(datetime=T0))),
        {"scalar": {"primitive": {"datetime": T0_JSON}}},
    ),
    "datetime_epoch": (
        lambda: core.Literal(
            scalar=core.Scalar(primitive=core.Primitive(datetime=datetime(1970, 1, 1, tzinfo=UTC)))
        ),
        {"scalar": {"primitive": {"datetime": "1970-01-01T00:00:00Z"}}},
    ),
    "duration": (
        lambda: core.Literal(
            scalar=core.Scalar(
                primitive=core.Primitive(duration=timedelta(hours=1, seconds=1, microseconds=500))
            )
        ),
        {"scalar": {"primitive": {"duration": "3601.000500s"}}},
    ),
    "duration_zero": (
        lambda: core.Literal(scalar=core.Scalar(primitive=core.Primitive(duration=timedelta(0)))),
        {"scalar": {"primitive": {"duration": "0s"}}},
    ),
    "collection": (
        lambda: core.Literal(
            collection=core.LiteralCollection(literals=[int_lit(1), int_lit(2), str_lit("x")])
        ),
        {"collection": {"literals": [int_lit_json(1), int_lit_json(2), str_lit_json("x")]}},
    ),
    "collection_empty": (
        lambda: core.Literal(collection=core.LiteralCollection()),
        {"collection": {}},
    ),
    "collection_nested": (
        lambda: core.Literal(
            collection=core.LiteralCollection(
                literals=[core.Literal(collection=core.LiteralCollection(literals=[int_lit(1)]))]
            )
        ),
        {"collection": {"literals": [{"collection": {"literals": [int_lit_json(1)]}}]}},
    ),
    "map": (
        lambda: core.Literal(map=core.LiteralMap(literals={"a": int_lit(1), "b": str_lit("two")})),
        {"map": {"literals": {"a": int_lit_json(1), "b": str_lit_json("two")}}},
    ),
    "map_empty": (lambda: core.Literal(map=core.LiteralMap()), {"map": {}}),
    "blob_single": (
        lambda: core.Literal(scalar=core.Scalar(blob=BLOB_SINGLE)),
        {
            "scalar": {
                "blob": {
                    "metadata": {"type": {"format": "csv", "dimensionality": "SINGLE"}},
                    "uri": "s3://bucket/data/a.csv",
                }
            }
        },
    ),
    "blob_multipart": (
        lambda: core.Literal(scalar=core.Scalar(blob=BLOB_MULTIPART)),
        {
            "scalar": {
                "blob": {
                    "metadata": {"type": {"dimensionality": "MULTIPART"}},
                    "uri": "s3://bucket/data/dir/",
                }
            }
        },
    ),
    "binary": (
        lambda: core.Literal(
            scalar=core.Scalar(binary=core.Binary(value=b"\x82\xa1a\x01\x00\xff", tag="msgpack"))
        ),
        {"scalar": {"binary": {"value": "gqFhAQD/", "tag": "msgpack"}}},
    ),
    "union": (
        lambda: core.Literal(
            scalar=core.Scalar(
                union=core.Union(
                    value=int_lit(3),
                    type=core.LiteralType(
                        simple=core.SimpleType.INTEGER, structure=core.TypeStructure(tag="int")
                    ),
                )
            )
        ),
        {
            "scalar": {
                "union": {
                    "value": int_lit_json(3),
                    "type": {"simple": "INTEGER", "structure": {"tag": "int"}},
                }
            }
        },
    ),
    "union_of_none": (
        lambda: core.Literal(
            scalar=core.Scalar(
                union=core.Union(
                    value=core.Literal(scalar=core.Scalar(none_type=core.Void())),
                    type=core.LiteralType(
                        simple=core.SimpleType.NONE, structure=core.TypeStructure(tag="none")
                    ),
                )
            )
        ),
        {
            "scalar": {
                "union": {
                    "value": {"scalar": {"none_type": {}}},
                    "type": {"simple": "NONE", "structure": {"tag": "none"}},
                }
            }
        },
    ),
    "generic": (
        lambda: core.Literal(
            scalar=core.Scalar(
                generic=gp.Struct(
                    fields={
                        "a": gp.Value(number_value=1.5),
                        "b": gp.Value(string_value="x"),
                        "c": gp.Value(
                            list_value=gp.ListValue(
                                values=[
                                    gp.Value(bool_value=True),
                                    gp.Value(null_value=gp.NullValue.NULL_VALUE),
                                ]
                            )
                        ),
                        "d": gp.Value(struct_value=gp.Struct(fields={"e": gp.Value(bool_value=False)})),
                        "z": gp.Value(number_value=0.0),
                    }
                )
            )
        ),
        {"scalar": {"generic": {"a": 1.5, "b": "x", "c": [True, None], "d": {"e": False}, "z": 0}}},
    ),
    "error": (
        lambda: core.Literal(scalar=core.Scalar(error=core.Error(failed_node_id="n1", message="boom"))),
        {"scalar": {"error": {"failed_node_id": "n1", "message": "boom"}}},
    ),
    "structured_dataset": (
        lambda: core.Literal(scalar=core.Scalar(structured_dataset=core.StructuredDataset(uri="s3://b/df"))),
        {"scalar": {"structured_dataset": {"uri": "s3://b/df"}}},
    ),
    "offloaded": (
        lambda: core.Literal(
            offloaded_metadata=core.LiteralOffloadedMetadata(
                uri="s3://b/offloaded.pb", size_bytes=2**40, inferred_type=simple(core.SimpleType.STRING)
            )
        ),
        {
            "offloaded_metadata": {
                "uri": "s3://b/offloaded.pb",
                "size_bytes": str(2**40),
                "inferred_type": {"simple": "STRING"},
            }
        },
    ),
    "hash_and_metadata": (
        lambda: core.Literal(
            scalar=core.Scalar(primitive=core.Primitive(integer=1)), hash="abc", metadata={"k": "v", "x": ""}
        ),
        {"scalar": {"primitive": {"integer": "1"}}, "hash": "abc", "metadata": {"k": "v", "x": ""}},
    ),
}

LITERAL_CASES = [
    Case(f"literal-{name}", ours, up_literals.Literal, exp) for name, (ours, exp) in LITERALS.items()
]

LITERAL_MAP_CASE = Case(
    "literal-map-of-everything",
    lambda: core.LiteralMap(literals={name: build() for name, (build, _) in LITERALS.items()}),
    up_literals.LiteralMap,
    {"literals": {name: exp for name, (_, exp) in LITERALS.items()}},
)


# ----------------------------------------------------------------------------------------------------
# Registration: TaskTemplate, WorkflowTemplate, LaunchPlanSpec
# ----------------------------------------------------------------------------------------------------

CONTAINER_ARGS = [
    "pyflyte-execute",
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
    "--resolver",
    "flytekit.core.python_auto_container.default_task_resolver",
    "--",
    "task-module",
    "hello",
    "task-name",
    "say_hello",
]


def typed_interface() -> core.TypedInterface:
    st = core.SimpleType
    return core.TypedInterface(
        inputs=core.VariableMap(
            variables={
                "name": core.Variable(type=simple(st.STRING), description="who to greet"),
                "n": core.Variable(type=simple(st.INTEGER)),
                "xs": core.Variable(type=core.LiteralType(collection_type=simple(st.FLOAT))),
                "m": core.Variable(type=core.LiteralType(map_value_type=simple(st.STRING))),
                "f": core.Variable(type=core.LiteralType(blob=core.BlobType(format="csv"))),
                "d": core.Variable(
                    type=core.LiteralType(
                        blob=core.BlobType(dimensionality=core.BlobTypeBlobDimensionality.MULTIPART)
                    )
                ),
                "maybe": core.Variable(
                    type=core.LiteralType(
                        union_type=core.UnionType(
                            variants=[
                                core.LiteralType(simple=st.STRING, structure=core.TypeStructure(tag="str")),
                                core.LiteralType(simple=st.NONE, structure=core.TypeStructure(tag="none")),
                            ]
                        )
                    )
                ),
                "color": core.Variable(
                    type=core.LiteralType(enum_type=core.EnumType(values=["red", "green"]))
                ),
                "cfg": core.Variable(
                    type=core.LiteralType(
                        simple=st.STRUCT,
                        metadata=gp.Struct(fields={"title": gp.Value(string_value="Cfg")}),
                    )
                ),
                "flag": core.Variable(type=simple(st.BOOLEAN)),
            }
        ),
        outputs=core.VariableMap(variables={"o0": core.Variable(type=simple(st.STRING))}),
    )


TYPED_INTERFACE_JSON = {
    "inputs": {
        "variables": {
            "name": {"type": {"simple": "STRING"}, "description": "who to greet"},
            "n": {"type": {"simple": "INTEGER"}},
            "xs": {"type": {"collection_type": {"simple": "FLOAT"}}},
            "m": {"type": {"map_value_type": {"simple": "STRING"}}},
            "f": {"type": {"blob": {"format": "csv"}}},
            "d": {"type": {"blob": {"dimensionality": "MULTIPART"}}},
            "maybe": {
                "type": {
                    "union_type": {
                        "variants": [
                            {"simple": "STRING", "structure": {"tag": "str"}},
                            {"simple": "NONE", "structure": {"tag": "none"}},
                        ]
                    }
                }
            },
            "color": {"type": {"enum_type": {"values": ["red", "green"]}}},
            "cfg": {"type": {"simple": "STRUCT", "metadata": {"title": "Cfg"}}},
            "flag": {"type": {"simple": "BOOLEAN"}},
        }
    },
    "outputs": {"variables": {"o0": {"type": {"simple": "STRING"}}}},
}


def task_template() -> core.TaskTemplate:
    rn = core.ResourcesResourceName
    return core.TaskTemplate(
        id=task_id(),
        type="python-task",
        metadata=core.TaskMetadata(
            discoverable=True,
            runtime=core.RuntimeMetadata(
                type=core.RuntimeMetadataRuntimeType.FLYTE_SDK, version="1.16.31", flavor="python"
            ),
            timeout=timedelta(minutes=5),
            retries=core.RetryStrategy(retries=3),
            discovery_version="1.0",
            interruptible=False,
            cache_serializable=True,
            tags={"team": "ml"},
            cache_ignore_input_vars=["seed", "verbose"],
            is_eager=False,
            generates_deck=False,
        ),
        interface=typed_interface(),
        custom=gp.Struct(fields={"executor_path": gp.Value(string_value="/usr/bin/python3")}),
        container=core.Container(
            image="ghcr.io/flyteorg/flytekit:py3.11-1.16.31",
            args=CONTAINER_ARGS,
            resources=core.Resources(
                requests=[
                    core.ResourcesResourceEntry(name=rn.CPU, value="500m"),
                    core.ResourcesResourceEntry(name=rn.MEMORY, value="1Gi"),
                ],
                limits=[
                    core.ResourcesResourceEntry(name=rn.MEMORY, value="2Gi"),
                    core.ResourcesResourceEntry(name=rn.GPU, value="1"),
                    core.ResourcesResourceEntry(name=rn.EPHEMERAL_STORAGE, value="10Gi"),
                ],
            ),
            env=[
                core.KeyValuePair(
                    key="FLYTE_INTERNAL_IMAGE", value="ghcr.io/flyteorg/flytekit:py3.11-1.16.31"
                ),
                core.KeyValuePair(key="EMPTY", value=""),
            ],
        ),
        task_type_version=1,
        security_context=core.SecurityContext(run_as=core.Identity(k8s_service_account="default")),
        config={"cfg": "1"},
    )


TASK_TEMPLATE_JSON = {
    "id": TASK_ID_JSON,
    "type": "python-task",
    "metadata": {
        "discoverable": True,
        "runtime": {"type": "FLYTE_SDK", "version": "1.16.31", "flavor": "python"},
        "timeout": "300s",
        "retries": {"retries": 3},
        "discovery_version": "1.0",
        "interruptible": False,
        "cache_serializable": True,
        "tags": {"team": "ml"},
        "cache_ignore_input_vars": ["seed", "verbose"],
        "generates_deck": False,
    },
    "interface": TYPED_INTERFACE_JSON,
    "custom": {"executor_path": "/usr/bin/python3"},
    "container": {
        "image": "ghcr.io/flyteorg/flytekit:py3.11-1.16.31",
        "args": CONTAINER_ARGS,
        "resources": {
            "requests": [{"name": "CPU", "value": "500m"}, {"name": "MEMORY", "value": "1Gi"}],
            "limits": [
                {"name": "MEMORY", "value": "2Gi"},
                {"name": "GPU", "value": "1"},
                {"name": "EPHEMERAL_STORAGE", "value": "10Gi"},
            ],
        },
        "env": [
            {"key": "FLYTE_INTERNAL_IMAGE", "value": "ghcr.io/flyteorg/flytekit:py3.11-1.16.31"},
            {"key": "EMPTY"},
        ],
    },
    "task_type_version": 1,
    "security_context": {"run_as": {"k8s_service_account": "default"}},
    "config": {"cfg": "1"},
}


def workflow_template() -> core.WorkflowTemplate:
    st = core.SimpleType
    n0 = core.Node(
        id="n0",
        metadata=core.NodeMetadata(
            name="say_hello", timeout=timedelta(0), retries=core.RetryStrategy(), interruptible=False
        ),
        inputs=[
            core.Binding(var="name", binding=promise("", "name")),
            core.Binding(var="other", binding=promise("start-node", "name")),
            core.Binding(
                var="greeting",
                binding=core.BindingData(scalar=core.Scalar(primitive=core.Primitive(string_value="hi"))),
            ),
            core.Binding(
                var="xs",
                binding=core.BindingData(
                    collection=core.BindingDataCollection(
                        bindings=[
                            core.BindingData(scalar=core.Scalar(primitive=core.Primitive(integer=1))),
                            promise("start-node", "n"),
                        ]
                    )
                ),
            ),
            core.Binding(
                var="m",
                binding=core.BindingData(
                    map=core.BindingDataMap(
                        bindings={
                            "a": promise("", "name"),
                            "b": core.BindingData(scalar=core.Scalar(none_type=core.Void())),
                        }
                    )
                ),
            ),
            core.Binding(
                var="maybe",
                binding=core.BindingData(
                    scalar=core.Scalar(primitive=core.Primitive(string_value="x")),
                    union=core.UnionInfo(
                        target_type=core.LiteralType(
                            simple=st.STRING, structure=core.TypeStructure(tag="str")
                        )
                    ),
                ),
            ),
            core.Binding(var="deep", binding=promise("start-node", "cfg", "items", 0)),
        ],
        task_node=core.TaskNode(
            reference_id=task_id(), overrides=core.TaskNodeOverrides(container_image="img:2")
        ),
    )
    n1 = core.Node(
        id="n1",
        metadata=core.NodeMetadata(
            name="sub", cacheable=True, cache_version="7", retries=core.RetryStrategy(retries=2)
        ),
        inputs=[core.Binding(var="x", binding=promise("n0", "o0"))],
        upstream_node_ids=["n0"],
        workflow_node=core.WorkflowNode(launchplan_ref=lp_id()),
    )
    n2 = core.Node(
        id="n2",
        upstream_node_ids=["n0", "n1"],
        workflow_node=core.WorkflowNode(sub_workflow_ref=wf_id()),
    )
    return core.WorkflowTemplate(
        id=wf_id(),
        metadata=core.WorkflowMetadata(
            on_failure=core.WorkflowMetadataOnFailurePolicy.FAIL_AFTER_EXECUTABLE_NODES_COMPLETE,
            tags={"k": "v"},
        ),
        interface=core.TypedInterface(
            inputs=core.VariableMap(variables={"name": core.Variable(type=simple(st.STRING))}),
            outputs=core.VariableMap(variables={"o0": core.Variable(type=simple(st.STRING))}),
        ),
        nodes=[n0, n1, n2],
        outputs=[core.Binding(var="o0", binding=promise("n0", "o0"))],
        failure_node=core.Node(id="fn", task_node=core.TaskNode(reference_id=task_id())),
        metadata_defaults=core.WorkflowMetadataDefaults(interruptible=True),
    )


WORKFLOW_TEMPLATE_JSON = {
    "id": WF_ID_JSON,
    "metadata": {"on_failure": "FAIL_AFTER_EXECUTABLE_NODES_COMPLETE", "tags": {"k": "v"}},
    "interface": {
        "inputs": {"variables": {"name": {"type": {"simple": "STRING"}}}},
        "outputs": {"variables": {"o0": {"type": {"simple": "STRING"}}}},
    },
    "nodes": [
        {
            "id": "n0",
            "metadata": {"name": "say_hello", "timeout": "0s", "retries": {}, "interruptible": False},
            "inputs": [
                {"var": "name", "binding": promise_json("", "name")},
                {"var": "other", "binding": promise_json("start-node", "name")},
                {"var": "greeting", "binding": {"scalar": {"primitive": {"string_value": "hi"}}}},
                {
                    "var": "xs",
                    "binding": {
                        "collection": {
                            "bindings": [
                                {"scalar": {"primitive": {"integer": "1"}}},
                                promise_json("start-node", "n"),
                            ]
                        }
                    },
                },
                {
                    "var": "m",
                    "binding": {
                        "map": {
                            "bindings": {"a": promise_json("", "name"), "b": {"scalar": {"none_type": {}}}}
                        }
                    },
                },
                {
                    "var": "maybe",
                    "binding": {
                        "scalar": {"primitive": {"string_value": "x"}},
                        "union": {"targetType": {"simple": "STRING", "structure": {"tag": "str"}}},
                    },
                },
                {"var": "deep", "binding": promise_json("start-node", "cfg", "items", 0)},
            ],
            "task_node": {"reference_id": TASK_ID_JSON, "overrides": {"container_image": "img:2"}},
        },
        {
            "id": "n1",
            "metadata": {"name": "sub", "cacheable": True, "cache_version": "7", "retries": {"retries": 2}},
            "inputs": [{"var": "x", "binding": promise_json("n0", "o0")}],
            "upstream_node_ids": ["n0"],
            "workflow_node": {"launchplan_ref": LP_ID_JSON},
        },
        {"id": "n2", "upstream_node_ids": ["n0", "n1"], "workflow_node": {"sub_workflow_ref": WF_ID_JSON}},
    ],
    "outputs": [{"var": "o0", "binding": promise_json("n0", "o0")}],
    "failure_node": {"id": "fn", "task_node": {"reference_id": TASK_ID_JSON}},
    "metadata_defaults": {"interruptible": True},
}


def launch_plan_spec() -> admin.LaunchPlanSpec:
    st = core.SimpleType
    return admin.LaunchPlanSpec(
        workflow_id=wf_id(),
        entity_metadata=admin.LaunchPlanMetadata(
            notifications=[
                admin.Notification(
                    phases=[core.WorkflowExecutionPhase.FAILED, core.WorkflowExecutionPhase.TIMED_OUT]
                )
            ]
        ),
        default_inputs=core.ParameterMap(
            parameters={
                "name": core.Parameter(var=core.Variable(type=simple(st.STRING)), default=str_lit("world")),
                "n": core.Parameter(var=core.Variable(type=simple(st.INTEGER)), required=True),
                "flag": core.Parameter(
                    var=core.Variable(type=simple(st.BOOLEAN)),
                    default=core.Literal(scalar=core.Scalar(primitive=core.Primitive(boolean=False))),
                ),
                "opt": core.Parameter(
                    var=core.Variable(type=simple(st.STRING)),
                    default=core.Literal(scalar=core.Scalar(none_type=core.Void())),
                ),
            }
        ),
        fixed_inputs=core.LiteralMap(literals={"k": int_lit(5)}),
        labels=admin.Labels(values={"team": "ml"}),
        annotations=admin.Annotations(values={"note": "x"}),
        security_context=core.SecurityContext(run_as=core.Identity(k8s_service_account="sa")),
        quality_of_service=core.QualityOfService(tier=core.QualityOfServiceTier.HIGH),
        raw_output_data_config=admin.RawOutputDataConfig(output_location_prefix="s3://bucket/raw"),
        max_parallelism=25,
        interruptible=False,
        overwrite_cache=True,
        envs=admin.Envs(values=[core.KeyValuePair(key="A", value="1")]),
        cluster_assignment=admin.ClusterAssignment(cluster_pool_name="gpu"),
    )


LAUNCH_PLAN_SPEC_JSON = {
    "workflow_id": WF_ID_JSON,
    "entity_metadata": {"notifications": [{"phases": ["FAILED", "TIMED_OUT"]}]},
    "default_inputs": {
        "parameters": {
            "name": {"var": {"type": {"simple": "STRING"}}, "default": str_lit_json("world")},
            "n": {"var": {"type": {"simple": "INTEGER"}}, "required": True},
            "flag": {
                "var": {"type": {"simple": "BOOLEAN"}},
                "default": {"scalar": {"primitive": {"boolean": False}}},
            },
            "opt": {"var": {"type": {"simple": "STRING"}}, "default": {"scalar": {"none_type": {}}}},
        }
    },
    "fixed_inputs": {"literals": {"k": int_lit_json(5)}},
    "labels": {"values": {"team": "ml"}},
    "annotations": {"values": {"note": "x"}},
    "security_context": {"run_as": {"k8s_service_account": "sa"}},
    "quality_of_service": {"tier": "HIGH"},
    "raw_output_data_config": {"output_location_prefix": "s3://bucket/raw"},
    "max_parallelism": 25,
    "interruptible": False,
    "overwrite_cache": True,
    "envs": {"values": [{"key": "A", "value": "1"}]},
    "cluster_assignment": {"cluster_pool_name": "gpu"},
}


# ----------------------------------------------------------------------------------------------------
# Executions
# ----------------------------------------------------------------------------------------------------


def execution_spec() -> admin.ExecutionSpec:
    return _quiet(
        lambda: admin.ExecutionSpec(
            launch_plan=lp_id(),
            inputs=core.LiteralMap(literals={"legacy": int_lit(1)}),
            metadata=admin.ExecutionMetadata(
                mode=admin.ExecutionMetadataExecutionMode.MANUAL,
                principal="flytekit",
                system_metadata=admin.SystemMetadata(
                    execution_cluster="local", namespace="flytesnacks-development"
                ),
            ),
            disable_all=False,
            labels=admin.Labels(values={"team": "ml", "empty": ""}),
            annotations=admin.Annotations(values={"owner": "me"}),
            security_context=core.SecurityContext(run_as=core.Identity(k8s_service_account="default")),
            auth_role=admin.AuthRole(kubernetes_service_account="default"),
            quality_of_service=core.QualityOfService(
                spec=core.QualityOfServiceSpec(queueing_budget=timedelta(minutes=10))
            ),
            max_parallelism=10,
            raw_output_data_config=admin.RawOutputDataConfig(output_location_prefix="s3://bucket/raw"),
            cluster_assignment=admin.ClusterAssignment(cluster_pool_name="default"),
            interruptible=True,
            overwrite_cache=True,
            envs=admin.Envs(values=[core.KeyValuePair(key="LOG_LEVEL", value="debug")]),
            tags=["nightly", "ml"],
            execution_cluster_label=admin.ExecutionClusterLabel(value="local"),
        )
    )  # type: ignore[return-value]


EXECUTION_SPEC_JSON = {
    "launch_plan": LP_ID_JSON,
    "inputs": {"literals": {"legacy": int_lit_json(1)}},
    "metadata": {
        "principal": "flytekit",
        "system_metadata": {"execution_cluster": "local", "namespace": "flytesnacks-development"},
    },
    "disable_all": False,
    "labels": {"values": {"team": "ml", "empty": ""}},
    "annotations": {"values": {"owner": "me"}},
    "security_context": {"run_as": {"k8s_service_account": "default"}},
    "auth_role": {"kubernetes_service_account": "default"},
    "quality_of_service": {"spec": {"queueing_budget": "600s"}},
    "max_parallelism": 10,
    "raw_output_data_config": {"output_location_prefix": "s3://bucket/raw"},
    "cluster_assignment": {"cluster_pool_name": "default"},
    "interruptible": True,
    "overwrite_cache": True,
    "envs": {"values": [{"key": "LOG_LEVEL", "value": "debug"}]},
    "tags": ["nightly", "ml"],
    "execution_cluster_label": {"value": "local"},
}


def execution_create_request() -> admin.ExecutionCreateRequest:
    return admin.ExecutionCreateRequest(
        project="flytesnacks",
        domain="development",
        name="abc123",
        spec=execution_spec(),
        inputs=core.LiteralMap(literals={"name": str_lit("world"), "n": int_lit(3)}),
    )


EXECUTION_CREATE_REQUEST_JSON = {
    "project": "flytesnacks",
    "domain": "development",
    "name": "abc123",
    "spec": EXECUTION_SPEC_JSON,
    "inputs": {"literals": {"name": str_lit_json("world"), "n": int_lit_json(3)}},
}


def failed_execution() -> admin.Execution:
    return admin.Execution(
        id=exec_id(),
        spec=admin.ExecutionSpec(
            launch_plan=task_id(),
            metadata=admin.ExecutionMetadata(
                mode=admin.ExecutionMetadataExecutionMode.SCHEDULED, scheduled_at=T0, nesting=1
            ),
        ),
        closure=admin.ExecutionClosure(
            error=core.ExecutionError(
                code="USER:ValueError",
                message="Traceback ...\nValueError: boom",
                error_uri="s3://bucket/metadata/error.pb",
                kind=core.ExecutionErrorErrorKind.USER,
                timestamp=T1,
                worker="local-1",
            ),
            phase=core.WorkflowExecutionPhase.FAILED,
            started_at=T0,
            duration=timedelta(seconds=90, microseconds=250000),
            created_at=T0,
            updated_at=T1,
            workflow_id=wf_id(),
            state_change_details=admin.ExecutionStateChangeDetails(
                state=admin.ExecutionState.EXECUTION_ACTIVE, occurred_at=T0, principal="flytekit"
            ),
        ),
    )


FAILED_EXECUTION_JSON = {
    "id": EXEC_ID_JSON,
    "spec": {
        "launch_plan": TASK_ID_JSON,
        "metadata": {"mode": "SCHEDULED", "scheduled_at": T0_JSON, "nesting": 1},
    },
    "closure": {
        "error": {
            "code": "USER:ValueError",
            "message": "Traceback ...\nValueError: boom",
            "error_uri": "s3://bucket/metadata/error.pb",
            "kind": "USER",
            "timestamp": T1_JSON,
            "worker": "local-1",
        },
        "phase": "FAILED",
        "started_at": T0_JSON,
        "duration": "90.250s",
        "created_at": T0_JSON,
        "updated_at": T1_JSON,
        "workflow_id": WF_ID_JSON,
        "state_change_details": {"occurred_at": T0_JSON, "principal": "flytekit"},
    },
}


def succeeded_execution_closure() -> admin.ExecutionClosure:
    return _quiet(
        lambda: admin.ExecutionClosure(
            outputs=admin.LiteralMapBlob(uri="s3://bucket/metadata/outputs.pb"),
            phase=core.WorkflowExecutionPhase.SUCCEEDED,
            started_at=T0,
            duration=timedelta(seconds=3),
            created_at=T0,
            updated_at=T1,
            workflow_id=wf_id(),
        )
    )  # type: ignore[return-value]


SUCCEEDED_EXECUTION_CLOSURE_JSON = {
    "outputs": {"uri": "s3://bucket/metadata/outputs.pb"},
    "phase": "SUCCEEDED",
    "started_at": T0_JSON,
    "duration": "3s",
    "created_at": T0_JSON,
    "updated_at": T1_JSON,
    "workflow_id": WF_ID_JSON,
}

ABORTED_EXECUTION_CLOSURE = Case(
    "execution-closure-aborted",
    lambda: admin.ExecutionClosure(
        abort_metadata=admin.AbortMetadata(cause="user asked", principal="me"),
        phase=core.WorkflowExecutionPhase.ABORTED,
    ),
    up_execution.ExecutionClosure,
    {"abort_metadata": {"cause": "user asked", "principal": "me"}, "phase": "ABORTED"},
)


def node_execution() -> admin.NodeExecution:
    return _quiet(
        lambda: admin.NodeExecution(
            id=node_exec_id(),
            input_uri="s3://bucket/metadata/n0/inputs.pb",
            closure=admin.NodeExecutionClosure(
                output_uri="s3://bucket/metadata/n0/outputs.pb",
                phase=core.NodeExecutionPhase.SUCCEEDED,
                started_at=T0,
                duration=timedelta(seconds=2),
                created_at=T0,
                updated_at=T1,
                task_node_metadata=admin.TaskNodeMetadata(),
                deck_uri="s3://bucket/deck.html",
            ),
            metadata=admin.NodeExecutionMetaData(retry_group="0", spec_node_id="n0"),
        )
    )  # type: ignore[return-value]


NODE_EXECUTION_JSON = {
    "id": NODE_EXEC_ID_JSON,
    "input_uri": "s3://bucket/metadata/n0/inputs.pb",
    "closure": {
        "output_uri": "s3://bucket/metadata/n0/outputs.pb",
        "phase": "SUCCEEDED",
        "started_at": T0_JSON,
        "duration": "2s",
        "created_at": T0_JSON,
        "updated_at": T1_JSON,
        "task_node_metadata": {},
        "deck_uri": "s3://bucket/deck.html",
    },
    "metadata": {"retry_group": "0", "spec_node_id": "n0"},
}


def task_execution() -> admin.TaskExecution:
    return admin.TaskExecution(
        id=core.TaskExecutionIdentifier(task_id=task_id(), node_execution_id=node_exec_id(), retry_attempt=1),
        input_uri="s3://bucket/metadata/n0/inputs.pb",
        closure=admin.TaskExecutionClosure(
            error=core.ExecutionError(
                code="SYSTEM:OOM", message="killed", kind=core.ExecutionErrorErrorKind.SYSTEM
            ),
            phase=core.TaskExecutionPhase.RETRYABLE_FAILED,
            logs=[
                core.TaskLog(
                    uri="file:///tmp/logs/n0-1.log",
                    name="Local logs",
                    message_format=core.TaskLogMessageFormat.JSON,
                    ttl=timedelta(days=1),
                ),
                core.TaskLog(uri="http://localhost/logs/2", name="Console"),
            ],
            started_at=T0,
            duration=timedelta(milliseconds=1500),
            created_at=T0,
            updated_at=T1,
            custom_info=gp.Struct(fields={"pid": gp.Value(number_value=1234.0)}),
            reason="OOMKilled",
            task_type="python-task",
            event_version=1,
        ),
        is_parent=False,
    )


TASK_EXECUTION_JSON = {
    "id": {"task_id": TASK_ID_JSON, "node_execution_id": NODE_EXEC_ID_JSON, "retry_attempt": 1},
    "input_uri": "s3://bucket/metadata/n0/inputs.pb",
    "closure": {
        "error": {"code": "SYSTEM:OOM", "message": "killed", "kind": "SYSTEM"},
        "phase": "RETRYABLE_FAILED",
        "logs": [
            {
                "uri": "file:///tmp/logs/n0-1.log",
                "name": "Local logs",
                "message_format": "JSON",
                "ttl": "86400s",
            },
            {"uri": "http://localhost/logs/2", "name": "Console"},
        ],
        "started_at": T0_JSON,
        "duration": "1.500s",
        "created_at": T0_JSON,
        "updated_at": T1_JSON,
        "custom_info": {"pid": 1234},
        "reason": "OOMKilled",
        "task_type": "python-task",
        "event_version": 1,
    },
}


# ----------------------------------------------------------------------------------------------------
# Requests / small messages
# ----------------------------------------------------------------------------------------------------

MD5 = bytes(range(16))

AUTH_CASES = [
    Case(
        "oauth2-metadata-response",
        lambda: service.OAuth2MetadataResponse(
            issuer="https://idp.example.com",
            authorization_endpoint="https://idp.example.com/authorize",
            token_endpoint="https://idp.example.com/token",
            response_types_supported=["code"],
            scopes_supported=["all", "offline"],
            token_endpoint_auth_methods_supported=["client_secret_basic"],
            jwks_uri="https://idp.example.com/keys",
            code_challenge_methods_supported=["S256"],
            grant_types_supported=["client_credentials", "urn:ietf:params:oauth:grant-type:device_code"],
            device_authorization_endpoint="https://idp.example.com/device",
        ),
        up_auth.OAuth2MetadataResponse,
        {
            "issuer": "https://idp.example.com",
            "authorization_endpoint": "https://idp.example.com/authorize",
            "token_endpoint": "https://idp.example.com/token",
            "response_types_supported": ["code"],
            "scopes_supported": ["all", "offline"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "jwks_uri": "https://idp.example.com/keys",
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["client_credentials", "urn:ietf:params:oauth:grant-type:device_code"],
            "device_authorization_endpoint": "https://idp.example.com/device",
        },
    ),
    Case(
        "public-client-auth-config-response",
        lambda: service.PublicClientAuthConfigResponse(
            client_id="flytectl",
            redirect_uri="http://localhost:53593/callback",
            scopes=["offline", "all"],
            authorization_metadata_key="flyte-authorization",
            service_http_endpoint="https://flyte.example.com",
            audience="https://flyte.example.com",
        ),
        up_auth.PublicClientAuthConfigResponse,
        {
            "client_id": "flytectl",
            "redirect_uri": "http://localhost:53593/callback",
            "scopes": ["offline", "all"],
            "authorization_metadata_key": "flyte-authorization",
            "service_http_endpoint": "https://flyte.example.com",
            "audience": "https://flyte.example.com",
        },
    ),
]

SMALL_CASES = [
    Case(
        "workflow-execution-identifier",
        lambda: core.WorkflowExecutionIdentifier(project="p", domain="d", name="n", org="o"),
        up_identifier.WorkflowExecutionIdentifier,
        {"project": "p", "domain": "d", "name": "n", "org": "o"},
    ),
    Case(
        "task-create-request",
        lambda: admin.TaskCreateRequest(id=task_id(), spec=admin.TaskSpec(template=task_template())),
        up_admin_task.TaskCreateRequest,
        {"id": TASK_ID_JSON, "spec": {"template": TASK_TEMPLATE_JSON}},
    ),
    Case(
        "resource-list-request",
        lambda: admin.ResourceListRequest(
            id=admin.NamedEntityIdentifier(project="flytesnacks", domain="development", name="hello.wf"),
            limit=100,
            token="200",
            filters="eq(phase,RUNNING)+value_in(phase,RUNNING;QUEUED)",
            sort_by=admin.Sort(key="created_at", direction=admin.SortDirection.ASCENDING),
        ),
        up_admin_common.ResourceListRequest,
        {
            "id": {"project": "flytesnacks", "domain": "development", "name": "hello.wf"},
            "limit": 100,
            "token": "200",
            "filters": "eq(phase,RUNNING)+value_in(phase,RUNNING;QUEUED)",
            "sort_by": {"key": "created_at", "direction": "ASCENDING"},
        },
    ),
    Case(
        "resource-list-request-sort-descending",
        lambda: admin.ResourceListRequest(limit=1, sort_by=admin.Sort(key="created_at")),
        up_admin_common.ResourceListRequest,
        {"limit": 1, "sort_by": {"key": "created_at"}},
    ),
    Case(
        "launch-plan-update-request",
        lambda: admin.LaunchPlanUpdateRequest(id=lp_id(), state=admin.LaunchPlanState.ACTIVE),
        up_launch_plan.LaunchPlanUpdateRequest,
        {"id": LP_ID_JSON, "state": "ACTIVE"},
    ),
    Case(
        "create-upload-location-request",
        lambda: service.CreateUploadLocationRequest(
            project="flytesnacks",
            domain="development",
            filename="hello.tar.gz",
            expires_in=timedelta(hours=1),
            content_md5=MD5,
            filename_root="fast-abc",
            add_content_md5_metadata=True,
        ),
        up_dataproxy.CreateUploadLocationRequest,
        {
            "project": "flytesnacks",
            "domain": "development",
            "filename": "hello.tar.gz",
            "expires_in": "3600s",
            "content_md5": "AAECAwQFBgcICQoLDA0ODw==",
            "filename_root": "fast-abc",
            "add_content_md5_metadata": True,
        },
    ),
    Case(
        "create-upload-location-response",
        lambda: service.CreateUploadLocationResponse(
            signed_url="http://127.0.0.1:8080/upload/x?sig=1",
            native_url="s3://bucket/x",
            expires_at=T1,
            headers={"Content-MD5": "AAECAwQFBgcICQoLDA0ODw=="},
        ),
        up_dataproxy.CreateUploadLocationResponse,
        {
            "signed_url": "http://127.0.0.1:8080/upload/x?sig=1",
            "native_url": "s3://bucket/x",
            "expires_at": T1_JSON,
            "headers": {"Content-MD5": "AAECAwQFBgcICQoLDA0ODw=="},
        },
    ),
    Case(
        "get-data-response-literal",
        lambda: service.GetDataResponse(literal=int_lit(0)),
        up_dataproxy.GetDataResponse,
        {"literal": int_lit_json(0)},
    ),
    Case(
        "node-execution-workflow-node-metadata",
        lambda: admin.NodeExecutionClosure(
            phase=core.NodeExecutionPhase.RUNNING,
            workflow_node_metadata=admin.WorkflowNodeMetadata(execution_id=exec_id()),
        ),
        up_node_execution.NodeExecutionClosure,
        {"phase": "RUNNING", "workflow_node_metadata": {"executionId": EXEC_ID_JSON}},
    ),
]

# ----------------------------------------------------------------------------------------------------
# What the engine runs (issue 13): branch, gate and array nodes, dynamic specs, cache metadata, signals
# ----------------------------------------------------------------------------------------------------


def comparison(op: core.ComparisonExpressionOperator, var: str, value: int) -> core.BooleanExpression:
    return core.BooleanExpression(
        comparison=core.ComparisonExpression(
            operator=op,
            left_value=core.Operand(var=var),
            right_value=core.Operand(scalar=core.Scalar(primitive=core.Primitive(integer=value))),
        )
    )


def comparison_json(op: str, var: str, value: int) -> dict[str, Any]:
    return {
        "comparison": {
            **({"operator": op} if op != "EQ" else {}),
            "left_value": {"var": var},
            "right_value": {"scalar": {"primitive": {"integer": str(value)}}},
        }
    }


def task_node(node_id: str) -> core.Node:
    return core.Node(
        id=node_id,
        inputs=[core.Binding(var="n", binding=promise("start-node", "n"))],
        task_node=core.TaskNode(reference_id=task_id()),
    )


def task_node_json(node_id: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "inputs": [{"var": "n", "binding": promise_json("start-node", "n")}],
        "task_node": {"reference_id": TASK_ID_JSON},
    }


def engine_workflow() -> core.WorkflowTemplate:
    branch = core.Node(
        id="n0",
        inputs=[core.Binding(var="n", binding=promise("start-node", "n"))],
        output_aliases=[core.Alias(var="o0", alias="result")],
        branch_node=core.BranchNode(
            if_else=core.IfElseBlock(
                case=core.IfBlock(
                    condition=core.BooleanExpression(
                        conjunction=core.ConjunctionExpression(
                            operator=core.ConjunctionExpressionLogicalOperator.OR,
                            left_expression=comparison(core.ComparisonExpressionOperator.GT, "n", 5),
                            right_expression=comparison(core.ComparisonExpressionOperator.EQ, "n", 0),
                        )
                    ),
                    then_node=task_node("n0-n0"),
                ),
                other=[
                    core.IfBlock(
                        condition=comparison(core.ComparisonExpressionOperator.LTE, "n", 2),
                        then_node=task_node("n0-n1"),
                    )
                ],
                error=core.Error(failed_node_id="n0", message="n must be positive"),
            )
        ),
    )
    gates = [
        core.Node(id="g0", gate_node=core.GateNode(approve=core.ApproveCondition(signal_id="approve-total"))),
        core.Node(
            id="g1",
            gate_node=core.GateNode(
                signal=core.SignalCondition(
                    signal_id="title", type=simple(core.SimpleType.STRING), output_variable_name="o0"
                )
            ),
        ),
        core.Node(
            id="g2",
            gate_node=core.GateNode(sleep=core.SleepCondition(duration=timedelta(seconds=2))),
        ),
    ]
    array = core.Node(
        id="n1",
        upstream_node_ids=["n0"],
        array_node=core.ArrayNode(
            node=task_node("n1-sub"),
            parallelism=2,
            min_success_ratio=0.5,
            execution_mode=core.ArrayNodeExecutionMode.FULL_STATE,
            is_original_sub_node_interface=True,
            data_mode=core.ArrayNodeDataMode.INDIVIDUAL_INPUT_FILES,
            bound_inputs=["factor"],
            run_all_sub_nodes=True,
        ),
    )
    return core.WorkflowTemplate(id=wf_id(), nodes=[branch, *gates, array], failure_node=task_node("efn"))


ENGINE_WORKFLOW_JSON = {
    "id": WF_ID_JSON,
    "nodes": [
        {
            "id": "n0",
            "inputs": [{"var": "n", "binding": promise_json("start-node", "n")}],
            "output_aliases": [{"var": "o0", "alias": "result"}],
            "branch_node": {
                "if_else": {
                    "case": {
                        "condition": {
                            "conjunction": {
                                "operator": "OR",
                                "left_expression": comparison_json("GT", "n", 5),
                                "right_expression": comparison_json("EQ", "n", 0),
                            }
                        },
                        "then_node": task_node_json("n0-n0"),
                    },
                    "other": [
                        {"condition": comparison_json("LTE", "n", 2), "then_node": task_node_json("n0-n1")}
                    ],
                    "error": {"failed_node_id": "n0", "message": "n must be positive"},
                }
            },
        },
        {"id": "g0", "gate_node": {"approve": {"signal_id": "approve-total"}}},
        {
            "id": "g1",
            "gate_node": {
                "signal": {"signal_id": "title", "type": {"simple": "STRING"}, "output_variable_name": "o0"}
            },
        },
        {"id": "g2", "gate_node": {"sleep": {"duration": "2s"}}},
        {
            "id": "n1",
            "upstream_node_ids": ["n0"],
            "array_node": {
                "node": task_node_json("n1-sub"),
                "parallelism": 2,
                "min_success_ratio": 0.5,
                "execution_mode": "FULL_STATE",
                "is_original_sub_node_interface": True,
                "data_mode": "INDIVIDUAL_INPUT_FILES",
                "bound_inputs": ["factor"],
                "run_all_sub_nodes": True,
            },
        },
    ],
    "failure_node": task_node_json("efn"),
}


def signal_id() -> core.SignalIdentifier:
    return core.SignalIdentifier(signal_id="title", execution_id=exec_id())


SIGNAL_ID_JSON = {"signal_id": "title", "execution_id": EXEC_ID_JSON}

ENGINE_CASES = [
    Case("workflow-branch-gate-array", engine_workflow, up_workflow.WorkflowTemplate, ENGINE_WORKFLOW_JSON),
    Case(
        "array-node-min-successes",
        lambda: core.ArrayNode(node=task_node("s"), min_successes=0),
        up_workflow.ArrayNode,
        {"node": task_node_json("s"), "min_successes": 0},
    ),
    Case(
        "dynamic-job-spec",
        lambda: core.DynamicJobSpec(
            nodes=[task_node("dn0")],
            min_successes=1,
            outputs=[core.Binding(var="o0", binding=promise("dn0", "o0"))],
            tasks=[task_template()],
            subworkflows=[core.WorkflowTemplate(id=wf_id(), nodes=[task_node("sub-n0")])],
        ),
        up_dynamic_job.DynamicJobSpec,
        {
            "nodes": [task_node_json("dn0")],
            "min_successes": "1",
            "outputs": [{"var": "o0", "binding": promise_json("dn0", "o0")}],
            "tasks": [TASK_TEMPLATE_JSON],
            "subworkflows": [{"id": WF_ID_JSON, "nodes": [task_node_json("sub-n0")]}],
        },
    ),
    Case(
        "node-execution-closure-cache-hit",
        lambda: admin.NodeExecutionClosure(
            phase=core.NodeExecutionPhase.SUCCEEDED,
            task_node_metadata=admin.TaskNodeMetadata(
                cache_status=core.CatalogCacheStatus.CACHE_HIT,
                catalog_key=core.CatalogMetadata(
                    dataset_id=core.Identifier(
                        resource_type=core.ResourceType.DATASET,
                        project="flytesnacks",
                        domain="development",
                        name="flyte_task-hello.say_hello",
                        version="1.0-GKw-c0Pw-GKw-c0Pw",
                    ),
                    artifact_tag=core.CatalogArtifactTag(artifact_id="a-1", name="flyte_cached-abc"),
                    source_task_execution=core.TaskExecutionIdentifier(
                        task_id=task_id(), node_execution_id=node_exec_id(), retry_attempt=1
                    ),
                ),
            ),
        ),
        up_node_execution.NodeExecutionClosure,
        {
            "phase": "SUCCEEDED",
            "task_node_metadata": {
                "cache_status": "CACHE_HIT",
                "catalog_key": {
                    "dataset_id": {
                        "resource_type": "DATASET",
                        "project": "flytesnacks",
                        "domain": "development",
                        "name": "flyte_task-hello.say_hello",
                        "version": "1.0-GKw-c0Pw-GKw-c0Pw",
                    },
                    "artifact_tag": {"artifact_id": "a-1", "name": "flyte_cached-abc"},
                    "source_task_execution": {
                        "task_id": TASK_ID_JSON,
                        "node_execution_id": NODE_EXEC_ID_JSON,
                        "retry_attempt": 1,
                    },
                },
            },
        },
    ),
    Case(
        "signal-get-or-create-request",
        lambda: admin.SignalGetOrCreateRequest(id=signal_id(), type=simple(core.SimpleType.BOOLEAN)),
        up_signal.SignalGetOrCreateRequest,
        {"id": SIGNAL_ID_JSON, "type": {"simple": "BOOLEAN"}},
    ),
    Case(
        "signal-list-request",
        lambda: admin.SignalListRequest(
            workflow_execution_id=exec_id(),
            limit=10,
            token="10",
            filters="eq(signal_id,title)",
            sort_by=admin.Sort(key="created_at", direction=admin.SortDirection.ASCENDING),
        ),
        up_signal.SignalListRequest,
        {
            "workflow_execution_id": EXEC_ID_JSON,
            "limit": 10,
            "token": "10",
            "filters": "eq(signal_id,title)",
            "sort_by": {"key": "created_at", "direction": "ASCENDING"},
        },
    ),
    Case(
        "signal-list",
        lambda: admin.SignalList(
            signals=[
                admin.Signal(id=signal_id(), type=simple(core.SimpleType.STRING), value=str_lit("Dr")),
                admin.Signal(id=signal_id(), type=simple(core.SimpleType.STRING)),
            ],
            token="2",
        ),
        up_signal.SignalList,
        {
            "signals": [
                {"id": SIGNAL_ID_JSON, "type": {"simple": "STRING"}, "value": str_lit_json("Dr")},
                {"id": SIGNAL_ID_JSON, "type": {"simple": "STRING"}},
            ],
            "token": "2",
        },
    ),
    Case(
        "signal-set-request",
        lambda: admin.SignalSetRequest(id=signal_id(), value=int_lit(0)),
        up_signal.SignalSetRequest,
        {"id": SIGNAL_ID_JSON, "value": int_lit_json(0)},
    ),
]

CASES = [
    *LITERAL_CASES,
    LITERAL_MAP_CASE,
    Case("task-template", task_template, up_tasks.TaskTemplate, TASK_TEMPLATE_JSON),
    Case("workflow-template", workflow_template, up_workflow.WorkflowTemplate, WORKFLOW_TEMPLATE_JSON),
    Case("launch-plan-spec", launch_plan_spec, up_launch_plan.LaunchPlanSpec, LAUNCH_PLAN_SPEC_JSON),
    Case(
        "execution-create-request",
        execution_create_request,
        up_execution.ExecutionCreateRequest,
        EXECUTION_CREATE_REQUEST_JSON,
    ),
    Case("execution-failed", failed_execution, up_execution.Execution, FAILED_EXECUTION_JSON),
    Case(
        "execution-closure-succeeded",
        succeeded_execution_closure,
        up_execution.ExecutionClosure,
        SUCCEEDED_EXECUTION_CLOSURE_JSON,
    ),
    ABORTED_EXECUTION_CLOSURE,
    Case("node-execution", node_execution, up_node_execution.NodeExecution, NODE_EXECUTION_JSON),
    Case("task-execution", task_execution, up_task_execution.TaskExecution, TASK_EXECUTION_JSON),
    *SMALL_CASES,
    *AUTH_CASES,
    *ENGINE_CASES,
]


# ----------------------------------------------------------------------------------------------------
# The round trips
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_official_decodes_ours(case: Case) -> None:
    expected = case.expected_msg()
    decoded = case.upstream_cls.FromString(bytes(case.ours()))
    assert _dict(decoded) == _dict(expected)
    assert decoded == expected
    # Byte-identical re-serialization also rules out fields the official schema did not know.
    assert decoded.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_ours_decodes_official(case: Case) -> None:
    expected = case.expected_msg()
    ours_cls = type(case.ours())
    parsed = ours_cls.parse(expected.SerializeToString())
    # Field for field what asyncrun code would have built ...
    assert parsed == case.ours()
    # ... and re-encoded it reads back as the same official message.
    reencoded = case.upstream_cls.FromString(bytes(parsed))
    assert _dict(reencoded) == _dict(expected)
    assert reencoded == expected


def test_execution_spec_case_sets_every_declared_field() -> None:
    spec = execution_spec()
    oneof_others = {"notifications"}  # the other member of notification_overrides (disable_all is set)
    unset = [
        name
        for name in admin.ExecutionSpec._betterproto.meta_by_field_name
        if name not in oneof_others and not spec.is_set(name)
    ]
    assert not unset, f"execution-create-request leaves ExecutionSpec fields unset: {unset}"
    assert spec.disable_all is False


def test_cases_are_not_trivial() -> None:
    # A case whose expected message is empty would pass vacuously.
    for case in CASES:
        assert case.expected_msg().ByteSize() > 0, case.id
    assert len({c.id for c in CASES}) == len(CASES)


# ----------------------------------------------------------------------------------------------------
# The pitfalls of flyteadmin-wire.md §5: empty/zero values inside oneofs must be on the wire
# ----------------------------------------------------------------------------------------------------


def test_none_type_void_is_encoded() -> None:
    lit = core.Literal(scalar=core.Scalar(none_type=core.Void()))
    up = up_literals.Literal.FromString(bytes(lit))
    assert up.HasField("scalar")
    assert up.scalar.WhichOneof("value") == "none_type"
    assert up.scalar.HasField("none_type")


def test_none_type_void_is_decoded() -> None:
    data = up_literals.Literal(scalar=up_literals.Scalar(none_type=up_literals.Void())).SerializeToString()
    assert data  # the official encoder writes the empty message too
    parsed = core.Literal.parse(data)
    assert parsed.scalar is not None
    assert parsed.scalar.none_type == core.Void()
    assert parsed.scalar.primitive is None


def test_disable_all_false_is_encoded() -> None:
    up = up_execution.ExecutionSpec.FromString(bytes(admin.ExecutionSpec(disable_all=False)))
    assert up.WhichOneof("notification_overrides") == "disable_all"
    assert up.disable_all is False


def test_disable_all_false_is_decoded() -> None:
    parsed = admin.ExecutionSpec.parse(up_execution.ExecutionSpec(disable_all=False).SerializeToString())
    assert parsed.disable_all is False
    assert parsed.notifications is None
    assert admin.ExecutionSpec.parse(b"").disable_all is None


def test_empty_task_node_metadata_is_encoded() -> None:
    closure = admin.NodeExecutionClosure(task_node_metadata=admin.TaskNodeMetadata())
    up = up_node_execution.NodeExecutionClosure.FromString(bytes(closure))
    assert up.WhichOneof("target_metadata") == "task_node_metadata"
    assert not up.HasField("workflow_node_metadata")


def test_empty_task_node_metadata_is_decoded() -> None:
    data = up_node_execution.NodeExecutionClosure(
        task_node_metadata=up_node_execution.TaskNodeMetadata()
    ).SerializeToString()
    parsed = admin.NodeExecutionClosure.parse(data)
    assert parsed.task_node_metadata == admin.TaskNodeMetadata()
    assert parsed.workflow_node_metadata is None


def test_generates_deck_false_is_present() -> None:
    up = up_tasks.TaskMetadata.FromString(bytes(core.TaskMetadata(generates_deck=False)))
    assert up.HasField("generates_deck")
    assert up.generates_deck.value is False
    assert not up_tasks.TaskMetadata.FromString(bytes(core.TaskMetadata())).HasField("generates_deck")
    back = core.TaskMetadata.parse(up.SerializeToString())
    assert back.generates_deck is False


def test_interruptible_false_is_present() -> None:
    up = up_tasks.TaskMetadata.FromString(bytes(core.TaskMetadata(interruptible=False)))
    assert up.WhichOneof("interruptible_value") == "interruptible"
    spec = up_execution.ExecutionSpec.FromString(bytes(admin.ExecutionSpec(interruptible=False)))
    assert spec.HasField("interruptible")
    assert spec.interruptible.value is False


@pytest.mark.parametrize(
    ("primitive", "field"),
    [
        pytest.param(core.Primitive(integer=0), "integer", id="integer"),
        pytest.param(core.Primitive(float_value=0.0), "float_value", id="float_value"),
        pytest.param(core.Primitive(string_value=""), "string_value", id="string_value"),
        pytest.param(core.Primitive(boolean=False), "boolean", id="boolean"),
        pytest.param(core.Primitive(duration=timedelta(0)), "duration", id="duration"),
        pytest.param(core.Primitive(datetime=datetime(1970, 1, 1, tzinfo=UTC)), "datetime", id="datetime"),
    ],
)
def test_zero_primitive_is_encoded(primitive: core.Primitive, field: str) -> None:
    up = up_literals.Primitive.FromString(bytes(primitive))
    assert up.WhichOneof("value") == field


def test_workflow_execution_identifier_name_is_field_4() -> None:
    data = bytes(core.WorkflowExecutionIdentifier(name="abc"))
    assert data == b"\x22\x03abc"  # tag = (4 << 3) | 2
    assert up_identifier.WorkflowExecutionIdentifier.FromString(data).name == "abc"
    full = up_identifier.WorkflowExecutionIdentifier(project="p", domain="d", name="n", org="o")
    parsed = core.WorkflowExecutionIdentifier.parse(full.SerializeToString())
    assert (parsed.project, parsed.domain, parsed.name, parsed.org) == ("p", "d", "n", "o")


# ----------------------------------------------------------------------------------------------------
# Fields of flyteidl that our subset leaves out survive a decode/encode by asyncrun (the sandbox stores and
# returns what flytekit registered).
# ----------------------------------------------------------------------------------------------------


def test_unknown_upstream_fields_survive_a_round_trip() -> None:
    template = json_format.ParseDict(TASK_TEMPLATE_JSON, up_tasks.TaskTemplate())
    # Fields not in our subset: TaskMetadata.metadata=16, Container.architecture=10,
    # TaskTemplate.extended_resources=9 and Variable.artifact_tag=4.
    template.metadata.metadata.labels["l"] = "1"
    template.container.architecture = up_tasks.Container.ARM64
    template.extended_resources.gpu_accelerator.device = "nvidia-tesla-t4"
    template.interface.inputs.variables["name"].artifact_tag.artifact_key.name = "k"
    again = up_tasks.TaskTemplate.FromString(bytes(core.TaskTemplate.parse(template.SerializeToString())))
    assert again == template
    assert again.container.architecture == up_tasks.Container.ARM64
    assert again.metadata.metadata.labels["l"] == "1"
