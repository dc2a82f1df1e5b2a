from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import anyio
import pytest

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")
WORKFLOWS = Path(__file__).parent / "features_wfs.py"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder holding the feature workflows under a module name unique to the test."""
    folder = tmp_path / "project"
    folder.mkdir()
    target = folder / f"features_{tmp_path.name[-8:].replace('-', '_')}.py"
    shutil.copy(WORKFLOWS, target)
    return target


async def asyncrun(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = await anyio.run_process([ASYNCRUN, *args], check=False, env=env or dict(os.environ))
    return result.returncode, result.stdout.decode(), result.stderr.decode()
