"""Local runs of unchanged flytekit files: asyncrun's parsing, flytekit's execution, pyflyte's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from .conftest import add_data, as_pyflyte_prints, asyncrun, pyflyte_local_outputs

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]


@pytest.fixture
def data(project: Path) -> Path:
    return add_data(project)


CASES = [
    ("c01_chain.py", "wf"),
    ("c01_chain.py", "wf", "--name", "x", "--times", "3"),
    ("c01_chain.py", "say_hello", "--name", "y"),
    ("c02_subwf_lp.py", "outer", "--x", "2"),
    ("c02_subwf_lp.py", "inner_lp"),
    (
        "c03_types.py",
        "scalars",
        "--i",
        "1",
        "--f",
        "2.5",
        "--s",
        "x",
        "--b",
        "--dt",
        "2024-01-02T03:04:05",
        "--d",
        "2024-01-02",
        "--td",
        "1h30m",
    ),  # fmt: skip
    ("c03_types.py", "choices"),
    ("c03_types.py", "choices", "--c", "green", "--o", "3", "--u", "abc"),
    ("c03_types.py", "collections", "--xs", "[1, 2]", "--m", '{"a": 1.5}'),
    ("c03_types.py", "point", "--p", '{"x": 1}'),
    ("c03_types.py", "types_wf", "--p", '{"x": 4, "tags": ["a"]}'),
    ("c03_types.py", "model", "--m", '{"lr": 0.5}'),
    ("c03_types.py", "count_lines", "--f", "three.txt"),
    ("c03_types.py", "count_files", "--d", "two"),
    ("c03_types.py", "with_file", "--w", '{"f": {"path": "three.txt"}, "n": 2}'),
    ("c03_types.py", "frame_rows", "--df", "rows.parquet"),
    ("c03_types.py", "dataset_rows", "--sd", "rows.parquet"),
]


@pytest.mark.parametrize("args", CASES, ids=[" ".join(case[:2]) for case in CASES])
async def test_output_equals_pyflytes(data: Path, args: tuple[str, ...]) -> None:
    expected = await anyio.to_thread.run_sync(pyflyte_local_outputs, CASES)
    expected = expected[" ".join(args)]
    result = await asyncrun("run", "-o", "json", *args, cwd=data)
    assert result.code == 0, result.out
    assert as_pyflyte_prints(json.loads(result.stdout)["o0"]) == expected


async def test_a_launch_plan_keeps_its_fixed_inputs(project: Path) -> None:
    # pyflyte's local run sends the workflow's default (x=1) over the fixed x=5 and prints 8
    # (flytekit-interop.md §2, launch plan quirk); asyncrun runs the launch plan as registered.
    result = await asyncrun("run", "c02_subwf_lp.py", "fixed_lp", cwd=project)
    assert (result.code, result.stdout) == (0, "40\n"), result.out
    result = await asyncrun("run", "c02_subwf_lp.py", "fixed_lp", "--x", "2", cwd=project)
    assert result.code == 2 and "No such option" in result.stderr, result.out


async def test_a_csv_file_feeds_a_dataframe_input(data: Path) -> None:
    for entity, flag in (("frame_rows", "--df"), ("dataset_rows", "--sd")):
        result = await asyncrun("run", "c03_types.py", entity, flag, "rows.csv", cwd=data)
        assert (result.code, result.stdout) == (0, "2\n"), result.out


async def test_json_output(data: Path) -> None:
    result = await asyncrun("run", "--output", "json", "c03_types.py", "point", "--p", '{"x": 1}', cwd=data)
    assert result.code == 0, result.out
    assert json.loads(result.stdout) == {"o0": {"x": 10, "y": 2, "tags": ["seen"]}}
    result = await asyncrun("run", "-o", "json", "c03_types.py", "count_lines", "--f", "three.txt", cwd=data)
    assert json.loads(result.stdout) == {"o0": 3}


async def test_a_failing_task_exits_1_with_its_message(project: Path) -> None:
    result = await asyncrun("run", "c04_fail.py", "failing", "--n", "7", cwd=project)
    assert result.code == 1, result.out
    assert result.stderr.strip().splitlines() == [
        "Error: task c04_fail.explode failed: ValueError: exploded with 7"
    ]
    assert "Traceback" not in result.out


async def test_inputs_from_a_file_and_stdin_flags_win(project: Path) -> None:
    (project / "inputs.yaml").write_text("name: file\ntimes: 1\n")
    result = await asyncrun(
        "run", "c01_chain.py", "wf", "--inputs-file", "inputs.yaml", "-", cwd=project, stdin='{"times": 2}'
    )
    assert (result.code, result.stdout) == (0, "HELLO FILE HELLO FILE\n"), result.out
    result = await asyncrun(
        "run", "c01_chain.py", "wf", "--inputs-file", "inputs.yaml", "--name", "flag", cwd=project
    )
    assert (result.code, result.stdout) == (0, "HELLO FLAG\n"), result.out


async def test_required_inputs_and_bad_values_are_usage_errors(project: Path) -> None:
    result = await asyncrun("run", "c01_chain.py", "say_hello", cwd=project)
    assert result.code == 2, result.out
    assert "Missing option --name" in result.stderr
    result = await asyncrun("run", "c01_chain.py", "shout", "--s", "x", "--times", "many", cwd=project)
    assert result.code == 2, result.out
    assert "'many' is not a valid integer" in result.stderr


async def test_help_shows_types_defaults_and_docstrings(project: Path) -> None:
    result = await asyncrun("run", "c01_chain.py", "say_hello", "--help", cwd=project)
    assert result.code == 0, result.out
    assert "task c01_chain.say_hello: Greet someone." in result.stdout
    assert "who to greet" in result.stdout and "[required]" in result.stdout
    result = await asyncrun("run", "c03_types.py", "choices", "--help", cwd=project)
    assert "[default: red]" in result.stdout and "red|green" in result.stdout


async def test_an_unsupported_type_is_one_line_naming_it(project: Path) -> None:
    (project / "odd.py").write_text(
        "from flytekit import task\n\n"
        "class Opaque:\n    pass\n\n"
        "@task\ndef takes(x: Opaque) -> int:\n    return 1\n\n"
        "@task\ndef fine(x: int) -> int:\n    return x\n"
    )
    listing = await asyncrun("run", "odd.py", "--help", cwd=project)
    assert listing.code == 0 and "takes" in listing.stdout, listing.out
    result = await asyncrun("run", "odd.py", "takes", "--help", cwd=project)
    assert result.code == 2, result.out
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "input 'x'" in lines[0] and "Opaque" in lines[0], result.stderr
    fine = await asyncrun("run", "odd.py", "fine", "--x", "5", cwd=project)
    assert (fine.code, fine.stdout) == (0, "5\n"), fine.out
