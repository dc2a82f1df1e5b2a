"""Shell completion: `eval "$(_ASYNCRUN_COMPLETE=bash_source asyncrun)"` in a real bash, through the
lazy top-level group, `run`'s file group and a file's entities."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ASYNCRUN = Path(sys.executable).parent / "asyncrun"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def complete(line: str, *, cwd: Path = EXAMPLES, env: dict[str, str] | None = None) -> list[str]:
    """What bash offers for TAB at the end of `line`, using the script asyncrun prints."""
    words = line.split(" ")
    script = "\n".join(
        [
            f'eval "$(_ASYNCRUN_COMPLETE=bash_source {shlex.quote(str(ASYNCRUN))})"',
            f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})",
            f"COMP_CWORD={len(words) - 1}",
            f"_asyncrun_completion {shlex.quote(str(ASYNCRUN))} 2>/dev/null",
            'printf "%s\\n" "${COMPREPLY[@]}"',
        ]
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("asyncrun sa", ["sandbox"]),
        ("asyncrun w", ["wait", "watch"]),
        ("asyncrun sandbox st", ["start", "status", "stop"]),
        (
            "asyncrun run ",
            ["hello.py", "types_demo.py", "remote-launchplan", "remote-task", "remote-workflow"],
        ),
        ("asyncrun run remote-l", ["remote-launchplan"]),
        ("asyncrun run --cop", ["--copy"]),
        ("asyncrun run --copy ", ["auto", "all"]),
        ("asyncrun run hello.py ", ["wf", "say_hello", "shout"]),
        ("asyncrun run --remote hello.py s", ["say_hello", "shout"]),
        ("asyncrun run hello.py wf --t", ["--times"]),
        ("asyncrun wait --wait-for ", ["terminal", "running"]),
    ],
)
def test_bash_completes(line: str, expected: list[str]) -> None:
    assert complete(line) == expected


def test_a_path_is_left_to_the_shell() -> None:
    # No .py file or remote-* target starts with "exa": bash's own file completion takes over.
    result = subprocess.run(
        [str(ASYNCRUN)],
        env={
            **os.environ,
            "_ASYNCRUN_COMPLETE": "bash_complete",
            "COMP_WORDS": "asyncrun run exa",
            "COMP_CWORD": "2",
        },
        capture_output=True,
        text=True,
        cwd=EXAMPLES.parent,
        timeout=20,
    )
    assert result.stdout.split() == ["file,exa"]


def test_completing_a_remote_entity_contacts_no_control_plane(tmp_path) -> None:
    # A listener stands in for FlyteAdmin: completion must not connect to it (nor start a sandbox).
    with socket.socket() as admin:
        admin.bind(("127.0.0.1", 0))
        admin.listen()
        admin.setblocking(False)
        env = {
            "FLYTE_PLATFORM_URL": f"127.0.0.1:{admin.getsockname()[1]}",
            "FLYTE_PLATFORM_INSECURE": "true",
            "HOME": str(tmp_path),
            "ASYNCRUN_HOME": str(tmp_path / "state"),
        }
        assert complete("asyncrun run remote-task hello.say_hello --", env=env) == ["--help"]
        with pytest.raises(BlockingIOError):
            admin.accept()
    assert not (tmp_path / "state" / "sandbox").exists()
