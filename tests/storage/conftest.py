"""A real S3-compatible server (moto's server mode) on loopback, and a sandbox that keeps its blobs there."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def s3_server():
    """moto's threaded server on a free loopback port; its URL. Shared by the session (buckets are not)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch, tmp_path):
    """Credentials and endpoint in the environment, as a user (and the sandbox's task processes) would
    have them; no ~/.aws files in the way."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "FSSPEC_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    return s3_server


@pytest.fixture
def s3_client(s3_env):
    import boto3

    return boto3.client("s3", endpoint_url=s3_env, region_name="us-east-1")


@pytest.fixture
def bucket(s3_client) -> str:
    """A new, empty bucket for this test."""
    name = f"asyncrun-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


def bucket_keys(s3_client, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return sorted(keys)


@pytest.fixture
async def s3_sandbox(tmp_path, s3_env, bucket, monkeypatch):
    """A real sandbox whose blobs, execution data and task outputs live in `s3://<bucket>/flyte`,
    reached through `--s3-endpoint`; FLYTE_PLATFORM_URL points at it."""
    from asyncrun.sandbox._config import SandboxConfig
    from asyncrun.sandbox._server import running_sandbox

    config = SandboxConfig(
        data_dir=tmp_path / "sandbox",
        port=0,
        http_port=0,
        task_path=(str(Path(sys.executable).parent),),
        blob_store=f"s3://{bucket}/flyte",
        s3_endpoint=s3_env,
    )
    async with running_sandbox(config) as info:
        monkeypatch.setenv("FLYTE_PLATFORM_URL", info.endpoint)
        monkeypatch.setenv("FLYTE_PLATFORM_INSECURE", "true")
        monkeypatch.delenv("FLYTECTL_CONFIG", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        yield info
