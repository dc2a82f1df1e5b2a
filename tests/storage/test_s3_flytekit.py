"""flytekit's real `pyflyte run --remote --wait` against the sandbox with `--blob-store s3://…` (moto on
loopback): fast-registered code, inputs, outputs and a FlyteFile input all pass through S3."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import forkserver
import pytest

from .conftest import bucket_keys

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

BIN = Path(sys.executable).parent

WORKFLOWS = (Path(__file__).parents[1] / "flytekit_wfs.py").read_text()


async def pyflyte(sandbox, project: Path, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "FLYTE_PLATFORM_URL": sandbox.endpoint,
        "FLYTE_PLATFORM_INSECURE": "True",
        # flytekit's own names for the object store, as a Flyte user's environment has them.
        "FLYTE_AWS_ENDPOINT": os.environ["AWS_ENDPOINT_URL"],
        "FLYTE_AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "FLYTE_AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "HOME": str(project.parent),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    argv = [str(BIN / "pyflyte"), "run", "--remote", "--wait", "--poll-interval", "1", *args]
    result = await forkserver.arun(argv, cwd=project, env=env)  # flytekit imported once (tests/forkserver.py)
    return result.returncode, result.stdout + result.stderr


async def test_pyflyte_run_remote_through_s3(s3_sandbox, bucket, s3_client, tmp_path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "wfs.py").write_text(WORKFLOWS)
    lines = tmp_path / "lines.txt"
    lines.write_text("1\n2\n3\n")

    code, out = await pyflyte(s3_sandbox, project, "--name", "fk-wf", "wfs.py", "wf", "--name", "x")
    assert code == 0, out
    assert "has succeeded" in out
    code, out = await pyflyte(
        s3_sandbox, project, "--name", "fk-file", "wfs.py", "count_lines", "--f", str(lines)
    )
    assert code == 0, out

    keys = bucket_keys(s3_client, bucket)
    assert any(key.endswith(".tar.gz") for key in keys), keys  # the fast-registered code
    assert any(key.endswith("/lines.txt") for key in keys), keys  # the uploaded FlyteFile input
    for name in ("fk-wf", "fk-file"):
        assert f"flyte/metadata/propeller/flytesnacks-development-{name}/outputs.pb" in keys, keys

    from asyncrun import Client

    async with Client.from_config() as client:
        assert (await client.get_execution("fk-wf")).outputs == {"o0": "HELLO X HELLO X"}
        assert (await client.get_execution("fk-file")).outputs == {"o0": 3}


DECK_WORKFLOW = """
from flytekit import task, workflow


@task(enable_deck=True)
def shout(s: str) -> str:
    return s.upper()


@workflow
def wf(s: str) -> str:
    return shout(s=s)
"""


async def test_a_task_deck_is_signed_where_flytepropeller_keeps_it(s3_sandbox, bucket, tmp_path) -> None:
    """flytekit's remote suite (test_get_download_artifact_signed_url): a task with `enable_deck` leaves
    `deck.html` beside its outputs; the node reports it and `CreateDownloadLink` signs it, at
    FlytePropeller's path `metadata/propeller/<project>-<domain>-<name>/<node>/data/<attempt>/`."""
    import httpx
    from flyteidl.service import dataproxy_pb2
    from flytekit.clients.friendly import SynchronousFlyteClient
    from flytekit.configuration import PlatformConfig

    project = tmp_path / "proj"
    project.mkdir()
    (project / "decks.py").write_text(DECK_WORKFLOW)
    code, out = await pyflyte(s3_sandbox, project, "--name", "fk-deck", "decks.py", "wf", "--s", "hi")
    assert code == 0, out

    def signed_url() -> str:
        client = SynchronousFlyteClient(PlatformConfig.for_endpoint(s3_sandbox.endpoint, True))
        response = client.get_download_artifact_signed_url(
            node_id="n0",
            project="flytesnacks",
            domain="development",
            name="fk-deck",
            artifact_type=dataproxy_pb2.ARTIFACT_TYPE_DECK,
        )
        return response.signed_url[0]

    url = await anyio.to_thread.run_sync(signed_url)
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    expected = (
        f"{endpoint}/{bucket}/flyte/metadata/propeller/flytesnacks-development-fk-deck/n0/data/0/deck.html"
    )
    assert url.startswith(expected), url
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200 and "<html" in response.text.lower()
