"""The Client's OAuth2 flows against a real `sandbox --auth` in the test's event loop."""

from __future__ import annotations

import os
import stat
import sys

import anyio
import httpx
import pytest

from asyncrun._exceptions import (
    AuthenticationError,
    ConfigError,
    InvalidCredentialsError,
    IssuerUnreachableError,
    MissingScopeError,
    TokenExpiredError,
)
from asyncrun.client import Client, ClientConfig, load_config
from asyncrun.client._token_cache import Token, cache_path, load, save

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]


def _config(auth_sandbox, **changes) -> ClientConfig:
    base = {
        "endpoint": auth_sandbox.info.endpoint,
        "source": "test",
        "auth_type": "ClientSecret",
        "client_id": auth_sandbox.info.auth_client_id,
        "client_secret_location": str(auth_sandbox.secret_file),
        "scopes": ("all",),
        "unreachable_timeout": 1.0,
    }
    return ClientConfig(**{**base, **changes})


async def test_client_secret_obtains_caches_and_reuses_a_token(auth_sandbox) -> None:
    config = _config(auth_sandbox)
    async with Client(config) as client:
        assert await client.list_entities("task") == []
        assert await client.list_entities("workflow") == []
    assert auth_sandbox.auth.tokens_issued == 1
    path = cache_path(config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    async with Client(config) as again:  # another process would read the same file
        await again.list_entities("task")
    assert auth_sandbox.auth.tokens_issued == 1


async def test_a_refused_token_is_renewed_once(auth_sandbox) -> None:
    async with Client(_config(auth_sandbox)) as client:
        await client.list_entities("task")
        auth_sandbox.auth.revoke_access_tokens()  # the server forgets it: the next call is UNAUTHENTICATED
        await client.list_entities("task")
    assert auth_sandbox.auth.tokens_issued == 2


@pytest.mark.parametrize("token_lifetime", [1.0])
async def test_short_lived_tokens_are_renewed_before_they_expire(auth_sandbox) -> None:
    async with Client(_config(auth_sandbox)) as client:
        for _ in range(4):
            await client.list_entities("task")
            await anyio.sleep(0.6)
    assert auth_sandbox.auth.tokens_issued >= 2


async def test_wrong_secret(auth_sandbox) -> None:
    auth_sandbox.secret_file.write_text("not-the-secret")
    with pytest.raises(InvalidCredentialsError) as info:
        async with Client(_config(auth_sandbox)) as client:
            await client.list_entities("task")
    assert "not-the-secret" not in str(info.value) and auth_sandbox.secret not in str(info.value)
    assert info.value.exit_code == 8


async def test_missing_scope(auth_sandbox) -> None:
    with pytest.raises(MissingScopeError) as info:
        async with Client(_config(auth_sandbox, scopes=("offline",))) as client:
            await client.list_entities("task")
    assert "admin.scopes" in str(info.value) and info.value.exit_code == 10


async def test_unreachable_issuer_is_bounded(auth_sandbox) -> None:
    with anyio.fail_after(20):
        with pytest.raises(IssuerUnreachableError) as info:
            async with Client(_config(auth_sandbox, token_url="http://127.0.0.1:9/token")) as client:
                await client.list_entities("task")
    assert info.value.exit_code == 11


async def test_no_auth_configured_against_an_auth_server(auth_sandbox) -> None:
    with pytest.raises(AuthenticationError) as info:
        async with Client(ClientConfig(endpoint=auth_sandbox.info.endpoint, source="test")) as client:
            await client.list_entities("task")
    assert "admin.authType" in str(info.value) and info.value.exit_code == 7


async def test_secret_from_an_environment_variable(auth_sandbox, monkeypatch) -> None:
    monkeypatch.setenv("MY_FLYTE_SECRET", auth_sandbox.secret)
    config = _config(auth_sandbox, client_secret_location=None, client_secret_env_var="MY_FLYTE_SECRET")
    async with Client(config) as client:
        assert await client.list_entities("task") == []
    monkeypatch.delenv("MY_FLYTE_SECRET")
    with pytest.raises(ConfigError, match="MY_FLYTE_SECRET"):
        async with Client(config.with_overrides(scopes=("all", "offline"))) as client:
            await client.list_entities("task")


async def _approve_when_prompted(prompts: list[str], issuer: str, ready: anyio.Event) -> None:
    await ready.wait()
    user_code = prompts[-1].rsplit(" ", 1)[-1]
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{issuer}/oauth2/device/verify", data={"user_code": user_code})
        assert answer.status_code == 200


async def test_device_flow_prompts_then_refreshes_without_the_user(auth_sandbox) -> None:
    prompts: list[str] = []
    ready = anyio.Event()

    def prompt(message: str) -> None:
        prompts.append(message)
        ready.set()

    config = _config(
        auth_sandbox, auth_type="DeviceFlow", client_id="", client_secret_location=None, scopes=()
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(_approve_when_prompted, prompts, auth_sandbox.info.auth_issuer, ready)
        async with Client(config, auth_prompt=prompt) as client:
            assert await client.list_entities("task") == []
    assert len(prompts) == 1 and f"{auth_sandbox.info.auth_issuer}/oauth2/device/verify" in prompts[0]
    # The daemon's view: no prompting allowed; the cached token is refreshed with its refresh token.
    auth_sandbox.auth.revoke_access_tokens()
    daemon_config = config.with_overrides(interactive=False)
    async with Client(daemon_config, auth_prompt=prompts.append) as daemon_client:
        await daemon_client.list_entities("task")
    assert len(prompts) == 1
    # Once the refresh token is gone too, the daemon says so in one line instead of prompting.
    auth_sandbox.auth.revoke_access_tokens()
    auth_sandbox.auth.revoke_refresh_tokens()
    with anyio.fail_after(20), pytest.raises(TokenExpiredError) as info:
        async with Client(daemon_config, auth_prompt=prompts.append) as daemon_client:
            await daemon_client.list_entities("task")
    assert len(prompts) == 1 and "sign in again" in str(info.value) and info.value.exit_code == 9


async def test_pkce_flow_with_a_loopback_redirect(auth_sandbox) -> None:
    urls: list[str] = []
    ready = anyio.Event()

    def prompt(message: str) -> None:
        urls.append(message.rsplit(" ", 1)[-1])
        ready.set()

    async def browser() -> None:
        await ready.wait()
        async with httpx.AsyncClient(follow_redirects=True) as http:
            page = await http.get(urls[0])
        assert page.status_code == 200 and "Signed in" in page.text

    config = _config(auth_sandbox, auth_type="Pkce", client_id="", client_secret_location=None, scopes=())
    async with anyio.create_task_group() as tg:
        tg.start_soon(browser)
        async with Client(config, auth_prompt=prompt) as client:
            assert await client.list_entities("task") == []
    assert urls[0].startswith(f"{auth_sandbox.info.auth_issuer}/oauth2/authorize?")
    assert "code_challenge_method=S256" in urls[0]


@pytest.mark.parametrize("token_lifetime", [1.0])
async def test_external_command_token_and_an_expired_one(auth_sandbox, tmp_path) -> None:
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
    script = tmp_path / "token.sh"
    script.write_text(f"#!/bin/sh\necho {body['access_token']}\n")
    script.chmod(0o700)
    config = _config(auth_sandbox, auth_type="ExternalCommand", auth_command=(str(script),))
    async with Client(config) as client:
        assert await client.list_entities("task") == []
    await anyio.sleep(1.2)
    with anyio.fail_after(20), pytest.raises(TokenExpiredError) as expired:
        async with Client(config) as client:
            await client.list_entities("task")
    assert body["access_token"] not in str(expired.value) and expired.value.exit_code == 9


async def test_failing_external_command(auth_sandbox, tmp_path) -> None:
    config = _config(
        auth_sandbox, auth_type="ExternalCommand", auth_command=(sys.executable, "-c", "exit(3)")
    )
    with pytest.raises(InvalidCredentialsError, match="exit status 3"):
        async with Client(config) as client:
            await client.list_entities("task")


# ---------------------------------------------------------------- config and cache, no server


def test_flytectl_auth_keys_are_read(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    (tmp_path / "secret").write_text("s3cr3t")
    path.write_text(
        "admin:\n  endpoint: dns:///flyte.example.com:443\n  authType: ClientSecret\n  clientId: my-app\n"
        "  clientSecretLocation: secret\n  scopes: [all, offline]\n  audience: https://flyte\n"
    )
    config = load_config(path, env={})
    assert (config.auth_type, config.client_id, config.scopes, config.audience) == (
        "ClientSecret",
        "my-app",
        ("all", "offline"),
        "https://flyte",
    )
    assert config.client_secret_location == str(tmp_path / "secret")
    assert "s3cr3t" not in repr(config)
    path.write_text("admin:\n  endpoint: x:1\n  authType: ExternalCommand\n  command: [get-token, --json]\n")
    assert load_config(path, env={}).auth_command == ("get-token", "--json")
    path.write_text("admin:\n  endpoint: x:1\n  authType: DeviceFlow\n")
    assert load_config(path, env={}).auth_type == "DeviceFlow"


@pytest.mark.parametrize(
    ("admin", "message"),
    [
        ("authType: Magic", "not supported"),
        ("authType: ClientSecret", "needs admin.clientId"),
        ("authType: ClientSecret\n  clientId: a", "clientSecretLocation"),
        ("authType: ExternalCommand", "needs admin.command"),
    ],
)
def test_bad_auth_config_is_a_config_error(tmp_path, admin, message) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"admin:\n  endpoint: x:1\n  {admin}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path, env={})


def test_token_cache_is_private_and_ignores_files_others_can_read(tmp_path) -> None:
    path = tmp_path / "auth" / "t.json"
    token = Token("access-123", "refresh-456", expires_at=2e9, issued_at=1e9)
    save(path, token, "h:1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load(path) == token
    assert "access-123" not in repr(token) and "refresh-456" not in repr(token)
    os.chmod(path, 0o644)
    assert load(path) is None


async def test_unauthenticated_use_loads_no_auth_code(sandbox_env) -> None:
    code = (
        "import sys, anyio\n"
        "from asyncrun import Client\n"
        "async def main():\n"
        "    async with Client.from_config() as client:\n"
        "        await client.list_entities('task')\n"
        "anyio.run(main)\n"
        "auth = ('asyncrun.client._auth', 'asyncrun.client._oauth', 'httpx')\n"
        "loaded = [m for m in auth if m in sys.modules]\n"
        "print(','.join(loaded) or 'none')\n"
    )
    result = await anyio.run_process([sys.executable, "-c", code], check=False, env=dict(os.environ))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip() == "none"
