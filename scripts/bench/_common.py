"""Shared benchmark plumbing: the machine line, the flytekit virtualenv, a sandbox process, medians, and
the results file every benchmark writes with `--json PATH` (read by `report.py`)."""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH_VENV = ROOT / ".bench-venv" / "flytekit"
ASYNCRUN_VENV = ROOT / ".bench-venv" / "asyncrun"
ASYNCRUN_FLYTEKIT_VENV = ROOT / ".bench-venv" / "asyncrun-flytekit"
FLYTEKIT = "flytekit==1.16.31"
FLYTE2_VENV = ROOT / ".bench-venv" / "flyte"
FLYTE2 = "flyte==2.12.1"  # Flyte 2's SDK: the import-time comparison for the client
BIN = Path(sys.executable).parent

# The flytekit twin of examples/hello.py: same tasks, same workflow, same defaults.
FLYTEKIT_HELLO = '''"""flytekit twin of examples/hello.py."""

from flytekit import task, workflow


@task
def say_hello(name: str) -> str:
    """Greet someone."""
    return f"hello {name}"


@task
def shout(s: str, times: int = 1) -> str:
    """Repeat a greeting, louder."""
    return " ".join([s.upper()] * times)


@workflow
def wf(name: str = "world", times: int = 2) -> str:
    """Say hello to NAME, TIMES times."""
    return shout(s=say_hello(name=name), times=times)
'''


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {system}"


def asyncrun_bin(*, flytekit: bool = False) -> Path:
    """The bin folder of a virtualenv holding only this checkout, installed as users get it.

    flytekit is measured in a virtualenv of its own; so is asyncrun. `pip install .` builds the wheel and
    byte-compiles it (an editable checkout has no .pyc files, and none are written where
    PYTHONDONTWRITEBYTECODE is set), and nothing else gets in: the dev virtualenv's test extras bring
    pydantic, which betterproto2 imports whenever it is installed. Re-installed when the checkout's
    code changed since the last install.

    `flytekit`: a virtualenv of its own with `asyncrun[flytekit]` (flytekit 1.16.31), for running
    flytekit files; the plain one stays free of flytekit and pydantic.
    """
    venv = ASYNCRUN_FLYTEKIT_VENV if flytekit else ASYNCRUN_VENV
    if venv in _ASYNCRUN_BINS:
        return _ASYNCRUN_BINS[venv]
    python, stamp = venv / "bin" / "python", venv / "installed-from"
    digest = _checkout_digest()
    if not python.exists():
        print(f"creating {venv} with this checkout …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        extra = [f"{ROOT}[flytekit]", FLYTEKIT] if flytekit else [str(ROOT)]
        subprocess.run([str(python), "-m", "pip", "install", "-q", *extra], check=True)
    elif not stamp.exists() or stamp.read_text() != digest:
        print(f"re-installing this checkout into {ASYNCRUN_VENV} …", file=sys.stderr)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(ROOT)],
            check=True,
        )
    stamp.write_text(digest)
    _ASYNCRUN_BINS[venv] = venv / "bin"
    return _ASYNCRUN_BINS[venv]


_ASYNCRUN_BINS: dict[Path, Path] = {}


def asyncrun_cmd(*args: str, flytekit: bool = False) -> list[str]:
    """`asyncrun ARGS…` from the benchmark's own installation (`asyncrun_bin`)."""
    return [str(asyncrun_bin(flytekit=flytekit) / "asyncrun"), *args]


def _checkout_digest() -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in sorted([ROOT / "pyproject.toml", *(ROOT / "asyncrun").rglob("*.py")]):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def flytekit_bin(explicit: str | None = None, *, setup: bool = False) -> Path | None:
    """The bin folder of a virtualenv with flytekit 1.16.31 (created with `setup`)."""
    if explicit:
        return Path(explicit)
    if setup and not (BENCH_VENV / "bin" / "pyflyte").exists():
        print(f"creating {BENCH_VENV} with {FLYTEKIT} …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(BENCH_VENV / "bin" / "pip"), "install", "-q", FLYTEKIT], check=True)
    found = BENCH_VENV / "bin"
    return found if (found / "pyflyte").exists() else None


def flyte2_python(*, setup: bool = False) -> Path | None:
    """The python of a virtualenv with Flyte 2's SDK (created with `setup`), or None."""
    python = FLYTE2_VENV / "bin" / "python"
    if setup and not python.exists():
        print(f"creating {FLYTE2_VENV} with {FLYTE2} …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(FLYTE2_VENV)], check=True)
        subprocess.run([str(FLYTE2_VENV / "bin" / "pip"), "install", "-q", FLYTE2], check=True)
    return python if python.exists() else None


def machine_busy_seconds() -> float:
    """CPU seconds every core spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SandboxProcess:
    endpoint: str
    data_dir: Path


@contextlib.contextmanager
def sandbox(*, rpc_delay_ms: int = 0, extra_path: list[Path] | None = None) -> Iterator[SandboxProcess]:
    """`asyncrun sandbox start` in a fresh data dir on free ports; stopped afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix="asyncrun-bench-sb-"))
    port, http_port = free_port(), free_port()
    cmd = [
        str(asyncrun_bin() / "asyncrun"),
        "sandbox",
        "start",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--http-port",
        str(http_port),
        "--rpc-delay-ms",
        str(rpc_delay_ms),
        "--task-path",
        str(asyncrun_bin()),
    ]
    for folder in extra_path or []:
        cmd += ["--task-path", str(folder)]
    subprocess.run(cmd, check=True, capture_output=True)
    try:
        yield SandboxProcess(f"127.0.0.1:{port}", data_dir)
    finally:
        subprocess.run(
            asyncrun_cmd("sandbox", "stop", "--data-dir", str(data_dir)),
            capture_output=True,
        )
        shutil.rmtree(data_dir, ignore_errors=True)


def timed(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(
            f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout[-1500:]}{result.stderr[-1500:]}"
        )
    return elapsed


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def wait_idle(endpoint: str, timeout: float = 120.0) -> None:
    """Block until no execution on the sandbox is still running, so the next timing runs on a quiet
    machine (the runs a command starts would otherwise compete with the next command for the CPU)."""
    import asyncio

    from asyncrun import Client

    async def check() -> None:
        async with Client.from_config(endpoint=endpoint, insecure=True) as client:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                page, _ = await client.list_executions(limit=200)
                if all(ex.phase.is_terminal for ex in page):
                    return
                await asyncio.sleep(0.2)

    asyncio.run(check())


# ---------------------------------------------------------------- results files (`--json PATH`)

SCHEMA = 1


@dataclass(frozen=True)
class Target:
    """A stated target: `of` the case (`ratio` = median asyncrun / median flytekit, or the asyncrun
    samples' `median` or `max`) `op` (`<=` or `>=`) `value`, as the issue words it in `text`."""

    text: str
    of: str
    op: str
    value: float


@dataclass
class Case:
    """One measured thing: the raw samples of each tool (same unit), and the target it answers to.

    `ok` carries a condition the numbers alone do not show (every run heard, no unexpected calls);
    a case with `ok` false is NOT met whatever its value. Without flytekit samples a ratio target is
    not measured (`met` None).
    """

    name: str
    unit: str
    asyncrun: list[float]
    flytekit: list[float] = field(default_factory=list)
    target: Target | None = None
    ok: bool = True
    note: str = ""

    @property
    def median_asyncrun(self) -> float | None:
        return statistics.median(self.asyncrun) if self.asyncrun else None

    @property
    def median_flytekit(self) -> float | None:
        return statistics.median(self.flytekit) if self.flytekit else None

    @property
    def ratio(self) -> float | None:
        a, f = self.median_asyncrun, self.median_flytekit
        return a / f if a is not None and f else None

    @property
    def measured(self) -> float | None:
        if self.target is None or not self.asyncrun:
            return None
        if self.target.of == "ratio":
            return self.ratio
        return max(self.asyncrun) if self.target.of == "max" else self.median_asyncrun

    @property
    def met(self) -> bool | None:
        value = self.measured
        if self.target is None or value is None or math.isnan(value):
            return None
        within = value <= self.target.value if self.target.op == "<=" else value >= self.target.value
        return within and self.ok

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        for key in ("median_asyncrun", "median_flytekit", "ratio", "measured", "met"):
            data[key] = getattr(self, key)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        target = Target(**data["target"]) if data.get("target") else None
        return cls(
            name=data["name"],
            unit=data["unit"],
            asyncrun=list(data["asyncrun"]),
            flytekit=list(data.get("flytekit") or []),
            target=target,
            ok=bool(data.get("ok", True)),
            note=data.get("note", ""),
        )


def merge(groups: list[list[Case]]) -> list[Case]:
    """The cases of several runs of one benchmark, samples pooled by case name (first run's order)."""
    merged: dict[str, Case] = {}
    for cases in groups:
        for case in cases:
            if case.name not in merged:
                merged[case.name] = Case.from_json(case.to_json())
                continue
            into = merged[case.name]
            into.asyncrun += case.asyncrun
            into.flytekit += case.flytekit
            into.ok = into.ok and case.ok
            if case.note and case.note not in into.note:
                into.note = f"{into.note}; {case.note}" if into.note else case.note
    return list(merged.values())


def write_results(
    path: str | os.PathLike[str], bench: str, params: dict[str, Any], cases: list[Case]
) -> None:
    """The results file of one benchmark run: machine, date, parameters, and every case."""
    payload = {
        "schema": SCHEMA,
        "bench": bench,
        "machine": machine(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "params": params,
        "cases": [case.to_json() for case in cases],
    }
    Path(path).write_text(json.dumps(payload, indent=1) + "\n")


def read_results(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[Case]]:
    data = json.loads(Path(path).read_text())
    if data.get("schema") != SCHEMA:
        raise SystemExit(f"{path}: results schema {data.get('schema')}, expected {SCHEMA}")
    return data, [Case.from_json(c) for c in data["cases"]]
