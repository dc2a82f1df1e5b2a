"""Zero-config `--remote` starting the sandbox: concurrent starts, its ports, and one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(240)

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")
HELLO = str(Path(__file__).resolve().parents[2] / "examples" / "hello.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def zero_config_env(tmp_path: Path) -> dict[str, str]:
    """No Flyte config at all (so `--remote` means the sandbox), on free ports, in this test's state."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("FLYTE", "ASYNCRUN_SANDBOX"))
    }
    env["HOME"] = str(tmp_path / "home")
    env["ASYNCRUN_SANDBOX_PORT"] = str(free_port())
    env["ASYNCRUN_SANDBOX_HTTP_PORT"] = str(free_port())
    return env


@pytest.fixture
def stop_sandbox(zero_config_env: dict[str, str]):
    yield
    subprocess.run([ASYNCRUN, "sandbox", "stop"], env=zero_config_env, capture_output=True, timeout=60)


def test_concurrent_zero_config_launches_start_one_sandbox_and_all_succeed(
    zero_config_env: dict[str, str], stop_sandbox: None
) -> None:
    launches = [
        subprocess.Popen(
            [ASYNCRUN, "run", "--remote", HELLO, "wf", "--name", f"q{i}"],  # the command
            env=zero_config_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(5)
    ]
    results = [(process.wait(timeout=180), *process.communicate()) for process in launches]
    created = set()
    for code, _, stderr in results:
        assert code == 0, stderr
        assert "another sandbox" not in stderr
        created |= {line.split()[1] for line in stderr.splitlines() if line.startswith("Execution ")}
    assert len(created) == 5
    # Exactly one of them started it; the others waited on the start lock and used it.
    starters = [stderr for _, _, stderr in results if "gRPC endpoint:" in stderr]
    assert len(starters) == 1
    assert f"127.0.0.1:{zero_config_env['ASYNCRUN_SANDBOX_PORT']}" in starters[0]


def test_zero_config_ports_come_from_the_environment(
    zero_config_env: dict[str, str], stop_sandbox: None
) -> None:
    port, http_port = zero_config_env["ASYNCRUN_SANDBOX_PORT"], zero_config_env["ASYNCRUN_SANDBOX_HTTP_PORT"]
    result = subprocess.run(
        [ASYNCRUN, "run", "--remote", HELLO, "wf", "--name", "ports"],
        env=zero_config_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert f"http://127.0.0.1:{http_port}/console/" in result.stderr  # the execution's link
    status = subprocess.run(
        [ASYNCRUN, "sandbox", "status"], env=zero_config_env, capture_output=True, text=True, timeout=60
    )
    assert f"endpoint: 127.0.0.1:{port}" in status.stdout


def test_auto_start_on_a_taken_port_is_one_line_naming_the_variable(zero_config_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        zero_config_env["ASYNCRUN_SANDBOX_HTTP_PORT"] = str(taken_port)
        result = subprocess.run(
            [ASYNCRUN, "run", "--remote", HELLO, "wf"],
            env=zero_config_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "Error" in line]
    assert len(errors) == 1, result.stderr
    assert errors[0].count("Error") == 1
    assert f"port {taken_port}" in errors[0]
    assert "ASYNCRUN_SANDBOX_HTTP_PORT" in errors[0]
    assert "Traceback" not in result.stderr


def test_zero_config_port_held_by_a_silent_program_fails_naming_it(zero_config_env: dict[str, str]) -> None:
    with socket.socket() as silent:  # accepts TCP (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        zero_config_env["ASYNCRUN_SANDBOX_PORT"] = str(port)
        zero_config_env["ASYNCRUN_CONNECT_TIMEOUT"] = "0.5"
        result = subprocess.run(
            [ASYNCRUN, "run", "--remote", HELLO, "wf"],
            env=zero_config_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 6, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"Error: the control plane at localhost:{port} accepted a connection but did not answer"
    )
    assert "ASYNCRUN_SANDBOX_PORT" in last
    assert "Traceback" not in result.stderr


def test_start_on_other_ports_than_the_running_sandbox_is_a_usage_error(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    first, first_http, second, second_http = free_port(), free_port(), free_port(), free_port()

    def start(port: int, http_port: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                ASYNCRUN,
                "sandbox",
                "start",
                "--data-dir",
                data_dir,
                "--port",
                str(port),
                "--http-port",
                str(http_port),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:
        assert start(first, first_http).returncode == 0
        again = start(first, first_http)
        assert again.returncode == 0 and "already running" in again.stdout
        moved = start(second, second_http)
        assert moved.returncode == 2, moved.stdout + moved.stderr
        assert "already running" not in moved.stdout
        assert f"already runs on 127.0.0.1:{first}" in moved.stderr
        assert f"not on 127.0.0.1:{second}" in moved.stderr
    finally:
        subprocess.run([ASYNCRUN, "sandbox", "stop", "--data-dir", data_dir], capture_output=True, timeout=60)
