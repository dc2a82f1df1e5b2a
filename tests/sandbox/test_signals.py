"""SignalService (GetOrCreateSignal, ListSignals, SetSignal) and the engine's wait for a signal's value."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from grpclib.const import Status
from grpclib.testing import ChannelFor

from asyncrun._proto.flyteidl import admin, core
from asyncrun._proto.flyteidl.service import SignalServiceStub
from asyncrun.sandbox._signals import SignalConflictError, Signals, SignalService
from asyncrun.sandbox._store import ExecutionKey, Store

from .conftest import DOMAIN, PROJECT, STR, expect_status, integer, string

pytestmark = pytest.mark.anyio

BOOL = core.LiteralType(simple=core.SimpleType.BOOLEAN)
RUN = ExecutionKey(PROJECT, DOMAIN, "run1")


def signal_id(name: str, execution: str = "run1") -> core.SignalIdentifier:
    return core.SignalIdentifier(
        signal_id=name,
        execution_id=core.WorkflowExecutionIdentifier(project=PROJECT, domain=DOMAIN, name=execution),
    )


def run_id(name: str = "run1") -> core.WorkflowExecutionIdentifier:
    return core.WorkflowExecutionIdentifier(project=PROJECT, domain=DOMAIN, name=name)


@pytest.fixture
def signals(store: Store) -> Signals:
    return Signals(store)


@pytest.fixture
async def signal_stub(signals: Signals) -> AsyncIterator[SignalServiceStub]:
    async with ChannelFor([SignalService(signals)]) as channel:
        yield SignalServiceStub(channel)


async def test_get_or_create_creates_once_and_returns_the_same_signal(signal_stub: SignalServiceStub) -> None:
    created = await signal_stub.get_or_create_signal(
        admin.SignalGetOrCreateRequest(id=signal_id("title"), type=STR)
    )
    again = await signal_stub.get_or_create_signal(
        admin.SignalGetOrCreateRequest(id=signal_id("title"), type=STR)
    )
    assert created == again == admin.Signal(id=signal_id("title"), type=STR)
    listed = await signal_stub.list_signals(admin.SignalListRequest(workflow_execution_id=run_id(), limit=10))
    assert listed.signals == [created]


async def test_get_or_create_with_another_type_is_already_exists(signal_stub: SignalServiceStub) -> None:
    await signal_stub.get_or_create_signal(admin.SignalGetOrCreateRequest(id=signal_id("title"), type=STR))
    await expect_status(
        signal_stub.get_or_create_signal(admin.SignalGetOrCreateRequest(id=signal_id("title"), type=BOOL)),
        Status.ALREADY_EXISTS,
        "exists with type",
    )


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (admin.SignalGetOrCreateRequest(type=STR), "missing id"),
        (admin.SignalGetOrCreateRequest(id=signal_id("title")), "missing type"),
        (admin.SignalGetOrCreateRequest(id=signal_id(""), type=STR), "missing signal_id"),
        (
            admin.SignalGetOrCreateRequest(id=core.SignalIdentifier(signal_id="t"), type=STR),
            "missing execution_id",
        ),
        (admin.SignalGetOrCreateRequest(id=signal_id("t", execution=""), type=STR), "missing name"),
    ],
    ids=["no-id", "no-type", "no-signal-id", "no-execution", "no-execution-name"],
)
async def test_get_or_create_validates_before_storing(
    signal_stub: SignalServiceStub, request_: admin.SignalGetOrCreateRequest, match: str
) -> None:
    await expect_status(signal_stub.get_or_create_signal(request_), Status.INVALID_ARGUMENT, match)
    listed = await signal_stub.list_signals(admin.SignalListRequest(workflow_execution_id=run_id(), limit=10))
    assert listed.signals == []


async def test_set_signal_stores_the_value(signal_stub: SignalServiceStub) -> None:
    await signal_stub.get_or_create_signal(admin.SignalGetOrCreateRequest(id=signal_id("title"), type=STR))
    await signal_stub.set_signal(admin.SignalSetRequest(id=signal_id("title"), value=string("Dr")))
    listed = await signal_stub.list_signals(admin.SignalListRequest(workflow_execution_id=run_id(), limit=10))
    assert listed.signals == [admin.Signal(id=signal_id("title"), type=STR, value=string("Dr"))]


async def test_set_signal_of_a_missing_signal_is_refused(signal_stub: SignalServiceStub) -> None:
    # FlyteAdmin validates that the signal exists first and answers INVALID_ARGUMENT.
    await expect_status(
        signal_stub.set_signal(admin.SignalSetRequest(id=signal_id("nope"), value=string("x"))),
        Status.INVALID_ARGUMENT,
        "failed to validate that signal [flytesnacks/development/run1/nope] exists",
    )


async def test_set_signal_checks_the_type(signal_stub: SignalServiceStub, signals: Signals) -> None:
    await signal_stub.get_or_create_signal(admin.SignalGetOrCreateRequest(id=signal_id("ok"), type=BOOL))
    await expect_status(
        signal_stub.set_signal(admin.SignalSetRequest(id=signal_id("ok"), value=integer(1))),
        Status.INVALID_ARGUMENT,
        "is not castable to existing signal type",
    )
    stored = await signals.get((RUN, "ok"))
    assert stored is not None and stored.value is None


async def test_set_signal_requires_a_value(signal_stub: SignalServiceStub) -> None:
    await signal_stub.get_or_create_signal(admin.SignalGetOrCreateRequest(id=signal_id("title"), type=STR))
    await expect_status(
        signal_stub.set_signal(admin.SignalSetRequest(id=signal_id("title"))),
        Status.INVALID_ARGUMENT,
        "missing value",
    )


async def test_list_signals_pages_filters_and_stays_in_its_execution(signal_stub: SignalServiceStub) -> None:
    for name in ("a", "b", "c"):
        await signal_stub.get_or_create_signal(admin.SignalGetOrCreateRequest(id=signal_id(name), type=STR))
    await signal_stub.get_or_create_signal(
        admin.SignalGetOrCreateRequest(id=signal_id("other", execution="run2"), type=STR)
    )
    first = await signal_stub.list_signals(admin.SignalListRequest(workflow_execution_id=run_id(), limit=2))
    assert [s.id.signal_id for s in first.signals if s.id] == ["a", "b"]
    assert first.token == "2"
    rest = await signal_stub.list_signals(
        admin.SignalListRequest(workflow_execution_id=run_id(), limit=2, token=first.token)
    )
    assert [s.id.signal_id for s in rest.signals if s.id] == ["c"]
    assert rest.token == ""
    filtered = await signal_stub.list_signals(
        admin.SignalListRequest(workflow_execution_id=run_id(), limit=10, filters="eq(signal_id,b)")
    )
    assert [s.id.signal_id for s in filtered.signals if s.id] == ["b"]
    newest_first = await signal_stub.list_signals(
        admin.SignalListRequest(
            workflow_execution_id=run_id(),
            limit=10,
            sort_by=admin.Sort(key="id", direction=admin.SortDirection.DESCENDING),
        )
    )
    assert [s.id.signal_id for s in newest_first.signals if s.id] == ["c", "b", "a"]


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (admin.SignalListRequest(limit=10), "missing execution_id"),
        (admin.SignalListRequest(workflow_execution_id=run_id()), "limit"),
        (admin.SignalListRequest(workflow_execution_id=run_id(), limit=10, filters="eq(bogus,1)"), "bogus"),
        (admin.SignalListRequest(workflow_execution_id=run_id(), limit=10, token="x"), "token"),
    ],
    ids=["no-execution", "no-limit", "unknown-filter-field", "bad-token"],
)
async def test_list_signals_refuses_bad_requests(
    signal_stub: SignalServiceStub, request_: admin.SignalListRequest, match: str
) -> None:
    await expect_status(signal_stub.list_signals(request_), Status.INVALID_ARGUMENT, match)


async def test_wait_returns_once_the_signal_is_set(signals: Signals, signal_stub: SignalServiceStub) -> None:
    received: list[core.Literal] = []

    async def gate() -> None:
        received.append(await signals.wait((RUN, "title"), STR))

    async with anyio.create_task_group() as tg:
        tg.start_soon(gate)
        await anyio.wait_all_tasks_blocked()
        # The gate created its signal and is waiting: nothing received yet.
        created = await signal_stub.get_or_create_signal(
            admin.SignalGetOrCreateRequest(id=signal_id("title"), type=STR)
        )
        assert created.value is None
        assert received == []
        await signal_stub.set_signal(admin.SignalSetRequest(id=signal_id("title"), value=string("Dr")))
    assert received == [string("Dr")]


async def test_wait_returns_a_value_set_before_it_started(signals: Signals) -> None:
    await signals.get_or_create((RUN, "ok"), BOOL)
    assert await signals.set_value(
        (RUN, "ok"), core.Literal(scalar=core.Scalar(primitive=core.Primitive(boolean=True)))
    )
    value = await signals.wait((RUN, "ok"), BOOL)
    assert value.scalar is not None and value.scalar.primitive is not None and value.scalar.primitive.boolean


async def test_a_finished_or_timed_out_wait_leaves_nothing_behind(signals: Signals) -> None:
    with anyio.move_on_after(0.05):  # a gate that times out
        await signals.wait((RUN, "never"), STR)
    await signals.get_or_create((RUN, "title"), STR)
    await signals.set_value((RUN, "title"), string("Dr"))
    assert await signals.wait((RUN, "title"), STR) == string("Dr")
    assert signals._set == {}


async def test_wait_with_another_type_is_a_conflict(signals: Signals) -> None:
    await signals.get_or_create((RUN, "title"), STR)
    with pytest.raises(SignalConflictError):
        await signals.wait((RUN, "title"), BOOL)


async def test_signals_survive_a_restart(tmp_path: Path) -> None:
    async with Store(tmp_path / "db.sqlite") as store:
        await Signals(store).get_or_create((RUN, "title"), STR)
        await Signals(store).set_value((RUN, "title"), string("Dr"))
    async with Store(tmp_path / "db.sqlite") as store:
        assert await Signals(store).wait((RUN, "title"), STR) == string("Dr")


# ------------------------------------------------------------------------------------------------
# flytekit's FlyteRemote against a real sandbox
# ------------------------------------------------------------------------------------------------


def _remote(endpoint: str):  # type: ignore[no-untyped-def]
    from flytekit.configuration import Config
    from flytekit.remote import FlyteRemote

    return FlyteRemote(
        Config.for_endpoint(endpoint, insecure=True), default_project=PROJECT, default_domain=DOMAIN
    )


@pytest.mark.timeout(300)
async def test_flyteremote_sets_approves_and_lists_signals(sandbox) -> None:  # type: ignore[no-untyped-def]
    from grpclib.client import Channel

    from asyncrun._proto.flyteidl.service import SignalServiceStub as Stub

    channel = Channel(sandbox.host, sandbox.port)
    try:
        stub = Stub(channel)
        # What the engine does when a gate starts waiting.
        for name, literal_type in (("title", STR), ("approve-total", BOOL)):
            await stub.get_or_create_signal(
                admin.SignalGetOrCreateRequest(id=signal_id(name, execution="gated"), type=literal_type)
            )

        def release() -> dict[str, object]:
            remote = _remote(sandbox.endpoint)
            remote.set_signal("title", "gated", "Dr")
            remote.approve("approve-total", "gated")
            return {s.id.signal_id: s.value for s in remote.list_signals("gated")}

        values = await anyio.to_thread.run_sync(release)
        listed = await stub.list_signals(
            admin.SignalListRequest(workflow_execution_id=run_id("gated"), limit=10)
        )
    finally:
        channel.close()
    assert set(values) == {"title", "approve-total"}
    by_id = {s.id.signal_id: s.value for s in listed.signals if s.id}
    assert by_id == {
        "title": string("Dr"),
        "approve-total": core.Literal(scalar=core.Scalar(primitive=core.Primitive(boolean=True))),
    }
