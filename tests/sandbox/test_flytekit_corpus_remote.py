"""The flytekit corpus (tests/flytekit_corpus, one file per Flyte feature) sent by flytekit 1.16.31's real
`pyflyte run --remote` to a sandbox started here and run by its engine: each case ends as flytekit's own
local run of it does (same outputs, or a failure with the same message). Gates are released through
`FlyteRemote` (`approve`, `set_signal`)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import forkserver
import pytest
from flytekit_corpus.local import CASES, CORPUS, Case, LocalResult, run_locally

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(600)]

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def corpus_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One sandbox for every case of this module (each run has a name of its own): its warm flytekit
    worker imports flytekit once for all of them rather than once per case."""
    from asyncrun.sandbox._config import SandboxConfig
    from asyncrun.sandbox._server import running_sandbox

    config = SandboxConfig(
        data_dir=tmp_path_factory.mktemp("corpus-sandbox"), port=0, http_port=0, task_path=(str(BIN),)
    )
    async with running_sandbox(config) as info:
        yield info


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    shutil.copytree(CORPUS, folder, ignore=shutil.ignore_patterns("test_*", "__pycache__"))
    return folder


async def pyflyte_remote(sandbox: Any, project: Path, case: Case, name: str, *, wait: bool) -> str:
    env = {
        **os.environ,
        "FLYTE_PLATFORM_URL": sandbox.endpoint,
        "FLYTE_PLATFORM_INSECURE": "True",
        "HOME": str(project.parent),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "400",
    }
    waiting = ["--wait", "--poll-interval", "1"] if wait else []
    result = await forkserver.arun(  # forked from an interpreter that imported flytekit once
        [
            str(BIN / "pyflyte"),
            "run",
            "--remote",
            *waiting,
            "--name",
            name,
            case.file,
            case.entity,
            *case.cli_args(),
        ],
        cwd=project,
        env=env,
    )
    out = result.stdout + result.stderr
    assert f"executions/{name}" in out, out  # the run was created
    return out


def remote_outcome(endpoint: str, project: Path, case: Case, name: str) -> LocalResult:
    """Release the case's gates (if any), wait for the run and read its outcome as `run_locally` gives it."""
    sys.path.insert(0, str(project))
    from _run_local import normalize  # type: ignore[import-not-found]
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    remote = FlyteRemote(
        Config.for_endpoint(endpoint, insecure=True),
        default_project="flytesnacks",
        default_domain="development",
    )
    for signal_id, value in case.signals.items():
        deadline = time.monotonic() + 120
        while not any(s.id.signal_id == signal_id for s in remote.list_signals(name)):
            assert time.monotonic() < deadline, f"the run never asked for signal {signal_id}"
            time.sleep(0.2)
        if value is True:
            remote.approve(signal_id, name)
        else:
            remote.set_signal(signal_id, name, value)
    execution = remote.wait(
        remote.fetch_execution(name=name), timeout=timedelta(minutes=5), poll_interval=timedelta(seconds=1)
    )
    if not execution.is_successful:
        return LocalResult(ok=False, error=execution.closure.error.message if execution.closure.error else "")
    # Types are guessed from the literal types, as FlyteRemote does without the user's module.
    outputs = {key: normalize(execution.outputs.get(key)) for key in execution.outputs}
    return LocalResult(ok=True, outputs=outputs)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_case_runs_remotely_as_flytekit_runs_it_locally(
    corpus_sandbox: Any, project: Path, case: Case
) -> None:
    sandbox = corpus_sandbox
    expected = await anyio.to_thread.run_sync(run_locally, case)
    name = f"c{CASES.index(case):02d}" + case.id.replace("-", "")[:15]  # unique in the shared sandbox
    await pyflyte_remote(sandbox, project, case, name, wait=not case.signals)
    got = await anyio.to_thread.run_sync(remote_outcome, sandbox.endpoint, project, case, name)
    if case.fails_with is not None:
        assert not got.ok and case.fails_with in got.error, got
    elif case.deterministic:
        assert got == LocalResult(ok=True, outputs=expected.outputs), got
    else:
        assert got.ok and set(got.outputs) == set(expected.outputs), got
