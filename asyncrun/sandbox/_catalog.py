"""The sandbox's task cache: cached outputs by datacatalog key, and reservations for `cache_serialize`.

Keys come from `_catalog_keys` (dataset of task name + cache version + interface, tag of the inputs),
so a cache entry is found exactly when Flyte's datacatalog would find it. Storage only: deciding
whether a node is cacheable, `--overwrite-cache` and the cache status a node reports are the
engine's.

`cache_serialize` (FlytePropeller's reservations): one owner at a time computes a key. A reservation
expires `reservation_ttl` after it was taken or last extended, so a crashed owner does not block the
key forever, and its holder extends it every third of that while it computes (`keep_reserved`), as
propeller does every round; `acquire` waits for the cached value or for the reservation, woken at once
when an owner in this process stores outputs or releases, and re-checking every `poll` seconds otherwise.
"""

from __future__ import annotations

import collections
import datetime
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from asyncrun._proto.flyteidl import core
from asyncrun.sandbox._catalog_keys import CatalogKey, DatasetId
from asyncrun.sandbox._db import micros, utc_now

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from asyncrun.sandbox._db import Database

__all__ = [
    "DEFAULT_RESERVATION_TTL",
    "CachedOutputs",
    "Catalog",
    "DatasetId",
    "Reservation",
    "catalog_metadata",
    "new_owner",
]

DEFAULT_RESERVATION_TTL = datetime.timedelta(seconds=30)

log = logging.getLogger("asyncrun.sandbox.catalog")

_KEY_WHERE = (
    "dataset_project = ? AND dataset_domain = ? AND dataset_name = ? AND dataset_version = ? AND tag = ?"
)


def _key_params(key: CatalogKey) -> tuple[str, ...]:
    dataset = key.dataset
    return (dataset.project, dataset.domain, dataset.name, dataset.version, key.tag)


def _from_micros(value: int) -> datetime.datetime:
    return datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(microseconds=value)


@dataclass(frozen=True)
class CachedOutputs:
    """A cache hit: the outputs, the artifact's id, and the task execution that produced them."""

    key: CatalogKey
    outputs: core.LiteralMap
    artifact_id: str
    source: core.TaskExecutionIdentifier | None
    created_at: datetime.datetime


@dataclass(frozen=True)
class Reservation:
    """The right to compute `key` until `expires_at` (extend it with `Catalog.try_reserve`)."""

    key: CatalogKey
    owner: str
    expires_at: datetime.datetime


def catalog_metadata(key: CatalogKey, hit: CachedOutputs | None = None) -> core.CatalogMetadata:
    """What a task node execution reports about its cache entry (`TaskNodeMetadata.catalog_key`)."""
    metadata = core.CatalogMetadata(dataset_id=key.dataset.to_identifier())
    if hit is not None:
        metadata.artifact_tag = core.CatalogArtifactTag(artifact_id=hit.artifact_id, name=key.tag)
        if hit.source is not None:
            metadata.source_task_execution = hit.source
    return metadata


class Catalog:
    """Cached task outputs in the sandbox database.

    Args:
        db: the open store (its `_V2` schema holds `catalog_artifacts` and `catalog_reservations`).
        reservation_ttl: how long a reservation holds without being extended.
    """

    def __init__(
        self, db: Database, *, reservation_ttl: datetime.timedelta = DEFAULT_RESERVATION_TTL
    ) -> None:
        if reservation_ttl <= datetime.timedelta(0):
            raise ValueError(f"reservation_ttl must be positive, got {reservation_ttl}")
        self._db = db
        self._ttl = reservation_ttl
        # Woken when a key gets outputs or loses its reservation, for `acquire` in this process; an
        # entry lives while someone waits on its key.
        self._changed: dict[CatalogKey, anyio.Event] = {}
        self._waiters: collections.Counter[CatalogKey] = collections.Counter()

    @property
    def reservation_ttl(self) -> datetime.timedelta:
        """How long a reservation holds without being extended."""
        return self._ttl

    def _notify(self, key: CatalogKey) -> None:
        event = self._changed.pop(key, None)
        if event is not None:
            event.set()

    async def get(self, key: CatalogKey) -> CachedOutputs | None:
        """The cached outputs of `key`, or None."""

        def read(connection: sqlite3.Connection) -> Sequence[Any] | None:
            row: Sequence[Any] | None = connection.execute(
                f"SELECT artifact_id, outputs, source, created_at FROM catalog_artifacts WHERE {_KEY_WHERE}",
                _key_params(key),
            ).fetchone()
            return row

        row = await self._db._read(read)
        return None if row is None else self._hit(key, row)

    @staticmethod
    def _hit(key: CatalogKey, row: Sequence[Any]) -> CachedOutputs:
        artifact_id, outputs, source, created_at = row
        return CachedOutputs(
            key=key,
            outputs=core.LiteralMap.parse(outputs),
            artifact_id=artifact_id,
            source=core.TaskExecutionIdentifier.parse(source) if source is not None else None,
            created_at=_from_micros(created_at),
        )

    async def put(
        self,
        key: CatalogKey,
        outputs: core.LiteralMap,
        *,
        source: core.TaskExecutionIdentifier | None = None,
        overwrite: bool = False,
        owner: str | None = None,
    ) -> CachedOutputs:
        """Store the outputs of `key` and return the entry now cached.

        Without `overwrite` an existing entry wins (two racing writers agree on one value); with it
        (`--overwrite-cache`) the new outputs replace it. Either way `owner`'s reservation of `key`
        ends; another owner's stays (its holder releases it).
        """
        now = utc_now()
        params = _key_params(key)
        outputs_bytes = bytes(outputs)
        source_bytes = bytes(source) if source is not None else None

        def write(connection: sqlite3.Connection) -> Sequence[Any]:
            existing: Sequence[Any] | None = connection.execute(
                f"SELECT artifact_id, outputs, source, created_at FROM catalog_artifacts WHERE {_KEY_WHERE}",
                params,
            ).fetchone()
            if owner is not None:
                connection.execute(
                    f"DELETE FROM catalog_reservations WHERE {_KEY_WHERE} AND owner = ?", (*params, owner)
                )
            if existing is not None and not overwrite:
                return existing
            if existing is not None:
                connection.execute(f"DELETE FROM catalog_artifacts WHERE {_KEY_WHERE}", params)
            row = (str(uuid.uuid4()), outputs_bytes, source_bytes, micros(now))
            connection.execute(
                "INSERT INTO catalog_artifacts (dataset_project, dataset_domain, dataset_name, "
                "dataset_version, tag, artifact_id, outputs, source, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*params, *row),
            )
            return row

        row = await self._db._write(write)
        self._notify(key)
        return self._hit(key, row)

    async def try_reserve(self, key: CatalogKey, owner: str) -> Reservation | None:
        """Take or extend the reservation of `key` for `owner`; None while another owner holds it."""
        now = utc_now()
        expires_at = now + self._ttl
        params = _key_params(key)

        def write(connection: sqlite3.Connection) -> bool:
            held: Sequence[Any] | None = connection.execute(
                f"SELECT owner, expires_at FROM catalog_reservations WHERE {_KEY_WHERE}", params
            ).fetchone()
            if held is not None and held[0] != owner and held[1] > micros(now):
                return False
            connection.execute(
                "INSERT OR REPLACE INTO catalog_reservations (dataset_project, dataset_domain, "
                "dataset_name, dataset_version, tag, owner, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*params, owner, micros(expires_at)),
            )
            return True

        taken = await self._db._write(write)
        return Reservation(key, owner, expires_at) if taken else None

    async def release(self, key: CatalogKey, owner: str) -> None:
        """End `owner`'s reservation of `key` (no-op when it holds none)."""
        params = (*_key_params(key), owner)
        await self._db._write(
            lambda connection: connection.execute(
                f"DELETE FROM catalog_reservations WHERE {_KEY_WHERE} AND owner = ?", params
            )
        )
        self._notify(key)

    async def acquire(self, key: CatalogKey, owner: str, *, poll: float = 1.0) -> CachedOutputs | Reservation:
        """Wait until `key` is cached (the hit) or `owner` holds its reservation (compute, then `put`).

        The holder must `put` or `release`; otherwise others wait until the reservation expires.
        """
        self._waiters[key] += 1
        try:
            while True:
                event = self._changed.setdefault(key, anyio.Event())
                hit = await self.get(key)
                if hit is not None:
                    return hit
                reservation = await self.try_reserve(key, owner)
                if reservation is not None:
                    return reservation
                with anyio.move_on_after(poll):
                    await event.wait()
        finally:
            self._waiters[key] -= 1
            if self._waiters[key] <= 0:
                del self._waiters[key]
                self._changed.pop(key, None)

    async def keep_reserved(self, key: CatalogKey, owner: str) -> None:
        """Extend `owner`'s reservation of `key` every third of the TTL until cancelled."""
        interval = self._ttl.total_seconds() / 3
        while True:
            await anyio.sleep(interval)
            try:
                if await self.try_reserve(key, owner) is None:
                    log.warning("the reservation of %s was taken over by another owner", key.tag)
            except Exception:  # e.g. a busy database: the next round tries again
                log.warning("cannot extend the reservation of %s", key.tag, exc_info=True)


def new_owner() -> str:
    """A reservation owner id unique to one attempt."""
    return uuid.uuid4().hex
