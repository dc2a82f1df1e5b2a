"""A value computed once per test run and shared by pytest-xdist's workers (each worker is its own
process): the first worker to ask computes it under a file lock, the others wait and read it."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_VALUES: dict[str, Any] = {}


def once_per_run(key: str, compute: Callable[[], Any]) -> Any:
    """`compute()` (JSON-able) for `key`, computed once per test run (once per process without xdist)."""
    if key not in _VALUES:
        _VALUES[key] = _shared(key, compute)
    return _VALUES[key]


def _shared(key: str, compute: Callable[[], Any]) -> Any:
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        return compute()
    folder = Path(tempfile.gettempdir()) / f"asyncrun-tests-{os.getuid()}" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / f"{key}.json"
    with open(folder / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stored.exists():
            stored.write_text(json.dumps(compute()))
        return json.loads(stored.read_text())
