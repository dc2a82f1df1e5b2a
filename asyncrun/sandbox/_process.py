"""Run one task attempt as a local subprocess, the way flytepropeller runs a pod, and read what it left.

The process gets a fresh working folder, its own process group (so a timeout or an abort kills everything
it started), stdout and stderr in a log file, and the propeller environment. Its verdict is read from the
output prefix afterwards: `error.pb` (an ErrorDocument) wins, then `outputs.pb` (a LiteralMap); exiting
non-zero or leaving neither file is a system failure.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from asyncrun import _storage
from asyncrun._exceptions import BlobNotFoundError, StorageError
from asyncrun._proto.flyteidl import core

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from ._warm import WarmChild, WarmWorkers

__all__ = [
    "AttemptPaths",
    "AttemptResult",
    "ProcessExit",
    "kill_leftover_groups",
    "kill_process_group",
    "prepare_attempt",
    "read_attempt_result",
    "run_process",
    "safe_component",
    "sandbox_fault",
    "system_error",
]

_LOG_TAIL_BYTES = 4000


def safe_component(name: str) -> str:
    """A node id made safe as one path component (ids are user-chosen strings)."""
    cleaned = "".join(char if char.isalnum() or char in "-_." else "_" for char in name)
    return cleaned if cleaned.strip(".") else f"_{cleaned}"


@dataclass(frozen=True)
class AttemptPaths:
    """Where one attempt of a node runs and leaves its files.

    Attributes:
        cwd: the attempt's fresh working folder (`<node>/<attempt>/`).
        input_prefix: the node's data folder holding `inputs.pb` (`<node>/data`), or its object-store URI.
        output_prefix: where the task writes `outputs.pb` / `error.pb` (`<node>/data/<attempt>`), or
            its object-store URI.
        raw_output_prefix: where the task writes files it returns.
        checkpoint_prefix: this attempt's checkpoint folder.
        prev_checkpoint_prefix: the previous attempt's checkpoint folder, or "".
        log: stdout and stderr of the process (`<node>/<attempt>.log`).
        local_dir: the attempt's local data folder (`<node>/data/<attempt>`; checkpoints, task.pb).
        storage_options: fsspec arguments for reading an object-store `output_prefix`.
    """

    cwd: Path
    input_prefix: str
    output_prefix: str
    raw_output_prefix: str
    checkpoint_prefix: Path
    prev_checkpoint_prefix: str
    log: Path
    local_dir: Path
    storage_options: Mapping[str, Any] | None = None


def prepare_attempt(
    node_dir: Path,
    attempt: int,
    *,
    raw_output_prefix: str = "",
    data_prefix: str = "",
    storage_options: Mapping[str, Any] | None = None,
) -> AttemptPaths:
    """Create (emptying any leftovers of) the folders of one attempt. Blocking: call in a worker thread.

    Args:
        node_dir: the node's local folder.
        attempt: the attempt number.
        raw_output_prefix: where File/Directory outputs go; "" means `<output_prefix>/raw` locally.
        data_prefix: the object-store URI of the node's data folder (`inputs.pb`, `<attempt>/outputs.pb`)
            when execution data lives in an object store; "" keeps it in `<node_dir>/data`.
        storage_options: fsspec arguments for that object store.
    """
    cwd = node_dir / str(attempt)
    output_prefix = node_dir / "data" / str(attempt)
    for folder in (cwd, output_prefix):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    checkpoint = output_prefix / "checkpoint"
    previous = node_dir / "data" / str(attempt - 1) / "checkpoint"
    if not raw_output_prefix:
        (output_prefix / "raw").mkdir()
        raw_output_prefix = str(output_prefix / "raw")
    remote_output = _storage.join(data_prefix, str(attempt)) if data_prefix else ""
    for leftover in ("outputs.pb", "error.pb") if remote_output else ():
        # A restarted attempt must not read the verdict of the run before it.
        _storage.delete(_storage.join(remote_output, leftover), options=storage_options)
    return AttemptPaths(
        cwd=cwd,
        input_prefix=data_prefix or str(node_dir / "data"),
        output_prefix=remote_output or str(output_prefix),
        raw_output_prefix=raw_output_prefix,
        checkpoint_prefix=checkpoint,
        prev_checkpoint_prefix=str(previous) if attempt > 0 and previous.is_dir() else "",
        log=node_dir / f"{attempt}.log",
        local_dir=output_prefix,
        storage_options=storage_options,
    )


@dataclass(frozen=True)
class ProcessExit:
    """How the process ended: its return code (negative: killed by that signal), or a timeout."""

    returncode: int | None
    timed_out: bool = False


def kill_process_group(pid: int) -> None:
    """SIGKILL the process group led by `pid`; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# Execs the task with PR_SET_PDEATHSIG=SIGKILL, so it dies with the sandbox even on SIGKILL (the flag
# survives exec); a sandbox that died before the flag was set is caught by comparing the parent pid.
_DIE_WITH_PARENT = (
    "import ctypes,os,sys\n"
    "ctypes.CDLL(None).prctl(1,9)\n"
    "os.getppid()==int(sys.argv[1]) or os._exit(137)\n"
    "os.execv(sys.argv[2],sys.argv[2:])\n"
)
TOKEN_ENV = "ASYNCRUN_ATTEMPT_TOKEN"


def die_with_parent_argv(argv: Sequence[str]) -> list[str]:
    """`argv` (its program a path) wrapped so that the process dies with the sandbox (Linux)."""
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]


def _launch_argv(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """`argv` with its program resolved on `env`'s PATH, wrapped so it dies with the sandbox (Linux)."""
    program = argv[0]
    if os.sep not in program:  # a path with a folder is resolved in `cwd` by the exec, as before
        found = shutil.which(program, path=env.get("PATH", os.defpath))
        if found is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", program)
        program = found
    if not sys.platform.startswith("linux"):
        return [program, *argv[1:]]
    return die_with_parent_argv([program, *argv[1:]])


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    time_limit: float | None = None,
    pid_file: Path | None = None,
    warm: WarmWorkers | None = None,
) -> ProcessExit:
    """Run `argv` in its own session and wait for it; on timeout or cancellation kill its whole group.

    The process dies with the sandbox (SIGKILL included) on Linux. With `pid_file`, its group id and a
    fresh token (also in its environment as `ASYNCRUN_ATTEMPT_TOKEN`) are written there, so a restarted
    sandbox can kill what the group left running (`kill_leftover_groups`).

    Args:
        argv: the program and its arguments (the program is looked up on `env`'s PATH).
        cwd: the working folder.
        env: the complete environment.
        log: the file receiving stdout and stderr.
        time_limit: seconds before the group is killed and a timeout reported.
        pid_file: where to record the group id and token while the process runs.
        warm: fork the process from these warm workers when they know its program (see `_warm`).

    Raises:
        OSError: the program cannot be started (e.g. FileNotFoundError when it is not on PATH).
    """
    token = uuid.uuid4().hex
    env = {**env, TOKEN_ENV: token}
    child = None
    if warm is not None:
        child = await warm.start(argv, cwd=cwd, env=env, log_path=log, pid_file=pid_file, pid_token=token)
    if child is not None:
        return await _wait_warm(child, time_limit)
    with log.open("ab") as output:
        process = await anyio.open_process(
            _launch_argv(argv, env),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    if pid_file is not None:
        _write_pid_file(pid_file, f"{process.pid} {token}\n")
    try:
        with anyio.move_on_after(time_limit) as deadline:
            await process.wait()
        if deadline.cancelled_caught:
            return ProcessExit(None, timed_out=True)
        return ProcessExit(process.returncode)
    finally:
        # Also after a normal exit: children the task left running in its group die with it, as in a pod.
        kill_process_group(process.pid)
        with anyio.CancelScope(shield=True):
            await process.wait()
        await process.aclose()
        if pid_file is not None:
            _remove_pid_file(pid_file)


async def _wait_warm(child: WarmChild, time_limit: float | None) -> ProcessExit:
    """`run_process` for a process forked by a warm worker (which reaps it, kills its group, and keeps
    its pid file)."""
    try:
        with anyio.move_on_after(time_limit) as deadline:
            returncode = await child.wait()
        if deadline.cancelled_caught:
            return ProcessExit(None, timed_out=True)
        return ProcessExit(returncode)
    finally:
        if child.returncode is None:
            kill_process_group(child.pid)
            with anyio.CancelScope(shield=True):
                await child.wait()


def _write_pid_file(path: Path, text: str) -> None:
    with contextlib.suppress(OSError):
        path.write_text(text)


def _remove_pid_file(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def kill_leftover_groups(directory: Path) -> int:
    """Kill the process groups that attempts under an execution's `directory` left running.

    A group is killed only while a process in it still carries the token of its pid file (a recycled
    pid is left alone). Blocking: call in a worker thread.

    Returns:
        How many groups were killed.
    """
    killed = 0
    for pid_file in sorted(directory.glob("*/*.pid")):
        try:
            pgid_text, token = pid_file.read_text().split()
            pgid = int(pgid_text)
        except (OSError, ValueError):
            continue
        marker = f"{TOKEN_ENV}={token}".encode()
        for member in _group_members(pgid):
            try:
                environ = Path(f"/proc/{member}/environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                kill_process_group(pgid)
                killed += 1
                break
        with contextlib.suppress(OSError):
            pid_file.unlink()
    return killed


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir() if Path("/proc/self").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            # Field 5 of /proc/<pid>/stat is the process group; the command (field 2) may hold spaces.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry.name))
    return members


@dataclass(frozen=True)
class AttemptResult:
    """The verdict of one attempt.

    Attributes:
        outputs: the task's outputs when it succeeded.
        error: why it failed, as recorded on task, node and workflow closures.
        retryable: the failure may be retried (a RECOVERABLE ContainerError, or a timeout).
        futures: the workflow a dynamic task built (its `futures.pb`), to run as the node's children.
        deck_uri: the `deck.html` the task wrote next to its outputs (flytekit's `enable_deck`), or "".
    """

    outputs: core.LiteralMap | None = None
    error: core.ExecutionError | None = None
    retryable: bool = False
    futures: core.DynamicJobSpec | None = None
    deck_uri: str = ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _log_tail(log: Path) -> str:
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - _LOG_TAIL_BYTES))
            tail = handle.read().decode(errors="replace").strip()
    except OSError:
        return ""
    return f"\n--- last lines of {log} ---\n{tail}" if tail else ""


def system_error(code: str, message: str) -> core.ExecutionError:
    """An ExecutionError of kind SYSTEM stamped now."""
    return core.ExecutionError(
        code=code,
        message=message,
        kind=core.ExecutionErrorErrorKind.SYSTEM,
        timestamp=datetime.datetime.now(datetime.UTC),
    )


_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _is_disk_full(exc: BaseException, seen: set[int] | None = None) -> bool:
    seen = seen if seen is not None else set()
    if id(exc) in seen:
        return False
    seen.add(id(exc))
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
        return True
    if isinstance(exc, sqlite3.Error) and "full" in str(exc):  # SQLITE_FULL: "database or disk is full"
        return True
    inner: list[BaseException] = list(exc.exceptions) if isinstance(exc, BaseExceptionGroup) else []
    inner += [e for e in (exc.__cause__, exc.__context__) if e is not None]
    return any(_is_disk_full(e, seen) for e in inner)


def sandbox_fault(exc: BaseException, data_dir: Path | str) -> core.ExecutionError:
    """The SYSTEM error recorded when the sandbox itself fails while running an execution.

    A full disk (ENOSPC, or SQLite's "database or disk is full") says so and where to free space.
    """
    if _is_disk_full(exc):
        return system_error(
            "DiskFull",
            f"the sandbox ran out of disk space under {data_dir} ({exc}); free space there and run again",
        )
    return system_error("SandboxError", f"{type(exc).__name__}: {exc}")


def read_attempt_result(
    paths: AttemptPaths, exit_: ProcessExit, *, timeout: float | None = None
) -> AttemptResult:
    """How an attempt ended, from its exit and the files in its output prefix. Blocking (reads files)."""
    if exit_.timed_out:
        error = core.ExecutionError(
            code="TimeoutExpired",
            message=f"task execution timeout [{timeout:g}s] expired; the process group was killed",
            kind=core.ExecutionErrorErrorKind.USER,
            timestamp=datetime.datetime.now(datetime.UTC),
        )
        # Propeller retries an attempt that outlived the task's timeout, within the retry budget.
        return AttemptResult(error=error, retryable=True)
    error_file = _storage.join(paths.output_prefix, "error.pb")
    error_bytes = _read_optional(error_file, paths.storage_options)
    if error_bytes is not None:
        try:
            document = core.ErrorDocument.parse(error_bytes)
        except Exception as exc:  # a malformed file is the task's fault, not the sandbox's
            return AttemptResult(error=system_error("BadErrorDocument", f"cannot read {error_file}: {exc}"))
        container = document.error or core.ContainerError()
        error = core.ExecutionError(
            code=container.code,
            message=container.message,
            kind=container.origin,
            timestamp=container.timestamp or datetime.datetime.now(datetime.UTC),
            worker=container.worker,
        )
        return AttemptResult(error=error, retryable=container.kind == core.ContainerErrorKind.RECOVERABLE)
    returncode = exit_.returncode
    if returncode:
        how = (
            f"was killed by signal {_signal_name(-returncode)}"
            if returncode < 0
            else f"exited with code {returncode}"
        )
        return AttemptResult(error=system_error("NonZeroExit", f"task process {how}{_log_tail(paths.log)}"))
    outputs_file = _storage.join(paths.output_prefix, "outputs.pb")
    outputs_bytes = _read_optional(outputs_file, paths.storage_options)
    if outputs_bytes is None:
        # A dynamic task leaves the workflow it built instead (flytekit's futures.pb).
        futures_file = _storage.join(paths.output_prefix, "futures.pb")
        futures_bytes = _read_optional(futures_file, paths.storage_options)
        if futures_bytes is not None:
            try:
                return AttemptResult(futures=core.DynamicJobSpec.parse(futures_bytes))
            except Exception as exc:  # a malformed file is the task's fault, not the sandbox's
                return AttemptResult(error=system_error("BadFutures", f"cannot read {futures_file}: {exc}"))
        return AttemptResult(
            error=system_error(
                "MissingOutputs",
                f"task process exited without writing outputs.pb or error.pb to {paths.output_prefix}"
                f"{_log_tail(paths.log)}",
            )
        )
    try:
        outputs = core.LiteralMap.parse(outputs_bytes)
    except Exception as exc:  # a malformed file is the task's fault, not the sandbox's
        return AttemptResult(error=system_error("BadOutputs", f"cannot read {outputs_file}: {exc}"))
    # FlytePropeller reports a deck when the task left one beside its outputs.
    deck_file = _storage.join(paths.output_prefix, "deck.html")
    try:
        has_deck = _storage.exists(deck_file, options=paths.storage_options)
    except StorageError as exc:
        raise OSError(str(exc)) from exc
    return AttemptResult(outputs=outputs, deck_uri=deck_file if has_deck else "")


def _read_optional(uri: str, options: Mapping[str, Any] | None) -> bytes | None:
    """The file's bytes, None when there is none (or a folder is in the way, as `is_file` would say)."""
    if _storage.is_local(uri):
        path = _storage.local_path(uri)
        return path.read_bytes() if path.is_file() else None
    try:
        return _storage.read_bytes(uri, options=options)
    except BlobNotFoundError:
        return None
    except StorageError as exc:
        raise OSError(str(exc)) from exc
