"""flytekit's registration specs survive the trip into asyncrun's messages (our protos/ are a subset:
fields we do not declare are kept as unknown fields and sent on unchanged)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import CORPUS


@pytest.fixture
def loaded(tmp_path: Path):
    from asyncrun.sdk._loader import load_file

    def load(name: str, module: str):
        folder = tmp_path / module
        folder.mkdir()
        shutil.copy(CORPUS / name, folder / f"{module}.py")
        return load_file(folder / f"{module}.py")

    return load


@pytest.mark.parametrize("file", ["c01_chain.py", "c02_subwf_lp.py", "c03_types.py"])
def test_every_spec_round_trips_without_losing_fields(loaded, file: str) -> None:
    from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2

    from asyncrun.client._serialize import SerializationSettings
    from asyncrun.interop._serialize import _flytekit_settings, _plan, _serialize

    module = f"spec_{file.removesuffix('.py')}"
    settings = SerializationSettings(project="p", domain="d", distribution="s3://bucket/fastabc.tar.gz")
    official = {"task": task_pb2.TaskSpec, "workflow": workflow_pb2.WorkflowSpec}
    checked = 0
    for _, entity in loaded(file, module).foreign:
        entries = _serialize(entity, _flytekit_settings(settings, (), "v1", str(entity.source_file.parent)))
        plan = _plan(entity, entries, "v1")
        ours = {bytes(ident): spec for ident, spec in [*plan.tasks, *plan.ordered]}
        for kind, ident, spec in entries:
            converted = ours[ident.SerializeToString()]
            back = official.get(kind, launch_plan_pb2.LaunchPlanSpec).FromString(bytes(converted))
            assert back == spec, f"{kind} {ident.name} lost or changed fields"
            checked += 1
    assert checked


def test_flytekit_fields_our_protos_lack_are_kept(loaded) -> None:
    # TaskMetadata.metadata (field 16) is not in protos/: it must still be sent.
    from asyncrun.client._serialize import SerializationSettings
    from asyncrun.interop._serialize import _flytekit_settings, _plan, _serialize

    entity = dict(loaded("c01_chain.py", "spec_unknown").foreign)["say_hello"]
    settings = SerializationSettings(project="p", domain="d", distribution="s3://bucket/fastabc.tar.gz")
    entries = _serialize(entity, _flytekit_settings(settings, (), "v1", str(entity.source_file.parent)))
    original = entries[0][2]
    assert original.template.metadata.HasField("metadata")
    (_, spec), *_ = _plan(entity, entries, "v1").tasks
    assert spec.template.metadata._unknown_fields  # not a declared field here...
    assert original.template.metadata.metadata.SerializeToString() in bytes(spec)  # ...but sent


def test_container_args_and_image_are_pyflytes(loaded) -> None:
    import flytekit

    from asyncrun.client._serialize import SerializationSettings

    entity = dict(loaded("c01_chain.py", "spec_args").foreign)["wf"]
    settings = SerializationSettings(project="p", domain="d", distribution="s3://bucket/fastabc.tar.gz")
    plan = entity.registration_plan(settings, code_md5=b"0" * 16, images=("other=ghcr.io/x/y:1",))
    template = {ident.name: spec for ident, spec in plan.tasks}["spec_args.say_hello"].template
    assert template.container.image == f"cr.flyte.org/flyteorg/flytekit:py3.11-{flytekit.__version__}"
    assert template.container.args[:5] == [
        "pyflyte-fast-execute",
        "--additional-distribution",
        "s3://bucket/fastabc.tar.gz",
        "--dest-dir",
        ".",
    ]
    assert template.container.args[-7:] == [
        "--resolver",
        "flytekit.core.python_auto_container.default_task_resolver",
        "--",
        "task-module",
        "spec_args",
        "task-name",
        "say_hello",
    ]
    assert "pyflyte-execute" in template.container.args
    again = entity.registration_plan(settings, code_md5=b"0" * 16, images=("other=ghcr.io/x/y:1",))
    assert again.version == plan.version  # content-derived
    changed = entity.registration_plan(settings, code_md5=b"1" * 16, images=())
    assert changed.version != plan.version
    custom = entity.registration_plan(settings, code_md5=b"0" * 16, images=("ghcr.io/me/img:2",))
    assert {spec.template.container.image for _, spec in custom.tasks} == {"ghcr.io/me/img:2"}


def test_a_bad_image_is_one_line(loaded) -> None:
    from asyncrun._exceptions import UsageError
    from asyncrun.client._serialize import SerializationSettings

    entity = dict(loaded("c01_chain.py", "spec_bad_image").foreign)["wf"]
    settings = SerializationSettings(project="p", domain="d", distribution="s3://bucket/fastabc.tar.gz")
    with pytest.raises(UsageError, match="missing tag or digest"):
        entity.registration_plan(settings, code_md5=b"0" * 16, images=("notag",))
