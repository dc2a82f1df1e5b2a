"""The flytekit corpus (tests/interop/corpus/, unchanged flytekit files) run by the installed `asyncrun` and
`pyflyte` scripts in subprocesses, each in a scratch copy of the corpus with its own HOME (flytekit's local
cache lives in ~/.flyte)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import anyio
import forkserver
import pytest
from shared_once import once_per_run

BIN = Path(sys.executable).parent
CORPUS = Path(__file__).parent / "corpus"
TESTS = Path(__file__).parents[1]


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
    """A script of this virtualenv; `asyncrun` and `pyflyte` forked from a warm interpreter that imported
    flytekit once (tests/forkserver.py), anything else in a fresh process."""
    argv = [str(BIN / script), *args]
    if script in ("asyncrun", "pyflyte"):
        forked = await forkserver.arun(argv, cwd=cwd, env=environment(cwd, **env), stdin=stdin)
        return Result(forked.returncode, forked.stdout, forked.stderr)
    result = await anyio.run_process(
        argv,
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


def add_data(project: Path) -> Path:
    """Input files: three.txt (3 lines), a folder of 2 files, a 3-row parquet file and a 2-row CSV."""
    import pandas as pd

    (project / "three.txt").write_text("a\nb\nc\n")
    folder = project / "two"
    folder.mkdir()
    (folder / "x").write_text("x")
    (folder / "y").write_text("y")
    pd.DataFrame({"a": [1, 2, 3]}).to_parquet(project / "rows.parquet")
    pd.DataFrame({"a": [1, 2]}).to_csv(project / "rows.csv", index=False)
    return project


def pyflyte_local_outputs(cases: list[tuple[str, ...]]) -> dict[str, str]:
    """What `pyflyte run FILE ENTITY ARGS` prints for each case's result (its last line), by the case's
    args joined with spaces: all run by pyflyte's own command in one interpreter, once per test run."""

    def compute() -> dict[str, str]:
        with tempfile.TemporaryDirectory() as scratch:
            project = Path(scratch) / "proj"
            project.mkdir()
            for path in CORPUS.glob("*.py"):
                shutil.copy(path, project / path.name)
            add_data(project)
            (Path(scratch) / "home").mkdir()
            invocations = [{"args": ["run", *case]} for case in cases]
            result = subprocess.run(
                [sys.executable, str(TESTS / "pyflyte_inprocess.py"), json.dumps(invocations)],
                cwd=project,
                env=environment(project),
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        marker = "pyflyte-result: "
        found = [
            json.loads(line[len(marker) :]) for line in result.stdout.splitlines() if line.startswith(marker)
        ]
        assert result.returncode == 0 and len(found) == len(cases), result.stdout + result.stderr
        outputs = {}
        for case, ran in zip(cases, found, strict=True):
            assert ran["code"] == 0, ran["output"]
            outputs[" ".join(case)] = ran["stdout"].strip().splitlines()[-1]
        return outputs

    key = hashlib.sha256(json.dumps(cases).encode()).hexdigest()[:16]
    return once_per_run(f"interop-pyflyte-{key}", compute)  # type: ignore[no-any-return]


def as_pyflyte_prints(value: object) -> str:
    """How `pyflyte run` prints an output asyncrun gave as JSON: text as it is, a dataclass (the corpus's
    only object outputs are `Point`s) as its repr, anything else as `str()` of the value."""
    if isinstance(value, dict):
        return f"Point({', '.join(f'{key}={item!r}' for key, item in value.items())})"
    return str(value)
