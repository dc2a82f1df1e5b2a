from __future__ import annotations

import pytest

from .proxy import FaultPlan, start_proxy


@pytest.fixture
async def proxy(sandbox):
    """A recording (and, when asked, failing) gRPC proxy in front of the test sandbox."""
    plan = FaultPlan()
    proxy, server, upstream = await start_proxy(sandbox.host, sandbox.port, plan)
    try:
        yield proxy
    finally:
        server.close()
        await server.wait_closed()
        upstream.close()
