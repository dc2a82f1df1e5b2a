"""`run --remote --batch FILE`: each line's inputs are checked (types, required inputs, UTF-8) before
anything is registered or launched; the installed `asyncrun` script, as users run it."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import anyio
import pytest

from .conftest import EXAMPLES

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

ASYNCRUN = str(Path(sys.executable).parent / "asyncrun")
HELLO = str(EXAMPLES / "hello.py")


async def asyncrun(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    with anyio.fail_after(150):
        result = await anyio.run_process([ASYNCRUN, *args], input=stdin, check=False, env=dict(os.environ))
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.fixture
def nowhere(monkeypatch, tmp_path) -> str:
    """An endpoint nothing listens on: reaching for it would fail with exit 6, not with a usage error."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FLYTE_PLATFORM_URL", f"127.0.0.1:{port}")
    monkeypatch.setenv("FLYTE_PLATFORM_INSECURE", "true")
    monkeypatch.delenv("FLYTECTL_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return f"127.0.0.1:{port}"


async def test_batch_lines_supply_required_inputs(sandbox_env, tmp_path) -> None:
    batch = tmp_path / "names.jsonl"
    batch.write_text('{"name": "ann"}\n{"name": "bob"}\n')
    code, out, err = await asyncrun("run", "--remote", "--wait", "--batch", str(batch), HELLO, "say_hello")
    assert code == 0, err
    manifest = [json.loads(line) for line in out.splitlines()]
    assert [m["outputs"] for m in manifest] == [{"o0": "hello ann"}, {"o0": "hello bob"}]


async def test_batch_line_missing_a_required_input_is_refused_before_anything_is_done(
    nowhere, tmp_path
) -> None:
    batch = tmp_path / "names.jsonl"
    batch.write_text('{"s": "ann"}\n\n{"times": 3}\n')
    code, out, err = await asyncrun("run", "--remote", "--batch", str(batch), HELLO, "shout")
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "line 3" in errors[0] and "'s'" in errors[0], err
    assert "packaged" not in err and out == ""  # nothing packaged, registered or launched


async def test_a_flag_supplies_what_the_lines_leave_out(nowhere, tmp_path) -> None:
    # The lines are complete once the flag is added; the command then goes on to the (absent)
    # control plane: exit 6, not a usage error.
    batch = tmp_path / "names.jsonl"
    batch.write_text('{"times": 2}\n{"times": 3}\n')
    code, _, err = await asyncrun("run", "--remote", "--batch", str(batch), HELLO, "shout", "--s", "hi")
    assert code == 6, err
    assert "cannot reach" in err


async def test_non_utf8_batch_is_one_line(nowhere, tmp_path) -> None:
    batch = tmp_path / "binary.jsonl"
    batch.write_bytes(b'\xff\xfe{"name": "ann"}\n')
    for args, stdin in (([str(batch)], None), (["-"], batch.read_bytes())):
        code, out, err = await asyncrun("run", "--remote", "--batch", *args, HELLO, "say_hello", stdin=stdin)
        assert code == 2, err
        assert "Traceback" not in err and "not UTF-8 text" in err, err
        assert len([line for line in err.splitlines() if line.startswith("Error")]) == 1, err


async def test_batch_line_of_the_wrong_type_names_the_line(nowhere, tmp_path) -> None:
    batch = tmp_path / "names.jsonl"
    batch.write_text('{"name": "ann"}\n{"name": 3}\n{"nope": 1}\n')
    code, _, err = await asyncrun("run", "--remote", "--batch", str(batch), HELLO, "say_hello")
    assert code == 2 and "line 2" in err and "input 'name'" in err, err


SLEEPY = (
    "import time\n"
    "from asyncrun import task\n\n"
    "@task\ndef nap(n: int) -> int:\n    time.sleep(n)\n    return n\n"
)


async def stop_daemon() -> None:
    await anyio.run_process([ASYNCRUN, "daemon", "stop"], check=False, env=dict(os.environ))


async def test_batch_registers_with_the_images_and_resources_a_single_run_would(
    sandbox_env, tmp_path
) -> None:
    from asyncrun import Client

    batch = tmp_path / "names.jsonl"
    batch.write_text('{"name": "ann"}\n')
    code, out, err = await asyncrun(
        "run", "--remote", "--wait", "--batch", str(batch), "-i", "myrepo/img:tag",
        "--resource-requests", "cpu=1,mem=1Gi", HELLO, "say_hello",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["outputs"] == {"o0": "hello ann"}
    async with Client.from_config() as client:
        registered = await client.fetch_task("hello.say_hello")
    container = registered.raw.closure.compiled_task.template.container
    assert container.image == "myrepo/img:tag"
    requests = {entry.name: entry.value for entry in container.resources.requests}
    assert set(requests.values()) == {"1", "1Gi"}, requests


async def test_one_line_that_cannot_launch_leaves_the_others_launched_tracked_and_in_the_manifest(
    sandbox_env, tmp_path
) -> None:
    from asyncrun import Client
    from asyncrun.client._many import batch_name

    first = tmp_path / "first.jsonl"
    first.write_text('{"name": "zed"}\n')
    code, out, err = await asyncrun("run", "--remote", "--batch", str(first), HELLO, "say_hello")
    assert code == 0, err
    async with Client.from_config() as client:
        # Take the name line 2 of the next batch will want, with other inputs: that line cannot launch.
        seen = await client.get_execution(json.loads(out)["execution"]["name"], with_outputs=False)
        assert seen.target is not None
        task = await client.fetch_task(seen.target.name, seen.target.version)
        taken = batch_name(task.launch_id, 1, {"name": "bob"})
        await client.run(task, {"name": "someone else"}, name=taken)

    batch = tmp_path / "names.jsonl"
    batch.write_text('{"name": "ann"}\n{"name": "bob"}\n{"name": "cat"}\n')
    try:
        code, out, err = await asyncrun("run", "--remote", "--batch", str(batch), HELLO, "say_hello")
        assert code == 1, err  # AlreadyExistsError: exit 1
        manifest = [json.loads(line) for line in out.splitlines()]
        assert [m["line"] for m in manifest] == [1, 2, 3]
        assert manifest[1]["execution"]["name"] == taken and manifest[1]["phase"] is None
        assert (
            manifest[1]["error"]["kind"] == "LAUNCH" and "already exists" in manifest[1]["error"]["message"]
        )
        launched = [manifest[0]["execution"]["name"], manifest[2]["execution"]["name"]]
        assert all(m["phase"] for m in (manifest[0], manifest[2]))
        assert "line 2: not launched" in err and "Traceback" not in err, err
        code, status_out, err = await asyncrun("status", "-o", "json")
        assert code == 0, err
        tracked = [state["name"] for state in json.loads(status_out)]
        assert set(launched) <= set(tracked) and taken not in tracked
    finally:
        await stop_daemon()


async def test_batch_wait_that_passes_wait_timeout_exits_5(sandbox_env, tmp_path) -> None:
    from asyncrun import Client

    (tmp_path / "sleepy.py").write_text(SLEEPY)
    batch = tmp_path / "naps.jsonl"
    batch.write_text('{"n": 0}\n{"n": 600}\n')
    # The first wait gives line 1 time to finish on a busy machine; the others attach to the same runs.
    for timeout, extra in (("20", ()), ("2", ("--no-daemon",)), ("2", ("--no-daemon", "--abort-on-timeout"))):
        try:
            code, out, err = await asyncrun(
                "run", "--remote", "--wait", "--wait-timeout", timeout, *extra, "--batch", str(batch),
                str(tmp_path / "sleepy.py"), "nap",
            )  # fmt: skip
        finally:
            await stop_daemon()
        assert code == 5, (extra, err)
        manifest = [json.loads(line) for line in out.splitlines()]
        assert [m["phase"] for m in manifest][0] == "SUCCEEDED"
        assert manifest[1]["phase"] in ("QUEUED", "RUNNING", "UNDEFINED"), manifest
        assert "stopped waiting" in err and "Traceback" not in err, err
    assert "terminated" in err, err
    async with Client.from_config() as client:
        ended = await client.wait(manifest[1]["execution"]["name"], poll_interval=0.5, timeout=120)
    assert ended.phase == "ABORTED"


async def test_batch_refuses_name(nowhere, tmp_path) -> None:
    batch = tmp_path / "names.jsonl"
    batch.write_text('{"name": "ann"}\n{"name": "bob"}\n')
    code, out, err = await asyncrun(
        "run", "--remote", "--name", "x", "--batch", str(batch), HELLO, "say_hello"
    )
    assert code == 2, err  # not 6: nothing was packaged or sent
    assert "--name" in err and "Traceback" not in err and out == "", err


async def test_batch_honours_no_daemon_and_dump_snippet(sandbox_env, tmp_path) -> None:
    batch = tmp_path / "names.jsonl"
    batch.write_text('{"name": "ann"}\n{"name": "bob"}\n')
    try:
        code, out, err = await asyncrun(
            "run", "--remote", "--wait", "--no-daemon", "--dump-snippet", "--batch", str(batch), HELLO,
            "say_hello",
        )  # fmt: skip
        assert code == 0, err
        manifest = [json.loads(line) for line in out.splitlines()]
        assert [m["outputs"] for m in manifest] == [{"o0": "hello ann"}, {"o0": "hello bob"}]
        names = [m["execution"]["name"] for m in manifest]
        assert "client.wait(name)" in err and all(name in err for name in names), err
        code, status_out, err = await asyncrun("status", "-o", "json")
        assert code == 0, err
        assert not set(names) & {state["name"] for state in json.loads(status_out)}  # --no-daemon: untracked
    finally:
        await stop_daemon()


async def test_batch_and_inputs_both_from_stdin_is_a_usage_error(nowhere, tmp_path) -> None:
    code, out, err = await asyncrun(
        "run", "--remote", "--batch", "-", HELLO, "say_hello", "-", stdin=b'{"name": "ann"}\n'
    )
    assert code == 2, err  # not 6: refused before anything was packaged or sent
    assert "stdin" in err and "Traceback" not in err and out == "", err


async def test_an_empty_batch_is_a_usage_error(nowhere, tmp_path) -> None:
    batch = tmp_path / "empty.jsonl"
    batch.write_text("\n  \n")
    for args, stdin in (([str(batch)], None), (["-"], b"")):
        code, out, err = await asyncrun("run", "--remote", "--batch", *args, HELLO, "say_hello", stdin=stdin)
        assert code == 2, err  # not 6: refused before anything was packaged or sent
        assert "no line of inputs" in err and out == "", err
