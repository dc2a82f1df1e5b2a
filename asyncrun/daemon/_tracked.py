"""One tracked execution as the daemon holds it in memory, and its wire form."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._protocol import NOT_STARTED_PHASES, TERMINAL_PHASES

if TYPE_CHECKING:
    from ._protocol import JSON

Key = tuple[str, str, str, str]  # (endpoint, project, domain, name)

# outputs_state values: nobody asked / to fetch / fetched / gave up after retries
OUTPUTS_NONE = "none"
OUTPUTS_PENDING = "pending"
OUTPUTS_DONE = "done"
OUTPUTS_FAILED = "failed"


# Console URL prefixes ("…/executions/"), one string object each however many runs share it.
_PREFIXES: dict[str, str] = {}


class Tracked:
    """The daemon's record of one execution: last known phase, outputs, and who cares about it.

    `interest` counts explicit `track` requests (journaled); `subscribers` are live waits and watches
    (in memory); `durable_subscribers` counts journaled wait subscriptions, which outlive a daemon
    restart until their CLI comes back for them.

    One daemon holds 100,000 of these, so each is kept small: slots; `subscribers` a tuple (most
    runs have none or one: the empty tuple is shared, an empty set is 216 bytes); the console URL
    stored as a prefix shared by every run of an endpoint plus the run's own name.
    """

    __slots__ = (
        "domain",
        "durable_subscribers",
        "endpoint",
        "error",
        "filtered_polls",
        "found",
        "interest",
        "interval",
        "misses",
        "name",
        "next_due",
        "outputs",
        "outputs_state",
        "phase",
        "phase_changed_at",
        "project",
        "seen_at",
        "subscribers",
        "terminal_at",
        "tracked_at",
        "_url",
    )

    def __init__(
        self,
        key: Key,
        *,
        tracked_at: float,
        phase: str = "UNDEFINED",
        url: str = "",
        found: bool = True,
        error: JSON | None = None,
        outputs: Any = None,
        outputs_state: str = OUTPUTS_NONE,
        interest: int = 0,
        phase_changed_at: float | None = None,
        seen_at: float | None = None,
        terminal_at: float | None = None,
    ) -> None:
        self.endpoint, self.project, self.domain, self.name = key
        self.phase = phase
        self.url = url
        self.found = found
        self.error = error
        self.outputs = outputs
        self.outputs_state = outputs_state
        self.interest = interest
        self.tracked_at = tracked_at
        self.phase_changed_at = phase_changed_at if phase_changed_at is not None else tracked_at
        self.seen_at = seen_at
        self.terminal_at = terminal_at
        self.subscribers: tuple[Any, ...] = ()
        self.durable_subscribers = 0
        self.next_due = 0.0  # monotonic time of the next poll
        self.interval = 0.0
        self.misses = 0  # consecutive polls that did not list it
        self.filtered_polls = 0  # polls since it was last listed unfiltered (see _poller)

    @property
    def url(self) -> str:
        url = self._url
        return url + self.name if isinstance(url, str) else url[0]

    @url.setter
    def url(self, url: str) -> None:
        if url.endswith("/" + self.name):
            prefix = url[: len(url) - len(self.name)]
            self._url: str | tuple[str] = _PREFIXES.setdefault(prefix, prefix)
        else:
            self._url = (url,)  # not PREFIX/NAME: kept whole

    def subscribe(self, subscriber: Any) -> None:
        if subscriber not in self.subscribers:
            self.subscribers += (subscriber,)

    def unsubscribe(self, subscriber: Any) -> None:
        if subscriber in self.subscribers:
            self.subscribers = tuple(s for s in self.subscribers if s is not subscriber)

    @property
    def key(self) -> Key:
        return (self.endpoint, self.project, self.domain, self.name)

    @property
    def execution_id(self) -> str:
        return f"{self.project}:{self.domain}:{self.name}"

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES

    @property
    def settled(self) -> bool:
        """Nothing about its phase can change any more: terminal, or known not to exist."""
        return self.terminal or not self.found

    @property
    def needs_polling(self) -> bool:
        return not self.settled

    @property
    def wanted(self) -> bool:
        """Someone still cares: an explicit track, a live subscriber, or a journaled wait."""
        return self.interest > 0 or bool(self.subscribers) or self.durable_subscribers > 0

    def poll_interval(self, now: float, low: float, high: float) -> float:
        """Quick while a run is young or just changed phase, slower the longer nothing happens."""
        quiet_for = max(0.0, now - self.phase_changed_at)
        return min(high, max(low, quiet_for * 0.1))

    def to_wire(self, *, unreachable_since: float | None = None, with_outputs: bool = True) -> JSON:
        state: JSON = {
            "id": self.execution_id,
            "project": self.project,
            "domain": self.domain,
            "name": self.name,
            "endpoint": self.endpoint,
            "phase": self.phase,
            "terminal": self.terminal,
            "started": self.phase not in NOT_STARTED_PHASES,
            "found": self.found,
            "url": self.url,
            "error": self.error,
            "outputs_state": self.outputs_state,
            "tracked_at": self.tracked_at,
            "phase_changed_at": self.phase_changed_at,
            "seen_at": self.seen_at,
            "poll_interval": self.interval or None,
            "unreachable_since": unreachable_since,
            "subscribers": len(self.subscribers),  # live waits and watches
            "journaled_waits": self.durable_subscribers,  # waits that outlive a daemon restart
        }
        if with_outputs:
            state["outputs"] = self.outputs
        return state
