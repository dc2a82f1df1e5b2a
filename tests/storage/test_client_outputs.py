"""Outputs FlyteAdmin did not inline: the Client reads them where GetExecutionData says they are stored."""

from __future__ import annotations

import warnings

import pytest
from daemon.stub_admin import StubAdmin, serving

from asyncrun import _storage
from asyncrun._exceptions import BlobNotFoundError
from asyncrun._proto.flyteidl import admin, core

pytestmark = pytest.mark.anyio


class OffloadingAdmin(StubAdmin):
    """GetExecutionData with no `full_outputs`, only the URL of outputs.pb (as FlyteAdmin does above its
    inline size limit)."""

    outputs_url = ""

    async def get_execution_data(
        self, message: admin.WorkflowExecutionGetDataRequest
    ) -> admin.WorkflowExecutionGetDataResponse:
        await self._gate("get_execution_data")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return admin.WorkflowExecutionGetDataResponse(outputs=admin.UrlBlob(url=self.outputs_url))


@pytest.mark.parametrize("where", ["s3", "local"])
async def test_outputs_read_from_the_store(where, s3_env, bucket, tmp_path) -> None:
    from asyncrun import Client

    stub = OffloadingAdmin()
    stub.add("big", "SUCCEEDED")
    stub.outputs_url = f"s3://{bucket}/meta/big/outputs.pb" if where == "s3" else str(tmp_path / "outputs.pb")
    literals = core.LiteralMap(
        literals={"o0": core.Literal(scalar=core.Scalar(primitive=core.Primitive(string_value="x" * 5000)))}
    )
    _storage.write_bytes(stub.outputs_url, bytes(literals))
    async with serving(stub) as endpoint, Client.from_config(endpoint=endpoint, insecure=True) as client:
        execution = await client.get_execution("big", output_types={"o0": str})
        assert execution.outputs == {"o0": "x" * 5000}
        _storage.delete(stub.outputs_url)
        with pytest.raises(BlobNotFoundError, match=f"nothing is stored at {stub.outputs_url}"):
            await client.get_execution("big")
