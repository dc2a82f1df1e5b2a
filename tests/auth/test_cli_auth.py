"""`asyncrun run --remote --wait` as real processes (CLI + the daemon it starts) against `sandbox --auth`."""

from __future__ import annotations

import os
import re
import stat
import sys
import textwrap
from collections import Counter
from pathlib import Path

import anyio
import httpx
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")
HELLO = str(Path(__file__).resolve().parents[2] / "examples" / "hello.py")


def sleepy_module(folder: Path) -> Path:
    """A workflow that runs long enough for 2-second tokens to expire while the daemon waits."""
    path = folder / "sleepy_auth.py"
    path.write_text(
        textwrap.dedent(
            """
            import time
            from asyncrun import task, workflow

            @task
            def nap(seconds: float) -> str:
                time.sleep(seconds)
                return f"slept {seconds}"

            @workflow
            def wf(seconds: float = 5.0) -> str:
                return nap(seconds=seconds)
            """
        )
    )
    return path


async def asyncrun(*args: str, limit: float = 120) -> tuple[int, str, str]:
    with anyio.fail_after(limit):  # a hang guard; how soon each error comes is for benchmarks
        result = await anyio.run_process([ASYNCRUN, *args], check=False, env=dict(os.environ))
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.fixture
def auth_calls(auth_sandbox, monkeypatch) -> Counter[str]:
    """Requests the auth sandbox's token endpoint answered (`calls["token"]`). A failure that is
    retried instead of reported shows up here, whatever the clock."""
    calls: Counter[str] = Counter()
    auth = auth_sandbox.auth
    for method in ("token",):
        original = getattr(auth, method)

        def counted(*args, _original=original, _method=method, **kwargs):
            calls[_method] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(auth, method, counted)
    return calls


def state_files() -> list[Path]:
    home = Path(os.environ["ASYNCRUN_HOME"])
    return [p for p in home.rglob("*") if p.is_file()]


def assert_no_leak(secret: str, *texts: str) -> None:
    """Neither the secret nor any issued token appears in output, logs, journals or the config cache."""
    for text in texts:
        assert secret not in text
    for path in state_files():
        if path.parent.name == "auth":
            continue  # the token cache holds tokens by design (0600, checked separately)
        data = path.read_bytes()
        assert secret.encode() not in data, f"secret found in {path}"


def assert_cache_private() -> list[Path]:
    files = [p for p in state_files() if p.parent.name == "auth"]
    assert files, "no token cache was written"
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    return files


async def test_client_secret_run_and_wait(auth_sandbox, client_secret_config) -> None:
    code, out, err = await asyncrun("run", "--remote", "--wait", "--dump-snippet", HELLO, "wf", "--name", "x")
    assert code == 0, err
    assert "HELLO X HELLO X" in out
    assert_cache_private()
    assert_no_leak(auth_sandbox.secret, out, err)
    tokens = [
        line.split('"access_token": "')[1].split('"')[0]
        for p in assert_cache_private()
        for line in [p.read_text()]
    ]
    logs = "".join(p.read_text(errors="replace") for p in state_files() if p.suffix == ".log")
    for token in tokens:
        assert token not in out and token not in err and token not in logs


@pytest.mark.parametrize("token_lifetime", [2.0])
async def test_tokens_expire_mid_wait_and_are_renewed(auth_sandbox, client_secret_config, tmp_path) -> None:
    module = sleepy_module(tmp_path)
    result: list[tuple[int, str, str, float]] = []

    async def run() -> None:
        result.append(await asyncrun("run", "--remote", "--wait", str(module), "wf", "--seconds", "8"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        # Events, not seconds: once the CLI's token and a renewal of an expired 2-second token have
        # been issued (the 8-second run is under way, a busy machine only delays this)…
        with anyio.fail_after(90):
            while auth_sandbox.auth.tokens_issued < 3:  # noqa: ASYNC110 - the issuer counts, nothing signals
                await anyio.sleep(0.05)
        issued = auth_sandbox.auth.tokens_issued
        # …the server forgets every token mid-wait: the daemon's next poll is refused and renews.
        auth_sandbox.auth.revoke_access_tokens()
    code, out, err = result[0]
    assert code == 0, err
    assert "slept 8.0" in out
    # The daemon renewed once more after the revocation.
    assert auth_sandbox.auth.tokens_issued > issued
    assert_no_leak(auth_sandbox.secret, out, err)


async def test_daemon_renews_a_refused_token_mid_wait(auth_sandbox, client_secret_config, tmp_path) -> None:
    # Long-lived tokens: nothing would be renewed before expiry, so only renewal on UNAUTHENTICATED helps.
    module = sleepy_module(tmp_path)
    result: list[tuple[int, str, str, float]] = []

    async def run() -> None:
        result.append(await asyncrun("run", "--remote", "--wait", str(module), "wf", "--seconds", "5"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await anyio.sleep(3)
        issued = auth_sandbox.auth.tokens_issued
        auth_sandbox.auth.revoke_access_tokens()
    code, out, err = result[0]
    assert code == 0, err
    assert "slept 5.0" in out
    assert auth_sandbox.auth.tokens_issued > issued


async def _approve_device_code(
    process: anyio.abc.Process, issuer: str, seen: list[str], launched: anyio.Event | None = None
) -> None:
    """Play the user: approve the code the CLI prints; set `launched` once the run is created."""
    assert process.stderr is not None
    buffer = ""
    async for chunk in process.stderr:
        buffer += chunk.decode()
        match = re.search(r"open (\S+) and enter the code (\S+)", buffer)
        if match:
            seen.append(buffer)
            async with httpx.AsyncClient() as http:
                answer = await http.post(match.group(1), data={"user_code": match.group(2)})
            assert answer.status_code == 200
            break
    async for chunk in process.stderr:
        buffer += chunk.decode()
        if launched is not None and " created" in buffer:
            launched.set()
    seen[:] = [buffer]


@pytest.mark.parametrize("token_lifetime", [2.0])
@pytest.mark.timeout(480)
async def test_device_flow_run_and_wait(auth_sandbox, write_config, tmp_path) -> None:
    write_config(authType="DeviceFlow")
    module = sleepy_module(tmp_path)
    seen: list[str] = []
    # A hang guard, not a speed check: two CLI processes, the daemon, and task processes start on
    # a machine other test processes keep busy (50-85 s alone beside two CPU hogs).
    with anyio.fail_after(300):
        async with await anyio.open_process(
            [ASYNCRUN, "run", "--remote", "--wait", str(module), "wf", "--seconds", "5"], env=dict(os.environ)
        ) as process:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_approve_device_code, process, auth_sandbox.info.auth_issuer, seen)
                assert process.stdout is not None
                out = b"".join([chunk async for chunk in process.stdout]).decode()
            await process.wait()
    err = seen[0]
    assert process.returncode == 0, err
    assert "slept 5.0" in out
    assert err.count("enter the code") == 1  # one prompt: the daemon refreshed without the user
    assert auth_sandbox.auth.tokens_issued >= 3
    assert_cache_private()
    # Signed in already: a second run does not prompt.
    code, out, err = await asyncrun("run", "--remote", "--wait", HELLO, "wf", "--name", "y", limit=150)
    assert code == 0 and "HELLO Y" in out and "enter the code" not in err, err


@pytest.mark.parametrize("token_lifetime", [2.0])
async def test_waiter_ends_with_exit_9_when_the_daemon_cannot_renew(
    auth_sandbox, write_config, tmp_path
) -> None:
    write_config(authType="DeviceFlow")
    module = sleepy_module(tmp_path)
    seen: list[str] = []
    launched = anyio.Event()
    command = [ASYNCRUN, "run", "--remote", "--wait", str(module), "wf", "--seconds", "30"]
    with anyio.fail_after(200):  # a hang guard (the module's timeout is 240 s), not a speed check
        async with await anyio.open_process(command, env=dict(os.environ)) as process:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_approve_device_code, process, auth_sandbox.info.auth_issuer, seen, launched)
                # Once the run is launched, the sign-in is lost: no refresh token works any more.
                await launched.wait()
                auth_sandbox.auth.revoke_refresh_tokens()
                assert process.stdout is not None
                out = b"".join([chunk async for chunk in process.stdout]).decode()
            await process.wait()
    err = seen[0]
    assert process.returncode == 9, err
    assert "sign in again" in _one_error_line(err)
    assert err.count("enter the code") == 1  # the daemon never prompts
    assert "slept" not in out  # it gave up while the run still slept, not after waiting it out


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


async def test_wrong_secret_exits_8(auth_sandbox, client_secret_config, auth_calls) -> None:
    auth_sandbox.secret_file.write_text("definitely-wrong-secret")
    code, out, err = await asyncrun("run", "--remote", HELLO, "wf")
    line = _one_error_line(err)
    assert code == 8 and "refused the client id or secret" in line, err
    assert auth_calls["token"] == 1  # refused once, reported, not retried
    assert_no_leak("definitely-wrong-secret", out, err)
    assert_no_leak(auth_sandbox.secret, out, err)


async def test_missing_scope_exits_10(auth_sandbox, write_config, auth_calls) -> None:
    write_config(
        authType="ClientSecret",
        clientId=auth_sandbox.info.auth_client_id,
        clientSecretLocation=str(auth_sandbox.secret_file),
        scopes=["offline"],
    )
    code, _, err = await asyncrun("run", "--remote", HELLO, "wf")
    assert code == 10 and "scope" in _one_error_line(err), err
    assert auth_calls["token"] <= 2  # a token, perhaps one renewal, then the error: no retry loop


async def test_unreachable_issuer_exits_11(auth_sandbox, write_config) -> None:
    write_config(
        authType="ClientSecret",
        clientId=auth_sandbox.info.auth_client_id,
        clientSecretLocation=str(auth_sandbox.secret_file),
        tokenUrl="http://127.0.0.1:9/oauth2/token",
    )
    code, _, err = await asyncrun("run", "--remote", HELLO, "wf")
    assert code == 11 and "cannot reach the OAuth2 issuer" in _one_error_line(err), err
    # An issuer that hangs up on every connection: counted, so a retry loop shows whatever the clock.
    connections = 0

    async def hang_up(stream) -> None:
        nonlocal connections
        connections += 1
        await stream.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, hang_up)
        write_config(
            authType="ClientSecret",
            clientId=auth_sandbox.info.auth_client_id,
            clientSecretLocation=str(auth_sandbox.secret_file),
            tokenUrl=f"http://127.0.0.1:{port}/oauth2/token",
        )
        code, _, err = await asyncrun("run", "--remote", HELLO, "wf")
        tg.cancel_scope.cancel()
    assert code == 11 and "cannot reach the OAuth2 issuer" in _one_error_line(err), err
    assert 1 <= connections <= 3, connections  # tried, then reported: no retry loop


@pytest.mark.parametrize("token_lifetime", [1.0])
async def test_expired_token_that_cannot_be_renewed_exits_9(auth_sandbox, write_config, tmp_path) -> None:
    info = auth_sandbox.info
    async with httpx.AsyncClient() as http:
        body = (
            await http.post(
                f"{info.auth_issuer}/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": info.auth_client_id,
                    "client_secret": auth_sandbox.secret,
                },
            )
        ).json()
    script = tmp_path / "print-token"
    runs = tmp_path / "print-token.runs"
    script.write_text(f"#!/bin/sh\necho run >> {runs}\necho {body['access_token']}\n")
    script.chmod(0o700)
    write_config(authType="ExternalCommand", command=[str(script)])
    await anyio.sleep(1.2)  # the command keeps printing a token that has expired
    code, out, err = await asyncrun("run", "--remote", HELLO, "wf")
    assert code == 9 and "expired" in _one_error_line(err), err
    assert runs.read_text().count("run") <= 2  # the command, perhaps once more to renew: no retry loop
    assert body["access_token"] not in out + err


async def test_no_auth_config_against_an_auth_server_exits_7(auth_sandbox, write_config) -> None:
    write_config()
    code, _, err = await asyncrun("run", "--remote", HELLO, "wf")
    assert code == 7 and "admin.authType" in _one_error_line(err), err


async def test_sandbox_start_auth_prints_a_test_client(tmp_path) -> None:
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    data_dir = tmp_path / "bg"
    args = ["--port", str(ports[0]), "--http-port", str(ports[1]), "--data-dir", str(data_dir)]
    code, out, err = await asyncrun("sandbox", "start", *args, "--auth", "--auth-token-lifetime", "30")
    try:
        assert code == 0, err
        secret = re.search(r"client secret: (\S+)", out)
        assert secret and "client id:     asyncrun-sandbox" in out
        assert stat.S_IMODE((data_dir / "sandbox.json").stat().st_mode) == 0o600
        assert secret.group(1) not in (data_dir / "sandbox.log").read_text()
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"http://127.0.0.1:{ports[1]}/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "asyncrun-sandbox",
                    "client_secret": secret.group(1),
                },
            )
        assert answer.status_code == 200 and answer.json()["expires_in"] == 30
    finally:
        await asyncrun("sandbox", "stop", "--data-dir", str(data_dir))


async def test_daemon_takes_up_auth_configured_after_it_first_saw_the_endpoint(
    auth_sandbox, write_config, monkeypatch
) -> None:
    # The daemon first meets the endpoint through a CLI without auth settings ...
    monkeypatch.delenv("FLYTECTL_CONFIG", raising=False)
    monkeypatch.setenv("FLYTE_PLATFORM_URL", auth_sandbox.info.endpoint)
    monkeypatch.setenv("FLYTE_PLATFORM_INSECURE", "true")
    code, out, err = await asyncrun("status", "nosuchrun")
    # Its lookup is refused (no credentials): the run's line says so, and the exit code is auth's.
    assert code == 7 and "nosuchrun  LOOKUP FAILED" in out, err
    assert "requires authentication" in err
    # ... then a CLI configured with ClientSecret waits through it.
    monkeypatch.delenv("FLYTE_PLATFORM_URL")
    monkeypatch.delenv("FLYTE_PLATFORM_INSECURE")
    write_config(
        authType="ClientSecret",
        clientId=auth_sandbox.info.auth_client_id,
        clientSecretLocation=str(auth_sandbox.secret_file),
    )
    code, out, err = await asyncrun("run", "--remote", "--wait", HELLO, "wf", "--name", "z")
    assert code == 0, err
    assert "HELLO Z" in out


@pytest.mark.parametrize("token_lifetime", [2.0])
async def test_daemon_renews_with_a_secret_from_the_clis_environment(
    auth_sandbox, write_config, tmp_path
) -> None:
    # The daemon runs already, started without the variable; only the waiting CLI has it.
    code, _, err = await asyncrun("daemon", "start")
    assert code == 0, err
    write_config(
        authType="ClientSecret",
        clientId=auth_sandbox.info.auth_client_id,
        clientSecretEnvVar="SANDBOX_CLIENT_SECRET",
    )
    module = sleepy_module(tmp_path)
    env = {**os.environ, "SANDBOX_CLIENT_SECRET": auth_sandbox.secret}
    with anyio.fail_after(120):
        result = await anyio.run_process(
            [ASYNCRUN, "run", "--remote", "--wait", str(module), "wf", "--seconds", "6"], env=env, check=False
        )
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    assert "slept 6.0" in out
    assert auth_sandbox.auth.tokens_issued >= 3  # the daemon renewed with the forwarded secret
    assert_no_leak(auth_sandbox.secret, out, err)
