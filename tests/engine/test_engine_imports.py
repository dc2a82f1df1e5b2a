"""The engine stays light: local runs use it, so it must not load protos, gRPC or the sandbox."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("grpclib", "betterproto2", "httpx", "yaml", "fsspec")


def test_importing_the_engine_and_the_local_executor_loads_nothing_heavy() -> None:
    code = "import sys; import asyncrun.engine, asyncrun.sdk._executor; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(out.split())
    heavy = sorted(
        m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(("asyncrun._proto", "asyncrun.sandbox"))
    )
    assert "asyncrun.engine._engine" in loaded  # the check sees what was imported
    assert heavy == []
