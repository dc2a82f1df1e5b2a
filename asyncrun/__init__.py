"""asyncrun: run Flyte tasks, workflows and launch plans locally or on FlyteAdmin, async-first.

Names are loaded on first use (PEP 562), so `import asyncrun` stays cheap: the gRPC stack is only
imported when a client is.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._exceptions import AsyncrunError as AsyncrunError
    from ._exceptions import RecoverableError as RecoverableError
    from .client import Client as Client
    from .sdk import Directory as Directory
    from .sdk import File as File
    from .sdk import LaunchPlan as LaunchPlan
    from .sdk import Resources as Resources
    from .sdk import Secret as Secret
    from .sdk import approve as approve
    from .sdk import conditional as conditional
    from .sdk import dynamic as dynamic
    from .sdk import get_secret as get_secret
    from .sdk import map_task as map_task
    from .sdk import sleep as sleep
    from .sdk import task as task
    from .sdk import wait_for_input as wait_for_input
    from .sdk import workflow as workflow

__all__ = (
    "AsyncrunError",
    "Client",
    "Directory",
    "File",
    "LaunchPlan",
    "RecoverableError",
    "Resources",
    "Secret",
    "__version__",
    "approve",
    "conditional",
    "dynamic",
    "get_secret",
    "map_task",
    "sleep",
    "task",
    "wait_for_input",
    "workflow",
)

_LAZY = {
    "AsyncrunError": "._exceptions",
    "Client": ".client",
    "Directory": ".sdk",
    "File": ".sdk",
    "LaunchPlan": ".sdk",
    "RecoverableError": "._exceptions",
    "Resources": ".sdk",
    "Secret": ".sdk",
    "approve": ".sdk",
    "conditional": ".sdk",
    "dynamic": ".sdk",
    "get_secret": ".sdk",
    "map_task": ".sdk",
    "sleep": ".sdk",
    "task": ".sdk",
    "wait_for_input": ".sdk",
    "workflow": ".sdk",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'asyncrun' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
