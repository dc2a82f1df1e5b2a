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
