"""Where the daemon lives: its socket, lock, pid file, journal and log, created with private modes.

The socket path is, in order: `$ASYNCRUN_DAEMON_SOCKET`; `$ASYNCRUN_HOME/run/daemon.sock` when
`ASYNCRUN_HOME` is set (so a separate state folder gets a separate daemon and journal, which keeps
tests and side-by-side installs apart); `$XDG_RUNTIME_DIR/asyncrun/daemon.sock`; else
`<state home>/run/daemon.sock`. A path longer than a Unix socket address allows moves to a short,
private `/tmp/asyncrun-<uid>-<hash>/` folder derived from it.

Everything here is stdlib only: the CLI imports it.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from .._exceptions import DaemonAlreadyRunningError as DaemonAlreadyRunningError
from .._exceptions import DaemonPathError as DaemonPathError
from .._filelock import FileLock
from .._paths import state_home, why_not_a_folder

SOCKET_ENV = "ASYNCRUN_DAEMON_SOCKET"
SOCKET_NAME = "daemon.sock"
_MAX_SUN_PATH = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux; macOS allows 103


def resolve_socket(socket_path: str | os.PathLike[str] | None) -> Path:
    """`socket_path` if given, else `default_socket_path()`."""
    return Path(socket_path).expanduser() if socket_path else default_socket_path()


def default_socket_path() -> Path:
    """The socket this user's CLI and daemon meet at (see the module docstring for the order)."""
    explicit = os.environ.get(SOCKET_ENV)
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("ASYNCRUN_HOME"):
        path = state_home() / "run" / SOCKET_NAME
    elif os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "asyncrun" / SOCKET_NAME
    else:
        path = state_home() / "run" / SOCKET_NAME
    return short_enough(path)


def short_enough(path: Path) -> Path:
    """`path`, or a short stand-in under /tmp when it does not fit in a socket address."""
    if len(os.fsencode(path)) <= _MAX_SUN_PATH:
        return path
    import hashlib  # imported here: the CLI's usual path never needs it
    import tempfile

    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"asyncrun-{os.getuid()}-{digest}" / SOCKET_NAME


def daemon_home() -> Path:
    """The daemon's state folder: journal and log."""
    return state_home() / "daemon"


def default_journal_path() -> Path:
    return daemon_home() / "journal.sqlite3"


def default_log_path() -> Path:
    return daemon_home() / "daemon.log"


def lock_path(socket_path: Path) -> Path:
    """Held (flock) by the daemon serving `socket_path` for its whole life."""
    return socket_path.with_name(socket_path.stem + ".lock")


def start_lock_path(socket_path: Path) -> Path:
    """Held by a CLI while it starts a daemon, so a crowd of CLIs starts only one."""
    return socket_path.with_name(socket_path.stem + ".start.lock")


def pid_path(socket_path: Path) -> Path:
    return socket_path.with_name(socket_path.stem + ".pid")


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (0700) or check that an existing one is ours and not group/world accessible.

    An existing folder that we own is tightened to 0700; one owned by another user, or a symlink,
    is refused: anyone who can write there could swap the socket under us.
    """
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise DaemonPathError(
            f"cannot create the daemon folder {path}: {why_not_a_folder(path, exc)}"
        ) from None
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise DaemonPathError(f"{path} is not a plain folder; remove it or set ${SOCKET_ENV}")
    if info.st_uid != os.getuid():
        raise DaemonPathError(f"{path} belongs to uid {info.st_uid}, not to you; set ${SOCKET_ENV}")
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path


def acquire_daemon_lock(socket_path: Path, *, timeout: float = 2.0) -> FileLock:
    """The single-daemon-per-socket lock; raises `DaemonAlreadyRunningError` if another holds it."""
    ensure_private_dir(socket_path.parent)
    lock = FileLock(lock_path(socket_path))
    if not lock.acquire(timeout):
        raise DaemonAlreadyRunningError(f"a daemon is already serving {socket_path}")
    return lock


@dataclass(frozen=True)
class PidInfo:
    """What a running daemon writes next to its socket just before it binds the socket."""

    pid: int
    socket: str
    started_at: float
    journal: str
    version: str

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.chmod(0o600)
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> PidInfo | None:
        try:
            data = json.loads(path.read_text())
            return cls(
                pid=int(data["pid"]),
                socket=str(data["socket"]),
                started_at=float(data["started_at"]),
                journal=str(data["journal"]),
                version=str(data["version"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
