"""The local cache of `cache=True` task outputs, one JSON file per (task, version, inputs)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from typing import TYPE_CHECKING, Any

from .._paths import cache_dir
from ._type_engine import from_jsonable, to_jsonable

if TYPE_CHECKING:
    from pathlib import Path

    from ._task import Task


class LocalCache:
    """Stores outputs as JSON under the state folder; a corrupt entry counts as a miss."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_dir()

    def key(self, task: Task, inputs: dict[str, Any]) -> str:
        """Flyte's rule: the task name, its cache version, its interface and the input values."""
        types = {spec.name: spec.type for spec in task.interface.inputs.values()}
        interface = {
            "inputs": {name: repr(tp) for name, tp in sorted(types.items())},
            "outputs": {name: repr(tp) for name, tp in sorted(task.interface.outputs.items())},
        }
        canonical = json.dumps(
            {
                "task": task.name,
                "version": task.config.cache_version,
                "interface": interface,
                "inputs": {name: to_jsonable(value, types[name]) for name, value in sorted(inputs.items())},
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def _path(self, task: Task, inputs: dict[str, Any]) -> Path:
        key = self.key(task, inputs)
        return self.root / task.name / f"{key}.json"

    def get(self, task: Task, inputs: dict[str, Any]) -> dict[str, Any] | None:
        path = self._path(task, inputs)
        try:
            stored = json.loads(path.read_text())
            return {name: from_jsonable(stored[name], tp) for name, tp in task.interface.outputs.items()}
        except Exception:  # missing, corrupt or from an older layout: recompute
            return None

    def put(self, task: Task, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        """Store the outputs. Raises OSError when the cache cannot be written (not a folder, disk full)."""
        path = self._path(task, inputs)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {name: to_jsonable(outputs[name], tp) for name, tp in task.interface.outputs.items()}
        # Write then rename, so a crash never leaves half an entry behind.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):  # a full disk must not also leave the temp file behind
                os.unlink(tmp)
            raise
