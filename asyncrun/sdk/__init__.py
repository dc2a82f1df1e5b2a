"""What users write against: `@task`, `@workflow`, `@dynamic`, `map_task`, `conditional`, gates,
`LaunchPlan`, `File`, `Directory`, `Resources`, `Secret`."""

from __future__ import annotations

from ._async_workflow import AsyncWorkflow
from ._control import approve, conditional, sleep, wait_for_input
from ._dynamic import dynamic
from ._files import Directory, File
from ._interface import Input, Interface
from ._launch_plan import LaunchPlan
from ._map import MapTask, map_task
from ._resources import Resources, Secret, get_secret
from ._task import Task, TaskConfig, task
from ._workflow import Workflow, workflow

__all__ = (
    "AsyncWorkflow",
    "Directory",
    "File",
    "Input",
    "Interface",
    "LaunchPlan",
    "MapTask",
    "Resources",
    "Secret",
    "Task",
    "TaskConfig",
    "Workflow",
    "approve",
    "conditional",
    "dynamic",
    "get_secret",
    "map_task",
    "sleep",
    "task",
    "wait_for_input",
    "workflow",
)
