from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    """Every test gets its own state folder, so caches and journals never leak between tests."""
    monkeypatch.setenv("ASYNCRUN_HOME", str(tmp_path / "state"))
