"""Signal values of a local run (approve and wait_for_input gates)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from .._exceptions import InputError, UsageError

__all__ = ("local_signal", "signal_env_var")

_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def signal_env_var(name: str) -> str:
    """`ASYNCRUN_SIGNAL_<NAME>`: where a local run reads signal `name`."""
    return "ASYNCRUN_SIGNAL_" + "".join(c if c.isalnum() else "_" for c in name).upper()


def parse_signal(text: str, tp: Any, name: str) -> Any:
    """A signal's value from text, as type `tp` (bool for approvals)."""
    from . import _type_engine as te

    if tp is bool:
        word = text.strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise InputError(f"signal {name!r} is an approval: answer true or false, got {text!r}")
    if tp is str:
        return text
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = text
    try:
        return te.from_jsonable(data, tp)
    except InputError as exc:
        raise InputError(f"signal {name!r}: {exc}") from None


def local_signal(name: str, tp: Any) -> Any:
    """The value of signal `name`: from `ASYNCRUN_SIGNAL_<NAME>`, else asked on a terminal.

    Raises:
        UsageError: it has no value and there is no terminal to ask on.
    """
    var = signal_env_var(name)
    if var in os.environ:
        return parse_signal(os.environ[var], tp, name)
    if sys.stdin is not None and sys.stdin.isatty():
        question = "approve? [true/false]" if tp is bool else f"value of type {getattr(tp, '__name__', tp)}"
        sys.stderr.write(f"Signal {name!r}: {question} ")
        sys.stderr.flush()
        return parse_signal(sys.stdin.readline().rstrip("\n"), tp, name)
    raise UsageError(
        f"the run waits for signal {name!r}: set {var} (true/false for an approval) and run again"
    )
