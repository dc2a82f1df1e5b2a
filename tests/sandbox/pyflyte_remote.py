"""flytekit's real `pyflyte run --remote` against a sandbox started by the test, from a scratch project."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import forkserver

BIN = Path(sys.executable).parent


async def pyflyte_remote(sandbox: Any, project: Path, *args: str, wait: bool = True) -> tuple[int, str]:
    """`pyflyte run --remote [--wait] ARGS` in `project` (its parent as HOME): exit code and output."""
    env = {
        **os.environ,
        "FLYTE_PLATFORM_URL": sandbox.endpoint,
        "FLYTE_PLATFORM_INSECURE": "True",
        "HOME": str(project.parent),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    waiting = ["--wait", "--poll-interval", "1"] if wait else []
    # forked from an interpreter that imported flytekit once (tests/forkserver.py)
    result = await forkserver.arun(
        [str(BIN / "pyflyte"), "run", "--remote", *waiting, *args], cwd=project, env=env
    )
    return result.returncode, result.stdout + result.stderr
