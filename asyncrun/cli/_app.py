"""The top-level group: global options, lazy subcommands, and one place that turns errors into exit codes."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import asyncclick as click

from .. import _gc
from .._exceptions import AsyncrunError, TaskFailedError
from .._version import __version__
from . import _loopfree

# name -> "module:attribute"; a subcommand's module is imported only when that subcommand is used.
SUBCOMMANDS = {
    "run": ("asyncrun.cli._run:run", "Run a task, workflow or launch plan from a Python file."),
    "sandbox": ("asyncrun.cli._sandbox:sandbox", "Start, stop or inspect the local sandbox (a FlyteAdmin)."),
    "daemon": (
        "asyncrun.cli._daemon:daemon",
        "Start, stop or inspect the per-user daemon that follows runs.",
    ),
    "wait": ("asyncrun.cli._wait:wait", "Wait for executions (through the daemon)."),
    "status": ("asyncrun.cli._wait:status", "One line per tracked execution."),
    "watch": ("asyncrun.cli._wait:watch", "Follow every tracked run live."),
    "ls": ("asyncrun.cli._lifecycle:ls", "List recent runs on the endpoint."),
    "get": ("asyncrun.cli._lifecycle:get", "Show one run: phase, inputs, outputs, node tree."),
    "abort": ("asyncrun.cli._lifecycle:abort", "Abort running runs."),
    "logs": ("asyncrun.cli._lifecycle:logs", "Print a task's output (or its log links)."),
    "relaunch": ("asyncrun.cli._lifecycle:relaunch", "Run a run's entity again with the same inputs."),
    "recover": ("asyncrun.cli._lifecycle:recover", "Run a failed run again, reusing what succeeded."),
    "signals": ("asyncrun.cli._signals:signals", "List the signals a run's gates wait for."),
    "approve": ("asyncrun.cli._signals:approve", "Approve a run's approval gate."),
    "reject": ("asyncrun.cli._signals:reject", "Reject a run's approval gate (the run fails)."),
    "signal": ("asyncrun.cli._signals:signal", "Set a signal a run's gate waits for."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click docs: lazily loading subcommands)."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.lazy, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, attr = self.lazy[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    async def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = await super().resolve_command(ctx, args)
        if _loopfree.active() and name not in _loopfree.LOOP_FREE:
            raise _loopfree.NeedsEventLoop(name)
        return name, command, rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from the table, so listing commands imports none of them.
        rows = [(name, self.lazy[name][1]) for name in sorted(self.lazy)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    async def invoke(self, ctx: click.Context) -> Any:
        try:
            return await super().invoke(ctx)
        except AsyncrunError as exc:
            if not exc.reported:
                report(exc, verbose=ctx.find_root().params.get("verbose", 0))
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            # Raised here only without an event loop; click would say "Aborted!" and exit 1.
            raise Interrupted from None


class Interrupted(BaseException):
    """Ctrl-C in the loop-free pass, carried past click's own handler to `main()`."""


def report(exc: AsyncrunError, *, verbose: int) -> None:
    """One line on stderr saying what went wrong; the traceback only with -v."""
    click.echo(f"Error: {exc}", err=True)
    if isinstance(exc, TaskFailedError) and exc.traceback:
        if verbose:
            click.echo(exc.traceback.rstrip(), err=True)
        else:
            click.echo("(run with -v to see the traceback)", err=True)
    elif verbose and (exc.__cause__ is not None or exc.__traceback__ is not None):
        import traceback

        click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Show tracebacks and more detail (repeat for more).")
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False),
    envvar="FLYTECTL_CONFIG",
    help="flytectl YAML config (default: $FLYTECTL_CONFIG, ~/.flyte/config.yaml, else the local sandbox).",
)
@click.version_option(__version__, "--version", prog_name="asyncrun")
def cli(verbose: int, config: str | None) -> None:
    """Run Flyte tasks, workflows and launch plans: locally, or on a Flyte deployment with --remote."""


def main() -> None:
    """Console-script entry point: without an event loop if the command allows (see `_loopfree`).

    Ctrl-C ends every command here, with one line saying what goes on without it, and exit 130.
    """
    try:
        if not _loopfree.run(cli.main(prog_name="asyncrun")):
            cli(prog_name="asyncrun")
    except (KeyboardInterrupt, Interrupted):
        from . import _interrupt

        click.echo(_interrupt.message(), err=True)
        sys.exit(130)
    finally:
        _gc.before_exit()
