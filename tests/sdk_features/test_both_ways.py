"""Each feature of issue 15 run with `asyncrun run` and with `asyncrun run --remote --wait` against a
real sandbox: the outputs (or the failures) are the same."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import asyncrun

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]


@pytest.fixture
def both_ways(sandbox_env, tmp_path: Path):
    async def run(file: Path, entity: str, *args: str, env: dict[str, str] | None = None) -> dict[str, tuple]:
        results = {}
        for where, flags in (("local", ()), ("remote", ("--remote", "--wait", "--no-daemon"))):
            merged = {**os.environ, **(env or {})}
            results[where] = await asyncrun("run", *flags, str(file), entity, *args, env=merged)
        return results

    return run


def outputs(results: dict[str, tuple]) -> dict[str, str]:
    for where, (code, _, err) in results.items():
        assert code == 0, f"{where}: {err}"
    return {where: out.strip() for where, (_, out, _) in results.items()}


@pytest.mark.parametrize(("n", "expected"), [("-4", "neg -4"), ("4", "small 4"), ("40", "big 40")])
async def test_every_branch_both_ways(both_ways, project: Path, n: str, expected: str) -> None:
    assert outputs(await both_ways(project, "branchy", "--n", n)) == {"local": expected, "remote": expected}


async def test_a_branch_on_a_task_output_both_ways(both_ways, project: Path) -> None:
    assert outputs(await both_ways(project, "on_output", "--n", "2")) == {"local": "big 4", "remote": "big 4"}
    assert outputs(await both_ways(project, "on_output", "--n", "3")) == {
        "local": "small 6",
        "remote": "small 6",
    }


async def test_else_fail_fails_the_run_both_ways(both_ways, project: Path) -> None:
    results = await both_ways(project, "only_negative", "--n", "5")
    for where, (code, _, err) in results.items():
        assert code == 1, f"{where}: {err}"
        assert "n must be negative" in err, where
    assert outputs(await both_ways(project, "only_negative", "--n", "-5")) == {
        "local": "neg -5",
        "remote": "neg -5",
    }


async def test_a_map_task_tolerates_a_failure_both_ways(both_ways, project: Path) -> None:
    expected = "sum=21 failed=1"  # 1 + 4 + 16; element 3 fails, 3 of 4 succeed >= ratio 0.5
    assert outputs(await both_ways(project, "mapped", "--xs", "[1, 2, 3, 4]")) == {
        "local": expected,
        "remote": expected,
    }


async def test_a_strict_map_task_fails_on_one_failure_both_ways(both_ways, project: Path) -> None:
    results = await both_ways(project, "mapped_strict", "--xs", "[1, 3]")
    for where, (code, _, err) in results.items():
        assert code == 1, f"{where}: {err}"
        assert "three is not welcome" in err, where
        assert "1 of 2 array items failed" in err, where  # the same summary both ways
    assert outputs(await both_ways(project, "mapped_strict", "--xs", "[1, 2]")) == {
        "local": "5",
        "remote": "5",
    }


async def test_nested_dynamic_both_ways(both_ways, project: Path) -> None:
    # nested(3) = fan_out(1) + fan_out(2) + fan_out(3) = 0 + 1 + 5
    assert outputs(await both_ways(project, "dyn", "--n", "3")) == {"local": "6", "remote": "6"}


async def test_sleep_orders_nodes_both_ways(both_ways, project: Path, tmp_path: Path) -> None:
    log = tmp_path / "order"
    results = await both_ways(project, "slept", "--path", str(log))
    assert outputs(results) == {"local": "after", "remote": "after"}
    assert log.read_text().splitlines() == ["before", "after", "before", "after"]


async def test_a_failure_handler_runs_when_the_workflow_fails_both_ways(
    both_ways, project: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "cleaned"
    for where, flags in (("local", ()), ("remote", ("--remote", "--wait", "--no-daemon"))):
        marker.unlink(missing_ok=True)
        code, _, err = await asyncrun("run", *flags, str(project), "guarded", "--path", str(marker))
        assert code == 1, f"{where}: {err}"
        assert "boom" in err, where
        assert marker.read_text().startswith("cleaned up after: "), where
        assert "boom" in marker.read_text(), where


async def test_secrets_and_environment_reach_the_task_both_ways(
    both_ways, project: Path, tmp_path: Path, monkeypatch
) -> None:
    folder = tmp_path / "secrets"
    (folder / "api").mkdir(parents=True)
    (folder / "api" / "token").write_text("t0k3n")
    # Set in this process: the local run inherits it, and so does the sandbox (its own config).
    monkeypatch.setenv("ASYNCRUN_SECRET_DB_PASSWORD", "s3cret")
    monkeypatch.setenv("ASYNCRUN_SECRETS_DIR", str(folder))
    results = await both_ways(project, "secretive")
    got = outputs(results)
    # Locally, as with pyflyte, `environment` is for the container only; get_secret reads the local
    # sources. Remotely the sandbox delivers them as Flyte does: the ENV_VAR one as _FSEC_DB_PASSWORD.
    assert got["local"] == "- s3cret t0k3n env=-"
    assert got["remote"] == "hi s3cret t0k3n env=s3cret"


async def test_a_recoverable_error_is_retried_both_ways(both_ways, project: Path, tmp_path: Path) -> None:
    for where, flags in (("local", ()), ("remote", ("--remote", "--wait", "--no-daemon"))):
        attempts = tmp_path / f"attempts.{where}"
        code, out, err = await asyncrun("run", *flags, str(project), "flaky", "--path", str(attempts))
        assert (code, out.strip()) == (0, "ok after 3"), f"{where}: {err}"


async def test_an_async_workflow_both_ways(both_ways, project: Path) -> None:
    # squares of 0..5 without 3: 0 1 4 16 25; the even ones sum to 20
    assert outputs(await both_ways(project, "pipeline", "--n", "6")) == {"local": "20", "remote": "20"}


async def test_the_sandbox_records_a_tasks_resources_with_its_attempt(
    sandbox_env, project: Path, monkeypatch
) -> None:
    """Requests and limits are registered with the task and shown with each attempt (custom_info);
    the sandbox does not enforce them."""
    from asyncrun import Client
    from asyncrun.client._nodes import task_nodes

    monkeypatch.setenv("ASYNCRUN_SECRET_DB_PASSWORD", "x")  # the sandbox (in this process) delivers them
    monkeypatch.setenv("ASYNCRUN_SECRET_API_TOKEN", "y")
    code, _, err = await asyncrun(
        "run", "--remote", "--wait", "--name", "resourceful", str(project), "secretive"
    )
    assert code == 0, err
    async with Client.from_config() as client:
        (node,) = task_nodes(await client.nodes("resourceful"))
    info = node.attempts[0].raw.closure.custom_info.to_dict()
    assert info == {
        "resources": {"requests": {"cpu": "1", "memory": "200Mi"}, "limits": {"cpu": "2", "memory": "400Mi"}}
    }
