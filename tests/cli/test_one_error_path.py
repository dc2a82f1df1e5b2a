"""Commands end through one error path: they raise errors of the tree, and only `cli._app` exits."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from asyncrun import _exceptions

CLI = Path(__file__).resolve().parents[2] / "asyncrun" / "cli"


def _exits(source: str) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("sys.exit", "exit", "SystemExit"):
            lines.append(node.lineno)
    return lines


def test_no_command_calls_sys_exit() -> None:
    found = {
        path.name: _exits(path.read_text())
        for path in sorted(CLI.glob("*.py"))
        if path.name != "_app.py" and _exits(path.read_text())
    }
    assert found == {}


def test_the_check_can_fail() -> None:
    assert _exits("import sys\nsys.exit(3)\n") == [2]
    assert _exits("raise SystemExit(1)\n") == [1]


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (1, _exceptions.ExecutionError),
        (3, _exceptions.ExecutionAbortedError),
        (4, _exceptions.ExecutionTimedOutError),
        (5, _exceptions.WaitTimeoutError),
        (6, _exceptions.UnreachableError),
        (9, _exceptions.TokenExpiredError),
    ],
)
def test_exit_codes_map_back_to_the_tree(code: int, cls: type) -> None:
    error = _exceptions.error_for_exit_code(code, "why", reported=True)
    assert type(error) is cls and error.exit_code == code and error.reported and str(error) == "why"


def test_an_unknown_exit_code_is_kept() -> None:
    error = _exceptions.error_for_exit_code(42, "odd")
    assert type(error) is _exceptions.AsyncrunError and error.exit_code == 42 and not error.reported
