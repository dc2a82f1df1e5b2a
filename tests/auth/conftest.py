"""Fixtures for authentication tests: a real `sandbox --auth` in the test's event loop, flytectl configs."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from asyncrun.sandbox._auth import AuthServer
    from asyncrun.sandbox._config import SandboxInfo


@dataclass
class AuthSandbox:
    info: SandboxInfo
    auth: AuthServer
    secret_file: Path

    @property
    def secret(self) -> str:
        return self.info.auth_client_secret


@pytest.fixture
def token_lifetime() -> float:
    """Override in a module (or parametrize) to make tokens expire quickly."""
    return 600.0


@pytest.fixture
async def auth_sandbox(tmp_path, token_lifetime) -> Any:
    from asyncrun.sandbox._config import SandboxConfig
    from asyncrun.sandbox._server import running_auth, running_sandbox

    config = SandboxConfig(
        data_dir=tmp_path / "sandbox",
        port=0,
        http_port=0,
        task_path=(str(Path(sys.executable).parent),),
        auth=True,
        auth_token_lifetime=token_lifetime,
    )
    async with running_sandbox(config) as info:
        secret_file = tmp_path / "client_secret"
        secret_file.write_text(info.auth_client_secret + "\n")
        secret_file.chmod(0o600)
        yield AuthSandbox(info, running_auth[info.port], secret_file)


@pytest.fixture
def write_config(auth_sandbox, tmp_path, monkeypatch):
    """Write a flytectl config for the auth sandbox with `admin:` extras; FLYTECTL_CONFIG points at it."""
    monkeypatch.delenv("FLYTE_PLATFORM_URL", raising=False)
    monkeypatch.delenv("FLYTE_PLATFORM_INSECURE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def write(**admin: Any) -> Path:
        path = tmp_path / "config.yaml"
        body = {"admin": {"endpoint": f"dns:///{auth_sandbox.info.endpoint}", "insecure": True, **admin}}
        path.write_text(yaml.safe_dump(body))
        monkeypatch.setenv("FLYTECTL_CONFIG", str(path))
        return path

    return write


@pytest.fixture
def client_secret_config(auth_sandbox, write_config):
    """ClientSecret with the sandbox's test client, the secret in a file."""
    return write_config(
        authType="ClientSecret",
        clientId=auth_sandbox.info.auth_client_id,
        clientSecretLocation=str(auth_sandbox.secret_file),
        scopes=["all"],
    )
