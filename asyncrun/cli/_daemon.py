"""`asyncrun daemon start|stop|status|serve`: the per-user daemon that multiplexes waits."""

from __future__ import annotations

import time
from typing import Any

import asyncclick as click


def _show(status: Any) -> None:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status.started_at))
    click.echo(f"pid:      {status.pid}")
    click.echo(f"socket:   {status.socket}" + ("" if status.answering else " (not answering; see its log)"))
    click.echo(f"journal:  {status.journal}")
    click.echo(f"started:  {started} (uptime {int(status.uptime)} s)")
    click.echo(f"tracked:  {status.tracked} ({status.active} still polled)")
    click.echo(f"clients:  {status.connections}")
    for endpoint in status.endpoints:
        click.echo(f"endpoint: {endpoint.get('endpoint', '')} {endpoint.get('state', '')}".rstrip())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def daemon() -> None:
    """The per-user daemon that follows runs for every waiting CLI (started on first use)."""


@daemon.command()
async def start() -> None:
    """Start the daemon in the background (a no-op if it runs)."""
    from ..daemon import start_daemon

    status, started = await start_daemon()
    click.echo(
        f"daemon {'started' if started else 'already running'} (pid {status.pid}, socket {status.socket})"
    )


@daemon.command()
async def stop() -> None:
    """Stop the daemon; waiting CLIs start a new one and resume (nothing tracked is lost)."""
    from ..daemon import stop_daemon

    status = await stop_daemon()
    click.echo(f"daemon stopped (pid {status.pid})" if status else "no daemon is running")


@daemon.command()
async def status() -> None:
    """Pid, uptime, socket path and how many runs it tracks."""
    from ..daemon import daemon_status

    current = await daemon_status()
    if current is None:
        from .._exceptions import error_for_exit_code

        click.echo("no daemon is running (it starts on first use, or: asyncrun daemon start)")
        raise error_for_exit_code(1, "no daemon is running", reported=True)
    _show(current)


@daemon.command()
@click.option("--socket", "socket_path", default=None, help="Unix socket to serve on.")
@click.option(
    "--idle-timeout", type=click.FloatRange(min=0), default=None, help="Exit after this many idle seconds."
)
async def serve(socket_path: str | None, idle_timeout: float | None) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT."""
    from ..daemon import DaemonSettings
    from ..daemon import serve as serve_daemon

    overrides: dict[str, Any] = {}
    if socket_path:
        overrides["socket_path"] = socket_path
    if idle_timeout is not None:
        overrides["idle_timeout"] = idle_timeout
    await serve_daemon(DaemonSettings.from_env(**overrides))
