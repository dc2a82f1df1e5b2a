"""`asyncrun-execute`: run one asyncrun task inside a container (or a sandbox subprocess).

The same contract as flytekit's `pyflyte-execute` (flyteadmin-wire.md §4):

    asyncrun-execute --inputs {{.input}} --output-prefix {{.outputPrefix}}
        --raw-output-data-prefix {{.rawOutputDataPrefix}} [--distribution TAR.GZ --dest-dir DIR]
        --task-module hello --task-name say_hello

It unpacks the code distribution (safely), imports the task, reads `inputs.pb` (a LiteralMap), runs
the task and writes `outputs.pb`, or `error.pb` (an ErrorDocument) when it fails. The exit status is 0
in both cases, as with pyflyte-execute; it is non-zero only when not even `error.pb` could be written.

Every location may be a local path or an object-store URI (`s3://…`, `gs://…`, through `_storage`):
remote File/Directory inputs are downloaded before the task runs (keeping their URI as
`remote_source`), and File/Directory outputs are copied under the raw output prefix.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import shutil
import sys
import tarfile
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import _storage
from ._exceptions import StorageError, describe_exception, is_recoverable

_UNSET = ("", '""', "''")


class SystemFailure(Exception):
    """The platform side failed (distribution, module, inputs), not the user's task."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="asyncrun-execute", description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", required=True, help="path of inputs.pb (a LiteralMap)")
    parser.add_argument("--output-prefix", required=True, help="folder for outputs.pb or error.pb")
    parser.add_argument("--raw-output-data-prefix", default="", help="where File/Directory outputs go")
    parser.add_argument("--checkpoint-path", default="")
    parser.add_argument("--prev-checkpoint", default="")
    parser.add_argument("--distribution", default="", help="code tarball to unpack before importing")
    parser.add_argument("--dest-dir", default=".", help="where the distribution is unpacked")
    parser.add_argument("--task-module", required=True)
    parser.add_argument("--task-name", required=True)
    parser.add_argument("--image", default="", help="a dynamic task's image, for the tasks its body calls")
    parser.add_argument(
        "--array",
        action="store_true",
        help="a map task index: inputs are lists, take the array index's element",
    )
    return parser.parse_args(argv)


def _given(value: str) -> str:
    """Template variables a platform did not render count as unset."""
    return "" if value in _UNSET or value.startswith("{{") else value


def fetch_distribution(distribution: str) -> Path:
    """The code tarball as a local file: a local path as is, a remote one downloaded to a temp folder."""
    if _storage.is_local(distribution):
        return _storage.local_path(distribution)
    import tempfile

    target = Path(tempfile.mkdtemp(prefix="asyncrun-dist-")) / distribution.rsplit("/", 1)[-1]
    try:
        return _storage.download(distribution, target)
    except StorageError as exc:
        raise SystemFailure(f"cannot fetch code distribution: {exc}") from exc


def unpack(distribution: str, dest: Path) -> None:
    """Extract the code tarball into `dest`, refusing absolute paths, `..` and links that point out."""
    path = fetch_distribution(distribution)
    if not path.is_file():
        raise SystemFailure(f"code distribution {distribution} not found")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "r:*") as archive:
        for member in archive.getmembers():
            # The "data" filter would quietly rewrite an absolute name; a code package has none, so refuse.
            if member.name.startswith("/") or Path(member.name).is_absolute():
                raise SystemFailure(f"unsafe code distribution {distribution}: absolute path {member.name}")
        try:
            archive.extractall(dest, filter="data")
        except tarfile.FilterError as exc:
            raise SystemFailure(f"unsafe code distribution {distribution}: {exc}") from exc


def load_task(module_name: str, task_name: str) -> Any:
    from .sdk import Task

    try:
        module = importlib.import_module(module_name)
    except SystemExit as exc:
        raise SystemFailure(f"cannot import {module_name}: it called sys.exit({exc.code!r})") from exc
    except Exception as exc:
        raise SystemFailure(f"cannot import {module_name}: {describe_exception(exc)}") from exc
    task = getattr(module, task_name, None)
    if not isinstance(task, Task):
        raise SystemFailure(f"{module_name}.{task_name} is not an asyncrun task")
    return task


def _map_files(value: Any, tp: Any, change: Any) -> Any:
    """`value` with `change(v)` applied to every File/Directory in it, following the type `tp`."""
    import typing

    from .sdk import Directory, File

    if isinstance(value, File | Directory):
        return change(value)
    args = typing.get_args(tp)
    if isinstance(value, list) and args:
        return [_map_files(item, args[0], change) for item in value]
    if isinstance(value, dict) and len(args) == 2:
        return {key: _map_files(item, args[1], change) for key, item in value.items()}
    if (
        args
        and value is not None
        and typing.get_origin(tp) is not None
        and not isinstance(value, list | dict)
    ):
        for member in args:  # Optional[File] and other unions
            if isinstance(member, type) and isinstance(value, member):
                return _map_files(value, member, change)
    return value


def persist_files(value: Any, tp: Any, raw_prefix: str) -> Any:
    """Copy File/Directory outputs under the raw output prefix, so they outlive the task's folder."""
    from .sdk import Directory

    def persist(item: Any) -> Any:
        if not raw_prefix or item.remote_source or item.is_remote:
            return item
        source = Path(os.fspath(item))
        target = _storage.join(raw_prefix, uuid.uuid4().hex, source.name)
        if _storage.is_local(target):
            path = _storage.local_path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(item, Directory):
                shutil.copytree(source, path)
            else:
                shutil.copy2(source, path)
            return type(item)(str(path))
        _storage.upload(source, target)
        return type(item)(target)

    return _map_files(value, tp, persist)


def localize_files(value: Any, tp: Any, workdir: Path) -> Any:
    """Download remote File/Directory inputs into `workdir`; each keeps its URI as `remote_source`."""
    from .sdk import Directory

    def localize(item: Any) -> Any:
        if not item.is_remote:
            return item
        if _storage.is_local(item.path):  # file:// or local:// (the sandbox's blobs): a path already
            return type(item)(str(_storage.local_path(item.path)), remote_source=item.path)
        name = item.path.rstrip("/").rsplit("/", 1)[-1] or "blob"
        target = workdir / uuid.uuid4().hex / name
        _storage.download(item.path, target, recursive=isinstance(item, Directory))
        return type(item)(str(target), remote_source=item.path)

    return _map_files(value, tp, localize)


def run(args: argparse.Namespace) -> tuple[dict[str, Any] | None, tuple[str, str, bool, str] | None, Any]:
    """Returns (outputs, error, task); error = (code, message, recoverable, origin)."""
    from .sdk._literals import python_values

    if _given(args.distribution):
        dest = Path(args.dest_dir).resolve()
        unpack(args.distribution, dest)
        sys.path.insert(0, str(dest))
    else:
        sys.path.insert(0, str(Path(args.dest_dir).resolve()))
    task = load_task(args.task_module, args.task_name)
    from ._proto.flyteidl import core

    try:
        literals = core.LiteralMap.parse(_storage.read_bytes(args.inputs))
        types = {spec.name: spec.type for spec in task.interface.inputs.values()}
        if args.array:
            lists = {name: list[tp] for name, tp in types.items()}  # type: ignore[valid-type]
            inputs = array_element(python_values(literals, lists))
        else:
            inputs = python_values(literals, types)
        workdir = Path(".asyncrun-inputs").resolve()
        inputs = {name: localize_files(value, types[name], workdir) for name, value in inputs.items()}
    except Exception as exc:
        raise SystemFailure(f"cannot read inputs {args.inputs}: {describe_exception(exc)}") from exc
    from .sdk import AsyncWorkflow

    if isinstance(task, AsyncWorkflow):
        import asyncio

        from ._eager import ChildExecutions

        async def body() -> dict[str, Any]:
            children = ChildExecutions.from_environment()
            try:
                return await task.run(inputs, children)
            finally:
                await children.aclose()

        try:
            outputs = asyncio.run(body())
        except Exception as exc:
            message = "".join(traceback.format_exception(exc))
            return None, (f"USER:{type(exc).__name__}", message, is_recoverable(exc), "USER"), task
        return outputs, None, task
    if task.is_dynamic:
        try:
            write_futures(task, inputs, args)
        except Exception as exc:
            message = "".join(traceback.format_exception(exc))
            return None, (f"USER:{type(exc).__name__}", message, False, "USER"), task
        return None, None, task
    try:
        returned = task.fn(**inputs)
        if inspect.isawaitable(returned):
            import asyncio  # only async tasks pay for the event loop

            returned = asyncio.run(_await(returned))
        outputs = task.interface.outputs_from_return(returned)
    except Exception as exc:
        # Flyte's rule: RecoverableError (or FlyteRecoverableException) is RECOVERABLE and retried.
        message = "".join(traceback.format_exception(exc))
        return None, (f"USER:{type(exc).__name__}", message, is_recoverable(exc), "USER"), task
    raw = _given(args.raw_output_data_prefix)
    outputs = {
        name: persist_files(value, task.interface.outputs[name], raw) for name, value in outputs.items()
    }
    return outputs, None, task


def write_futures(task: Any, inputs: dict[str, Any], args: argparse.Namespace) -> None:
    """Run a dynamic task's body and write the workflow it built as `futures.pb` (a DynamicJobSpec)."""
    from .client._serialize import SerializationSettings, dynamic_job_spec
    from .sdk._dynamic import build_dynamic

    nodes, outputs = build_dynamic(task, inputs)
    settings = SerializationSettings(
        project=os.environ.get("FLYTE_INTERNAL_TASK_PROJECT", ""),
        domain=os.environ.get("FLYTE_INTERNAL_TASK_DOMAIN", ""),
        image=_given(args.image) or "",
        distribution=_given(args.distribution),
        destination_dir=args.dest_dir,
    )
    version = os.environ.get("FLYTE_INTERNAL_TASK_VERSION", "")
    spec = dynamic_job_spec(task, nodes, outputs, settings, version)
    _storage.write_bytes(_storage.join(args.output_prefix, "futures.pb"), bytes(spec))


def array_element(inputs: dict[str, list[Any]]) -> dict[str, Any]:
    """Each list input's element at this map task index (propeller's `FLYTE_K8S_ARRAY_INDEX`)."""
    variable = os.environ.get("BATCH_JOB_ARRAY_INDEX_VAR_NAME", "FLYTE_K8S_ARRAY_INDEX")
    try:
        index = int(os.environ[variable]) + int(os.environ.get("BATCH_JOB_ARRAY_INDEX_OFFSET", "0"))
    except (KeyError, ValueError) as exc:
        raise SystemFailure(f"a map task index needs the array index in ${variable}") from exc
    try:
        return {name: values[index] for name, values in inputs.items()}
    except IndexError as exc:
        raise SystemFailure(f"array index {index} is beyond the inputs' length") from exc


async def _await(awaitable: Any) -> Any:
    return await awaitable


def write_error(prefix: str, code: str, message: str, *, recoverable: bool, origin: str) -> None:
    from ._proto.flyteidl import core

    document = core.ErrorDocument(
        error=core.ContainerError(
            code=code,
            message=message,
            kind=core.ContainerErrorKind.RECOVERABLE
            if recoverable
            else core.ContainerErrorKind.NON_RECOVERABLE,
            origin=core.ExecutionErrorErrorKind.USER
            if origin == "USER"
            else core.ExecutionErrorErrorKind.SYSTEM,
            timestamp=datetime.now(UTC),
        )
    )
    _storage.write_bytes(_storage.join(prefix, "error.pb"), bytes(document))


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    args = parse_args(argv)
    prefix = args.output_prefix
    try:
        try:
            outputs, error, task = run(args)
            if error is not None:
                code, message, recoverable, origin = error
                write_error(prefix, code, message, recoverable=recoverable, origin=origin)
                return 0
            if outputs is None:  # a dynamic task: it wrote futures.pb
                return 0
            from ._exceptions import InputError
            from .sdk._literals import literal_map

            assert outputs is not None
            try:
                data = bytes(literal_map(outputs, task.interface.outputs, what="output"))
            except InputError as exc:  # the task returned a value its declared type does not allow
                message = f"task {task.name} returned a bad value: {exc}"
                write_error(prefix, "USER:OutputError", message, recoverable=False, origin="USER")
                return 0
            _storage.write_bytes(_storage.join(prefix, "outputs.pb"), data)
        except SystemFailure as exc:
            write_error(prefix, "SYSTEM:LoadFailed", str(exc), recoverable=True, origin="SYSTEM")
        except Exception as exc:  # a bug of ours: still leave an error document behind
            message = "".join(traceback.format_exception(exc))
            write_error(prefix, "SYSTEM:Unknown", message, recoverable=True, origin="SYSTEM")
    except Exception as exc:
        print(f"asyncrun-execute: cannot write to {prefix}: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
