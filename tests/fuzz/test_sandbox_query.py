"""Fuzz the sandbox's list language: filters, sort keys, tokens and limits.

Whatever a request carries, `build_query` either raises `QueryError` (answered INVALID_ARGUMENT) or
compiles SQL that SQLite runs on the sandbox's real schema: no other exception, ever.
"""

from __future__ import annotations

import datetime
import sqlite3
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from asyncrun._proto.flyteidl import admin
from asyncrun.sandbox._db import MIGRATIONS, page_sql
from asyncrun.sandbox._query import ENTITIES, Query, QueryError, build_query, parse_duration, parse_timestamp

from .strategies import user_text

FUNCTIONS = ["eq", "ne", "gt", "gte", "lt", "lte", "contains", "not_like", "value_in", "value_not_in"]
FIELD_NAMES = sorted(
    {name for entity in ENTITIES.values() for fields in entity.fields.values() for name in fields}
)
PREFIXES = sorted({prefix for entity in ENTITIES.values() for prefix in entity.fields})
SORT_KEYS = sorted({key for entity in ENTITIES.values() for key in entity.sort_keys} | {"name", "created_at"})

values = st.one_of(
    user_text,
    st.integers().map(str),
    st.sampled_from(["SUCCEEDED", "running", "1", "99", "-1", "EXECUTION_ARCHIVED", "2024-01-02T03:04:05Z"]),
    st.sampled_from(["1m30s", "1.5", ".5h", "9" * 400, "9" * 30 + "h", "١٢", "²"]),
    st.lists(st.text(string.ascii_letters + "9", max_size=4), min_size=1, max_size=50).map(";".join),
)
expressions = st.builds(
    lambda func, prefix, name, value, spaces: f"{func}({prefix}{name},{spaces}{value})",
    st.one_of(st.sampled_from(FUNCTIONS), st.text(string.ascii_letters + "_", max_size=8)),
    st.one_of(st.just(""), st.sampled_from(PREFIXES).map(lambda p: p + "."), st.text(max_size=5)),
    st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=6)),
    values,
    st.sampled_from(["", " ", "  "]),
)
filters = st.one_of(
    st.text(),
    st.lists(expressions, max_size=4).map("+".join),
    st.lists(expressions, max_size=3).map(" + ".join),
)
sorts = st.one_of(
    st.none(),
    st.builds(
        admin.Sort,
        key=st.one_of(st.sampled_from(SORT_KEYS), st.text(max_size=10)),
        direction=st.sampled_from(list(admin.SortDirection)),
    ),
)
tokens = st.one_of(
    st.just(""),
    st.integers(min_value=0, max_value=2**70).map(str),
    st.text(max_size=12),
    st.sampled_from(["²", "١٢", "𝟗", "0x10", " 3", "-1", "9" * 25]),
)
limits = st.integers(min_value=-(2**31), max_value=2**32 - 1)


def _database() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:")
    for migration in MIGRATIONS:  # the sandbox's real schema: every migration, in order
        for statement in migration:
            connection.execute(statement)
    return connection


DATABASE = _database()


def _run(entity: str, query: Query, ids: bool) -> None:
    table = ENTITIES[entity].table
    if ids:
        sql, params = page_sql(f"SELECT name FROM {table}", query, group_by="name")
    else:
        sql, params = page_sql(f"SELECT * FROM {table}", query)
    DATABASE.execute(sql, params).fetchall()


@pytest.mark.parametrize("entity", sorted(ENTITIES))
@given(filters=filters, sort_by=sorts, limit=limits, token=tokens, ids=st.booleans())
@example(filters="", sort_by=None, limit=10, token="²", ids=False)  # isdigit() but not int(): ValueError
@example(filters="", sort_by=None, limit=10, token="9" * 25, ids=False)  # past SQLite's 64-bit OFFSET
@example(filters="eq(id," + "9" * 25 + ")", sort_by=None, limit=10, token="", ids=False)
@example(filters="eq(duration," + "9" * 400 + ")", sort_by=None, limit=10, token="", ids=False)  # inf
@example(filters="eq(duration," + "9" * 30 + "h)", sort_by=None, limit=10, token="", ids=False)
@example(filters="eq(state," + "9" * 25 + ")", sort_by=None, limit=10, token="", ids=False)
@example(filters="value_in(name," + ";" * 40_000 + ")", sort_by=None, limit=10, token="", ids=False)
def test_any_list_request_compiles_or_is_invalid(
    entity: str, filters: str, sort_by: admin.Sort | None, limit: int, token: str, ids: bool
) -> None:
    try:
        query = build_query(
            entity,
            filters=filters,
            sort_by=sort_by,
            limit=limit,
            token=token,
            ids=ids and entity in ("task", "workflow", "launch_plan"),
            allow_unlimited=entity == "project",
        )
    except QueryError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
        return
    _run(entity, query, ids and entity in ("task", "workflow", "launch_plan"))


@given(text=st.one_of(st.text(), values))
@example(text="9" * 400)
@example(text="9" * 400 + "h")
def test_duration_values_parse_or_are_invalid(text: str) -> None:
    try:
        micros = parse_duration(text)
    except QueryError:
        return
    assert -(2**63) <= micros < 2**63


@given(text=st.one_of(st.text(), st.datetimes().map(lambda d: d.isoformat() + "Z"), values))
@example(text="0000-01-01T00:00:00Z")
@example(text="2024-02-30T00:00:00Z")
@example(text="٢٠٢٤-٠١-٠٢T03:04:05Z")
def test_timestamp_values_parse_or_are_invalid(text: str) -> None:
    try:
        parse_timestamp(text)
    except QueryError:
        return


@given(value=st.datetimes(timezones=st.just(datetime.UTC)))
def test_rfc3339_round_trip(value: datetime.datetime) -> None:
    assert parse_timestamp(value.isoformat().replace("+00:00", "Z")) == value
