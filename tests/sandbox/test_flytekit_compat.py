"""Differences from FlyteAdmin that flytekit notices (issue 18), each checked with flytekit itself against a
real sandbox."""

from __future__ import annotations

import re

import anyio
import pytest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]


def _control_plane_version(endpoint: str) -> str:
    from flytekit.clients.friendly import SynchronousFlyteClient
    from flytekit.configuration import PlatformConfig

    return SynchronousFlyteClient(
        PlatformConfig.for_endpoint(endpoint, insecure=True)
    ).get_control_plane_version()


async def test_get_version_answers_in_flyteadmins_form(sandbox) -> None:  # type: ignore[no-untyped-def]
    """Regression: the version was `asyncrun-sandbox 0.1.0`; flytekit expects `vX.Y.Z` (or `unknown`)."""
    version = await anyio.to_thread.run_sync(_control_plane_version, sandbox.endpoint)
    assert re.fullmatch(r"v\d+\.\d+\.\d+", version), version


DATACLASS_WITH_FILES = """import os
from dataclasses import dataclass

from flytekit import task, workflow
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile


@dataclass
class DC:
    ff: FlyteFile
    fd: FlyteDirectory


@task
def show(dc: DC) -> str:
    # Not dc.fd.download(): flytekit names a one-file folder by that file's URL, on any backend.
    with open(dc.ff) as f:
        return f.readline().strip()


@workflow
def wf(dc: DC = DC(ff=FlyteFile(os.path.realpath(__file__)), fd=FlyteDirectory("data/"))) -> str:
    return show(dc=dc)
"""


async def test_dataclass_default_with_files_converts_after_upload(sandbox, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Regression: native_url was a server-local path; flytekit checked it as a local directory ("… is
    not a directory") and refused the dataclass default. FlyteAdmin answers a storage URI."""
    from .test_flytekit_e2e import pyflyte, remote_outputs

    project = tmp_path / "proj"
    (project / "data").mkdir(parents=True)
    (project / "data" / "only.txt").write_text("one file: uploaded as one object\n")
    (project / "dcfiles.py").write_text(DATACLASS_WITH_FILES)
    code, out = await pyflyte(sandbox, project, "--name", "dc-files", "dcfiles.py", "wf")
    assert code == 0, out
    assert "has succeeded" in out, out
    outputs = await anyio.to_thread.run_sync(remote_outputs, sandbox.endpoint, "dc-files", str)
    assert outputs == {"o0": "import os"}
