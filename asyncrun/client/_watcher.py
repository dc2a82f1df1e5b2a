"""`ExecutionWatcher`: the one way asyncrun follows runs (`Client.wait`, `wait_all`, `as_completed`,
`watch`, and the daemon's poller).

A poll asks for many runs at once: one `ListExecutions` per project/domain and page of names
(`value_in(name, a;b;…)`) instead of one `GetExecution` per run. Details (outputs) are fetched only
when a run's phase changed to SUCCEEDED. Concurrent waiters on one client share their polls: a waiter
that wants news joins the poll in flight, or reads one that ended after its last look, so N waits
cost ceil(N/page) list calls per poll, not N calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from .._exceptions import AsyncrunError
from ._types import Execution, ExecutionId, Phase

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from ._client import Client

PAGE_SIZE = 100  # names per ListExecutions call


@dataclass
class PollResult:
    """One poll: every run's current state, which of them changed since the last poll, and failures."""

    current: dict[ExecutionId, Execution] = field(default_factory=dict)
    changed: list[ExecutionId] = field(default_factory=list)
    errors: dict[ExecutionId, AsyncrunError] = field(default_factory=dict)


class _Round:
    """A poll in flight that waiters join."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.done = anyio.Event()
        self.result: PollResult | None = None
        self.error: Exception | None = None
        self.cancelled = False  # the waiter that ran it was cancelled: the others start another


class ExecutionWatcher:
    """Polls executions in batches for one client; one instance is shared by all of its waits.

    `before_call` (the daemon's rate limiter) is awaited before every list call.
    """

    def __init__(
        self,
        client: Client,
        *,
        page_size: int = PAGE_SIZE,
        before_call: Callable[[], Awaitable[None]] | None = None,
        outputs: bool = True,
    ) -> None:
        self._client = client
        self._outputs = outputs
        self.page_size = page_size
        self._before_call = before_call
        self._last: dict[ExecutionId, Execution] = {}
        self._output_types: dict[ExecutionId, dict[str, Any] | None] = {}
        self._wanted: dict[ExecutionId, int] = {}  # id -> number of waits that follow it
        self._round: _Round | None = None
        self._finished: _Round | None = None
        self._rounds = 0
        self.list_calls = 0

    # ---------------------------------------------------------------- one batched poll

    async def list_states(
        self, project: str, domain: str, names: list[str], *, phases: Iterable[Phase | str] = ()
    ) -> dict[str, Execution]:
        """The executions of `names` in one project/domain: one list call per page of names.

        With `phases`, only the runs in one of them are listed (the control plane filters).
        """
        found: dict[str, Execution] = {}
        phases = tuple(phases)
        for start in range(0, len(names), self.page_size):
            page = names[start : start + self.page_size]
            token = ""
            while True:
                if self._before_call is not None:
                    await self._before_call()
                self.list_calls += 1
                executions, token = await self._client.list_executions(
                    names=page,
                    phases=phases,
                    limit=self.page_size,
                    token=token,
                    project=project,
                    domain=domain,
                )
                found.update((ex.id.name, ex) for ex in executions)
                if not token or all(name in found for name in page):
                    break
        return found

    async def poll_once(self, ids: Iterable[ExecutionId], *, with_outputs: bool = True) -> PollResult:
        """The current state of every run in `ids`; outputs fetched once, when a run has just succeeded.

        A run absent from the list is looked up once by id (an unknown run is an error for that run
        only, in `errors`).
        """
        wanted = list(dict.fromkeys(ids))
        groups: dict[tuple[str, str], list[ExecutionId]] = {}
        for ex_id in wanted:
            groups.setdefault((ex_id.project, ex_id.domain), []).append(ex_id)
        result = PollResult()
        for (project, domain), group in groups.items():
            found = await self.list_states(project, domain, [ex_id.name for ex_id in group])
            for ex_id in group:
                current = found.get(ex_id.name)
                try:
                    if current is None:
                        current = await self._client.get_execution(ex_id, with_outputs=False)
                    previous = self._last.get(ex_id)
                    current.output_types = self._output_types.get(ex_id)
                    if previous is not None and previous.phase == current.phase:
                        current.outputs = previous.outputs  # unchanged: no second fetch
                    else:
                        if with_outputs and current.phase is Phase.SUCCEEDED:
                            current.outputs = await self._client.fetch_outputs(ex_id, current.output_types)
                        result.changed.append(ex_id)
                except AsyncrunError as exc:
                    result.errors[ex_id] = exc
                    continue
                self._last[ex_id] = current
                result.current[ex_id] = current
        return result

    # ---------------------------------------------------------------- shared polls for waiters

    def follow(self, ex_id: ExecutionId, output_types: dict[str, Any] | None = None) -> None:
        """Include `ex_id` in every shared poll until `unfollow`."""
        self._wanted[ex_id] = self._wanted.get(ex_id, 0) + 1
        if output_types is not None:
            self._output_types[ex_id] = output_types

    def unfollow(self, ex_id: ExecutionId) -> None:
        left = self._wanted.get(ex_id, 0) - 1
        if left > 0:
            self._wanted[ex_id] = left
            return
        self._wanted.pop(ex_id, None)
        self._last.pop(ex_id, None)
        self._output_types.pop(ex_id, None)

    async def newer_than(self, seen: int) -> tuple[int, PollResult]:
        """A shared poll of every followed run that started after poll number `seen` ended.

        Returns at once if such a poll has ended, joins the one in flight, or starts one.
        """
        while True:
            finished = self._finished
            if finished is not None and finished.number > seen and finished.result is not None:
                return finished.number, finished.result
            current = self._round
            if current is None or current.number <= seen:
                current = await self._start_round()
            else:
                await current.done.wait()
            if current.error is not None:
                raise current.error
            if current.result is not None:
                return current.number, current.result
            # the waiter running that poll was cancelled: go again

    @property
    def last_poll(self) -> int:
        """The number of the last shared poll that ended (0: none yet)."""
        return self._finished.number if self._finished is not None else 0

    async def _start_round(self) -> _Round:
        self._rounds += 1
        current = self._round = _Round(self._rounds)
        try:
            # Waits started together (a task group, wait_all) join this poll.
            await anyio.lowlevel.checkpoint()
            current.result = await self.poll_once(list(self._wanted), with_outputs=self._outputs)
            self._finished = current
        except Exception as exc:
            current.error = exc
            raise
        except BaseException:
            current.cancelled = True
            raise
        finally:
            if self._round is current:
                self._round = None
            current.done.set()
        return current
