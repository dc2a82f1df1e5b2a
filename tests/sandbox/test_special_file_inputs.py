"""A FIFO (or socket) given as a File/Directory input is refused with one line, locally and with --remote,
instead of blocking forever on the first read (issue 12, item 17)."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from asyncrun import Client
from asyncrun._exceptions import InputError

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

BIN = Path(sys.executable).parent

WORKFLOW = textwrap.dedent(
    """
    from asyncrun import task
    from asyncrun.sdk import Directory, File

    @task
    def count(f: File) -> int:
        with open(f) as handle:
            return len(handle.read())

    @task
    def listing(d: Directory) -> int:
        import os
        return len(os.listdir(d))
    """
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "wf.py").write_text(WORKFLOW)
    return folder


async def asyncrun(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    # The bounded timeout turns the old hang into a failure instead of a stuck test run.
    with anyio.fail_after(90):
        result = await anyio.run_process([str(BIN / "asyncrun"), *args], cwd=cwd, env=env, check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
async def test_fifo_as_file_input_is_a_one_line_input_error(
    sandbox_env, project: Path, tmp_path: Path, remote: bool
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    flags = ["--remote", "--wait"] if remote else []
    code, out, err = await asyncrun(
        dict(os.environ), project, "run", *flags, "wf.py", "count", "--f", str(fifo)
    )
    assert code == 2, out + err
    # the usual shape of a bad option value: usage, then one error line naming the path
    (line,) = [line for line in err.splitlines() if line.startswith("Error:")]
    assert (
        line == f"Error: Invalid value for '--f': {fifo} is a FIFO, not a regular file; give a regular file"
    )
    assert "Traceback" not in err


async def test_fifo_in_an_inputs_file_is_refused(sandbox_env, project: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"f": str(fifo)}))
    code, out, err = await asyncrun(
        dict(os.environ), project, "run", "--remote", "wf.py", "count", "--inputs-file", str(inputs)
    )
    assert code == 2, out + err
    assert "is a FIFO, not a regular file" in err and "Traceback" not in err, err


async def test_socket_and_file_as_directory_input_are_refused(
    sandbox_env, project: Path, tmp_path: Path
) -> None:
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        code, _, err = await asyncrun(
            dict(os.environ), project, "run", "--remote", "wf.py", "listing", "--d", str(path)
        )
    assert code == 2 and "is a socket, not a folder" in err, err


async def test_python_api_upload_refuses_a_fifo(sandbox_env, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    async with Client.from_config() as client:
        with anyio.fail_after(30), pytest.raises(InputError, match="is a FIFO"):
            await client.upload_file(fifo)
        with anyio.fail_after(30), pytest.raises(InputError, match="is a FIFO"):
            await client.upload_file(f"file://{fifo}")
        with anyio.fail_after(30), pytest.raises(InputError, match="is a FIFO, not a folder"):
            await client.upload_directory(fifo)
        with pytest.raises(InputError, match="is a folder, not a regular file"):
            await client.upload_file(tmp_path)


def test_package_walk_skips_a_fifo(tmp_path: Path) -> None:
    from asyncrun.client._package import select_files

    (tmp_path / "code.py").write_text("x = 1\n")
    os.mkfifo(tmp_path / "pipe")
    files = select_files(tmp_path, "all", modules=())
    assert [p.name for p in files] == ["code.py"]
