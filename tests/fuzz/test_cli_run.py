"""Fuzz the real `asyncrun run` command line: option values, `--inputs-file` and stdin documents.

Whatever a user types, the CLI either runs or exits 2 with one `Error:` line (after click's usage
hint), never a traceback. Valid values typed on the command line or written in an inputs file come
back unchanged from the task (`--output json`).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncclick.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asyncrun.cli import cli

from .strategies import budget, json_values, user_text

pytestmark = pytest.mark.anyio

MODULE = textwrap.dedent(
    """
    from __future__ import annotations

    import enum
    from dataclasses import dataclass, field
    from datetime import date, datetime, timedelta
    from typing import Optional, Union

    from asyncrun import Directory, File, task


    class Color(enum.Enum):
        RED = "red"
        GREEN = "green"


    @dataclass
    class Point:
        x: int
        y: float = 0.0


    @dataclass
    class Shape:
        name: str
        points: list[Point] = field(default_factory=list)


    @task
    def t_int(x: int) -> int:
        return x

    @task
    def t_float(x: float) -> float:
        return x

    @task
    def t_str(x: str) -> str:
        return x

    @task
    def t_bool(x: bool) -> bool:
        return x

    @task
    def t_datetime(x: datetime) -> datetime:
        return x

    @task
    def t_date(x: date) -> date:
        return x

    @task
    def t_timedelta(x: timedelta) -> timedelta:
        return x

    @task
    def t_enum(x: Color) -> Color:
        return x

    @task
    def t_list(x: list[int]) -> list[int]:
        return x

    @task
    def t_dict(x: dict[str, float]) -> dict[str, float]:
        return x

    @task
    def t_dataclass(x: Shape) -> Shape:
        return x

    @task
    def t_optional(x: Optional[int] = None) -> Optional[int]:
        return x

    @task
    def t_union(x: Union[int, str] = 0) -> Union[int, str]:
        return x

    @task
    def t_file(x: File) -> str:
        return x.path

    @task
    def t_directory(x: Directory) -> str:
        return x.path

    @task
    def t_all(
        i: int = 0,
        f: float = 0.0,
        s: str = "",
        b: bool = False,
        when: Optional[datetime] = None,
        day: Optional[date] = None,
        span: timedelta = timedelta(0),
        color: Color = Color.RED,
        ints: list[int] = [],
        scores: dict[str, float] = {},
        shape: Optional[Shape] = None,
        maybe: Optional[int] = None,
        either: Union[int, str] = 0,
    ) -> str:
        return "ran"
    """
)
ENTITIES = [
    "t_int", "t_float", "t_str", "t_bool", "t_datetime", "t_date", "t_timedelta", "t_enum", "t_list",
    "t_dict", "t_dataclass", "t_optional", "t_union", "t_file", "t_directory",
]  # fmt: skip
ALL_INPUTS = [
    "i", "f", "s", "b", "when", "day", "span", "color", "ints", "scores", "shape", "maybe", "either",
]  # fmt: skip


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / f"fuzz_types_{tmp_path.name[-10:].replace('-', '_')}.py"
    path.write_text(MODULE)
    return path


async def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = await CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def assert_clean_usage_error(code: int, stderr: str) -> None:
    """Exit 2; stderr is click's usage hint and exactly one `Error:` line; never a traceback."""
    assert code == 2, stderr
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    # Click's hint (`Usage: …`, `Try '… --help'`) comes first, then a blank line, then the error alone.
    last = stderr.rstrip("\n").split("\n\n")[-1]
    assert last.startswith("Error:") and "\n" not in last, stderr


# Arguments a shell can pass (no NUL byte).
cli_text = user_text.filter(lambda text: "\x00" not in text)


@pytest.mark.parametrize("entity", ENTITIES)
@settings(max_examples=budget(25))
@given(text=cli_text)
@example(text="[" * 5000)
@example(text="now + 99999999999d")
@example(text="9999-12-31T23:59:59 + 1d")
async def test_option_values_run_or_fail_cleanly(module: Path, entity: str, text: str) -> None:
    code, _, stderr = await invoke("run", str(module), entity, f"--x={text}")
    if code != 0:
        assert_clean_usage_error(code, stderr)


@settings(max_examples=budget(60))
@given(content=st.one_of(st.text(), st.binary().map(lambda b: b.decode("utf-8", "replace")), user_text))
@example(content="d: 0000-01-01")  # PyYAML raised ValueError from its date constructor
@example(content="i: !!int x")
@example(content="when: !!timestamp foo")  # ... and AttributeError here
@example(content="when: 2001-12-14t21:59:43.10-25:00")
@example(content="&a [*a]")
@example(content="ints: &a [*a]")
@example(content='{"a": ' * 3000)
@example(content="[" * 3000 + "]" * 3000)
async def test_inputs_file_text_runs_or_fails_cleanly(module: Path, tmp_path: Path, content: str) -> None:
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(content, encoding="utf-8")
    code, _, stderr = await invoke("run", str(module), "t_all", "--inputs-file", str(inputs))
    if code != 0:
        assert_clean_usage_error(code, stderr)


_keys = st.one_of(st.sampled_from(ALL_INPUTS), st.text(max_size=6), st.integers(), st.none(), st.booleans())
documents = st.one_of(
    st.dictionaries(_keys, json_values, max_size=6),
    st.dictionaries(st.sampled_from(ALL_INPUTS), json_values, max_size=6),
    json_values,
)


@settings(max_examples=budget(60))
@given(document=documents, form=st.sampled_from(["json", "yaml", "stdin"]))
@example(document={"ints": [[]] * 2, "shape": {"name": 1}}, form="yaml")
@example(document={None: 1}, form="yaml")
async def test_inputs_documents_run_or_fail_cleanly(
    module: Path, tmp_path: Path, document: Any, form: str
) -> None:
    if form == "json":
        text = json.dumps(document)
    else:
        try:
            text = yaml.safe_dump(document)
        except yaml.YAMLError:
            return
    if form == "stdin":
        code, _, stderr = await invoke("run", str(module), "t_all", "-", stdin=text)
    else:
        inputs = tmp_path / f"inputs.{form}"
        inputs.write_text(text, encoding="utf-8")
        code, _, stderr = await invoke("run", str(module), "t_all", "--inputs-file", str(inputs))
    if code != 0:
        assert_clean_usage_error(code, stderr)


# ---------------------------------------------------------------- round trips through the CLI

_offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
points = st.fixed_dictionaries(
    {"x": st.integers(min_value=-(2**63), max_value=2**63 - 1)},
    optional={"y": st.floats(allow_nan=False, allow_infinity=False)},
)
# (entity, value as JSON the task returns, how a user types it)
typed_values = st.one_of(
    st.integers(min_value=-(10**18), max_value=10**18).map(lambda v: ("t_int", v, str(v))),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: ("t_float", v, repr(v))),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))).map(
        lambda v: ("t_str", v, v)
    ),
    # A date-time reaches the task as the same instant in UTC (Flyte's rule, locally and remotely).
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=_offsets).map(
        lambda v: ("t_datetime", v.astimezone(dt.UTC).isoformat(), v.isoformat())
    ),
    st.dates().map(lambda v: ("t_date", v.isoformat(), v.isoformat())),
    st.integers(min_value=-(10**9), max_value=10**9).map(lambda v: ("t_timedelta", float(v), f"{v}s")),
    st.sampled_from(["red", "green"]).map(lambda v: ("t_enum", v, v)),
    st.lists(st.integers(min_value=-(10**15), max_value=10**15)).map(lambda v: ("t_list", v, json.dumps(v))),
    st.dictionaries(st.text(), st.floats(allow_nan=False, allow_infinity=False)).map(
        lambda v: ("t_dict", v, json.dumps(v))
    ),
    st.builds(
        lambda name, pts: {"name": name, "points": [{"y": 0.0, **p} for p in pts]},
        st.text(),
        st.lists(points, max_size=3),
    ).map(lambda v: ("t_dataclass", v, json.dumps(v))),
    st.none().map(lambda v: ("t_optional", v, "none")),
    st.sampled_from(["s3://bucket/key.csv", "gs://b/a b/ç"]).map(lambda v: ("t_file", v, v)),
)


@settings(max_examples=budget(60))
@given(case=typed_values, form=st.sampled_from(["flag", "inputs-file", "stdin"]))
async def test_typed_values_round_trip(
    module: Path, tmp_path: Path, case: tuple[str, Any, str], form: str
) -> None:
    entity, expected, typed = case
    args = ["run", "--output", "json", str(module), entity]
    stdin = None
    if form == "flag":
        args.append(f"--x={typed}")
    else:
        text = yaml.safe_dump({"x": typed}) if entity in ("t_str", "t_file") else f"x: {json.dumps(typed)}\n"
        if entity not in ("t_str", "t_file", "t_enum", "t_datetime", "t_date", "t_timedelta"):
            text = yaml.safe_dump({"x": json.loads(typed) if entity != "t_optional" else None})
        if form == "stdin":
            args.append("-")
            stdin = text
        else:
            (tmp_path / "in.yaml").write_text(text, encoding="utf-8")
            args += ["--inputs-file", str(tmp_path / "in.yaml")]
    code, stdout, stderr = await invoke(*args, stdin=stdin)
    assert code == 0, stderr
    assert json.loads(stdout) == {"o0": expected}


# ---------------------------------------------------------------- the installed script, as a person runs it

BAD_INPUT_FILES = [
    "i: [1, 2",  # YAML syntax
    "- just\n- a list",  # not a mapping
    "i: !!int x",  # PyYAML constructor error (was a ValueError traceback)
    "day: 2024-02-30",  # impossible date (was a ValueError traceback)
    '{"a": ' * 3000,  # nesting (was a RecursionError traceback)
    "\udcff",  # undecodable bytes
]


@pytest.mark.parametrize("content", BAD_INPUT_FILES, ids=range(len(BAD_INPUT_FILES)))
def test_installed_cli_rejects_bad_inputs_file_with_one_line(
    module: Path, tmp_path: Path, content: str
) -> None:
    inputs = tmp_path / "inputs.yaml"
    inputs.write_bytes(content.encode("utf-8", "surrogateescape"))
    script = Path(sys.executable).parent / "asyncrun"
    proc = subprocess.run(
        [str(script), "run", str(module), "t_all", "--inputs-file", str(inputs)],
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard; pytest-timeout bounds the test
        cwd=tmp_path,
    )
    assert proc.stdout == ""
    assert_clean_usage_error(proc.returncode, proc.stderr)


@pytest.mark.parametrize("data", [b"\xff\xfe i: 1", b"i: [1,\n"], ids=["undecodable", "yaml"])
def test_installed_cli_rejects_bad_stdin_with_one_line(module: Path, tmp_path: Path, data: bytes) -> None:
    script = Path(sys.executable).parent / "asyncrun"
    proc = subprocess.run(
        [str(script), "run", str(module), "t_all", "-"],
        input=data,
        capture_output=True,
        timeout=600,  # a hang guard; pytest-timeout bounds the test
        cwd=tmp_path,
    )
    assert proc.stdout == b""
    assert_clean_usage_error(proc.returncode, proc.stderr.decode())
