"""Sandbox settings and the state file a running sandbox leaves in its data dir (cheap to import)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .._paths import state_home

DEFAULT_PORT = 30080
DEFAULT_HTTP_PORT = 30081
STATE_FILE = "sandbox.json"


def default_data_dir() -> Path:
    """`$ASYNCRUN_HOME/sandbox` (ASYNCRUN_HOME defaults to `$XDG_STATE_HOME/asyncrun`)."""
    return state_home() / "sandbox"


@dataclass(frozen=True)
class SandboxConfig:
    """How to run the sandbox. Port 0 picks a free port.

    `blob_store` is "" (blobs and execution data in `data_dir`) or `s3://bucket[/prefix]` (in S3, as
    a real deployment keeps them; `s3_endpoint` for an S3-compatible server, see `_objectstore`).
    """

    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    http_port: int = DEFAULT_HTTP_PORT
    rpc_delay_ms: int = 0
    task_path: tuple[str, ...] = ()
    max_upload_bytes: int = 2 << 30
    blob_store: str = ""
    s3_endpoint: str = ""
    auth: bool = False  # an OAuth2 server like FlyteAdmin's; every RPC then needs a bearer token
    auth_token_lifetime: float = 600.0  # seconds an access token is valid


@dataclass(frozen=True)
class SandboxInfo:
    """Where a running sandbox answers; also what `sandbox.json` in its data dir holds."""

    pid: int
    host: str
    port: int
    http_port: int
    started_at: float
    data_dir: str
    # With `auth`: the issuer (HTTP base URL) and the confidential test client.
    auth_issuer: str = ""
    auth_client_id: str = ""
    auth_client_secret: str = field(default="", repr=False)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def console_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/console"

    @classmethod
    def read(cls, data_dir: Path) -> SandboxInfo | None:
        try:
            return cls(**json.loads((data_dir / STATE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self) -> None:
        path = Path(self.data_dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        # 0600: with --auth it holds the test client's secret.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(asdict(self)))
        os.replace(tmp, path)
