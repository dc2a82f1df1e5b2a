"""What the client returns: small dataclasses, never protobuf messages (those are kept in `raw`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .._exceptions import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime, timedelta

    from ..sdk._interface import Interface


class Phase(StrEnum):
    """Phase of a workflow execution (flyteidl `WorkflowExecution.Phase`)."""

    UNDEFINED = "UNDEFINED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDING = "SUCCEEDING"
    SUCCEEDED = "SUCCEEDED"
    FAILING = "FAILING"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    TIMED_OUT = "TIMED_OUT"
    ABORTING = "ABORTING"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def has_started(self) -> bool:
        return self not in (Phase.UNDEFINED, Phase.QUEUED)


_TERMINAL = {Phase.SUCCEEDED, Phase.FAILED, Phase.ABORTED, Phase.TIMED_OUT}
_EXECUTION_NAME = re.compile(r"[a-z][a-z0-9-]*")
MAX_EXECUTION_NAME = 63


def check_execution_name(name: str) -> str:
    """FlyteAdmin's rule for a chosen execution name, checked before any work: it lower-cases the name,
    which must then match `[a-z][a-z0-9-]*` and be at most 63 characters. Returns the lower-cased name."""
    lowered = name.lower()
    if len(lowered) > MAX_EXECUTION_NAME:
        raise UsageError(
            f"execution name {name[:20]!r}… is {len(name)} characters long; FlyteAdmin allows at most "
            f"{MAX_EXECUTION_NAME}"
        )
    if not _EXECUTION_NAME.fullmatch(lowered):
        raise UsageError(
            f"execution name {name!r} is not valid: use a letter, then letters, digits and '-' "
            "(FlyteAdmin lower-cases it; no '_', '.' or spaces)"
        )
    return lowered


_CONSOLE_PATH = re.compile(r"/projects/([^/]+)/domains/([^/]+)/executions/([^/?#]+)")


@dataclass(frozen=True)
class ExecutionId:
    """Identifies one execution: project, domain and name."""

    project: str
    domain: str
    name: str

    def __str__(self) -> str:
        return f"{self.project}:{self.domain}:{self.name}"

    @classmethod
    def parse(cls, text: str, *, project: str, domain: str) -> ExecutionId:
        """`name`, `project:domain:name`, or a console URL ending in `/projects/P/domains/D/executions/N`."""
        if "://" in text:
            match = _CONSOLE_PATH.search(urlparse(text).path)
            if not match:
                raise UsageError(f"{text!r} is not an execution URL (…/projects/P/domains/D/executions/NAME)")
            return cls(*match.groups())
        parts = text.split(":")
        if len(parts) == 1 and parts[0]:
            return cls(project, domain, parts[0])
        if len(parts) == 3 and all(parts):
            return cls(*parts)
        raise UsageError(f"{text!r} is not an execution id (use NAME, PROJECT:DOMAIN:NAME or a console URL)")


@dataclass(frozen=True)
class EntityId:
    """A registered task, workflow or launch plan at one version."""

    kind: str  # "task", "workflow" or "launch plan"
    project: str
    domain: str
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}:{self.version}"


@dataclass(frozen=True)
class ExecutionError:
    """Why an execution failed."""

    code: str
    message: str
    kind: str = "UNKNOWN"  # USER, SYSTEM or UNKNOWN


@dataclass
class Execution:
    """An execution as last seen by the client.

    `outputs` holds Python values once the run has succeeded and its outputs were fetched.
    """

    id: ExecutionId
    phase: Phase
    url: str
    target: EntityId | None = None
    error: ExecutionError | None = None
    outputs: dict[str, Any] | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    duration: timedelta | None = None
    abort_cause: str = ""
    output_types: dict[str, Any] | None = field(default=None, repr=False)
    raw: Any = field(default=None, repr=False, compare=False)
    # True when `Client.run` found this execution (same name, entity and inputs) instead of creating it.
    attached: bool = field(default=False, compare=False)

    @property
    def is_done(self) -> bool:
        return self.phase.is_terminal


@dataclass(frozen=True)
class RemoteEntity:
    """A registered task, workflow or launch plan, with the interface to launch it.

    `interface.inputs` omits fixed inputs and carries launch plan defaults; the Python types are
    read from the registered literal types.
    """

    id: EntityId
    interface: Interface
    fixed_inputs: dict[str, Any] = field(default_factory=dict)
    launch_id: EntityId | None = None  # what CreateExecution names: the LP (or the task itself)
    description: str = ""
    raw: Any = field(default=None, repr=False, compare=False)
    # Encodes launch inputs (uploaded already) when another SDK (flytekit) owns their encoding.
    input_encoder: Callable[[dict[str, Any]], Any] | None = field(default=None, repr=False, compare=False)

    @property
    def kind(self) -> str:
        return self.id.kind

    @property
    def name(self) -> str:
        return self.id.name


@dataclass(frozen=True)
class ExecutionOptions:
    """Run-level options of one execution (pyflyte run §1b); `None` means unset, not zero."""

    service_account: str = ""
    envs: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    raw_output_data_prefix: str | None = None
    max_parallelism: int | None = None
    disable_notifications: bool = False
    overwrite_cache: bool = False
    interruptible: bool | None = None
    cluster_pool: str = ""
    execution_cluster_label: str = ""
