from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end tests (`@pytest.mark.e2e`: a wheel, a fresh virtualenv, the default sandbox ports)
    run last, after the quick feedback of everything else."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    """Every test gets its own state folder (caches, journals, its own daemon); a daemon the test
    started is stopped afterwards."""
    monkeypatch.setenv("ASYNCRUN_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ASYNCRUN_DAEMON_SOCKET", raising=False)
    yield
    from asyncrun.daemon._paths import default_socket_path

    socket_path = default_socket_path()
    if socket_path.exists():
        import anyio

        from asyncrun.daemon import stop_daemon

        anyio.run(lambda: stop_daemon(socket_path=socket_path, grace=5))


@pytest.fixture
async def sandbox(tmp_path):
    """A real sandbox (gRPC + HTTP on loopback, free ports) in this event loop; task processes find
    `asyncrun-execute` and `pyflyte-execute` next to this Python."""
    import sys
    from pathlib import Path

    from asyncrun.sandbox._config import SandboxConfig
    from asyncrun.sandbox._server import running_sandbox

    config = SandboxConfig(
        data_dir=tmp_path / "sandbox", port=0, http_port=0, task_path=(str(Path(sys.executable).parent),)
    )
    async with running_sandbox(config) as info:
        yield info


@pytest.fixture
def sandbox_env(sandbox, monkeypatch, tmp_path):
    """Point FLYTE_PLATFORM_URL at the test sandbox, with no user config in the way."""
    monkeypatch.setenv("FLYTE_PLATFORM_URL", sandbox.endpoint)
    monkeypatch.setenv("FLYTE_PLATFORM_INSECURE", "true")
    monkeypatch.delenv("FLYTECTL_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return sandbox
