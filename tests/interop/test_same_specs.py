"""For the same flytekit file, what asyncrun registers is what `pyflyte run --remote` registers (read back
from a sandbox started here), but for versions and the code package's location; and each launches a launch
plan the other registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from grpclib.client import Channel

from asyncrun._proto.flyteidl import admin, core
from asyncrun._proto.flyteidl.service import AdminServiceStub

from .conftest import asyncrun, pyflyte

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(900)]

PROJECT, DOMAIN = "flytesnacks", "development"


async def versions(stub: AdminServiceStub, kind: str, name: str) -> list[str]:
    """Versions of a registered entity, oldest first."""
    request = admin.ResourceListRequest(
        id=admin.NamedEntityIdentifier(project=PROJECT, domain=DOMAIN, name=name),
        limit=100,
        sort_by=admin.Sort(key="created_at", direction=admin.SortDirection.ASCENDING),
    )
    if kind == "task":
        return [t.id.version for t in (await stub.list_tasks(request)).tasks]
    return [w.id.version for w in (await stub.list_workflows(request)).workflows]


def normalized(message: Any, version: str, distribution: str) -> Any:
    """The message as JSON-like data, its version and package location replaced by placeholders."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: walk(item) for key, item in sorted(value.items())}
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, str):
            return value.replace(version, "<version>").replace(distribution, "<package>")
        return value

    return walk(message.to_dict())


def package_of(template: core.TaskTemplate) -> str:
    args = list(template.container.args)
    return args[args.index("--additional-distribution") + 1]


async def test_registered_templates_equal_pyflytes_and_launch_plans_cross_launch(
    sandbox_env, project: Path
) -> None:
    code_theirs = await pyflyte("run", "--remote", "c01_chain.py", "wf", cwd=project)
    assert code_theirs.code == 0, code_theirs.out
    ours = await asyncrun("run", "--remote", "c01_chain.py", "wf", cwd=project)
    assert ours.code == 0, ours.out

    host, port = sandbox_env.endpoint.rsplit(":", 1)
    channel = Channel(host, int(port))
    try:
        stub = AdminServiceStub(channel)
        theirs_v, ours_v = await versions(stub, "workflow", "c01_chain.wf")
        assert theirs_v != ours_v
        compared = 0
        for name in ("c01_chain.say_hello", "c01_chain.shout"):
            templates = []
            for version in (theirs_v, ours_v):
                task_id = core.Identifier(
                    resource_type=core.ResourceType.TASK,
                    project=PROJECT,
                    domain=DOMAIN,
                    name=name,
                    version=version,
                )
                task = await stub.get_task(admin.ObjectGetRequest(id=task_id))
                template = task.closure.compiled_task.template
                templates.append(normalized(template, version, package_of(template)))
            assert templates[0] == templates[1], name
            compared += 1
        closures = []
        for version in (theirs_v, ours_v):
            wf_id = core.Identifier(
                resource_type=core.ResourceType.WORKFLOW,
                project=PROJECT,
                domain=DOMAIN,
                name="c01_chain.wf",
                version=version,
            )
            workflow = await stub.get_workflow(admin.ObjectGetRequest(id=wf_id))
            compiled = workflow.closure.compiled_workflow
            package = package_of(compiled.tasks[0].template)
            closures.append(normalized(compiled, version, package))
        assert closures[0] == closures[1]
        assert compared == 2
    finally:
        channel.close()

    # asyncrun launches pyflyte's launch plan, pyflyte launches asyncrun's.
    by_us = await asyncrun(
        "run", "--wait", "-o", "json", "remote-launchplan", f"c01_chain.wf:{theirs_v}", "--name", "a",
        cwd=project,
    )  # fmt: skip
    assert by_us.code == 0, by_us.out
    assert json.loads(by_us.stdout)["outputs"] == {"o0": "HELLO A HELLO A"}
    by_them = await pyflyte(
        "run", "--remote", "--wait", "--poll-interval", "1", "--name", "by-pyflyte",
        "remote-launchplan", f"c01_chain.wf:{ours_v}", "--name", "p",
        cwd=project,
    )  # fmt: skip
    assert by_them.code == 0, by_them.out
    status = await asyncrun("wait", "-o", "json", "by-pyflyte", cwd=project)
    assert status.code == 0, status.out
    assert "HELLO P HELLO P" in status.stdout
