"""`asyncrun-execute`: the in-container runner, driven as a subprocess with inputs written by the test."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from asyncrun._proto.flyteidl import core
from asyncrun.sdk import File
from asyncrun.sdk._literals import literal_map, python_values

EXECUTE = str(Path(sys.executable).parent / "asyncrun-execute")

TASKS = textwrap.dedent(
    """
    import asyncio
    from asyncrun import File, task

    @task
    def add(a: int, b: int = 2) -> int:
        return a + b

    @task
    async def shout(s: str) -> tuple[str, int]:
        await asyncio.sleep(0)
        return s.upper(), len(s)

    @task
    def fail(n: int) -> int:
        raise ValueError(f"boom {n}")

    @task(retries=2)
    def again(n: int) -> int:
        from asyncrun import RecoverableError

        raise RecoverableError(f"try again {n}")

    @task(retries=2)
    def flytekit_again(n: int) -> int:
        from flytekit.exceptions.user import FlyteRecoverableException

        raise FlyteRecoverableException(f"flytekit: try again {n}")

    @task
    def write(text: str) -> File:
        with open("out.txt", "w") as f:
            f.write(text)
        return File("out.txt")
    """
)


def make_distribution(folder: Path, files: dict[str, str]) -> Path:
    dist = folder / "dist.tar.gz"
    with tarfile.open(dist, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return dist


def execute(tmp_path: Path, dist: Path, task_name: str, inputs: core.LiteralMap) -> Path:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (tmp_path / "inputs.pb").write_bytes(bytes(inputs))
    out = tmp_path / "out"
    result = subprocess.run(
        [
            EXECUTE,
            "--inputs",
            str(tmp_path / "inputs.pb"),
            "--output-prefix",
            str(out),
            "--raw-output-data-prefix",
            str(tmp_path / "raw"),
            "--checkpoint-path",
            "{{.checkpointOutputPrefix}}",
            "--prev-checkpoint",
            '""',
            "--distribution",
            str(dist),
            "--dest-dir",
            str(work),
            "--task-module",
            "mytasks",
            "--task-name",
            task_name,
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    return make_distribution(tmp_path, {"mytasks.py": TASKS})


def test_success_writes_outputs(tmp_path: Path, dist: Path) -> None:
    out = execute(tmp_path, dist, "add", literal_map({"a": 40, "b": 2}, {"a": int, "b": int}))
    outputs = python_values(core.LiteralMap.parse((out / "outputs.pb").read_bytes()), {"o0": int})
    assert outputs == {"o0": 42}
    assert not (out / "error.pb").exists()


def test_async_task_with_tuple_outputs(tmp_path: Path, dist: Path) -> None:
    out = execute(tmp_path, dist, "shout", literal_map({"s": "hey"}, {"s": str}))
    outputs = python_values(core.LiteralMap.parse((out / "outputs.pb").read_bytes()), {"o0": str, "o1": int})
    assert outputs == {"o0": "HEY", "o1": 3}


def test_user_error_writes_error_pb_and_exits_zero(tmp_path: Path, dist: Path) -> None:
    out = execute(tmp_path, dist, "fail", literal_map({"n": 7}, {"n": int}))
    doc = core.ErrorDocument.parse((out / "error.pb").read_bytes())
    assert doc.error.code == "USER:ValueError"
    assert "boom 7" in doc.error.message
    assert doc.error.origin == core.ExecutionErrorErrorKind.USER
    assert doc.error.kind == core.ContainerErrorKind.NON_RECOVERABLE
    assert not (out / "outputs.pb").exists()


@pytest.mark.parametrize("task_name", ["again", "flytekit_again"])
def test_a_recoverable_error_is_written_as_recoverable(tmp_path: Path, dist: Path, task_name: str) -> None:
    # Flyte's rule: FlytePropeller (and the sandbox) retry RECOVERABLE user errors only.
    out = execute(tmp_path, dist, task_name, literal_map({"n": 7}, {"n": int}))
    doc = core.ErrorDocument.parse((out / "error.pb").read_bytes())
    assert doc.error.kind == core.ContainerErrorKind.RECOVERABLE
    assert doc.error.origin == core.ExecutionErrorErrorKind.USER
    assert "try again 7" in doc.error.message


def test_a_module_that_exits_at_import_leaves_an_error_document(tmp_path: Path) -> None:
    dist = make_distribution(tmp_path, {"mytasks.py": "import sys\nsys.exit(3)\n"})
    out = execute(tmp_path, dist, "add", literal_map({"a": 1}, {"a": int}))
    doc = core.ErrorDocument.parse((out / "error.pb").read_bytes())
    assert doc.error.origin == core.ExecutionErrorErrorKind.SYSTEM
    assert "cannot import mytasks: it called sys.exit(3)" in doc.error.message


def test_file_outputs_are_copied_under_the_raw_prefix(tmp_path: Path, dist: Path) -> None:
    out = execute(tmp_path, dist, "write", literal_map({"text": "data"}, {"text": str}))
    result = python_values(core.LiteralMap.parse((out / "outputs.pb").read_bytes()), {"o0": File})["o0"]
    path = Path(result.path)
    assert path.is_relative_to(tmp_path / "raw") and path.read_text() == "data"


def test_unknown_task_is_a_system_error(tmp_path: Path, dist: Path) -> None:
    out = execute(tmp_path, dist, "nosuch", literal_map({}, {}))
    doc = core.ErrorDocument.parse((out / "error.pb").read_bytes())
    assert doc.error.origin == core.ExecutionErrorErrorKind.SYSTEM
    assert "not an asyncrun task" in doc.error.message


@pytest.mark.parametrize(
    "member",
    [
        pytest.param(("absolute", "/tmp/evil-asyncrun.py"), id="absolute-path"),
        pytest.param(("dotdot", "../evil.py"), id="dot-dot"),
        pytest.param(("symlink", "/etc/passwd"), id="link-out"),
    ],
)
def test_unsafe_archives_are_refused(tmp_path: Path, member: tuple[str, str]) -> None:
    kind, target = member
    dist = tmp_path / "evil.tar.gz"
    with tarfile.open(dist, "w:gz") as archive:
        if kind == "symlink":
            info = tarfile.TarInfo("mytasks.py")
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
        else:
            data = b"print('pwned')"
            info = tarfile.TarInfo(target)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    out = execute(tmp_path, dist, "add", literal_map({"a": 1}, {"a": int}))
    doc = core.ErrorDocument.parse((out / "error.pb").read_bytes())
    assert doc.error.origin == core.ExecutionErrorErrorKind.SYSTEM
    assert "unsafe code distribution" in doc.error.message
    assert not (tmp_path / "evil.py").exists() and not Path("/tmp/evil-asyncrun.py").exists()


@pytest.mark.parametrize("scheme", ["local://", "file://"])
def test_a_local_uri_input_reaches_the_task_as_a_path(tmp_path: Path, scheme: str) -> None:
    # The sandbox hands out blobs as local:// URIs; the task must be able to open them.
    from asyncrun._execute import localize_files

    data = tmp_path / "data.txt"
    data.write_text("a\nb\n")
    given = File(f"{scheme}{data}")
    got = localize_files(given, File, tmp_path / "work")
    assert got.path == str(data) and got.remote_source == given.path
    with got.open() as handle:
        assert handle.read() == "a\nb\n"
