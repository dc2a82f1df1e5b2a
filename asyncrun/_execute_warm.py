"""Warm-up for `asyncrun-execute` in the sandbox's warm worker (`sandbox/_warm.py` preloads it).

Importing it does once, before the worker forks, what every task process would otherwise do first:
it makes every generated message class (they are made on first use), betterproto2 builds their field
tables, and argparse and `re` compile their patterns. A forked child inherits the result, so a
trivial task process skips that work. It has no other effect; `asyncrun-execute` itself never
imports it.
"""

from __future__ import annotations

import datetime
from typing import Any

from ._execute import parse_args
from ._proto.flyteidl import admin, core, event, service
from .sdk._literals import literal_map, python_values


def _warm_up() -> None:
    for module in (admin, core, event, service):
        for name in module.__all__:
            getattr(module, name)
    parse_args(["--inputs", "i", "--output-prefix", "o", "--task-module", "m", "--task-name", "t"])
    types: dict[str, Any] = {
        "i": int,
        "f": float,
        "s": str,
        "b": bool,
        "l": list[int],
        "d": dict[str, str],
        "t": datetime.datetime,
    }
    values = {"i": 1, "f": 0.5, "s": "s", "b": True, "l": [1], "d": {"k": "v"}}
    values["t"] = datetime.datetime.now(datetime.UTC)
    python_values(core.LiteralMap.parse(bytes(literal_map(values, types))), types)
    error = core.ContainerError(code="c", message="m", timestamp=datetime.datetime.now(datetime.UTC))
    core.ErrorDocument.parse(bytes(core.ErrorDocument(error=error)))


_warm_up()
