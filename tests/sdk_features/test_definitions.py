"""Definition-time rules of the new authoring API: clear one-line errors, checked values."""

from __future__ import annotations

import pytest

from asyncrun import Resources, Secret, conditional, get_secret, map_task, task, workflow
from asyncrun.exceptions import DefinitionError, UsageError


@task
def inc(x: int) -> int:
    return x + 1


@task
def label(x: int) -> str:
    return str(x)


def test_a_workflow_body_cannot_if_on_a_comparison() -> None:
    with pytest.raises(DefinitionError, match="use conditional"):

        @workflow
        def wf(n: int) -> int:
            if inc(x=n) > 3:
                return inc(x=n)
            return n


def test_every_branch_case_returns_the_same_outputs() -> None:
    with pytest.raises(DefinitionError, match="same outputs"):

        @workflow
        def wf(n: int) -> str:
            return conditional("c").if_(n > 0).then(inc(x=n)).else_().then(label(x=n))


def test_then_takes_the_call_made_there() -> None:
    with pytest.raises(DefinitionError, match="then"):

        @workflow
        def wf(n: int) -> int:
            early = inc(x=n)
            other = inc(x=n)
            return conditional("c").if_(n > 0).then(early).else_().then(other)


def test_a_branch_on_a_non_primitive_constant_is_refused_when_serialized() -> None:
    from asyncrun.client._serialize import SerializationSettings, plan_registration

    @workflow
    def wf(n: int) -> int:
        return conditional("c").if_(n == [1]).then(inc(x=n)).else_().then(inc(x=n))

    with pytest.raises(DefinitionError, match="primitives"):
        plan_registration(wf, SerializationSettings(project="p", domain="d"), code_md5=b"")


def test_map_task_options_are_checked() -> None:
    with pytest.raises(DefinitionError, match="min_success_ratio"):
        map_task(inc, min_success_ratio=1.5)
    with pytest.raises(DefinitionError, match="maps an @task"):
        map_task(lambda x: x)  # type: ignore[arg-type]


def test_a_tolerant_map_task_has_optional_outputs() -> None:
    assert map_task(inc).interface.outputs == {"o0": list[int]}
    assert map_task(inc, min_success_ratio=0.5).interface.outputs == {"o0": list[int | None]}
    assert map_task(inc)(x=[1, 2]) == [2, 3]


def test_resources_are_quantities() -> None:
    with pytest.raises(DefinitionError, match="not a quantity"):

        @task(requests=Resources(mem="lots"))
        def t() -> None: ...


def test_cache_serialize_needs_cache() -> None:
    with pytest.raises(DefinitionError, match="cache_serialize=True needs cache=True"):

        @task(cache_serialize=True)
        def t() -> None: ...


def test_a_failure_handler_takes_only_the_workflows_inputs() -> None:
    @task
    def handler(other: int) -> None: ...

    with pytest.raises(DefinitionError, match="does not have"):

        @workflow(on_failure=handler)
        def wf(n: int) -> int:
            return inc(x=n)


def test_get_secret_reads_flyte_first_then_the_local_sources(monkeypatch, tmp_path) -> None:
    for var in ("_FSEC_DB_PASSWORD", "ASYNCRUN_SECRET_DB_PASSWORD", "ASYNCRUN_SECRETS_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FLYTE_SECRETS_DEFAULT_DIR", str(tmp_path / "flyte"))
    with pytest.raises(UsageError, match="ASYNCRUN_SECRET_DB_PASSWORD"):
        get_secret("db", "password")
    (tmp_path / "local" / "db").mkdir(parents=True)
    (tmp_path / "local" / "db" / "password").write_text("from-folder\n")
    monkeypatch.setenv("ASYNCRUN_SECRETS_DIR", str(tmp_path / "local"))
    assert get_secret("db", "password") == "from-folder"
    monkeypatch.setenv("ASYNCRUN_SECRET_DB_PASSWORD", "from-env")
    assert get_secret("db", "password") == "from-env"
    (tmp_path / "flyte" / "db").mkdir(parents=True)
    (tmp_path / "flyte" / "db" / "password").write_text("flyte-file")
    assert get_secret("db", "password") == "flyte-file"
    monkeypatch.setenv("_FSEC_DB_PASSWORD", "flyte-env")
    assert get_secret("db", "password") == "flyte-env"


def test_secret_mount_types_are_flytes() -> None:
    assert [m.value for m in Secret.MountType] == [0, 1, 2]
    assert Secret(group="g", key="k").mount_requirement is Secret.MountType.ANY


@workflow
def mapped_twice(xs: list[int]) -> list[int]:
    once = map_task(inc)(x=xs)
    return map_task(inc, concurrency=2)(x=once)


def test_a_task_mapped_twice_registers_one_map_task() -> None:
    from asyncrun.client._serialize import SerializationSettings, plan_registration

    plan = plan_registration(mapped_twice, SerializationSettings(project="p", domain="d"), code_md5=b"")
    names = [ident.name for ident, _ in plan.tasks]
    assert names.count(f"{__name__}.map_inc-arraynode") == 1


def test_an_async_workflow_registers_the_tasks_its_module_imports(tmp_path, monkeypatch) -> None:
    from asyncrun.client._serialize import SerializationSettings, plan_registration

    (tmp_path / "shared_tasks_mod.py").write_text(
        "from asyncrun import task\n\n@task\ndef shout(s: str) -> str:\n    return s.upper()\n"
    )
    (tmp_path / "pipeline_mod.py").write_text(
        "from asyncrun import task, workflow\nfrom shared_tasks_mod import shout\n\n"
        "@task\ndef exclaim(s: str) -> str:\n    return s + '!'\n\n"
        "@workflow\nasync def loud(s: str) -> str:\n    return await exclaim(s=await shout(s=s))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    pipeline = importlib.import_module("pipeline_mod")
    plan = plan_registration(pipeline.loud, SerializationSettings(project="p", domain="d"), code_md5=b"")
    names = {ident.name for ident, _ in plan.tasks}
    assert {"shared_tasks_mod.shout", "pipeline_mod.exclaim", "pipeline_mod.loud"} <= names
