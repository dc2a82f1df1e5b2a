"""Options shared by `run --wait`, `wait` and `status` (own module: those import nothing else)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncclick as click

if TYPE_CHECKING:
    from collections.abc import Callable


def wait_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--wait-for`, `--wait-timeout`, `--abort-on-timeout`: shared by `run --wait` and `wait`."""
    options = [
        click.option(
            "--wait-for",
            type=click.Choice(["terminal", "running"]),
            default="terminal",
            show_default=True,
            help="Return when the runs have finished, or once they run.",
        ),
        click.option(
            "--wait-timeout",
            type=click.FloatRange(min=0),
            default=None,
            help="Stop waiting after this many seconds (exit 5); the runs go on.",
        ),
        click.option(
            "--abort-on-timeout", is_flag=True, help="With --wait-timeout: terminate the runs instead."
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def scope_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`-p/--project`, `-d/--domain`: where bare execution names live (`wait`, `status`)."""
    fn = click.option("-d", "--domain", default=None, help="Domain of bare execution names.")(fn)
    return click.option("-p", "--project", default=None, help="Project of bare execution names.")(fn)
