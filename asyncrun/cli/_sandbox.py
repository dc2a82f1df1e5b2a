"""`asyncrun sandbox start|stop|status|serve`: the embedded single-machine FlyteAdmin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncclick as click

from ..sandbox._config import default_data_dir


def _options(fn: Any) -> Any:
    options = [
        click.option(
            "--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default)."
        ),
        click.option(
            "--port",
            type=click.IntRange(0, 65535),
            default=lambda: _default_ports()[0],
            help="gRPC port (FlyteAdmin API); 0 picks a free one.  "
            "[default: $ASYNCRUN_SANDBOX_PORT, else 30080]",
        ),
        click.option(
            "--http-port",
            type=click.IntRange(0, 65535),
            default=lambda: _default_ports()[1],
            help="HTTP port (uploads, console).  [default: $ASYNCRUN_SANDBOX_HTTP_PORT, else the gRPC "
            "default + 1]",
        ),
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Where entities, executions and blobs live.  [default: $ASYNCRUN_HOME/sandbox]",
        ),
        click.option(
            "--rpc-delay-ms",
            type=click.IntRange(min=0),
            default=0,
            help="Add this delay to every RPC (benchmarks).",
        ),
        click.option(
            "--task-path",
            multiple=True,
            type=click.Path(file_okay=False),
            help="Folder prepended to PATH of task processes (repeatable).",
        ),
        click.option(
            "--blob-store",
            default="",
            metavar="s3://BUCKET[/PREFIX]",
            help="Keep uploads, execution data and task outputs in S3 instead of the data folder.",
        ),
        click.option(
            "--s3-endpoint",
            default="",
            metavar="URL",
            help="S3-compatible endpoint for --blob-store (MinIO, …).  [default: $AWS_ENDPOINT_URL or AWS]",
        ),
        click.option(
            "--auth",
            is_flag=True,
            default=False,
            help="Require OAuth2 bearer tokens, as FlyteAdmin with auth on (prints a test client).",
        ),
        click.option(
            "--auth-token-lifetime",
            type=click.FloatRange(min=0.1),
            default=600.0,
            show_default=True,
            help="Seconds an access token is valid (with --auth).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _default_ports() -> tuple[int, int]:
    """The zero-config ports, which `run --remote` also uses when it starts the sandbox."""
    from ..client._config import sandbox_ports

    return sandbox_ports()


def _config(**options: Any) -> Any:
    from ..sandbox._config import SandboxConfig

    return SandboxConfig(
        data_dir=options["data_dir"] or default_data_dir(),
        host=options["host"],
        port=options["port"],
        http_port=options["http_port"],
        rpc_delay_ms=options["rpc_delay_ms"],
        task_path=tuple(str(Path(p).resolve()) for p in options["task_path"]),
        blob_store=options["blob_store"],
        s3_endpoint=options["s3_endpoint"],
        auth=options["auth"],
        auth_token_lifetime=options["auth_token_lifetime"],
    )


def _data_dir_option(fn: Any) -> Any:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="The sandbox's data folder.  [default: $ASYNCRUN_HOME/sandbox]",
    )(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def sandbox() -> None:
    """The local sandbox: a single-machine FlyteAdmin that runs tasks as local processes."""


@sandbox.command()
@_options
def start(**options: Any) -> None:
    """Start the sandbox in the background (a no-op if it already runs on these ports)."""
    from ..sandbox._control import start_background

    info, started = start_background(_config(**options))
    state = "started" if started else "already running"
    click.echo(f"sandbox {state} (pid {info.pid})")
    click.echo(f"  gRPC endpoint: {info.endpoint}")
    click.echo(f"  console:       {info.console_url}")
    _echo_auth(info)


def _echo_auth(info: Any, *, err: bool = False, secret: bool = True) -> None:
    # The sandbox's own throwaway test client. `serve` (whose stderr often ends in a log file) names
    # where the secret is instead of printing it.
    if info.auth_issuer:
        click.echo(f"  auth issuer:   {info.auth_issuer}", err=err)
        click.echo(f"  client id:     {info.auth_client_id}", err=err)
        shown = info.auth_client_secret if secret else f"in {info.data_dir}/sandbox.json"
        click.echo(f"  client secret: {shown}", err=err)


@sandbox.command()
@_data_dir_option
def stop(data_dir: Path | None) -> None:
    """Stop the background sandbox."""
    from ..sandbox._control import stop as stop_sandbox

    info = stop_sandbox(data_dir or default_data_dir())
    click.echo(f"sandbox stopped (pid {info.pid})" if info else "no sandbox is running")


@sandbox.command()
@_data_dir_option
def status(data_dir: Path | None) -> None:
    """Endpoint, pid, uptime and counts of the running sandbox."""
    from ..sandbox._control import status as sandbox_status

    current = sandbox_status(data_dir or default_data_dir())
    if current is None:
        from .._exceptions import error_for_exit_code

        click.echo("no sandbox is running (start one with: asyncrun sandbox start)")
        raise error_for_exit_code(1, "no sandbox is running", reported=True)
    info = current.info
    click.echo(f"endpoint: {info.endpoint}")
    click.echo(f"console:  {info.console_url}")
    click.echo(f"pid:      {info.pid}")
    click.echo(f"uptime:   {int(current.uptime)} s")
    click.echo(f"data dir: {info.data_dir}")
    for table, count in current.counts.items():
        click.echo(f"{table + ':':<14}{count}")


@sandbox.command()
@_options
async def serve(**options: Any) -> None:
    """Run the sandbox in the foreground until SIGTERM or SIGINT (for containers and services)."""
    from ..sandbox._server import serve as serve_sandbox

    def ready(info: Any) -> None:
        click.echo(f"sandbox serving gRPC on {info.endpoint}, console at {info.console_url}", err=True)
        _echo_auth(info, err=True, secret=False)

    await serve_sandbox(_config(**options), on_ready=ready)
