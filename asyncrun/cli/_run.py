"""`asyncrun run [RUN OPTIONS] FILE ENTITY [INPUT OPTIONS] [--inputs-file F] [-]`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncclick as click

from ._inputs import entity_params, merge_inputs
from ._options import RunParams, run_options
from ._render import render_outputs

if TYPE_CHECKING:
    from asyncclick.shell_completion import CompletionItem

    from ..sdk._foreign import ForeignEntity
    from ..sdk._graph import Entity
    from ..sdk._loader import LoadedFile


class RunGroup(click.Group):
    """Resolves its first argument as a Python file."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        # Listing the current folder's files imports none of them.
        return sorted(p.name for p in Path.cwd().glob("*.py") if p.name != "__init__.py")

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name.startswith("remote-"):
            from ._remote import REMOTE_KINDS, RemoteEntityGroup

            if cmd_name in REMOTE_KINDS:
                return RemoteEntityGroup(cmd_name)
        path = Path(cmd_name)
        if not path.is_file():
            if path.suffix == ".py" or "/" in cmd_name:
                raise click.UsageError(f"file {cmd_name} does not exist", ctx)
            return None
        return FileGroup(path)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Options, the `remote-*` targets and the `.py` files here; any other path is left to the
        shell's own file completion (`asyncrun run examples/<TAB>`)."""
        from asyncclick.shell_completion import CompletionItem

        from ._remote import REMOTE_KINDS

        if incomplete.startswith("-"):
            return super().shell_complete(ctx, incomplete)
        names = [*self.list_commands(ctx), *sorted(REMOTE_KINDS)]
        found = [CompletionItem(name) for name in names if name.startswith(incomplete)]
        return found or [CompletionItem(incomplete, type="file")]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        files = self.list_commands(ctx)
        with formatter.section("Python files here"):
            if files:
                formatter.write_dl(
                    [(name, "asyncrun run " + name + " --help lists its entities") for name in files]
                )
            else:
                formatter.write_text("(none; give the path of a .py file)")


class FileGroup(click.Group):
    """The entities of one Python file, imported once."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            name=str(path),
            help=f"Run a workflow, task or launch plan from {path.name}.",
            subcommand_metavar="ENTITY [INPUTS]...",
        )
        self.path = path
        self._loaded: LoadedFile | None = None

    @property
    def loaded(self) -> LoadedFile:
        if self._loaded is None:
            from .. import _gc
            from ..sdk._loader import load_file

            with _gc.loading():  # the user's module and what it imports (flytekit) live until exit
                self._loaded = load_file(self.path)
        return self._loaded

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, _ in self.loaded.entities()]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return EntityCommand(cmd_name, self.loaded.entity(cmd_name))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, describe(entity)) for name, entity in self.loaded.entities()]
        with formatter.section("Entities"):
            if rows:
                formatter.write_dl(rows)
            else:
                formatter.write_text(f"(no task, workflow or launch plan in {self.path.name})")


def describe(entity: Entity | ForeignEntity) -> str:
    from ..sdk._foreign import ForeignEntity
    from ..sdk._interface import first_doc_line

    label = f"{entity.kind} {entity.name}"
    if isinstance(entity, ForeignEntity) and entity.workflow_name:
        label += f" of workflow {entity.workflow_name}"
    elif entity.kind == "launch plan":
        label += f" of workflow {entity.workflow.name}"  # type: ignore[union-attr]
    doc = first_doc_line(entity)
    return f"{label}: {doc}" if doc else label


class EntityCommand(click.Command):
    """One option per input of the entity; runs it locally or remotely."""

    def __init__(self, name: str, entity: Entity | ForeignEntity) -> None:
        super().__init__(
            name=name,
            params=entity_params(entity.interface),
            help=describe(entity),
            callback=None,
            no_args_is_help=False,
        )
        self.entity = entity

    async def invoke(self, ctx: click.Context) -> Any:
        params: RunParams = ctx.find_object(RunParams) or RunParams()
        if params.batch:
            if not params.remote:
                raise click.UsageError("--batch launches remote executions: add --remote", ctx)
            from ._remote import launch_batch

            await launch_batch(ctx, self.entity)
            return
        inputs = merge_inputs(ctx, self.entity.interface)
        if params.remote:
            from ._remote import launch

            await launch(ctx, self.entity, inputs)
            return
        from ..sdk._executor import LocalExecutor
        from ._interrupt import on_interrupt

        on_interrupt(f"interrupted: the local run of {self.entity.name} stopped")
        executor = LocalExecutor(overwrite_cache=params.overwrite_cache, envvars=params.envvars)
        outputs = await executor.run(self.entity, inputs)
        render_outputs(outputs, self.entity.interface.outputs, params.output)


@click.group(
    cls=RunGroup,
    subcommand_metavar="FILE ENTITY [INPUTS]...",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@run_options
@click.pass_context
def run(ctx: click.Context, /, **options: Any) -> None:
    """Run a task, workflow or launch plan from a Python file.

    \b
    asyncrun run hello.py wf --name x            run locally
    asyncrun run hello.py --help                 list the file's entities
    asyncrun run hello.py wf --help              list the inputs
    """
    check_wait_options(ctx, options)
    ctx.obj = RunParams.from_options(options)


def check_wait_options(ctx: click.Context, options: dict[str, Any]) -> None:
    """Options that only shape a wait are a usage error without `--wait` (never silently ignored)."""
    from asyncclick.core import ParameterSource

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)

    flags = {
        "wait_for": "--wait-for",
        "wait_timeout": "--wait-timeout",
        "abort_on_timeout": "--abort-on-timeout",
        "no_daemon": "--no-daemon",
    }
    if not options["wait"]:
        for name, flag in flags.items():
            if given(name):
                raise click.UsageError(f"{flag} only applies to a wait: add --wait", ctx)
    if options["abort_on_timeout"] and options["wait_timeout"] is None:
        raise click.UsageError("--abort-on-timeout needs --wait-timeout SECONDS", ctx)
