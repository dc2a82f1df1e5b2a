"""DataProxyService: hands out signed URLs for the sandbox's blob HTTP endpoint (`_http.py`), or S3
presigned URLs when the blobs live in an object store (`_objectstore.py`).

Follows FlyteAdmin's data proxy (wire notes §3.3 and §5 "Data proxy"):

- `CreateUploadLocation` picks `<project>/<domain>/<filename_root or base32(md5)>/<filename>` and
  returns a signed PUT URL bound to the Content-MD5. The same project, domain, md5 and filename
  always give the same `native_url`, because flytekit's version hash includes it.
- `CreateDownloadLocation` (deprecated upstream) signs a GET for a `native_url` in the blob root.
- `CreateDownloadLink` signs a GET for a node's deck, when the admin service knows one.
- `GetData` resolves `flyte://v1/<project>/<domain>/<execution>/<node>[/<attempt>]/<i|o|d>[/<var>]`
  through the admin service.

Status codes: INVALID_ARGUMENT for bad requests, ALREADY_EXISTS for an existing object with another
MD5, NOT_FOUND when there is nothing to serve. Other faults become INTERNAL via `GuardedService`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import re
import secrets
from typing import TYPE_CHECKING
from urllib.parse import quote

import anyio.to_thread
from grpclib import GRPCError
from grpclib.const import Status

from asyncrun._proto.flyteidl import admin as admin_pb
from asyncrun._proto.flyteidl import core
from asyncrun._proto.flyteidl.service import (
    ArtifactType,
    CreateDownloadLinkRequest,
    CreateDownloadLinkResponse,
    CreateDownloadLocationRequest,
    CreateDownloadLocationResponse,
    CreateUploadLocationRequest,
    CreateUploadLocationResponse,
    DataProxyServiceBase,
    GetDataRequest,
    GetDataResponse,
    PreSignedUrLs,
)
from asyncrun.sandbox._blobs import BlobPathError
from asyncrun.sandbox._guard import GuardedService
from asyncrun.sandbox._objectstore import ObjectBlobStore
from asyncrun.sandbox._signing import base64_md5

if TYPE_CHECKING:
    from collections.abc import Callable

    from asyncrun._proto.flyteidl.service import AdminServiceBase
    from asyncrun.sandbox._blobs import BlobStore
    from asyncrun.sandbox._signing import Signer

__all__ = ["MAX_EXPIRES_IN", "DataProxyService", "blob_url"]

MAX_EXPIRES_IN = dt.timedelta(hours=1)
"""FlyteAdmin's default `Upload.MaxExpiresIn`; also the default when a request sets none."""

# k8s rand.String's alphabet, which FlyteAdmin uses for default file and execution names.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MD5_BYTES = 16
_MAX_LIST_PAGES = 10
_FLYTE_URL = re.compile(
    r"flyte://v1/(?P<project>[^/]+)/(?P<domain>[^/]+)/(?P<name>[^/]+)/(?P<node>[^/]+)"
    r"(?:/(?P<attempt>[0-9]{1,9}))?/(?P<kind>[iod])(?:/(?P<var>[^/]+))?"
)


def blob_url(http_base_url: str, relative: str, query: str) -> str:
    """The HTTP URL of a blob: `<http_base_url>/blobs/<percent-encoded relative path>?<query>`."""
    return f"{http_base_url.rstrip('/')}/blobs/{quote(relative, safe='/')}?{query}"


class DataProxyService(GuardedService, DataProxyServiceBase):
    """The `flyteidl.service.DataProxyService` subset for the sandbox.

    Args:
        blobs: where uploads land.
        signer: signs the URLs that `_http.create_app` verifies.
        http_base_url: how clients reach that app, e.g. `http://127.0.0.1:30081`.
        projects: returns the known projects; when given, uploads for other projects are refused.
            Called on the event loop, so it must be cheap and must not block.
        admin: the admin service, used by `GetData` and `CreateDownloadLink`; without it they
            answer NOT_FOUND.
    """

    def __init__(
        self,
        blobs: BlobStore | ObjectBlobStore,
        signer: Signer,
        http_base_url: str,
        *,
        projects: Callable[[], set[str]] | None = None,
        admin: AdminServiceBase | None = None,
    ) -> None:
        self._blobs = blobs
        self._signer = signer
        self._http_base_url = http_base_url.rstrip("/")
        self._projects = projects
        self._admin = admin

    async def create_upload_location(
        self, message: CreateUploadLocationRequest
    ) -> CreateUploadLocationResponse:
        """Sign a PUT for a new blob; see the module docstring for the path."""
        if not message.project or not message.domain:
            raise GRPCError(Status.INVALID_ARGUMENT, "project and domain are required parameters")
        md5 = message.content_md5
        if not md5 and not message.filename_root:
            raise GRPCError(Status.INVALID_ARGUMENT, "content_md5 or filename_root is a required parameter")
        if md5 and len(md5) != _MD5_BYTES:
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                f"content_md5 must be a raw {_MD5_BYTES}-byte MD5, got {len(md5)} bytes",
            )
        expires_in = _check_expires_in(message.expires_in)
        if self._projects is not None and message.project not in self._projects():
            raise GRPCError(Status.INVALID_ARGUMENT, f"project {message.project!r} does not exist")
        # Without a filename the path cannot be deterministic anyway, as in FlyteAdmin.
        filename = message.filename or "".join(secrets.choice(_NAME_ALPHABET) for _ in range(20))
        try:
            relative = self._blobs.upload_path(
                message.project,
                message.domain,
                filename,
                content_md5=md5,
                filename_root=message.filename_root,
                org=message.org,
            )
            native_url = self._blobs.native_url(relative)
            if message.filename and message.filename_root:
                # The path does not contain the md5 here, so an existing object may hold other bytes.
                stored = await anyio.to_thread.run_sync(self._blobs.md5_of, relative)
                if stored is not None and not (md5 and hmac.compare_digest(stored, md5)):
                    raise GRPCError(
                        Status.ALREADY_EXISTS,
                        f"file already exists at location [{native_url}], "
                        "specify a matching hash if you wish to rewrite",
                    )
        except BlobPathError as exc:
            raise GRPCError(Status.INVALID_ARGUMENT, str(exc)) from exc
        expires_at = _expiry(expires_in)
        if isinstance(self._blobs, ObjectBlobStore):
            store = self._blobs
            signed_url = await anyio.to_thread.run_sync(
                lambda: store.presigned_put(relative, expires_at=expires_at, content_md5=md5)
            )
        else:
            query = self._signer.sign_upload(
                relative, expires_at=expires_at, content_md5=md5, max_bytes=self._blobs.max_bytes
            )
            signed_url = blob_url(self._http_base_url, relative, query)
        return CreateUploadLocationResponse(
            signed_url=signed_url,
            native_url=native_url,
            expires_at=expires_at,
            # Exactly what the PUT must carry; never Content-Length (flytekit sends these verbatim).
            headers={"Content-MD5": base64_md5(md5)} if md5 else {},
        )

    async def create_download_location(
        self, message: CreateDownloadLocationRequest
    ) -> CreateDownloadLocationResponse:
        """Sign a GET for a blob given by its `native_url` (deprecated upstream, kept for old clients)."""
        if not message.native_url:
            raise GRPCError(Status.INVALID_ARGUMENT, "native_url is required")
        expires_in = _check_expires_in(message.expires_in)
        try:
            relative = self._blobs.relative_from_native(message.native_url)
        except BlobPathError as exc:
            raise GRPCError(Status.INVALID_ARGUMENT, f"not in the sandbox blob store: {exc}") from exc
        url, expires_at = await self._signed_get(relative, expires_in)
        return CreateDownloadLocationResponse(signed_url=url, expires_at=expires_at)

    async def create_download_link(self, message: CreateDownloadLinkRequest) -> CreateDownloadLinkResponse:
        """Sign a GET for the deck of a node execution."""
        if message.artifact_type != ArtifactType.DECK:
            raise GRPCError(Status.INVALID_ARGUMENT, "only ARTIFACT_TYPE_DECK is supported")
        if message.node_execution_id is None:
            raise GRPCError(Status.INVALID_ARGUMENT, "node_execution_id is required")
        expires_in = _check_expires_in(message.expires_in)
        url, expires_at = await self._deck_link(message.node_execution_id, expires_in)
        # The deprecated top-level fields too, as FlyteAdmin fills them (flytekit's own tests read them).
        return CreateDownloadLinkResponse(
            signed_url=[url],
            expires_at=expires_at,
            pre_signed_urls=PreSignedUrLs(signed_url=[url], expires_at=expires_at),
        )

    async def get_data(self, message: GetDataRequest) -> GetDataResponse:
        """The inputs, outputs (a whole map or one variable) or deck link behind a `flyte://` URL."""
        match = _FLYTE_URL.fullmatch(message.flyte_url)
        if match is None:
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                f"not a flyte URL: {message.flyte_url!r}; expected "
                "flyte://v1/<project>/<domain>/<execution>/<node>[/<attempt>]/<i|o|d>[/<name>]",
            )
        execution = core.WorkflowExecutionIdentifier(
            project=match["project"], domain=match["domain"], name=match["name"]
        )
        node_id = core.NodeExecutionIdentifier(node_id=match["node"], execution_id=execution)
        kind, var, attempt = match["kind"], match["var"], match["attempt"]
        if kind == "d":
            if var is not None or attempt is not None:
                raise GRPCError(Status.INVALID_ARGUMENT, "a deck URL has no attempt or variable name")
            url, expires_at = await self._deck_link(node_id, MAX_EXPIRES_IN)
            return GetDataResponse(pre_signed_urls=PreSignedUrLs(signed_url=[url], expires_at=expires_at))
        admin = self._require_admin()
        data: admin_pb.NodeExecutionGetDataResponse | admin_pb.TaskExecutionGetDataResponse
        if attempt is None:
            data = await admin.get_node_execution_data(admin_pb.NodeExecutionGetDataRequest(id=node_id))
        else:
            task_id = await self._task_execution_id(admin, node_id, int(attempt))
            data = await admin.get_task_execution_data(admin_pb.TaskExecutionGetDataRequest(id=task_id))
        literals = (data.full_inputs if kind == "i" else data.full_outputs) or core.LiteralMap()
        if var is None:
            return GetDataResponse(literal_map=literals)
        literal = literals.literals.get(var)
        if literal is None:
            which = "input" if kind == "i" else "output"
            raise GRPCError(Status.NOT_FOUND, f"no {which} named {var!r} in {message.flyte_url}")
        return GetDataResponse(literal=literal)

    def _require_admin(self) -> AdminServiceBase:
        if self._admin is None:
            raise GRPCError(Status.NOT_FOUND, "this data proxy has no access to execution data")
        return self._admin

    async def _task_execution_id(
        self, admin: AdminServiceBase, node_id: core.NodeExecutionIdentifier, attempt: int
    ) -> core.TaskExecutionIdentifier:
        token = ""
        for _ in range(_MAX_LIST_PAGES):
            page = await admin.list_task_executions(
                admin_pb.TaskExecutionListRequest(node_execution_id=node_id, limit=100, token=token)
            )
            for task_execution in page.task_executions:
                if task_execution.id is not None and task_execution.id.retry_attempt == attempt:
                    return task_execution.id
            token = page.token
            if not token:
                break
        raise GRPCError(Status.NOT_FOUND, f"node {node_id.node_id!r} has no attempt {attempt}")

    async def _deck_link(
        self, node_id: core.NodeExecutionIdentifier, expires_in: dt.timedelta
    ) -> tuple[str, dt.datetime]:
        admin = self._require_admin()
        node = await admin.get_node_execution(admin_pb.NodeExecutionGetRequest(id=node_id))
        deck_uri = node.closure.deck_uri if node.closure is not None else ""
        if not deck_uri:
            raise GRPCError(Status.NOT_FOUND, f"node {node_id.node_id!r} has no deck")
        try:
            relative = self._blobs.relative_from_native(deck_uri)
        except BlobPathError as exc:
            raise GRPCError(Status.NOT_FOUND, f"the deck {deck_uri} is not in the blob store") from exc
        return await self._signed_get(relative, expires_in)

    async def _signed_get(self, relative: str, expires_in: dt.timedelta) -> tuple[str, dt.datetime]:
        if not await anyio.to_thread.run_sync(self._blobs.exists, relative):
            raise GRPCError(Status.NOT_FOUND, f"no blob at {self._blobs.native_url(relative)}")
        expires_at = _expiry(expires_in)
        if isinstance(self._blobs, ObjectBlobStore):
            store = self._blobs
            url = await anyio.to_thread.run_sync(lambda: store.presigned_get(relative, expires_at=expires_at))
            return url, expires_at
        query = self._signer.sign_download(relative, expires_at=expires_at)
        return blob_url(self._http_base_url, relative, query), expires_at


def _check_expires_in(expires_in: dt.timedelta | None) -> dt.timedelta:
    if expires_in is None:
        return MAX_EXPIRES_IN
    if expires_in <= dt.timedelta(0):
        # FlyteAdmin would sign a URL that is dead on arrival; refusing says what is wrong.
        raise GRPCError(Status.INVALID_ARGUMENT, f"expires_in must be positive, got {expires_in}")
    if expires_in > MAX_EXPIRES_IN:
        raise GRPCError(
            Status.INVALID_ARGUMENT,
            f"expires_in [{expires_in}] cannot exceed max allowed expiration [{MAX_EXPIRES_IN}]",
        )
    return expires_in


def _expiry(expires_in: dt.timedelta) -> dt.datetime:
    # Whole seconds, rounded up, so the response's expires_at is exactly what the signature holds.
    deadline = dt.datetime.now(dt.UTC).timestamp() + expires_in.total_seconds()
    return dt.datetime.fromtimestamp(math.ceil(deadline), dt.UTC)
