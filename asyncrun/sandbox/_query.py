"""FlyteAdmin's list language — filters, sort keys, tokens and limits — compiled to parameterized SQL.

Filters are `func(field,value)` expressions joined by `+` (flyteadmin `ParseFilters`). A field may carry an
entity prefix (`execution.phase`, `launch_plan.name`); each listed entity allows its own fields and a few
joined entities, whose fields are denormalized columns of the listed table. User values only ever travel
as SQL parameters; column names come from the tables below, never from the request.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from asyncrun._proto.flyteidl import admin, core

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "Query",
    "QueryError",
    "build_query",
    "next_token",
    "parse_duration",
    "parse_timestamp",
    "to_micros",
]


class QueryError(ValueError):
    """A filter, sort key, token or limit the server cannot accept (answered as INVALID_ARGUMENT)."""


# SQLite integers are signed 64-bit; a larger Python int as a parameter raises OverflowError.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Values of one request's filters: well below SQLite's limit on `?` parameters per statement (32766).
MAX_FILTER_VALUES = 10_000


def _int64(value: int, what: str) -> int:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise QueryError(f"{what} is out of range")
    return value


def to_micros(when: datetime.datetime) -> int:
    """Microseconds since the epoch: how the store keeps timestamps, so they sort and compare as integers."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    delta = when - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$",
)


def parse_timestamp(text: str) -> datetime.datetime:
    """Parse RFC3339 / RFC3339Nano (Go's `time.RFC3339Nano`); nanoseconds are truncated to microseconds.

    Raises:
        QueryError: the text is not an RFC3339 timestamp.
    """
    match = _RFC3339.match(text.strip())
    if not match:
        raise QueryError(f"invalid timestamp {text!r}: expected RFC3339, e.g. 2024-01-02T03:04:05.123Z")
    date, clock, fraction, zone = match.groups()
    micros = (fraction or "").ljust(6, "0")[:6]
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        return datetime.datetime.fromisoformat(f"{date}T{clock}.{micros}{zone}")
    except ValueError as exc:
        raise QueryError(f"invalid timestamp {text!r}: {exc}") from None


_SECONDS = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS: Final = {
    "ns": 1e-3,
    "us": 1.0,
    "µs": 1.0,
    "μs": 1.0,
    "ms": 1e3,
    "s": 1e6,
    "m": 60e6,
    "h": 3600e6,
}


def parse_duration(text: str) -> int:
    """A duration filter value in microseconds: plain seconds (`90`, `1.5`) or a Go duration (`1m30s`).

    Raises:
        QueryError: neither form.
    """
    value = text.strip()
    try:
        if _SECONDS.match(value):
            return _int64(round(float(value) * 1e6), f"duration {text!r}")
        return _int64(_go_duration(text, value), f"duration {text!r}")
    except OverflowError:  # float('9' * 400) is inf
        raise QueryError(f"duration {text!r} is out of range") from None


def _go_duration(text: str, value: str) -> int:
    sign = 1
    if value[:1] in "+-" and value:
        sign, value = (-1 if value[0] == "-" else 1), value[1:]
    if value == "0":
        return 0
    position, total = 0, 0.0
    while position < len(value):
        match = _GO_DURATION_PART.match(value, position)
        if not match:
            raise QueryError(f"invalid duration {text!r}: expected seconds or a Go duration such as 1m30s")
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if not value:
        raise QueryError(f"invalid duration {text!r}: expected seconds or a Go duration such as 1m30s")
    return sign * round(total)


# ----------------------------------------------------------------------------------------------------
# Fields
# ----------------------------------------------------------------------------------------------------


def _text(value: str) -> str:
    return value


def _integer(value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise QueryError(f"invalid integer {value!r}") from None
    return _int64(number, f"integer {value!r}")


def _timestamp(value: str) -> int:
    return to_micros(parse_timestamp(value))


def _enum_name(
    enum: type[core.WorkflowExecutionPhase | core.NodeExecutionPhase | core.TaskExecutionPhase],
) -> Callable[[str], str]:
    """Phases are stored by enum *name* (as flyteadmin does); accept the name or its number."""

    def convert(value: str) -> str:
        text = value.strip().upper()
        try:
            return enum(int(text)).name or text
        except ValueError:
            pass
        if text in enum.__members__:
            return text
        raise QueryError(f"invalid phase {value!r}; expected one of {', '.join(enum.__members__)}")

    return convert


def _enum_number(
    enum: type[admin.ExecutionState | admin.LaunchPlanState | admin.ProjectProjectState], *prefixes: str
) -> Callable[[str], int]:
    """States are stored by number (`eq(state,0)` as flytekit and flytectl send); names are accepted too."""

    def convert(value: str) -> int:
        text = value.strip().upper()
        try:
            number = int(enum(int(text)))
        except ValueError:
            pass
        else:
            return _int64(number, f"state {value!r}")
        for prefix in ("", *prefixes):
            if text.removeprefix(prefix) in enum.__members__:
                return int(enum[text.removeprefix(prefix)])
        raise QueryError(f"invalid state {value!r}; expected one of {', '.join(enum.__members__)}")

    return convert


@dataclass(frozen=True)
class _Field:
    column: str
    convert: Callable[[str], object] = _text
    # LIKE only makes sense on text columns.
    textual: bool = True


def _fields(**columns: _Field | str) -> dict[str, _Field]:
    return {name: _Field(spec) if isinstance(spec, str) else spec for name, spec in columns.items()}


_TS = _timestamp
_DURATION = _Field("duration", parse_duration, textual=False)


def _ts(column: str) -> _Field:
    return _Field(column, _TS, textual=False)


def _int(column: str) -> _Field:
    return _Field(column, _integer, textual=False)


def _id_fields(prefix: str) -> dict[str, _Field]:
    """project/domain/name/version of an entity referenced by denormalized `<prefix>_*` columns."""
    return _fields(**{part: f"{prefix}_{part}" for part in ("project", "domain", "name", "version")})


_ENTITY_COMMON = _fields(
    id=_int("id"),
    project="project",
    domain="domain",
    name="name",
    version="version",
    created_at=_ts("created_at"),
    updated_at=_ts("updated_at"),
)

# The run an execution-like row belongs to; flyteadmin maps the short names onto the execution_* columns.
_OF_EXECUTION = _fields(
    id=_int("id"),
    execution_project="execution_project",
    execution_domain="execution_domain",
    execution_name="execution_name",
    project="execution_project",
    domain="execution_domain",
    name="execution_name",
)

_EXECUTION = _fields(
    **_OF_EXECUTION,
    phase=_Field("phase", _enum_name(core.WorkflowExecutionPhase)),
    state=_Field("state", _enum_number(admin.ExecutionState, "EXECUTION_"), textual=False),
    mode=_int("mode"),
    principal="principal",
    user="principal",
    error_kind="error_kind",
    error_code="error_code",
    created_at=_ts("created_at"),
    updated_at=_ts("updated_at"),
    execution_created_at=_ts("created_at"),
    execution_updated_at=_ts("updated_at"),
    started_at=_ts("started_at"),
    duration=_DURATION,
)

_NODE_EXECUTION = _fields(
    **_OF_EXECUTION,
    node_id="node_id",
    spec_node_id="spec_node_id",
    parent_id="parent_node_id",
    phase=_Field("phase", _enum_name(core.NodeExecutionPhase)),
    error_kind="error_kind",
    error_code="error_code",
    created_at=_ts("created_at"),
    updated_at=_ts("updated_at"),
    node_execution_created_at=_ts("created_at"),
    node_execution_updated_at=_ts("updated_at"),
    started_at=_ts("started_at"),
    duration=_DURATION,
)

_TASK_EXECUTION = _fields(
    **_OF_EXECUTION,
    node_id="node_id",
    retry_attempt=_int("retry_attempt"),
    phase=_Field("phase", _enum_name(core.TaskExecutionPhase)),
    created_at=_ts("created_at"),
    updated_at=_ts("updated_at"),
    task_execution_created_at=_ts("created_at"),
    task_execution_updated_at=_ts("updated_at"),
    started_at=_ts("started_at"),
    duration=_DURATION,
)

_SIGNAL = _fields(
    **_OF_EXECUTION,
    signal_id="signal_id",
    created_at=_ts("created_at"),
    updated_at=_ts("updated_at"),
)

_PROJECT = _fields(
    id="id",
    identifier="id",
    name="name",
    description="description",
    state=_Field("state", _enum_number(admin.ProjectProjectState), textual=False),
    created_at=_ts("created_at"),
    updated_at=_ts("updated_at"),
)


@dataclass(frozen=True)
class _Entity:
    table: str
    # Fields by entity prefix; the entity's own name is also accepted as a prefix.
    fields: Mapping[str, Mapping[str, _Field]]
    # Sort keys: the entity's own columns.
    sort_keys: Mapping[str, str]
    default_order: str


def _entity(
    name: str,
    table: str,
    own: dict[str, _Field],
    default_order: str,
    joins: Mapping[str, Mapping[str, _Field]] | None = None,
) -> _Entity:
    sort_keys = {key: f.column for key, f in own.items()}
    return _Entity(table, {name: own, **(joins or {})}, sort_keys, default_order)


ENTITIES: Final[Mapping[str, _Entity]] = {
    "task": _entity("task", "tasks", {**_ENTITY_COMMON, "type": _Field("type")}, "created_at DESC, id DESC"),
    "workflow": _entity("workflow", "workflows", dict(_ENTITY_COMMON), "created_at DESC, id DESC"),
    "launch_plan": _entity(
        "launch_plan",
        "launch_plans",
        {**_ENTITY_COMMON, "state": _Field("state", _enum_number(admin.LaunchPlanState), textual=False)},
        "created_at DESC, id DESC",
        joins={"workflow": _id_fields("workflow")},
    ),
    "execution": _entity(
        "execution",
        "executions",
        _EXECUTION,
        "created_at DESC, id DESC",
        joins={
            "launch_plan": _id_fields("launch_plan"),
            "workflow": _id_fields("workflow"),
            "task": _id_fields("task"),
        },
    ),
    "node_execution": _entity(
        "node_execution",
        "node_executions",
        _NODE_EXECUTION,
        "created_at ASC, id ASC",
        joins={
            "execution": _fields(
                project="execution_project", domain="execution_domain", name="execution_name"
            )
        },
    ),
    "task_execution": _entity(
        "task_execution",
        "task_executions",
        _TASK_EXECUTION,
        "created_at ASC, id ASC",
        joins={
            "task": _id_fields("task"),
            "node_execution": _fields(node_id="node_id"),
            "execution": _fields(
                project="execution_project", domain="execution_domain", name="execution_name"
            ),
        },
    ),
    "project": _entity("project", "projects", _PROJECT, "created_at ASC, id ASC"),
    "signal": _entity("signal", "signals", _SIGNAL, "created_at ASC, id ASC"),
}

# Named-entity id listings (ListTaskIds, …) group versions by name.
_ID_SORT_KEYS: Final = {"name": "name", "created_at": "MAX(created_at)", "updated_at": "MAX(updated_at)"}

_OPERATORS: Final = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_FUNCTIONS: Final = (*_OPERATORS, "contains", "not_like", "value_in", "value_not_in")
# `+` separates expressions, but a timestamp value may hold `+07:00`: split only where a function starts.
_SPLIT = re.compile(r"\+(?=\s*[A-Za-z_]+\s*\()")
_EXPRESSION = re.compile(r"^\s*([A-Za-z_]+)\s*\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*,\s?(.+)\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Query:
    """A compiled list request: a WHERE clause with its parameters, an ORDER BY, and the page window.

    Attributes:
        where: SQL conditions joined by AND (no `WHERE` keyword), or "".
        params: the values for the `?` placeholders of `where`, in order.
        order_by: an ORDER BY expression built only from known column names.
        limit: the page size (> 0).
        offset: the row offset decoded from the token.
        filtered_fields: the (un-prefixed) fields the request filtered on, e.g. to skip a default filter.
    """

    where: str = ""
    params: tuple[object, ...] = ()
    order_by: str = "id ASC"
    limit: int = 100
    offset: int = 0
    filtered_fields: frozenset[str] = field(default_factory=frozenset)

    def and_where(self, condition: str, *params: object) -> Query:
        """A copy with one more condition ANDed in front (callers pass literal SQL with `?` placeholders)."""
        where = f"{condition} AND ({self.where})" if self.where else condition
        return Query(
            where, (*params, *self.params), self.order_by, self.limit, self.offset, self.filtered_fields
        )


def _escape_like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _compile_filter(entity_name: str, entity: _Entity, expression: str) -> tuple[str, list[object], str]:
    match = _EXPRESSION.match(expression)
    if not match:
        raise QueryError(f"invalid filter expression {expression.strip()!r}: expected func(field,value)")
    function, path, raw_value = match.group(1).lower(), match.group(2), match.group(3)
    if function not in _FUNCTIONS:
        raise QueryError(
            f"unrecognized filter function {function!r}; expected one of {', '.join(_FUNCTIONS)}"
        )
    prefix, _, name = path.rpartition(".")
    prefix = prefix or entity_name
    fields = entity.fields.get(prefix)
    if fields is None:
        allowed = ", ".join(sorted(entity.fields))
        raise QueryError(f"cannot filter {entity_name} by entity {prefix!r}; allowed: {allowed}")
    spec = fields.get(name)
    if spec is None:
        raise QueryError(f"unknown {prefix} filter field {name!r}; allowed: {', '.join(sorted(fields))}")
    column = spec.column
    if function in ("value_in", "value_not_in"):
        values = [spec.convert(part) for part in raw_value.split(";")]
        placeholders = ", ".join("?" * len(values))
        keyword = "IN" if function == "value_in" else "NOT IN"
        return f"{column} {keyword} ({placeholders})", values, name
    if function in ("contains", "not_like"):
        if not spec.textual:
            raise QueryError(f"filter function {function!r} needs a text field, and {name!r} is not one")
        keyword = "LIKE" if function == "contains" else "NOT LIKE"
        return f"{column} {keyword} ? ESCAPE '\\'", [_escape_like(raw_value)], name
    return f"{column} {_OPERATORS[function]} ?", [spec.convert(raw_value)], name


def _parse_token(token: str) -> int:
    if token == "":
        return 0
    # isascii: str.isdigit() is also true for '²' and other digits int() does not read.
    if not (token.isascii() and token.isdigit()):
        raise QueryError(f"invalid pagination token {token!r}: expected a non-negative integer")
    return _int64(int(token), f"pagination token {token!r}")


def build_query(
    entity_name: str,
    *,
    filters: str = "",
    sort_by: admin.Sort | None = None,
    limit: int,
    token: str = "",
    conditions: Iterable[tuple[str, Sequence[object]]] = (),
    ids: bool = False,
    allow_unlimited: bool = False,
) -> Query:
    """Compile a list request for one entity.

    Args:
        entity_name: `task`, `workflow`, `launch_plan`, `execution`, `node_execution`, `task_execution`,
            `project` or `signal`.
        filters: the request's filter string.
        sort_by: the request's sort; an empty key means the entity's default order.
        limit: the page size; must be > 0.
        token: the decimal row offset from a previous page ("" = 0).
        conditions: fixed conditions from the request's identifiers, as (SQL with `?`, params) pairs.
        ids: the query lists distinct names (List*Ids): sort keys are name, created_at, updated_at.
        allow_unlimited: a limit of 0 means "everything" (ListProjects) instead of an error.

    Raises:
        QueryError: an unknown function, field, entity prefix or sort key, a bad value, token or limit.
    """
    entity = ENTITIES[entity_name]
    if limit <= 0 and not allow_unlimited:
        raise QueryError(f"invalid value for limit: {limit}; expected a number greater than 0")
    offset = _parse_token(token)

    clauses: list[str] = []
    params: list[object] = []
    for sql, values in conditions:
        clauses.append(sql)
        params.extend(values)
    filtered: set[str] = set()
    for expression in _SPLIT.split(filters) if filters.strip() else ():
        sql, values, name = _compile_filter(entity_name, entity, expression)
        clauses.append(sql)
        params.extend(values)
        filtered.add(name)
        if len(params) > MAX_FILTER_VALUES:
            raise QueryError(f"too many filter values (at most {MAX_FILTER_VALUES}); split the request")

    order_by = "name ASC" if ids else entity.default_order
    if sort_by is not None and sort_by.key:
        keys = _ID_SORT_KEYS if ids else entity.sort_keys
        column = keys.get(sort_by.key)
        if column is None:
            raise QueryError(f"invalid sort key {sort_by.key!r}; allowed: {', '.join(sorted(keys))}")
        direction = "ASC" if sort_by.direction == admin.SortDirection.ASCENDING else "DESC"
        # A unique tie-breaker keeps pages stable when many rows share a timestamp.
        tie_breaker = "name" if ids else "id"
        order_by = f"{column} {direction}"
        if column != tie_breaker:
            order_by += f", {tie_breaker} {direction}"
    return Query(
        where=" AND ".join(f"({clause})" for clause in clauses),
        params=tuple(params),
        order_by=order_by,
        limit=limit if limit > 0 else -1,
        offset=offset,
        filtered_fields=frozenset(filtered),
    )


def next_token(query: Query, page_length: int) -> str:
    """The token for the next page: only when this page is full (flytekit stops on "")."""
    if query.limit > 0 and page_length == query.limit:
        return str(query.offset + page_length)
    return ""
