"""A scripted FlyteAdmin for daemon tests: phases per execution, call counting, silence and faults.

A real grpclib server on 127.0.0.1 implementing the four AdminService calls the daemon makes
(ListExecutions with `value_in(name, …)` and `value_in(phase, …)`, GetExecution, GetExecutionData,
TerminateExecution).

ListExecutions answers are encoded here, one cached `Execution` per run joined into the list's bytes
(the same bytes betterproto2 writes; a test checks): the benchmark serves 100,000 runs from the
benchmark's own process and must measure the daemon, not this stub's encoder.
"""

from __future__ import annotations

import re
import socket
import time
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from grpclib.const import Status
from grpclib.encoding.proto import ProtoCodec
from grpclib.exceptions import GRPCError
from grpclib.server import Server

from asyncrun._proto.flyteidl import admin, core
from asyncrun._proto.flyteidl.service import AdminServiceBase

PROJECT = "flytesnacks"
DOMAIN = "development"
_VALUE_IN = re.compile(r"value_in\(name,([^)]*)\)")
_PHASE_IN = re.compile(r"value_in\(phase,([^)]*)\)")


_ENDED = frozenset({"SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"})


@dataclass
class StubRun:
    name: str
    phase: str = "RUNNING"
    error: tuple[str, str] | None = None
    outputs: dict[str, int] = field(default_factory=dict)
    changed_at: float = 0.0  # time.monotonic() of the last scripted change
    encoded: bytes | None = None  # the run's admin.Execution on the wire, until it changes


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (strings and messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _text(number: int, value: str) -> bytes:
    return _field(number, value.encode()) if value else b""


class Encoded:
    """A reply already encoded (grpclib sends its bytes as they are; see `_StubCodec`)."""

    def __init__(self, data: bytes) -> None:
        self.data = data


class _StubCodec(ProtoCodec):
    def encode(self, message: Any, message_type: Any) -> bytes:
        if isinstance(message, Encoded):
            return message.data
        return super().encode(message, message_type)


class StubAdmin(AdminServiceBase):
    """Scripted executions of one project/domain; every call is counted per method."""

    def __init__(self) -> None:
        self.runs: dict[str, StubRun] = {}
        self.calls: Counter[str] = Counter()
        self.list_sizes: list[int] = []  # names asked for by each ListExecutions call
        self.list_names: list[list[str]] = []  # and the names themselves, in call order
        self.list_phases: list[frozenset[str] | None] = []  # and each call's phase filter, if any
        self.fail_with: Status | None = None
        self.data_delay = 0.0  # seconds each GetExecutionData takes
        self.in_flight: Counter[str] = Counter()
        self.most_in_flight: Counter[str] = Counter()  # the most calls of a method at once
        self._silence: anyio.Event | None = None
        # Sweeps begun so far, counted live (as `calls_per_sweep` counts them afterwards): a clock
        # that runs at the poller's pace, so "heard within N sweeps" holds however busy the machine.
        self.sweeps = 0
        self._sweep_names: set[str] = set()
        # name -> the sweep whose ListExecutions page first showed the run ended (what the poller saw).
        self.served_ended: dict[str, int] = {}

    # ---------------------------------------------------------------- scripting

    def add(self, name: str, phase: str = "RUNNING", **outputs: int) -> StubRun:
        run = self.runs[name] = StubRun(name, phase, outputs=dict(outputs), changed_at=time.monotonic())
        return run

    def set_phase(self, name: str, phase: str, *, error: tuple[str, str] | None = None) -> float:
        """Change a run's phase; returns the monotonic time of the change."""
        run = self.runs[name]
        run.phase, run.error, run.changed_at, run.encoded = phase, error, time.monotonic(), None
        return run.changed_at

    def silence(self) -> None:
        """Stop answering: every call hangs until `resume()` (like a wedged control plane)."""
        if self._silence is None:
            self._silence = anyio.Event()

    def resume(self) -> None:
        if self._silence is not None:
            self._silence.set()
            self._silence = None

    def reset_counts(self) -> None:
        self.calls.clear()
        self.list_sizes.clear()
        self.list_names.clear()
        self.list_phases.clear()

    def calls_per_sweep(self) -> list[int]:
        """ListExecutions calls per sweep, as seen from here: a sweep ends when a name is asked again."""
        sweeps: list[int] = []
        seen: set[str] = set()
        for names in self.list_names:
            if not sweeps or seen.intersection(names):
                sweeps.append(0)
                seen = set()
            sweeps[-1] += 1
            seen.update(names)
        return sweeps

    async def _gate(self, method: str) -> None:
        self.calls[method] += 1
        if self._silence is not None:
            await self._silence.wait()
        if self.fail_with is not None:
            raise GRPCError(self.fail_with, f"stub says {self.fail_with.name}")

    def _message(self, run: StubRun) -> admin.Execution:
        error = None
        if run.error is not None:
            error = core.ExecutionError(
                code=run.error[0], message=run.error[1], kind=core.ExecutionErrorErrorKind.USER
            )
        return admin.Execution(
            id=core.WorkflowExecutionIdentifier(project=PROJECT, domain=DOMAIN, name=run.name),
            closure=admin.ExecutionClosure(phase=core.WorkflowExecutionPhase[run.phase], error=error),
        )

    def encoded(self, run: StubRun) -> bytes:
        """`bytes(self._message(run))`, written directly (betterproto2 takes ~50 µs a run)."""
        if run.encoded is None:
            closure = b""
            if run.error is not None:
                kind = _varint(4 << 3) + _varint(core.ExecutionErrorErrorKind.USER.value)
                closure += _field(2, _text(1, run.error[0]) + _text(2, run.error[1]) + kind)
            phase = core.WorkflowExecutionPhase[run.phase].value
            if phase:
                closure += _varint(4 << 3) + _varint(phase)
            ident = _text(1, PROJECT) + _text(2, DOMAIN) + _text(4, run.name)
            run.encoded = _field(1, ident) + _field(3, closure)
        return run.encoded

    def encoded_list(self, runs: list[StubRun], token: str) -> Encoded:
        """An `admin.ExecutionList` of `runs` and `token`, as bytes."""
        return Encoded(b"".join(_field(1, self.encoded(run)) for run in runs) + _text(2, token))

    # ---------------------------------------------------------------- AdminService

    async def list_executions(self, message: admin.ResourceListRequest) -> admin.ExecutionList:
        await self._gate("list_executions")
        match = _VALUE_IN.search(message.filters)
        names = match.group(1).split(";") if match else list(self.runs)
        self.list_sizes.append(len(names))
        self.list_names.append(names)
        if not self.sweeps or self._sweep_names.intersection(names):
            self.sweeps += 1
            self._sweep_names = set()
        self._sweep_names.update(names)
        if message.id is None or (message.id.project, message.id.domain) != (PROJECT, DOMAIN):
            return admin.ExecutionList()
        phases = _PHASE_IN.search(message.filters)
        wanted = frozenset(phases.group(1).split(";")) if phases else None
        self.list_phases.append(wanted)
        known = [
            run
            for run in map(self.runs.get, names)
            if run is not None and (wanted is None or run.phase in wanted)
        ]
        offset = int(message.token or 0)
        limit = message.limit or 100
        page = known[offset : offset + limit]
        for run in page:
            if run.phase in _ENDED:
                self.served_ended.setdefault(run.name, self.sweeps)
        token = str(offset + limit) if offset + limit < len(known) else ""
        reply: Any = self.encoded_list(page, token)  # an admin.ExecutionList, encoded
        return reply

    async def get_execution(self, message: admin.WorkflowExecutionGetRequest) -> admin.Execution:
        await self._gate("get_execution")
        run = self.runs.get(message.id.name if message.id else "")
        if run is None:
            raise GRPCError(Status.NOT_FOUND, "no such execution")
        return self._message(run)

    async def get_execution_data(
        self, message: admin.WorkflowExecutionGetDataRequest
    ) -> admin.WorkflowExecutionGetDataResponse:
        await self._gate("get_execution_data")
        run = self.runs.get(message.id.name if message.id else "")
        if run is None:
            raise GRPCError(Status.NOT_FOUND, "no such execution")
        self.in_flight["get_execution_data"] += 1
        self.most_in_flight["get_execution_data"] = max(
            self.most_in_flight["get_execution_data"], self.in_flight["get_execution_data"]
        )
        try:
            await anyio.sleep(self.data_delay)
        finally:
            self.in_flight["get_execution_data"] -= 1
        literals = {
            key: core.Literal(scalar=core.Scalar(primitive=core.Primitive(integer=value)))
            for key, value in run.outputs.items()
        }
        return admin.WorkflowExecutionGetDataResponse(full_outputs=core.LiteralMap(literals=literals))

    async def terminate_execution(
        self, message: admin.ExecutionTerminateRequest
    ) -> admin.ExecutionTerminateResponse:
        await self._gate("terminate_execution")
        run = self.runs.get(message.id.name if message.id else "")
        if run is None:
            raise GRPCError(Status.NOT_FOUND, "no such execution")
        self.set_phase(run.name, "ABORTED")
        return admin.ExecutionTerminateResponse()


@asynccontextmanager
async def serving(stub: StubAdmin) -> Any:
    """Serve `stub` on a free loopback port; yields its `host:port`."""
    # IPPROTO_TCP: asyncio sets TCP_NODELAY only on accepted sockets of that proto (else +40 ms a call).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    server = Server([stub], codec=_StubCodec())
    await server.start(sock=sock)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stub.resume()
        server.close()
        await server.wait_closed()
        sock.close()
