"""The batched poller: one per (endpoint, project, domain), one `ListExecutions` call per page per tick.

Each tick asks for every due execution of one project/domain at once, `page_size` names per call
(`value_in(name, a;b;…)`), instead of one `GetExecution` per run. Runs are due on an adaptive
interval (quick while young or just changed, slower while nothing happens); a tick also takes runs
due within half their interval, so runs line up on shared ticks and pages stay full. Outputs are
fetched once, at the end, and only for runs someone asked outputs of.

A page of runs already seen in one phase asks only for those that left it (`value_in(phase, …)`
with every other phase): the control plane answers with the few that changed, so a quiet run costs
its name in a filter, not an `Execution` to decode (at 100,000 runs, decoding every run on every
tick takes longer than the tick). Runs never seen, and every run once in `REFRESH_POLLS` polls, are
listed unfiltered: that is how a run that does not exist (or no longer does) is noticed.

Every poller of an endpoint shares its `Endpoint`: the clients, one token bucket, and one health
record. A failed call backs the whole endpoint off with jitter; an endpoint that stops answering
is reported as unreachable since the first failed call, and its runs keep their last known phase.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from .._exceptions import (
    AsyncrunError,
    AuthenticationError,
    ConfigError,
    DeadlineExceededError,
    NotFoundError,
    ResourceExhaustedError,
    UnreachableError,
)
from ..client import Client, ExecutionId, Phase
from ..client._watcher import ExecutionWatcher
from ._tracked import OUTPUTS_DONE, OUTPUTS_FAILED, OUTPUTS_NONE, OUTPUTS_PENDING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import TaskStatus
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from ..client import ClientConfig, Execution
    from ._settings import DaemonSettings
    from ._tracked import Tracked

log = logging.getLogger("asyncrun.daemon")

OUTPUT_WORKERS = 8  # outputs fetched at once per endpoint
MAX_OUTPUTS_BYTES = 1 << 20  # larger outputs are not kept; the caller fetches them with the client
MISSES_BEFORE_CHECK = 3  # a run absent from this many lists is looked up once, to tell "gone" from "lagging"
OUTPUT_ATTEMPTS = 5
JOIN_WINDOW = 0.05  # runs tracked this close together share their first tick
REFRESH_POLLS = 30  # a run is listed unfiltered at least once in this many polls…
REFRESH_SHARE = 10  # …by at most one page in this many of a tick (a burst of refreshes is spread)


class TokenBucket:
    """`rate` calls per second with bursts of up to `burst`, shared by every user of one endpoint.

    `reserve` lets low-priority work (outputs) wait until the bucket is comfortably full, so it never
    starves the polls that deliver phase changes.
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, *, reserve: float = 0.0) -> None:
        while True:
            self._refill()
            missing = 1 + reserve - self._tokens
            if missing <= 1e-9:  # a tolerance: float rounding must not make a full bucket look short
                self._tokens -= 1
                return
            await self._sleep(max(missing / self.rate, 1e-3))


class Endpoint:
    """One control plane as the daemon sees it: its clients, rate limit, backoff and health.

    `poll_client` does not retry (the poller backs off itself and must notice an outage quickly);
    `client` is a normal `Client` with its own retries, for launches, terminations and lookups.
    """

    def __init__(self, config: ClientConfig, settings: DaemonSettings) -> None:
        self.name = config.endpoint
        self.settings = settings
        # Values of `admin.clientSecretEnvVar` forwarded by CLIs; shared with the clients' authenticators.
        self.secret_env: dict[str, str] = {}
        self._use(config)
        self.limiter = TokenBucket(settings.rate, settings.burst)
        self.state = "ok"  # ok | unreachable | throttled | error
        self.unreachable_since: float | None = None
        self.last_error: str | None = None
        self.error_type: str | None = None
        self.failures = 0
        self.resume_at = 0.0
        self.calls = 0
        self.answered = False  # whether any call of this daemon got an answer from it
        self.first_contact = anyio.Lock()  # one probe at a time of an endpoint never answered
        # (when it ended, the error proving the endpoint unreachable or None) of the last such probe
        self.first_contact_verdict: tuple[float, AsyncrunError | None] | None = None
        self.outputs_in: MemoryObjectSendStream[Tracked]
        self.outputs_out: MemoryObjectReceiveStream[Tracked]
        self.outputs_in, self.outputs_out = anyio.create_memory_object_stream[Any](math.inf)

    def _use(self, config: ClientConfig) -> None:
        self.config = config
        # The daemon never starts a sign-in (nobody would see the prompt): it uses the tokens the CLI
        # obtained (the shared token cache) and refreshes them; both clients share that cache.
        config = config.with_overrides(interactive=False)
        self.poll_client = Client(
            config.with_overrides(call_timeout=self.settings.call_timeout, unreachable_timeout=0.0),
            secret_env=self.secret_env,
        )
        self.client = Client(config, secret_env=self.secret_env)

    @property
    def console_url(self) -> str:
        """Where execution pages are: as the control plane announced it to either client, if it did."""
        announced = [
            c.console_url for c in (self.poll_client, self.client) if c.console_url != c.config.console_url
        ]
        return announced[0] if announced else self.config.console_url

    def reconfigure(self, config: ClientConfig) -> bool:
        """Take a CLI's view of this endpoint when it configures authentication differently (e.g. auth
        was configured after the daemon first saw the endpoint); True if anything changed. A view
        without authentication never replaces one with it."""
        if not config.auth_type or auth_settings(config) == auth_settings(self.config):
            return False
        log.info("control plane at %s: credentials settings changed", self.name)
        self.poll_client.close()
        self.client.close()
        self._use(config)
        self.resume_at = 0.0
        return True

    async def call_slot(self, *, reserve: float = 0.0) -> None:
        """Wait out any backoff, then take a token; every admin call of the daemon goes through here."""
        while (pause := self.resume_at - time.monotonic()) > 0:  # noqa: ASYNC110 - a deadline, not an event
            await anyio.sleep(pause)
        await self.limiter.acquire(reserve=reserve)
        self.calls += 1

    def succeeded(self) -> bool:
        """Record a successful call; True if that ends an outage or throttling."""
        self.failures = 0
        self.answered = True
        if self.state == "ok":
            return False
        log.info("control plane at %s answers again", self.name)
        self.state, self.unreachable_since, self.last_error, self.error_type = "ok", None, None, None
        return True

    def failed(self, exc: BaseException, started_at: float) -> bool:
        """Record a failed call started at wall time `started_at`; back off; True if the health changed."""
        self.failures += 1
        ceiling = min(self.settings.backoff_cap, self.settings.backoff_base * 2 ** (self.failures - 1))
        self.resume_at = max(self.resume_at, time.monotonic() + random.uniform(ceiling / 2, ceiling))
        if isinstance(exc, UnreachableError | DeadlineExceededError):
            state = "unreachable"
            if self.unreachable_since is None:
                self.unreachable_since = started_at
        elif isinstance(exc, AuthenticationError | ConfigError):
            # Waiters end with this error (the daemon cannot sign in for them); polling goes on
            # backing off and resumes as soon as a CLI has renewed the shared cached token.
            state = "unauthenticated"
            self.unreachable_since = None
        else:
            state = "throttled" if isinstance(exc, ResourceExhaustedError) else "error"
            self.unreachable_since = None
        self.error_type = type(exc).__name__
        self.last_error = str(exc) or type(exc).__name__
        # Refused credentials are reported after every failed attempt: waiters that arrived since the
        # last report (their arrival lifted the backoff) must hear the verdict too.
        changed = state != self.state or state == "unauthenticated"
        if changed:
            log.warning("control plane at %s is %s: %s", self.name, state, self.last_error)
        self.state = state
        return changed

    def health(self) -> dict[str, Any]:
        health = {
            "endpoint": self.name,
            "state": self.state,
            "unreachable_since": self.unreachable_since,
            "last_error": self.last_error,
            "calls": self.calls,
        }
        if self.state == "unauthenticated":
            health["error_type"] = self.error_type
        return health

    def close(self) -> None:
        self.poll_client.close()
        self.client.close()


def auth_settings(config: ClientConfig) -> tuple[Any, ...]:
    """What decides how the daemon authenticates to an endpoint (never a secret itself)."""
    return (
        config.auth_type,
        config.client_id,
        config.client_secret_location,
        config.client_secret_env_var,
        tuple(config.scopes),
        config.audience,
        tuple(config.auth_command),
        config.token_url,
    )


class PollSink(Protocol):
    """Where pollers report: the service journals, then tells subscribers."""

    async def states_changed(self, items: list[Tracked]) -> None: ...

    async def endpoint_changed(self, endpoint: Endpoint) -> None: ...


class Poller:
    """Polls the tracked executions of one (endpoint, project, domain) in batched ticks."""

    def __init__(
        self, endpoint: Endpoint, project: str, domain: str, settings: DaemonSettings, sink: PollSink
    ) -> None:
        self.endpoint = endpoint
        self.project = project
        self.domain = domain
        self.settings = settings
        self.sink = sink
        self.items: dict[str, Tracked] = {}
        self._wake = anyio.Event()
        self._pages = anyio.Semaphore(settings.page_concurrency)
        self.ticks = 0
        self.list_calls = 0
        self.last_tick_calls = 0
        self.max_tick_calls = 0
        self.last_tick_at: float | None = None
        self.last_tick_seconds = 0.0

    def add(self, item: Tracked) -> None:
        """Poll `item` from the next tick on; a short delay lets a burst of tracks share that tick."""
        self.items[item.name] = item
        if item.needs_polling:
            item.next_due = time.monotonic() + JOIN_WINDOW
            item.interval = 0.0
            self._wake.set()

    def discard(self, name: str) -> None:
        self.items.pop(name, None)

    def wake(self) -> None:
        """Re-plan now (the endpoint's backoff was lifted)."""
        self._wake.set()

    def stats(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint.name,
            "project": self.project,
            "domain": self.domain,
            "tracked": len(self.items),
            "active": sum(1 for t in self.items.values() if t.needs_polling),
            "seen": sum(1 for t in self.items.values() if t.seen_at is not None),  # listed at least once
            "ticks": self.ticks,
            "list_calls": self.list_calls,
            "last_tick_calls": self.last_tick_calls,
            "max_tick_calls": self.max_tick_calls,
            "last_tick_at": self.last_tick_at,
            "last_tick_seconds": self.last_tick_seconds,
        }

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Tick forever; a failure of one tick is logged and never ends the poller."""
        task_status.started()
        while True:
            try:
                await self.step()
            except Exception:
                log.exception("poller %s/%s/%s failed a tick", self.endpoint.name, self.project, self.domain)
                await anyio.sleep(1.0)

    async def step(self) -> None:
        """Sleep until the first run is due (or a new one is added), then poll what is due."""
        active = [t for t in self.items.values() if t.needs_polling]
        self._wake = anyio.Event()
        if not active:
            await self._wake.wait()
            return
        now = time.monotonic()
        wake_at = max(min(t.next_due for t in active), self.endpoint.resume_at)
        if wake_at > now:
            with anyio.move_on_after(wake_at - now):
                await self._wake.wait()
            return
        await self.poll_once(active, now)

    async def poll_once(self, active: list[Tracked], now: float) -> int:
        """One tick: every due run (and those due within half their interval), one call per page."""
        due = sorted(
            (t for t in active if t.next_due <= now + max(t.interval / 2, JOIN_WINDOW)),
            key=lambda t: t.next_due,
        )
        pages = self.plan_pages(due)
        calls_before = self.list_calls
        started = time.monotonic()
        if self.endpoint.state != "ok" and len(pages) > 1:
            # After a failure, one page probes the endpoint before the whole tick is spent on it.
            await self._poll_page(*pages.pop(0), started)
            if self.endpoint.state != "ok":
                pages = []
        async with anyio.create_task_group() as tg:
            for phase, page in pages:
                tg.start_soon(self._poll_page, phase, page, started)
        calls = self.list_calls - calls_before
        self.ticks += 1
        self.last_tick_calls = calls
        self.max_tick_calls = max(self.max_tick_calls, calls)
        self.last_tick_at = time.time()
        self.last_tick_seconds = time.monotonic() - started
        return calls

    def plan_pages(self, due: list[Tracked]) -> list[tuple[str | None, list[Tracked]]]:
        """`due` in pages of `page_size`, each with the phase its runs were all last seen in (listed
        filtered: only those that left it come back) or None (listed unfiltered).

        Full pages of one phase are filtered; runs never seen, runs due for their refresh and the
        remainders of each phase share unfiltered pages, so a tick takes no more calls than
        ceil(len(due) / page_size).
        """
        size = self.settings.page_size
        budget = max(1, math.ceil(len(due) / size) // REFRESH_SHARE) * size  # refreshes this tick
        unfiltered: list[Tracked] = []
        by_phase: dict[str, list[Tracked]] = {}
        for item in due:
            if item.seen_at is None:
                unfiltered.append(item)
            elif item.filtered_polls >= REFRESH_POLLS and budget > 0:
                budget -= 1
                unfiltered.append(item)
            else:
                by_phase.setdefault(item.phase, []).append(item)
        pages: list[tuple[str | None, list[Tracked]]] = []
        for phase, items in by_phase.items():
            whole = len(items) - len(items) % size
            pages += [(phase, items[i : i + size]) for i in range(0, whole, size)]
            unfiltered += items[whole:]
        pages += [(None, unfiltered[i : i + size]) for i in range(0, len(unfiltered), size)]
        return pages

    async def _poll_page(self, phase: str | None, page: list[Tracked], tick_started: float) -> None:
        async with self._pages:
            names = [t.name for t in page]
            started_at = time.time()
            # The client's batched lookup, through the endpoint's rate limit and backoff (the endpoint
            # may have swapped its client since the last tick: credentials changed).
            watcher = ExecutionWatcher(
                self.endpoint.poll_client,
                page_size=self.settings.page_size,
                before_call=self.endpoint.call_slot,
            )
            others = () if phase is None else tuple(p for p in _PHASE_NAMES if p != phase)
            try:
                found = await watcher.list_states(self.project, self.domain, names, phases=others)
            except AsyncrunError as exc:
                self.list_calls += watcher.list_calls
                if self.endpoint.failed(exc, started_at):
                    await self.sink.endpoint_changed(self.endpoint)
                return
            self.list_calls += watcher.list_calls
            if self.endpoint.succeeded():
                await self.sink.endpoint_changed(self.endpoint)
            wall = time.time()
            changed: list[Tracked] = []
            lost: list[Tracked] = []
            for item in page:
                execution = found.get(item.name)
                if phase is not None:
                    item.filtered_polls += 1
                else:
                    item.filtered_polls = 0
                if execution is None and phase is not None:
                    item.seen_at = wall  # not listed: still in `phase`
                elif execution is None:
                    item.misses += 1
                    if item.misses >= MISSES_BEFORE_CHECK:
                        lost.append(item)
                elif apply_execution(item, execution, wall):
                    changed.append(item)
                item.interval = item.poll_interval(
                    wall, self.settings.min_interval, self.settings.max_interval
                )
                item.next_due = tick_started + item.interval
            for item in lost:
                if await self._confirm(item, wall):
                    changed.append(item)
            if changed:
                await self.sink.states_changed(changed)
            for item in changed:
                if item.phase == "SUCCEEDED" and item.outputs_state == OUTPUTS_PENDING:
                    self.endpoint.outputs_in.send_nowait(item)

    async def _confirm(self, item: Tracked, wall: float) -> bool:
        """A run missing from several lists: one GetExecution tells whether it exists at all."""
        await self.endpoint.call_slot()
        try:
            execution = await self.endpoint.poll_client.get_execution(
                ExecutionId(self.project, self.domain, item.name), with_outputs=False
            )
        except NotFoundError:
            item.found = False
            item.terminal_at = wall
            item.outputs_state = OUTPUTS_NONE if item.outputs_state == OUTPUTS_PENDING else item.outputs_state
            item.error = {
                "code": "NOT_FOUND",
                "message": f"no execution {item.name} in {self.project}/{self.domain}"
                f" at {self.endpoint.name}",
                "kind": "USER",
            }
            return True
        except AsyncrunError:
            return False  # the next tick retries
        return apply_execution(item, execution, wall)


_PHASE_NAMES = tuple(phase.value for phase in Phase)


def apply_execution(item: Tracked, execution: Execution, wall: float) -> bool:
    """Copy what the list said into `item`; True if a subscriber would see a difference."""
    item.misses = 0
    item.seen_at = wall
    phase = str(execution.phase)
    error: dict[str, Any] | None = None
    if execution.error is not None:
        error = {
            "code": execution.error.code,
            "message": execution.error.message,
            "kind": execution.error.kind,
        }
    elif execution.abort_cause:
        error = {"code": "ABORTED", "message": execution.abort_cause, "kind": "USER"}
    changed = (phase, error, execution.url, True) != (item.phase, item.error, item.url, item.found)
    if phase != item.phase:
        item.phase_changed_at = wall
    item.phase, item.error, item.url, item.found = phase, error, execution.url, True
    if item.settled and item.terminal_at is None:
        item.terminal_at = wall
    if item.terminal and phase != "SUCCEEDED" and item.outputs_state == OUTPUTS_PENDING:
        item.outputs_state = OUTPUTS_NONE  # only a success has outputs
    return changed


async def fetch_outputs_forever(endpoint: Endpoint, sink: PollSink, *, workers: int = OUTPUT_WORKERS) -> None:
    """Fetch the outputs of succeeded runs that someone asked outputs of, once each, at low priority.

    `workers` fetches run at once (runs often end together), all within the endpoint's rate limit.
    """
    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(_fetch_outputs, endpoint, sink)


async def _fetch_outputs(endpoint: Endpoint, sink: PollSink) -> None:
    async for item in endpoint.outputs_out:
        if item.outputs_state != OUTPUTS_PENDING:
            continue
        for attempt in range(OUTPUT_ATTEMPTS):
            await endpoint.call_slot(reserve=endpoint.limiter.burst / 2)
            started_at = time.time()
            try:
                outputs = await endpoint.poll_client.fetch_outputs(
                    ExecutionId(item.project, item.domain, item.name)
                )
            except AsyncrunError as exc:
                if endpoint.failed(exc, started_at):
                    await sink.endpoint_changed(endpoint)
                log.info("outputs of %s: attempt %d failed: %s", item.name, attempt + 1, exc)
                continue
            except Exception:
                log.exception("outputs of %s could not be read", item.name)
                break
            if endpoint.succeeded():
                await sink.endpoint_changed(endpoint)
            item.outputs, item.outputs_state = _jsonable(outputs), OUTPUTS_DONE
            if item.outputs is None:
                item.outputs_state = OUTPUTS_FAILED
            break
        else:
            item.outputs_state = OUTPUTS_FAILED
        if item.outputs_state == OUTPUTS_PENDING:
            item.outputs_state = OUTPUTS_FAILED
        await sink.states_changed([item])


def _jsonable(outputs: dict[str, Any]) -> dict[str, Any] | None:
    """Outputs as JSON values, or None when they cannot be encoded or are too large to keep."""
    try:
        text = json.dumps(outputs, default=str)
    except (TypeError, ValueError):
        return None
    if len(text) > MAX_OUTPUTS_BYTES:
        return None
    value: dict[str, Any] = json.loads(text)
    return value
