"""DataProxyService over an S3 blob store (moto on loopback): presigned S3 URLs and s3:// native URLs,
through the real sandbox's gRPC server; and `asyncrun sandbox start --blob-store` as a real process."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
import httpx
import pytest
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Status

from asyncrun._proto.flyteidl.service import (
    CreateDownloadLocationRequest,
    CreateUploadLocationRequest,
    DataProxyServiceStub,
)

from .conftest import bucket_keys

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

DATA = b"some bytes for S3\n" * 10
MD5 = hashlib.md5(DATA).digest()


async def test_upload_location_is_a_presigned_s3_put(s3_sandbox, bucket, s3_client, s3_env) -> None:
    channel = Channel(s3_sandbox.host, s3_sandbox.port)
    try:
        stub = DataProxyServiceStub(channel)
        location = await stub.create_upload_location(
            CreateUploadLocationRequest(
                project="flytesnacks", domain="development", filename="x.bin", content_md5=MD5
            )
        )
        root = base64.b32encode(MD5).decode()
        key = f"flyte/flytesnacks/development/{root}/x.bin"
        assert location.native_url == f"s3://{bucket}/{key}"
        url = urlsplit(location.signed_url)
        # Path-style on the configured endpoint, SigV4, and the Content-MD5 is part of the signature.
        assert f"{url.scheme}://{url.netloc}" == s3_env and unquote(url.path) == f"/{bucket}/{key}"
        query = parse_qs(url.query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert "content-md5" in query["X-Amz-SignedHeaders"][0].split(";")
        assert dict(location.headers) == {"Content-MD5": base64.b64encode(MD5).decode()}
        async with httpx.AsyncClient() as http:
            put = await http.put(location.signed_url, content=DATA, headers=dict(location.headers))
            assert put.status_code == 200, put.text
            assert bucket_keys(s3_client, bucket) == [key]

            # A download location for that s3:// URL is a presigned GET of the same object.
            download = await stub.create_download_location(
                CreateDownloadLocationRequest(native_url=location.native_url)
            )
            got = await http.get(download.signed_url)
            assert got.status_code == 200 and got.content == DATA

        # Same name under a chosen root with other content: refused, as FlyteAdmin does (ETag = MD5).
        root_request = CreateUploadLocationRequest(
            project="flytesnacks", domain="development", filename="x.bin", filename_root=root,
            content_md5=hashlib.md5(b"other").digest(),
        )  # fmt: skip
        with pytest.raises(GRPCError) as refused:
            await stub.create_upload_location(root_request)
        assert refused.value.status == Status.ALREADY_EXISTS
        root_request.content_md5 = MD5
        assert (await stub.create_upload_location(root_request)).native_url == location.native_url

        # A URL outside the store is not signed.
        with pytest.raises(GRPCError) as outside:
            await stub.create_download_location(CreateDownloadLocationRequest(native_url="s3://elsewhere/k"))
        assert outside.value.status == Status.INVALID_ARGUMENT
        with pytest.raises(GRPCError) as missing:
            await stub.create_download_location(
                CreateDownloadLocationRequest(
                    native_url=f"s3://{bucket}/flyte/flytesnacks/development/R/none"
                )
            )
        assert missing.value.status == Status.NOT_FOUND
    finally:
        channel.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_sandbox_start_with_blob_store(s3_env, bucket, s3_client, tmp_path: Path) -> None:
    from asyncrun import Client

    # The endpoint reaches the background sandbox (and its tasks) only through --s3-endpoint.
    sandbox_env = {name: value for name, value in os.environ.items() if name != "AWS_ENDPOINT_URL"}
    asyncrun = str(Path(sys.executable).parent / "asyncrun")
    data_dir, port, http_port = tmp_path / "sb", free_port(), free_port()
    start = [
        asyncrun, "sandbox", "start", "--data-dir", str(data_dir), "--port", str(port),
        "--http-port", str(http_port), "--blob-store", f"s3://{bucket}/bg", "--s3-endpoint", s3_env,
    ]  # fmt: skip
    started = await anyio.run_process(start, env=sandbox_env, check=False)
    assert started.returncode == 0, started.stderr.decode()
    try:
        (tmp_path / "proj").mkdir()
        (tmp_path / "proj" / "bg_tasks.py").write_text(
            "from asyncrun import task\n\n@task\ndef double(n: int) -> int:\n    return 2 * n\n"
        )
        from asyncrun.sdk._loader import load_file

        double = load_file(tmp_path / "proj" / "bg_tasks.py").entity("double")
        async with Client.from_config(endpoint=f"127.0.0.1:{port}", insecure=True) as client:
            native = await client.upload_file(tmp_path / "proj" / "bg_tasks.py")
            assert native.startswith(f"s3://{bucket}/bg/flytesnacks/development/")
            execution = await client.run(double, {"n": 21}, name="bg-double", wait=True)
            assert execution.outputs == {"o0": 42}
        keys = bucket_keys(s3_client, bucket)
        run_keys = [
            key for key in keys if key.startswith("bg/metadata/propeller/flytesnacks-development-bg-double/")
        ]
        assert any(key.endswith("/data/0/outputs.pb") for key in run_keys), keys
    finally:
        stop = [asyncrun, "sandbox", "stop", "--data-dir", str(data_dir)]
        await anyio.run_process(stop, check=False)


def test_missing_bucket_name_is_a_usage_error(tmp_path: Path) -> None:
    asyncrun = str(Path(sys.executable).parent / "asyncrun")
    cmd = [asyncrun, "sandbox", "serve", "--data-dir", str(tmp_path), "--port", "0", "--blob-store", "gs://b"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("--blob-store must be an s3://bucket[/prefix] URI, got 'gs://b'")
    )
