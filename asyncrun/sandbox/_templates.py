"""Render a container's command and args the way flytepropeller does before it starts a task.

Propeller matches each variable case-insensitively, in the `{{.X}}` or `{{$X}}` form, with optional spaces
inside the braces (`{{ .input }}`). One combined pattern is applied in a single pass, so a value that
itself looks like a template (a user string input, say) is never expanded a second time.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from asyncrun._betterproto import betterproto2

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from asyncrun._proto.flyteidl import core

__all__ = ["TemplateError", "TemplateValues", "format_go_duration", "render_args", "render_primitive"]


class TemplateError(ValueError):
    """A `{{.Inputs.x}}` names an input that does not exist or is not a primitive."""


@dataclass(frozen=True)
class TemplateValues:
    """What the `{{…}}` variables expand to for one task attempt.

    Attributes:
        input_prefix: the folder holding `inputs.pb`; `{{.input}}` is `<input_prefix>/inputs.pb`.
        output_prefix: the folder the task writes `outputs.pb` / `error.pb` into.
        raw_output_data_prefix: where the task writes files and directories it returns.
        checkpoint_output_prefix: where the task may write a checkpoint.
        prev_checkpoint_prefix: the previous attempt's checkpoint folder, or "".
        per_retry_unique_key: a key unique to this attempt.
        task_template_path: a file holding the serialized core.TaskTemplate, or "".
        namespace: the (Kubernetes-style) namespace, `<project>-<domain>`.
        inputs: the attempt's inputs, for `{{.Inputs.<name>}}`.
    """

    input_prefix: str
    output_prefix: str
    raw_output_data_prefix: str
    checkpoint_output_prefix: str
    prev_checkpoint_prefix: str = ""
    per_retry_unique_key: str = ""
    task_template_path: str = ""
    namespace: str = ""
    inputs: Mapping[str, core.Literal] | None = None


_VARIABLE = re.compile(
    r"{{\s*[.$](?:"
    r"(?P<inputs>Inputs\.(?P<input_name>[^}\s]+))"
    r"|(?P<name>Input|InputPrefix|OutputPrefix|RawOutputDataPrefix|CheckpointOutputPrefix|"
    r"PrevCheckpointPrefix|PerRetryUniqueKey|TaskTemplatePath|Namespace)"
    r")\s*}}",
    re.IGNORECASE,
)


def format_go_duration(delta: datetime.timedelta) -> str:
    """Render a timedelta the way Go's `time.Duration.String()` does (used for `{{.Inputs.x}}`)."""
    micros = delta // datetime.timedelta(microseconds=1)
    if micros == 0:
        return "0s"
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    if micros < 1_000_000:
        return f"{sign}{micros / 1000:g}ms" if micros >= 1000 else f"{sign}{micros}µs"
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds = f"{rest / 1e6:.6f}".rstrip("0").rstrip(".")
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{seconds}s"
    return sign + text


def render_primitive(literal: core.Literal) -> str:
    """A primitive input as text, as propeller renders `{{.Inputs.x}}` (Go formatting for times)."""
    scalar = literal.scalar
    if scalar is not None and scalar.primitive is not None:
        kind, value = betterproto2.which_one_of(scalar.primitive, "value")
        if kind == "boolean":
            return "true" if value else "false"
        if kind == "datetime":
            assert isinstance(value, datetime.datetime)
            return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
        if kind == "duration":
            assert isinstance(value, datetime.timedelta)
            return format_go_duration(value)
        if kind == "float_value":
            assert isinstance(value, float)
            return repr(value) if not value.is_integer() else str(int(value))
        if kind:
            return str(value)
    if scalar is not None and scalar.blob is not None:
        return scalar.blob.uri
    raise TemplateError("only primitive inputs can be rendered into container args")


def render_args(args: Sequence[str], values: TemplateValues) -> list[str]:
    """Expand every template variable in `args`.

    Raises:
        TemplateError: `{{.Inputs.x}}` names a missing or non-primitive input.
    """
    plain = {
        "input": f"{values.input_prefix.rstrip('/')}/inputs.pb",
        "inputprefix": values.input_prefix,
        "outputprefix": values.output_prefix,
        "rawoutputdataprefix": values.raw_output_data_prefix,
        "checkpointoutputprefix": values.checkpoint_output_prefix,
        "prevcheckpointprefix": values.prev_checkpoint_prefix,
        "perretryuniquekey": values.per_retry_unique_key,
        "tasktemplatepath": values.task_template_path,
        "namespace": values.namespace,
    }

    def replace(match: re.Match[str]) -> str:
        if match.group("inputs"):
            name = match.group("input_name")
            literal = (values.inputs or {}).get(name)
            if literal is None:
                raise TemplateError(f"requested input is not found [{name}]")
            try:
                return render_primitive(literal)
            except TemplateError:
                raise TemplateError(f"input [{name}] is not a primitive and cannot be rendered") from None
        return plain[match.group("name").lower()]

    return [_VARIABLE.sub(replace, arg) for arg in args]
