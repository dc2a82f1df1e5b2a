"""How results are shown: plain text for people, one JSON object for machines."""

from __future__ import annotations

import json
from typing import Any

import asyncclick as click

from ..sdk._type_engine import to_jsonable


def render_outputs(outputs: dict[str, Any], types: dict[str, Any], output: str) -> None:
    """Print a run's outputs: `--output json` gives exactly one JSON object mapping names to values."""
    if output == "json":
        click.echo(json.dumps({name: to_jsonable(value, types[name]) for name, value in outputs.items()}))
        return
    if len(outputs) == 1:
        click.echo(_human(next(iter(outputs.values()))))
        return
    for name, value in outputs.items():
        click.echo(f"{name}: {_human(value)}")


def _human(value: Any) -> str:
    return value if isinstance(value, str) else str(value)
