"""Run every corpus case twice in one interpreter, both with flytekit: through its Python API (the outcome
remote tests compare against) and through `pyflyte run`'s own command (click's test runner feeding it
the case's stdin), and print one JSON line per case.

    python _run_local.py CASES_JSON      # [{"id", "path", "entity", "inputs", "stdin", "args"}, …]

Run as a script in a fresh interpreter (flytekit is imported only here, once), from `local.outcomes`;
flytekit's local cache is emptied before each run, as a fresh HOME would have it.
`normalize` is also what a remote test applies to outputs it fetched, so both sides compare alike.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import io
import json
import os
import sys
from typing import Any

# Starts the line with the outcome (gates' prompts and task prints share stdout).
MARKER = "corpus-outcome: "


def normalize(value: Any) -> Any:
    """A JSON-able form of an output: dataclasses as dicts, enums as values, files and folders as contents."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: normalize(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if hasattr(value, "download") and isinstance(value, os.PathLike):
        local = value.download()
        if os.path.isdir(local):
            return {"files": sorted(os.listdir(local))}
        with open(local) as handle:
            return {"content": handle.read()}
    return value


def outputs_of(value: Any, names: list[str]) -> dict[str, Any]:
    """The workflow's outputs by name (o0, o1, …) from what calling it returned."""
    if not names:
        return {}
    if len(names) == 1:
        return {names[0]: normalize(value)}
    return {name: normalize(item) for name, item in zip(names, value, strict=True)}


def python_api(path: str, entity_name: str, inputs: dict[str, Any], stdin: str) -> dict[str, Any]:
    """The case's outcome through flytekit's Python API: outputs by name, or the error."""
    # Imported under the name `pyflyte run` gives it (the package's folder on sys.path), so that both runs
    # share one module: flytekit refuses a second launch plan of the same name for another workflow.
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, os.path.dirname(folder))
    stem = os.path.splitext(os.path.basename(path))[0]
    module = importlib.import_module(f"{os.path.basename(folder)}.{stem}")
    entity = getattr(module, entity_name)
    names = list(entity.python_interface.outputs)
    types = entity.python_interface.inputs
    for key, value in inputs.items():
        # JSON holds an enum's value; the Python API wants the member.
        if isinstance(types[key], type) and issubclass(types[key], enum.Enum):
            inputs[key] = types[key](value)
    sys.stdin = io.StringIO(stdin)  # local gates prompt for approvals and inputs
    try:
        value = entity(**inputs)
    except Exception as exc:  # the case's failure is its outcome
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        sys.stdin = sys.__stdin__
    return {"ok": True, "outputs": outputs_of(value, names), "text": "" if value is None else str(value)}


def pyflyte_run(path: str, entity_name: str, args: list[str], stdin: str) -> dict[str, Any]:
    """`pyflyte run FILE ENTITY ARGS` through pyflyte's own command: its exit code and what it printed."""
    from click.testing import CliRunner
    from flytekit.clis.sdk_in_container.pyflyte import main as pyflyte

    result = CliRunner().invoke(pyflyte, ["run", path, entity_name, *args], input=stdin)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += f"\n{type(result.exception).__name__}: {result.exception}"
    return {"code": result.exit_code, "output": output}


def main() -> None:
    from flytekit.core.local_cache import LocalTaskCache

    for case in json.loads(sys.argv[1]):
        LocalTaskCache.clear()
        outcome = python_api(case["path"], case["entity"], dict(case["inputs"]), case["stdin"])
        LocalTaskCache.clear()
        cli = pyflyte_run(case["path"], case["entity"], case["args"], case["stdin"])
        print(f"\n{MARKER}" + json.dumps({"id": case["id"], "outcome": outcome, "pyflyte": cli}), flush=True)


if __name__ == "__main__":
    main()
