"""The Python API's values both ways: a dict for a dataclass input is accepted (its fields checked),
and a task output of the wrong type is reported as that output, in words."""

from __future__ import annotations

import pytest

from asyncrun._exceptions import InputError

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

MODULE = """
from dataclasses import dataclass

from asyncrun import task


@dataclass
class Config:
    name: str
    retries: int = 1


@task
def use(cfg: Config) -> str:
    return f"{cfg.name}:{cfg.retries}"


@task
def use_many(cfgs: list[Config]) -> int:
    return sum(c.retries for c in cfgs)


@task
def bad() -> int:
    return "not an int"
"""


@pytest.fixture
def module(tmp_path):
    from asyncrun.sdk._loader import load_file

    path = tmp_path / f"api_values_{tmp_path.name[-8:]}.py"
    path.write_text(MODULE)
    return load_file(path).module


async def test_a_dict_for_a_dataclass_input_is_accepted(sandbox_env, module) -> None:
    from asyncrun import Client

    async with Client.from_config() as client:
        ex = await client.run(module.use, {"cfg": {"name": "a", "retries": 2}}, wait=True)
        assert ex.outputs == {"o0": "a:2"}
        ex = await client.run(module.use, {"cfg": module.Config("b")}, wait=True)
        assert ex.outputs == {"o0": "b:1"}
        ex = await client.run(
            module.use_many, {"cfgs": [{"name": "x", "retries": 3}, {"name": "y"}]}, wait=True
        )
        assert ex.outputs == {"o0": 4}
        page, _ = await client.list_executions(limit=100)
        launched = len(page)
        with pytest.raises(InputError) as info:
            await client.run(module.use, {"cfg": {"name": "a", "retries": "many"}})
        message = str(info.value)
        assert "input 'cfg'" in message and "retries" in message and "expected an integer" in message, message
        with pytest.raises(InputError, match="input 'cfg'.*nope"):
            await client.run(module.use, {"cfg": {"name": "a", "nope": 1}})
        page, _ = await client.list_executions(limit=100)
        assert len(page) == launched  # refused before anything was launched


async def test_an_output_of_the_wrong_type_names_the_output(sandbox_env, module) -> None:
    from asyncrun import Client

    async with Client.from_config() as client:
        ex = await client.run(module.bad, {}, wait=True)
    assert ex.phase.name == "FAILED"
    assert ex.error is not None
    message = ex.error.message
    assert "output 'o0'" in message and "expected an integer" in message, message
    assert (
        "input 'o0'" not in message and "asyncrun._exceptions" not in message and "Traceback" not in message
    )
