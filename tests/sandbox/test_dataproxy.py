"""DataProxyService through a real grpclib server and the generated stub, with real PUTs over HTTP."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.server import Server

from asyncrun._proto.flyteidl import admin as admin_pb
from asyncrun._proto.flyteidl import core
from asyncrun._proto.flyteidl.service import (
    AdminServiceBase,
    ArtifactType,
    CreateDownloadLinkRequest,
    CreateDownloadLocationRequest,
    CreateUploadLocationRequest,
    DataProxyServiceStub,
    GetDataRequest,
)
from asyncrun.sandbox._blobs import BlobStore
from asyncrun.sandbox._dataproxy import DataProxyService
from asyncrun.sandbox._http import create_app, serve_http
from asyncrun.sandbox._signing import Signer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

pytestmark = pytest.mark.anyio

TARBALL = b"\x1f\x8b fake tarball " * 64
MD5 = hashlib.md5(TARBALL).digest()
HOUR = dt.timedelta(hours=1)


class FakeAdmin(AdminServiceBase):
    """Canned node data and decks for GetData and CreateDownloadLink."""

    def __init__(self, deck_uri: str = "") -> None:
        self.deck_uri = deck_uri
        self.inputs = core.LiteralMap(
            literals={"x": core.Literal(scalar=core.Scalar(primitive=core.Primitive(integer=3)))}
        )
        self.outputs = core.LiteralMap(
            literals={"o0": core.Literal(scalar=core.Scalar(primitive=core.Primitive(string_value="hi")))}
        )

    async def get_node_execution(self, message: admin_pb.NodeExecutionGetRequest) -> admin_pb.NodeExecution:
        if message.id is None or message.id.node_id != "n0":
            raise GRPCError(Status.NOT_FOUND, "no such node")
        return admin_pb.NodeExecution(
            id=message.id, closure=admin_pb.NodeExecutionClosure(deck_uri=self.deck_uri)
        )

    async def get_node_execution_data(
        self, message: admin_pb.NodeExecutionGetDataRequest
    ) -> admin_pb.NodeExecutionGetDataResponse:
        assert message.id is not None and message.id.execution_id is not None
        if message.id.execution_id.name == "boom":
            raise RuntimeError("database is on fire")
        if (message.id.execution_id.project, message.id.node_id) != ("p", "n0"):
            raise GRPCError(Status.NOT_FOUND, "no such node execution")
        return admin_pb.NodeExecutionGetDataResponse(full_inputs=self.inputs, full_outputs=self.outputs)

    async def list_task_executions(
        self, message: admin_pb.TaskExecutionListRequest
    ) -> admin_pb.TaskExecutionList:
        ids = [
            core.TaskExecutionIdentifier(node_execution_id=message.node_execution_id, retry_attempt=attempt)
            for attempt in (0, 1)
        ]
        return admin_pb.TaskExecutionList(task_executions=[admin_pb.TaskExecution(id=i) for i in ids])

    async def get_task_execution_data(
        self, message: admin_pb.TaskExecutionGetDataRequest
    ) -> admin_pb.TaskExecutionGetDataResponse:
        assert message.id is not None
        attempt = core.Literal(scalar=core.Scalar(primitive=core.Primitive(integer=message.id.retry_attempt)))
        return admin_pb.TaskExecutionGetDataResponse(
            full_outputs=core.LiteralMap(literals={"attempt": attempt})
        )


@dataclass
class Env:
    stub: DataProxyServiceStub
    blobs: BlobStore
    signer: Signer
    http: httpx.AsyncClient
    http_url: str


@asynccontextmanager
async def dataproxy(
    tmp_path: Path,
    *,
    projects: Callable[[], set[str]] | None = None,
    admin: AdminServiceBase | None = None,
) -> AsyncIterator[Env]:
    """Blob HTTP app on uvicorn, DataProxyService on a grpclib server, both on 127.0.0.1:0."""
    blobs = BlobStore(tmp_path / "blobs")
    signer = Signer(b"k" * 32)
    app = create_app(blobs, signer, admin or AdminServiceBase(), max_upload_bytes=1 << 20)
    async with anyio.create_task_group() as tg:
        http_url = await tg.start(functools.partial(serve_http, app))
        service = DataProxyService(blobs, signer, http_url, projects=projects, admin=admin)
        server = Server([service])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await server.start(sock=sock)
        channel = Channel("127.0.0.1", sock.getsockname()[1])
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                yield Env(DataProxyServiceStub(channel), blobs, signer, http, http_url)
        finally:
            channel.close()
            server.close()
            await server.wait_closed()
            tg.cancel_scope.cancel()


def upload_request(**overrides: object) -> CreateUploadLocationRequest:
    fields: dict[str, object] = {
        "project": "flytesnacks",
        "domain": "development",
        "filename": f"fast{MD5.hex()}.tar.gz",
        "content_md5": MD5,
        "add_content_md5_metadata": True,
    }
    fields.update(overrides)
    return CreateUploadLocationRequest(**fields)  # type: ignore[arg-type]


async def put_like_flytekit(
    env: Env, signed_url: str, headers: dict[str, str], body: bytes
) -> httpx.Response:
    """flytekit sends Content-Length and Content-MD5, then the response headers on top."""
    sent = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(), **headers}
    return await env.http.put(signed_url, content=body, headers=sent)


async def status_of(call: object) -> Status:
    with pytest.raises(GRPCError) as info:
        await call  # type: ignore[misc]
    return info.value.status


def on_disk(native_url: str) -> anyio.Path:
    """The file behind a sandbox native URL (`local://<absolute path>`)."""
    assert native_url.startswith("local:///"), native_url
    return anyio.Path(native_url.removeprefix("local://"))


async def test_upload_flow_puts_the_file_at_native_url(tmp_path: Path) -> None:
    async with dataproxy(tmp_path) as env:
        before = dt.datetime.now(dt.UTC)
        response = await env.stub.create_upload_location(upload_request())
        after = dt.datetime.now(dt.UTC)
        b32 = base64.b32encode(MD5).decode()
        expected = env.blobs.root / "flytesnacks" / "development" / b32 / f"fast{MD5.hex()}.tar.gz"
        assert response.native_url == f"local://{expected}"
        assert response.signed_url.startswith(env.http_url + "/blobs/flytesnacks/development/")
        assert response.headers == {"Content-MD5": base64.b64encode(MD5).decode()}
        assert response.expires_at is not None
        assert (
            before + HOUR - dt.timedelta(seconds=1)  # whole seconds, rounded up
            <= response.expires_at
            <= after + HOUR + dt.timedelta(seconds=1)
        )

        put = await put_like_flytekit(env, response.signed_url, response.headers, TARBALL)
        assert put.status_code in (200, 201), put.text
        assert await on_disk(response.native_url).read_bytes() == TARBALL


async def test_same_inputs_give_the_same_native_url(tmp_path: Path) -> None:
    async with dataproxy(tmp_path) as env:
        first = await env.stub.create_upload_location(upload_request())
        again = await env.stub.create_upload_location(upload_request(expires_in=dt.timedelta(minutes=5)))
        assert again.native_url == first.native_url
        other_md5 = await env.stub.create_upload_location(
            upload_request(content_md5=hashlib.md5(b"x").digest())
        )
        assert other_md5.native_url != first.native_url
        other_domain = await env.stub.create_upload_location(upload_request(domain="staging"))
        assert other_domain.native_url != first.native_url


async def test_filename_defaults_to_20_random_characters(tmp_path: Path) -> None:
    async with dataproxy(tmp_path) as env:
        first = await env.stub.create_upload_location(upload_request(filename=""))
        second = await env.stub.create_upload_location(upload_request(filename=""))
        assert len(Path(first.native_url).name) == 20
        assert first.native_url != second.native_url


@pytest.mark.parametrize(
    "overrides",
    [
        {"project": ""},
        {"domain": ""},
        {"content_md5": b"", "filename_root": ""},
        {"content_md5": MD5[:15]},
        {"content_md5": MD5 + b"!"},
        {"expires_in": HOUR + dt.timedelta(seconds=1)},
        {"expires_in": dt.timedelta(seconds=-1)},
        {"project": ".."},
        {"filename": "../../../etc/cron.d/x"},
        {"filename_root": "a/b"},
    ],
    ids=[
        "no-project",
        "no-domain",
        "no-md5-no-root",
        "md5-15-bytes",
        "md5-17-bytes",
        "expires-too-long",
        "expires-negative",
        "dotdot-project",
        "traversal-filename",
        "slash-root",
    ],
)
async def test_invalid_upload_requests_are_invalid_argument(
    tmp_path: Path, overrides: dict[str, object]
) -> None:
    async with dataproxy(tmp_path) as env:
        assert (
            await status_of(env.stub.create_upload_location(upload_request(**overrides)))
            == Status.INVALID_ARGUMENT
        )
        # The maximum itself is allowed.
        await env.stub.create_upload_location(upload_request(expires_in=HOUR))


async def test_unknown_project_is_refused_when_projects_are_known(tmp_path: Path) -> None:
    async with dataproxy(tmp_path, projects=lambda: {"flytesnacks"}) as env:
        await env.stub.create_upload_location(upload_request())
        status = await status_of(env.stub.create_upload_location(upload_request(project="nope")))
        assert status == Status.INVALID_ARGUMENT


async def test_existing_object_with_another_md5_is_already_exists(tmp_path: Path) -> None:
    async with dataproxy(tmp_path) as env:
        request = upload_request(filename="data.csv", filename_root="ROOT")
        first = await env.stub.create_upload_location(request)
        put = await put_like_flytekit(env, first.signed_url, first.headers, TARBALL)
        assert put.status_code == 201
        # Same bytes again: fine, same place.
        assert (await env.stub.create_upload_location(request)).native_url == first.native_url
        other = upload_request(
            filename="data.csv", filename_root="ROOT", content_md5=hashlib.md5(b"x").digest()
        )
        assert await status_of(env.stub.create_upload_location(other)) == Status.ALREADY_EXISTS
        no_md5 = upload_request(filename="data.csv", filename_root="ROOT", content_md5=b"")
        assert await status_of(env.stub.create_upload_location(no_md5)) == Status.ALREADY_EXISTS
        assert await on_disk(first.native_url).read_bytes() == TARBALL


async def test_filename_root_without_md5_gives_an_unbound_upload(tmp_path: Path) -> None:
    async with dataproxy(tmp_path) as env:
        response = await env.stub.create_upload_location(
            upload_request(filename="dir/a.txt", filename_root="ROOT", content_md5=b"")
        )
        assert response.headers == {}
        assert response.native_url.endswith("/flytesnacks/development/ROOT/dir/a.txt")
        put = await env.http.put(response.signed_url, content=b"anything")
        assert put.status_code == 201
        assert await on_disk(response.native_url).read_bytes() == b"anything"


async def test_download_location_signs_a_get_for_blobs_in_the_root(tmp_path: Path) -> None:
    async with dataproxy(tmp_path) as env:
        path = env.blobs.write_bytes("flytesnacks/development/X/out.txt", b"result")
        response = await env.stub.create_download_location(
            CreateDownloadLocationRequest(native_url=str(path))
        )
        got = await env.http.get(response.signed_url)
        assert got.status_code == 200
        assert got.content == b"result"
        outside = CreateDownloadLocationRequest(native_url=str(tmp_path / "secret"))
        assert await status_of(env.stub.create_download_location(outside)) == Status.INVALID_ARGUMENT
        missing = CreateDownloadLocationRequest(native_url=str(env.blobs.root / "p/d/X/none"))
        assert await status_of(env.stub.create_download_location(missing)) == Status.NOT_FOUND
        assert await status_of(env.stub.create_download_location(CreateDownloadLocationRequest())) == (
            Status.INVALID_ARGUMENT
        )


def node_id(node: str = "n0") -> core.NodeExecutionIdentifier:
    execution = core.WorkflowExecutionIdentifier(project="p", domain="d", name="e")
    return core.NodeExecutionIdentifier(node_id=node, execution_id=execution)


async def test_download_link_serves_a_deck_or_says_why_not(tmp_path: Path) -> None:
    async with dataproxy(tmp_path) as env:
        deck = CreateDownloadLinkRequest(artifact_type=ArtifactType.DECK, node_execution_id=node_id())
        assert await status_of(env.stub.create_download_link(deck)) == Status.NOT_FOUND  # no admin to ask
        no_node = CreateDownloadLinkRequest(artifact_type=ArtifactType.DECK)
        assert await status_of(env.stub.create_download_link(no_node)) == Status.INVALID_ARGUMENT
        undefined = CreateDownloadLinkRequest(node_execution_id=node_id())
        assert await status_of(env.stub.create_download_link(undefined)) == Status.INVALID_ARGUMENT

    blobs_root = tmp_path / "with-admin"
    deck_path = BlobStore(blobs_root / "blobs").write_bytes("p/d/e/n0/deck.html", b"<h1>deck</h1>")
    async with dataproxy(blobs_root, admin=FakeAdmin(deck_uri=str(deck_path))) as env:
        response = await env.stub.create_download_link(
            CreateDownloadLinkRequest(artifact_type=ArtifactType.DECK, node_execution_id=node_id())
        )
        assert response.pre_signed_urls is not None
        got = await env.http.get(response.pre_signed_urls.signed_url[0])
        assert got.content == b"<h1>deck</h1>"
        # FlyteAdmin fills the deprecated fields too (flytekit's get_download_artifact_signed_url reads them).
        assert response.signed_url == response.pre_signed_urls.signed_url
        assert response.expires_at == response.pre_signed_urls.expires_at
        other = CreateDownloadLinkRequest(artifact_type=ArtifactType.DECK, node_execution_id=node_id("n9"))
        assert await status_of(env.stub.create_download_link(other)) == Status.NOT_FOUND

    async with dataproxy(tmp_path / "outside-deck", admin=FakeAdmin(deck_uri="/etc/hostname")) as env:
        deck = CreateDownloadLinkRequest(artifact_type=ArtifactType.DECK, node_execution_id=node_id())
        assert await status_of(env.stub.create_download_link(deck)) == Status.NOT_FOUND


async def test_get_data_resolves_flyte_urls_through_the_admin_service(tmp_path: Path) -> None:
    admin = FakeAdmin()
    async with dataproxy(tmp_path, admin=admin) as env:
        inputs = await env.stub.get_data(GetDataRequest(flyte_url="flyte://v1/p/d/e/n0/i"))
        assert inputs.literal_map == admin.inputs
        one = await env.stub.get_data(GetDataRequest(flyte_url="flyte://v1/p/d/e/n0/o/o0"))
        assert one.literal == admin.outputs.literals["o0"]
        attempt = await env.stub.get_data(GetDataRequest(flyte_url="flyte://v1/p/d/e/n0/1/o"))
        assert attempt.literal_map is not None
        assert attempt.literal_map.literals["attempt"].scalar.primitive.integer == 1  # type: ignore[union-attr]
        for url, status in [
            ("flyte://v1/p/d/e/n0/o/missing", Status.NOT_FOUND),
            ("flyte://v1/p/d/e/n9/o", Status.NOT_FOUND),  # the admin service's NOT_FOUND passes through
            ("flyte://v1/p/d/e/n0/7/o", Status.NOT_FOUND),  # no such attempt
            ("flyte://v1/p/d/e/n0/d", Status.NOT_FOUND),  # no deck
            ("flyte://v1/p/d/e/n0/x", Status.INVALID_ARGUMENT),
            ("s3://bucket/key", Status.INVALID_ARGUMENT),
            ("", Status.INVALID_ARGUMENT),
            ("flyte://v1/p/d/boom/n0/i", Status.INTERNAL),  # a fault is INTERNAL, never UNKNOWN
        ]:
            assert await status_of(env.stub.get_data(GetDataRequest(flyte_url=url))) == status, url


async def test_get_data_without_admin_is_not_found(tmp_path: Path) -> None:
    async with dataproxy(tmp_path) as env:
        assert await status_of(env.stub.get_data(GetDataRequest(flyte_url="flyte://v1/p/d/e/n0/i"))) == (
            Status.NOT_FOUND
        )
