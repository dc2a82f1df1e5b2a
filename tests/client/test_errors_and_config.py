"""gRPC status mapping (every status), retry policy, and configuration discovery."""

from __future__ import annotations

import anyio
import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from asyncrun._exceptions import (
    AlreadyExistsError,
    ConfigError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    RemoteError,
    UnreachableError,
)
from asyncrun.client._config import load_config
from asyncrun.client._errors import STATUS_ERRORS, map_grpc_errors
from asyncrun.client._retry import RetryPolicy

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.OK], ids=lambda s: s.name)
def test_every_grpc_status_is_mapped(status: Status) -> None:
    assert status in STATUS_ERRORS
    with pytest.raises(RemoteError) as info, map_grpc_errors("host:1"):
        raise GRPCError(status, "details here")
    assert isinstance(info.value, STATUS_ERRORS[status])
    assert isinstance(info.value.__cause__, GRPCError)


def test_specific_mappings() -> None:
    cases = {
        Status.NOT_FOUND: NotFoundError,
        Status.ALREADY_EXISTS: AlreadyExistsError,
        Status.INVALID_ARGUMENT: InvalidArgumentError,
        Status.UNAVAILABLE: UnreachableError,
    }
    for status, cls in cases.items():
        assert STATUS_ERRORS[status] is cls


def test_connection_refused_is_unreachable() -> None:
    with (
        pytest.raises(UnreachableError, match="cannot reach the control plane at h:1"),
        map_grpc_errors("h:1"),
    ):
        raise ConnectionRefusedError(111, "Connection refused")


async def test_retry_policy_retries_unavailable_then_succeeds() -> None:
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise GRPCError(Status.UNAVAILABLE, "try again")
        return "ok"

    assert await RetryPolicy(unreachable_timeout=5, base=0.001).call("e", flaky, read=False) == "ok"
    assert len(calls) == 3


async def test_retry_policy_counts_an_outage_from_the_last_answer() -> None:
    """A call that was slow (queued behind the client's other calls, or served slowly) and then
    answered UNAVAILABLE once is retried: the control plane answered, it was not unreachable for
    the whole call. This gave up under load with 200 launches in flight."""
    calls = []

    async def slow_then_unavailable() -> str:
        calls.append(1)
        if len(calls) == 1:
            await anyio.sleep(0.5)  # longer than the whole budget below
            raise GRPCError(Status.UNAVAILABLE, "reply lost")
        return "ok"

    policy = RetryPolicy(unreachable_timeout=0.2, base=0.001)
    assert await policy.call("e", slow_then_unavailable, read=False) == "ok"
    assert len(calls) == 2


async def test_retry_policy_gives_up_on_a_control_plane_that_never_answers() -> None:
    calls = []

    async def refused() -> None:
        calls.append(1)
        await anyio.sleep(0.3)  # each attempt costs longer than the budget, without an answer
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(UnreachableError):
        await RetryPolicy(unreachable_timeout=0.2, base=0.001).call("e", refused, read=True)
    assert len(calls) == 1


async def test_retry_policy_never_retries_not_found_and_writes_on_deadline() -> None:
    calls = []

    async def missing() -> None:
        calls.append(1)
        raise GRPCError(Status.NOT_FOUND, "nope")

    with pytest.raises(NotFoundError):
        await RetryPolicy(unreachable_timeout=5, base=0.001).call("e", missing, read=True)
    assert len(calls) == 1

    async def slow() -> None:
        calls.append(1)
        raise GRPCError(Status.DEADLINE_EXCEEDED, "slow")

    calls.clear()
    with pytest.raises(DeadlineExceededError):
        await RetryPolicy(unreachable_timeout=5, base=0.001).call("e", slow, read=False)
    assert len(calls) == 1
    calls.clear()
    with pytest.raises(DeadlineExceededError):
        await RetryPolicy(unreachable_timeout=5, base=0.001, max_attempts=4).call("e", slow, read=True)
    assert len(calls) == 4


def test_no_config_means_the_local_sandbox(tmp_path) -> None:
    config = load_config(env={"HOME": str(tmp_path)})
    assert config.endpoint == "localhost:30080" and config.insecure and config.is_default_sandbox
    assert config.console_url == "http://127.0.0.1:30081/console"  # as the sandbox banner says


def test_flytectl_yaml_and_environment(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "admin:\n  endpoint: dns:///flyte.example.com:443\n  insecure: false\nconsole:\n  endpoint: https://c\n"
    )
    config = load_config(path, env={"HOME": str(tmp_path)})
    assert (config.endpoint, config.insecure, config.console_url) == (
        "flyte.example.com:443",
        False,
        "https://c/console",
    )
    via_env = load_config(env={"HOME": str(tmp_path), "FLYTECTL_CONFIG": str(path)})
    assert via_env.endpoint == "flyte.example.com:443"
    home_default = tmp_path / ".flyte" / "config.yaml"
    home_default.parent.mkdir()
    home_default.write_text("admin:\n  endpoint: other:81\n  insecure: true\n")
    assert load_config(env={"HOME": str(tmp_path)}).endpoint == "other:81"
    env = {"HOME": str(tmp_path), "FLYTE_PLATFORM_URL": "127.0.0.1:9", "FLYTE_PLATFORM_INSECURE": "True"}
    assert load_config(env=env).endpoint == "127.0.0.1:9"


def test_bad_configs_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml", env={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("admin: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(broken, env={})
    no_endpoint = tmp_path / "empty.yaml"
    no_endpoint.write_text("admin: {}\n")
    with pytest.raises(ConfigError, match="no admin.endpoint"):
        load_config(no_endpoint, env={})
