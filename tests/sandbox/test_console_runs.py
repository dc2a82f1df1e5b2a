"""The console showing real runs of the sandbox: task names on nodes, dataclass ints as ints, File
outputs as download links, and durations without the sandbox's downtime (issue 12, item 28)."""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import textwrap
from pathlib import Path

import httpx
import pytest

from asyncrun import Client
from asyncrun._proto.flyteidl import admin, core
from asyncrun.sandbox._console import execution_path
from asyncrun.sandbox._runner import HEARTBEAT_FILE, Runner
from asyncrun.sandbox._store import ExecutionKey, Store, utc_now
from asyncrun.sdk._loader import load_file

from .conftest import DOMAIN, PROJECT, execution_spec, launch_plan_id, literals

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

WORKFLOW = textwrap.dedent(
    """
    from dataclasses import dataclass
    from asyncrun import task, workflow
    from asyncrun.sdk import File

    @dataclass
    class Stats:
        count: int
        ratio: float

    @task
    def measure(n: int) -> Stats:
        return Stats(count=n, ratio=0.5)

    @task
    def report(stats: Stats) -> File:
        with open("report.txt", "w") as handle:
            handle.write(f"count={stats.count}")
        return File("report.txt")

    @workflow
    def wf(n: int = 2) -> tuple[Stats, File]:
        stats = measure(n=n)
        return stats, report(stats=stats)
    """
)


async def test_console_names_tasks_shows_ints_and_links_file_outputs(sandbox_env, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "console_wf.py").write_text(WORKFLOW)
    wf = load_file(project / "console_wf.py").entity("wf")
    async with Client.from_config() as client:
        execution = await client.run(wf, {"n": 2}, wait=True)
        assert execution.phase == "SUCCEEDED", execution.error
    path = execution_path(execution.id.project, execution.id.domain, execution.id.name)
    base = f"http://127.0.0.1:{sandbox_env.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        page = (await http.get(path)).text
        # nodes carry the names of the tasks they ran
        assert re.search(r"<td>n0 <span class=\"muted\">console_wf\.measure</span></td>", page), page
        assert re.search(r"<td>n1 <span class=\"muted\">console_wf\.report</span></td>", page), page
        # a dataclass's int is shown as an int
        assert "&quot;count&quot;: 2," in page and "&quot;count&quot;: 2.0" not in page
        # the File output is a link that downloads the file
        links = re.findall(r'<a href="([^"]*/file\?uri=[^"]*)" download>report\.txt</a>', page)
        assert len(links) == 1, page
        download = await http.get(html.unescape(links[0]))
        assert download.status_code == 200 and download.text == "count=2"
        assert "attachment" in download.headers["content-disposition"]
        # only files the execution names, and only from the data folder
        for uri in ("/etc/passwd", str(Path(sandbox_env.data_dir) / "sandbox.db")):
            refused = await http.get(f"{path}/file", params={"uri": uri})
            assert refused.status_code == 404


async def test_duration_after_a_crash_ends_at_the_last_heartbeat(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    async with Store(tmp_path / "sandbox.db") as store:
        key = await _running_execution(store, started=utc_now() - dt.timedelta(hours=1))
        # The crashed sandbox was last alive 10 minutes after the run started, then down for 50.
        died = key[1] + dt.timedelta(minutes=10)
        (data_dir / HEARTBEAT_FILE).touch()
        os.utime(data_dir / HEARTBEAT_FILE, (died.timestamp(), died.timestamp()))
        assert await Runner(store, data_dir).recover() == 1
        ended = await store.get_execution(key[0])
        assert ended is not None and ended.closure is not None
        assert ended.closure.phase == core.WorkflowExecutionPhase.FAILED
        assert ended.closure.duration is not None
        assert abs(ended.closure.duration - dt.timedelta(minutes=10)) < dt.timedelta(seconds=1)
        node = await store.get_node_execution(key[0], "n0")
        assert node is not None and node.closure is not None and node.closure.duration is not None
        assert abs(node.closure.duration - dt.timedelta(minutes=10)) < dt.timedelta(seconds=1)


async def _running_execution(store: Store, *, started: dt.datetime) -> tuple[ExecutionKey, dt.datetime]:
    key = ExecutionKey(PROJECT, DOMAIN, "was-running")
    closure = admin.ExecutionClosure(
        phase=core.WorkflowExecutionPhase.RUNNING, created_at=started, started_at=started, updated_at=started
    )
    execution = admin.Execution(id=key.to_id(), spec=execution_spec(launch_plan_id("lp")), closure=closure)
    wf = ("p", "d", "wf", "v")
    assert await store.create_execution(execution, literals(), launch_plan=wf, workflow=wf)
    await store.put_node_execution(
        admin.NodeExecution(
            id=core.NodeExecutionIdentifier(node_id="n0", execution_id=key.to_id()),
            closure=admin.NodeExecutionClosure(
                phase=core.NodeExecutionPhase.RUNNING, created_at=started, started_at=started
            ),
            metadata=admin.NodeExecutionMetaData(spec_node_id="n0"),
        )
    )
    return key, started
