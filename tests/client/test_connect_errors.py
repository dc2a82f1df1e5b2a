"""Connection set-up has its own deadline, and endpoint mistakes are one-line errors naming the
endpoint and the fix (a silent server, an HTTP/1 service, TLS against plain text, URL schemes)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest

from asyncrun._exceptions import ConfigError, UnreachableError, WrongEndpointError
from asyncrun.client import Client
from asyncrun.client._config import ClientConfig, load_config

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")
HELLO = str(Path(__file__).resolve().parents[2] / "examples" / "hello.py")


@pytest.fixture
def silent_port():
    """A port that accepts TCP (the kernel's backlog) and never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        yield silent.getsockname()[1]


@pytest.fixture
def http1_port():
    """A plain HTTP/1.1 web server, as a console or a proxy's HTTP port would be."""

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLYTE")}
    env["HOME"] = str(tmp_path / "home")
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ASYNCRUN, *args], env=env, capture_output=True, text=True, timeout=600)


def only_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize(
    "args",
    [["run", "--remote", HELLO, "wf"], ["run", "remote-task"], ["run", "remote-launchplan", "hello.wf"]],
    ids=["run-remote", "remote-list", "remote-launch"],
)
@pytest.mark.parametrize("insecure", ["true", "false"])
def test_a_silent_endpoint_fails_within_the_connect_deadline(
    tmp_path: Path, silent_port: int, args: list[str], insecure: str
) -> None:
    env = cli_env(
        tmp_path,
        FLYTE_PLATFORM_URL=f"127.0.0.1:{silent_port}",
        FLYTE_PLATFORM_INSECURE=insecure,
        ASYNCRUN_CONNECT_TIMEOUT="0.5",
    )
    result = run_cli(args, env)
    assert result.returncode == 6, result.stderr
    line = only_error_line(result)
    endpoint = f"127.0.0.1:{silent_port}"
    assert line.startswith(f"Error: the control plane at {endpoint} accepted a connection but did not answer")
    assert "within 0.5 s" in line
    assert "ASYNCRUN_CONNECT_TIMEOUT" in line


async def test_the_python_client_has_the_same_deadline(silent_port: int) -> None:
    config = ClientConfig(
        endpoint=f"127.0.0.1:{silent_port}", insecure=True, connect_timeout=0.3, source="test"
    )
    async with Client(config) as client:
        with pytest.raises(
            UnreachableError, match=f"127.0.0.1:{silent_port} accepted a connection but did not"
        ):
            await client.list_entities("task")


def test_an_http1_service_is_named_as_not_grpc(tmp_path: Path, http1_port: int) -> None:
    env = cli_env(tmp_path, FLYTE_PLATFORM_URL=f"127.0.0.1:{http1_port}", FLYTE_PLATFORM_INSECURE="true")
    result = run_cli(["run", "remote-task"], env)
    assert result.returncode == 6, result.stderr
    line = only_error_line(result)
    assert f"127.0.0.1:{http1_port} answers HTTP/1, not gRPC" in line
    assert "Connection lost" not in result.stderr


async def test_the_sandbox_console_port_is_named_as_not_grpc(sandbox) -> None:
    endpoint = f"{sandbox.host}:{sandbox.http_port}"
    config = ClientConfig(endpoint=endpoint, insecure=True, source="test")
    async with Client(config) as client:
        with pytest.raises(WrongEndpointError, match=f"at {endpoint} answers HTTP/1, not gRPC: point the"):
            await client.list_entities("task")


async def test_tls_to_a_plain_text_server_says_set_insecure(sandbox, tmp_path: Path) -> None:
    env = cli_env(tmp_path, FLYTE_PLATFORM_URL=sandbox.endpoint)  # no FLYTE_PLATFORM_INSECURE: TLS
    result = await anyio.run_process([ASYNCRUN, "run", "remote-task"], env=env, check=False)
    stderr = result.stderr.decode()
    assert result.returncode == 6, stderr
    line = only_error_line(subprocess.CompletedProcess([], 6, "", stderr))
    assert f"the control plane at {sandbox.endpoint} does not speak TLS: set admin.insecure: true" in line
    assert "WRONG_VERSION_NUMBER" not in stderr


async def test_wrong_endpoint_errors_are_not_retried(sandbox) -> None:
    config = ClientConfig(endpoint=sandbox.endpoint, insecure=False, source="test", unreachable_timeout=60)
    async with Client(config) as client:
        with pytest.raises(WrongEndpointError):
            # With retries this would take its whole minute and hit the test's timeout first.
            with anyio.fail_after(30):
                await client.list_entities("task")


@pytest.mark.parametrize("scheme", ["https://", "http://", "dns:///", "grpc://"])
async def test_url_schemes_in_the_endpoint_are_stripped(sandbox, tmp_path: Path, scheme: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"admin:\n  endpoint: {scheme}{sandbox.endpoint}/\n  insecure: true\n")
    assert load_config(config, env={}).endpoint == sandbox.endpoint
    env = cli_env(tmp_path)
    result = await anyio.run_process(
        [ASYNCRUN, "-c", str(config), "run", "remote-task"], env=env, check=False
    )
    assert result.returncode == 0, result.stderr.decode()


def test_connect_timeout_from_config_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("admin:\n  endpoint: dns:///flyte.example.com:443\n  connectTimeout: 2s\n")
    assert load_config(config, env={}).connect_timeout == 2
    assert load_config(config, env={"ASYNCRUN_CONNECT_TIMEOUT": "0.25"}).connect_timeout == 0.25
    assert load_config(None, env={"HOME": str(tmp_path)}).connect_timeout == 5
    with pytest.raises(ConfigError, match="ASYNCRUN_CONNECT_TIMEOUT must be a positive duration"):
        load_config(None, env={"HOME": str(tmp_path), "ASYNCRUN_CONNECT_TIMEOUT": "soon"})


def test_sandbox_ports_from_the_environment(tmp_path: Path) -> None:
    home = str(tmp_path)
    default = load_config(None, env={"HOME": home})
    assert (default.endpoint, default.console_url) == ("localhost:30080", "http://127.0.0.1:30081/console")
    moved = load_config(None, env={"HOME": home, "ASYNCRUN_SANDBOX_PORT": "31080"})
    assert (moved.endpoint, moved.console_url) == ("localhost:31080", "http://127.0.0.1:31081/console")
    both = load_config(
        None, env={"HOME": home, "ASYNCRUN_SANDBOX_PORT": "31080", "ASYNCRUN_SANDBOX_HTTP_PORT": "9"}
    )
    assert both.console_url == "http://127.0.0.1:9/console"
    other = load_config(
        None, env={"HOME": home, "ASYNCRUN_SANDBOX_PORT": "31080", "FLYTE_PLATFORM_URL": "x:1"}
    )
    assert (other.endpoint, other.console_url) == ("x:1", "https://x:1/console")  # not the sandbox's
    explicit = Client.from_config(endpoint="x:1", insecure=True).config
    assert (explicit.endpoint, explicit.console_url) == ("x:1", "http://x:1/console")
    with pytest.raises(ConfigError, match="ASYNCRUN_SANDBOX_PORT must be a port number"):
        load_config(None, env={"HOME": home, "ASYNCRUN_SANDBOX_PORT": "http"})
