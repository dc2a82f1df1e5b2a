"""`python -m asyncrun.daemon serve [options]`: the daemon in the foreground (how the CLI spawns it).

The single-daemon lock is taken before anything heavy is imported, so when a crowd of CLIs race to
start a daemon the extra copies exit in milliseconds.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import MISSING, fields
from functools import partial
from pathlib import Path

from ._paths import DaemonAlreadyRunningError, DaemonPathError, acquire_daemon_lock
from ._settings import ENV_PREFIX, FIELD_HELP, DaemonSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m asyncrun.daemon", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="Run the daemon in the foreground until SIGTERM, shutdown or idleness."
    )
    for f in fields(DaemonSettings):
        kind = {"Path": Path, "int": int}.get(str(f.type), float)
        variable = "ASYNCRUN_DAEMON_SOCKET" if f.name == "socket_path" else ENV_PREFIX + f.name.upper()
        default = f.default if f.default is not MISSING else "the per-user default"
        help_text = f"{FIELD_HELP[f.name]} Default: ${variable}, else {default}."
        serve.add_argument(
            f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=None, help=help_text
        )
    serve.add_argument(
        "--socket", dest="socket_path", type=Path, default=None, help="Alias of --socket-path."
    )
    serve.add_argument(
        "--journal", dest="journal_path", type=Path, default=None, help="Alias of --journal-path."
    )
    serve.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = vars(_parser().parse_args(argv))
    log_level = args.pop("log_level")
    args.pop("command")
    logging.basicConfig(
        level=log_level,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    settings = DaemonSettings.from_env(**args)
    try:
        lock = acquire_daemon_lock(settings.socket_path)
    except (DaemonAlreadyRunningError, DaemonPathError) as exc:
        sys.stderr.write(f"asyncrun daemon: {exc}\n")
        return 1
    import anyio

    from ._server import serve

    try:
        anyio.run(partial(serve, settings, lock=lock))
    except KeyboardInterrupt:
        pass
    except DaemonAlreadyRunningError as exc:  # the journal is locked by a daemon on another socket
        sys.stderr.write(f"asyncrun daemon: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
