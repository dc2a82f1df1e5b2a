"""A warm task worker: imports a task runner's modules once, then forks one child per task attempt.

The sandbox starts it as `PYTHON _warm_worker.py MODULE...` with the task's interpreter (read from the
program's `#!` line), which need not have asyncrun installed: this file uses the standard library only.
It imports the MODULEs (e.g. `asyncrun._execute`, or `flytekit.bin.entrypoint` for `pyflyte-execute`;
`?MODULE`: only if it exists), prints `{"ready": true}`, then reads one JSON request per line on stdin:

    {"id": 7, "argv": ["/venv/bin/asyncrun-execute", "--inputs", …], "cwd": "…", "env": {…}, "log": "…"}

(optionally also `"stderr": PATH`, where stderr goes instead of the log, `"stdin": PATH`, read in
place of /dev/null, and `"pid_file": PATH` with `"pid_token": TOKEN`, where the worker writes
`<pid> <token>` while the child runs: the sandbox's record of what to kill after a crash), and answers
on stdout with `{"id": 7, "pid": 1234}` (or `{"id": 7, "error": "…"}`), later `{"pid": 1234,
"returncode": 0}` when that child ends (negative: killed by that signal).

Each child starts as the program would in a fresh process: its own session (so killing the group kills
what it started), stdout and stderr appended to the log, stdin from /dev/null, the request's working
folder and complete environment, `sys.argv` and the program's folder first on `sys.path`, random
generators reseeded; then the program (a console script) runs as `__main__` and the interpreter exits
as usual (non-daemon threads joined, atexit handlers run). Since the program's modules are already
imported, a child starts in a few milliseconds instead of the hundreds a cold interpreter spends
importing them. A child dies with the worker, and the worker with its parent (Linux's
PR_SET_PDEATHSIG), so nothing outlives the sandbox.

`pyflyte-fast-execute` normally downloads the code and then starts `pyflyte-execute` as a second, cold
process; a child runs that second program in its own process instead (same arguments and environment).
"""

import sys

if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    del sys.path[0]  # this file's folder holds the sandbox's modules, which must not shadow a task's

import atexit
import ctypes
import gc
import importlib
import io
import json
import os
import random
import runpy
import select
import signal
import threading
import time
import traceback
from types import ModuleType
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    parent = os.getppid()
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent kills what it started
        return
    if os.getppid() != parent:  # the parent died before the flag was set
        os._exit(137)


class _Worker:
    def __init__(self) -> None:
        # The protocol gets private descriptors; 0 and 1 point at /dev/null, so a stray print from an
        # imported module cannot corrupt it.
        self.requests = os.dup(0)
        self.replies = os.dup(1)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.close(devnull)
        self.children: dict[int, str] = {}  # pid -> its pid file, or ""
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        try:
            while data:
                data = data[os.write(self.replies, data) :]
        except BrokenPipeError:  # the sandbox stopped reading; children still get reaped
            pass

    def serve(self) -> dict[str, Any] | None:
        """Answer requests until stdin closes and the children ended (None); in a child, its request."""
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        pending = b""
        open_ = True
        while open_ or self.children:
            watched = [self.requests, self.wake_read] if open_ else [self.wake_read]
            readable, _, _ = select.select(watched, [], [])
            if self.wake_read in readable:
                while True:
                    try:
                        if not os.read(self.wake_read, 512):
                            break
                    except BlockingIOError:
                        break
                self.reap()
            if self.requests not in readable:
                continue
            data = os.read(self.requests, 1 << 16)
            if not data:  # retired: no more requests; exit once the running children ended
                open_ = False
                continue
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request: dict[str, Any] = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as exc:
                    self.send({"id": request["id"], "error": f"fork failed: {exc}"})
                    continue
                if pid == 0:
                    self.become_child()
                    return request
                pid_file = request.get("pid_file") or ""
                if pid_file:
                    try:
                        with open(pid_file, "w") as handle:
                            handle.write(f"{pid} {request.get('pid_token', '')}\n")
                    except OSError:
                        pass
                self.children[pid] = pid_file
                self.send({"id": request["id"], "pid": pid})
        return None

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            pid_file = self.children.pop(pid, "")
            try:  # what the task left running in its group dies with it, as in a pod
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if pid_file:
                try:
                    os.unlink(pid_file)
                except OSError:
                    pass
            self.send({"pid": pid, "returncode": os.waitstatus_to_exitcode(status)})

    def become_child(self) -> None:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in (self.requests, self.replies, self.wake_read, self.wake_write):
            os.close(fd)


def _start(request: dict[str, Any]) -> None:
    """Turn this forked child into the task process `request` describes."""
    os.setsid()
    _die_with_parent()
    for fd, path in ((1, request["log"]), (2, request.get("stderr") or request["log"])):
        log = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, fd)
        os.close(log)
    if request.get("stdin"):
        stdin = os.open(request["stdin"], os.O_RDONLY)
        os.dup2(stdin, 0)
        os.close(stdin)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    program = request["argv"][0]
    sys.argv = list(request["argv"])
    sys.path.insert(0, os.path.dirname(program))


def _generators() -> list[random.Random]:
    """The random generators the imported modules keep for themselves (found once, in the worker).

    Python reseeds `random`'s own generator at fork, but not the generators modules keep for themselves
    (flytekit's `flytekit.interfaces.random`, which names its "random" upload and output paths): left
    as forked, every child would draw the same paths and overwrite the others' files. Looking for them
    in the worker rather than in each child spares the child touching every module's objects (each
    touch copies a page of the worker's heap).
    """
    found = []
    for module in list(sys.modules.values()):
        # Read the namespace as stored: asking a lazily imported module (importlib.util.LazyLoader, as
        # flytekit imports joblib) for any attribute would import it.
        try:
            namespace = object.__getattribute__(module, "__dict__") if isinstance(module, ModuleType) else {}
        except AttributeError:  # a module object without one (cffi's compiled `lib`)
            continue
        for value in list(namespace.values()):
            kind = type(value)  # not isinstance: it asks a lazy module for its __class__, importing it
            if issubclass(kind, random.Random) and not issubclass(kind, random.SystemRandom):
                found.append(value)
    return found


def _run_program(argv: list[str]) -> int:
    """Run a console script as `__main__` in this process; its exit code.

    Exceptions other than SystemExit propagate (the interpreter reports them as it would).
    """
    sys.argv = list(argv)
    try:
        runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        sys.stderr.write(f"{code}\n")  # as the interpreter does for sys.exit("message")
        return 1
    return 0


def _exit(code: int, inherited: set[str]) -> None:
    """End the child as the interpreter would, without tearing down what it inherited from the worker.

    As at a normal exit: non-daemon threads are joined, atexit handlers run, files the task left open
    are flushed, the modules it imported are cleared and its unreachable objects collected (so their
    finalizers run), and stdout and stderr are flushed. The worker's own modules and objects are left
    as they are: tearing them down would write to every page of the inherited heap (copying each)
    only to throw it away, which was most of a short task's cost.
    """
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    atexit._clear()  # what the handlers hold (the script's globals) can go too
    # Daemon threads stop here, as at shutdown: they must not run on into half-cleared modules.
    sys.setswitchinterval(1e6)
    # Objects the collector tracks outside the frozen generation: the child's own, not the worker's.
    # Flushed first: collected together, a text file may be finalized after the binary file under it
    # and lose what it buffered (a normal exit drops module globals one by one instead).
    for value in gc.get_objects():
        if isinstance(value, io.IOBase):
            try:
                if not value.closed:
                    value.flush()
            except Exception:  # as at exit: a file that cannot be flushed is let go
                pass
    for name in reversed(list(sys.modules)):
        if name not in inherited:
            module = sys.modules.pop(name, None)
            namespace = getattr(module, "__dict__", None)
            if isinstance(namespace, dict):
                namespace.clear()
    gc.collect()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            code = code or 120  # as the interpreter does when flushing stdout fails at exit
    os._exit(code & 0xFF)  # as the status a process exits with: sys.exit(-1) is 255


def _fast_execute_in_process() -> None:
    """Make `pyflyte-fast-execute` run its `pyflyte-execute` here rather than in a cold subprocess."""
    try:
        from flytekit.bin import entrypoint
    except ImportError:
        return
    if not hasattr(entrypoint, "_run_subprocess"):
        return  # another flytekit: leave its fast-execute as it is

    def run_here(cmd: list[str], env: dict[str, str] | None = None) -> int:
        from shutil import which

        if env is not None:
            os.environ.clear()
            os.environ.update(env)
            for folder in reversed(env.get("PYTHONPATH", "").split(os.pathsep)):
                if folder and folder not in sys.path:
                    sys.path.insert(1, folder)
        program = which(cmd[0]) or cmd[0]
        return _run_program([program, *cmd[1:]])

    entrypoint._run_subprocess = run_here


def main() -> None:
    modules = sys.argv[1:]
    worker = _Worker()
    try:
        for module in modules:
            if module.startswith("?"):  # optional (a warm-up an older version may not have)
                try:
                    importlib.import_module(module[1:])
                except ModuleNotFoundError as exc:
                    if exc.name is None or not module[1:].startswith(exc.name):
                        raise
                continue
            importlib.import_module(module)
    except BaseException as exc:  # the sandbox falls back to cold processes for this program
        worker.send({"ready": False, "error": "".join(traceback.format_exception_only(exc)).strip()})
        return
    # Keep the collector off the imported modules' objects: in a child, collecting them (and, at exit,
    # finalizing them) would write to every page of that heap, copying it page by page; frozen, a
    # forked child's exit costs ~0.1 s of CPU instead of ~0.6 s with flytekit imported.
    generators = _generators()
    gc.freeze()
    worker.send({"ready": True})
    request = worker.serve()
    if request is None:
        return
    _start(request)
    for generator in generators:  # a child draws random values of its own (see `_generators`)
        generator.seed()
    if os.path.basename(request["argv"][0]) == "pyflyte-fast-execute":
        _fast_execute_in_process()
    inherited = set(sys.modules)
    _exit(_run_program(request["argv"]), inherited)


if __name__ == "__main__":
    main()
