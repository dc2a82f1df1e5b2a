"""End to end: build the wheel from this checkout, install it into a fresh virtualenv, and run the
README's commands exactly as written — a local run, `--remote --wait` against the zero-config sandbox
(which starts itself on the default ports 30080/30081), and a wait through the daemon.

Which commands: each fenced bash block in README.md preceded by a `<!-- e2e: NAME [lines=A-B] -->`
marker (the convention of `.ci/run`'s `<!-- ci: … -->` markers). The listed lines (all by default)
are run one at a time with `bash -c`, from the first `asyncrun` on: what comes before it on a line
creates a virtualenv and installs asyncrun, which this test does with the built wheel instead. Only
the virtualenv's bin goes on PATH; HOME, ASYNCRUN_HOME (so the sandbox's data folder and the daemon's
socket and journal) are temporary folders, and no Flyte config or variable reaches the commands.

The default ports are fixed by the README's zero-config promise, so this test cannot use free ones.
Nothing else in the suite binds them: the `sandbox` fixture and the CLI tests ask the OS for free
ports (port 0, from the ephemeral range, which starts above 30081), and the only 30080 elsewhere is a
config value that is never served. Other programs on the machine may hold them (a user's own sandbox,
another checkout's test run), so where the OS allows it (`unshare`/`nsenter`: a user and network
namespace) the commands after the local run share a private loopback of their own, where nothing else
can listen. Elsewhere they use the machine's loopback: test sessions are serialized by a lock file,
and a port that something else holds fails the test with one clear line. The sandbox and the daemon
are stopped at the end, also when a step fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PORTS = (30080, 30081)  # README: "--remote talks to the local sandbox at localhost:30080", console 30081
LOCK = Path(tempfile.gettempdir()) / f"asyncrun-e2e-{os.getuid()}-ports-30080.lock"
MARKER = re.compile(r"^<!-- e2e: (?P<name>[\w-]+)(?: lines=(?P<first>\d+)(?:-(?P<last>\d+))?)? -->$")

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def readme_commands() -> dict[str, list[str]]:
    """NAME -> the commands its marker selects, in README order."""
    blocks: dict[str, list[str]] = {}
    lines = README.read_text().splitlines()
    for i, line in enumerate(lines):
        match = MARKER.match(line.strip())
        if match is None:
            continue
        start = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        assert lines[start] == "```bash", f"the block after {line!r} is not a bash block"
        end = next(j for j in range(start + 1, len(lines)) if lines[j].startswith("```"))
        body = lines[start + 1 : end]
        first = int(match["first"] or 1)
        last = int(match["last"] or (match["first"] or len(body)))
        chosen = body[first - 1 : last]
        assert len(chosen) == last - first + 1, f"{line!r}: the block has only {len(body)} lines"
        commands = []
        for text in chosen:
            at = text.find("asyncrun ")
            assert at >= 0, f"{line!r}: no asyncrun command in {text!r}"
            commands.append(text[at:])
        blocks[match["name"]] = commands
    return blocks


def test_readme_markers_select_commands() -> None:
    """The markers are there and select what the end-to-end test below expects to run."""
    commands = readme_commands()
    assert commands["local"] == ["asyncrun run examples/hello.py wf --name you"]
    assert [c.split("#")[0].split() for c in commands["remote"]] == [
        ["asyncrun", "run", "--remote", "--wait", "examples/hello.py", "wf", "--name", "you"],
        ["asyncrun", "run", "remote-launchplan"],
        ["asyncrun", "run", "--wait", "remote-launchplan", "hello.wf", "--name", "me"],
    ]
    assert [c.split("#")[0].split() for c in commands["daemon"]] == [
        ["asyncrun", "run", "--remote", "--wait", "examples/hello.py", "wf"]
    ]


# Brings the namespace's loopback up (SIOCGIFFLAGS / SIOCSIFFLAGS, IFF_UP) and waits until killed.
LOOPBACK_UP = """
import fcntl, signal, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))
print("ready", flush=True)
signal.pause()
"""


@contextlib.contextmanager
def private_loopback() -> Iterator[list[str] | None]:
    """A process holding a new user + network namespace with loopback up: the `nsenter` prefix that
    runs a command in it, or None where the OS does not allow one (then nothing was started)."""
    unshare, nsenter = shutil.which("unshare"), shutil.which("nsenter")
    if unshare is None or nsenter is None:
        yield None
        return
    holder = subprocess.Popen(
        [unshare, "--user", "--map-root-user", "--net", sys.executable, "-c", LOOPBACK_UP],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert holder.stdout is not None
        ready = holder.stdout.readline().strip() == "ready"
        prefix = [nsenter, f"--target={holder.pid}", "--user", "--net"]
        usable = ready and subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode == 0
        yield prefix if usable else None
    finally:
        holder.kill()
        holder.wait(timeout=30)


@contextlib.contextmanager
def machine_ports_locked(timeout: float = 240.0) -> Iterator[None]:
    """The machine-wide lock for the default sandbox ports, for runs on the machine's loopback."""
    with open(LOCK, "w") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another asyncrun end-to-end test held {LOCK} for {timeout:.0f} s")
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def default_ports() -> Iterator[list[str]]:
    """Where the sandbox can have 30080/30081 to itself: the prefix to run commands there (empty for
    the machine's own loopback). The ports are checked free before anything starts."""
    with contextlib.ExitStack() as stack:
        prefix = stack.enter_context(private_loopback())
        if prefix is None:
            stack.enter_context(machine_ports_locked())
            prefix = []
        for port in PORTS:
            assert not answers(prefix, port), (
                f"port {port} is in use by another program; the README's zero-config sandbox needs "
                f"it: stop that program (`asyncrun sandbox stop`?) and run this test again"
            )
        yield prefix


def answers(prefix: list[str], port: int) -> bool:
    """Whether something accepts connections at 127.0.0.1:`port`, seen from where commands run."""
    probe = f"exec 3<>/dev/tcp/127.0.0.1/{port}"
    return subprocess.run([*prefix, "bash", "-c", probe], capture_output=True, timeout=30).returncode == 0


def install_wheel(tmp: Path) -> Path:
    """The wheel of this checkout, installed with its dependencies into a fresh virtualenv: its bin."""
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (wheel,) = dist.glob("asyncrun-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    return venv / "bin"


def clean_env(bin_dir: Path, home: Path, state: Path) -> dict[str, str]:
    """This process's environment minus anything that points at a config, a venv or a daemon."""
    drop = ("FLYTE", "ASYNCRUN", "XDG_", "VIRTUAL_ENV", "PYTHON", "PYTEST", "CONDA")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        HOME=str(home),
        ASYNCRUN_HOME=str(state),
    )
    return env


def shell(
    command: str, cwd: Path, env: dict[str, str], prefix: Sequence[str] = (), timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`bash -c command`, where `prefix` says (nothing: here; else in the private namespace)."""
    result = subprocess.run(
        [*prefix, "bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"`{command}` exited {result.returncode}\n"
        f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-3000:]}"
    )
    return result


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def created_name(stderr: str) -> str:
    match = re.search(r"^Execution (\S+) created: (\S+)$", stderr, re.MULTILINE)
    assert match, f"no 'Execution … created' line in:\n{stderr[-2000:]}"
    assert match[2].startswith("http://127.0.0.1:30081/console"), match[2]  # as the sandbox banner says
    return match[1]


def stop_everything(work: Path, env: dict[str, str], state: Path, prefix: Sequence[str]) -> list[str]:
    """`asyncrun sandbox stop` and `asyncrun daemon stop`; then, by pid, whatever did not stop."""
    problems = []
    for command in ("asyncrun sandbox stop", "asyncrun daemon stop"):
        result = subprocess.run(
            [*prefix, "bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            problems.append(f"`{command}` exited {result.returncode}: {result.stderr.strip()[-500:]}")
    sandbox_state = state / "sandbox" / "sandbox.json"
    if sandbox_state.exists():
        pid = int(json.loads(sandbox_state.read_text())["pid"])
        if _alive(pid):
            problems.append(f"the sandbox (pid {pid}) was still running after `asyncrun sandbox stop`")
            _kill(pid)
    for pid_file in state.rglob("daemon.pid"):
        with contextlib.suppress(ValueError, OSError, KeyError):
            pid = int(json.loads(pid_file.read_text())["pid"])
            if _alive(pid):
                problems.append(f"the daemon (pid {pid}) was still running after `asyncrun daemon stop`")
                _kill(pid)
    return problems


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def test_readme_commands_from_a_built_wheel() -> None:
    commands = readme_commands()
    tmp = Path(tempfile.mkdtemp(prefix="are2e-"))  # short: the daemon's socket path must fit
    try:
        bin_dir = install_wheel(tmp)
        site = next((bin_dir.parent / "lib").glob("python3*/site-packages"))
        assert (site / "asyncrun" / "__init__.py").is_file(), "the wheel did not install the package files"
        assert not [pth for pth in site.glob("*.pth") if str(ROOT) in pth.read_text()], "an editable install"
        home, state, work = tmp / "home", tmp / "state", tmp / "work"
        home.mkdir()
        shutil.copytree(ROOT / "examples", work / "examples")
        env = clean_env(bin_dir, home, state)
        which = shell("command -v asyncrun", work, env)
        assert which.stdout.strip() == str(bin_dir / "asyncrun")
        where = shell('python -c "import asyncrun; print(asyncrun.__file__)"', work, env)
        assert where.stdout.strip() == str(site / "asyncrun" / "__init__.py"), where.stdout

        # Quick start: a local run.
        (local,) = commands["local"]
        assert last_line(shell(local, work, env).stdout) == "HELLO YOU HELLO YOU"

        with default_ports() as prefix:
            try:
                # Remote runs: the sandbox starts itself, the run is packaged, registered, launched, waited.
                remote_wait, list_lps, launch_lp = commands["remote"]
                first = shell(remote_wait, work, env, prefix)
                assert "starting the local sandbox" in first.stderr, first.stderr[-2000:]
                assert last_line(first.stdout) == "HELLO YOU HELLO YOU", first.stdout
                first_name = created_name(first.stderr)
                assert all(answers(prefix, port) for port in PORTS), (
                    "the sandbox is not on the README's ports"
                )
                sandbox_dir = state / "sandbox"
                assert (sandbox_dir / "sandbox.json").is_file(), "the sandbox did not use ASYNCRUN_HOME"

                listed = shell(list_lps, work, env, prefix)
                assert "hello.wf" in listed.stdout, listed.stdout

                launched = shell(launch_lp, work, env, prefix)
                assert last_line(launched.stdout) == "HELLO ME HELLO ME", launched.stdout
                assert created_name(launched.stderr) != first_name

                # The daemon: `run --remote --wait` waits through it; it remembers the run afterwards.
                (daemon_run,) = commands["daemon"]
                through = shell(daemon_run, work, env, prefix)
                assert "starting the local sandbox" not in through.stderr  # the same sandbox, still up
                assert last_line(through.stdout) == "HELLO WORLD HELLO WORLD", through.stdout
                name = created_name(through.stderr)
                status = shell(f"asyncrun status -o json {name}", work, env, prefix)
                assert name in status.stdout and '"SUCCEEDED"' in status.stdout, status.stdout
                assert '"tracked": true' in status.stdout, status.stdout
                daemon = shell("asyncrun daemon status", work, env, prefix).stdout
                assert f"journal:  {state / 'daemon' / 'journal.sqlite3'}" in daemon, daemon
                tracked = re.search(r"^tracked:\s+(\d+)", daemon, re.MULTILINE)
                assert tracked and int(tracked[1]) >= 3, daemon  # the three --wait runs above
            finally:
                problems = stop_everything(work, env, state, prefix)
            assert not problems, "; ".join(problems)
            assert not any(answers(prefix, port) for port in PORTS), (
                "the sandbox still answers after stopping"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
