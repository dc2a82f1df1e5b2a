"""Running a command line without an event loop, when the command needs none.

Importing asyncio (which loads ssl) and anyio's backend costs ~40 ms: more than all that `asyncrun
status` does with a running daemon, or `asyncrun --help`. So `main()` first drives the command line
as a plain coroutine with no loop under it. Parsing, help and the commands in `LOOP_FREE` (whose I/O
is a blocking request on a local socket) finish in that pass; any other command stops it before
running (`NeedsEventLoop`, raised by the top-level group), and the command line starts over under
`anyio.run`. Nothing has happened by then but parsing, so starting over is safe.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

T = TypeVar("T")

# Top-level commands that finish without an event loop (or start one themselves; see `in_event_loop`).
LOOP_FREE = frozenset({"status"})

_active: ContextVar[bool] = ContextVar("asyncrun_loop_free", default=False)


class NeedsEventLoop(Exception):
    """The command chosen needs an event loop: start the command line over under `anyio.run`."""


def active() -> bool:
    """Whether this is the loop-free pass (no event loop runs)."""
    return _active.get()


def run(command_line: Coroutine[Any, Any, Any]) -> bool:
    """Drive `command_line` to its end with no event loop; False if it needs one (nothing ran yet)."""
    token = _active.set(True)
    try:
        command_line.send(None)
    except StopIteration:
        return True
    except NeedsEventLoop:
        return False
    finally:
        _active.reset(token)
    command_line.close()
    raise RuntimeError("a loop-free command awaited something that needs an event loop")


async def in_event_loop(fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
    """`await fn(*args, **kwargs)`; in the loop-free pass, run it in an event loop of its own instead."""
    if not active():
        return await fn(*args, **kwargs)
    import anyio

    async def outside_the_pass() -> T:
        _active.set(False)
        return await fn(*args, **kwargs)

    return anyio.run(outside_the_pass)
