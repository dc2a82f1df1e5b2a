"""`import asyncrun` stays cheap: the gRPC/protobuf stack, the HTTP client and YAML load on first use."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("grpclib", "betterproto2", "httpx", "yaml")


@cache
def _imported_modules(statement: str) -> frozenset[str]:
    """Top-level names of every module imported by `statement` in a fresh interpreter (from -X importtime)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{statement!r} failed:\n{result.stderr[-3000:]}"
    names: set[str] = set()
    for line in result.stderr.splitlines():
        # "import time:       123 |        456 |     package.module"
        if not line.startswith("import time:"):
            continue
        parts = line.split("|")
        if len(parts) != 3 or not parts[0].split(":")[1].strip().isdigit():
            continue  # the header line
        names.add(parts[2].strip().split(".")[0])
    return frozenset(names)


@pytest.mark.parametrize("module", HEAVY, ids=str)
def test_import_asyncrun_does_not_import(module: str) -> None:
    imported = _imported_modules("import asyncrun")
    assert "asyncrun" in imported
    assert module not in imported, f"`import asyncrun` imports {module}; load it lazily"


def test_the_probe_sees_heavy_imports() -> None:
    # Guards against a parser that never finds anything: the generated protos do pull betterproto2.
    imported = _imported_modules("from asyncrun._proto.flyteidl import core; core.Identifier")
    assert "betterproto2" in imported
