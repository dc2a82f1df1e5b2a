"""Our hand-maintained protos/ must be a wire-compatible subset of the official flyteidl 1.16.8 protos.

protos/ is compiled with grpc_tools.protoc into a FileDescriptorSet; every message, enum, service and RPC
declared there is looked up by full name in the descriptors of the installed `flyteidl` package and compared
field by field (number, type, type name, repeatedness, oneof membership, map-ness).
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
OUR_PACKAGES = ("flyteidl.core", "flyteidl.admin", "flyteidl.service")

FDP = descriptor_pb2.FieldDescriptorProto


# ----------------------------------------------------------------------------------------------------
# Our descriptors
# ----------------------------------------------------------------------------------------------------


@dataclass
class Declared:
    """Everything protos/ declares in the flyteidl packages, by full name (no leading dot)."""

    messages: dict[str, descriptor_pb2.DescriptorProto] = field(default_factory=dict)
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = field(default_factory=dict)
    services: dict[str, descriptor_pb2.ServiceDescriptorProto] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def compile_protos(out_dir: Path) -> descriptor_pb2.FileDescriptorSet:
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    assert sources, f"no .proto files under {PROTOS}"
    out = out_dir / "asyncrun.protoset"
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"--descriptor_set_out={out}",
        "--include_imports",
        *sources,
    ]
    result = subprocess.run(cmd, cwd=PROTOS, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"protoc failed:\n{result.stderr}"
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(out.read_bytes())
    return fds


def _walk_messages(
    prefix: str, messages: Iterable[descriptor_pb2.DescriptorProto]
) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto]]:
    for msg in messages:
        full = f"{prefix}.{msg.name}"
        yield full, msg
        yield from _walk_messages(full, msg.nested_type)


def index(fds: descriptor_pb2.FileDescriptorSet) -> Declared:
    declared = Declared()
    for file in fds.file:
        if not file.package.startswith(OUR_PACKAGES):
            continue
        declared.files.append(file.name)
        for enum in file.enum_type:
            declared.enums[f"{file.package}.{enum.name}"] = enum
        for full, msg in _walk_messages(file.package, file.message_type):
            declared.messages[full] = msg
            for enum in msg.enum_type:
                declared.enums[f"{full}.{enum.name}"] = enum
        for svc in file.service:
            declared.services[f"{file.package}.{svc.name}"] = svc
    return declared


@cache
def _declared_at_collection() -> Declared:
    # Parametrization needs the names while collecting, before fixtures exist.
    with tempfile.TemporaryDirectory() as tmp:
        return index(compile_protos(Path(tmp)))


@pytest.fixture(scope="session")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Declared:
    return index(compile_protos(tmp_path_factory.mktemp("protoset")))


# ----------------------------------------------------------------------------------------------------
# Upstream (official flyteidl) descriptors
# ----------------------------------------------------------------------------------------------------


@cache
def upstream_pool() -> descriptor_pool.DescriptorPool:
    """The default pool after importing every flyteidl core/admin/service `_pb2` module."""
    import flyteidl

    for info in pkgutil.walk_packages(flyteidl.__path__, prefix="flyteidl."):
        if not info.name.endswith("_pb2"):
            continue
        if not info.name.startswith(("flyteidl.core.", "flyteidl.admin.", "flyteidl.service.")):
            continue
        importlib.import_module(info.name)
    return descriptor_pool.Default()


def upstream_message(full_name: str) -> descriptor_pb2.DescriptorProto:
    try:
        desc = upstream_pool().FindMessageTypeByName(full_name)
    except KeyError:
        pytest.fail(f"message {full_name} does not exist in flyteidl 1.16.8")
    proto = descriptor_pb2.DescriptorProto()
    desc.CopyToProto(proto)
    return proto


def upstream_is_map_entry(type_name: str) -> bool:
    return upstream_pool().FindMessageTypeByName(type_name.lstrip(".")).GetOptions().map_entry


def _oneof_name(msg: descriptor_pb2.DescriptorProto, fld: descriptor_pb2.FieldDescriptorProto) -> str | None:
    if not fld.HasField("oneof_index"):
        return None
    return msg.oneof_decl[fld.oneof_index].name


def _label(fld: descriptor_pb2.FieldDescriptorProto) -> str:
    return FDP.Label.Name(fld.label)


def _type(fld: descriptor_pb2.FieldDescriptorProto) -> str:
    return FDP.Type.Name(fld.type)


# ----------------------------------------------------------------------------------------------------
# Field-by-field conformance
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(_declared_at_collection().messages), ids=str)
def test_message_matches_flyteidl(ours: Declared, name: str) -> None:
    mine = ours.messages[name]
    theirs = upstream_message(name)
    theirs_by_name = {f.name: f for f in theirs.field}
    assert mine.options.map_entry == theirs.options.map_entry, f"{name}: map_entry differs"

    problems: list[str] = []
    for fld in mine.field:
        up = theirs_by_name.get(fld.name)
        if up is None:
            problems.append(f"{fld.name}={fld.number}: no such field upstream")
            continue
        checks = {
            "number": (fld.number, up.number),
            "type": (_type(fld), _type(up)),
            "label": (_label(fld), _label(up)),
            "oneof": (_oneof_name(mine, fld), _oneof_name(theirs, up)),
            "proto3_optional": (fld.proto3_optional, up.proto3_optional),
            "packed": (
                fld.options.packed if fld.options.HasField("packed") else None,
                up.options.packed if up.options.HasField("packed") else None,
            ),
        }
        if fld.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM, FDP.TYPE_GROUP):
            checks["type_name"] = (fld.type_name, up.type_name)
        if fld.type == FDP.TYPE_MESSAGE:
            entry = ours.messages.get(fld.type_name.lstrip("."))
            our_map = entry is not None and entry.options.map_entry
            their_map = up.type == FDP.TYPE_MESSAGE and upstream_is_map_entry(up.type_name)
            checks["map"] = (our_map, their_map)
        for what, (a, b) in checks.items():
            if a != b:
                problems.append(f"{fld.name}: {what} is {a!r} here but {b!r} in flyteidl")
    assert not problems, f"{name} differs from flyteidl 1.16.8:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("name", sorted(_declared_at_collection().enums), ids=str)
def test_enum_matches_flyteidl(ours: Declared, name: str) -> None:
    mine = ours.enums[name]
    try:
        desc = upstream_pool().FindEnumTypeByName(name)
    except KeyError:
        pytest.fail(f"enum {name} does not exist in flyteidl 1.16.8")
    theirs = {v.name: v.number for v in desc.values}
    problems = [
        f"{v.name}={v.number} (flyteidl: {theirs.get(v.name, 'missing')})"
        for v in mine.value
        if theirs.get(v.name) != v.number
    ]
    assert not problems, f"{name} values differ from flyteidl: {problems}"


def _declared_rpcs() -> list[tuple[str, str]]:
    return [
        (svc_name, method.name)
        for svc_name, svc in sorted(_declared_at_collection().services.items())
        for method in svc.method
    ]


@pytest.mark.parametrize(("service", "rpc"), _declared_rpcs(), ids=lambda v: v)
def test_rpc_matches_flyteidl(ours: Declared, service: str, rpc: str) -> None:
    (method,) = [m for m in ours.services[service].method if m.name == rpc]
    try:
        svc = upstream_pool().FindServiceByName(service)
    except KeyError:
        pytest.fail(f"service {service} does not exist in flyteidl 1.16.8")
    up = svc.methods_by_name.get(rpc)
    assert up is not None, f"{service}/{rpc} does not exist in flyteidl 1.16.8"
    assert method.input_type.lstrip(".") == up.input_type.full_name
    assert method.output_type.lstrip(".") == up.output_type.full_name
    assert method.client_streaming == up.client_streaming
    assert method.server_streaming == up.server_streaming


def test_declarations_were_found(ours: Declared) -> None:
    # Guards against the walk silently finding nothing (which would make every parametrized test vacuous).
    assert len(ours.messages) > 100
    assert len(ours.enums) > 10
    assert set(ours.services) >= {
        "flyteidl.service.AdminService",
        "flyteidl.service.DataProxyService",
        "flyteidl.service.SignalService",
    }
    assert ours.messages.keys() == _declared_at_collection().messages.keys()


def test_workflow_execution_identifier_has_no_field_3(ours: Declared) -> None:
    numbers = {f.name: f.number for f in ours.messages["flyteidl.core.WorkflowExecutionIdentifier"].field}
    assert numbers["name"] == 4
    assert 3 not in numbers.values()


# ----------------------------------------------------------------------------------------------------
# Every message, enum and RPC named in flyteadmin-wire.md §3.1-§3.4 is declared
# ----------------------------------------------------------------------------------------------------

CORE = "flyteidl.core."
ADMIN = "flyteidl.admin."
SVC = "flyteidl.service."

REQUIRED_MESSAGES = [
    # §3.1 flyteidl.core
    *(
        CORE + n
        for n in (
            "Identifier",
            "WorkflowExecutionIdentifier",
            "NodeExecutionIdentifier",
            "TaskExecutionIdentifier",
            "Primitive",
            "Scalar",
            "Schema",
            "Void",
            "Error",
            "StructuredDataset",
            "Blob",
            "BlobMetadata",
            "BlobType",
            "Binary",
            "Union",
            "Literal",
            "LiteralCollection",
            "LiteralMap",
            "LiteralOffloadedMetadata",
            "LiteralType",
            "EnumType",
            "StructuredDatasetType",
            "UnionType",
            "TypeAnnotation",
            "TypeStructure",
            "Variable",
            "VariableMap",
            "TypedInterface",
            "Parameter",
            "ParameterMap",
            "TaskTemplate",
            "TaskMetadata",
            "RuntimeMetadata",
            "RetryStrategy",
            "SecurityContext",
            "Container",
            "Resources",
            "Resources.ResourceEntry",
            "KeyValuePair",
            "WorkflowTemplate",
            "WorkflowMetadata",
            "WorkflowMetadataDefaults",
            "Node",
            "NodeMetadata",
            "TaskNode",
            "TaskNodeOverrides",
            "WorkflowNode",
            "Binding",
            "BindingData",
            "BindingDataCollection",
            "BindingDataMap",
            "UnionInfo",
            "OutputReference",
            "PromiseAttribute",
            "CompiledWorkflowClosure",
            "CompiledWorkflow",
            "CompiledTask",
            "ConnectionSet",
            "ConnectionSet.IdList",
            "ExecutionError",
            "TaskLog",
            "ErrorDocument",
            "ContainerError",
            "QualityOfService",
        )
    ),
    # §3.2 flyteidl.admin
    *(
        ADMIN + n
        for n in (
            "TaskCreateRequest",
            "TaskCreateResponse",
            "TaskSpec",
            "Task",
            "TaskClosure",
            "TaskList",
            "DescriptionEntity",
            "WorkflowCreateRequest",
            "WorkflowCreateResponse",
            "WorkflowSpec",
            "Workflow",
            "WorkflowClosure",
            "WorkflowList",
            "LaunchPlanCreateRequest",
            "LaunchPlanCreateResponse",
            "LaunchPlanSpec",
            "LaunchPlanMetadata",
            "LaunchPlan",
            "LaunchPlanClosure",
            "LaunchPlanList",
            "LaunchPlanUpdateRequest",
            "LaunchPlanUpdateResponse",
            "ActiveLaunchPlanRequest",
            "ObjectGetRequest",
            "NamedEntityIdentifier",
            "ResourceListRequest",
            "NamedEntityIdentifierListRequest",
            "NamedEntityIdentifierList",
            "Sort",
            "UrlBlob",
            "Labels",
            "Annotations",
            "Envs",
            "RawOutputDataConfig",
            "AuthRole",
            "ClusterAssignment",
            "ExecutionClusterLabel",
            "NotificationList",
            "ExecutionCreateRequest",
            "ExecutionCreateResponse",
            "ExecutionSpec",
            "ExecutionMetadata",
            "SystemMetadata",
            "Execution",
            "ExecutionList",
            "ExecutionClosure",
            "LiteralMapBlob",
            "AbortMetadata",
            "ExecutionStateChangeDetails",
            "WorkflowExecutionGetRequest",
            "WorkflowExecutionGetDataRequest",
            "WorkflowExecutionGetDataResponse",
            "ExecutionTerminateRequest",
            "ExecutionTerminateResponse",
            "ExecutionUpdateRequest",
            "NodeExecutionListRequest",
            "NodeExecutionList",
            "NodeExecution",
            "NodeExecutionMetaData",
            "NodeExecutionClosure",
            "WorkflowNodeMetadata",
            "TaskNodeMetadata",
            "NodeExecutionGetRequest",
            "NodeExecutionGetDataRequest",
            "NodeExecutionGetDataResponse",
            "FlyteURLs",
            "TaskExecutionListRequest",
            "TaskExecutionList",
            "TaskExecution",
            "TaskExecutionClosure",
            "TaskExecutionGetRequest",
            "TaskExecutionGetDataRequest",
            "TaskExecutionGetDataResponse",
            "ProjectListRequest",
            "Projects",
            "Project",
            "Domain",
            "GetDomainRequest",
            "GetDomainsResponse",
            "GetVersionRequest",
            "GetVersionResponse",
            "Version",
        )
    ),
    # §3.3 flyteidl.service (DataProxyService)
    *(
        SVC + n
        for n in (
            "CreateUploadLocationRequest",
            "CreateUploadLocationResponse",
            "CreateDownloadLocationRequest",
            "CreateDownloadLocationResponse",
            "CreateDownloadLinkRequest",
            "CreateDownloadLinkResponse",
            "PreSignedURLs",
            "GetDataRequest",
            "GetDataResponse",
        )
    ),
]

# The enum tables of §3.1-§3.3, value name -> number (only what the doc lists; flyteidl may have more).
REQUIRED_ENUMS: dict[str, dict[str, int]] = {
    CORE + "ResourceType": {"UNSPECIFIED": 0, "TASK": 1, "WORKFLOW": 2, "LAUNCH_PLAN": 3, "DATASET": 4},
    CORE + "SimpleType": {
        "NONE": 0,
        "INTEGER": 1,
        "FLOAT": 2,
        "STRING": 3,
        "BOOLEAN": 4,
        "DATETIME": 5,
        "DURATION": 6,
        "BINARY": 7,
        "ERROR": 8,
        "STRUCT": 9,
    },
    CORE + "WorkflowExecution.Phase": {
        "UNDEFINED": 0,
        "QUEUED": 1,
        "RUNNING": 2,
        "SUCCEEDING": 3,
        "SUCCEEDED": 4,
        "FAILING": 5,
        "FAILED": 6,
        "ABORTED": 7,
        "TIMED_OUT": 8,
        "ABORTING": 9,
    },
    CORE + "NodeExecution.Phase": {
        "UNDEFINED": 0,
        "QUEUED": 1,
        "RUNNING": 2,
        "SUCCEEDED": 3,
        "FAILING": 4,
        "FAILED": 5,
        "ABORTED": 6,
        "SKIPPED": 7,
        "TIMED_OUT": 8,
        "DYNAMIC_RUNNING": 9,
        "RECOVERED": 10,
    },
    CORE + "TaskExecution.Phase": {
        "UNDEFINED": 0,
        "QUEUED": 1,
        "RUNNING": 2,
        "SUCCEEDED": 3,
        "ABORTED": 4,
        "FAILED": 5,
        "INITIALIZING": 6,
        "WAITING_FOR_RESOURCES": 7,
        "RETRYABLE_FAILED": 8,
    },
    CORE + "BlobType.BlobDimensionality": {"SINGLE": 0, "MULTIPART": 1},
    CORE + "RuntimeMetadata.RuntimeType": {"OTHER": 0, "FLYTE_SDK": 1},
    CORE + "ExecutionError.ErrorKind": {"UNKNOWN": 0, "USER": 1, "SYSTEM": 2},
    CORE + "ContainerError.Kind": {"NON_RECOVERABLE": 0, "RECOVERABLE": 1},
    ADMIN + "LaunchPlanState": {"INACTIVE": 0, "ACTIVE": 1},
    ADMIN + "Sort.Direction": {"DESCENDING": 0, "ASCENDING": 1},
    ADMIN + "ExecutionMetadata.ExecutionMode": {
        "MANUAL": 0,
        "SCHEDULED": 1,
        "SYSTEM": 2,
        "RELAUNCH": 3,
        "CHILD_WORKFLOW": 4,
        "RECOVERED": 5,
        "TRIGGER": 6,
    },
    ADMIN + "ExecutionState": {"EXECUTION_ACTIVE": 0, "EXECUTION_ARCHIVED": 1},
    ADMIN + "Project.ProjectState": {"ACTIVE": 0, "ARCHIVED": 1, "SYSTEM_GENERATED": 2, "SYSTEM_ARCHIVED": 3},
    SVC + "ArtifactType": {"ARTIFACT_TYPE_UNDEFINED": 0, "ARTIFACT_TYPE_DECK": 1},
}

# §3.4, plus the AuthMetadataService calls of §0.
REQUIRED_RPCS = [
    *(
        "AdminService." + n
        for n in (
            "CreateTask",
            "CreateWorkflow",
            "CreateLaunchPlan",
            "GetTask",
            "GetWorkflow",
            "GetLaunchPlan",
            "CreateExecution",
            "GetExecution",
            "GetExecutionData",
            "ListNodeExecutions",
            "GetNodeExecutionData",
            "ListTaskExecutions",
            "GetTaskExecution",
            "GetTaskExecutionData",
            "ListLaunchPlanIds",
            "ListWorkflowIds",
            "ListTaskIds",
            "GetActiveLaunchPlan",
            "ListLaunchPlans",
            "ListWorkflows",
            "ListTasks",
            "ListExecutions",
            "TerminateExecution",
            "UpdateLaunchPlan",
            "ListProjects",
            "GetDomains",
            "GetVersion",
            "GetNodeExecution",
        )
    ),
    "DataProxyService.CreateUploadLocation",
    "DataProxyService.CreateDownloadLink",
    # Gates wait for signals (issue 13).
    "SignalService.GetOrCreateSignal",
    "SignalService.ListSignals",
    "SignalService.SetSignal",
    "DataProxyService.GetData",
    "AuthMetadataService.GetPublicClientConfig",
    "AuthMetadataService.GetOAuth2Metadata",
]


def test_doc_messages_are_declared(ours: Declared) -> None:
    assert len(REQUIRED_MESSAGES) == len(set(REQUIRED_MESSAGES))
    missing = [name for name in REQUIRED_MESSAGES if name not in ours.messages]
    assert not missing, f"messages listed in flyteadmin-wire.md §3 missing from protos/: {missing}"


def test_doc_enums_are_declared(ours: Declared) -> None:
    problems: list[str] = []
    for name, values in REQUIRED_ENUMS.items():
        enum = ours.enums.get(name)
        if enum is None:
            problems.append(f"{name}: missing")
            continue
        have = {v.name: v.number for v in enum.value}
        wrong = {k: have.get(k) for k, number in values.items() if have.get(k) != number}
        if wrong:
            problems.append(f"{name}: expected {values}, got {wrong} for these")
    assert not problems, "enums of flyteadmin-wire.md §3 differ:\n  " + "\n  ".join(problems)


def test_doc_rpcs_are_declared(ours: Declared) -> None:
    declared = {
        f"{svc_name.removeprefix(SVC)}.{m.name}"
        for svc_name, svc in ours.services.items()
        for m in svc.method
    }
    missing = [rpc for rpc in REQUIRED_RPCS if rpc not in declared]
    assert not missing, f"RPCs listed in flyteadmin-wire.md §3.4 missing from protos/: {missing}"


# ----------------------------------------------------------------------------------------------------
# What the workflow engine runs (issue 13): node kinds, dynamic specs, cache metadata and signals
# ----------------------------------------------------------------------------------------------------

ENGINE_FIELDS = {
    CORE + "Node": {"output_aliases", "branch_node", "gate_node", "array_node", "task_node", "workflow_node"},
    CORE + "Alias": {"var", "alias"},
    CORE + "WorkflowTemplate": {"failure_node"},
    CORE + "TaskNodeOverrides": {"resources", "container_image"},
    CORE + "BranchNode": {"if_else"},
    CORE + "IfElseBlock": {"case", "other", "else_node", "error"},
    CORE + "IfBlock": {"condition", "then_node"},
    CORE + "BooleanExpression": {"conjunction", "comparison"},
    CORE + "ConjunctionExpression": {"operator", "left_expression", "right_expression"},
    CORE + "ComparisonExpression": {"operator", "left_value", "right_value"},
    CORE + "Operand": {"primitive", "var", "scalar"},
    CORE + "GateNode": {"approve", "signal", "sleep"},
    CORE + "ApproveCondition": {"signal_id"},
    CORE + "SignalCondition": {"signal_id", "type", "output_variable_name"},
    CORE + "SleepCondition": {"duration"},
    CORE + "ArrayNode": {
        "node",
        "parallelism",
        "min_successes",
        "min_success_ratio",
        "execution_mode",
        "is_original_sub_node_interface",
        "data_mode",
        "bound_inputs",
        "run_all_sub_nodes",
    },
    CORE + "DynamicJobSpec": {"nodes", "min_successes", "outputs", "tasks", "subworkflows"},
    CORE + "CatalogMetadata": {"dataset_id", "artifact_tag", "source_task_execution"},
    CORE + "CatalogArtifactTag": {"artifact_id", "name"},
    CORE + "SignalIdentifier": {"signal_id", "execution_id"},
    ADMIN + "TaskNodeMetadata": {"cache_status", "catalog_key"},
    ADMIN + "NodeExecutionClosure": {"task_node_metadata", "dynamic_job_spec_uri"},
    ADMIN + "Signal": {"id", "type", "value"},
    ADMIN + "SignalGetOrCreateRequest": {"id", "type"},
    ADMIN + "SignalListRequest": {"workflow_execution_id", "limit", "token", "filters", "sort_by"},
    ADMIN + "SignalList": {"signals", "token"},
    ADMIN + "SignalSetRequest": {"id", "value"},
    ADMIN + "SignalSetResponse": set(),
}


@pytest.mark.parametrize("name", sorted(ENGINE_FIELDS), ids=str)
def test_engine_fields_are_declared(ours: Declared, name: str) -> None:
    # test_message_matches_flyteidl then checks each field's number and type against flyteidl.
    message = ours.messages.get(name)
    assert message is not None, f"{name} is missing from protos/"
    missing = ENGINE_FIELDS[name] - {f.name for f in message.field}
    assert not missing, f"{name} lacks fields the engine needs: {sorted(missing)}"
