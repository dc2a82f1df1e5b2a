"""Find a file's project root, import it once, and list the entities it defines.

One rule serves listing and running alike: the project root is the first ancestor folder without
an `__init__.py`, and the module name is the file's path relative to it. So relative imports work
for `--help` too, and no module is imported twice under two names.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._exceptions import AsyncrunError, DefinitionError, EntityNotFoundError, UsageError, describe_exception
from ._foreign import ENTITY_SOURCES, ForeignEntity
from ._launch_plan import LaunchPlan
from ._task import Task
from ._workflow import Workflow

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    from ._graph import Entity

_ENTITY_TYPES = (Task, Workflow, LaunchPlan)
_ORDER = {"workflow": 0, "async workflow": 0, "task": 1, "launch plan": 2}


@dataclass(frozen=True)
class LoadedFile:
    """A user file imported as a module of its project."""

    path: Path
    root: Path
    module_name: str
    module: ModuleType

    def entities(self) -> list[tuple[str, Entity | ForeignEntity]]:
        """(attribute name, entity) pairs: workflows, then tasks, then launch plans, each by name.

        Entities of another SDK (flytekit) are listed next to asyncrun's own, by the rules of that
        SDK's own CLI.
        """
        found: list[tuple[str, Entity | ForeignEntity]] = [
            (name, value)
            for name, value in vars(self.module).items()
            if isinstance(value, Task | Workflow | LaunchPlan) and not name.startswith("_")
        ]
        found += self.foreign
        return sorted(found, key=lambda item: (_ORDER[item[1].kind], item[0]))

    @functools.cached_property
    def foreign(self) -> list[tuple[str, ForeignEntity]]:
        """Entities of the SDKs the module imported (each SDK's source is asked only if it was)."""
        found: list[tuple[str, ForeignEntity]] = []
        for source in ENTITY_SOURCES:
            if source.sdk_module in sys.modules:
                found += source.entities(self.module)
        return found

    def entity(self, name: str) -> Entity | ForeignEntity:
        """The entity bound to attribute `name`, or a one-line error listing what exists."""
        value = getattr(self.module, name, None)
        if isinstance(value, _ENTITY_TYPES):
            return value
        adapted = dict(self.foreign).get(name)
        if adapted is not None:
            return adapted
        known = ", ".join(n for n, _ in self.entities()) or "none"
        what = "is not a task, workflow or launch plan" if value is not None else "not found"
        raise EntityNotFoundError(f"'{name}' {what} in {self.path.name} (entities: {known})")


def project_root(path: Path) -> Path:
    """The first ancestor of `path` that is not a package (has no `__init__.py`)."""
    folder = path.parent
    while (folder / "__init__.py").exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def module_name_for(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def load_file(file: str | Path) -> LoadedFile:
    """Import `file` as a module of its project root (put first on `sys.path`)."""
    path = Path(file).expanduser()
    if not path.is_file():
        raise UsageError(f"file {file} does not exist")
    if path.suffix != ".py":
        raise UsageError(f"{file} is not a Python file (.py)")
    path = path.resolve()
    root = project_root(path)
    name = module_name_for(path, root)
    if sys.path[:1] != [str(root)]:
        sys.path.insert(0, str(root))
    existing = sys.modules.get(name)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() == path:
        module = existing
    else:
        if existing is not None:
            del sys.modules[name]  # another file of the same module name: load this one
        try:
            with _keeping_sigint(), _sdk_import_env():
                module = importlib.import_module(name)
        except AsyncrunError:
            raise
        except SystemExit as exc:
            # Exiting from an import would end asyncrun silently with the module's status.
            raise DefinitionError(
                f"cannot import {path.name}: it called sys.exit({exc.code!r}) while being imported; "
                'move that call under `if __name__ == "__main__":`'
            ) from exc
        except Exception as exc:
            raise DefinitionError(f"cannot import {path.name}: {describe_exception(exc)}") from exc
    return LoadedFile(path, root, name, module)


@contextlib.contextmanager
def _sdk_import_env() -> Iterator[None]:
    """The entity sources' environment defaults, while a user module (and the SDK it imports) loads."""
    added = [
        (key, value) for source in ENTITY_SOURCES for key, value in source.import_env if key not in os.environ
    ]
    os.environ.update(added)
    try:
        yield
    finally:
        for key, _ in added:
            os.environ.pop(key, None)


@contextlib.contextmanager
def _keeping_sigint() -> Iterator[None]:
    """Put back the Ctrl-C handler a user module's import replaced (`import flytekit` installs one that
    exits with status 1), so an interrupt still ends asyncrun with one line and exit 130."""
    saved = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    try:
        yield
    finally:
        if saved is not None and signal.getsignal(signal.SIGINT) is not saved:
            signal.signal(signal.SIGINT, saved)
