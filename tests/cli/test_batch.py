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
