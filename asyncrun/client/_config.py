"""Where the control plane is: flytectl's YAML, `FLYTE_PLATFORM_*` variables, or the local sandbox."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

SANDBOX_ENDPOINT = "localhost:30080"
SANDBOX_CONSOLE = "http://127.0.0.1:30081"  # where the sandbox binds and what its banner says
_TRUE = {"1", "true", "yes", "y", "on", "t"}
AUTH_TYPES = ("ClientSecret", "Pkce", "DeviceFlow", "ExternalCommand")


@dataclass(frozen=True)
class ClientConfig:
    """How to reach FlyteAdmin.

    Attributes:
        endpoint: `host:port` of the gRPC API.
        insecure: plain-text gRPC (no TLS).
        console_endpoint: base URL of the web console (default derived from the endpoint).
        ca_cert_path: PEM bundle to trust instead of the system roots.
        project, domain: defaults for calls that name neither.
        call_timeout: per-call deadline in seconds.
        unreachable_timeout: how long to keep retrying a control plane that does not answer.
        source: where this configuration came from (a path, "environment" or "default sandbox").
        auth_type: flytectl's `admin.authType`: "ClientSecret", "Pkce", "DeviceFlow",
            "ExternalCommand", or "" for no authentication.
        client_id: `admin.clientId` (Pkce and DeviceFlow default to the server's public client).
        client_secret_location: `admin.clientSecretLocation`, a file holding the client secret.
        client_secret_env_var: `admin.clientSecretEnvVar`, a variable holding the client secret.
        scopes: `admin.scopes` (default: what the server's public client config lists).
        audience: `admin.audience`, sent with token requests when set.
        auth_command: `admin.command`, run for ExternalCommand; its stdout is the token.
        token_url: `admin.tokenUrl`, the token endpoint (default: discovered from FlyteAdmin).
        auth_timeout: seconds for one request to the issuer, and for running `auth_command`.
        interactive: whether a flow that needs the user (Pkce, DeviceFlow) may start; the daemon
            sets False and relies on cached and refreshed tokens.

    The client secret itself is never stored here, only where to read it.
    """

    endpoint: str = SANDBOX_ENDPOINT
    insecure: bool = True
    console_endpoint: str = ""
    ca_cert_path: str | None = None
    project: str = "flytesnacks"
    domain: str = "development"
    call_timeout: float = 30.0
    unreachable_timeout: float = 5.0
    source: str = "default sandbox"
    auth_type: str = ""
    client_id: str = ""
    client_secret_location: str | None = None
    client_secret_env_var: str | None = None
    scopes: tuple[str, ...] = ()
    audience: str = ""
    auth_command: tuple[str, ...] = ()
    token_url: str = ""
    auth_timeout: float = 15.0
    interactive: bool = True

    def __post_init__(self) -> None:
        # Restored from JSON (the daemon's journal) lists arrive where tuples are declared.
        object.__setattr__(self, "scopes", tuple(self.scopes))
        object.__setattr__(self, "auth_command", tuple(self.auth_command))
        if self.auth_type and self.auth_type not in AUTH_TYPES:
            raise ConfigError(
                f"admin.authType {self.auth_type!r} is not supported; use one of {', '.join(AUTH_TYPES)}"
            )

    @property
    def is_default_sandbox(self) -> bool:
        return self.source == "default sandbox"

    @property
    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.endpoint.rpartition(":")
        if not sep or not port.isdigit():
            return self.endpoint, 80 if self.insecure else 443
        return host.strip("[]"), int(port)

    @property
    def console_url(self) -> str:
        """Base URL of execution pages: `<console>/projects/<p>/domains/<d>/executions/<name>`."""
        base = self.console_endpoint
        if not base:
            base = (
                SANDBOX_CONSOLE
                if self.is_default_sandbox
                else f"{'http' if self.insecure else 'https'}://{self.endpoint}"
            )
        return base.rstrip("/") + "/console"

    def with_overrides(self, **changes: Any) -> ClientConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _clean_endpoint(value: str) -> str:
    for prefix in ("dns:///", "grpc://", "grpcs://", "dns://"):
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _config_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        return path
    from_env = env.get("FLYTECTL_CONFIG")
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise ConfigError(f"FLYTECTL_CONFIG points to {from_env}, which does not exist")
        return path
    default = Path(env.get("HOME", str(Path.home()))) / ".flyte" / "config.yaml"
    return default if default.is_file() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} is not a mapping")
    return data


def _strings(value: Any, key: str, found: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return tuple(str(v) for v in value)
    raise ConfigError(f"config {found}: admin.{key} must be a list of strings")


def _auth_settings(admin: dict[str, Any], found: Path) -> dict[str, Any]:
    """flytectl's auth keys of `admin:`; an `authType` of "" or absent means no authentication."""
    auth_type = str(admin.get("authType") or "")
    if not auth_type:
        return {}
    if auth_type not in AUTH_TYPES:
        supported = ", ".join(AUTH_TYPES)
        raise ConfigError(
            f"config {found}: admin.authType {auth_type!r} is not supported; use one of {supported}"
        )
    settings: dict[str, Any] = {
        "auth_type": auth_type,
        "client_id": str(admin.get("clientId") or ""),
        "client_secret_location": str(admin["clientSecretLocation"])
        if admin.get("clientSecretLocation")
        else None,
        "client_secret_env_var": (
            str(admin["clientSecretEnvVar"]) if admin.get("clientSecretEnvVar") else None
        ),
        "scopes": _strings(admin.get("scopes"), "scopes", found),
        "audience": str(admin.get("audience") or ""),
        "auth_command": _strings(admin.get("command"), "command", found),
        "token_url": str(admin.get("tokenUrl") or ""),
    }
    if auth_type == "ClientSecret" and not settings["client_id"]:
        raise ConfigError(f"config {found}: admin.authType ClientSecret needs admin.clientId")
    if auth_type == "ClientSecret" and not (
        settings["client_secret_location"] or settings["client_secret_env_var"]
    ):
        raise ConfigError(
            f"config {found}: admin.authType ClientSecret needs admin.clientSecretLocation "
            "or admin.clientSecretEnvVar"
        )
    if auth_type == "ExternalCommand" and not settings["auth_command"]:
        raise ConfigError(f"config {found}: admin.authType ExternalCommand needs admin.command")
    if settings["client_secret_location"]:
        settings["client_secret_location"] = str(
            (found.parent / Path(settings["client_secret_location"]).expanduser()).resolve()
        )
    return settings


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> ClientConfig:
    """Resolve the configuration: `path` → `$FLYTECTL_CONFIG` → `~/.flyte/config.yaml`, then
    `FLYTE_PLATFORM_URL` / `FLYTE_PLATFORM_INSECURE` on top; nothing at all means the local sandbox."""
    env = os.environ if env is None else env
    config = ClientConfig()
    found = _config_path(path, env)
    if found is not None:
        data = _read_yaml(found)
        admin = data.get("admin") or {}
        console = data.get("console") or {}
        if not isinstance(admin, dict) or not admin.get("endpoint"):
            raise ConfigError(f"config {found} has no admin.endpoint")
        config = ClientConfig(
            endpoint=_clean_endpoint(str(admin["endpoint"])),
            insecure=bool(admin.get("insecure", False)),
            console_endpoint=str(console.get("endpoint", "") if isinstance(console, dict) else ""),
            ca_cert_path=admin.get("caCertFilePath") or None,
            source=str(found),
            **_auth_settings(admin, found),
        )
    url = env.get("FLYTE_PLATFORM_URL")
    if url:
        insecure = env.get("FLYTE_PLATFORM_INSECURE", "").lower() in _TRUE
        config = replace(config, endpoint=_clean_endpoint(url), insecure=insecure, source="environment")
    project = env.get("FLYTE_DEFAULT_PROJECT")
    domain = env.get("FLYTE_DEFAULT_DOMAIN")
    return config.with_overrides(project=project or None, domain=domain or None)
