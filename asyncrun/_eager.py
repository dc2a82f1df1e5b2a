"""Child executions of an async workflow running remotely (flytekit's `@eager` model).

The workflow's body runs inside a task process; each task it awaits is launched as an execution of
its own through asyncrun's client (the task was registered with the workflow, at the same version),
and awaited there. The task process reaches FlyteAdmin through `FLYTE_PLATFORM_URL` (the sandbox sets
it; on a cluster see docs/concepts.md), and runs in the parent's project and domain.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._exceptions import TaskFailedError, UsageError
from .sdk._async_workflow import TaskCaller
from .sdk._task import Task

if TYPE_CHECKING:
    from .client import Client

__all__ = ("ChildExecutions",)


@dataclass
class ChildExecutions(TaskCaller):
    """Launches each awaited task as a child execution and returns its outputs."""

    project: str
    domain: str
    version: str
    parent: str
    _client: Client | None = field(default=None, init=False, repr=False)
    _calls: int = field(default=0, init=False, repr=False)

    @classmethod
    def from_environment(cls) -> ChildExecutions:
        """The parent's project, domain, version and execution, from the variables propeller sets."""
        return cls(
            project=os.environ.get("FLYTE_INTERNAL_TASK_PROJECT", ""),
            domain=os.environ.get("FLYTE_INTERNAL_TASK_DOMAIN", ""),
            version=os.environ.get("FLYTE_INTERNAL_TASK_VERSION", ""),
            parent=os.environ.get("FLYTE_INTERNAL_EXECUTION_ID", ""),
        )

    def child_name(self, entity: Any) -> str:
        """A name derived from the parent and the call's position: a retried parent re-attaches."""
        self._calls += 1
        digest = hashlib.sha256(f"{self.parent}/{entity.name}/{self._calls}".encode()).hexdigest()
        return "a" + digest[:19]

    async def aclose(self) -> None:
        """Close the client's channel, if one was opened."""
        if self._client is not None:
            await self._client.aclose()

    async def call(self, entity: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(entity, Task):
            raise UsageError(
                f"{entity.name}: an async workflow running remotely awaits tasks only; call workflows "
                "from a @workflow, or make this one a task"
            )
        from .client import Client

        if self._client is None:
            self._client = Client.from_config()
        name = self.child_name(entity)
        remote = await self._client.fetch_task(
            entity.name, self.version, project=self.project, domain=self.domain
        )
        execution = await self._client.run(
            remote, inputs, name=name, wait=True, poll_interval=1.0, project=self.project, domain=self.domain
        )
        if execution.error is not None or execution.outputs is None:
            error = execution.error
            raise TaskFailedError(
                entity.name,
                error.code if error is not None else execution.phase.name,
                f"child execution {name}: " + (error.message if error is not None else "no outputs"),
            )
        return dict(execution.outputs)
