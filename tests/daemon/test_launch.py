"""`launch` on behalf of a CLI, against a real sandbox: registered entities, idempotency keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncrun.daemon import DaemonConnection, DaemonRequestError, Target

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello.py"


async def _register_hello() -> None:
    from asyncrun.client import Client
    from asyncrun.sdk._loader import load_file

    workflow = load_file(HELLO).entity("wf")
    async with Client.from_config() as client:
        await client.register(workflow)


async def test_launch_wait_and_idempotency(sandbox_env, daemon, settings) -> None:
    await _register_hello()
    target = Target.from_environment()
    async with DaemonConnection(settings=settings, autostart=False) as conn:
        launched = await conn.launch(
            "hello.wf", inputs={"name": "daemon", "times": 1}, idempotency_key="row-1"
        )
        assert launched.created and launched.execution.phase in ("UNDEFINED", "QUEUED", "RUNNING")
        result = await conn.wait([launched.execution.id], outputs=True, timeout=120, target=target)
        (final,) = result.executions
        assert final.phase == "SUCCEEDED", final.error
        assert final.outputs == {"o0": "HELLO DAEMON"}
        # The same key again: nothing new starts, the same run comes back.
        again = await conn.launch("hello.wf", inputs={"name": "daemon", "times": 1}, idempotency_key="row-1")
        assert not again.created and again.execution.name == launched.execution.name
        # The same key with other inputs is refused rather than silently attached.
        with pytest.raises(DaemonRequestError) as info:
            await conn.launch("hello.wf", inputs={"name": "other", "times": 1}, idempotency_key="row-1")
        assert info.value.code == "already_exists"
        with pytest.raises(DaemonRequestError) as info:
            await conn.launch("hello.wf", inputs={"nme": "typo"})
        assert info.value.code == "usage" and "nme" in str(info.value)
        with pytest.raises(DaemonRequestError) as info:
            await conn.launch("no.such.lp")
        assert info.value.code == "not_found"
