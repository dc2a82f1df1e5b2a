"""asyncrun.daemon: one per user, many waits, one batched poller, nothing lost.

The CLI side (`DaemonConnection`, `wait`, `status`, `watch`, `start_daemon`, …) imports only the
stdlib and anyio; the daemon side (`serve`, `running_daemon`) imports the gRPC client. Names load
on first use (PEP 562), so `import asyncrun.daemon` costs almost nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._connect import DaemonConnection as DaemonConnection
    from ._connect import DaemonDisconnectedError as DaemonDisconnectedError
    from ._connect import ExecutionState as ExecutionState
    from ._connect import LaunchResult as LaunchResult
    from ._connect import StatusResult as StatusResult
    from ._connect import WaitResult as WaitResult
    from ._connect import status as status
    from ._connect import wait as wait
    from ._connect import watch as watch
    from ._control import DaemonStatus as DaemonStatus
    from ._control import start as start_daemon
    from ._control import status as daemon_status
    from ._control import stop as stop_daemon
    from ._oneshot import status as status_now
    from ._paths import default_socket_path as default_socket_path
    from ._protocol import DaemonError as DaemonError
    from ._protocol import DaemonRequestError as DaemonRequestError
    from ._protocol import DaemonUnavailableError as DaemonUnavailableError
    from ._protocol import Target as Target
    from ._server import running_daemon as running_daemon
    from ._server import serve as serve
    from ._settings import DaemonSettings as DaemonSettings

__all__ = (
    "DaemonConnection",
    "DaemonDisconnectedError",
    "DaemonError",
    "DaemonRequestError",
    "DaemonSettings",
    "DaemonStatus",
    "DaemonUnavailableError",
    "ExecutionState",
    "LaunchResult",
    "StatusResult",
    "Target",
    "WaitResult",
    "daemon_status",
    "default_socket_path",
    "running_daemon",
    "serve",
    "start_daemon",
    "status",
    "status_now",
    "stop_daemon",
    "track",
    "wait",
    "watch",
)

_LAZY = {
    "DaemonConnection": ("._connect", "DaemonConnection"),
    "DaemonDisconnectedError": ("._connect", "DaemonDisconnectedError"),
    "DaemonError": ("._protocol", "DaemonError"),
    "DaemonRequestError": ("._protocol", "DaemonRequestError"),
    "DaemonSettings": ("._settings", "DaemonSettings"),
    "DaemonStatus": ("._control", "DaemonStatus"),
    "DaemonUnavailableError": ("._protocol", "DaemonUnavailableError"),
    "ExecutionState": ("._connect", "ExecutionState"),
    "LaunchResult": ("._connect", "LaunchResult"),
    "StatusResult": ("._connect", "StatusResult"),
    "Target": ("._protocol", "Target"),
    "WaitResult": ("._connect", "WaitResult"),
    "daemon_status": ("._control", "status"),
    "default_socket_path": ("._paths", "default_socket_path"),
    "running_daemon": ("._server", "running_daemon"),
    "serve": ("._server", "serve"),
    "start_daemon": ("._control", "start"),
    "status": ("._connect", "status"),
    "status_now": ("._oneshot", "status"),
    "stop_daemon": ("._control", "stop"),
    "track": ("._connect", "track"),
    "wait": ("._connect", "wait"),
    "watch": ("._connect", "watch"),
}


def __getattr__(name: str) -> Any:
    entry = _LAZY.get(name)
    if entry is None:
        raise AttributeError(f"module 'asyncrun.daemon' has no attribute {name!r}")
    value = getattr(import_module(entry[0], __name__), entry[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
