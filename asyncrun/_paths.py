"""Where asyncrun keeps its state: `$ASYNCRUN_HOME`, else `$XDG_STATE_HOME/asyncrun`."""

from __future__ import annotations

import os
from pathlib import Path

from ._exceptions import ConfigError


def state_home() -> Path:
    """The state folder (journal, sandbox data, local cache)."""
    explicit = os.environ.get("ASYNCRUN_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "asyncrun"


def cache_dir() -> Path:
    """Outputs of `cache=True` tasks from local runs."""
    return state_home() / "cache"


def make_dir(path: Path, *, mode: int = 0o777) -> Path:
    """Create `path` and its parents (an existing folder is fine).

    Raises:
        ConfigError: it cannot be created, e.g. `ASYNCRUN_HOME` names a file; the message says which
            path is in the way and what to do.
    """
    try:
        path.mkdir(parents=True, exist_ok=True, mode=mode)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder {path}: {why_not_a_folder(path, exc)}") from None
    return path


def why_not_a_folder(path: Path, exc: OSError) -> str:
    """Why `path` could not be made a folder, in words: the file in the way (and the setting that
    points there), or the system's reason."""
    for candidate in (path, *path.parents):
        if candidate.is_symlink() or candidate.exists():
            if candidate.is_dir():
                break
            home = state_home()
            setting = "ASYNCRUN_HOME" if os.environ.get("ASYNCRUN_HOME") else "XDG_STATE_HOME"
            hint = (
                f"point ${setting} at a folder, or move that file away"
                if candidate == home or home in candidate.parents or candidate in home.parents
                else "move that file away"
            )
            return f"{candidate} is a file, not a folder; {hint}"
    return exc.strerror or str(exc)
