"""The task cache: datacatalog keys computed as FlytePropeller does, and the catalog store."""

from __future__ import annotations

import datetime
import json
import math
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from asyncrun import engine
from asyncrun._proto.flyteidl import core
from asyncrun.sandbox._catalog import CachedOutputs, Catalog, Reservation, catalog_metadata, new_owner
from asyncrun.sandbox._catalog_keys import (
    CatalogKeyError,
    artifact_tag,
    catalog_key,
    dataset_id,
    object_hash,
    proto_hash,
)
from asyncrun.sandbox._db import micros, utc_now
from asyncrun.sandbox._store import Store
from asyncrun.sandbox._task_nodes import NodeCacheKey, SandboxCatalog

from .conftest import INT, STR, assert_eventually, integer, literals, string

TASK = core.Identifier(
    resource_type=core.ResourceType.TASK, project="project", domain="domain", name="name", version="1.0.0"
)


def interface(**inputs: core.LiteralType) -> core.TypedInterface:
    return core.TypedInterface(
        inputs=core.VariableMap(variables={name: core.Variable(type=t) for name, t in inputs.items()})
    )


# ------------------------------------------------------------------------------------------------
# Keys: the expected strings are FlytePropeller's own test vectors (catalog/datacatalog transformer)
# ------------------------------------------------------------------------------------------------


def test_artifact_tag_matches_flytepropeller() -> None:
    assert (
        artifact_tag(literals(**{"1": integer(1), "2": integer(2)}))
        == "flyte_cached-GQid5LjHbakcW68DS3P2jp80QLbiF0olFHF2hTh5bg8"
    )


def test_dataset_version_matches_flytepropeller() -> None:
    assert dataset_id(TASK, None, "1.0.0").version == "1.0.0-GKw-c0Pw-GKw-c0Pw"
    assert dataset_id(TASK, core.TypedInterface(), "1.0.0").version == "1.0.0-GKw-c0Pw-GKw-c0Pw"
    assert dataset_id(TASK, interface(**{"1": INT, "2": INT}), "1.0.0").version == "1.0.0-UxVtPm0k-GKw-c0Pw"


def test_dataset_is_named_after_the_task() -> None:
    dataset = dataset_id(TASK, None, " v2 ")
    assert (dataset.project, dataset.domain, dataset.name) == ("project", "domain", "flyte_task-name")
    assert dataset.version.startswith("v2-")
    assert dataset.to_identifier().resource_type == core.ResourceType.DATASET


def test_an_empty_cache_version_has_no_key() -> None:
    with pytest.raises(CatalogKeyError, match="empty cache version"):
        dataset_id(TASK, None, "  ")


def test_the_interface_changes_the_dataset_but_not_the_tag() -> None:
    inputs = literals(n=integer(3))
    a = catalog_key(TASK, interface(n=INT), "1", inputs)
    b = catalog_key(TASK, interface(n=STR), "1", inputs)
    assert a.dataset != b.dataset
    assert a.tag == b.tag


def test_the_tag_depends_on_values_not_on_order() -> None:
    one = artifact_tag(literals(a=integer(1), b=string("x")))
    assert one == artifact_tag(literals(b=string("x"), a=integer(1)))
    assert one != artifact_tag(literals(a=integer(2), b=string("x")))
    assert one != artifact_tag(literals(a=integer(1), b=string("y")))


def test_ignored_inputs_do_not_change_the_tag() -> None:
    base = artifact_tag(literals(a=integer(1), seed=integer(1)), ignore={"seed"})
    assert base == artifact_tag(literals(a=integer(1), seed=integer(99)), ignore={"seed"})
    assert base == artifact_tag(literals(a=integer(1)))


def test_a_literal_with_its_own_hash_is_keyed_by_that_hash() -> None:
    def frame(uri: str, hash_: str) -> core.Literal:
        blob = core.Blob(metadata=core.BlobMetadata(type=core.BlobType(format="parquet")), uri=uri)
        return core.Literal(scalar=core.Scalar(blob=blob), hash=hash_)

    same_hash = artifact_tag(literals(df=frame("s3://a/1", "h1")))
    assert same_hash == artifact_tag(literals(df=frame("s3://a/2", "h1")))
    assert same_hash != artifact_tag(literals(df=frame("s3://a/1", "h2")))
    nested = core.Literal(collection=core.LiteralCollection(literals=[frame("s3://a/1", "h1")]))
    moved = core.Literal(collection=core.LiteralCollection(literals=[frame("s3://b/9", "h1")]))
    assert artifact_tag(literals(xs=nested)) == artifact_tag(literals(xs=moved))


# ObjectHash's own cross-language test vectors (common_json.test in github.com/benlaurie/objecthash).
OBJECTHASH_VECTORS = [
    ("[]", "acac86c0e609ca906f632b0e2dacccb2b77d22b0621f20ebece1a4835b93f6f0"),
    ('["foo", "bar"]', "32ae896c413cfdc79eec68be9139c86ded8b279238467c216cf2bec4d5f1e4a2"),
    ("{}", "18ac3e7343f016890c510e93f935261169d9e3f565436429830faf0934f4f8e4"),
    (
        '{"foo": ["bar", "baz"], "qux": ["norf"]}',
        "f1a9389f27558538a064f3cc250f8686a0cebb85f1cab7f4d4dcc416ceda3c92",
    ),
    ("true", "7dc96f776c8423e57a2785489a3f9c43fb6e756876d6ad9a9cac4aa4e72ec193"),
    ("false", "c02c0b965e023abee808f2b548d8d5193a8b5229be6f3121a6f16e2d41a449b3"),
    (
        '["foo", {"bar": ["baz", null, 1, 1.5, 0.0001, 1000, 2, -23.1234, 2]}]',
        "783a423b094307bcb28d005bc2f026ff44204442ef3513585e7e73b66e3c2213",
    ),
    (
        '{"k2": "v2", "k1": "v1", "k3": "v3"}',
        "ddd65f1f7568269a30df7cafc26044537dc2f02a1a0d830da61762fc3e687057",
    ),
]


@pytest.mark.parametrize(("text", "digest"), OBJECTHASH_VECTORS, ids=range(len(OBJECTHASH_VECTORS)))
def test_object_hash_matches_the_reference_vectors(text: str, digest: str) -> None:
    assert object_hash(json.loads(text, parse_int=float)).hex() == digest


def test_zero_has_a_hash_of_its_own() -> None:
    # The reference implementation loops forever on 0.0; here it is a distinct, stable value.
    assert object_hash(0.0) == object_hash(0.0)
    assert object_hash(0.0) not in {object_hash(v) for v in (1.0, -1.0, 0.5, 1e-300)}


def test_proto_hash_equals_the_hash_of_protobufs_canonical_json() -> None:
    """Our proto-JSON (betterproto2) hashes like the official protobuf JSON of the same message."""
    from flyteidl.core import literals_pb2
    from google.protobuf import json_format

    blob = core.Blob(
        metadata=core.BlobMetadata(
            type=core.BlobType(format="csv", dimensionality=core.BlobTypeBlobDimensionality.MULTIPART)
        ),
        uri="s3://bucket/dir/",
    )
    ours = literals(
        n=integer(-5),
        f=core.Literal(scalar=core.Scalar(primitive=core.Primitive(float_value=2.75))),
        s=string("héllo <&>"),
        b=core.Literal(scalar=core.Scalar(primitive=core.Primitive(boolean=True))),
        none=core.Literal(scalar=core.Scalar(none_type=core.Void())),
        blob=core.Literal(scalar=core.Scalar(blob=blob)),
        xs=core.Literal(collection=core.LiteralCollection(literals=[integer(1), integer(0)])),
        m=core.Literal(map=core.LiteralMap(literals={"k": string("v")})),
        when=core.Literal(
            scalar=core.Scalar(
                primitive=core.Primitive(datetime=datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC))
            )
        ),
        took=core.Literal(
            scalar=core.Scalar(primitive=core.Primitive(duration=datetime.timedelta(seconds=90)))
        ),
    )
    official = literals_pb2.LiteralMap.FromString(bytes(ours))
    canonical = json.loads(json_format.MessageToJson(official), parse_int=float)
    assert proto_hash(ours) == object_hash(canonical)


def float_literal(value: float) -> core.Literal:
    return core.Literal(scalar=core.Scalar(primitive=core.Primitive(float_value=value)))


@pytest.mark.timeout(30)  # the old code looped forever on infinity
def test_non_finite_floats_hash_as_jsonpb_writes_them() -> None:
    from flyteidl.core import literals_pb2
    from google.protobuf import json_format

    ours = literals(inf=float_literal(math.inf), ninf=float_literal(-math.inf), nan=float_literal(math.nan))
    official = literals_pb2.LiteralMap.FromString(bytes(ours))
    canonical = json.loads(json_format.MessageToJson(official), parse_int=float)
    assert proto_hash(ours) == object_hash(canonical)
    assert artifact_tag(ours) == artifact_tag(ours)


@pytest.mark.timeout(30)  # the old code looped forever on infinity (and froze the sandbox's event loop)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_non_finite_number_in_a_struct_has_no_cache_key(value: float) -> None:
    from asyncrun._proto.google.protobuf import Struct

    generic = core.Literal(scalar=core.Scalar(generic=Struct.from_dict({"x": value, "y": 1.5})))
    with pytest.raises(CatalogKeyError, match="inside a struct or dataclass value"):
        catalog_key(TASK, None, "1", literals(d=generic))


def test_catalog_metadata_names_dataset_tag_and_source() -> None:
    key = catalog_key(TASK, None, "1", literals(n=integer(1)))
    assert catalog_metadata(key) == core.CatalogMetadata(dataset_id=key.dataset.to_identifier())
    source = core.TaskExecutionIdentifier(task_id=TASK, retry_attempt=2)
    hit = CachedOutputs(key, literals(), "a-1", source, datetime.datetime.now(datetime.UTC))
    assert catalog_metadata(key, hit) == core.CatalogMetadata(
        dataset_id=key.dataset.to_identifier(),
        artifact_tag=core.CatalogArtifactTag(artifact_id="a-1", name=key.tag),
        source_task_execution=source,
    )


# ------------------------------------------------------------------------------------------------
# The store
# ------------------------------------------------------------------------------------------------

KEY = catalog_key(TASK, interface(n=INT), "1", literals(n=integer(3)))
OTHER = catalog_key(TASK, interface(n=INT), "1", literals(n=integer(4)))


@pytest.fixture
def catalog(store: Store) -> Catalog:
    return Catalog(store)


@pytest.mark.anyio
async def test_put_then_get(catalog: Catalog) -> None:
    assert await catalog.get(KEY) is None
    source = core.TaskExecutionIdentifier(task_id=TASK, retry_attempt=1)
    stored = await catalog.put(KEY, literals(o0=integer(9)), source=source)
    hit = await catalog.get(KEY)
    assert hit == stored
    assert hit is not None and hit.outputs == literals(o0=integer(9)) and hit.source == source
    assert await catalog.get(OTHER) is None


@pytest.mark.anyio
async def test_the_first_value_stays_unless_overwritten(catalog: Catalog) -> None:
    first = await catalog.put(KEY, literals(o0=integer(1)))
    second = await catalog.put(KEY, literals(o0=integer(2)))
    assert second == first
    replaced = await catalog.put(KEY, literals(o0=integer(3)), overwrite=True)
    assert replaced.outputs == literals(o0=integer(3))
    assert replaced.artifact_id != first.artifact_id
    assert await catalog.get(KEY) == replaced


@pytest.mark.anyio
async def test_one_owner_reserves_a_key_at_a_time(catalog: Catalog) -> None:
    a, b = new_owner(), new_owner()
    held = await catalog.try_reserve(KEY, a)
    assert isinstance(held, Reservation) and held.owner == a
    assert await catalog.try_reserve(KEY, b) is None
    assert await catalog.try_reserve(OTHER, b) is not None  # other keys are free
    assert await catalog.try_reserve(KEY, a) is not None  # the holder extends it
    await catalog.release(KEY, b)  # not the holder: no effect
    assert await catalog.try_reserve(KEY, b) is None
    await catalog.release(KEY, a)
    assert await catalog.try_reserve(KEY, b) is not None


@pytest.mark.anyio
async def test_an_expired_reservation_can_be_taken(store: Store) -> None:
    catalog = Catalog(store, reservation_ttl=datetime.timedelta(microseconds=1))
    assert await catalog.try_reserve(KEY, "crashed") is not None
    # Its 1 µs lifetime ended during the write; another owner takes over.
    assert await catalog.try_reserve(KEY, "next") is not None


@pytest.mark.anyio
async def test_put_ends_the_reservation(catalog: Catalog) -> None:
    await catalog.try_reserve(KEY, "a")
    await catalog.put(KEY, literals(o0=integer(1)), owner="a")
    assert await catalog.try_reserve(KEY, "b") is not None


@pytest.mark.anyio
async def test_put_leaves_another_owners_reservation(catalog: Catalog) -> None:
    await catalog.try_reserve(KEY, "a")
    await catalog.put(KEY, literals(o0=integer(1)), owner="b")  # e.g. a node without cache_serialize
    await catalog.put(KEY, literals(o0=integer(1)))
    assert await catalog.try_reserve(KEY, "c") is None  # "a" still holds it until it stores or releases
    await catalog.put(KEY, literals(o0=integer(1)), owner="a")
    assert await catalog.try_reserve(KEY, "c") is not None


async def reservation_expiry(catalog: Catalog) -> int | None:
    row = await catalog._db._read(
        lambda connection: connection.execute("SELECT expires_at FROM catalog_reservations").fetchone()
    )
    return None if row is None else int(row[0])


@pytest.mark.anyio
async def test_a_serialized_computation_keeps_its_reservation_while_it_runs(store: Store) -> None:
    ttl = datetime.timedelta(seconds=0.6)
    catalog = Catalog(store, reservation_ttl=ttl)
    adapter = SandboxCatalog(catalog)
    async with adapter.serialized(NodeCacheKey(KEY, "a")) as hit:
        assert hit is None
        first = await reservation_expiry(catalog)
        assert first is not None

        async def extended() -> bool:
            return (await reservation_expiry(catalog) or 0) > first

        await assert_eventually(extended, what="the holder to extend its reservation")

        async def first_expiry_passed() -> bool:
            return micros(utc_now()) > first

        await assert_eventually(first_expiry_passed, what="the first expiry to pass")
        assert await catalog.try_reserve(KEY, "b") is None  # still "a"'s
    assert await reservation_expiry(catalog) is None  # released on exit
    assert catalog._changed == {} and not catalog._waiters


@pytest.mark.anyio
async def test_a_serialized_body_error_propagates_as_itself(catalog: Catalog) -> None:
    with pytest.raises(KeyError):
        async with SandboxCatalog(catalog).serialized(NodeCacheKey(KEY, "a")):
            raise KeyError("task failed")
    assert await catalog.try_reserve(KEY, "b") is not None


@pytest.mark.anyio
async def test_acquire_waits_for_the_holder_and_returns_its_outputs(catalog: Catalog) -> None:
    assert isinstance(await catalog.acquire(KEY, "a"), Reservation)
    events: list[str] = []

    async def second() -> None:
        result = await catalog.acquire(KEY, "b", poll=60)
        events.append(f"b got {'hit' if isinstance(result, CachedOutputs) else 'reservation'}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        events.append("a stores")
        await catalog.put(KEY, literals(o0=integer(5)))
    assert events == ["a stores", "b got hit"]


@pytest.mark.anyio
async def test_acquire_gets_the_reservation_when_the_holder_releases(catalog: Catalog) -> None:
    await catalog.acquire(KEY, "a")
    events: list[str] = []

    async def second() -> None:
        result = await catalog.acquire(KEY, "b", poll=60)
        events.append(f"b got {'hit' if isinstance(result, CachedOutputs) else 'reservation'}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        events.append("a releases")
        await catalog.release(KEY, "a")
    assert events == ["a releases", "b got reservation"]


@pytest.mark.anyio
async def test_cached_outputs_survive_a_restart(tmp_path: Path) -> None:
    async with Store(tmp_path / "db.sqlite") as store:
        await Catalog(store).put(KEY, literals(o0=integer(7)))
    async with Store(tmp_path / "db.sqlite") as store:
        hit = await Catalog(store).get(KEY)
    assert hit is not None and hit.outputs == literals(o0=integer(7))


def cached_call(task_interface: core.TypedInterface | None = None) -> engine.TaskCall:
    template = core.TaskTemplate(
        id=TASK,
        interface=task_interface,
        metadata=core.TaskMetadata(discoverable=True, discovery_version="1"),
    )
    return engine.TaskCall(SimpleNamespace(template=template), TASK.name, cache=True)


@pytest.mark.anyio
async def test_the_sandbox_computes_a_key_in_a_worker_thread(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return catalog_key(*args, **kwargs)

    monkeypatch.setattr("asyncrun.sandbox._task_nodes.catalog_key", spy)
    key = await SandboxCatalog(catalog).key(cached_call(), {"n": integer(1)})
    assert key.key == catalog_key(TASK, None, "1", literals(n=integer(1)))
    assert len(threads) == 1 and threads[0] is not threading.main_thread()


@pytest.mark.anyio
@pytest.mark.timeout(30)
async def test_an_input_without_a_key_fails_the_node_with_a_clear_error(catalog: Catalog) -> None:
    from asyncrun._proto.google.protobuf import Struct

    generic = core.Literal(scalar=core.Scalar(generic=Struct.from_dict({"x": math.inf})))
    with pytest.raises(engine.NodeFailed, match="inside a struct or dataclass value") as failed:
        await SandboxCatalog(catalog).key(cached_call(), {"d": generic})
    assert (failed.value.failure.code, failed.value.failure.kind) == ("CatalogKeyError", "USER")


class LiteralLauncher:
    """Every attempt succeeds with o0 = the literal in `outputs`."""

    def __init__(self, outputs: dict[str, core.Literal]) -> None:
        self.outputs = outputs

    async def run_attempt(self, call: Any, inputs: Any, handle: Any, **_: Any) -> engine.AttemptResult:
        await handle.running()
        return engine.AttemptResult(outputs=self.outputs)


@pytest.mark.anyio
async def test_a_cached_node_reports_its_catalog_key(store: Store, tmp_path: Path) -> None:
    from asyncrun.sandbox._store import ExecutionKey
    from asyncrun.sandbox._task_nodes import ExecutionContext, StoreRecorder

    class Values:  # bindings are the literals themselves
        def resolve(self, bindings: Any, results: Any, where: str) -> dict[str, Any]:
            return dict(bindings or {})

    sandbox_catalog = SandboxCatalog(Catalog(store))
    call = cached_call()
    graph = engine.Graph((engine.Node("n0", call, {"n": integer(1)}),), {})
    expected_key = catalog_key(TASK, None, "1", literals(n=integer(1)))
    reported = []
    for name in ("first", "second"):
        key = ExecutionKey("p", "d", name)
        context = ExecutionContext(key, tmp_path / name, {}, {}, "wf", "lp", {}, "")
        runner = engine.Engine(
            values=Values(),
            recorder=StoreRecorder(store, context),
            launcher=LiteralLauncher({"o0": integer(2)}),
            catalog=sandbox_catalog,
        )
        await runner.run_graph(graph, {})
        node = await store.get_node_execution(key, "n0")
        assert node is not None and node.closure is not None
        reported.append(node.closure.task_node_metadata)
    populated, hit = reported
    assert populated is not None and hit is not None
    assert populated.cache_status == core.CatalogCacheStatus.CACHE_POPULATED
    assert hit.cache_status == core.CatalogCacheStatus.CACHE_HIT
    for metadata in (populated, hit):
        assert metadata.catalog_key is not None
        assert metadata.catalog_key.dataset_id == expected_key.dataset.to_identifier()
        assert metadata.catalog_key.artifact_tag is not None
        assert metadata.catalog_key.artifact_tag.name == expected_key.tag
    assert populated.catalog_key.artifact_tag.artifact_id == hit.catalog_key.artifact_tag.artifact_id
