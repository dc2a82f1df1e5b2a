"""What `run --remote --wait`, `wait` and `status` say, and their exit codes: real `asyncrun` processes
against a real sandbox (FLYTE_PLATFORM_URL) and the real daemon."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HELLO = str(EXAMPLES / "hello.py")

OUTPUTS = """\
import time
from dataclasses import dataclass

from asyncrun import task


@dataclass
class Cfg:
    a: int
    tags: list[str]


@task
def words(n: int = 2) -> list[str]:
    return ["x"] * n


@task
def cfg(n: int = 2) -> Cfg:
    return Cfg(a=n, tags=["t", "u"])


@task
def maybe(n: int = 2) -> bool:
    return n > 1


@task
def nap(s: int = 120) -> int:
    time.sleep(s)
    return s
"""


async def asyncrun(*args: str) -> tuple[int, str, str]:
    result = await anyio.run_process([ASYNCRUN, *args], check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.fixture
def outputs_file(tmp_path: Path) -> Path:
    path = tmp_path / "outs.py"
    path.write_text(OUTPUTS)
    return path


# ---- item 19: wait options without --wait --------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        ["--wait-timeout", "2"],
        ["--abort-on-timeout"],
        ["--wait-for", "running"],
        ["--no-daemon"],
        ["--wait", "--abort-on-timeout"],  # without --wait-timeout it would do nothing
    ],
)
async def test_wait_options_without_wait_are_a_usage_error(options, tmp_path) -> None:
    # No control plane is needed: the options are refused before anything else happens.
    code, _, err = await asyncrun("run", "--remote", *options, HELLO, "wf")
    assert code == 2, err
    assert "--wait" in err.strip().splitlines()[-1]


async def test_wait_abort_on_timeout_without_wait_timeout_is_a_usage_error() -> None:
    code, _, err = await asyncrun("wait", "some-run", "--abort-on-timeout")
    assert code == 2, err
    assert "--abort-on-timeout needs --wait-timeout" in err


# ---- item 25: --name checked before any work -----------------------------------------------------


@pytest.mark.parametrize("name", ["My_Bad", "a" * 64, "9lives", "has.dot"])
async def test_a_bad_execution_name_is_refused_before_packaging(name, sandbox_env) -> None:
    code, out, err = await asyncrun("run", "--remote", "--name", name, HELLO, "wf")
    assert code == 2, err
    assert err.strip().splitlines() == [err.strip().splitlines()[0]]  # one line
    assert err.startswith("Error: execution name"), err
    assert "packaged" not in err and "registered" not in err


async def test_an_upper_case_name_is_lowered_as_flyteadmin_does(sandbox_env) -> None:
    code, out, err = await asyncrun(
        "run", "--remote", "--wait", "--name", "Upper-Case", HELLO, "say_hello", "--name", "world"
    )
    assert (code, out.strip()) == (0, "hello world"), err
    assert "Execution upper-case created" in err


# ---- item 18: --abort-on-timeout says what happened ----------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--no-daemon"]])
async def test_abort_on_timeout_says_the_run_was_terminated_and_exits_5(
    extra, sandbox_env, outputs_file
) -> None:
    name = "abort-nd" if extra else "abort-d"
    code, _, err = await asyncrun(
        "run", "--remote", "--wait", "--wait-timeout", "1", "--abort-on-timeout", *extra,
        "--name", name, str(outputs_file), "nap",
    )  # fmt: skip
    assert code == 5, err
    last = err.strip().splitlines()[-1]
    assert last == (
        f"Error: stopped waiting for {name} after 1 s (--wait-timeout) and terminated it (--abort-on-timeout)"
    )
    assert "RUNNING" not in last
    with anyio.fail_after(60):
        code, out, err = await asyncrun("wait", name)
    assert code == 3, (out, err)  # the run was aborted, as said


async def test_wait_timeout_alone_says_the_run_goes_on(sandbox_env, outputs_file) -> None:
    code, _, err = await asyncrun(
        "run", "--remote", "--wait", "--wait-timeout", "1", "--name", "goes-on", str(outputs_file), "nap"
    )
    assert code == 5, err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("Error: stopped waiting for goes-on after 1 s (--wait-timeout); it is ")
    )
    assert "goes on" in err.strip().splitlines()[-1]
    code, out, _ = await asyncrun("status", "goes-on")
    assert code == 0 and out.split()[:2] == ["goes-on", "RUNNING"]


# ---- item 24: not found, empty ids ----------------------------------------------------------------


async def test_status_and_wait_of_a_run_that_does_not_exist_exit_1_without_a_link(sandbox_env) -> None:
    for command in ("status", "wait"):
        code, out, err = await asyncrun(command, "nope")
        assert code == 1, (command, out, err)
        assert out.split()[:3] == ["nope", "NOT", "FOUND"], (command, out)
        assert "http" not in out, (command, out)
        assert "no execution nope" in err, (command, err)


@pytest.mark.parametrize("command", ["status", "wait", "watch"])
async def test_an_empty_execution_id_is_a_usage_error_in_user_terms(command) -> None:
    code, _, err = await asyncrun(command, "")
    assert code == 2, err
    assert "an execution id cannot be empty" in err
    assert "{project, domain, name}" not in err


# ---- item 27: phases, attaching, one rendering, console links ------------------------------------


async def test_run_wait_shows_no_undefined_phase_and_links_to_the_console(sandbox_env, outputs_file) -> None:
    for extra in ([], ["--no-daemon"]):
        name = "links-nd" if extra else "links-d"
        code, out, err = await asyncrun(
            "run", "--remote", "--wait", *extra, "--name", name, str(outputs_file), "words"
        )
        assert code == 0, err
        assert "UNDEFINED" not in err
        assert f"Execution {name} created: {sandbox_env.console_url}/projects/" in err, err
        code, out, _ = await asyncrun("status", name)
        assert out.split()[2].startswith(f"{sandbox_env.console_url}/projects/"), out


async def test_reusing_a_name_says_attached_not_created(sandbox_env) -> None:
    code, _, err = await asyncrun(
        "run", "--remote", "--wait", "--name", "again", HELLO, "say_hello", "--name", "world"
    )
    assert code == 0 and "Execution again created" in err, err
    code, out, err = await asyncrun(
        "run", "--remote", "--wait", "--name", "again", HELLO, "say_hello", "--name", "world"
    )
    assert (code, out.strip()) == (0, "hello world"), err
    assert "Execution again created" not in err
    assert "Execution again exists with the same entity and inputs; attached" in err
    assert "attaching to it" not in err


@pytest.mark.parametrize(
    ("task", "rendered"),
    [("words", '["x", "x"]'), ("maybe", "true"), ("cfg", '{"a": 2, "tags": ["t", "u"]}')],
)
async def test_outputs_are_rendered_alike_by_run_run_wait_and_wait(
    task, rendered, sandbox_env, outputs_file
) -> None:
    code, local, err = await asyncrun("run", str(outputs_file), task)
    assert code == 0, err
    code, remote, err = await asyncrun(
        "run", "--remote", "--wait", "--name", f"r-{task}", str(outputs_file), task
    )
    assert code == 0, err
    code, waited, err = await asyncrun("wait", f"r-{task}")
    assert code == 0, err
    assert local.strip() == remote.strip() == rendered
    if task != "cfg":  # the daemon keeps outputs without their types: a struct's int reads as a float
        assert waited.strip() == rendered
