#!/usr/bin/env python3
"""Waiting on many runs: one asyncrun daemon vs one flytekit-style poller process per run.

    python scripts/bench/wait.py [--sizes 100,1000,10000,100000] [--rounds 3] [--quick]
        [--flytekit-bin DIR] [--json PATH]

Everything talks to a scripted FlyteAdmin (`tests/daemon/stub_admin.py`) served on loopback in this
process, which counts every call. Nothing leaves the machine.

1. **Daemon, N runs** (N = 100, 1,000, 10,000, 100,000): a fresh daemon process; N RUNNING runs
   tracked through one connection; 10 `wait` connections (in this process) each wait on a tenth of
   them. After the poll interval has ramped up to its maximum (the flip comes `settle` seconds after
   the daemon has listed every run), a steady window measures ListExecutions calls per tick (the
   stub's own sweeps and the daemon's tick counters) against ceil(N / page size); then every run is
   flipped to SUCCEEDED at once and the time each waiter hears of it is recorded.
   Daemon memory: VmRSS (steady, before the flip) and VmHWM (peak, at the end).
2. **Client processes, A B A B** (for N where N processes fit in memory and start in reasonable time):
   A = N `asyncrun wait -o json ID` processes through a fresh daemon; B = N flytekit-style waits,
   one process per run (flytekit's own `SynchronousFlyteClient` from the flytekit venv) calling
   GetExecution + GetExecutionData every poll interval, the first two calls of what
   `FlyteRemote.wait` does on each poll (`pyflyte run --wait`). It leaves out the node-execution
   listing and launch-plan fetch that FlyteRemote also does, and pyflyte's larger imports, so
   B understates flytekit's cost. Reported: total memory of the processes (sum of VmRSS, and of
   PSS, which counts shared pages once), admin calls per poll interval in a steady window, and
   latency from the flip to each process printing its result.
3. **`asyncrun status ID` round trip** with a warm daemon, alternated with `python -c pass`.

Daemon settings: min_interval 0.5 s, max_interval 2 s, page_size 100, rate = burst = 1000 calls/s
(the defaults are max_interval 10 s and 20 calls/s, which would stretch a 10,000-run sweep to 5 s).
The flytekit-style pollers poll every 2 s too (pyflyte's default --poll-interval is 30 s).
Targets: daemon peak RSS <= 150 MB at 10,000 runs and <= 250 MB at 100,000; list calls per tick
<= ceil(N/100) + 2; notification latency <= one poll interval + 1 s (+ 2 s at 100,000 runs: every
run's end is heard within 4 s although all of them end at once); `asyncrun status` median <= 100 ms.
The stub, the 10 waiters and the clock all live in this process, so its own CPU is part of every
latency: run it on an otherwise idle machine.
Every process this script starts is killed by its pid at the end (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import anyio
from _common import (
    ROOT,
    Case,
    asyncrun_cmd,
    flytekit_bin,
    machine,
    median,
    timed,
    verdict,
    write_results,
)
from _common import Target as Goal  # asyncrun.daemon's Target is an endpoint
from anyio.streams.buffered import BufferedByteReceiveStream

from asyncrun.daemon import DaemonConnection, DaemonSettings, Target

sys.path.insert(0, str(ROOT / "tests" / "daemon"))
from stub_admin import DOMAIN, PROJECT, StubAdmin, serving

MIN_INTERVAL = 0.5
MAX_INTERVAL = 2.0
PAGE = 100
RATE = 1000.0
WAITERS = 10
RSS_TARGET_MB = 150  # at 10,000 runs
RSS_TARGET_100K_MB = 250  # at 100,000 runs
STATUS_TARGET_MS = 100
LATENCY_BOUND = MAX_INTERVAL + 1.0
LATENCY_BOUND_100K = MAX_INTERVAL + 2.0  # from 100,000 runs on
CALLS_SLACK = 2
DEFAULT_FLYTEKIT_BIN = Path("/work/fkvenv/bin")  # this project's machine; else --flytekit-bin or --setup

# One flytekit-style wait: flytekit's own client, the calls FlyteRemote.wait -> sync_execution makes
# first on every poll (GetExecution, then GetExecutionData), every `interval` seconds.
FLYTEKIT_POLLER = """
import sys, time
from flytekit.clients.friendly import SynchronousFlyteClient
from flytekit.configuration import PlatformConfig
from flytekit.models.core.execution import WorkflowExecutionPhase as P
from flytekit.models.core.identifier import WorkflowExecutionIdentifier

endpoint, project, domain, name, interval, timeout = sys.argv[1:7]
client = SynchronousFlyteClient(PlatformConfig(endpoint=endpoint, insecure=True))
wid = WorkflowExecutionIdentifier(project, domain, name)
done = {P.SUCCEEDED, P.FAILED, P.ABORTED, P.TIMED_OUT}
give_up = time.monotonic() + float(timeout)
ready = False
while time.monotonic() < give_up:
    closure = client.get_execution(wid).closure
    client.get_execution_data(wid)
    if not ready:
        print("ready", flush=True)
        ready = True
    if closure.phase in done:
        print("done", P.enum_to_string(closure.phase), flush=True)
        sys.exit(0 if closure.phase == P.SUCCEEDED else 1)
    time.sleep(float(interval))
sys.exit(5)
"""


# ---------------------------------------------------------------- processes we started (and only those)

STARTED: set[int] = set()


def _kill_started() -> None:
    # Safety net: a daemon that a CLI of ours would have started by itself, in our ASYNCRUN_HOME.
    home = os.environ.get("ASYNCRUN_HOME")
    if home:
        from asyncrun.daemon._paths import PidInfo

        info = PidInfo.read(Path(home) / "run" / "daemon.pid")
        if info is not None and info.socket.startswith(home):
            STARTED.add(info.pid)
    for pid in list(STARTED):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        STARTED.discard(pid)


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:
        pass  # not our child (or already reaped): look in /proc
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def _stop_pid(pid: int, grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds, for one process this script started."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:  # noqa: ASYNC110 - another process
        await anyio.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with anyio.move_on_after(2):
            while _alive(pid):  # noqa: ASYNC110 - another process
                await anyio.sleep(0.05)
    STARTED.discard(pid)


# ---------------------------------------------------------------- measurements


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak) and Pss of a process, in kB."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                values["Pss"] = int(line.split()[1])
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_ticks() -> tuple[int, int]:
    """(idle, total) jiffies of all cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[3] + values[4], sum(values[:8])


async def machine_busy(seconds: float) -> float:
    """The share of the machine's CPU time spent busy over `seconds` (by anyone)."""
    idle0, total0 = _cpu_ticks()
    await anyio.sleep(seconds)
    idle1, total1 = _cpu_ticks()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def latency_bound(n: int) -> float:
    """The notification latency target at N runs: poll interval + 1 s, + 2 s from 100,000 runs on."""
    return LATENCY_BOUND_100K if n >= 100_000 else LATENCY_BOUND


def rss_targets(daemon_runs: list[DaemonRun]) -> list[tuple[int, float, DaemonRun | None]]:
    """(N, peak RSS target in MB, the run at N if measured) for each N with a memory target."""
    by_n = {d.n: d for d in daemon_runs}
    return [(n, mb, by_n.get(n)) for n, mb in ((10_000, RSS_TARGET_MB), (100_000, RSS_TARGET_100K_MB))]


def gaps(start: dict[str, float], end: dict[str, float]) -> list[float]:
    return [end[name] - at for name, at in start.items() if name in end]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def eventually(probe: Callable, check: Callable, *, within: float, what: str, every: float = 0.2):
    with anyio.move_on_after(within):
        while True:
            value = await probe()
            if check(value):
                return value
            await anyio.sleep(every)
    raise SystemExit(f"timed out after {within:.0f} s waiting for {what}")


@dataclass
class DaemonRun:
    n: int
    track_s: float = 0.0
    rss_mb: float = 0.0
    hwm_mb: float = 0.0
    ticks: int = 0
    calls_per_tick: float = 0.0
    max_tick_calls: int = 0
    sweeps: list[int] = field(default_factory=list)
    other_calls: int = 0
    calls_per_s: float = 0.0
    cpu_cores: float = 0.0  # the daemon's CPU time per second in the window
    flip_cpu_s: float = 0.0  # the daemon's CPU time from the flip until every waiter heard every run
    latencies: list[float] = field(default_factory=list)
    missing: int = 0
    wrong: int = 0


@dataclass
class ClientRound:
    kind: str  # "asyncrun" or "flytekit"
    n: int
    start_s: float = 0.0
    clients_mb: float = 0.0  # sum of VmRSS of the client processes
    clients_pss_mb: float = 0.0
    daemon_mb: float = 0.0
    daemon_pss_mb: float = 0.0
    calls_per_interval: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    cpu_cores: float = 0.0  # CPU time of the clients (and daemon) per second, in the window
    latencies: list[float] = field(default_factory=list)  # flip -> the process printed its result
    daemon_latencies: list[float] = field(default_factory=list)  # flip -> the daemon announced the end
    outputs_latencies: list[float] = field(default_factory=list)  # flip -> the daemon had the outputs
    missing: int = 0
    bad_exit: int = 0

    @property
    def total_mb(self) -> float:
        return self.clients_mb + self.daemon_mb

    @property
    def total_pss_mb(self) -> float:
        return self.clients_pss_mb + self.daemon_pss_mb


# ---------------------------------------------------------------- one daemon process


@contextlib.asynccontextmanager
async def daemon_process() -> AsyncIterator[tuple[DaemonSettings, DaemonConnection, int]]:
    """A fresh daemon in its own process and folder, with a connection to it; stopped by pid after."""
    folder = Path(tempfile.mkdtemp(prefix="arw-"))
    settings = DaemonSettings(
        socket_path=folder / "run" / "daemon.sock",
        journal_path=folder / "journal.sqlite3",
        idle_timeout=600,
        min_interval=MIN_INTERVAL,
        max_interval=MAX_INTERVAL,
        page_size=PAGE,
        rate=RATE,
        burst=RATE,
    )
    pid = None
    try:
        # Started by the installed asyncrun (see asyncrun_bin), configured through its environment.
        env = {
            **os.environ,
            "ASYNCRUN_DAEMON_SOCKET": str(settings.socket_path),
            **{
                f"ASYNCRUN_DAEMON_{name.upper()}": str(value)
                for name, value in asdict(settings).items()
                if name != "socket_path"
            },
        }
        await anyio.run_process(asyncrun_cmd("daemon", "start"), env=env)
        async with DaemonConnection(settings=settings, autostart=False, client="bench") as conn:
            pid = int(conn.daemon["pid"])
            STARTED.add(pid)
            yield settings, conn, pid
    finally:
        if pid is None:
            from asyncrun.daemon._paths import PidInfo, pid_path

            info = PidInfo.read(pid_path(settings.socket_path))
            pid = info.pid if info else None
        if pid is not None:
            await _stop_pid(pid)
        shutil.rmtree(folder, ignore_errors=True)


async def poller_stats(conn: DaemonConnection, target: Target) -> dict:
    status = await conn.status(target=target, executions=False)
    pollers = status.daemon.get("pollers") or [{}]
    return pollers[0]


# ---------------------------------------------------------------- 1. the daemon with N runs


async def bench_daemon(stub: StubAdmin, endpoint: str, n: int, settle: float, window: float) -> DaemonRun:
    target = Target(endpoint=endpoint, insecure=True, project=PROJECT, domain=DOMAIN)
    names = [f"d{n}x{i:05d}" for i in range(n)]
    for name in names:
        stub.add(name, "RUNNING")
    run = DaemonRun(n)
    heard: dict[str, float] = {}
    results: list = []
    async with daemon_process() as (settings, conn, pid):
        started = time.monotonic()
        await conn.track(names, target=target)
        run.track_s = time.monotonic() - started
        await eventually(
            lambda: poller_stats(conn, target),
            lambda s: s.get("ticks", 0) >= 2 and s.get("seen", n) >= n,
            within=60 + n / 500,
            what=f"the daemon's first ticks over {n} runs, and every run seen",
        )
        started = time.monotonic()  # the runs are all seen: settle from here

        async def waiter(part: list[str], ready: anyio.Event) -> None:
            def on_event(message: dict) -> None:
                ready.set()
                if message.get("event") != "update":
                    return
                now = time.monotonic()
                for state in message["executions"]:
                    if state["terminal"]:
                        heard.setdefault(state["name"], now)

            async with DaemonConnection(settings=settings, autostart=False, client="bench-wait") as wconn:
                timeout = settle + window + 120
                results.append(await wconn.wait(part, target=target, on_event=on_event, timeout=timeout))

        async with anyio.create_task_group() as tg:
            readies = []
            for i in range(WAITERS):
                readies.append(anyio.Event())
                tg.start_soon(waiter, names[i::WAITERS], readies[-1])
            with anyio.fail_after(60 + n / 1000):
                for ready in readies:
                    await ready.wait()
            # Let the interval ramp up (to a tenth of the time since the last change, at most
            # MAX_INTERVAL): the flip comes `settle` seconds after tracking, the window just before.
            await anyio.sleep(max(1.0, started + settle - window - time.monotonic()))
            before = await poller_stats(conn, target)
            cpu_before = cpu_seconds(pid)
            stub.reset_counts()
            window_start = time.monotonic()
            await anyio.sleep(window)
            after = await poller_stats(conn, target)
            elapsed = time.monotonic() - window_start
            run.cpu_cores = (cpu_seconds(pid) - cpu_before) / elapsed
            calls = dict(stub.calls)
            sweeps = stub.calls_per_sweep()
            memory = memory_kb(pid)
            flip_cpu = cpu_seconds(pid)
            flipped = {name: stub.set_phase(name, "SUCCEEDED") for name in names}
        run.flip_cpu_s = cpu_seconds(pid) - flip_cpu
        end = memory_kb(pid)
    run.rss_mb = memory.get("VmRSS", 0) / 1024
    run.hwm_mb = end.get("VmHWM", memory.get("VmHWM", 0)) / 1024
    run.ticks = after.get("ticks", 0) - before.get("ticks", 0)
    list_calls = after.get("list_calls", 0) - before.get("list_calls", 0)
    run.calls_per_tick = list_calls / max(run.ticks, 1)
    run.max_tick_calls = int(after.get("max_tick_calls", 0))
    # The first and last sweeps may be cut by the window's edges; keep only whole ones when possible.
    run.sweeps = sweeps[1:-1] if len(sweeps) > 2 else sweeps
    run.other_calls = sum(v for k, v in calls.items() if k != "list_executions")
    run.calls_per_s = sum(calls.values()) / elapsed
    run.latencies = [heard[name] - flipped[name] for name in names if name in heard]
    run.missing = n - len(run.latencies)
    final = {ex.name: ex.phase for r in results for ex in r.executions}
    run.wrong = sum(1 for name in names if final.get(name) != "SUCCEEDED")
    return run


# ---------------------------------------------------------------- 2. N client processes


async def bench_clients(
    stub: StubAdmin,
    endpoint: str,
    kind: str,
    n: int,
    tag: str,
    fk_python: Path | None,
    settle: float,
    window: float,
    start_within: float,
) -> ClientRound:
    """N processes each waiting on one run: `asyncrun wait` through a daemon, or a flytekit poller.

    The runs flip to SUCCEEDED `settle` seconds after the first process started (or once all have
    started, if that takes longer); calls, CPU and memory are measured in the `window` before.
    """
    names = [f"{kind[0]}{tag}x{i:04d}" for i in range(n)]
    for name in names:
        stub.add(name, "RUNNING")
    result = ClientRound(kind, n)
    ready_at: dict[str, float] = {}
    done_at: dict[str, float] = {}
    env = {
        **os.environ,
        "FLYTE_PLATFORM_URL": endpoint,
        "FLYTE_PLATFORM_INSECURE": "true",
        "PYTHONUNBUFFERED": "1",
    }
    timeout = start_within + settle + window + 120
    procs: dict[str, anyio.abc.Process] = {}

    async def read(name: str, proc: anyio.abc.Process) -> None:
        assert proc.stdout is not None
        stream = BufferedByteReceiveStream(proc.stdout)
        while True:
            try:
                line = await stream.receive_until(b"\n", 1 << 22)
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError):
                return
            now = time.monotonic()
            if line == b"ready":
                ready_at.setdefault(name, now)
            elif line.startswith((b"done", b"{")):
                done_at.setdefault(name, now)

    async def run_all(
        pid: int | None, readiness: Callable, extra_env: dict[str, str], observe: Callable | None
    ) -> dict[str, float]:
        started = time.monotonic()
        flipped: dict[str, float] = {}
        try:
            async with anyio.create_task_group() as tg:
                for name in names:
                    if kind == "asyncrun":
                        cmd = asyncrun_cmd(
                            "wait",
                            "-p",
                            PROJECT,
                            "-d",
                            DOMAIN,
                            "-o",
                            "json",
                        )
                        cmd += ["--wait-timeout", str(timeout), name]
                    else:
                        assert fk_python is not None
                        cmd = [str(fk_python), "-c", FLYTEKIT_POLLER, endpoint, PROJECT, DOMAIN, name]
                        cmd += [str(MAX_INTERVAL), str(timeout)]
                    proc = await anyio.open_process(
                        cmd, env={**env, **extra_env}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
                    )
                    STARTED.add(proc.pid)
                    procs[name] = proc
                    tg.start_soon(read, name, proc)
                what = f"{n} {kind} waits to start"
                await eventually(readiness, bool, within=start_within, what=what, every=0.25)
                result.start_s = time.monotonic() - started
                if observe is not None:
                    await tg.start(observe)
                await anyio.sleep(max(1.0, started + settle - window - time.monotonic()))
                pids = [p.pid for p in procs.values()] + ([pid] if pid is not None else [])
                cpu_before = sum(cpu_seconds(p) for p in pids)
                stub.reset_counts()
                window_start = time.monotonic()
                await anyio.sleep(window)
                elapsed = time.monotonic() - window_start
                result.cpu_cores = (sum(cpu_seconds(p) for p in pids) - cpu_before) / elapsed
                result.calls = dict(stub.calls)
                result.calls_per_interval = sum(result.calls.values()) / elapsed * MAX_INTERVAL
                mems = [memory_kb(p.pid) for p in procs.values()]
                result.clients_mb = sum(m.get("VmRSS", 0) for m in mems) / 1024
                result.clients_pss_mb = sum(m.get("Pss", 0) for m in mems) / 1024
                if pid is not None:
                    mem = memory_kb(pid)
                    result.daemon_mb = mem.get("VmRSS", 0) / 1024
                    result.daemon_pss_mb = mem.get("Pss", 0) / 1024
                flipped.update((name, stub.set_phase(name, "SUCCEEDED")) for name in names)
                with anyio.move_on_after(LATENCY_BOUND + 30):
                    while len(done_at) < n:  # noqa: ASYNC110 - the readers fill done_at
                        await anyio.sleep(0.05)
                with anyio.move_on_after(30):
                    for proc in procs.values():
                        await proc.wait()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                for proc in procs.values():
                    if proc.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                        with anyio.move_on_after(2):
                            await proc.wait()
                    STARTED.discard(proc.pid)
                    with contextlib.suppress(Exception):
                        await proc.aclose()
        result.latencies = [done_at[name] - flipped[name] for name in names if name in done_at]
        result.missing = n - len(result.latencies)
        result.bad_exit = sum(1 for p in procs.values() if p.returncode != 0)
        return flipped

    if kind == "asyncrun":
        target = Target(endpoint=endpoint, insecure=True, project=PROJECT, domain=DOMAIN)
        phase_at: dict[str, float] = {}
        outputs_at: dict[str, float] = {}
        async with daemon_process() as (settings, conn, pid):

            async def subscribed() -> bool:
                states = (await conn.status(names, target=target)).executions
                return sum(1 for s in states if s.tracked and s.raw.get("subscribers", 0) >= 1) == n

            async def observe(*, task_status: anyio.abc.TaskStatus) -> None:
                """When the daemon announced each run's end, and when it had its outputs."""
                async with DaemonConnection(settings=settings, autostart=False, client="bench") as wconn:
                    task_status.started()
                    async for message in wconn.watch(names, target=target):
                        now = time.monotonic()
                        for state in message.get("executions", ()) if message["event"] == "update" else ():
                            if state["terminal"]:
                                phase_at.setdefault(state["name"], now)
                            if state.get("outputs_state") in ("done", "failed"):
                                outputs_at.setdefault(state["name"], now)

            socket = {"ASYNCRUN_DAEMON_SOCKET": str(settings.socket_path)}
            flipped = await run_all(pid, subscribed, socket, observe)
        result.daemon_latencies = gaps(flipped, phase_at)
        result.outputs_latencies = gaps(flipped, outputs_at)
    else:
        await run_all(None, lambda: _async_value(len(ready_at) == n), {}, None)
    return result


async def _async_value(value: bool) -> bool:
    return value


def client_feasible(kind: str, n: int, per_process_mb: float, start_cpu_s: float) -> tuple[bool, str]:
    """Whether N client processes fit: half the available memory, and about two minutes to start."""
    need_mb = n * per_process_mb
    start_s = n * start_cpu_s / (os.cpu_count() or 1)
    available = mem_available_mb()
    if need_mb > available / 2 or start_s > 120:
        return False, (
            f"not feasible: {n:,} processes x ~{per_process_mb:.0f} MB = ~{need_mb / 1024:.1f} GB "
            f"(MemAvailable {available / 1024:.1f} GB), ~{start_s:.0f} s of CPU to start them on "
            f"{os.cpu_count()} cores"
        )
    return True, ""


async def probe_process(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One client process on its own: its RSS once it waits (MB) and its CPU time to get there (s)."""
    proc = await anyio.open_process(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    STARTED.add(proc.pid)
    try:
        assert proc.stdout is not None
        with anyio.fail_after(60):
            await BufferedByteReceiveStream(proc.stdout).receive_until(b"\n", 1 << 16)
        return memory_kb(proc.pid).get("VmRSS", 0) / 1024, cpu_seconds(proc.pid)
    finally:
        proc.kill()
        await proc.wait()
        STARTED.discard(proc.pid)
        await proc.aclose()


# ---------------------------------------------------------------- 3. status round trip


async def bench_status(stub: StubAdmin, endpoint: str, runs: int) -> tuple[list[float], list[float], str]:
    target = Target(endpoint=endpoint, insecure=True, project=PROJECT, domain=DOMAIN)
    names = [f"st{i:03d}" for i in range(100)]
    for name in names:
        stub.add(name, "RUNNING")
    async with daemon_process() as (settings, conn, _pid):
        await conn.track(names, target=target)
        await eventually(
            lambda: poller_stats(conn, target), lambda s: s.get("ticks", 0) >= 2, within=30, what="ticks"
        )
        env = {
            **os.environ,
            "ASYNCRUN_DAEMON_SOCKET": str(settings.socket_path),
            "FLYTE_PLATFORM_URL": endpoint,
            "FLYTE_PLATFORM_INSECURE": "true",
        }
        status_cmd = asyncrun_cmd("status", "-p", PROJECT, "-d", DOMAIN, names[0])
        check = await anyio.run_process([*status_cmd, "-o", "json"], env=env, check=False)
        shown = check.stdout.decode().strip()
        if check.returncode != 0 or '"tracked": true' not in shown or '"RUNNING"' not in shown:
            raise SystemExit(f"asyncrun status did not answer from the daemon's memory: {shown[:300]}")
        baseline_cmd = [sys.executable, "-c", "pass"]
        status_s: list[float] = []
        baseline_s: list[float] = []
        for i in range(runs + 2):  # A B A B …; the first two pairs warm the page cache
            a = await anyio.to_thread.run_sync(lambda: timed(status_cmd, env=env))
            b = await anyio.to_thread.run_sync(lambda: timed(baseline_cmd))
            if i >= 2:
                status_s.append(a)
                baseline_s.append(b)
    return status_s, baseline_s, shown


# ---------------------------------------------------------------- report


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def lat(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f}/{pct(values, 0.99):.2f}/{max(values):.2f}"


def compare(
    a: list[ClientRound],
    b: list[ClientRound],
    label: str,
    key: Callable[[ClientRound], float],
    unit: str,
    fmt: str = ".0f",
) -> None:
    """One line: the median over rounds of A and of B, and B / A."""
    va, vb = median([key(c) for c in a]), median([key(c) for c in b])
    ratio = f"{vb / va:.1f}x" if va else "inf"
    print(
        f"   medians {label:<28} asyncrun {va:{fmt}} {unit:<3} flytekit {vb:{fmt}} {unit:<3}"
        f" flytekit/asyncrun {ratio}"
    )


async def main_async(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rounds = args.rounds
    # Seconds from tracking (from starting the clients) to the flip, and the measuring window before it.
    settle, window = (12.0, 5.0) if args.quick else (20.0, 6.0)
    client_settle, client_window = (12.0, 4.0) if args.quick else (20.0, 5.0)
    fk_bin = flytekit_bin(args.flytekit_bin, setup=args.setup)
    if fk_bin is None and (DEFAULT_FLYTEKIT_BIN / "python").exists():
        fk_bin = DEFAULT_FLYTEKIT_BIN
    fk_python = fk_bin / "python" if fk_bin else None

    print(f"machine: {machine()}")
    busy = await machine_busy(1.0)
    print(
        f"CPU busy before starting (1 s sample, all cores): {busy:.0%}"
        + (" — other processes are busy; expect noisy numbers" if busy > 0.15 else "")
    )
    print(
        f"daemon: min_interval {MIN_INTERVAL} s, max_interval {MAX_INTERVAL} s, page_size {PAGE}, "
        f"rate = burst = {RATE:.0f} calls/s (defaults: max_interval 10 s, rate 20/s, burst 100)"
    )
    print(
        f"section 1: {WAITERS} wait connections in this process, each on N/{WAITERS} runs; all N runs "
        f"flip to SUCCEEDED at once {settle:.0f} s after the daemon has seen them all; calls measured in "
        f"the {window:.0f} s "
        f"before"
    )
    print(
        f"flytekit-style: {fk_python or 'no flytekit virtualenv found (--flytekit-bin / --setup)'}, "
        f"SynchronousFlyteClient, GetExecution + GetExecutionData every {MAX_INTERVAL:.0f} s per process"
    )
    print("stub FlyteAdmin: in this process, served as the tests serve it (TCP_NODELAY on accepted sockets)")
    print(flush=True)

    stub = StubAdmin()
    daemon_runs: list[DaemonRun] = []
    client_rounds: dict[int, list[ClientRound]] = {}
    skipped: dict[int, list[str]] = {}
    async with serving(stub) as endpoint:
        # ---- 1
        for n in sizes:
            print(f"[1] daemon with {n:,} runs …", flush=True)
            daemon_runs.append(await bench_daemon(stub, endpoint, n, settle, window))

        # ---- 2
        env = {**os.environ, "FLYTE_PLATFORM_URL": endpoint, "FLYTE_PLATFORM_INSECURE": "true"}
        probe_names = ["probe-a", "probe-f"]
        for name in probe_names:
            stub.add(name, "RUNNING")
        estimates: dict[str, tuple[float, float]] = {}
        if fk_python is not None:
            fk_cmd = [str(fk_python), "-c", FLYTEKIT_POLLER, endpoint, PROJECT, DOMAIN, "probe-f", "2", "60"]
            estimates["flytekit"] = await probe_process(fk_cmd, env)
        async with daemon_process() as (settings, _conn, _pid):
            # `asyncrun wait -o ndjson` prints the wait's first event once it is subscribed.
            cmd = asyncrun_cmd(
                "wait",
                "-p",
                PROJECT,
                "-d",
                DOMAIN,
                "-o",
                "ndjson",
                "probe-a",
            )
            estimates["asyncrun"] = await probe_process(
                cmd, {**env, "ASYNCRUN_DAEMON_SOCKET": str(settings.socket_path)}
            )
        for kind, (mb, cpu) in estimates.items():
            print(f"[2] one {kind} wait process: ~{mb:.0f} MB RSS, ~{cpu:.2f} s CPU to start", flush=True)
        for n in sizes:
            reasons = []
            if fk_python is None:
                reasons.append("flytekit: no flytekit virtualenv")
            for kind, (mb, cpu) in estimates.items():
                ok, why = client_feasible(kind, n, mb, cpu)
                if not ok:
                    reasons.append(f"{kind}: {why}")
            if reasons:
                skipped[n] = reasons
                continue
            client_rounds[n] = []
            for r in range(rounds):
                for kind in ("asyncrun", "flytekit"):
                    print(f"[2] N={n:,} round {r + 1}/{rounds}: {kind} …", flush=True)
                    client_rounds[n].append(
                        await bench_clients(
                            stub,
                            endpoint,
                            kind,
                            n,
                            f"{n}r{r}",
                            fk_python,
                            client_settle,
                            client_window,
                            start_within=60 + 3 * n * estimates[kind][1] / (os.cpu_count() or 1),
                        )
                    )

        # ---- 3
        print("[3] asyncrun status round trips …", flush=True)
        status_s, baseline_s, _shown = await bench_status(stub, endpoint, args.status_runs)

    # ---------------------------------------------------------------- tables
    print()
    print(f"1. One daemon process, N tracked runs, {WAITERS} waiters")
    print(
        f"{'N':>7} {'track s':>8} {'RSS MB':>7} {'peak MB':>8} {'CPU':>5} {'ticks':>6} {'calls/tick':>11} "
        f"{'sweep med/max':>14} {'bound':>6} {'calls/s':>8} {'latency s p50/p99/max':>22} {'heard':>8}"
    )
    for d in daemon_runs:
        bound = math.ceil(d.n / PAGE)
        sweep = f"{median(d.sweeps):.0f}/{max(d.sweeps)}" if d.sweeps else "-"
        print(
            f"{d.n:>7,} {d.track_s:>8.3f} {d.rss_mb:>7.0f} {d.hwm_mb:>8.0f} {d.cpu_cores:>5.2f} {d.ticks:>6} "
            f"{d.calls_per_tick:>11.1f} {sweep:>14} {bound:>6} {d.calls_per_s:>8.1f} "
            f"{lat(d.latencies):>22} {d.n - d.missing:>8,}"
        )
    print("   RSS: VmRSS before the flip; peak: VmHWM at the end; CPU: daemon CPU seconds per second in")
    print("   the window; calls/tick: ListExecutions per daemon tick in the window (daemon counters);")
    print("   sweep: the stub's count of calls until a name is asked again; bound: ceil(N / page size);")
    print("   latency: flip -> a waiter heard the terminal phase. Other admin calls in the window: ")
    print(
        "   "
        + ", ".join(f"N={d.n:,}: {d.other_calls}" for d in daemon_runs)
        + "; daemon max calls in any tick: "
        + ", ".join(f"N={d.n:,}: {d.max_tick_calls}" for d in daemon_runs)
    )

    print()
    print(
        f"2. N client processes, A = `asyncrun wait` via a daemon, B = flytekit-style poller; "
        f"A B A B, {rounds} round(s) each"
    )
    for n, reasons in skipped.items():
        for reason in reasons:
            print(f"   N={n:,}: {reason}")
    for n, rs in client_rounds.items():
        pad = " " * len(f"N={n:,}")
        print(
            f"   N={n:,}  {'kind':<9} {'start s':>7} {'clients MB':>10} {'(PSS)':>7} {'daemon MB':>9} "
            f"{'total MB':>8} {'(PSS)':>7} {'CPU':>5} {'calls/2s':>8} {'latency s p50/p99/max':>22} "
            f"{'missing':>7} {'bad exit':>8}"
        )
        for c in rs:
            print(
                f"   {pad}  {c.kind:<9} {c.start_s:>7.1f} {c.clients_mb:>10.0f} "
                f"{c.clients_pss_mb:>7.0f} {c.daemon_mb:>9.0f} {c.total_mb:>8.0f} {c.total_pss_mb:>7.0f} "
                f"{c.cpu_cores:>5.2f} {c.calls_per_interval:>8.1f} {lat(c.latencies):>22} {c.missing:>7} "
                f"{c.bad_exit:>8}"
            )
            if c.kind == "asyncrun":
                print(
                    f"   {pad}    of which: daemon announced the end {lat(c.daemon_latencies)} s, had the "
                    f"outputs {lat(c.outputs_latencies)} s"
                )
        print(
            f"   {pad}  start: until every wait is subscribed / has polled once; CPU: CPU seconds per second"
        )
        print(f"   {pad}  of the clients and the daemon in the window; latency: flip -> the process printed")
        print(f"   {pad}  its result (`asyncrun wait` also waits for the outputs, fetched one run at a time)")
        a = [c for c in rs if c.kind == "asyncrun"]
        b = [c for c in rs if c.kind == "flytekit"]
        if a and b:
            compare(a, b, "total memory (VmRSS sum)", lambda c: c.total_mb, "MB")
            compare(a, b, "total memory (PSS sum)", lambda c: c.total_pss_mb, "MB")
            compare(a, b, "CPU cores while waiting", lambda c: c.cpu_cores, "", ".2f")
            compare(a, b, "admin calls per 2 s", lambda c: c.calls_per_interval, "", ".1f")
            compare(a, b, "latency median", lambda c: median(c.latencies or [0]), "s", ".2f")
            compare(a, b, "latency max", lambda c: max(c.latencies or [0]), "s", ".2f")
            calls_a = {k: v for c in a for k, v in c.calls.items()}
            calls_b = {k: v for c in b for k, v in c.calls.items()}
            print(f"   calls by method in the last windows: asyncrun {calls_a}, flytekit {calls_b}")

    print()
    st, base = median(status_s), median(baseline_s)
    print(
        f"3. `asyncrun status ID`, warm daemon, {len(status_s)} runs: median {ms(st)} ms "
        f"(min {ms(min(status_s))}, max {ms(max(status_s))}); `python -c pass` median {ms(base)} ms; "
        f"status - baseline {ms(st - base)} ms"
    )

    # ---------------------------------------------------------------- targets
    print()
    print("targets")
    for n, target_mb, big in rss_targets(daemon_runs):
        if big is None:
            print(f"  daemon peak RSS <= {target_mb} MB at {n:,} runs: not measured (N={n:,} not run)")
        else:
            print(
                f"  daemon peak RSS <= {target_mb} MB at {n:,} runs: {big.hwm_mb:.0f} MB — "
                f"{verdict(big.hwm_mb <= target_mb)}"
            )
    for d in daemon_runs:
        bound = math.ceil(d.n / PAGE) + CALLS_SLACK
        worst = max([d.max_tick_calls, *d.sweeps])
        print(
            f"  list calls per tick <= ceil(N/{PAGE}) + {CALLS_SLACK} = {bound} at N={d.n:,}: worst {worst} "
            f"(tick max {d.max_tick_calls}, sweeps max {max(d.sweeps) if d.sweeps else '-'}) — "
            f"{verdict(worst <= bound and d.other_calls == 0)}"
        )
    for d in daemon_runs:
        worst = max(d.latencies) if d.latencies else float("inf")
        bound = latency_bound(d.n)
        print(
            f"  notification latency <= interval + {bound - MAX_INTERVAL:.0f} s = {bound:.0f} s at "
            f"N={d.n:,}: max {worst:.2f} s, "
            f"{d.missing} never heard, {d.wrong} wrong final phase — "
            f"{verdict(worst <= bound and not d.missing and not d.wrong)}"
        )
    for n, rs in client_rounds.items():
        a = [c for c in rs if c.kind == "asyncrun"]
        worst = max((max(c.latencies) if c.latencies else float("inf")) for c in a)
        bad = sum(c.missing + c.bad_exit for c in a)
        announced = max((max(c.daemon_latencies) if c.daemon_latencies else float("inf")) for c in a)
        print(
            f"  `asyncrun wait` processes, N={n:,}: daemon announced every end within {announced:.2f} s "
            f"<= {LATENCY_BOUND:.0f} s — {verdict(announced <= LATENCY_BOUND)}; every process printed "
            f"its result within {worst:.2f} s — {verdict(worst <= LATENCY_BOUND and not bad)}"
            + (f" ({bad} missing/bad exits)" if bad else "")
        )
    met = verdict(st * 1000 <= STATUS_TARGET_MS)
    print(f"  `asyncrun status` median <= {STATUS_TARGET_MS} ms: {ms(st)} ms — {met}")
    if args.json:
        params = {
            "sizes": sizes,
            "rounds": rounds,
            "quick": args.quick,
            "status_runs": args.status_runs,
            "min_interval_s": MIN_INTERVAL,
            "max_interval_s": MAX_INTERVAL,
            "page_size": PAGE,
            "flytekit_python": str(fk_python or ""),
            "client_processes_skipped": {str(n): reasons for n, reasons in skipped.items()},
        }
        cases = result_cases(daemon_runs, client_rounds, status_s, baseline_s)
        write_results(args.json, "wait", params, cases)
    return 0


def result_cases(
    daemon_runs: list[DaemonRun],
    client_rounds: dict[int, list[ClientRound]],
    status_s: list[float],
    baseline_s: list[float],
) -> list[Case]:
    """The numbers above as results-file cases, each target with what it is checked against."""

    def latency_goal(n: int) -> Goal:
        bound = latency_bound(n)
        extra = bound - MAX_INTERVAL
        return Goal(f"<= poll interval + {extra:.0f} s = {bound:.0f} s (every run)", "max", "<=", bound)

    latency_target = latency_goal(0)
    cases = [
        Case(
            f"daemon peak RSS, N={n:,}",
            "MB",
            [big.hwm_mb] if big else [],
            target=Goal(f"<= {target_mb} MB", "max", "<=", target_mb),
            note="VmHWM of the daemon process" if big else f"not measured: N={n:,} was not run",
        )
        for n, target_mb, big in rss_targets(daemon_runs)
    ]
    for d in daemon_runs:
        cases.append(Case(f"daemon RSS, N={d.n:,}", "MB", [d.rss_mb], note=f"peak (VmHWM) {d.hwm_mb:.0f} MB"))
    for d in daemon_runs:
        bound = math.ceil(d.n / PAGE) + CALLS_SLACK
        cases.append(
            Case(
                f"ListExecutions calls per tick, N={d.n:,}",
                "calls",
                [float(d.max_tick_calls), *map(float, d.sweeps)],
                target=Goal(f"<= ceil(N/{PAGE}) + {CALLS_SLACK} = {bound} (worst tick)", "max", "<=", bound),
                ok=d.other_calls == 0,
                note=f"average {d.calls_per_tick:.1f} per tick; {d.other_calls} other admin calls in window",
            )
        )
    for d in daemon_runs:
        cases.append(
            Case(
                f"notification latency, N={d.n:,}",
                "s",
                d.latencies,
                target=latency_goal(d.n),
                ok=not d.missing and not d.wrong,
                note=(
                    f"{WAITERS} waiters; {d.missing} never heard, {d.wrong} wrong final phase; the daemon "
                    f"spent {d.flip_cpu_s:.1f} s of CPU from the flip until every run was heard "
                    f"({d.flip_cpu_s / d.n * 1e6:.0f} µs per run)"
                ),
            )
        )
    for n, rs in client_rounds.items():
        a = [c for c in rs if c.kind == "asyncrun"]
        b = [c for c in rs if c.kind == "flytekit"]
        who = "`asyncrun wait` processes + daemon vs one flytekit-style poller process per run"
        cases += [
            Case(
                f"memory (PSS sum), N={n:,} waiting processes",
                "MB",
                [c.total_pss_mb for c in a],
                [c.total_pss_mb for c in b],
                note=who,
            ),
            Case(
                f"admin calls per {MAX_INTERVAL:.0f} s, N={n:,} waiting processes",
                "calls",
                [c.calls_per_interval for c in a],
                [c.calls_per_interval for c in b],
                note=who,
            ),
            Case(
                f"CPU while waiting, N={n:,} waiting processes",
                "cores",
                [c.cpu_cores for c in a],
                [c.cpu_cores for c in b],
                note=who,
            ),
            Case(
                f"latency to the result printed, N={n:,} waiting processes",
                "s",
                [x for c in a for x in c.latencies],
                [x for c in b for x in c.latencies],
                target=latency_target,
                ok=not sum(c.missing + c.bad_exit for c in a),
                note=who,
            ),
        ]
    cases.append(
        Case(
            "`asyncrun status ID` round trip, warm daemon",
            "ms",
            [s * 1000 for s in status_s],
            target=Goal(f"median <= {STATUS_TARGET_MS} ms", "median", "<=", STATUS_TARGET_MS),
            note=f"`python -c pass` median {ms(median(baseline_s))} ms on the same machine",
        )
    )
    return cases


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # so that the cleanup below (and atexit) runs on SIGTERM too


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,1000,10000,100000", help="numbers of runs (comma-separated)")
    parser.add_argument("--rounds", type=int, default=None, help="A B rounds of client processes (3)")
    parser.add_argument("--status-runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="N = 100, 1000, one round, shorter windows")
    parser.add_argument("--flytekit-bin", help="bin folder of a virtualenv with flytekit 1.16.31")
    parser.add_argument("--setup", action="store_true", help="create .bench-venv/flytekit first")
    parser.add_argument("--json", help="also write the results to this file (read by report.py)")
    args = parser.parse_args()
    if args.quick and args.sizes == parser.get_default("sizes"):
        args.sizes = "100,1000"
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3

    home = Path(tempfile.mkdtemp(prefix="arw-home-"))
    os.environ["ASYNCRUN_HOME"] = str(home)  # daemon logs and any default paths stay in here
    os.environ.pop("ASYNCRUN_DAEMON_SOCKET", None)
    atexit.register(shutil.rmtree, home, True)
    atexit.register(_kill_started)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    try:
        return anyio.run(main_async, args)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process this benchmark started", file=sys.stderr)
        return 130
    finally:
        _kill_started()


if __name__ == "__main__":
    sys.exit(main())
