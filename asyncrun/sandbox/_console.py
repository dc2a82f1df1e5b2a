"""The sandbox console's HTML: pure functions from admin messages to escaped pages.

Every value that came from a user or a task (names, error messages, string literals, URIs) goes
through `html.escape`; links are built from percent-encoded parts. The pages use no scripts, so
`_http.py` can serve them under a Content-Security-Policy that forbids scripts altogether. A page of
an execution that is not finished reloads itself every 2 s with `<meta http-equiv="refresh">`.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from asyncrun._proto.flyteidl import core

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    BlobLink = Callable[[str], str | None]

    from asyncrun._proto.flyteidl import admin as admin_pb

__all__ = [
    "CONSOLE_PATH",
    "REFRESH_SECONDS",
    "blob_uris",
    "execution_path",
    "file_path",
    "node_labels",
    "is_terminal",
    "list_path",
    "render_error_page",
    "render_execution",
    "render_execution_list",
    "render_literal",
    "render_literal_map",
]

CONSOLE_PATH = "/console"
"""Where the console lives; pyflyte prints `<console endpoint>/projects/<p>/domains/<d>/executions/<n>`."""

REFRESH_SECONDS = 2

_TERMINAL = frozenset(
    {
        core.WorkflowExecutionPhase.SUCCEEDED,
        core.WorkflowExecutionPhase.FAILED,
        core.WorkflowExecutionPhase.ABORTED,
        core.WorkflowExecutionPhase.TIMED_OUT,
    }
)
_HIDDEN_NODES = frozenset({"start-node", "end-node"})  # bookkeeping nodes; flyteconsole hides them too
_MAX_DEPTH = 16
_MAX_ITEMS = 200
_INLINE_ITEMS = 12

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;font-weight:600}
header a{color:#fff;text-decoration:none}
main{padding:1em 1.2em;max-width:1200px}
h1{font-size:1.35em;margin:.2em 0 .6em;word-break:break-all}h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;background:#fff;margin:.3em 0}
th,td{border:1px solid #dde1e7;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#eef0f4;font-weight:600}
table.kv th{width:11em}
.phase{display:inline-block;padding:.05em .55em;border-radius:1em;font-size:.85em;font-weight:600;
background:#e3e6ea}
.phase.ok{background:#d6f5dd;color:#126b2a}.phase.bad{background:#fbdcdc;color:#9b1c1c}
.phase.run{background:#dbe8fd;color:#1849a9}.phase.wait{background:#fff1c2;color:#7a5a00}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font:12px/1.4 ui-monospace,monospace}
.error{background:#fff5f5;border:1px solid #f3b4b4;padding:.6em;margin:.6em 0}
.str{color:#0b5a3a;white-space:pre-wrap}.uri{font-family:ui-monospace,monospace;word-break:break-all}
.muted{color:#6b7280}ul.lit,ol.lit{margin:0;padding-left:1.4em}
form label{margin-right:.8em}form input{width:10em}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def is_terminal(phase: core.WorkflowExecutionPhase) -> bool:
    """Whether flytekit stops waiting at this workflow phase (SUCCEEDED, FAILED, ABORTED, TIMED_OUT)."""
    return phase in _TERMINAL


def execution_path(project: str, domain: str, name: str) -> str:
    """The console path of one execution."""
    parts = (quote(part, safe="") for part in (project, domain, name))
    return "{}/projects/{}/domains/{}/executions/{}".format(CONSOLE_PATH, *parts)


def file_path(project: str, domain: str, name: str, uri: str) -> str:
    """The console path that downloads a file an execution's inputs or outputs point at."""
    return f"{execution_path(project, domain, name)}/file?{urlencode({'uri': uri})}"


def node_labels(workflow: admin_pb.Workflow | None) -> dict[str, str]:
    """What each node of a workflow runs (task, sub-workflow or launch plan name), by node execution id.

    Nodes of sub-workflows are included under the ids the sandbox gives them (`<parent>-0-<node>`).
    """
    compiled = workflow.closure.compiled_workflow if workflow and workflow.closure else None
    if compiled is None or compiled.primary is None or compiled.primary.template is None:
        return {}
    subs = {
        _id_key(sub.template.id): sub.template
        for sub in compiled.sub_workflows
        if sub.template is not None and sub.template.id is not None
    }
    labels: dict[str, str] = {}

    def visit(template: core.WorkflowTemplate, prefix: str, depth: int) -> None:
        for node in template.nodes:
            unique = f"{prefix}{node.id}"
            workflow_node = node.workflow_node or core.WorkflowNode()
            reference = (
                node.task_node.reference_id
                if node.task_node is not None
                else workflow_node.sub_workflow_ref or workflow_node.launchplan_ref
            )
            if reference is not None and reference.name:
                labels[unique] = reference.name
            sub = (
                subs.get(_id_key(workflow_node.sub_workflow_ref)) if workflow_node.sub_workflow_ref else None
            )
            if sub is not None and depth < _MAX_DEPTH:
                visit(sub, f"{unique}-0-", depth + 1)

    visit(compiled.primary.template, "", 0)
    return labels


def _id_key(ident: core.Identifier | None) -> tuple[str, ...]:
    return (ident.project, ident.domain, ident.name, ident.version) if ident is not None else ()


def blob_uris(*maps: core.LiteralMap | None) -> set[str]:
    """The URIs of every single-file blob in these literal maps (nested ones included)."""
    found: set[str] = set()

    def visit(literal: core.Literal | None, depth: int) -> None:
        if literal is None or depth > _MAX_DEPTH:
            return
        if literal.collection is not None:
            for item in literal.collection.literals:
                visit(item, depth + 1)
        elif literal.map is not None:
            for item in literal.map.literals.values():
                visit(item, depth + 1)
        elif literal.scalar is not None:
            if literal.scalar.union is not None:
                visit(literal.scalar.union.value, depth + 1)
            elif literal.scalar.blob is not None and not _is_folder(literal.scalar.blob):
                found.add(literal.scalar.blob.uri)

    for literal_map in maps:
        for literal in literal_map.literals.values() if literal_map is not None else ():
            visit(literal, 0)
    return found


def _is_folder(blob: core.Blob) -> bool:
    blob_type = blob.metadata.type if blob.metadata is not None else None
    return blob_type is not None and blob_type.dimensionality == core.BlobTypeBlobDimensionality.MULTIPART


def list_path(project: str, domain: str, *, limit: int | None = None, token: str = "") -> str:
    """The console path of the execution list of a project and domain."""
    params: dict[str, str] = {"project": project, "domain": domain}
    if limit is not None:
        params["limit"] = str(limit)
    if token:
        params["token"] = token
    return f"{CONSOLE_PATH}?{urlencode(params)}"


def _enum_name(value: object) -> str:
    name = getattr(value, "name", None)
    if not isinstance(name, str) or not name or name.startswith("~"):
        return f"UNKNOWN({int(value) if isinstance(value, int) else value})"
    return name


def _phase_badge(phase: object) -> str:
    name = _enum_name(phase)
    if name == "SUCCEEDED":
        css = "ok"
    elif name in ("FAILED", "FAILING", "TIMED_OUT"):
        css = "bad"
    elif name in ("RUNNING", "SUCCEEDING", "DYNAMIC_RUNNING", "ABORTING"):
        css = "run"
    elif name in ("QUEUED", "UNDEFINED"):
        css = "wait"
    else:
        css = ""
    return f'<span class="phase {css}">{_e(name)}</span>'


def _time(value: dt.datetime | None) -> str:
    if value is None:
        return '<span class="muted">—</span>'
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return _e(value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))


def _duration(value: dt.timedelta | None) -> str:
    if value is None:
        return '<span class="muted">—</span>'
    seconds = value.total_seconds()
    if seconds < 60:
        return _e(f"{seconds:.2f}s")
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return _e(f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s")


def _elapsed(
    started_at: dt.datetime | None, duration: dt.timedelta | None, running: bool, now: dt.datetime | None
) -> str:
    if duration or not running or started_at is None or now is None:
        return _duration(duration)
    if started_at.tzinfo is None:
        started_at = started_at.replace(tzinfo=dt.UTC)
    return _duration(max(now - started_at, dt.timedelta(0))) + ' <span class="muted">so far</span>'


def _timing(
    closure: admin_pb.ExecutionClosure | admin_pb.NodeExecutionClosure | None,
    running: bool,
    now: dt.datetime | None,
) -> str:
    if closure is None:
        return _duration(None)
    return _elapsed(closure.started_at, closure.duration, running, now)


def _identifier(ident: core.Identifier | None) -> str:
    if ident is None:
        return '<span class="muted">—</span>'
    kind = _enum_name(ident.resource_type).lower().replace("_", " ")
    return f'{_e(ident.name)}<span class="muted">:{_e(ident.version)} ({_e(kind)})</span>'


def _page(title: str, body: str, *, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{_e(title)} · asyncrun</title><style>{_CSS}</style></head>"
        f'<body><header><a href="{CONSOLE_PATH}">asyncrun sandbox</a></header>'
        f"<main>{body}</main></body></html>\n"
    )


# ---- literals ----------------------------------------------------------------------------------


def render_literal(
    literal: core.Literal | None, *, blob_link: BlobLink | None = None, _depth: int = 0
) -> str:
    """One literal as HTML: primitives as Python-like text, lists, maps, blob URIs, etc.

    Args:
        literal: the value.
        blob_link: gives the download link of a file's URI (None: shown as text only).
    """
    if literal is None:
        return '<span class="muted">unset</span>'
    if _depth > _MAX_DEPTH:
        return '<span class="muted">… (nested too deep)</span>'
    if literal.scalar is not None:
        return _scalar(literal.scalar, _depth, blob_link)
    if literal.collection is not None:
        return _collection(literal.collection.literals, _depth, blob_link)
    if literal.map is not None:
        return _map(literal.map.literals, _depth, blob_link)
    if literal.offloaded_metadata is not None:
        offloaded = literal.offloaded_metadata
        return f'offloaded: <span class="uri">{_e(offloaded.uri)}</span> ({_e(offloaded.size_bytes)} bytes)'
    return '<span class="muted">empty literal</span>'


def render_literal_map(literal_map: core.LiteralMap | None, *, blob_link: BlobLink | None = None) -> str:
    """A table of `name | value`, or a note when the map is empty or missing."""
    if literal_map is None or not literal_map.literals:
        return '<p class="muted">none</p>'
    rows = "".join(
        f"<tr><th>{_e(name)}</th><td>{render_literal(literal, blob_link=blob_link)}</td></tr>"
        for name, literal in sorted(literal_map.literals.items())
    )
    return f'<table class="kv literals">{rows}</table>'


def _is_simple(literal: core.Literal) -> bool:
    scalar = literal.scalar
    return scalar is not None and (scalar.primitive is not None or scalar.none_type is not None)


def _collection(items: Sequence[core.Literal], depth: int, link: BlobLink | None) -> str:
    shown = items[:_MAX_ITEMS]
    more = f'<span class="muted">… {len(items) - len(shown)} more</span>' if len(items) > len(shown) else ""
    if len(items) <= _INLINE_ITEMS and all(_is_simple(item) for item in items):
        return "[" + ", ".join(render_literal(item, _depth=depth + 1) for item in items) + "]"
    rows = "".join(f"<li>{render_literal(item, blob_link=link, _depth=depth + 1)}</li>" for item in shown)
    return f'<ol class="lit" start="0">{rows}</ol>{more}'


def _map(items: dict[str, core.Literal], depth: int, link: BlobLink | None) -> str:
    ordered = sorted(items.items())
    if not ordered:
        return "{}"
    if len(ordered) <= _INLINE_ITEMS and all(_is_simple(item) for _, item in ordered):
        inner = ", ".join(f"{_e(json.dumps(k))}: {render_literal(v, _depth=depth + 1)}" for k, v in ordered)
        return "{" + inner + "}"
    shown = ordered[:_MAX_ITEMS]
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{render_literal(v, blob_link=link, _depth=depth + 1)}</td></tr>"
        for k, v in shown
    )
    more = (
        f'<span class="muted">… {len(ordered) - len(shown)} more</span>' if len(ordered) > len(shown) else ""
    )
    return f'<table class="kv">{rows}</table>{more}'


def _scalar(scalar: core.Scalar, depth: int, link: BlobLink | None) -> str:
    if scalar.primitive is not None:
        return _primitive(scalar.primitive)
    if scalar.none_type is not None:
        return "None"
    if scalar.blob is not None:
        return _blob(scalar.blob, link)
    if scalar.binary is not None:
        tag = f", tag {_e(scalar.binary.tag)}" if scalar.binary.tag else ""
        return f'<span class="muted">binary: {len(scalar.binary.value)} bytes{tag}</span>'
    if scalar.schema is not None:
        return f'<span class="uri">{_e(scalar.schema.uri)}</span> <span class="muted">(schema)</span>'
    if scalar.structured_dataset is not None:
        uri = scalar.structured_dataset.uri
        return f'<span class="uri">{_e(uri)}</span> <span class="muted">(structured dataset)</span>'
    if scalar.error is not None:
        node, message = scalar.error.failed_node_id, scalar.error.message
        return f'<span class="muted">error from node</span> {_e(node)}: <pre>{_e(message)}</pre>'
    if scalar.generic is not None:
        data = _whole_numbers(scalar.generic.to_dict())
        return f"<code>{_e(json.dumps(data, sort_keys=True, ensure_ascii=False))}</code>"
    if scalar.union is not None:
        return render_literal(scalar.union.value, blob_link=link, _depth=depth + 1)
    return '<span class="muted">empty scalar</span>'


def _whole_numbers(value: Any) -> Any:
    """A Struct holds every number as a double: show `2.0` as `2`, as flyteconsole (JavaScript) does."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    return value


def _primitive(primitive: core.Primitive) -> str:
    if primitive.string_value is not None:
        return f'<span class="str">{_e(json.dumps(primitive.string_value, ensure_ascii=False))}</span>'
    if primitive.boolean is not None:
        return "True" if primitive.boolean else "False"
    if primitive.integer is not None:
        return _e(primitive.integer)
    if primitive.float_value is not None:
        value = primitive.float_value
        return _e(repr(value) if math.isfinite(value) else str(value))
    if primitive.datetime is not None:
        return _e(primitive.datetime.isoformat())
    if primitive.duration is not None:
        return _e(primitive.duration)
    return '<span class="muted">empty primitive</span>'


def _blob(blob: core.Blob, link: BlobLink | None = None) -> str:
    details = []
    blob_type = blob.metadata.type if blob.metadata is not None else None
    if blob_type is not None:
        if blob_type.format:
            details.append(blob_type.format)
        multipart = blob_type.dimensionality == core.BlobTypeBlobDimensionality.MULTIPART
        details.append("directory" if multipart else "file")
    suffix = f' <span class="muted">({_e(", ".join(details))})</span>' if details else ""
    href = link(blob.uri) if link is not None and not _is_folder(blob) else None
    if href:
        name = blob.uri.rstrip("/").rsplit("/", 1)[-1] or blob.uri
        uri = f'<span class="uri muted">{_e(blob.uri)}</span>'
        return f'<a href="{_e(href)}" download>{_e(name)}</a>{suffix} {uri}'
    return f'<span class="uri">{_e(blob.uri)}</span>{suffix}'


# ---- pages -------------------------------------------------------------------------------------


def _error_box(error: core.ExecutionError) -> str:
    kind = _enum_name(error.kind)
    return (
        f'<div class="error"><strong>{_e(error.code or "error")}</strong> '
        f'<span class="muted">({_e(kind)})</span><pre>{_e(error.message)}</pre></div>'
    )


def render_execution_list(
    executions: Iterable[admin_pb.Execution],
    *,
    project: str,
    domain: str,
    limit: int,
    next_token: str = "",
    now: dt.datetime | None = None,
) -> str:
    """The list page: a project/domain form and a table of executions in the given order.

    Args:
        executions: newest first, as the admin service returned them.
        project: the project shown.
        domain: the domain shown.
        limit: the page size, kept in the form and the next-page link.
        next_token: the admin service's token for the next page; `""` for none.
        now: the current time, to show how long running executions have run; None to omit it.
    """
    rows = []
    refresh = False
    for execution in executions:
        ident = execution.id or core.WorkflowExecutionIdentifier()
        closure = execution.closure
        phase = closure.phase if closure is not None else core.WorkflowExecutionPhase.UNDEFINED
        running = not is_terminal(phase)
        refresh = refresh or running
        launch_plan = execution.spec.launch_plan if execution.spec is not None else None
        link = execution_path(ident.project or project, ident.domain or domain, ident.name)
        rows.append(
            f'<tr><td><a href="{_e(link)}">{_e(ident.name)}</a></td>'
            f"<td>{_identifier(launch_plan)}</td><td>{_phase_badge(phase)}</td>"
            f"<td>{_time(closure.created_at if closure else None)}</td>"
            f"<td>{_timing(closure, running, now)}</td>"
            "</tr>"
        )
    form = (
        f'<form method="get" action="{CONSOLE_PATH}">'
        f'<label>Project <input name="project" value="{_e(project)}"></label>'
        f'<label>Domain <input name="domain" value="{_e(domain)}"></label>'
        f'<label>Limit <input name="limit" type="number" min="1" value="{_e(limit)}"></label>'
        "<button>Show</button></form>"
    )
    if rows:
        table = (
            "<table><thead><tr><th>Execution</th><th>Launch plan / task</th><th>Phase</th>"
            f"<th>Created</th><th>Duration</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    else:
        table = '<p class="muted">No executions yet.</p>'
    more = ""
    if next_token:
        older = list_path(project, domain, limit=limit, token=next_token)
        more = f'<p><a href="{_e(older)}">Older executions →</a></p>'
    heading = f"<h1>Executions in {_e(project)} / {_e(domain)}</h1>"
    return _page(f"{project}/{domain}", heading + form + table + more, refresh=refresh)


def render_execution(
    execution: admin_pb.Execution,
    nodes: Sequence[admin_pb.NodeExecution],
    *,
    inputs: core.LiteralMap | None,
    outputs: core.LiteralMap | None,
    notes: Sequence[str] = (),
    now: dt.datetime | None = None,
    labels: Mapping[str, str] | None = None,
    blob_link: BlobLink | None = None,
) -> str:
    """The page of one execution: phase, timing, error, nodes, inputs and outputs.

    Args:
        execution: from `GetExecution`.
        nodes: from `ListNodeExecutions`; `start-node` and `end-node` are left out.
        inputs: `full_inputs` from `GetExecutionData`, None when unknown.
        outputs: `full_outputs` from `GetExecutionData`, None when unknown.
        notes: short messages about data that could not be fetched, shown at the end.
        now: the current time, to show how long a running execution has run; None to omit it.
        labels: what each node runs (task name), by node id (see `node_labels`).
        blob_link: gives the download link of a file's URI (see `file_path`).
    """
    ident = execution.id or core.WorkflowExecutionIdentifier()
    closure = execution.closure
    phase = closure.phase if closure is not None else core.WorkflowExecutionPhase.UNDEFINED
    running = not is_terminal(phase)
    spec = execution.spec
    launch_plan = spec.launch_plan if spec is not None else None
    principal = spec.metadata.principal if spec is not None and spec.metadata is not None else ""
    facts = [
        ("Phase", _phase_badge(phase)),
        (
            "Project / domain",
            f'<a href="{_e(list_path(ident.project, ident.domain))}">'
            f"{_e(ident.project)} / {_e(ident.domain)}</a>",
        ),
        ("Launched from", _identifier(launch_plan)),
        ("Workflow", _identifier(closure.workflow_id if closure else None)),
        ("Created", _time(closure.created_at if closure else None)),
        ("Started", _time(closure.started_at if closure else None)),
        ("Duration", _timing(closure, running, now)),
        ("Updated", _time(closure.updated_at if closure else None)),
    ]
    if principal:
        facts.append(("Principal", _e(principal)))
    body = [f"<h1>Execution {_e(ident.name)}</h1>", '<table class="kv">']
    body += [f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in facts]
    body.append("</table>")
    if closure is not None and closure.error is not None:
        body.append(_error_box(closure.error))
    if closure is not None and closure.abort_metadata is not None:
        abort = closure.abort_metadata
        by = f" by {_e(abort.principal)}" if abort.principal else ""
        body.append(f'<div class="error"><strong>Aborted</strong>{by}<pre>{_e(abort.cause)}</pre></div>')
    body.append("<h2>Nodes</h2>")
    body.append(_node_table(nodes, now, labels or {}))
    body.append("<h2>Inputs</h2>")
    body.append(render_literal_map(inputs, blob_link=blob_link))
    body.append("<h2>Outputs</h2>")
    body.append(render_literal_map(outputs, blob_link=blob_link))
    if notes:
        body.append('<ul class="muted">' + "".join(f"<li>{_e(note)}</li>" for note in notes) + "</ul>")
    if running:
        body.append(f'<p class="muted">This page reloads every {REFRESH_SECONDS} s until the run ends.</p>')
    return _page(f"{ident.name} ({_enum_name(phase)})", "".join(body), refresh=running)


def _node_table(
    nodes: Sequence[admin_pb.NodeExecution], now: dt.datetime | None, labels: Mapping[str, str]
) -> str:
    rows = []
    for node in nodes:
        node_id = node.id.node_id if node.id is not None else ""
        if node_id in _HIDDEN_NODES:
            continue
        closure = node.closure
        phase: Any = closure.phase if closure is not None else core.NodeExecutionPhase.UNDEFINED
        running = _enum_name(phase) in ("UNDEFINED", "QUEUED", "RUNNING", "DYNAMIC_RUNNING", "FAILING")
        error = _error_box(closure.error) if closure is not None and closure.error is not None else ""
        label = labels.get(node_id, "")
        runs = f' <span class="muted">{_e(label)}</span>' if label else ""
        rows.append(
            f"<tr><td>{_e(node_id)}{runs}</td><td>{_phase_badge(phase)}</td>"
            f"<td>{_time(closure.started_at if closure else None)}</td>"
            f"<td>{_timing(closure, running, now)}</td>"
            f"<td>{error}</td></tr>"
        )
    if not rows:
        return '<p class="muted">No node executions reported.</p>'
    return (
        "<table><thead><tr><th>Node</th><th>Phase</th><th>Started</th><th>Duration</th><th>Error</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def render_error_page(status: int, title: str, message: str) -> str:
    """A small page for errors (unknown execution, admin service unavailable, bad parameters)."""
    body = f"<h1>{_e(status)} · {_e(title)}</h1><pre>{_e(message)}</pre>"
    body += f'<p><a href="{CONSOLE_PATH}">Back to the executions</a></p>'
    return _page(title, body)
