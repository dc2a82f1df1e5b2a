"""The sandbox with `--blob-store s3://…` on a real S3 server (moto on loopback): code upload,
registration, task inputs and outputs, File/Directory values and GetExecutionData all go through S3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from asyncclick.testing import CliRunner
from grpclib.client import Channel

from asyncrun._proto.flyteidl import admin, core
from asyncrun._proto.flyteidl.service import AdminServiceStub
from asyncrun.cli import cli

from .conftest import bucket_keys

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

HELLO = str(Path(__file__).resolve().parents[2] / "examples" / "hello.py")
PROJECT, DOMAIN = "flytesnacks", "development"

FILES_WF = """
import os
import shutil

from asyncrun import Directory, File, task, workflow


@task
def shout_file(f: File) -> File:
    with open(f) as handle:
        text = handle.read()
    with open("shouted.txt", "w") as handle:
        handle.write(text.upper())
    return File("shouted.txt")


@task
def tree(d: Directory, f: File) -> Directory:
    os.makedirs("out/sub")
    for entry in os.scandir(d):
        shutil.copy(entry.path, "out/")
    shutil.copy(f, "out/sub/shouted.txt")
    return Directory("out")


@task
def describe(d: Directory) -> str:
    names = sorted(os.path.relpath(os.path.join(r, n), d) for r, _, ns in os.walk(d) for n in ns)
    with open(os.path.join(d, "sub", "shouted.txt")) as handle:
        return ";".join(names) + "|" + handle.read()


@workflow
def wf(f: File, d: Directory) -> tuple[File, Directory, str]:
    shouted = shout_file(f=f)
    copied = tree(d=d, f=shouted)
    return shouted, copied, describe(d=copied)
"""


async def asyncrun(*args: str) -> tuple[int, str, str]:
    result = await CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


async def execution_data(info, name: str) -> tuple[admin.WorkflowExecutionGetDataResponse, list]:
    channel = Channel(info.host, info.port)
    try:
        stub = AdminServiceStub(channel)
        ex_id = core.WorkflowExecutionIdentifier(project=PROJECT, domain=DOMAIN, name=name)
        data = await stub.get_execution_data(admin.WorkflowExecutionGetDataRequest(id=ex_id))
        nodes = await stub.list_node_executions(
            admin.NodeExecutionListRequest(workflow_execution_id=ex_id, limit=100)
        )
        tasks = await stub.list_tasks(
            admin.ResourceListRequest(
                id=admin.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN), limit=100
            )
        )
    finally:
        channel.close()
    args = [arg for t in tasks.tasks for arg in t.closure.compiled_task.template.container.args]
    return data, [nodes.node_executions, args]


async def test_hello_runs_with_everything_in_s3(s3_sandbox, bucket, s3_client) -> None:
    code, out, err = await asyncrun(
        "run", "--remote", "--wait", "--name", "hello-s3", HELLO, "wf", "--name", "x"
    )
    assert code == 0, err
    assert out.strip() == "HELLO X HELLO X"

    keys = bucket_keys(s3_client, bucket)
    packages = [key for key in keys if key.endswith(".tar.gz")]
    assert len(packages) == 1 and packages[0].startswith(f"flyte/{PROJECT}/{DOMAIN}/"), keys
    meta = f"flyte/metadata/propeller/{PROJECT}-{DOMAIN}-hello-s3"
    for key in (
        "inputs.pb",
        "outputs.pb",
        "n0/data/inputs.pb",
        "n0/data/0/outputs.pb",
        "n1/data/0/outputs.pb",
    ):
        assert f"{meta}/{key}" in keys, keys
    # Nothing of the run went to the local blob folder.
    local_blobs = Path(s3_sandbox.data_dir) / "blobs"
    assert not [p for p in local_blobs.rglob("*") if p.is_file()]

    data, (nodes, task_args) = await execution_data(s3_sandbox, "hello-s3")
    assert data.inputs is not None and data.inputs.url == f"s3://{bucket}/{meta}/inputs.pb"
    assert data.outputs is not None and data.outputs.url == f"s3://{bucket}/{meta}/outputs.pb"
    stored = core.LiteralMap.parse(
        s3_client.get_object(Bucket=bucket, Key=f"{meta}/outputs.pb")["Body"].read()
    )
    assert data.full_outputs is not None and bytes(stored) == bytes(data.full_outputs)
    assert {node.input_uri for node in nodes if node.id.node_id not in ("start-node", "end-node")} == {
        f"s3://{bucket}/{meta}/n0/data/inputs.pb",
        f"s3://{bucket}/{meta}/n1/data/inputs.pb",
    }
    # The registered tasks fetch their code from S3.
    assert f"s3://{bucket}/{packages[0]}" in task_args

    # Running the same code again uploads nothing new (the client sees the package in the store).
    code, out, err = await asyncrun("run", "--remote", "--wait", HELLO, "wf", "--name", "y")
    assert (code, out.strip()) == (0, "HELLO Y HELLO Y"), err
    assert "code unchanged: upload skipped" in err
    assert [key for key in bucket_keys(s3_client, bucket) if key.endswith(".tar.gz")] == packages


async def test_file_and_directory_inputs_and_outputs_in_s3(s3_sandbox, bucket, s3_client, tmp_path) -> None:
    from asyncrun import Client, Directory, File

    project = tmp_path / "proj"
    project.mkdir()
    (project / "files_wf.py").write_text(FILES_WF)
    text = tmp_path / "note.txt"
    text.write_text("quiet words\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "b.txt").write_text("b")

    code, out, err = await asyncrun(
        # A file:// URL is a local file too: uploaded like the plain path of the folder.
        "run", "--remote", "--wait", "--output", "json", "--name", "files-s3",
        str(project / "files_wf.py"), "wf", "--f", f"file://{text}", "--d", str(folder),
    )  # fmt: skip
    assert code == 0, err
    outputs = json.loads(out)["outputs"]
    shouted, copied, described = outputs["o0"], outputs["o1"], outputs["o2"]
    assert described == "a.txt;b.txt;sub/shouted.txt|QUIET WORDS\n"
    raw = f"s3://{bucket}/flyte/raw/files-s3/"
    assert shouted.startswith(raw) and shouted.endswith("/shouted.txt"), shouted
    assert copied.startswith(raw) and copied.endswith("/out"), copied

    keys = bucket_keys(s3_client, bucket)
    # The local inputs were uploaded through presigned S3 URLs...
    uploaded = [key for key in keys if key.startswith(f"flyte/{PROJECT}/{DOMAIN}/")]
    assert any(key.endswith("/note.txt") for key in uploaded), keys
    assert {key.rsplit("/", 1)[-1] for key in uploaded} >= {"a.txt", "b.txt", "note.txt"}
    # ...and the outputs are objects under the raw prefix, the folder with its tree.
    out_dir = copied.removeprefix(f"s3://{bucket}/")
    assert {key for key in keys if key.startswith(out_dir + "/")} == {
        f"{out_dir}/a.txt", f"{out_dir}/b.txt", f"{out_dir}/sub/shouted.txt",
    }  # fmt: skip

    # The literals name those URIs: the workflow's inputs are s3:// blobs too.
    data, _ = await execution_data(s3_sandbox, "files-s3")
    assert data.full_inputs is not None
    input_uris = {name: lit.scalar.blob.uri for name, lit in data.full_inputs.literals.items()}
    assert all(uri.startswith(f"s3://{bucket}/flyte/{PROJECT}/{DOMAIN}/") for uri in input_uris.values())
    assert data.full_outputs is not None
    assert data.full_outputs.literals["o0"].scalar.blob.uri == shouted

    # The client reads blob outputs back from the store.
    async with Client.from_config() as client:
        execution = await client.get_execution(
            "files-s3", output_types={"o0": File, "o1": Directory, "o2": str}
        )
        assert execution.outputs["o0"] == File(shouted)
        local_file = await client.download(execution.outputs["o0"], tmp_path / "got.txt")
        assert local_file.read_text() == "QUIET WORDS\n"
        local_dir = await client.download(execution.outputs["o1"], tmp_path / "got-dir")
        assert (local_dir / "sub" / "shouted.txt").read_text() == "QUIET WORDS\n"
        assert sorted(p.name for p in local_dir.iterdir()) == ["a.txt", "b.txt", "sub"]
        # An s3:// input is passed on as it is, without another upload.
        assert await client.upload_file(shouted) == shouted


async def test_task_processes_get_the_store_environment(s3_env, bucket) -> None:
    from asyncrun.sandbox._objectstore import ObjectBlobStore

    store = ObjectBlobStore(f"s3://{bucket}/p", endpoint_url="http://127.0.0.1:1234")
    env = store.task_environment()
    assert env["AWS_ENDPOINT_URL"] == env["FSSPEC_S3_ENDPOINT_URL"] == env["FLYTE_AWS_ENDPOINT"]
    assert env["FLYTE_AWS_ENDPOINT"] == "http://127.0.0.1:1234"
    assert env["FLYTE_AWS_ACCESS_KEY_ID"] == "testing" and env["FLYTE_AWS_SECRET_ACCESS_KEY"] == "testing"
    assert store.native_url("p/d/R/f.txt") == f"s3://{bucket}/p/p/d/R/f.txt"
    assert store.relative_from_native(f"s3://{bucket}/p/p/d/R/f.txt") == "p/d/R/f.txt"


async def test_missing_bucket_fails_at_start_in_one_line(s3_env, tmp_path) -> None:
    from asyncrun._exceptions import UsageError
    from asyncrun.sandbox._config import SandboxConfig
    from asyncrun.sandbox._server import running_sandbox

    config = SandboxConfig(
        data_dir=tmp_path / "sb",
        port=0,
        http_port=0,
        blob_store="s3://not-created-bucket/x",
        s3_endpoint=s3_env,
    )
    with pytest.raises(UsageError, match=r"bucket 'not-created-bucket' answered .*create it or check"):
        async with running_sandbox(config):
            pass
