"""flytekit's Python types as asyncrun types, and values carried across both ways.

The CLI parses and renders asyncrun types (`asyncrun.sdk._type_engine`); flytekit's code gets its
own: `FlyteFile` for a `File`, a pydantic model or a dataclasses-with-flytekit-fields built from
the JSON object asyncrun parsed, a `StructuredDataset` for the path of a parquet file.
Only imported once the user's module has imported flytekit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import os
import typing
from typing import Any

from .._exceptions import InputError
from ..sdk import _type_engine as te
from ..sdk._files import Directory, File

__all__ = ("asyncrun_type", "from_flytekit", "to_flytekit")

NoneType = type(None)
_SCALARS = (int, float, str, bool, dt.datetime, dt.date, dt.timedelta, NoneType)


def _is_sub(tp: Any, base: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, base)


def _flytekit_kind(tp: Any) -> str | None:
    """ "file", "directory", "dataset", "pydantic" or None, without importing optional libraries."""
    from flytekit.types.directory import FlyteDirectory
    from flytekit.types.file import FlyteFile
    from flytekit.types.structured import StructuredDataset

    if _is_sub(tp, FlyteFile):
        return "file"
    if _is_sub(tp, FlyteDirectory):
        return "directory"
    if _is_sub(tp, StructuredDataset) or _is_dataframe(tp):
        return "dataset"
    if _is_pydantic(tp):
        return "pydantic"
    return None


def _is_dataframe(tp: Any) -> bool:
    module = getattr(tp, "__module__", "") or ""
    return isinstance(tp, type) and module.startswith("pandas") and tp.__name__ == "DataFrame"


def _is_pydantic(tp: Any) -> bool:
    import sys

    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and _is_sub(tp, pydantic.BaseModel)


def asyncrun_type(tp: Any) -> Any:
    """The asyncrun type that parses (and renders) values of flytekit Python type `tp`.

    Raises:
        UnsupportedTypeError: naming `tp` (or the part of it asyncrun cannot carry).
    """
    tp = te.strip_annotated(tp)
    if tp in _SCALARS:
        return tp
    members = te.union_members(tp)
    if members is not None:
        return typing.Union[tuple(asyncrun_type(m) for m in members)]  # noqa: UP007 - built at run time
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and len(args) == 1:
        return list[asyncrun_type(args[0])]  # type: ignore[misc]
    if origin is dict and len(args) == 2 and args[0] is str:
        return dict[str, asyncrun_type(args[1])]  # type: ignore[misc]
    if tp is dict:  # an untyped dict: flytekit sends it as a JSON object
        return te.JSONObject
    if _is_sub(tp, enum.Enum):
        te.check_supported(tp)
        return tp
    kind = _flytekit_kind(tp)
    if kind in ("file", "dataset"):
        return File
    if kind == "directory":
        return Directory
    if kind == "pydantic":
        return te.JSONObject.named(tp.__name__, tp.model_json_schema())
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        try:
            te.check_supported(tp)
            return tp  # asyncrun builds the dataclass itself (with its defaults and checks)
        except te.UnsupportedTypeError:
            return te.JSONObject.named(tp.__name__)  # fields of flytekit types: flytekit decodes it
    te.check_supported(tp)  # raises, naming the type
    return tp


def to_flytekit(value: Any, tp: Any, *, local: bool) -> Any:
    """An asyncrun value of `asyncrun_type(tp)` as the flytekit value of `tp`.

    `local`: the value feeds a local run, so a local file stays where it is (as pyflyte does).

    Raises:
        InputError: the value cannot be built (a JSON object that does not fit the model, ...).
    """
    if value is None:
        return None
    tp = te.strip_annotated(tp)
    if tp in _SCALARS or _is_sub(tp, enum.Enum):
        return value
    members = te.union_members(tp)
    if members is not None:
        for member in members:
            if member is not NoneType and te.matches(value, asyncrun_type(member)):
                return to_flytekit(value, member, local=local)
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and args:
        return [to_flytekit(item, args[0], local=local) for item in value]
    if origin is dict and len(args) == 2:
        return {key: to_flytekit(item, args[1], local=local) for key, item in value.items()}
    kind = _flytekit_kind(tp)
    # Used where it is: a local path for local runs (as pyflyte does), else what asyncrun uploaded.
    if kind == "file":
        return tp(value.path if local else value.uri, remote_path=False)
    if kind == "directory":
        return tp(value.path if local else value.uri, remote_directory=False)
    if kind == "dataset":
        return _dataset(value, tp, local=local)
    try:
        if kind == "pydantic":  # as pyflyte parses it (flytekit types inside are deserialized)
            return tp.model_validate_json(json.dumps(value), strict=False, context={"deserialize": True})
        if isinstance(value, dict) and dataclasses.is_dataclass(tp):
            from mashumaro.codecs.json import JSONDecoder

            return JSONDecoder(tp).decode(json.dumps(value))
    except Exception as exc:  # pydantic's ValidationError, mashumaro's errors
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"not a valid {tp.__name__}: {first}") from None
    return value


def _dataset(value: File, tp: Any, *, local: bool) -> Any:
    from flytekit.types.structured import StructuredDataset

    if value.path.lower().endswith(".csv"):
        if not local:
            raise InputError(
                f"{value.path}: a CSV file feeds a dataset input of local runs only; "
                "convert it to parquet for --remote"
            )
        import pandas as pd

        frame = pd.read_csv(value.path)
        return frame if _is_dataframe(tp) else StructuredDataset(dataframe=frame)
    return StructuredDataset(uri=value.uri if not local else os.path.abspath(value.path))


def from_flytekit(value: Any, tp: Any) -> Any:
    """A flytekit value of `tp` as an asyncrun value of `asyncrun_type(tp)` (outputs, defaults)."""
    if value is None:
        return None
    tp = te.strip_annotated(tp)
    if tp in _SCALARS or _is_sub(tp, enum.Enum):
        return value
    members = te.union_members(tp)
    if members is not None:
        for member in members:
            if member is not NoneType and _is_instance(value, member):
                return from_flytekit(value, member)
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and args:
        return [from_flytekit(item, args[0]) for item in value]
    if origin is dict and len(args) == 2:
        return {key: from_flytekit(item, args[1]) for key, item in value.items()}
    kind = _flytekit_kind(tp)
    if kind == "file":
        return File(os.fspath(value.path), remote_source=getattr(value, "remote_source", None))
    if kind == "directory":
        return Directory(os.fspath(value.path), remote_source=getattr(value, "remote_source", None))
    if kind == "pydantic":
        return dict(value.model_dump(mode="json"))
    target = asyncrun_type(tp)
    if _is_sub(target, te.JSONObject) and dataclasses.is_dataclass(value):
        from mashumaro.codecs.json import JSONEncoder

        return json.loads(JSONEncoder(tp).encode(value))
    return value


def _is_instance(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(te.strip_annotated(tp))
    check = origin or te.strip_annotated(tp)
    try:
        return isinstance(value, check)
    except TypeError:
        return False
