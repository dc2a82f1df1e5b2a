"""What users write against: `@task`, `@workflow`, `LaunchPlan`, `File`, `Directory`."""

from __future__ import annotations

from ._files import Directory, File
from ._interface import Input, Interface
from ._launch_plan import LaunchPlan
from ._task import Task, TaskConfig, task
from ._workflow import Workflow, workflow

__all__ = (
    "Directory",
    "File",
    "Input",
    "Interface",
    "LaunchPlan",
    "Task",
    "TaskConfig",
    "Workflow",
    "task",
    "workflow",
)
