"""Warm task workers: task processes forked from an interpreter that already imported their runner.

A cold `asyncrun-execute` spends most of its life importing asyncrun and the Flyte protos, and a cold
`pyflyte-execute` over a second importing flytekit. For the programs it knows (`PRELOADS`), the sandbox
keeps one warm worker (`_warm_worker.py`) per interpreter and environment, and asks it to fork each
attempt's process; anything else, or a worker that cannot start, gets a cold process as before. The
child behaves as a fresh process would (see `_warm_worker.py`): its own session, log, working folder
and environment.

Modules imported by the worker read import-time settings from the environment the worker started with,
so workers are keyed by that environment minus the variables that change with every attempt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType

__all__ = ["PRELOADS", "WarmChild", "WarmWorkers", "per_attempt"]

log = logging.getLogger(__name__)

# Programs a worker can run warm, and the modules it imports first (`?module`: if the task's
# interpreter has it; an older asyncrun there has no warm-up module).
PRELOADS: dict[str, tuple[str, ...]] = {
    "asyncrun-execute": (
        "asyncrun._execute",
        "asyncrun.sdk",
        "asyncrun.sdk._literals",
        "?asyncrun._execute_warm",
    ),
    "pyflyte-execute": ("flytekit.bin.entrypoint",),
    "pyflyte-fast-execute": ("flytekit.bin.entrypoint",),
    "pyflyte-map-execute": ("flytekit.bin.entrypoint",),
}
_WORKER_SCRIPT = Path(__file__).with_name("_warm_worker.py")
_MAX_WORKERS = 4  # the least recently used one stops beyond this
_START_TIMEOUT = 120.0  # importing flytekit on a loaded machine


def per_attempt(name: str) -> bool:
    """Environment variables that differ between attempts (and do not pick a worker)."""
    return name.startswith(("FLYTE_INTERNAL_", "_F_", "FLYTE_ATTEMPT", "ASYNCRUN_ATTEMPT", "BATCH_JOB_"))


def _interpreter(program: str) -> str | None:
    """The Python a console script runs with, from its `#!` line; None when that is not plain."""
    try:
        with open(program, "rb") as handle:
            first = handle.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    parts = first[2:].decode(errors="replace").split()
    if len(parts) != 1 or "python" not in os.path.basename(parts[0]):
        return None  # e.g. pip's `#!/bin/sh` trampoline for long paths, or `env python`
    return parts[0]


@dataclass
class WarmChild:
    """A forked task process: its pid (also its process group) and, once it ended, its return code."""

    pid: int
    returncode: int | None = None
    ended: anyio.Event = field(default_factory=anyio.Event)

    async def wait(self) -> int:
        await self.ended.wait()
        assert self.returncode is not None
        return self.returncode


class _Worker:
    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.requests = 0
        self.replies: dict[int, anyio.Event] = {}
        self.answers: dict[int, dict[str, object]] = {}
        self.children: dict[int, WarmChild] = {}  # running: their end is still to come
        self.started: dict[int, WarmChild] = {}  # forked, not yet handed to `fork`'s caller
        self.lock = anyio.Lock()
        self.alive = True

    async def read_replies(self, ready: anyio.Event, status: list[dict[str, object]]) -> None:
        assert self.process.stdout is not None
        buffered = b""
        try:
            async for chunk in self.process.stdout:
                buffered += chunk
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    message = json.loads(line)
                    if "ready" in message:
                        status.append(message)
                        ready.set()
                    elif "id" in message:
                        if "pid" in message:
                            # Registered before anything else is read: the child's end may be the very
                            # next message, before `fork` resumes.
                            child = WarmChild(message["pid"])
                            self.children[child.pid] = self.started[child.pid] = child
                        self.answers[message["id"]] = message
                        self.replies.pop(message["id"]).set()
                    else:
                        finished = self.children.pop(message["pid"], None)
                        if finished is not None:
                            finished.returncode = message["returncode"]
                            finished.ended.set()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, ValueError, KeyError):
            pass
        finally:
            self.alive = False
            ready.set()
            for event in self.replies.values():
                event.set()
            for child in self.children.values():  # they died with the worker (PR_SET_PDEATHSIG)
                child.returncode = -signal.SIGKILL
                child.ended.set()
            self.children.clear()

    async def fork(
        self,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        log_path: Path,
        pid_file: tuple[str, str],
    ) -> WarmChild:
        assert self.process.stdin is not None
        async with self.lock:
            self.requests += 1
            request_id = self.requests
            event = self.replies[request_id] = anyio.Event()
            request = {"argv": list(argv), "cwd": str(cwd), "env": dict(env), "log": str(log_path)}
            if pid_file[0]:
                request["pid_file"], request["pid_token"] = pid_file
            line = json.dumps({"id": request_id, **request})
            await self.process.stdin.send(line.encode() + b"\n")
        await event.wait()
        answer = self.answers.pop(request_id, None)
        if answer is None or "pid" not in answer:
            reason = (answer or {}).get("error", "it stopped")
            raise OSError(f"warm worker could not start the task: {reason}")
        pid = int(answer["pid"])  # type: ignore[call-overload]
        return self.started.pop(pid)


class WarmWorkers:
    """The sandbox's warm workers; use as `async with WarmWorkers() as workers:`.

    With `enabled=False`, `start` always answers None (every task process starts cold).
    """

    def __init__(self, *, enabled: bool = True, max_workers: int = _MAX_WORKERS) -> None:
        self._enabled = enabled
        self._max_workers = max_workers
        self._workers: dict[tuple[object, ...], _Worker | None] = {}
        self._starting: dict[tuple[object, ...], anyio.Event] = {}
        self._started: list[_Worker] = []  # every worker, retired ones too, to reap at the end
        self._task_group: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> WarmWorkers:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        for worker in self._started:
            _stop(worker)
        self._task_group.cancel_scope.cancel()
        try:
            return await self._task_group.__aexit__(exc_type, exc, traceback)
        finally:
            with anyio.CancelScope(shield=True):
                for worker in self._started:
                    await worker.process.aclose()

    async def start(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_path: Path,
        pid_file: Path | None = None,
        pid_token: str = "",
    ) -> WarmChild | None:
        """Fork `argv` from a warm worker; None when it must run cold (unknown program, no worker).

        With `pid_file`, the worker writes `<pid> <pid_token>` there before answering and removes it
        once the child (and its group) ended, as `_process.run_process` does for a cold process.
        """
        program = argv[0]
        modules = PRELOADS.get(os.path.basename(program))
        if modules is None or not self._enabled or self._task_group is None:
            return None
        if os.sep not in program:
            program = shutil.which(program, path=env.get("PATH", os.defpath)) or program
        interpreter = _interpreter(program)
        if interpreter is None:
            return None
        shared = tuple(sorted((name, value) for name, value in env.items() if not per_attempt(name)))
        key = (interpreter, modules, shared)
        worker = await self._worker(key, interpreter, modules, env)
        if worker is None:
            return None
        try:
            pid_record = (str(pid_file) if pid_file is not None else "", pid_token)
            return await worker.fork([program, *argv[1:]], cwd, env, log_path, pid_record)
        except OSError as exc:
            log.warning("%s; running it cold", exc)
            return None

    async def _worker(
        self, key: tuple[object, ...], interpreter: str, modules: tuple[str, ...], env: Mapping[str, str]
    ) -> _Worker | None:
        while key in self._starting:
            await self._starting[key].wait()
        if key in self._workers:
            worker = self._workers.pop(key)
            if worker is None or worker.alive:
                self._workers[key] = worker  # most recently used last
                return worker
        self._starting[key] = anyio.Event()
        try:
            worker = await self._launch(interpreter, modules, env)
            self._workers[key] = worker
            while len(self._workers) > self._max_workers:
                retired = self._workers.pop(next(iter(self._workers)))
                if retired is not None:
                    await _retire(retired)
            return worker
        finally:
            self._starting.pop(key).set()

    async def _launch(
        self, interpreter: str, modules: tuple[str, ...], env: Mapping[str, str]
    ) -> _Worker | None:
        assert self._task_group is not None
        worker_env = {name: value for name, value in env.items() if not per_attempt(name)}
        argv = [interpreter, str(_WORKER_SCRIPT), *modules]
        if sys.platform.startswith("linux"):
            from ._process import die_with_parent_argv

            argv = die_with_parent_argv(argv)
        try:
            process = await anyio.open_process(
                argv, env=worker_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
        except OSError as exc:
            log.warning("cannot start a warm worker with %s: %s; task processes start cold", interpreter, exc)
            return None
        worker = _Worker(process)
        self._started.append(worker)
        ready, status = anyio.Event(), list[dict[str, object]]()
        self._task_group.start_soon(worker.read_replies, ready, status, name="asyncrun warm worker")
        with anyio.move_on_after(_START_TIMEOUT):
            await ready.wait()
        if not status or not status[0].get("ready"):
            reason = status[0].get("error") if status else "it did not start"
            log.warning("no warm worker for %s (%s); task processes start cold", " ".join(modules), reason)
            _stop(worker)
            return None
        return worker


def _stop(worker: _Worker) -> None:
    """Kill a worker; children still running die with it."""
    worker.alive = False
    with contextlib.suppress(ProcessLookupError):
        worker.process.kill()


async def _retire(worker: _Worker) -> None:
    """Close a worker's requests: it exits once its running children have ended."""
    worker.alive = False
    if worker.process.stdin is not None:
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await worker.process.stdin.aclose()
