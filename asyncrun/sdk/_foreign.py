"""Entities written with another SDK (flytekit), as asyncrun's loader, CLI and client see them.

asyncrun lists, parses inputs for, runs and registers such an entity only through this interface,
so nothing outside the adapter package (`asyncrun.interop`) knows the other SDK. Adapters are
found by `EntitySource`s, which the loader asks only when the user's module imported their SDK.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType

    from .._proto.flyteidl import core
    from ..client._serialize import RegistrationPlan, SerializationSettings
    from ._interface import Interface

__all__ = ("EntitySource", "ForeignEntity")


class ForeignEntity(abc.ABC):
    """A task, workflow or launch plan of another SDK, adapted.

    Attributes:
        kind: "task", "workflow" or "launch plan".
        name: the registered name (flytekit's `module.function`, or the launch plan's name).
        source_file: the Python file that defines it (its project root is what gets packaged).
        fixed_inputs: launch plan inputs that cannot be overridden (as asyncrun values).
    """

    kind: str
    name: str
    source_file: Path
    fixed_inputs: dict[str, Any]

    @property
    @abc.abstractmethod
    def interface(self) -> Interface:
        """Inputs and outputs in asyncrun's types (what the CLI parses and renders).

        Raises:
            UnsupportedTypeError: an input or output has a type asyncrun cannot carry (one line naming it).
        """

    @property
    def workflow_name(self) -> str:
        """The workflow a launch plan launches ("" for tasks and workflows)."""
        return ""

    @abc.abstractmethod
    async def run_locally(
        self, inputs: dict[str, Any], *, overwrite_cache: bool, envvars: dict[str, str]
    ) -> dict[str, Any]:
        """Run in this process through the SDK's own local execution; outputs by name, as asyncrun values.

        Raises:
            TaskFailedError: user code raised.
        """

    @abc.abstractmethod
    def registration_plan(
        self, settings: SerializationSettings, *, code_md5: bytes, images: tuple[str, ...]
    ) -> RegistrationPlan:
        """The specs the SDK itself would register, under a version derived from their content.

        `images` are the `-i` values as given (`fqn:tag`, `name=fqn:tag`); the SDK resolves them.
        Blocks (the SDK's serializer is synchronous): call it from a worker thread.
        """

    @abc.abstractmethod
    def input_literals(self, values: dict[str, Any]) -> core.LiteralMap:
        """Launch inputs (asyncrun values, local files already uploaded) as the SDK encodes them.

        Blocks: call it from a worker thread.
        """


@dataclass(frozen=True)
class EntitySource:
    """Where the loader finds entities of another SDK in a user's module.

    Attributes:
        sdk_module: the SDK's top-level module; the source is asked only when it is in
            `sys.modules` after the user's module was imported, so a native file never loads it.
        finder: `"package.module:function"`, a function `(module) -> [(attribute name, ForeignEntity)]`.
        import_env: environment defaults while a user's module is imported, so that the SDK, if the
            module imports it, sets itself up as its own CLI would (unset variables only).
    """

    sdk_module: str
    finder: str
    import_env: tuple[tuple[str, str], ...] = ()

    def entities(self, module: ModuleType) -> list[tuple[str, ForeignEntity]]:
        import importlib

        module_name, _, attr = self.finder.partition(":")
        found: list[tuple[str, ForeignEntity]] = getattr(importlib.import_module(module_name), attr)(module)
        return found


# Asked in this order; an SDK's source is skipped unless the user's module imported that SDK.
ENTITY_SOURCES = (
    EntitySource(
        "flytekit",
        "asyncrun.interop:flytekit_entities",
        # pyflyte logs only critical messages unless -v: flytekit's import-time warnings would
        # otherwise land on stdout (its rich handler), in the middle of outputs and JSON.
        import_env=(("FLYTE_SDK_LOGGING_LEVEL", "50"),),
    ),
)
