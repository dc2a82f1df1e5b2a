"""How results are shown: plain text for people, one JSON object for machines.

One rendering everywhere (a local run, `run --remote --wait`, `asyncrun wait`): a text output as it
is, any other value as its JSON form (the form `--output json` and input flags use).
"""

from __future__ import annotations

import json
from typing import Any

import asyncclick as click


def render_outputs(outputs: dict[str, Any], types: dict[str, Any], output: str) -> None:
    """Print a run's outputs (Python values): `--output json` gives exactly one JSON object."""
    from ..sdk._type_engine import to_jsonable

    values = {
        name: to_jsonable(value, types[name]) if name in types else value for name, value in outputs.items()
    }
    if output == "json":
        click.echo(json.dumps(values))
        return
    render_json_outputs(values)


def render_json_outputs(values: dict[str, Any]) -> None:
    """Print outputs already in their JSON form (as the daemon holds them), for people."""
    if len(values) == 1:
        click.echo(_human(next(iter(values.values()))))
        return
    for name, value in values.items():
        click.echo(f"{name}: {_human(value)}")


def phase_line(name: str, phase: str) -> str | None:
    """The progress line of a run's new phase; None for UNDEFINED (nothing is known yet)."""
    if phase in ("UNDEFINED", "None", ""):
        return None
    return f"  {name}: {phase}"


def _human(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
