"""flytekit's real `pyflyte run --remote --wait` against the sandbox with `--blob-store s3://…` (moto on
loopback): fast-registered code, inputs, outputs and a FlyteFile input all pass through S3."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
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
    result = await anyio.run_process(
        [str(BIN / "pyflyte"), "run", "--remote", "--wait", "--poll-interval", "1", *args],
        cwd=project,
        env=env,
        check=False,
    )
    return result.returncode, (result.stdout + result.stderr).decode(errors="replace")


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
        assert f"flyte/metadata/flytesnacks/development/{name}/outputs.pb" in keys, keys

    from asyncrun import Client

    async with Client.from_config() as client:
        assert (await client.get_execution("fk-wf")).outputs == {"o0": "HELLO X HELLO X"}
        assert (await client.get_execution("fk-file")).outputs == {"o0": 3}
