"""Console scripts forked from a warm interpreter, for tests that run flytekit's `pyflyte` (or `asyncrun`
on a flytekit file) many times: importing flytekit costs ~2 s of CPU per process, which on two cores
was the largest single cost of the suite.

`run(argv, ...)` behaves as `subprocess.run(argv, capture_output=True, text=True)` would: the program
is a console script of this virtualenv, run as `__main__` in a child forked from a process that has
imported `PRELOAD` once (the sandbox's own warm worker, `asyncrun/sandbox/_warm_worker.py`): its own
session, the given working folder, complete environment, stdin, and separate stdout and stderr. One
fork server per test process, started on first use; a child still running at its timeout is killed
with its process group.

Tests that are about process start-up itself (what a command imports, how long it takes) must not
use this: they start real processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncrun.sandbox._warm_worker as warm_worker
from asyncrun.sdk._foreign import ENTITY_SOURCES

PRELOAD = ("flytekit", "flytekit.clis.sdk_in_container.pyflyte", "asyncrun.cli", "asyncrun.interop")


class _Child:
    def __init__(self) -> None:
        self.pid: int | None = None
        self.error = ""
        self.started = threading.Event()
        self.returncode: int | None = None
        self.ended = threading.Event()


class ForkServer:
    """One warm worker process and the thread that reads its replies."""

    def __init__(self, modules: Sequence[str]) -> None:
        # Settings flytekit reads when it is imported are the fork server's: those `asyncrun run`
        # imports a flytekit file with (`import_env`: flytekit's import-time warnings off stdout).
        env = dict(os.environ)
        for source in ENTITY_SOURCES:
            for name, value in source.import_env:
                env.setdefault(name, value)
        self._process = subprocess.Popen(
            [sys.executable, warm_worker.__file__, *modules],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._lock = threading.Lock()
        self._requests = 0
        self._pending: dict[int, _Child] = {}
        self._running: dict[int, _Child] = {}
        self._ready = threading.Event()
        self._status: dict[str, object] = {}
        threading.Thread(target=self._read, name="forkserver replies", daemon=True).start()
        if not self._ready.wait(300) or not self._status.get("ready"):
            raise RuntimeError(f"the fork server did not start: {self._status or 'no answer'}")

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            message = json.loads(line)
            with self._lock:
                if "ready" in message:
                    self._status = message
                    self._ready.set()
                elif "id" in message:
                    child = self._pending.pop(message["id"])
                    if "pid" in message:
                        child.pid = message["pid"]
                        self._running[child.pid] = child
                    else:
                        child.error = message.get("error", "no pid")
                    child.started.set()
                else:
                    ended = self._running.pop(message["pid"], None)
                    if ended is not None:
                        ended.returncode = message["returncode"]
                        ended.ended.set()
        with self._lock:  # the server died: nothing more will start or end
            self._ready.set()
            for child in [*self._pending.values(), *self._running.values()]:
                child.error = child.error or "the fork server died"
                child.returncode = -signal.SIGKILL if child.returncode is None else child.returncode
                child.started.set()
                child.ended.set()

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str | os.PathLike[str],
        env: Mapping[str, str],
        stdin: str | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory(prefix="forked-") as scratch:
            out, err, stdin_path = (Path(scratch) / name for name in ("stdout", "stderr", "stdin"))
            request: dict[str, object] = {
                "argv": list(argv),
                "cwd": str(cwd),
                "env": dict(env),
                "log": str(out),
                "stderr": str(err),
            }
            if stdin is not None:
                stdin_path.write_text(stdin)
                request["stdin"] = str(stdin_path)
            child = _Child()
            assert self._process.stdin is not None
            with self._lock:
                self._requests += 1
                request["id"] = self._requests
                self._pending[self._requests] = child
                self._process.stdin.write(json.dumps(request).encode() + b"\n")
                self._process.stdin.flush()
            child.started.wait()
            if child.pid is None:
                raise RuntimeError(f"the fork server could not start {argv[0]}: {child.error}")
            if not child.ended.wait(timeout):
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                child.ended.wait(30)
                raise subprocess.TimeoutExpired(list(argv), timeout)
            assert child.returncode is not None
            read = lambda path: path.read_text(errors="replace") if path.exists() else ""  # noqa: E731
            return subprocess.CompletedProcess(list(argv), child.returncode, read(out), read(err))


_SERVER: ForkServer | None = None
_SERVER_LOCK = threading.Lock()


def server() -> ForkServer:
    """This test process's fork server, started on first use."""
    global _SERVER
    with _SERVER_LOCK:
        if _SERVER is None:
            _SERVER = ForkServer(PRELOAD)
        return _SERVER


def run(argv: Sequence[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(argv, capture_output=True, text=True, input=stdin, ...)` from the fork server;
    `options` are `ForkServer.run`'s (`cwd`, `env`, `stdin`, `timeout`)."""
    return server().run(argv, **options)


async def arun(argv: Sequence[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """`run`, from async tests (in a worker thread)."""
    import functools

    import anyio

    return await anyio.to_thread.run_sync(functools.partial(run, argv, **options))
