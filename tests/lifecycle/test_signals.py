"""`asyncrun signals | approve | reject | signal` and `client.signal` releasing gates of a sandbox run."""

from __future__ import annotations

import json

import pytest
from asyncclick.testing import CliRunner

from asyncrun.cli import cli

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

GATES = (
    "from datetime import timedelta\n"
    "from asyncrun import approve, task, wait_for_input, workflow\n\n"
    "@task\ndef small(x: int) -> str:\n    return f'small {x}'\n\n"
    "@task\ndef times(n: int, k: int) -> int:\n    return n * k\n\n"
    "@workflow\ndef approved(n: int) -> str:\n"
    "    return approve(small(x=n), 'review', timeout=timedelta(minutes=10))\n\n"
    "@workflow\ndef asked(n: int) -> int:\n"
    "    return times(n=n, k=wait_for_input('factor', timeout=timedelta(minutes=10), expected_type=int))\n"
)


async def asyncrun(*args: str) -> tuple[int, str, str]:
    result = await CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def gates(tmp_path):
    from asyncrun.sdk._loader import load_file

    (tmp_path / "gates.py").write_text(GATES)
    return load_file(tmp_path / "gates.py").module


async def asked_for(client, run, signal_id: str):
    """The run's signal once its gate has asked for it (bounded)."""
    from tests.sandbox.conftest import assert_eventually

    async def listed() -> bool:
        return signal_id in [s.signal_id for s in await client.signals(run)]

    await assert_eventually(listed, within=120, what=f"the gate to ask for {signal_id}")
    return await client.get_signal(run, signal_id)


@pytest.mark.parametrize(
    ("verb", "phase", "outputs"), [("approve", "SUCCEEDED", {"o0": "small 2"}), ("reject", "FAILED", None)]
)
async def test_approve_and_reject_release_the_gate(sandbox_env, gates, verb, phase, outputs) -> None:
    from asyncrun import Client

    async with Client.from_config() as client:
        run = await client.run(gates.approved, {"n": 2})
        pending = await asked_for(client, run, "review")
        assert (pending.is_approval, pending.is_set, pending.type_name) == (True, False, "bool")
        code, out, err = await asyncrun("signals", run.id.name, "--pending")
        assert code == 0, err
        assert out.splitlines() == ["review  bool  pending"]

        code, out, err = await asyncrun(verb, run.id.name, "review")
        assert code == 0, err
        assert out.splitlines() == [f"{run.id.name}  review  {verb.rstrip('e')}ed"]
        ended = await client.wait(run, poll_interval=0.5, timeout=120)
        assert ended.phase == phase
        if outputs is not None:
            assert ended.outputs == outputs

        code, out, err = await asyncrun("signals", run.id.name, "-o", "json")
        assert code == 0, err
        assert json.loads(out)["signals"] == [
            {
                "project": run.id.project,
                "domain": run.id.domain,
                "name": run.id.name,
                "signal_id": "review",
                "type": "bool",
                "set": True,
                "value": verb == "approve",
            }
        ]
        # set once: answering again is one line, exit 1
        code, out, err = await asyncrun("approve", run.id.name, "review")
        assert code == 1 and "already set" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("verb", ["approve", "signal"])
async def test_a_gate_is_answered_by_its_node_id(sandbox_env, gates, verb) -> None:
    """`approve NAME NODE`: the node id `asyncrun get --nodes` shows stands for the signal it waits for."""
    from asyncrun import Client

    async with Client.from_config() as client:
        run = await client.run(gates.approved if verb == "approve" else gates.asked, {"n": 3})
        await asked_for(client, run, "review" if verb == "approve" else "factor")
        code, out, err = await asyncrun("get", run.id.name, "--nodes", "-o", "json")
        assert code == 0, err
        waiting = [n["node_id"] for n in json.loads(out)["nodes"] if n["phase"] == "RUNNING"]
        assert len(waiting) == 1, out  # the gate; the task before it has ended
        gate = waiting[0]
        assert gate not in ("review", "factor")

        args = [run.id.name, gate] if verb == "approve" else [run.id.name, gate, "4"]
        code, out, err = await asyncrun(verb, *args)
        assert code == 0, err
        ended = await client.wait(run, poll_interval=0.5, timeout=120)
        assert ended.outputs == ({"o0": "small 3"} if verb == "approve" else {"o0": 12})

        code, _, err = await asyncrun("approve", run.id.name, "n99")
        assert code == 1 and "no signal 'n99'" in err, err


async def test_signal_value_is_typed_by_the_signal(sandbox_env, gates) -> None:
    from asyncrun import Client

    async with Client.from_config() as client:
        run = await client.run(gates.asked, {"n": 7})
        await asked_for(client, run, "factor")

        code, _, err = await asyncrun("signal", run.id.name, "factor", "three")
        assert code == 2 and "takes int" in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
        code, _, err = await asyncrun("approve", run.id.name, "factor")
        assert code == 2 and "not an approval" in err, err
        code, _, err = await asyncrun("signal", run.id.name, "nosuch", "3")
        assert code == 1 and "no signal 'nosuch'" in err and "'factor'" in err, err
        code, _, err = await asyncrun("signal", "nosuchrun", "factor", "3")
        assert code == 1 and "nosuchrun" in err and "Traceback" not in err, err
        assert (await client.get_signal(run, "factor")).is_set is False  # none of those set it

        code, out, err = await asyncrun("signal", run.id.name, "factor", "3", "-o", "json")
        assert code == 0, err
        assert json.loads(out)["value"] == 3
        ended = await client.wait(run, poll_interval=0.5, timeout=120)
        assert ended.phase == "SUCCEEDED" and ended.outputs == {"o0": 21}


async def test_client_signal_checks_the_type_before_setting(sandbox_env, gates) -> None:
    from asyncrun import Client
    from asyncrun.exceptions import FailedPreconditionError, InputError

    async with Client.from_config() as client:
        run = await client.run(gates.asked, {"n": 5})
        await asked_for(client, run, "factor")
        with pytest.raises(InputError, match="takes int"):
            await client.signal(run, "factor", "two")
        signal = await client.signal(run, "factor", 2)
        assert (signal.signal_id, signal.value, signal.is_set) == ("factor", 2, True)
        with pytest.raises(FailedPreconditionError, match="already set"):
            await client.signal(run, "factor", 4)
        ended = await client.wait(run, poll_interval=0.5, timeout=120)
    assert ended.outputs == {"o0": 10}


@pytest.mark.parametrize("command", ["signals", "approve", "reject", "signal"])
async def test_help(command: str) -> None:
    code, out, _ = await asyncrun(command, "--help")
    assert code == 0 and "--output" in out


async def test_a_signal_of_an_ended_run_is_refused(sandbox_env, gates) -> None:
    from asyncrun import Client

    async with Client.from_config() as client:
        run = await client.run(gates.approved, {"n": 1})
        await asked_for(client, run, "review")
        code, _, err = await asyncrun("abort", run.id.name, "--wait")
        assert code == 0, err
        code, _, err = await asyncrun("approve", run.id.name, "review")
        assert code == 1 and "has ended (ABORTED)" in err and len(err.strip().splitlines()) == 1, err
        assert (await client.get_signal(run, "review")).is_set is False
