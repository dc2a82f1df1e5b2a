"""The flytekit corpus (tests/interop/corpus/, unchanged flytekit files) run by the installed `asyncrun` and
`pyflyte` scripts in subprocesses, each in a scratch copy of the corpus with its own HOME (flytekit's local
cache lives in ~/.flyte)."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

BIN = Path(sys.executable).parent
CORPUS = Path(__file__).parent / "corpus"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scratch project holding a copy of the corpus (no __init__.py: the folder is the project root)."""
    folder = tmp_path / "proj"
    folder.mkdir()
    for path in CORPUS.glob("*.py"):
        shutil.copy(path, folder / path.name)
    (tmp_path / "home").mkdir()
    return folder


def environment(project: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "HOME": str(project.parent / "home"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **extra,
    }
    env.pop("FLYTECTL_CONFIG", None)
    return env


async def run_script(script: str, *args: str, cwd: Path, stdin: str | None = None, **env: str) -> Result:
    result = await anyio.run_process(
        [str(BIN / script), *args],
        cwd=cwd,
        env=environment(cwd, **env),
        input=stdin.encode() if stdin is not None else None,
        check=False,
    )
    return Result(result.returncode, result.stdout.decode(), result.stderr.decode())


async def asyncrun(*args: str, cwd: Path, stdin: str | None = None, **env: str) -> Result:
    return await run_script("asyncrun", *args, cwd=cwd, stdin=stdin, **env)


async def pyflyte(*args: str, cwd: Path, **env: str) -> Result:
    return await run_script("pyflyte", *args, cwd=cwd, **env)


async def pyflyte_local_output(project: Path, *args: str) -> str:
    """What `pyflyte run FILE ENTITY ARGS` prints for the run's result (its last stdout line)."""
    result = await pyflyte("run", *args, cwd=project)
    assert result.code == 0, result.out
    return result.stdout.strip().splitlines()[-1]


def as_pyflyte_prints(value: object) -> str:
    """How `pyflyte run` prints an output asyncrun gave as JSON: text as it is, a dataclass (the corpus's
    only object outputs are `Point`s) as its repr, anything else as `str()` of the value."""
    if isinstance(value, dict):
        return f"Point({', '.join(f'{key}={item!r}' for key, item in value.items())})"
    return str(value)
