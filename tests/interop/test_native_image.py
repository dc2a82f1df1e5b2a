"""Registering asyncrun's own tasks with the default image name to a control plane other than the sandbox
warns, in one line, how to build and pass an image (the Dockerfile at the top of the repository)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


def hello_module():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import hello
    finally:
        sys.path.remove(str(ROOT / "examples"))
    return hello


async def register(sandbox, **options) -> list[str]:
    from asyncrun import Client

    said: list[str] = []
    async with Client.from_config(endpoint=sandbox.endpoint, insecure=True) as client:
        await client.register(hello_module().wf, progress=said.append, **options)
    return said


async def test_no_warning_on_the_sandbox(sandbox) -> None:
    said = await register(sandbox)
    assert not [line for line in said if line.startswith("warning")], said


async def test_a_real_flyteadmin_with_the_default_image_warns(sandbox, monkeypatch) -> None:
    from asyncrun._proto.flyteidl import admin
    from asyncrun.sandbox._admin_entities import EntityHandlers

    async def flyteadmin_version(self, message):
        return admin.GetVersionResponse(
            control_plane_version=admin.Version(version="v1.16.1", build="abc123")
        )

    monkeypatch.setattr(EntityHandlers, "get_version", flyteadmin_version)
    said = await register(sandbox)
    warnings = [line for line in said if line.startswith("warning")]
    assert len(warnings) == 1, said
    assert "Dockerfile" in warnings[0] and "-i REGISTRY/asyncrun:TAG" in warnings[0]
    assert "\n" not in warnings[0]
    # An image of one's own: nothing to warn about.
    said = await register(sandbox, images=("ghcr.io/me/asyncrun:1",))
    assert not [line for line in said if line.startswith("warning")], said


def test_the_dockerfile_installs_asyncrun_with_the_object_store_extras() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'pip install "/src/asyncrun[s3,gcs]"' in text
    assert "asyncrun run --remote -i" in text
    docs = (ROOT / "docs" / "limitations.md").read_text()
    assert "Dockerfile" in docs and "-i REGISTRY/asyncrun:TAG" in docs
