"""The sandbox: a single-machine FlyteAdmin (gRPC AdminService + DataProxyService, SQLite, blobs,
signed-URL HTTP, a console) that runs registered tasks as local processes. See docs/sandbox.md.

```python
async with running_sandbox(SandboxConfig(data_dir=path, port=0, http_port=0)) as info:
    print(info.endpoint, info.console_url)
```

Names load on first use, so importing this package does not pull in the servers.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config import SandboxConfig as SandboxConfig
    from ._config import SandboxInfo as SandboxInfo
    from ._control import ensure_running as ensure_running
    from ._server import running_sandbox as running_sandbox
    from ._server import serve as serve

__all__ = ("SandboxConfig", "SandboxInfo", "ensure_running", "running_sandbox", "serve")

_LAZY = {
    "SandboxConfig": "._config",
    "SandboxInfo": "._config",
    "ensure_running": "._control",
    "running_sandbox": "._server",
    "serve": "._server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'asyncrun.sandbox' has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)
