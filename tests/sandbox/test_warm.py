"""Warm task workers (`sandbox/_warm.py`): a forked task process behaves as a cold one would.

Each test starts real workers (the task interpreter running `_warm_worker.py`) and runs a console
script named like a program they know (`asyncrun-execute`), written here to report what it sees.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import textwrap
import types
from pathlib import Path

import pytest

from asyncrun.sandbox._process import run_process
from asyncrun.sandbox._warm import WarmWorkers

from .conftest import assert_eventually
from .test_orphans import alive

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

REPORTER = textwrap.dedent(
    """
    import json, os, sys
    print("to stdout")
    print("to stderr", file=sys.stderr)
    report = {
        "argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0],
        "attempt": os.environ.get("FLYTE_ATTEMPT_NUMBER"), "mine": os.environ.get("MINE"),
        "stale": os.environ.get("ONLY_IN_WORKER"), "preloaded": "asyncrun.sdk._literals" in sys.modules,
        "pid": os.getpid(), "pgid": os.getpgid(0),
    }
    with open(sys.argv[1], "w") as handle:
        json.dump(report, handle)
    sys.exit(int(sys.argv[2]))
    """
)


def program(folder: Path, body: str, name: str = "asyncrun-execute") -> Path:
    """A console script as pip writes one: `#!<python>` and the code."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


def environment(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), **extra}


async def test_a_forked_process_sees_its_own_argv_folder_environment_and_log(tmp_path: Path) -> None:
    script = program(tmp_path / "bin", REPORTER)
    work, log, report = tmp_path / "work", tmp_path / "task.log", tmp_path / "report.json"
    work.mkdir()
    async with WarmWorkers() as workers:
        reports = []
        for attempt in ("0", "1"):
            child = await workers.start(
                [str(script), str(report), "0"],
                cwd=work,
                env=environment(FLYTE_ATTEMPT_NUMBER=attempt, MINE=f"value {attempt}"),
                log_path=log,
            )
            assert child is not None
            assert await child.wait() == 0
            reports.append(json.loads(report.read_text()))
    first, second = reports
    assert first["argv"] == [str(script), str(report), "0"]
    assert first["cwd"] == str(work) and first["path0"] == str(tmp_path / "bin")
    assert (first["attempt"], first["mine"]) == ("0", "value 0")
    assert (second["attempt"], second["mine"]) == ("1", "value 1")
    assert first["preloaded"], "the worker imported the program's modules before forking"
    assert first["pid"] != second["pid"] and first["pgid"] == first["pid"], "a session of its own"
    assert log.read_text().count("to stdout") == 2 and log.read_text().count("to stderr") == 2


async def test_exit_codes_are_those_of_a_cold_process(tmp_path: Path) -> None:
    bodies = {
        "exit 3": ("import sys; sys.exit(3)", 3),
        "exception": ("raise RuntimeError('boom')", 1),
        "message": ("import sys; sys.exit('bad input')", 1),
        "signal": ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", -signal.SIGTERM),
        "returns": ("x = 1", 0),
    }
    async with WarmWorkers() as workers:
        for name, (body, expected) in bodies.items():
            script = program(tmp_path / name.replace(" ", "_"), body)
            log = tmp_path / f"{name}.log"
            child = await workers.start([str(script)], cwd=tmp_path, env=environment(), log_path=log)
            assert child is not None
            assert await child.wait() == expected, (name, log.read_text())
    assert "RuntimeError: boom" in (tmp_path / "exception.log").read_text()
    assert "bad input" in (tmp_path / "message.log").read_text()


async def test_a_forked_process_ends_as_an_interpreter_does(tmp_path: Path) -> None:
    """A child skips tearing down what it inherited from the worker, but not what a normal exit does
    for the task: threads joined, atexit handlers run, files it left open and output flushed."""
    helper = tmp_path / "lib" / "task_helper.py"
    helper.parent.mkdir()
    helper.write_text(f"left_open = open({str(tmp_path / 'module.txt')!r}, 'w')\nleft_open.write('module')\n")
    body = (
        "import atexit, sys, threading, time\n"
        f"sys.path.insert(0, {str(helper.parent)!r})\n"
        "import task_helper\n"
        f"atexit.register(lambda: open({str(tmp_path / 'atexit.txt')!r}, 'w').write('atexit'))\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        f"    open({str(tmp_path / 'thread.txt')!r}, 'w').write('thread')\n"
        "threading.Thread(target=late).start()\n"
        f"script_file = open({str(tmp_path / 'script.txt')!r}, 'w')\n"
        "script_file.write('script')\n"
        "sys.stdout.write('no newline')\n"
        "sys.exit(4)\n"
    )
    script = program(tmp_path / "bin", body)
    async with WarmWorkers() as workers:
        child = await workers.start([str(script)], cwd=tmp_path, env=environment(), log_path=tmp_path / "log")
        assert child is not None
        assert await child.wait() == 4
    for name in ("module", "atexit", "thread", "script"):
        assert (tmp_path / f"{name}.txt").read_text() == name
    assert (tmp_path / "log").read_text() == "no newline"


async def test_what_a_task_leaves_running_dies_when_it_ends(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    body = (
        "import subprocess\n"
        "p = subprocess.Popen(['sleep', '600'])\n"
        f"open({str(pids)!r}, 'w').write(str(p.pid))\n"
    )
    script = program(tmp_path / "bin", body)
    async with WarmWorkers() as workers:
        exit_ = await run_process(
            [str(script)], cwd=tmp_path, env=environment(), log=tmp_path / "log", warm=workers
        )
    assert exit_.returncode == 0
    helper = int(pids.read_text())

    async def gone() -> bool:
        return not alive(helper)

    await assert_eventually(gone, what="the task's leftover sleep to be killed")


async def test_a_timeout_kills_the_forked_process_and_its_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    body = (
        "import os, subprocess, time\n"
        "p = subprocess.Popen(['sleep', '600'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{p.pid}}')\n"
        "time.sleep(600)\n"
    )
    script = program(tmp_path / "bin", body)
    async with WarmWorkers() as workers:
        exit_ = await run_process(
            [str(script)], cwd=tmp_path, env=environment(), log=tmp_path / "log", time_limit=3, warm=workers
        )
    assert exit_.timed_out
    task_pid, helper = map(int, pids.read_text().split())

    async def gone() -> bool:
        return not alive(task_pid) and not alive(helper)

    await assert_eventually(gone, what="the timed-out task and its helper to be killed")


async def test_a_retired_worker_lets_its_running_task_finish(tmp_path: Path) -> None:
    release, report = tmp_path / "release", tmp_path / "report"
    waits = (
        "import os, sys, time\n"
        f"while not os.path.exists({str(release)!r}): time.sleep(0.02)\n"
        f"open({str(report)!r}, 'w').write('finished')\n"
    )
    slow, quick = program(tmp_path / "slow", waits), program(tmp_path / "quick", "x = 1")
    async with WarmWorkers(max_workers=1) as workers:
        running = await workers.start([str(slow)], cwd=tmp_path, env=environment(), log_path=tmp_path / "a")
        # Another environment needs another worker; with room for one, the first one retires.
        other = await workers.start(
            [str(quick)], cwd=tmp_path, env=environment(OTHER="1"), log_path=tmp_path / "b"
        )
        assert running is not None and other is not None
        assert await other.wait() == 0
        release.touch()
        assert await running.wait() == 0
    assert report.read_text() == "finished"


async def test_the_worker_keeps_the_pid_file_of_a_running_child(tmp_path: Path) -> None:
    """What a restarted sandbox reads to kill a crashed run's processes (`kill_leftover_groups`)."""
    release = tmp_path / "release"
    waits = f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.02)\n"
    script = program(tmp_path / "bin", waits)
    pid_file = tmp_path / "0.pid"
    async with WarmWorkers() as workers:
        child = await workers.start(
            [str(script)],
            cwd=tmp_path,
            env=environment(),
            log_path=tmp_path / "log",
            pid_file=pid_file,
            pid_token="the-token",
        )
        assert child is not None
        assert pid_file.read_text() == f"{child.pid} the-token\n", "written before the fork is answered"
        release.touch()
        assert await child.wait() == 0
    assert not pid_file.exists()


async def test_programs_it_does_not_know_run_cold(tmp_path: Path) -> None:
    unknown = program(tmp_path / "bin", "x = 1", name="my-runner")
    shell = tmp_path / "sh" / "asyncrun-execute"
    shell.parent.mkdir()
    shell.write_text("#!/bin/sh\nexit 0\n")
    shell.chmod(0o755)
    async with WarmWorkers() as workers:
        for argv in ([str(unknown)], [str(shell)], ["true"]):
            assert await workers.start(argv, cwd=tmp_path, env=environment(), log_path=tmp_path / "l") is None
    async with WarmWorkers(enabled=False) as workers:
        known = program(tmp_path / "known", "x = 1")
        assert (
            await workers.start([str(known)], cwd=tmp_path, env=environment(), log_path=tmp_path / "l")
            is None
        )


async def test_a_worker_whose_imports_fail_leaves_tasks_cold(tmp_path: Path) -> None:
    # pyflyte-execute's worker imports flytekit; an interpreter without it cannot warm that program.
    bare = tmp_path / "venv"
    import venv

    venv.create(bare, with_pip=False)
    script = tmp_path / "bin" / "pyflyte-execute"
    script.parent.mkdir()
    script.write_text(f"#!{bare / 'bin' / 'python'}\nprint('ran')\n")
    script.chmod(0o755)
    async with WarmWorkers() as workers:
        assert (
            await workers.start([str(script)], cwd=tmp_path, env=environment(), log_path=tmp_path / "l")
            is None
        )
        exit_ = await run_process(
            [str(script)], cwd=tmp_path, env=environment(), log=tmp_path / "l", warm=workers
        )
    assert exit_.returncode == 0 and "ran" in (tmp_path / "l").read_text()


RANDOM_REPORTER = textwrap.dedent(
    """
    import json, random, sys
    from flytekit.interfaces.random import random as flytekit_random
    with open(sys.argv[1], "w") as handle:
        json.dump([random.getrandbits(64), flytekit_random.getrandbits(64)], handle)
    """
)


def test_generators_are_found_past_modules_that_raise_when_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    """flytekit keeps lazy modules (pandas when it is not installed) that raise ImportError on any
    attribute access: looking for generators must pass them by (it stopped the worker from starting)."""
    from asyncrun.sandbox import _warm_worker

    class Lazy(types.ModuleType):
        def __getattribute__(self, name: str) -> object:
            raise ImportError("Module pandas is not yet installed.")

    lazy = Lazy("pandas_stand_in")
    holder = types.ModuleType("holder")
    holder.lazy = lazy  # type: ignore[attr-defined]
    holder.generator = random.Random()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "test_warm_lazy", lazy)
    monkeypatch.setitem(sys.modules, "test_warm_holder", holder)
    assert any(found is holder.generator for found in _warm_worker._generators())  # type: ignore[attr-defined]


async def test_each_forked_process_draws_its_own_random_paths(tmp_path: Path) -> None:
    """flytekit names upload and output paths from a generator of its own; children forked from one
    worker must not share its state (they would write to the same "random" paths)."""
    script = program(tmp_path / "bin", RANDOM_REPORTER, name="pyflyte-execute")
    drawn = []
    async with WarmWorkers() as workers:
        for attempt in range(2):
            report = tmp_path / f"random{attempt}.json"
            child = await workers.start(
                [str(script), str(report)], cwd=tmp_path, env=environment(), log_path=tmp_path / "log"
            )
            assert child is not None, "flytekit's programs run warm"
            assert await child.wait() == 0, (tmp_path / "log").read_text()
            drawn.append(json.loads(report.read_text()))
    first, second = drawn
    assert first[0] != second[0], "random's own generator"
    assert first[1] != second[1], "flytekit's generator"


LAZY_REPORTER = textwrap.dedent(
    """
    import json, sys
    with open(sys.argv[1], "w") as handle:
        json.dump(type(sys.modules.get("joblib")).__name__, handle)
    """
)


async def test_a_child_does_not_import_what_flytekit_imports_lazily(tmp_path: Path) -> None:
    """flytekit imports joblib lazily (importlib.util.LazyLoader); reseeding a child's generators reads
    every module's namespace, and must not import a lazy one in every task process."""
    script = program(tmp_path / "bin", LAZY_REPORTER, name="pyflyte-execute")
    report = tmp_path / "lazy.json"
    async with WarmWorkers() as workers:
        child = await workers.start(
            [str(script), str(report)], cwd=tmp_path, env=environment(), log_path=tmp_path / "log"
        )
        assert child is not None, "flytekit's programs run warm"
        assert await child.wait() == 0, (tmp_path / "log").read_text()
    assert json.loads(report.read_text()) == "_LazyModule"
