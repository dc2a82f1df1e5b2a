"""The daemon's knobs, with defaults that are kind to a shared control plane.

Every knob can also come from an `ASYNCRUN_DAEMON_<NAME>` variable (upper-case field name), so a
daemon that a CLI starts in the background inherits what that CLI's environment asks for. Stdlib
only: the CLI imports it to start the daemon.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .._exceptions import ConfigError
from ._paths import default_journal_path, default_socket_path

ENV_PREFIX = "ASYNCRUN_DAEMON_"

# One line of help per knob, for `python -m asyncrun.daemon serve --help` and the CLI's options.
FIELD_HELP = {
    "socket_path": "Unix socket to serve on.",
    "journal_path": "SQLite journal of tracked executions.",
    "idle_timeout": "Exit after this many seconds with no connection and nothing to poll (0: never).",
    "min_interval": "Poll interval, in seconds, of a run that is young or just changed phase.",
    "max_interval": "Poll interval a long, unchanging run slows down to.",
    "page_size": "Execution names per ListExecutions call.",
    "page_concurrency": "List calls of one tick in flight at once.",
    "rate": "Admin calls per second per endpoint, shared by every poller and launch.",
    "burst": "Calls an idle endpoint may make at once.",
    "call_timeout": "Deadline of one poll call, in seconds; past it the endpoint counts as unreachable.",
    "backoff_base": "First backoff after a failed call, in seconds (doubles, with jitter).",
    "backoff_cap": "Longest backoff, in seconds.",
    "retention": "Seconds a finished run stays in the journal.",
}


@dataclass(frozen=True)
class DaemonSettings:
    """How one daemon serves and polls.

    Attributes:
        socket_path: the Unix socket CLIs connect to.
        journal_path: the SQLite journal of tracked executions.
        idle_timeout: exit after this many seconds with no connection and nothing left to poll.
        min_interval: poll interval of a run whose phase just changed (or was just tracked).
        max_interval: the interval a long, unchanging run slows down to.
        page_size: names per `ListExecutions` call (`value_in(name, …)`), and the call's limit.
        page_concurrency: list calls of one tick in flight at once.
        rate: admin calls per second per endpoint, shared by every poller and launch.
        burst: calls an idle endpoint may make at once before `rate` applies.
        call_timeout: deadline of one poll call; a call that passes it counts as unreachable.
        backoff_base, backoff_cap: exponential backoff with jitter after a failed call, in seconds.
        retention: seconds a finished run stays in the journal for `status` and late waiters.
    """

    socket_path: Path = field(default_factory=default_socket_path)
    journal_path: Path = field(default_factory=default_journal_path)
    idle_timeout: float = 300.0
    min_interval: float = 0.5
    max_interval: float = 10.0
    page_size: int = 100
    page_concurrency: int = 4
    rate: float = 20.0
    burst: float = 100.0
    call_timeout: float = 10.0
    backoff_base: float = 0.5
    backoff_cap: float = 15.0
    retention: float = 3 * 24 * 3600.0

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.max_interval:
            raise ConfigError("daemon intervals need 0 < min_interval <= max_interval")
        if self.page_size < 1 or self.page_concurrency < 1:
            raise ConfigError("daemon page_size and page_concurrency must be at least 1")
        if self.rate <= 0 or self.burst < 1:
            raise ConfigError("daemon rate must be positive and burst at least 1")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> DaemonSettings:
        """Defaults, then `ASYNCRUN_DAEMON_*` variables, then explicit `overrides` (not None)."""
        source = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "socket_path":
                continue  # ASYNCRUN_DAEMON_SOCKET is read by default_socket_path()
            raw = source.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)

    def as_args(self) -> list[str]:
        """Command-line options of `python -m asyncrun.daemon serve` that reproduce these settings."""
        args: list[str] = []
        for f in fields(self):
            args += [f"--{f.name.replace('_', '-')}", str(getattr(self, f.name))]
        return args


def _convert(name: str, raw: str) -> Any:
    kind = {f.name: f.type for f in fields(DaemonSettings)}[name]
    try:
        if kind == "Path":
            return Path(raw).expanduser()
        if kind == "int":
            return int(raw)
        return float(raw)
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
