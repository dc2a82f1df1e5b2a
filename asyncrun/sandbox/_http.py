"""The sandbox's HTTP side: signed blob uploads and downloads, and a small read-only console.

Routes of `create_app`:

| Route | Answers |
|---|---|
| `PUT /blobs/{path}?<signature>` | 201 stored (new), 200 stored (replaced an existing blob) |
| `GET|HEAD /blobs/{path}?<signature>` | 200 the file (Range supported), 404 none |
| `GET /console?project=&domain=&limit=&token=` | recent executions, newest first (flytesnacks/development) |
| `GET /console/projects/{p}/domains/{d}/executions/{name}` | one execution, 404 when unknown |
| `GET /console/projects/{p}/domains/{d}/executions/{name}/file?uri=` | a file its data names, 404 otherwise |
| `GET /` | redirect to `/console` |

Blob errors (plain text bodies): 400 malformed path (absolute, `..`, empty or control-character segments,
a symlink out of the root), malformed `Content-MD5`, missing `Content-MD5` when the URL binds one,
malformed `Content-Length`, or a body whose MD5 differs from `Content-MD5` (S3's BadDigest); 403
missing, tampered or expired signature, or a `Content-MD5` other than the signed one; 409 a folder or
file is in the way of the target; 413 body larger than the limit (the signed one, `max_upload_bytes`
and the store's, whichever is smallest); 507 disk full. A failed upload leaves nothing behind: the
body goes to a temp file that is renamed into place only after every check passed.

The console's file downloads are limited to files an execution's inputs or outputs name that lie in the
folders given to `create_app` (the sandbox's executions folder and blob root), never any path a URL asks
for.

The console reads only through the admin service's generated async methods, so it works with the
sandbox's AdminService or any other implementation of `AdminServiceBase`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import errno
import functools
import logging
import mimetypes
import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import uvicorn
from grpclib import GRPCError
from grpclib.const import Status
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from asyncrun import _storage
from asyncrun._proto.flyteidl import admin as admin_pb
from asyncrun._proto.flyteidl import core
from asyncrun.sandbox import _console
from asyncrun.sandbox._blobs import BlobDigestError, BlobPathError, BlobTooLargeError
from asyncrun.sandbox._signing import SignatureError, SignatureExpiredError

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterator, Sequence

    from anyio.abc import TaskStatus
    from starlette.types import ASGIApp

    from asyncrun._proto.flyteidl.service import AdminServiceBase
    from asyncrun.sandbox._blobs import BlobStore, BlobWriter
    from asyncrun.sandbox._signing import Signer

__all__ = ["DEFAULT_DOMAIN", "DEFAULT_PROJECT", "create_app", "serve_http"]

log = logging.getLogger("asyncrun.sandbox")

DEFAULT_PROJECT = "flytesnacks"
DEFAULT_DOMAIN = "development"

_COUNT = re.compile(r"[0-9]{1,19}")
_WRITE_BATCH = 1024 * 1024  # bytes handed to the writer thread at once; fewer thread hops than per chunk
_DEFAULT_LIST_LIMIT = 50
_MAX_LIST_LIMIT = 500
_MAX_NODE_PAGES = 20
_CONSOLE_HEADERS = {
    # The console has no scripts at all, so even a bug in escaping cannot run one.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# Blobs (decks are HTML written by tasks) are shown in an opaque origin, never as the console's.
_BLOB_HEADERS = {"Content-Security-Policy": "sandbox allow-scripts", "X-Content-Type-Options": "nosniff"}
_GRPC_TO_HTTP = {
    Status.INVALID_ARGUMENT: 400,
    Status.UNAUTHENTICATED: 401,
    Status.PERMISSION_DENIED: 403,
    Status.NOT_FOUND: 404,
    Status.FAILED_PRECONDITION: 409,
    Status.UNIMPLEMENTED: 501,
    Status.UNAVAILABLE: 503,
    Status.DEADLINE_EXCEEDED: 504,
}


def create_app(
    blobs: BlobStore,
    signer: Signer,
    admin: AdminServiceBase,
    *,
    max_upload_bytes: int,
    files_roots: Sequence[Path] = (),
) -> Starlette:
    """The ASGI app serving signed blob URLs and the console (routes in the module docstring).

    Args:
        blobs: the blob store uploads go to.
        signer: verifies the URLs that `DataProxyService` signed.
        admin: where the console reads executions from.
        max_upload_bytes: the largest upload accepted, on top of the signed and the store's limits.
        files_roots: the folders whose files the console may offer for download (the sandbox's
            executions folder and blob root); empty: the blob store's root.
    """
    endpoints = _Endpoints(blobs, signer, admin, max_upload_bytes, files_roots)
    return Starlette(
        routes=[
            Route("/", endpoints.root, methods=["GET"]),
            Route("/blobs/{path:path}", endpoints.put_blob, methods=["PUT"]),
            Route("/blobs/{path:path}", endpoints.get_blob, methods=["GET"]),
            Route(_console.CONSOLE_PATH, endpoints.console_list, methods=["GET"]),
            Route(
                _console.CONSOLE_PATH + "/projects/{project}/domains/{domain}/executions/{name}",
                endpoints.console_execution,
                methods=["GET"],
            ),
            Route(
                _console.CONSOLE_PATH + "/projects/{project}/domains/{domain}/executions/{name}/file",
                endpoints.console_file,
                methods=["GET"],
            ),
        ],
        exception_handlers={Exception: _unhandled},
    )


def _text(status: int, message: str) -> Response:
    return PlainTextResponse(message + "\n", status_code=status)


async def _unhandled(request: Request, exc: Exception) -> Response:
    # Last resort: handlers already turn expected failures into responses.
    log.error("HTTP %s %s failed", request.method, request.url.path, exc_info=exc)
    return _text(500, f"internal error: {type(exc).__name__}")


class _Endpoints:
    def __init__(
        self,
        blobs: BlobStore,
        signer: Signer,
        admin: AdminServiceBase,
        max_upload_bytes: int,
        files_roots: Sequence[Path] = (),
    ) -> None:
        if max_upload_bytes <= 0:
            raise ValueError(f"max_upload_bytes must be positive, got {max_upload_bytes}")
        self._blobs = blobs
        self._files_roots = [Path(os.path.realpath(root)) for root in files_roots or (blobs.root,)]
        self._signer = signer
        self._admin = admin
        self._max_upload_bytes = max_upload_bytes

    async def root(self, request: Request) -> Response:
        return RedirectResponse(_console.CONSOLE_PATH, status_code=307)

    # ---- blobs ---------------------------------------------------------------------------------

    async def put_blob(self, request: Request) -> Response:
        relative: str = request.path_params["path"]
        try:
            await anyio.to_thread.run_sync(self._blobs.resolve, relative)
        except BlobPathError as exc:
            return _text(400, f"invalid blob path: {exc}")
        try:
            grant = self._signer.verify("PUT", relative, request.url.query)
        except SignatureExpiredError as exc:
            return _text(403, str(exc))
        except SignatureError as exc:
            return _text(403, f"invalid signature: {exc}")

        header = request.headers.get("content-md5")
        expected_md5: bytes | None = None
        if header is not None:
            expected_md5 = _decode_md5(header)
            if expected_md5 is None:
                return _text(400, "Content-MD5 must be the base64 of a 16-byte MD5 digest")
        if grant.content_md5:
            if expected_md5 is None:
                return _text(400, "this URL requires a Content-MD5 header")
            if expected_md5 != _decode_md5(grant.content_md5):
                return _text(403, "Content-MD5 differs from the one this URL was signed for")

        limit = min(self._max_upload_bytes, self._blobs.max_bytes, grant.max_bytes or self._blobs.max_bytes)
        length_header = request.headers.get("content-length")
        if length_header is not None:
            length = _parse_count(length_header)
            if length is None:
                return _text(400, "malformed Content-Length")
            if length > limit:
                return _text(413, f"upload larger than {limit} bytes")

        try:
            writer = await anyio.to_thread.run_sync(
                functools.partial(self._blobs.open_writer, relative, max_bytes=limit)
            )
        except BlobPathError as exc:
            return _text(400, f"invalid blob path: {exc}")
        except OSError as exc:
            return _os_error(exc)
        try:
            created = await self._receive(request, writer, limit, expected_md5)
        except BlobTooLargeError:
            return _text(413, f"upload larger than {limit} bytes")
        except BlobDigestError:
            return _text(400, "the body does not match its Content-MD5 (BadDigest)")
        except ClientDisconnect:
            return _text(400, "client disconnected before the upload finished")
        except OSError as exc:
            return _os_error(exc)
        finally:
            writer.abort()  # no-op after a commit; otherwise drops the temp file
        return _text(201 if created else 200, "stored")

    async def _receive(
        self, request: Request, writer: BlobWriter, limit: int, expected_md5: bytes | None
    ) -> bool:
        pending = bytearray()
        async for chunk in request.stream():
            if writer.size + len(pending) + len(chunk) > limit:
                raise BlobTooLargeError(f"upload larger than {limit} bytes")
            pending += chunk
            if len(pending) >= _WRITE_BATCH:
                await anyio.to_thread.run_sync(writer.write, bytes(pending))
                pending.clear()
        if pending:
            await anyio.to_thread.run_sync(writer.write, bytes(pending))
        return await anyio.to_thread.run_sync(functools.partial(writer.commit, expected_md5=expected_md5))

    async def get_blob(self, request: Request) -> Response:
        relative: str = request.path_params["path"]
        try:
            path = await anyio.to_thread.run_sync(self._blobs.resolve, relative)
        except BlobPathError as exc:
            return _text(400, f"invalid blob path: {exc}")
        try:
            self._signer.verify(request.method, relative, request.url.query)
        except SignatureExpiredError as exc:
            return _text(403, str(exc))
        except SignatureError as exc:
            return _text(403, f"invalid signature: {exc}")
        try:
            stat_result = await anyio.to_thread.run_sync(path.stat)
        except OSError:
            return _text(404, "no such blob")
        if not stat.S_ISREG(stat_result.st_mode):
            return _text(404, "no such blob")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type, stat_result=stat_result, headers=_BLOB_HEADERS)

    # ---- console -------------------------------------------------------------------------------

    async def console_list(self, request: Request) -> Response:
        project = request.query_params.get("project") or DEFAULT_PROJECT
        domain = request.query_params.get("domain") or DEFAULT_DOMAIN
        token = request.query_params.get("token", "")
        limit = _parse_count(request.query_params.get("limit") or str(_DEFAULT_LIST_LIMIT))
        if limit is None or not 1 <= limit <= _MAX_LIST_LIMIT:
            return _html_error(400, "Bad request", f"limit must be a number from 1 to {_MAX_LIST_LIMIT}")
        request_pb = admin_pb.ResourceListRequest(
            id=admin_pb.NamedEntityIdentifier(project=project, domain=domain),
            limit=limit,
            token=token,
            sort_by=admin_pb.Sort(key="created_at", direction=admin_pb.SortDirection.DESCENDING),
        )
        try:
            listing = await self._admin.list_executions(request_pb)
            page = _console.render_execution_list(
                listing.executions,
                project=project,
                domain=domain,
                limit=limit,
                next_token=listing.token,
                now=dt.datetime.now(dt.UTC),
            )
        except GRPCError as exc:
            return _grpc_error_page(exc)
        except Exception as exc:
            return _internal_error_page(request, exc)
        return HTMLResponse(page, headers=_CONSOLE_HEADERS)

    async def console_execution(self, request: Request) -> Response:
        execution_id = core.WorkflowExecutionIdentifier(
            project=request.path_params["project"],
            domain=request.path_params["domain"],
            name=request.path_params["name"],
        )
        try:
            execution = await self._admin.get_execution(admin_pb.WorkflowExecutionGetRequest(id=execution_id))
            # Nodes and data are extras: a failure there is a note on the page, not an error page.
            nodes_note: list[str] = []
            data_note: list[str] = []
            nodes: list[admin_pb.NodeExecution] = []
            data: list[admin_pb.WorkflowExecutionGetDataResponse] = []
            labels: dict[str, str] = {}
            workflow_id = execution.closure.workflow_id if execution.closure is not None else None
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._fetch_nodes, execution_id, nodes, nodes_note)
                tg.start_soon(self._fetch_data, execution_id, data, data_note)
                tg.start_soon(self._fetch_labels, workflow_id, labels)
            ident = (execution_id.project, execution_id.domain, execution_id.name)
            page = _console.render_execution(
                execution,
                nodes,
                inputs=data[0].full_inputs if data else None,
                outputs=data[0].full_outputs if data else None,
                notes=nodes_note + data_note,
                now=dt.datetime.now(dt.UTC),
                labels=labels,
                blob_link=lambda uri: _console.file_path(*ident, uri) if self._local_file(uri) else None,
            )
        except GRPCError as exc:
            return _grpc_error_page(exc)
        except Exception as exc:
            return _internal_error_page(request, exc)
        return HTMLResponse(page, headers=_CONSOLE_HEADERS)

    async def console_file(self, request: Request) -> Response:
        """A file named by the execution's inputs or outputs, when it lies under the data folder."""
        execution_id = core.WorkflowExecutionIdentifier(
            project=request.path_params["project"],
            domain=request.path_params["domain"],
            name=request.path_params["name"],
        )
        uri = request.query_params.get("uri", "")
        try:
            data = await self._admin.get_execution_data(
                admin_pb.WorkflowExecutionGetDataRequest(id=execution_id)
            )
        except GRPCError as exc:
            return _grpc_error_page(exc)
        except Exception as exc:
            return _internal_error_page(request, exc)
        # Only files this execution names, and only below the data folder: never any path a URL asks for.
        path = (
            self._local_file(uri) if uri in _console.blob_uris(data.full_inputs, data.full_outputs) else None
        )
        if path is None:
            return _html_error(404, "Not found", f"execution {execution_id.name} names no such file here")
        try:
            stat_result = await anyio.to_thread.run_sync(path.stat)
        except OSError:
            return _html_error(404, "Not found", f"{uri} no longer exists")
        if not stat.S_ISREG(stat_result.st_mode):
            return _html_error(404, "Not found", f"{uri} is not a regular file")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(
            path,
            media_type=media_type,
            stat_result=stat_result,
            filename=path.name,
            content_disposition_type="attachment",
            headers=_BLOB_HEADERS,
        )

    def _local_file(self, uri: str) -> Path | None:
        """The real path of a local file URI below one of `files_roots`, else None."""
        if not _storage.is_local(uri):
            return None
        raw = _storage.local_path(uri)
        if not raw.is_absolute():
            return None
        real = Path(os.path.realpath(raw))
        inside = any(real.is_relative_to(root) and real != root for root in self._files_roots)
        return real if inside else None

    async def _fetch_labels(self, workflow_id: core.Identifier | None, out: dict[str, str]) -> None:
        if workflow_id is None:
            return
        # Labels are an extra: without the workflow the nodes show their ids only.
        with contextlib.suppress(GRPCError):
            workflow = await self._admin.get_workflow(admin_pb.ObjectGetRequest(id=workflow_id))
            out.update(_console.node_labels(workflow))

    async def _fetch_nodes(
        self,
        execution_id: core.WorkflowExecutionIdentifier,
        out: list[admin_pb.NodeExecution],
        notes: list[str],
    ) -> None:
        token = ""
        try:
            for _ in range(_MAX_NODE_PAGES):  # bounded, in case a server keeps handing out tokens
                page = await self._admin.list_node_executions(
                    admin_pb.NodeExecutionListRequest(
                        workflow_execution_id=execution_id,
                        limit=100,
                        token=token,
                        sort_by=admin_pb.Sort(key="created_at", direction=admin_pb.SortDirection.ASCENDING),
                    )
                )
                out.extend(page.node_executions)
                token = page.token
                if not token:
                    return
            notes.append(f"only the first {len(out)} node executions are shown")
        except GRPCError as exc:
            notes.append(f"node executions unavailable: {_status_text(exc)}")

    async def _fetch_data(
        self,
        execution_id: core.WorkflowExecutionIdentifier,
        out: list[admin_pb.WorkflowExecutionGetDataResponse],
        notes: list[str],
    ) -> None:
        try:
            out.append(
                await self._admin.get_execution_data(
                    admin_pb.WorkflowExecutionGetDataRequest(id=execution_id)
                )
            )
        except GRPCError as exc:
            notes.append(f"inputs and outputs unavailable: {_status_text(exc)}")


def _parse_count(text: str) -> int | None:
    # ASCII digits only: str.isdigit() also accepts "²", which int() then rejects.
    return int(text) if _COUNT.fullmatch(text) else None


def _decode_md5(text: str) -> bytes | None:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 16 else None


def _os_error(exc: OSError) -> Response:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _text(507, "the blob store is full")
    if exc.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENOTEMPTY):
        return _text(409, "another blob or folder is in the way of this path")
    log.error("blob upload failed", exc_info=exc)
    return _text(500, f"could not store the blob: {exc.strerror or type(exc).__name__}")


def _status_text(exc: GRPCError) -> str:
    return f"{exc.status.name}: {exc.message}" if exc.message else exc.status.name


def _html_error(status: int, title: str, message: str) -> Response:
    return HTMLResponse(_console.render_error_page(status, title, message), status, headers=_CONSOLE_HEADERS)


def _grpc_error_page(exc: GRPCError) -> Response:
    status = _GRPC_TO_HTTP.get(exc.status, 500)
    title = "Not found" if status == 404 else "Admin service error"
    return _html_error(status, title, _status_text(exc))


def _internal_error_page(request: Request, exc: Exception) -> Response:
    log.error("console %s failed", request.url.path, exc_info=exc)
    return _html_error(500, "Internal error", f"{type(exc).__name__}: {exc}")


# ---- serving -----------------------------------------------------------------------------------


class _EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves signals to the host process and says when startup is over."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_done = anyio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The host process owns SIGINT/SIGTERM; this server stops when its task is cancelled.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            # Also on failure (uvicorn then raises SystemExit), so the waiter wakes up either way.
            self.startup_done.set()


async def serve_http(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    sock: socket.socket | None = None,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` with uvicorn until cancelled: `url = await tg.start(serve_http, app)`.

    Cancelling the task shuts the server down gracefully (open requests get up to 5 s).

    Args:
        app: the ASGI app, e.g. from `create_app`.
        host: the address to bind; loopback by default.
        port: the port; 0 picks a free one.
        sock: an already bound socket to serve on instead of `host`/`port`; closed on exit.
        task_status: receives the base URL, e.g. `http://127.0.0.1:41234`, once it accepts connections.

    Raises:
        OSError: the address cannot be bound.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # leave logging to the host process
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=5,
    )
    server = _EmbeddedServer(config)
    sockets = [sock] if sock is not None else None
    startup_failed = False
    finished = anyio.Event()

    async def run() -> None:
        nonlocal startup_failed
        try:
            # Shielded so a cancellation becomes a graceful shutdown (should_exit) below.
            with anyio.CancelScope(shield=True):
                await server.serve(sockets=sockets)
        except SystemExit:  # uvicorn calls sys.exit() when it cannot bind
            startup_failed = True
        finally:
            finished.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        try:
            await server.startup_done.wait()
            if server.started:
                bound_host, bound_port = server.servers[0].sockets[0].getsockname()[:2]
                url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
                task_status.started(f"http://{url_host}:{bound_port}")
                await finished.wait()  # normally until cancelled
        finally:
            server.should_exit = True
    if server.started:
        return
    # Raised outside the task group, so callers see a plain OSError rather than a group.
    problem = "cannot bind" if startup_failed else "stopped during startup"
    raise OSError(f"HTTP server on {host}:{port} {problem}")
