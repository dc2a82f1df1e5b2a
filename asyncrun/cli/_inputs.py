"""Entity inputs on the command line: one option per input, `--inputs-file F` and `-` (stdin).

Explicit flags win over stdin, which wins over the inputs file. Required inputs are checked after
all three are merged, so a file can supply them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncclick as click
from asyncclick.core import ParameterSource

from .._exceptions import InputError
from ..sdk._interface import MISSING, Input
from ..sdk._type_engine import from_jsonable, to_jsonable, type_name
from ._params import describe_yaml_error, is_flag_type, param_type

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..sdk._interface import Interface

INPUTS_FILE = "inputs_file"
STDIN = "stdin_marker"
BATCH = "--batch"


def _shown_default(spec: Input) -> str | None:
    if spec.default is MISSING:
        return None
    if spec.default is None:
        return "none"
    try:
        shown = to_jsonable(spec.default, spec.type)
    except Exception:
        return repr(spec.default)
    if isinstance(shown, bool):
        return ("--" if shown else "--no-") + spec.name
    return shown if isinstance(shown, str) else json.dumps(shown)


_SELF_EXPLAINING = (int, float, str, bool)


def input_option(spec: Input) -> click.Option:
    """The option for one input: `--name VALUE`, or `--name/--no-name` for a bool."""
    names = [spec.name] + ([spec.name.replace("_", "-")] if "_" in spec.name else [])
    notes = [] if spec.type in _SELF_EXPLAINING else [type_name(spec.type)]
    default = _shown_default(spec)
    if default is not None:
        notes.append(f"default: {default}")
    elif spec.required:
        notes.append("required")
    help_text = " ".join([spec.description, *(f"[{note}]" for note in notes)]).strip()
    if is_flag_type(spec.type):
        decls = [f"--{n}/--no-{n}" for n in names]
        return click.Option([spec.name, *decls], default=None, help=help_text)
    return click.Option(
        [spec.name, *(f"--{n}" for n in names)], type=param_type(spec.type), default=None, help=help_text
    )


def entity_params(interface: Interface) -> list[click.Parameter]:
    params: list[click.Parameter] = [input_option(spec) for spec in interface.inputs.values()]
    params.append(
        click.Option(
            [INPUTS_FILE, "--inputs-file"],
            type=click.Path(exists=True, dir_okay=False),
            help="YAML or JSON file mapping input names to values (flags win).",
        )
    )
    params.append(click.Argument([STDIN], nargs=-1, required=False, metavar="[-]"))
    return params


def _read_text(read: Callable[[], str], source: str, ctx: click.Context) -> str:
    try:
        return read()
    except UnicodeDecodeError as exc:
        raise click.UsageError(f"{source} is not UTF-8 text: {exc.reason} at byte {exc.start}", ctx) from None
    except OSError as exc:
        raise click.UsageError(f"cannot read {source}: {exc.strerror or exc}", ctx) from None


def _read_mapping(text: str, source: str, ctx: click.Context) -> dict[str, Any]:
    import yaml  # YAML is a superset of JSON, so one parser reads both

    if not text.strip():
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        message = f"{source} is not valid YAML or JSON: {describe_yaml_error(exc)}"
        raise click.UsageError(message, ctx) from None
    except RecursionError:
        raise click.UsageError(f"{source} is nested too deeply to read", ctx) from None
    except Exception as exc:  # PyYAML's constructors: `!!int x`, `2024-02-30`, `!!timestamp foo`, ...
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise click.UsageError(f"{source} is not valid YAML or JSON: {first}", ctx) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise click.UsageError(f"{source} must map input names to values, got {type(data).__name__}", ctx)
    return data


def _convert(data: dict[str, Any], interface: Interface, source: str, ctx: click.Context) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in data.items():
        spec = interface.inputs.get(str(key))
        if spec is None:
            known = ", ".join(interface.inputs) or "none"
            raise click.UsageError(f"{source}: unknown input {key!r} (inputs: {known})", ctx)
        try:
            values[spec.name] = from_jsonable(raw, spec.type)
        except InputError as exc:
            raise click.UsageError(f"{source}: input '{spec.name}': {exc}", ctx) from None
    return values


def merge_inputs(ctx: click.Context, interface: Interface) -> dict[str, Any]:
    """Inputs from the file, stdin and flags (in rising precedence); required ones enforced."""
    values = _given_inputs(ctx, interface)
    missing = _missing(interface, values)
    if missing:
        raise click.UsageError(f"Missing option {', '.join(f'--{name}' for name in missing)}", ctx)
    return values


def batch_inputs(ctx: click.Context, interface: Interface, source: str) -> list[dict[str, Any]]:
    """`--batch`: the inputs of each JSON line of `source` (a file, or `-` for stdin), over those of
    the inputs file, stdin and flags. Every line is read and checked (unknown inputs, types, required
    inputs) before anything is launched; blank lines are skipped. Two readers of stdin, or a batch
    without a line of inputs, are usage errors."""
    if source == "-" and ctx.params.get(STDIN):
        raise click.UsageError(
            "--batch - and the '-' argument both read stdin: give the batch or the common inputs as a file",
            ctx,
        )
    common = _given_inputs(ctx, interface)
    if source == "-":
        text = _read_text(_read_stdin, "--batch stdin", ctx)
    else:
        text = _read_text(lambda: Path(source).read_text(encoding="utf-8"), f"--batch {source}", ctx)
    runs: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(
                f"line {number} is not JSON: {exc.msg} at column {exc.colno}", ctx, param_hint=BATCH
            ) from None
        except RecursionError:
            raise click.BadParameter(
                f"line {number} is nested too deeply to read", ctx, param_hint=BATCH
            ) from None
        if not isinstance(data, dict):
            raise click.BadParameter(f"line {number} must be a JSON object of inputs", ctx, param_hint=BATCH)
        values = {**common, **_convert(data, interface, f"--batch line {number}", ctx)}
        missing = _missing(interface, values)
        if missing:
            names = ", ".join(repr(name) for name in missing)
            raise click.BadParameter(
                f"line {number} lacks required input {names}: give it on that line or as a flag for all",
                ctx,
                param_hint=BATCH,
            )
        runs.append(values)
    if not runs:
        where = "stdin" if source == "-" else source
        raise click.BadParameter(f"{where} has no line of inputs: nothing to launch", ctx, param_hint=BATCH)
    return runs


def _given_inputs(ctx: click.Context, interface: Interface) -> dict[str, Any]:
    values: dict[str, Any] = {}
    path = ctx.params.get(INPUTS_FILE)
    if path:
        text = _read_text(lambda: Path(path).read_text(encoding="utf-8"), f"--inputs-file {path}", ctx)
        values.update(_convert(_read_mapping(text, f"--inputs-file {path}", ctx), interface, path, ctx))
    extra = ctx.params.get(STDIN) or ()
    if extra:
        if tuple(extra) != ("-",):
            raise click.UsageError(f"unexpected argument {' '.join(extra)!r} (only '-', for stdin)", ctx)
        text = _read_text(_read_stdin, "stdin", ctx)
        values.update(_convert(_read_mapping(text, "stdin", ctx), interface, "stdin", ctx))
    for name in interface.inputs:
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            values[name] = ctx.params[name]
    return values


def _missing(interface: Interface, values: dict[str, Any]) -> list[str]:
    return [spec.name for spec in interface.inputs.values() if spec.required and spec.name not in values]


def _read_stdin() -> str:
    # Bytes, decoded here: the text layer may be lenient (surrogateescape under a C locale), and then
    # binary input would only fail later, inside the YAML parser, with a message about a character.
    return sys.stdin.buffer.read().decode("utf-8")
