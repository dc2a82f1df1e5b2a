"""The console: pages from canned admin messages, over real HTTP and in headless Chromium."""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import shutil
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest
from grpclib import GRPCError
from grpclib.const import Status

from asyncrun._proto.flyteidl import admin as admin_pb
from asyncrun._proto.flyteidl import core
from asyncrun._proto.flyteidl.service import AdminServiceBase
from asyncrun._proto.google import protobuf as gp
from asyncrun.sandbox._blobs import BlobStore
from asyncrun.sandbox._console import execution_path, is_terminal, render_literal, render_literal_map
from asyncrun.sandbox._http import create_app, serve_http
from asyncrun.sandbox._signing import Signer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio

CHROMIUM = os.environ.get("ASYNCRUN_CHROMIUM", "/usr/bin/chromium")  # another path: tests of the check
HAVE_CHROMIUM = Path(CHROMIUM).exists()
T0 = dt.datetime(2030, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
XSS = "<script>document.title='pwned'</script>"
Phase = core.WorkflowExecutionPhase


def prim(**value: object) -> core.Literal:
    return core.Literal(scalar=core.Scalar(primitive=core.Primitive(**value)))  # type: ignore[arg-type]


def blob(uri: str, *, multipart: bool = False) -> core.Literal:
    dimensionality = (
        core.BlobTypeBlobDimensionality.MULTIPART if multipart else core.BlobTypeBlobDimensionality.SINGLE
    )
    metadata = core.BlobMetadata(type=core.BlobType(format="csv", dimensionality=dimensionality))
    return core.Literal(scalar=core.Scalar(blob=core.Blob(uri=uri, metadata=metadata)))


INPUTS = core.LiteralMap(
    literals={
        "name": prim(string_value="world"),
        "times": prim(integer=2),
        "ratio": prim(float_value=0.5),
        "flag": prim(boolean=True),
        "when": prim(datetime=T0),
        "items": core.Literal(
            collection=core.LiteralCollection(literals=[prim(integer=i) for i in (1, 2, 3)])
        ),
        "scores": core.Literal(
            map=core.LiteralMap(literals={"a": prim(integer=1), "b": prim(float_value=2.5)})
        ),
        "data": blob("/srv/blobs/flytesnacks/development/ABC=/data.csv"),
        "nothing": core.Literal(scalar=core.Scalar(none_type=core.Void())),
        "config": core.Literal(scalar=core.Scalar(generic=gp.Struct.from_dict({"k": "v"}))),
    }
)
OUTPUTS = core.LiteralMap(literals={"o0": prim(string_value="HELLO WORLD")})


def lp_id(name: str = "hello.wf") -> core.Identifier:
    return core.Identifier(
        resource_type=core.ResourceType.LAUNCH_PLAN,
        project="flytesnacks",
        domain="development",
        name=name,
        version="v1",
    )


def execution(
    name: str, phase: Phase, created: dt.datetime, error: core.ExecutionError | None = None
) -> admin_pb.Execution:
    closure = admin_pb.ExecutionClosure(
        phase=phase,
        created_at=created,
        started_at=created + dt.timedelta(seconds=1),
        duration=dt.timedelta(seconds=75) if is_terminal(phase) else None,
        error=error,
        workflow_id=core.Identifier(resource_type=core.ResourceType.WORKFLOW, name="hello.wf", version="v1"),
    )
    ident = core.WorkflowExecutionIdentifier(project="flytesnacks", domain="development", name=name)
    return admin_pb.Execution(id=ident, spec=admin_pb.ExecutionSpec(launch_plan=lp_id()), closure=closure)


def node(name: str, phase: core.NodeExecutionPhase, error: str = "") -> admin_pb.NodeExecution:
    closure = admin_pb.NodeExecutionClosure(
        phase=phase,
        started_at=T0,
        duration=dt.timedelta(seconds=3),
        error=core.ExecutionError(code="USER:ValueError", message=error) if error else None,
    )
    return admin_pb.NodeExecution(id=core.NodeExecutionIdentifier(node_id=name), closure=closure)


class ConsoleAdmin(AdminServiceBase):
    """Canned executions in flytesnacks/development; records what the console asked for."""

    def __init__(self) -> None:
        failure = core.ExecutionError(
            code="USER:RuntimeError",
            message=f"Traceback (most recent call last):\n{XSS}",
            kind=core.ExecutionErrorErrorKind.USER,
        )
        self.executions = {
            "arunning": execution("arunning", Phase.RUNNING, T0 + dt.timedelta(minutes=2)),
            "afailed": execution("afailed", Phase.FAILED, T0 + dt.timedelta(minutes=1), failure),
            "asucceeded": execution("asucceeded", Phase.SUCCEEDED, T0),
            "anodata": execution("anodata", Phase.SUCCEEDED, T0 - dt.timedelta(minutes=1)),
        }
        self.nodes = {
            "afailed": [
                node("start-node", core.NodeExecutionPhase.SUCCEEDED),
                node("n0", core.NodeExecutionPhase.SUCCEEDED),
                node("n1", core.NodeExecutionPhase.FAILED, error="bad value <img src=x onerror=alert(1)>"),
            ],
            "asucceeded": [node("n0", core.NodeExecutionPhase.SUCCEEDED)],
        }
        self.list_requests: list[admin_pb.ResourceListRequest] = []

    async def list_executions(self, message: admin_pb.ResourceListRequest) -> admin_pb.ExecutionList:
        self.list_requests.append(message)
        assert message.id is not None
        if (message.id.project, message.id.domain) != ("flytesnacks", "development"):
            return admin_pb.ExecutionList()
        newest_first = sorted(self.executions.values(), key=lambda e: e.closure.created_at, reverse=True)  # type: ignore[union-attr,arg-type,return-value]
        return admin_pb.ExecutionList(executions=newest_first[: message.limit])

    async def get_execution(self, message: admin_pb.WorkflowExecutionGetRequest) -> admin_pb.Execution:
        assert message.id is not None
        if message.id.name == "explode":
            raise RuntimeError("admin crashed")
        found = self.executions.get(message.id.name)
        if found is None or message.id.project != "flytesnacks":
            raise GRPCError(
                Status.NOT_FOUND, f"missing entity of type execution with identifier {message.id.name}"
            )
        return found

    async def list_node_executions(
        self, message: admin_pb.NodeExecutionListRequest
    ) -> admin_pb.NodeExecutionList:
        assert message.workflow_execution_id is not None
        return admin_pb.NodeExecutionList(
            node_executions=self.nodes.get(message.workflow_execution_id.name, [])
        )

    async def get_execution_data(
        self, message: admin_pb.WorkflowExecutionGetDataRequest
    ) -> admin_pb.WorkflowExecutionGetDataResponse:
        assert message.id is not None
        if message.id.name == "anodata":
            raise GRPCError(Status.UNIMPLEMENTED)
        outputs = OUTPUTS if message.id.name == "asucceeded" else None
        return admin_pb.WorkflowExecutionGetDataResponse(full_inputs=INPUTS, full_outputs=outputs)


@asynccontextmanager
async def console(tmp_path: Path, admin: ConsoleAdmin) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    app = create_app(BlobStore(tmp_path / "blobs"), Signer(b"k" * 32), admin, max_upload_bytes=1024)
    async with anyio.create_task_group() as tg:
        url = await tg.start(functools.partial(serve_http, app))
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                yield url, client
        finally:
            tg.cancel_scope.cancel()


def page_of(name: str) -> str:
    return execution_path("flytesnacks", "development", name)


# ---- plain HTTP ------------------------------------------------------------------------------


async def test_list_shows_recent_executions_newest_first_with_defaults(tmp_path: Path) -> None:
    admin = ConsoleAdmin()
    async with console(tmp_path, admin) as (_, client):
        response = await client.get("/console")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "script-src" not in response.headers["content-security-policy"]  # no scripts allowed at all
        body = response.text
        request = admin.list_requests[-1]
        assert request.id == admin_pb.NamedEntityIdentifier(project="flytesnacks", domain="development")
        assert request.sort_by == admin_pb.Sort(key="created_at", direction=admin_pb.SortDirection.DESCENDING)
        assert request.limit == 50
        positions = [body.index(f'href="{page_of(name)}"') for name in ("arunning", "afailed", "asucceeded")]
        assert positions == sorted(positions)
        assert ">RUNNING<" in body and ">FAILED<" in body and ">SUCCEEDED<" in body
        assert 'http-equiv="refresh"' in body  # one execution still runs
        assert "hello.wf" in body


async def test_list_takes_project_domain_and_limit_from_the_query(tmp_path: Path) -> None:
    admin = ConsoleAdmin()
    async with console(tmp_path, admin) as (_, client):
        response = await client.get(
            "/console", params={"project": 'a"b&<c>', "domain": "staging", "limit": "5"}
        )
        assert response.status_code == 200
        request = admin.list_requests[-1]
        assert (request.id.project, request.id.domain, request.limit) == ('a"b&<c>', "staging", 5)  # type: ignore[union-attr]
        assert 'value="a&quot;b&amp;&lt;c&gt;"' in response.text
        assert "No executions yet" in response.text
        assert 'http-equiv="refresh"' not in response.text
        for bad in ("0", "abc", "100000", "²"):
            assert (await client.get("/console", params={"limit": bad})).status_code == 400
        redirect = await client.get("/")
        assert redirect.status_code == 307
        assert redirect.headers["location"] == "/console"


async def test_succeeded_execution_shows_timing_nodes_inputs_and_outputs(tmp_path: Path) -> None:
    async with console(tmp_path, ConsoleAdmin()) as (_, client):
        response = await client.get(page_of("asucceeded"))
        assert response.status_code == 200
        body = response.text
        assert ">SUCCEEDED<" in body
        assert "2030-05-01 12:00:00 UTC" in body  # created
        assert "1m 15s" in body  # duration
        assert "hello.wf" in body and ":v1" in body
        assert "<td>n0</td>" in body
        for shown in [
            "&quot;world&quot;",
            ">2<",
            "0.5",
            "True",
            "[1, 2, 3]",
            "{&quot;a&quot;: 1, &quot;b&quot;: 2.5}",
            "/srv/blobs/flytesnacks/development/ABC=/data.csv",
            "None",
            "2030-05-01T12:00:00+00:00",
            "{&quot;k&quot;: &quot;v&quot;}",
            "&quot;HELLO WORLD&quot;",
        ]:
            assert shown in body, shown
        assert 'http-equiv="refresh"' not in body


async def test_running_execution_refreshes_itself(tmp_path: Path) -> None:
    async with console(tmp_path, ConsoleAdmin()) as (_, client):
        body = (await client.get(page_of("arunning"))).text
        assert '<meta http-equiv="refresh" content="2">' in body
        assert ">RUNNING<" in body
        assert "so far" in body


async def test_failed_execution_shows_escaped_errors(tmp_path: Path) -> None:
    async with console(tmp_path, ConsoleAdmin()) as (_, client):
        body = (await client.get(page_of("afailed"))).text
        assert ">FAILED<" in body
        assert "USER:RuntimeError" in body
        assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in body
        assert "<script" not in body
        assert "bad value &lt;img src=x onerror=alert(1)&gt;" in body
        assert "<img" not in body
        assert "start-node" not in body
        assert "<td>n1</td>" in body


async def test_unknown_execution_is_404_and_faults_are_500_without_stopping_the_server(
    tmp_path: Path,
) -> None:
    async with console(tmp_path, ConsoleAdmin()) as (_, client):
        missing = await client.get(page_of("nope"))
        assert missing.status_code == 404
        assert "NOT_FOUND" in missing.text
        crashed = await client.get(page_of("explode"))
        assert crashed.status_code == 500
        assert "admin crashed" in crashed.text
        assert (await client.get("/console")).status_code == 200


async def test_missing_execution_data_is_a_note_not_an_error(tmp_path: Path) -> None:
    async with console(tmp_path, ConsoleAdmin()) as (_, client):
        response = await client.get(page_of("anodata"))
        assert response.status_code == 200
        assert "inputs and outputs unavailable: UNIMPLEMENTED" in response.text


# ---- pure rendering --------------------------------------------------------------------------


def test_render_literal_shows_every_kind_readably() -> None:
    assert render_literal(prim(string_value="<b>")) == '<span class="str">&quot;&lt;b&gt;&quot;</span>'
    assert render_literal(prim(integer=0)) == "0"
    assert render_literal(prim(boolean=False)) == "False"
    assert render_literal(prim(duration=dt.timedelta(seconds=90))) == "0:01:30"
    assert "directory" in render_literal(blob("/x/dir", multipart=True))
    binary = core.Literal(scalar=core.Scalar(binary=core.Binary(value=b"abc", tag="msgpack")))
    assert "binary: 3 bytes, tag msgpack" in render_literal(binary)
    union = core.Literal(scalar=core.Scalar(union=core.Union(value=prim(integer=7))))
    assert render_literal(union) == "7"
    long_list = core.Literal(
        collection=core.LiteralCollection(literals=[prim(integer=i) for i in range(500)])
    )
    assert "300 more" in render_literal(long_list)
    assert render_literal_map(core.LiteralMap()) == '<p class="muted">none</p>'
    nested = prim(integer=1)
    for _ in range(40):
        nested = core.Literal(collection=core.LiteralCollection(literals=[nested, nested]))
    assert "nested too deep" in render_literal(nested)


def test_terminal_phases_match_flytekit() -> None:
    assert {p for p in Phase if is_terminal(p)} == {
        Phase.SUCCEEDED,
        Phase.FAILED,
        Phase.ABORTED,
        Phase.TIMED_OUT,
    }


# ---- headless Chromium -----------------------------------------------------------------------


async def dump_dom(url: str) -> str:
    """The DOM as Chromium builds it after loading `url` (scripts, had there been any, included)."""
    profile = tempfile.mkdtemp(prefix="asyncrun-chromium-")
    try:
        command = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
        ]
        with anyio.fail_after(60):
            result = await anyio.run_process(command, check=False)
        assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
        return result.stdout.decode()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


async def test_pages_render_in_chromium_without_running_injected_markup(tmp_path: Path, require) -> None:
    require("chromium", HAVE_CHROMIUM)
    async with console(tmp_path, ConsoleAdmin()) as (url, _):
        failed = await dump_dom(url + page_of("afailed"))
        assert "<title>afailed (FAILED) · asyncrun</title>" in failed
        # The injected tag is text in the page, not an element, so it never ran.
        assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in failed
        assert not re.search(r"<script\b", failed)
        assert not re.search(r"<img\b", failed)
        assert "pwned</title>" not in failed

        listing = await dump_dom(url + "/console")
        for name in ("arunning", "afailed", "asucceeded"):
            assert f'href="{page_of(name)}"' in listing
        assert listing.index("arunning") < listing.index("asucceeded")


def test_file_links_resolve_local_file_and_plain_paths_inside_the_roots(tmp_path: Path) -> None:
    from asyncrun.sandbox._http import _Endpoints

    root = tmp_path / "blobs"
    (root / "run").mkdir(parents=True)
    target = root / "run" / "report.txt"
    target.write_text("x")
    endpoints = _Endpoints(None, None, None, 1, files_roots=[root])  # type: ignore[arg-type]
    real = Path(os.path.realpath(target))
    for uri in (f"local://{target}", f"file://{target}", str(target)):
        assert endpoints._local_file(uri) == real, uri
    outside = tmp_path / "secret.txt"
    outside.write_text("no")
    for uri in (f"local://{outside}", f"local://{root}/../secret.txt", "s3://bucket/run/report.txt", "run/x"):
        assert endpoints._local_file(uri) is None, uri
