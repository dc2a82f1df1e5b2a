from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from asyncclick.testing import CliRunner

from asyncrun.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(monkeypatch):
    """Invoke `asyncrun ARGS…` in-process; returns exit code, stdout and stderr."""

    async def invoke(*args: str, stdin: str | None = None, cwd: Path | None = None) -> Result:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        runner = CliRunner()
        result = await runner.invoke(cli, list(args), input=stdin, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return invoke


@pytest.fixture
def write_module(tmp_path):
    """Write a user module under tmp_path with a unique module name; returns its path."""
    counter = iter(range(10_000))

    def write(source: str, name: str | None = None, folder: Path | None = None) -> Path:
        target = (folder or tmp_path) / (name or f"user_mod_{next(counter)}_{tmp_path.name[-8:]}.py")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(source))
        return target

    return write
