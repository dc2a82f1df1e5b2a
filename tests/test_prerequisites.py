"""A test whose prerequisite (chromium) is missing fails and says how to install it; with the opt-out
variable it is skipped, and the run ends with a loud list of what did not run and how to run it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_TEST = "tests/sandbox/test_console.py::test_pages_render_in_chromium_without_running_injected_markup"


async def pytest_run(env: dict[str, str], *options: str) -> tuple[int, str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, CONSOLE_TEST]
    with anyio.fail_after(240):
        result = await anyio.run_process(command, cwd=ROOT, check=False, env=env)
    return result.returncode, result.stdout.decode() + result.stderr.decode()


async def test_missing_chromium_fails_and_says_how_to_install_it(tmp_path) -> None:
    env = {**os.environ, "ASYNCRUN_CHROMIUM": str(tmp_path / "no-chromium")}
    env.pop("ASYNCRUN_SKIP_CHROMIUM", None)
    code, out = await pytest_run(env)
    assert code == 1, out
    assert "chromium is not installed" in out and "apt-get install chromium" in out, out
    assert "ASYNCRUN_SKIP_CHROMIUM=1" in out, out


# The README runs the suite with pytest-xdist: the skipped tests are reported by its workers.
@pytest.mark.parametrize("options", [(), ("-n", "2")], ids=["one-process", "xdist"])
async def test_opting_out_skips_and_says_so_loudly(tmp_path, options: tuple[str, ...]) -> None:
    env = {**os.environ, "ASYNCRUN_CHROMIUM": str(tmp_path / "no-chromium"), "ASYNCRUN_SKIP_CHROMIUM": "1"}
    code, out = await pytest_run(env, *options)
    assert code == 0, out
    assert "TESTS NOT RUN: missing prerequisites" in out, out
    summary = out[out.index("TESTS NOT RUN") :]
    assert "apt-get install chromium" in summary and CONSOLE_TEST in summary, out
