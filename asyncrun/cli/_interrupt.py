"""What Ctrl-C leaves behind, said in one line by `main()` (which exits 130).

Libraries never swallow a cancellation; commands only note here what goes on without them (a remote
run keeps running), and the top level turns the KeyboardInterrupt into that line.
"""

from __future__ import annotations

_note: list[str] = []


def on_interrupt(message: str) -> None:
    """What to tell the user if Ctrl-C ends the command from now on (replaces an earlier note)."""
    _note[:] = [message]


def message() -> str:
    """The one line to print after Ctrl-C."""
    return _note[0] if _note else "interrupted"


def remote_note(names: list[str], endpoint: str, reattach: list[str]) -> str:
    """`NAME continues on ENDPOINT; `asyncrun wait NAME` reattaches` for one or many runs."""
    verb = "continues" if len(names) == 1 else "continue"
    return f"{', '.join(names)} {verb} on {endpoint}; `asyncrun wait {' '.join(reattach)}` reattaches"
