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
SANDBOX_CONSOLE = "http://localhost:30081"
_TRUE = {"1", "true", "yes", "y", "on", "t"}


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
        )
    url = env.get("FLYTE_PLATFORM_URL")
    if url:
        insecure = env.get("FLYTE_PLATFORM_INSECURE", "").lower() in _TRUE
        config = replace(config, endpoint=_clean_endpoint(url), insecure=insecure, source="environment")
    project = env.get("FLYTE_DEFAULT_PROJECT")
    domain = env.get("FLYTE_DEFAULT_DOMAIN")
    return config.with_overrides(project=project or None, domain=domain or None)
