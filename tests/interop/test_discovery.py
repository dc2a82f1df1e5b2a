"""`asyncrun run FLYTEKIT_FILE --help` lists what `pyflyte run FLYTEKIT_FILE --help` lists, and flytekit is
loaded only when the user's file imports it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from .conftest import BIN, Result, asyncrun, pyflyte, run_script

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def pyflyte_entities(result: Result) -> list[tuple[str, str, str]]:
    """(command, kind, registered name) rows of pyflyte's "Commands" box."""
    rows = []
    for line in result.stdout.splitlines():
        match = re.match(
            r"^│ (\S+)\s+(workflow|task|launch plan) \(([^)]+)\)(?: \(LP Name: ([^)]+)\))?", line
        )
        if match:
            command, kind, qualified, lp_name = match.groups()
            rows.append((command, kind, lp_name or qualified))
    return rows


def asyncrun_entities(result: Result) -> list[tuple[str, str, str]]:
    """(command, kind, registered name) rows of asyncrun's "Entities" section."""
    rows = []
    section = result.stdout.split("Entities:", 1)[1]
    for line in section.splitlines():
        match = re.match(r"^  (\S+)\s+(workflow|task|launch plan) ([^\s:]+)", line)
        if match:
            rows.append(match.groups())
    return rows


@pytest.mark.parametrize("file", ["c01_chain.py", "c02_subwf_lp.py", "c03_types.py"])
async def test_help_lists_what_pyflyte_lists(project: Path, file: str) -> None:
    ours = await asyncrun("run", file, "--help", cwd=project)
    theirs = await pyflyte("run", file, "--help", cwd=project, COLUMNS="200")
    assert ours.code == 0, ours.out
    assert theirs.code == 0, theirs.out
    expected = pyflyte_entities(theirs)
    assert expected, theirs.stdout  # the parser of pyflyte's help found its rows
    assert asyncrun_entities(ours) == expected


async def test_flytekit_entities_are_listed_next_to_native_ones(project: Path) -> None:
    (project / "mixed.py").write_text(
        "import asyncrun\n"
        "from flytekit import task\n\n"
        "@task\ndef fk(x: int) -> int:\n    return x\n\n"
        "@asyncrun.task\ndef native(x: int) -> int:\n    return x\n"
    )
    result = await asyncrun("run", "mixed.py", "--help", cwd=project)
    assert result.code == 0, result.out
    assert asyncrun_entities(result) == [("fk", "task", "mixed.fk"), ("native", "task", "mixed.native")]
    for entity in ("fk", "native"):
        ran = await asyncrun("run", "mixed.py", entity, "--x", "4", cwd=project)
        assert (ran.code, ran.stdout) == (0, "4\n"), ran.out


async def test_a_native_file_never_loads_flytekit(tmp_path: Path) -> None:
    # The check itself can fail: the same probe on a flytekit file sees flytekit loaded.
    probe = (
        "import sys\n"
        "from asyncrun.cli import main\n"
        "sys.argv = ['asyncrun', 'run', sys.argv[1], 'wf', '--help']\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "print('FLYTEKIT LOADED' if 'flytekit' in sys.modules else 'NO FLYTEKIT', file=sys.stderr)\n"
    )
    script = tmp_path / "probe.py"
    script.write_text(probe)
    native = await run_script("python3", str(script), str(EXAMPLES / "hello.py"), cwd=tmp_path)
    assert "NO FLYTEKIT" in native.stderr, native.out
    assert "--name" in native.stdout
    flytekit_file = tmp_path / "c01_chain.py"
    flytekit_file.write_text((Path(__file__).parent / "corpus" / "c01_chain.py").read_text())
    flytekit = await run_script("python3", str(script), str(flytekit_file), cwd=tmp_path)
    assert "FLYTEKIT LOADED" in flytekit.stderr, flytekit.out


async def test_an_unsupported_flytekit_version_is_one_line(project: Path) -> None:
    probe = project.parent / "old_flytekit.py"
    probe.write_text(
        "import sys\n"
        "import flytekit\n"
        "flytekit.__version__ = '1.10.3'\n"
        "from asyncrun.cli import main\n"
        "sys.argv = ['asyncrun', 'run', 'c01_chain.py', '--help']\n"
        "main()\n"
    )
    result = await run_script("python3", str(probe), cwd=project)
    assert result.code == 2, result.out
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "flytekit 1.10.3 is not supported" in lines[0]
    assert "asyncrun[flytekit]" in lines[0]


def test_supported_range_matches_the_extra() -> None:
    import tomllib

    from asyncrun.interop._support import SUPPORTED_TEXT, is_supported

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["optional-dependencies"]["flytekit"] == [f"flytekit{SUPPORTED_TEXT}"]
    assert is_supported("1.16.31") and is_supported("1.14.0")
    assert not is_supported("1.13.9") and not is_supported("1.17.0") and not is_supported("0.0.0+develop")


def test_python_is_the_venv() -> None:
    assert (BIN / "pyflyte").exists() and Path(sys.executable).parent == BIN
