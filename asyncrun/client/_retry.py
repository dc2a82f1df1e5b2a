"""The one place calls are retried."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, TypeVar

import anyio
from grpclib.exceptions import GRPCError

from .._exceptions import (
    DeadlineExceededError,
    ResourceExhaustedError,
    UnreachableError,
    WrongEndpointError,
)
from ._errors import map_grpc_errors

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

T = TypeVar("T")


class RetryPolicy:
    """Exponential backoff with full jitter, only for failures that are safe to retry.

    UNAVAILABLE and RESOURCE_EXHAUSTED are retried for every call: creates are idempotent here
    (identical registrations succeed, execution names are chosen before the first attempt).
    DEADLINE_EXCEEDED is retried for reads, and for the writes the client marks repeatable
    (`read=True` here): creates whose ALREADY_EXISTS after a lost answer it recognises as its own.
    A control plane that keeps failing to answer is given up on after `unreachable_timeout` seconds
    without an answer: the clock runs from the start of the first failed attempt, and restarts whenever
    a failed attempt did get an answer (a gRPC status, e.g. UNAVAILABLE from the server or a proxy
    before it). Time a call spent queued behind the client's other calls, or being served slowly, is not
    an outage: counting it made a busy client with many calls in flight give up after a single
    UNAVAILABLE.
    Retries stop after `max_attempts` attempts in any case.
    """

    def __init__(
        self, *, unreachable_timeout: float, max_attempts: int = 10, base: float = 0.05, cap: float = 2.0
    ):
        self.unreachable_timeout = unreachable_timeout
        self.max_attempts = max_attempts
        self.base = base
        self.cap = cap

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2**attempt))

    async def call(self, endpoint: str, fn: Callable[[], Awaitable[T]], *, read: bool) -> T:
        silent_since: float | None = None  # start of the failed attempts since the last answer
        attempt = 0
        while True:
            attempt_started = time.monotonic()
            try:
                with map_grpc_errors(endpoint):
                    return await fn()
            except (UnreachableError, ResourceExhaustedError, DeadlineExceededError) as exc:
                if isinstance(exc, WrongEndpointError):
                    raise
                if isinstance(exc, DeadlineExceededError) and not read:
                    raise
                attempt += 1
                if isinstance(exc.__cause__, GRPCError):
                    silent_since = time.monotonic()  # it answered, with a status to retry on
                elif silent_since is None:
                    silent_since = attempt_started
                elapsed = time.monotonic() - silent_since
                pause = self.delay(attempt)
                if attempt >= self.max_attempts or elapsed + pause > self.unreachable_timeout:
                    raise
                await anyio.sleep(pause)
