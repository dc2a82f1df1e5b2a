"""The specs asyncrun registers for map tasks, branches, gates, failure nodes, task options and
dynamic tasks decode with the official flyteidl and have the shape flytekit 1.16 gives its equivalent
(tests/wire/flytekit_features.py): the same node kinds and the same fields set.

Values that differ by design are left out of the comparison: ids, names, versions, images, container
args (asyncrun-execute instead of pyflyte-execute), runtime metadata and descriptions.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import pytest
from flyteidl.admin import task_pb2, workflow_pb2
from flyteidl.core import dynamic_job_pb2
from google.protobuf.json_format import MessageToDict

from asyncrun.client._serialize import SerializationSettings, plan_registration

# By design different (ids, names, images, the command), or flytekit-only (decks).
IGNORED = {"id", "referenceId", "name", "version", "image", "args", "runtime", "description", "generatesDeck"}


def shape(value: Any, path: str = "") -> Any:
    """Which fields are set, recursively; leaves become their type (enum values are kept).

    Empty messages count as unset, except where both sides agree on them: flytekit sends an empty
    `overrides` and task `metadata.metadata` that carry nothing.
    """
    if isinstance(value, dict):
        return {
            key: shape(item, f"{path}.{key}")
            for key, item in sorted(value.items())
            if key not in IGNORED and not (key in ("overrides", "metadata") and item == {})
        }
    if isinstance(value, list):
        return [shape(item, path) for item in value]
    if isinstance(value, str) and value.isupper():
        return value  # enum names (operators, resource names, mount types, modes)
    return type(value).__name__


def asyncrun_specs(entity: Any) -> dict[str, Any]:
    plan = plan_registration(entity, SerializationSettings(project="p", domain="d"), code_md5=b"x")
    found: dict[str, Any] = {}
    for ident, spec in plan.tasks:
        found[ident.name.rsplit(".", 1)[-1]] = MessageToDict(
            task_pb2.TaskSpec.FromString(bytes(spec)).template
        )
    for ident, spec in plan.workflows:
        template = workflow_pb2.WorkflowSpec.FromString(bytes(spec)).template
        found[ident.name.rsplit(".", 1)[-1]] = MessageToDict(template)
    return found


def flytekit_specs(entity: Any) -> dict[str, Any]:
    from flytekit.configuration import ImageConfig
    from flytekit.configuration import SerializationSettings as FlytekitSettings
    from flytekit.models.admin.workflow import WorkflowSpec
    from flytekit.models.task import TaskSpec
    from flytekit.tools.translator import get_serializable

    settings = FlytekitSettings(
        image_config=ImageConfig.auto_default_image(), project="p", domain="d", version="v"
    )
    entries: OrderedDict[Any, Any] = OrderedDict()
    get_serializable(entries, settings, entity)
    found: dict[str, Any] = {}
    for model in entries.values():
        if isinstance(model, TaskSpec):
            found[model.template.id.name.rsplit(".", 1)[-1]] = MessageToDict(model.template.to_flyte_idl())
        elif isinstance(model, WorkflowSpec):
            found[model.template.id.name.rsplit(".", 1)[-1]] = MessageToDict(model.template.to_flyte_idl())
    return found


@pytest.fixture(scope="module")
def modules() -> tuple[Any, Any]:
    from sdk_features import features_wfs

    from wire import flytekit_features

    return features_wfs, flytekit_features


def both(modules: tuple[Any, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    ours, theirs = modules
    return asyncrun_specs(getattr(ours, name)), flytekit_specs(getattr(theirs, name))


@pytest.mark.parametrize("name", ["branchy", "only_negative", "slept", "approved", "asked", "guarded"])
def test_workflow_nodes_have_flytekits_shape(modules: tuple[Any, Any], name: str) -> None:
    ours, theirs = both(modules, name)
    assert shape(ours[name]["nodes"]) == shape(theirs[name]["nodes"])
    assert shape(ours[name].get("failureNode")) == shape(theirs[name].get("failureNode"))
    assert shape(ours[name]["outputs"]) == shape(theirs[name]["outputs"])


def test_a_map_task_has_flytekits_shape(modules: tuple[Any, Any]) -> None:
    ours, theirs = both(modules, "mapped")
    assert shape(ours["mapped"]["nodes"]) == shape(theirs["mapped"]["nodes"])
    (our_map,) = [spec for name, spec in ours.items() if name.startswith("map_")]
    (their_map,) = [spec for name, spec in theirs.items() if name.startswith("map_")]
    assert our_map["taskTypeVersion"] == their_map["taskTypeVersion"] == 1
    # the same list interface, Optional elements for a tolerant map (modulo descriptions)
    for side in ("inputs", "outputs"):
        assert shape(our_map["interface"][side]) == shape(their_map["interface"][side])


def test_task_options_have_flytekits_shape(modules: tuple[Any, Any]) -> None:
    ours, theirs = both(modules, "optioned")
    mine, flytekits = ours["optioned"], theirs["optioned"]
    for key in ("metadata", "securityContext"):
        assert shape(mine[key]) == shape(flytekits[key]), key
    assert mine["securityContext"] == flytekits["securityContext"]
    assert mine["container"]["resources"] == flytekits["container"]["resources"]
    assert mine["container"]["env"] == flytekits["container"]["env"]
    for key in (
        "retries",
        "timeout",
        "discoverable",
        "discoveryVersion",
        "cacheSerializable",
        "interruptible",
    ):
        assert mine["metadata"][key] == flytekits["metadata"][key], key


def test_a_dynamic_tasks_futures_decode_with_flyteidl(tmp_path, monkeypatch) -> None:
    from asyncrun._execute import main
    from asyncrun.sdk._literals import literal_map

    inputs = tmp_path / "inputs.pb"
    inputs.write_bytes(bytes(literal_map({"n": 3}, {"n": int})))
    for var, value in (("PROJECT", "p"), ("DOMAIN", "d"), ("VERSION", "v")):
        monkeypatch.setenv(f"FLYTE_INTERNAL_TASK_{var}", value)
    args = ["--inputs", str(inputs), "--output-prefix", str(tmp_path / "out"), "--image", "img"]
    assert main([*args, "--task-module", "sdk_features.features_wfs", "--task-name", "nested"]) == 0
    spec = dynamic_job_pb2.DynamicJobSpec.FromString((tmp_path / "out" / "futures.pb").read_bytes())
    assert [node.task_node.reference_id.name.rsplit(".", 1)[-1] for node in spec.nodes] == [
        "fan_out",
        "fan_out",
        "fan_out",
        "total",
    ]
    assert spec.min_successes == 4
    assert sorted(t.id.name.rsplit(".", 1)[-1] for t in spec.tasks) == ["fan_out", "total"]
    # a nested dynamic task carries the image its own children need
    fan_out = next(t for t in spec.tasks if t.id.name.endswith("fan_out"))
    assert fan_out.container.args[-2:] == ["--image", "img"]
    assert os.path.exists(tmp_path / "out" / "futures.pb")
