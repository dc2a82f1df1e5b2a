"""Operations over many runs at once (`Client.run_many`, `Client.abort`): each run succeeds or fails
on its own, and the caller gets one result per run, never a first error that cancelled the rest."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import AsyncrunError, UsageError, WaitTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from ._client import Client
    from ._types import Execution, ExecutionId, ExecutionOptions, RemoteEntity


@dataclass
class BatchRun:
    """One line of `Client.run_many`.

    Attributes:
        index: the line's position in `runs` (0-based).
        name: the execution name of this line (the same line of the same batch always gets it).
        execution: the run this line started or attached to (its last known state), or None when
            it could not be launched.
        error: why this line did not go as asked: the launch failed (`execution` is None), the wait
            passed its deadline (`WaitTimeoutError`, the run goes on) or could not follow the run.
            A run that ended FAILED is not an error here: read `execution.phase` and `.error`.
    """

    index: int
    name: str
    execution: Execution | None = None
    error: AsyncrunError | None = None


@dataclass(frozen=True)
class AbortResult:
    """One run of `Client.abort`: `error` is None when the abort was accepted."""

    id: ExecutionId
    error: AsyncrunError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def batch_name(launch_id: Any, index: int, inputs: Mapping[str, Any]) -> str:
    """The execution name of one batch line: the same line of the same batch always gets the same name,
    so running a batch again attaches to its runs instead of starting them twice."""
    key = json.dumps([str(launch_id), index, dict(inputs)], sort_keys=True, default=str)
    digest = base64.b32encode(hashlib.sha256(key.encode()).digest()).decode().lower()
    return "b" + digest[:19]


async def run_many(
    client: Client,
    entity: RemoteEntity,
    runs: Sequence[Mapping[str, Any]],
    *,
    max_inflight: int,
    options: ExecutionOptions | None,
    wait: bool,
    wait_for: str,
    poll_interval: float | None,
    wait_timeout: float | None,
    project: str,
    domain: str,
) -> list[BatchRun]:
    """`Client.run_many` once `entity` is registered: launch every line, then (with `wait`) follow them."""
    from ..sdk._type_engine import to_jsonable

    if max_inflight < 1:
        raise UsageError(f"max_inflight must be at least 1, not {max_inflight}")
    specs = entity.interface.inputs
    results: list[BatchRun] = []
    for index, values in enumerate(runs):
        # Unknown names are kept as they are here; `Client.run` refuses them for this line.
        canonical = {k: to_jsonable(v, specs[k].type) if k in specs else v for k, v in values.items()}
        results.append(BatchRun(index, batch_name(entity.launch_id, index, canonical)))
    limit = anyio.Semaphore(max_inflight)

    async def launch(result: BatchRun) -> None:
        async with limit:
            try:
                result.execution = await client.run(
                    entity,
                    dict(runs[result.index]),
                    name=result.name,
                    options=options,
                    project=project,
                    domain=domain,
                )
            except AsyncrunError as exc:  # this line only; the others go on
                result.error = exc

    async with anyio.create_task_group() as tg:
        for result in results:
            tg.start_soon(launch, result)
    if wait:
        await wait_many(client, results, wait_for=wait_for, poll_interval=poll_interval, timeout=wait_timeout)
    return results


async def wait_many(
    client: Client,
    results: list[BatchRun],
    *,
    wait_for: str,
    poll_interval: float | None,
    timeout: float | None,  # noqa: ASYNC109 - one deadline for every run; the runs go on
) -> None:
    """Follow every launched line until it ends (or runs, with `wait_for="running"`), all under one
    deadline; a line still going at the deadline gets `WaitTimeoutError` and its current state."""
    pending = {id(r): r for r in results if r.execution is not None and r.error is None}

    async def follow(result: BatchRun) -> None:
        assert result.execution is not None
        try:
            result.execution = await client.wait(
                result.execution, poll_interval=poll_interval, wait_for=wait_for
            )
        except AsyncrunError as exc:
            result.error = exc
        del pending[id(result)]

    with anyio.move_on_after(timeout):
        async with anyio.create_task_group() as tg:
            for result in list(pending.values()):
                tg.start_soon(follow, result)
    for result in pending.values():
        assert result.execution is not None
        try:
            result.execution = await client.get_execution(result.execution, with_outputs=False)
        except AsyncrunError:
            pass  # keep the state seen at launch
        waited = f" after {timeout:g} s" if timeout is not None else ""
        result.error = WaitTimeoutError(
            f"stopped waiting for {result.name}{waited}; it is {result.execution.phase}"
        )


async def abort_each(
    terminate: Callable[[ExecutionId, str], Any], ids: Sequence[ExecutionId], cause: str
) -> list[AbortResult]:
    """Ask for every abort on its own (concurrently); one refused abort does not stop the others."""
    outcomes: dict[ExecutionId, AsyncrunError | None] = {}

    async def one(ex_id: ExecutionId) -> None:
        try:
            await terminate(ex_id, cause)
            outcomes[ex_id] = None
        except AsyncrunError as exc:
            outcomes[ex_id] = exc

    async with anyio.create_task_group() as tg:
        for ex_id in ids:
            tg.start_soon(one, ex_id)
    return [AbortResult(ex_id, outcomes[ex_id]) for ex_id in ids]
