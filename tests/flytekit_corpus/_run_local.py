"""Run one corpus entity with flytekit's Python API and print its outcome as one JSON line.

    python _run_local.py FILE ENTITY INPUTS_JSON

Run as a script in a fresh interpreter (flytekit is imported only here), from `local.run_locally`.
`normalize` is also what a remote test applies to outputs it fetched, so both sides compare alike.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
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


def main() -> None:
    path, entity_name, inputs_json = sys.argv[1:4]
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    entity = getattr(module, entity_name)
    names = list(entity.python_interface.outputs)
    types = entity.python_interface.inputs
    inputs = json.loads(inputs_json)
    for name, value in inputs.items():
        # JSON holds an enum's value; the Python API wants the member.
        if isinstance(types[name], type) and issubclass(types[name], enum.Enum):
            inputs[name] = types[name](value)
    try:
        value = entity(**inputs)
    except Exception as exc:  # the case's failure is its outcome
        print(f"\n{MARKER}" + json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        return
    print(
        f"\n{MARKER}"
        + json.dumps(
            {"ok": True, "outputs": outputs_of(value, names), "text": "" if value is None else str(value)}
        )
    )


if __name__ == "__main__":
    main()
