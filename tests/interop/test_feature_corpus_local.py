"""Every case of the feature corpus (tests/flytekit_corpus: conditionals, map tasks, dynamic workflows,
gates, failure nodes, cache, retries, sub-workflows, launch plan nodes, files, dataclasses) run locally by
`asyncrun run` gives the outputs flytekit's own local run gives (as `pyflyte run` does), compared as
values: asyncrun prints non-text outputs in their JSON form, not as Python reprs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import forkserver
import pytest
from flytekit_corpus.local import BIN, CASES, CORPUS, Case, flytekit_env, run_locally

pytestmark = pytest.mark.timeout(600)


def asyncrun_run(case: Case, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**flytekit_env(home), "ASYNCRUN_HOME": str(home / "state")}
    return forkserver.run(  # forked from an interpreter that imported flytekit once
        [str(BIN / "asyncrun"), "run", "-o", "json", str(case.path), case.entity, *case.cli_args()],
        stdin=case.stdin,
        cwd=CORPUS,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_case_gives_flytekits_local_outcome(case: Case, tmp_path: Path) -> None:
    expected = run_locally(case)
    result = asyncrun_run(case, tmp_path)
    output = result.stdout + result.stderr
    if case.fails_with is not None:
        assert result.returncode == 1, output
        assert case.fails_with in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one line, no traceback
        return
    assert result.returncode == 0, output
    if case.deterministic:
        # A gate's prompt shares stdout with the result, as under pyflyte (no newline after it).
        last = result.stdout.strip().splitlines()[-1]
        ours = json.loads(last[last.index("{") :])
        assert {name: _contents(value) for name, value in ours.items()} == expected.outputs, output


def _contents(value: Any) -> Any:
    """Files and folders (given as paths) as flytekit's normalized outcome shows them: their contents."""
    if isinstance(value, str) and os.path.isfile(value):
        return {"content": Path(value).read_text()}
    if isinstance(value, str) and os.path.isdir(value):
        return {"files": sorted(os.listdir(value))}
    if isinstance(value, list):
        return [_contents(item) for item in value]
    if isinstance(value, dict):
        return {key: _contents(item) for key, item in value.items()}
    return value
