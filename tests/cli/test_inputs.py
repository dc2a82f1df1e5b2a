"""Every input type through flags, --inputs-file and stdin; and the pyflyte quirks we do not copy."""

from __future__ import annotations

import json

import pytest

from .conftest import EXAMPLES

pytestmark = pytest.mark.anyio

TYPES = str(EXAMPLES / "types_demo.py")

FLAGS = [
    "--i",
    "7",
    "--f",
    "2.5",
    "--s",
    "hi",
    "--b",
    "--dt",
    "2024-01-02T03:04:05.5+02:00",
    "--d",
    "2024-01-05",
    "--td",
    "1h30m",
    "--color",
    "green",
    "--ints",
    "[1, 2]",
    "--scores",
    '{"a": 0.5}',
    "--shape",
    '{"name": "tri", "points": [{"x": 1}, {"x": 2, "y": 3}]}',
    "--maybe",
    "none",
    "--either",
    "5",
]
EXPECTED = (
    "i=7 f=2.5 s=hi b=True dt=2024-01-02T01:04:05.500000+00:00 d=2024-01-05 td=5400.0 color=green "
    "ints=[1, 2] scores={'a': 0.5} shape=tri:2 maybe=None either=5"
)
YAML_INPUTS = """
i: 7
f: 2.5
s: hi
b: true
dt: 2024-01-02T03:04:05.5+02:00
d: 2024-01-05
td: 1h30m
color: green
ints: [1, 2]
scores: {a: 0.5}
shape: {name: tri, points: [{x: 1}, {x: 2, y: 3}]}
maybe: null
either: 5
"""


async def test_every_type_through_flags(run_cli) -> None:
    result = await run_cli("run", TYPES, "echo_all", *FLAGS)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == EXPECTED


async def test_every_type_through_an_inputs_file(run_cli, tmp_path) -> None:
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(YAML_INPUTS)
    result = await run_cli("run", TYPES, "echo_all", "--inputs-file", str(inputs))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == EXPECTED


async def test_every_type_through_stdin_json(run_cli) -> None:
    data = {
        "i": 7,
        "f": 2.5,
        "s": "hi",
        "b": True,
        "dt": "2024-01-02T03:04:05.5+02:00",
        "d": "2024-01-05",
        "td": "1h30m",
        "color": "green",
        "ints": [1, 2],
        "scores": {"a": 0.5},
        "shape": {"name": "tri", "points": [{"x": 1}, {"x": 2, "y": 3}]},
        "maybe": None,
        "either": 5,
    }
    result = await run_cli("run", TYPES, "echo_all", "-", stdin=json.dumps(data))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == EXPECTED


async def test_flags_win_over_the_file_wherever_they_stand(run_cli, tmp_path) -> None:
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(YAML_INPUTS)
    result = await run_cli("run", TYPES, "echo_all", "--i", "9", "--inputs-file", str(inputs), "--s", "yo")
    assert result.exit_code == 0, result.stderr
    assert "i=9 " in result.stdout and " s=yo " in result.stdout


async def test_quirk_5_false_booleans_in_inputs_file_override_a_true_default(
    run_cli, write_module, tmp_path
) -> None:
    path = write_module(
        """
        from asyncrun import task

        @task
        def flag(enabled: bool = True) -> bool:
            return enabled
        """
    )
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text("enabled: false\n")
    result = await run_cli("run", str(path), "flag", "--inputs-file", str(inputs))
    assert result.stdout.strip() == "false"  # outputs print in their JSON form (docs/cli.md)


async def test_quirk_5_yaml_dates_work(run_cli, tmp_path) -> None:
    inputs = tmp_path / "inputs.yaml"
    inputs.write_text(YAML_INPUTS.replace("d: 2024-01-05", "d: 2023-12-31"))
    result = await run_cli("run", TYPES, "echo_all", "--inputs-file", str(inputs))
    assert result.exit_code == 0, result.stderr
    assert "d=2023-12-31" in result.stdout


async def test_quirk_5_missing_inputs_file_is_a_usage_error(run_cli) -> None:
    result = await run_cli("run", TYPES, "echo_all", "--inputs-file", "/nonexistent/inputs.yaml")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


async def test_invalid_inputs_file(run_cli, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("i: [unclosed\n")
    result = await run_cli("run", TYPES, "echo_all", "--inputs-file", str(bad))
    assert result.exit_code == 2 and "not valid YAML or JSON" in result.stderr
    not_a_map = tmp_path / "list.yaml"
    not_a_map.write_text("- 1\n- 2\n")
    result = await run_cli("run", TYPES, "echo_all", "--inputs-file", str(not_a_map))
    assert result.exit_code == 2 and "must map input names to values" in result.stderr


async def test_unknown_and_mistyped_inputs_in_file(run_cli, tmp_path) -> None:
    f = tmp_path / "inputs.yaml"
    f.write_text(YAML_INPUTS + "zzz: 1\n")
    result = await run_cli("run", TYPES, "echo_all", "--inputs-file", str(f))
    assert result.exit_code == 2 and "unknown input 'zzz'" in result.stderr
    f.write_text(YAML_INPUTS.replace("i: 7", "i: seven"))
    result = await run_cli("run", TYPES, "echo_all", "--inputs-file", str(f))
    assert result.exit_code == 2 and "input 'i'" in result.stderr


async def test_file_supplies_required_inputs_and_flags_complete_them(run_cli, tmp_path) -> None:
    f = tmp_path / "inputs.yaml"
    f.write_text("\n".join(line for line in YAML_INPUTS.splitlines() if not line.startswith("i:")))
    result = await run_cli("run", TYPES, "echo_all", "--inputs-file", str(f))
    assert result.exit_code == 2 and "Missing option --i" in result.stderr
    result = await run_cli("run", TYPES, "echo_all", "--inputs-file", str(f), "--i", "7")
    assert result.stdout.strip() == EXPECTED


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("90", 90.0), ("P1D", 86400.0), ("1:30", 90.0), ("PT1H30M", 5400.0), ("2d", 172800.0)],
)
async def test_quirk_7_durations(run_cli, value: str, seconds: float) -> None:
    flags = FLAGS.copy()
    flags[flags.index("--td") + 1] = value
    result = await run_cli("run", TYPES, "echo_all", *flags)
    assert result.exit_code == 0, result.stderr
    assert f"td={seconds}" in result.stdout


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        # The task gets the instant in UTC, as on a remote run (and as pyflyte's local runs give it).
        ("2024-01-02T03:04:05+02:00", "2024-01-02T01:04:05+00:00"),
        ("2024-01-02T03:04:05.123Z", "2024-01-02T03:04:05.123000+00:00"),
        ("2024-01-02", "2024-01-02T00:00:00+00:00"),
    ],
)
async def test_quirk_7_datetimes_with_zones_and_fractions(run_cli, value: str, iso: str) -> None:
    flags = FLAGS.copy()
    flags[flags.index("--dt") + 1] = value
    result = await run_cli("run", TYPES, "echo_all", *flags)
    assert result.exit_code == 0, result.stderr
    assert f"dt={iso} " in result.stdout


async def test_relative_datetimes(run_cli) -> None:
    flags = FLAGS.copy()
    flags[flags.index("--dt") + 1] = "now - 1d"
    result = await run_cli("run", TYPES, "echo_all", *flags)
    assert result.exit_code == 0, result.stderr


async def test_quirk_8_wrong_json_shape_is_a_clear_usage_error(run_cli) -> None:
    flags = FLAGS.copy()
    flags[flags.index("--ints") + 1] = '{"a": 1}'
    result = await run_cli("run", TYPES, "echo_all", *flags)
    assert result.exit_code == 2
    assert "--ints" in result.stderr and "list" in result.stderr
    assert "Traceback" not in result.stderr


async def test_bad_enum_value(run_cli) -> None:
    flags = FLAGS.copy()
    flags[flags.index("--color") + 1] = "blue"
    result = await run_cli("run", TYPES, "echo_all", *flags)
    assert result.exit_code == 2 and "blue" in result.stderr


async def test_quirk_6_bool_options_declare_no_duplicates(run_cli, write_module) -> None:
    path = write_module(
        """
        from asyncrun import task

        @task
        def flag(my_flag: bool = False) -> bool:
            return my_flag
        """
    )
    with _no_warnings():
        result = await run_cli("run", str(path), "flag", "--my-flag")
    assert result.stdout.strip() == "true"
    assert (await run_cli("run", str(path), "flag", "--my_flag")).stdout.strip() == "true"
    assert (await run_cli("run", str(path), "flag", "--no-my-flag")).stdout.strip() == "false"
    assert "used more than once" not in result.stderr


class _no_warnings:
    """Fails if anything inside warns (pyflyte's duplicate bool declarations make click warn)."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings(record=True)
        self.caught = self._ctx.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        assert [str(w.message) for w in self.caught] == []


async def test_optional_accepts_an_explicit_none(run_cli) -> None:
    flags = FLAGS.copy()
    flags[flags.index("--maybe") + 1] = "3"
    assert "maybe=3 " in (await run_cli("run", TYPES, "echo_all", *flags)).stdout
    flags[flags.index("--maybe") + 1] = "None"
    assert "maybe=None " in (await run_cli("run", TYPES, "echo_all", *flags)).stdout


async def test_union_prefers_non_string_members(run_cli) -> None:
    flags = FLAGS.copy()
    flags[flags.index("--either") + 1] = "5.5"
    assert "either='5.5'" in (await run_cli("run", TYPES, "echo_all", *flags)).stdout


async def test_files_and_directories(run_cli, tmp_path) -> None:
    text = tmp_path / "three.txt"
    text.write_text("a\nb\nc\n")
    assert (await run_cli("run", TYPES, "count_lines", "--f", str(text))).stdout.strip() == "3"
    assert (await run_cli("run", TYPES, "count_files", "--d", str(tmp_path))).stdout.strip() == "1"
    missing = await run_cli("run", TYPES, "count_lines", "--f", str(tmp_path / "nope.txt"))
    assert missing.exit_code == 2
    a_dir = await run_cli("run", TYPES, "count_lines", "--f", str(tmp_path))
    assert a_dir.exit_code == 2


async def test_json_output_types(run_cli, tmp_path) -> None:
    result = await run_cli("run", "--output", "json", TYPES, "stats", "--values", "[1, 2, 3]")
    assert json.loads(result.stdout) == {"count": 3, "mean": 2.0}
    result = await run_cli("run", "--output", "json", TYPES, "split", "--text", "a b")
    assert json.loads(result.stdout) == {"o0": "a", "o1": 2}


async def test_syntax_errors_say_line_and_column(run_cli, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("i: 7\nints: [1, 2\n")
    for args, stdin in ((["--inputs-file", str(bad)], None), (["-"], bad.read_text())):
        result = await run_cli("run", TYPES, "echo_all", *args, stdin=stdin)
        assert result.exit_code == 2, result.stderr
        line = [x for x in result.stderr.splitlines() if x.startswith("Error")][0]
        assert "line 3, column 1" in line and "expected ',' or ']'" in line, line
        assert "line 2, column 7" in line, line  # where the unclosed list starts
    # A .yaml file given as the value of a dataclass input says where, too.
    shape = tmp_path / "shape.yaml"
    shape.write_text("name: tri\npoints: [{x: 1}\n")
    result = await run_cli("run", TYPES, "echo_all", *FLAGS[:-6], "--shape", str(shape), "--maybe", "none")
    assert result.exit_code == 2 and "line 3, column 1" in result.stderr, result.stderr


async def test_binary_stdin_and_binary_file_say_the_same(tmp_path) -> None:
    import os
    import sys
    from pathlib import Path

    import anyio

    binary = tmp_path / "inputs.yaml"
    binary.write_bytes(b"i: \xb6\xff\n")
    script = str(Path(sys.executable).parent / "asyncrun")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}  # a C locale reads stdin with surrogateescape
    from_file = await anyio.run_process(
        [script, "run", TYPES, "echo_all", "--inputs-file", str(binary)], check=False, env=env
    )
    from_stdin = await anyio.run_process(
        [script, "run", TYPES, "echo_all", "-"], input=binary.read_bytes(), check=False, env=env
    )
    for result in (from_file, from_stdin):
        assert result.returncode == 2
        assert b"Traceback" not in result.stderr
    file_line = from_file.stderr.decode().splitlines()[-1]
    stdin_line = from_stdin.stderr.decode().splitlines()[-1]
    assert file_line == f"Error: --inputs-file {binary} is not UTF-8 text: invalid start byte at byte 3"
    assert stdin_line == "Error: stdin is not UTF-8 text: invalid start byte at byte 3"
