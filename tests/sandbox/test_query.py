"""The list language (filters, sort keys, tokens, limits), compiled to parameterized SQL, run on SQLite."""

from __future__ import annotations

import datetime
import sqlite3

import pytest

from asyncrun._proto.flyteidl import admin
from asyncrun.sandbox._query import (
    Query,
    QueryError,
    build_query,
    next_token,
    parse_duration,
    parse_timestamp,
    to_micros,
)

ASC, DESC = admin.SortDirection.ASCENDING, admin.SortDirection.DESCENDING


def test_filters_compile_to_placeholders_and_parameters() -> None:
    query = build_query(
        "execution",
        filters="eq(phase,RUNNING)+value_in(execution.name,a;b;c)+contains(launch_plan.name,wf)+ne(state,0)",
        limit=10,
    )
    assert query.where == (
        "(phase = ?) AND (execution_name IN (?, ?, ?)) AND (launch_plan_name LIKE ? ESCAPE '\\') "
        "AND (state != ?)"
    )
    assert query.params == ("RUNNING", "a", "b", "c", "%wf%", 0)
    assert query.filtered_fields == {"phase", "name", "state"}


@pytest.mark.parametrize(
    ("filters", "sql", "params"),
    [
        ("gt(duration,90)", "(duration > ?)", (90_000_000,)),
        ("lte(duration,1m30.5s)", "(duration <= ?)", (90_500_000,)),
        ("gte(duration,250ms)", "(duration >= ?)", (250_000,)),
        ("lt(started_at,2024-01-02T03:04:05.123456789Z)", "(started_at < ?)", (1704164645123456,)),
        ("gte(created_at,2024-01-02T04:04:05+01:00)", "(created_at >= ?)", (1704164645000000,)),
        ("value_not_in(phase,2;SUCCEEDED)", "(phase NOT IN (?, ?))", ("RUNNING", "SUCCEEDED")),
        ("not_like(name,x_y%)", "(execution_name NOT LIKE ? ESCAPE '\\')", ("%x\\_y\\%%",)),
        ("eq(state,EXECUTION_ARCHIVED)", "(state = ?)", (1,)),
        ("eq(mode, 1)", "(mode = ?)", (1,)),
    ],
)
def test_values_are_converted_per_field(filters: str, sql: str, params: tuple[object, ...]) -> None:
    query = build_query("execution", filters=filters, limit=1)
    assert (query.where, query.params) == (sql, params)


@pytest.mark.parametrize(
    ("entity", "filters", "message"),
    [
        ("execution", "eq(colour,red)", "unknown execution filter field 'colour'"),
        ("execution", "like(name,x)", "unrecognized filter function 'like'"),
        ("execution", "eq(node_execution.node_id,n0)", "cannot filter execution by entity 'node_execution'"),
        ("task", "eq(launch_plan.name,x)", "cannot filter task by entity 'launch_plan'"),
        ("execution", "eq(name)", "invalid filter expression"),
        ("execution", "eq(phase,SLEEPING)", "invalid phase 'SLEEPING'"),
        ("execution", "gt(created_at,yesterday)", "invalid timestamp"),
        ("execution", "gt(duration,forever)", "invalid duration"),
        ("execution", "eq(mode,manual)", "invalid integer"),
        ("execution", "contains(duration,5)", "needs a text field"),
        ("launch_plan", "eq(state,PAUSED)", "invalid state"),
    ],
)
def test_bad_filters_are_rejected_with_a_reason(entity: str, filters: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        build_query(entity, filters=filters, limit=1)


def test_a_timestamp_with_an_offset_is_not_split_at_its_plus() -> None:
    query = build_query(
        "execution", filters="gt(created_at,2024-01-02T03:04:05+02:00)+eq(phase,QUEUED)", limit=1
    )
    assert query.params == (to_micros(datetime.datetime(2024, 1, 2, 1, 4, 5, tzinfo=datetime.UTC)), "QUEUED")


def test_sort_keys_are_checked_per_entity() -> None:
    assert (
        build_query("execution", sort_by=admin.Sort(key="started_at"), limit=5).order_by
        == "started_at DESC, id DESC"
    )
    assert build_query("execution", sort_by=admin.Sort(key="duration", direction=ASC), limit=5).order_by == (
        "duration ASC, id ASC"
    )
    assert build_query(
        "task_execution", sort_by=admin.Sort(key="retry_attempt", direction=ASC), limit=5
    ).order_by == ("retry_attempt ASC, id ASC")
    # An empty key means the server's default order.
    assert build_query("execution", sort_by=admin.Sort(), limit=5).order_by == "created_at DESC, id DESC"
    names = build_query("task", sort_by=admin.Sort(key="name", direction=ASC), limit=1, ids=True)
    assert names.order_by == "name ASC"
    latest = build_query("task", sort_by=admin.Sort(key="created_at"), limit=1, ids=True)
    assert latest.order_by == "MAX(created_at) DESC, name DESC"
    for entity, key in (("execution", "colour"), ("task", "phase"), ("launch_plan", "id; DROP TABLE tasks")):
        with pytest.raises(QueryError, match="invalid sort key"):
            build_query(entity, sort_by=admin.Sort(key=key), limit=5)


@pytest.mark.parametrize("token", ["-1", "abc", "1.5", " 3", "0x10"])
def test_malformed_tokens_are_rejected(token: str) -> None:
    with pytest.raises(QueryError, match="invalid pagination token"):
        build_query("task", token=token, limit=5)


def test_limits_must_be_positive_except_where_unlimited_is_allowed() -> None:
    with pytest.raises(QueryError, match="invalid value for limit"):
        build_query("task", limit=0)
    assert build_query("project", limit=0, allow_unlimited=True).limit == -1


def test_the_next_token_is_given_only_for_a_full_page() -> None:
    query = build_query("task", limit=3, token="6")
    assert query.offset == 6
    assert next_token(query, 3) == "9"
    assert next_token(query, 2) == ""
    assert next_token(build_query("project", limit=0, allow_unlimited=True), 10) == ""


def test_parsers() -> None:
    assert parse_timestamp("2024-01-02T03:04:05Z") == datetime.datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC
    )
    assert parse_timestamp("2024-01-02T03:04:05.5-01:00").hour == 3
    assert parse_duration("1h2m3s") == 3_723_000_000
    assert parse_duration("-1.5s") == -1_500_000
    assert parse_duration("0") == 0
    for bad in ("", "5 days", "1x", "nan", "inf"):
        with pytest.raises(QueryError):
            parse_duration(bad)


def _rows(connection: sqlite3.Connection, query: Query) -> list[str]:
    where = query.where or "1"
    sql = f"SELECT execution_name FROM executions WHERE {where} ORDER BY {query.order_by} LIMIT ? OFFSET ?"
    return [row[0] for row in connection.execute(sql, (*query.params, query.limit, query.offset))]


def test_compiled_queries_run_on_sqlite_and_user_values_stay_values() -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute(
        "CREATE TABLE executions (id INTEGER PRIMARY KEY, execution_project, execution_domain, "
        "execution_name, launch_plan_project, launch_plan_domain, launch_plan_name, launch_plan_version, "
        "phase, state, created_at, duration)"
    )
    rows = [
        ("alpha", "wf", "SUCCEEDED", 0, 100, 5_000_000),
        ("beta", "wf", "RUNNING", 0, 200, None),
        ("gamma'; DROP TABLE executions; --", "other", "FAILED", 1, 300, 50_000_000),
    ]
    for name, lp, phase, state, created, duration in rows:
        connection.execute(
            "INSERT INTO executions (execution_project, execution_domain, execution_name, launch_plan_name, "
            "phase, state, created_at, duration) VALUES ('p', 'd', ?, ?, ?, ?, ?, ?)",
            (name, lp, phase, state, created, duration),
        )
    assert _rows(
        connection, build_query("execution", filters="value_in(phase,RUNNING;SUCCEEDED)", limit=10)
    ) == [
        "beta",
        "alpha",
    ]
    assert _rows(connection, build_query("execution", filters="gt(duration,10s)", limit=10)) == [rows[2][0]]
    injected = build_query("execution", filters=f"eq(name,{rows[2][0]})", limit=10)
    assert _rows(connection, injected) == [rows[2][0]]
    assert _rows(
        connection, build_query("execution", filters="eq(launch_plan.name,wf)", limit=1, token="1")
    ) == ["alpha"]
    ascending = build_query("execution", sort_by=admin.Sort(key="created_at", direction=ASC), limit=2)
    assert _rows(connection, ascending) == ["alpha", "beta"]
    assert connection.execute("SELECT COUNT(*) FROM executions").fetchone() == (3,)
