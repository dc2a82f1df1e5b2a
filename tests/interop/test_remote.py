"""`asyncrun run --remote --wait` on unchanged flytekit files, against a sandbox started here: flytekit's
specs registered by asyncrun's client, tasks run by `pyflyte-fast-execute`, outputs as pyflyte's local run."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from .conftest import as_pyflyte_prints, asyncrun, pyflyte_local_outputs

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(600)]

CASES = [
    ("c01_chain.py", "wf", "--name", "x"),
    ("c02_subwf_lp.py", "outer", "--x", "2"),  # a sub-workflow and a launch plan node
    ("c03_types.py", "point", "--p", '{"x": 3, "tags": ["a"]}'),  # a dataclass in and out
    ("c03_types.py", "count_lines", "--f", "three.txt"),  # a local file, uploaded
]


@pytest.mark.parametrize("args", CASES, ids=[" ".join(case[:2]) for case in CASES])
async def test_remote_output_equals_pyflytes_local_output(sandbox_env, project: Path, args) -> None:
    (project / "three.txt").write_text("a\nb\nc\n")
    expected = (await anyio.to_thread.run_sync(pyflyte_local_outputs, CASES))[" ".join(args)]
    result = await asyncrun("run", "--remote", "--wait", "-o", "json", *args, cwd=project)
    assert result.code == 0, result.out
    assert as_pyflyte_prints(json.loads(result.stdout)["outputs"]["o0"]) == expected


async def test_a_launch_plan_with_fixed_inputs_and_json_output(sandbox_env, project: Path) -> None:
    result = await asyncrun(
        "run", "--remote", "--wait", "-o", "json", "c02_subwf_lp.py", "fixed_lp", cwd=project
    )
    assert result.code == 0, result.out
    outcome = json.loads(result.stdout)
    assert (outcome["phase"], outcome["outputs"]) == ("SUCCEEDED", {"o0": 40})


async def test_a_failing_remote_run_exits_1_with_the_tasks_message(sandbox_env, project: Path) -> None:
    result = await asyncrun(
        "run", "--remote", "--wait", "--name", "boom", "c04_fail.py", "failing", "--n", "5", cwd=project
    )
    assert result.code == 1, result.out
    assert "execution boom failed" in result.stderr
    assert "exploded with 5" in result.stderr


async def test_a_batch_of_flytekit_runs(sandbox_env, project: Path) -> None:
    (project / "lines.jsonl").write_text('{"name": "a"}\n{"name": "b"}\n')
    args = ("run", "--remote", "--wait", "--batch", "lines.jsonl", "c01_chain.py", "say_hello")
    result = await asyncrun(*args, cwd=project)
    assert result.code == 0, result.out
    manifest = [json.loads(line) for line in result.stdout.splitlines()]
    assert [m["outputs"] for m in manifest] == [{"o0": "hello a"}, {"o0": "hello b"}]
    again = await asyncrun(*args, cwd=project)  # the same batch again starts nothing new
    assert [json.loads(line)["execution"] for line in again.stdout.splitlines()] == [
        m["execution"] for m in manifest
    ]
