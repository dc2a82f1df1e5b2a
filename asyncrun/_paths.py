"""Where asyncrun keeps its state: `$ASYNCRUN_HOME`, else `$XDG_STATE_HOME/asyncrun`."""

from __future__ import annotations

import os
from pathlib import Path


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
