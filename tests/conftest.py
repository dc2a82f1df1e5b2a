from __future__ import annotations

import os

import pytest

# Prerequisites outside Python that some tests need; a missing one fails its tests (saying how to
# install it) unless its opt-out variable is set, and every opted-out one is listed at the end.
PREREQUISITES = {
    "chromium": (
        "ASYNCRUN_SKIP_CHROMIUM",
        "headless Chromium renders the sandbox console's pages",
        "`sudo apt-get install chromium` on Debian/Ubuntu (.ci/run installs it)",
    ),
}
_SKIPPED_PREREQUISITES: dict[str, list[str]] = {}
_MISSING = "asyncrun-missing-prerequisite"


@pytest.fixture
def require(request):
    """`require(name, present)`: fail the test if prerequisite `name` is missing, saying how to install
    it, or skip it (and list it at the end of the run) if its opt-out variable is set to 1."""
    return lambda name, present: _require(name, present, request.node)


def _require(name: str, present: bool, node: pytest.Item) -> None:
    if present:
        return
    opt_out, why, install = PREREQUISITES[name]
    if os.environ.get(opt_out) == "1":
        # Reported with the test (to pytest-xdist's controller too) and listed at the end of the run.
        node.user_properties.append((_MISSING, name))
        pytest.skip(f"{name} is not installed and {opt_out}=1: {why}; to run this test: {install}")
    pytest.fail(
        f"{name} is not installed: {why}. Install it: {install}; or set {opt_out}=1 to skip this test.",
        pytrace=False,
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, name in report.user_properties:
        if key == _MISSING and report.skipped:
            _SKIPPED_PREREQUISITES.setdefault(name, []).append(report.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say loudly which tests did not run for want of a prerequisite, and how to run them."""
    if not _SKIPPED_PREREQUISITES:
        return
    terminalreporter.section("TESTS NOT RUN: missing prerequisites", sep="!", yellow=True, bold=True)
    for name, nodeids in sorted(_SKIPPED_PREREQUISITES.items()):
        opt_out, why, install = PREREQUISITES[name]
        terminalreporter.write_line(
            f"{len(nodeids)} test(s) skipped because {name} is missing ({opt_out}=1): {why}. "
            f"To run them: {install}, and unset {opt_out}.",
            yellow=True,
            bold=True,
        )
        for nodeid in nodeids:
            terminalreporter.write_line(f"    {nodeid}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """End-to-end tests (`@pytest.mark.e2e`: a wheel, a fresh virtualenv, the default sandbox ports) run
    last in one process, after the quick feedback of everything else; with pytest-xdist (`-n N`) they
    start first, so that their minutes overlap the other workers' tests instead of ending the run."""
    parallel = (getattr(config.option, "numprocesses", None) or 0) > 0 or hasattr(config, "workerinput")
    items.sort(key=lambda item: (item.get_closest_marker("e2e") is not None) != parallel)


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
