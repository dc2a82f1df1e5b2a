"""What the daemon reports: an execution's state, and the results of wait, status and launch.

Plain dataclasses over the protocol's JSON (docs/daemon-protocol.md). Stdlib only: both the event-loop
connection (`_connect`) and the loop-free one (`_oneshot`) build them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._exceptions import ExecutionError, WaitTimeoutError, run_error_class
from . import _protocol as p

JSON = dict[str, Any]


@dataclass(frozen=True)
class ExecutionState:
    """One execution as the daemon last saw it (see docs/daemon-protocol.md, "execution state")."""

    id: str
    project: str
    domain: str
    name: str
    endpoint: str
    phase: str | None
    url: str = ""
    found: bool = True
    error: JSON | None = None
    outputs: Any = None
    outputs_state: str = "none"
    unreachable_since: float | None = None
    phase_changed_at: float | None = None
    seen_at: float | None = None
    poll_interval: float | None = None
    tracked: bool = True
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, state: JSON) -> ExecutionState:
        return cls(
            id=state["id"],
            project=state["project"],
            domain=state["domain"],
            name=state["name"],
            endpoint=state.get("endpoint", ""),
            phase=state.get("phase"),
            url=state.get("url", ""),
            found=state.get("found", True),
            error=state.get("error"),
            outputs=state.get("outputs"),
            outputs_state=state.get("outputs_state", "none"),
            unreachable_since=state.get("unreachable_since"),
            phase_changed_at=state.get("phase_changed_at"),
            seen_at=state.get("seen_at"),
            poll_interval=state.get("poll_interval"),
            tracked=state.get("tracked", True),
            raw=state,
        )

    @property
    def terminal(self) -> bool:
        return self.phase in p.TERMINAL_PHASES

    @property
    def started(self) -> bool:
        return self.phase is not None and self.phase not in p.NOT_STARTED_PHASES

    @property
    def exit_code(self) -> int:
        """The CLI's exit status for this run: 0 unless it failed (1), was aborted (3) or timed out (4)."""
        if not self.found:
            return ExecutionError.exit_code
        code = self.error.get("code") if isinstance(self.error, dict) else None
        error = run_error_class(self.phase or "", code if isinstance(code, str) else None)
        return error.exit_code if error is not None else 0


@dataclass(frozen=True)
class WaitResult:
    """The end of a wait: every execution's state, and whether the wait gave up first."""

    executions: list[ExecutionState]
    timed_out: bool
    terminated: list[str] = field(default_factory=list)  # ids aborted because of abort_on_timeout

    @property
    def exit_code(self) -> int:
        """5 if the wait timed out, else the first non-zero code of the executions in order, else 0."""
        if self.timed_out:
            return WaitTimeoutError.exit_code
        return next((ex.exit_code for ex in self.executions if ex.exit_code), 0)


@dataclass(frozen=True)
class StatusResult:
    daemon: JSON
    executions: list[ExecutionState]


@dataclass(frozen=True)
class LaunchResult:
    execution: ExecutionState
    created: bool  # False: an execution of that name (same entity and inputs) existed and was attached
