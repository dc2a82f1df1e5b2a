"""The loop-free pass of `main()`: what finishes without an event loop, and what starts over under one."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from asyncrun.cli import _loopfree

NO_LOOP = (
    "import sys\n"
    "from asyncrun.cli import main\n"
    "sys.argv = ['asyncrun'] + sys.argv[1:]\n"
    "try:\n    main()\nexcept SystemExit as exc:\n    print('EXIT=' + str(exc.code))\n"
    "print('ASYNCIO=' + str('asyncio' in sys.modules))\n"
)


def _run(*args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", NO_LOOP, *args], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("status", "--help"), ()])
def test_help_and_version_need_no_event_loop(args: tuple[str, ...]) -> None:
    lines = _run(*args)
    assert lines[-1] == "ASYNCIO=False", lines


def test_other_commands_start_over_under_an_event_loop(tmp_path) -> None:
    script = tmp_path / "tiny.py"
    script.write_text("from asyncrun import task\n\n@task\ndef t(x: int) -> int:\n    return x + 1\n")
    lines = _run("run", str(script), "t", "--x", "41")
    assert lines[0] == "42", lines  # printed once: the loop-free pass ran nothing
    assert lines[-1] == "ASYNCIO=True", lines


def test_a_command_that_suspends_is_a_bug_not_a_hang() -> None:
    async def suspends() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="needs an event loop"):
        _loopfree.run(suspends())
    assert not _loopfree.active()


def test_needs_event_loop_reports_false_and_resets() -> None:
    async def needs() -> None:
        raise _loopfree.NeedsEventLoop("run")

    assert _loopfree.run(needs()) is False
    assert not _loopfree.active()
