"""The blob HTTP endpoint, served by a real uvicorn on 127.0.0.1 and spoken to with httpx."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from asyncrun._proto.flyteidl.service import AdminServiceBase
from asyncrun.sandbox._blobs import BlobStore
from asyncrun.sandbox._dataproxy import blob_url
from asyncrun.sandbox._http import create_app, serve_http
from asyncrun.sandbox._signing import Signer, base64_md5

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from starlette.types import ASGIApp

pytestmark = pytest.mark.anyio

BODY = b"tarball bytes " * 100
MD5 = hashlib.md5(BODY).digest()


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """A real uvicorn server on 127.0.0.1, port 0; yields its base URL."""
    async with anyio.create_task_group() as tg:
        url = await tg.start(functools.partial(serve_http, app))
        try:
            yield url
        finally:
            tg.cancel_scope.cancel()


@dataclass
class Env:
    blobs: BlobStore
    signer: Signer
    url: str
    client: httpx.AsyncClient

    def upload_url(
        self,
        relative: str,
        *,
        md5: bytes = MD5,
        expires_at: dt.datetime | None = None,
        max_bytes: int = 0,
    ) -> str:
        expires_at = expires_at or dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        query = self.signer.sign_upload(relative, expires_at=expires_at, content_md5=md5, max_bytes=max_bytes)
        return blob_url(self.url, relative, query)

    def download_url(self, relative: str) -> str:
        query = self.signer.sign_download(
            relative, expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        )
        return blob_url(self.url, relative, query)

    def stored_files(self) -> list[str]:
        """Every file under the blob root, temp files included."""
        root = self.blobs.root
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


@asynccontextmanager
async def blob_server(tmp_path: Path, *, max_upload_bytes: int = 1 << 20) -> AsyncIterator[Env]:
    blobs = BlobStore(tmp_path / "blobs")
    signer = Signer(b"k" * 32)
    app = create_app(blobs, signer, AdminServiceBase(), max_upload_bytes=max_upload_bytes)
    async with serving(app) as url, httpx.AsyncClient(timeout=30) as client:
        yield Env(blobs, signer, url, client)


def md5_header(data: bytes) -> dict[str, str]:
    return {"Content-MD5": base64_md5(hashlib.md5(data).digest())}


async def raw_put(base_url: str, target: str, body: bytes = b"hi") -> int:
    """Send a PUT whose request target is not normalised (httpx would resolve `..` itself)."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None and parts.port is not None
    request = (
        f"PUT {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    response = b""
    with anyio.fail_after(10):
        async with await anyio.connect_tcp(parts.hostname, parts.port) as stream:
            await stream.send(request)
            try:
                while True:
                    response += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    return int(response.split(b" ", 2)[1])


async def test_signed_put_with_content_md5_stores_the_file(tmp_path: Path) -> None:
    async with blob_server(tmp_path) as env:
        relative = "flytesnacks/development/ABC=/fast.tar.gz"
        url = env.upload_url(relative)
        first = await env.client.put(url, content=BODY, headers=md5_header(BODY))
        assert first.status_code == 201, first.text
        assert (env.blobs.root / relative).read_bytes() == BODY
        again = await env.client.put(url, content=BODY, headers=md5_header(BODY))
        assert again.status_code == 200
        assert env.stored_files() == [relative]


async def test_signed_get_serves_the_file_and_only_with_a_get_signature(tmp_path: Path) -> None:
    async with blob_server(tmp_path) as env:
        env.blobs.write_bytes("p/d/X/data.bin", BODY)
        got = await env.client.get(env.download_url("p/d/X/data.bin"))
        assert got.status_code == 200
        assert got.content == BODY
        assert got.headers["content-security-policy"].startswith("sandbox")
        head = await env.client.head(env.download_url("p/d/X/data.bin"))
        assert head.status_code == 200
        assert int(head.headers["content-length"]) == len(BODY)
        # An upload signature is not a download signature.
        assert (await env.client.get(env.upload_url("p/d/X/data.bin"))).status_code == 403
        assert (await env.client.get(env.download_url("p/d/X/missing"))).status_code == 404
        unsigned = f"{env.url}/blobs/p/d/X/data.bin"
        assert (await env.client.get(unsigned)).status_code == 403


async def test_tampered_signature_is_forbidden_and_writes_nothing(tmp_path: Path) -> None:
    async with blob_server(tmp_path) as env:
        url = env.upload_url("p/d/X/f")
        sig_at = url.index("sig=") + 4
        tampered = url[:sig_at] + ("0" if url[sig_at] != "0" else "1") + url[sig_at + 1 :]
        response = await env.client.put(tampered, content=BODY, headers=md5_header(BODY))
        assert response.status_code == 403
        # The signature of one path does not open another.
        other = url.replace("/p/d/X/f?", "/p/d/X/g?")
        assert (await env.client.put(other, content=BODY, headers=md5_header(BODY))).status_code == 403
        assert env.stored_files() == []


async def test_expired_signature_is_forbidden(tmp_path: Path) -> None:
    async with blob_server(tmp_path) as env:
        url = env.upload_url("p/d/X/f", expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        response = await env.client.put(url, content=BODY, headers=md5_header(BODY))
        assert response.status_code == 403
        assert "expired" in response.text
        assert env.stored_files() == []


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, BODY, 400),  # the URL binds an MD5, so the header is required
        ({"Content-MD5": "not base64!"}, BODY, 400),
        ({"Content-MD5": base64_md5(b"short")}, BODY, 400),
        (md5_header(b"something else"), BODY, 403),  # not the MD5 the URL was signed for
        (md5_header(BODY), BODY[:-1] + b"!", 400),  # the body does not match (S3's BadDigest)
    ],
)
async def test_content_md5_must_match_the_signature_and_the_body(
    tmp_path: Path, headers: dict[str, str], body: bytes, status: int
) -> None:
    async with blob_server(tmp_path) as env:
        response = await env.client.put(env.upload_url("p/d/X/f"), content=body, headers=headers)
        assert response.status_code == status, response.text
        assert env.stored_files() == []


async def test_url_without_md5_binding_accepts_any_body_but_checks_a_given_header(tmp_path: Path) -> None:
    async with blob_server(tmp_path) as env:
        url = env.upload_url("p/d/ROOT/f", md5=b"")
        bad = await env.client.put(url, content=b"abc", headers=md5_header(b"abd"))
        assert bad.status_code == 400
        assert env.stored_files() == []
        assert (await env.client.put(url, content=b"abc")).status_code == 201
        assert (env.blobs.root / "p/d/ROOT/f").read_bytes() == b"abc"


async def test_oversize_upload_is_413_and_leaves_nothing(tmp_path: Path) -> None:
    async with blob_server(tmp_path, max_upload_bytes=1000) as env:
        big = b"x" * 4000
        url = env.upload_url("p/d/X/big", md5=hashlib.md5(big).digest())
        # Announced by Content-Length: refused before reading.
        response = await env.client.put(url, content=big, headers=md5_header(big))
        assert response.status_code == 413
        assert env.stored_files() == []

        # Streamed without Content-Length: refused once the limit is passed.
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"x" * 1000

        response = await env.client.put(url, content=chunks(), headers=md5_header(big))
        assert response.status_code == 413
        assert env.stored_files() == []

        # A body right at the limit is fine.
        exact = b"y" * 1000
        exact_url = env.upload_url("p/d/X/exact", md5=hashlib.md5(exact).digest())
        assert (await env.client.put(exact_url, content=exact, headers=md5_header(exact))).status_code == 201


async def test_signed_size_limit_applies(tmp_path: Path) -> None:
    async with blob_server(tmp_path) as env:
        url = env.upload_url("p/d/X/f", max_bytes=len(BODY) - 1)
        response = await env.client.put(url, content=BODY, headers=md5_header(BODY))
        assert response.status_code == 413
        assert env.stored_files() == []


async def test_path_traversal_is_rejected_even_with_a_valid_signature(tmp_path: Path) -> None:
    async with blob_server(tmp_path) as env:
        escapes = tmp_path / "escape"
        for relative in ["../escape", "/etc/passwd-asyncrun", "p/../../escape"]:
            # A genuine signature for the bad path, as if the signer had been fooled.
            query = env.signer.sign_upload(
                relative, expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), content_md5=MD5
            )
            for target in [
                "/blobs/" + relative.replace(".", "%2e").replace("/", "%2F"),
                "/blobs/" + relative.replace(".", "%2E"),
            ]:
                response = await env.client.put(
                    httpx.URL(env.url + target + "?" + query), content=BODY, headers=md5_header(BODY)
                )
                assert response.status_code == 400, (target, response.text)
        # Literal dot segments, which httpx would normalise away, sent as they are.
        assert await raw_put(env.url, "/blobs/../escape") == 400
        assert await raw_put(env.url, "/blobs/p/../../escape") == 400
        assert await raw_put(env.url, "/blobs//etc/passwd-asyncrun") == 400
        assert not escapes.exists()
        assert not (env.blobs.root.parent / "escape").exists()
        assert env.stored_files() == []
        # The server is still serving.
        ok = await env.client.put(env.upload_url("p/d/X/f"), content=BODY, headers=md5_header(BODY))
        assert ok.status_code == 201


async def test_symlink_out_of_the_root_is_rejected(tmp_path: Path) -> None:
    async with blob_server(tmp_path) as env:
        outside = tmp_path / "outside"
        outside.mkdir()
        (env.blobs.root / "p").mkdir()
        (env.blobs.root / "p" / "link").symlink_to(outside)
        response = await env.client.put(env.upload_url("p/link/f"), content=BODY, headers=md5_header(BODY))
        assert response.status_code == 400
        assert list(outside.iterdir()) == []


async def test_file_in_the_way_is_a_conflict(tmp_path: Path) -> None:
    async with blob_server(tmp_path) as env:
        env.blobs.write_bytes("p/d/X/f", b"a file")
        response = await env.client.put(
            env.upload_url("p/d/X/f/inside"), content=BODY, headers=md5_header(BODY)
        )
        assert response.status_code == 409
        assert env.stored_files() == ["p/d/X/f"]


async def test_serve_http_raises_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = create_app(BlobStore(tmp_path), Signer(b"k" * 32), AdminServiceBase(), max_upload_bytes=1)
        async with anyio.create_task_group() as tg:
            with pytest.raises(OSError, match="cannot bind"):
                await tg.start(functools.partial(serve_http, app, port=port))
