"""Where the control plane is: flytectl's YAML, `FLYTE_PLATFORM_*` variables, or the local sandbox."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

SANDBOX_PORT = 30080
SANDBOX_HTTP_PORT = 30081
SANDBOX_ENDPOINT = f"localhost:{SANDBOX_PORT}"
SANDBOX_CONSOLE = f"http://127.0.0.1:{SANDBOX_HTTP_PORT}"  # where the sandbox binds and what its banner says
CONNECT_TIMEOUT = 5.0
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
        connect_timeout: seconds to set up a connection (TCP, TLS and the server's first HTTP/2
            frame); a server that accepts TCP and never answers fails after this long.
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
    connect_timeout: float = CONNECT_TIMEOUT
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
        changes = {k: v for k, v in changes.items() if v is not None}
        if self.is_default_sandbox and changes.get("source", self.source) != self.source:
            # The sandbox's console goes with the sandbox's endpoint, not with another one.
            changes.setdefault("console_endpoint", "")
        return replace(self, **changes)


def _clean_endpoint(value: str) -> str:
    """`host:port` from what people write: flytekit strips `dns:///`, `http://` and `https://` too
    (the scheme does not choose TLS: `admin.insecure` does)."""
    value = value.strip()
    for prefix in ("dns:///", "grpc://", "grpcs://", "dns://", "https://", "http://"):
        if value.lower().startswith(prefix):
            value = value[len(prefix) :]
            break
    return value.rstrip("/")


def _port(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name} must be a port number from 1 to 65535, not {raw!r}")
    return int(raw)


def sandbox_ports(env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """The zero-config sandbox's (gRPC, HTTP) ports: `ASYNCRUN_SANDBOX_PORT` (default 30080) and
    `ASYNCRUN_SANDBOX_HTTP_PORT` (default: the gRPC port + 1, i.e. 30081)."""
    env = os.environ if env is None else env
    port = _port(env, "ASYNCRUN_SANDBOX_PORT") or SANDBOX_PORT
    http_port = _port(env, "ASYNCRUN_SANDBOX_HTTP_PORT") or port + 1
    if http_port == port or http_port > 65535:
        raise ConfigError(
            f"the sandbox needs two ports: set ASYNCRUN_SANDBOX_HTTP_PORT to a port other than {port}"
        )
    return port, http_port


def parse_seconds(value: Any, what: str) -> float:
    """A positive duration: a number of seconds, or flytectl's style `500ms`, `5s`, `1m`."""
    text = str(value).strip().lower()
    scale = 1.0
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    try:
        seconds = float(text) * scale
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ConfigError(f"{what} must be a positive duration such as 5 or 5s, not {value!r}")
    return seconds


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
        if admin.get("connectTimeout") is not None:
            timeout = parse_seconds(admin["connectTimeout"], f"config {found}: admin.connectTimeout")
            config = replace(config, connect_timeout=timeout)
    url = env.get("FLYTE_PLATFORM_URL")
    if url:
        insecure = env.get("FLYTE_PLATFORM_INSECURE", "").lower() in _TRUE
        config = replace(config, endpoint=_clean_endpoint(url), insecure=insecure, source="environment")
    if config.is_default_sandbox:
        port, http_port = sandbox_ports(env)
        config = replace(
            config, endpoint=f"localhost:{port}", console_endpoint=f"http://127.0.0.1:{http_port}"
        )
    if env.get("ASYNCRUN_CONNECT_TIMEOUT", "").strip():
        timeout = parse_seconds(env["ASYNCRUN_CONNECT_TIMEOUT"], "ASYNCRUN_CONNECT_TIMEOUT")
        config = replace(config, connect_timeout=timeout)
    project, domain = default_scope(env)
    return config.with_overrides(project=project, domain=domain)


def default_scope(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The project and domain of calls that name neither, the one rule every command follows:
    `$FLYTE_DEFAULT_PROJECT`, else `$FLYTE_LOCAL_PROJECT` (pyflyte's fallback), else `flytesnacks`;
    the same for the domain (`development`)."""
    env = os.environ if env is None else env

    def first(*names: str, fallback: str) -> str:
        return next((env[name] for name in names if env.get(name)), fallback)

    return (
        first("FLYTE_DEFAULT_PROJECT", "FLYTE_LOCAL_PROJECT", fallback=ClientConfig.project),
        first("FLYTE_DEFAULT_DOMAIN", "FLYTE_LOCAL_DOMAIN", fallback=ClientConfig.domain),
    )
