"""Inputs of many types."""

import datetime
import enum
import typing
from dataclasses import dataclass, field

import pandas as pd
from flytekit import task, workflow
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from flytekit.types.structured import StructuredDataset
from pydantic import BaseModel


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class Point:
    x: int
    y: int = 2
    tags: typing.List[str] = field(default_factory=list)


@dataclass
class WithFile:
    f: FlyteFile
    n: int = 1


class Settings(BaseModel):
    lr: float
    epochs: int = 3


@task
def scalars(
    i: int, f: float, s: str, b: bool, dt: datetime.datetime, d: datetime.date, td: datetime.timedelta
) -> str:
    return f"{i} {f} {s} {b} {dt.isoformat()} {d.isoformat()} {td.total_seconds()}"


@task
def choices(c: Color = Color.RED, o: typing.Optional[int] = None, u: typing.Union[int, str] = 0) -> str:
    return f"{c.value} {o} {u!r}"


@task
def collections(xs: typing.List[int], m: typing.Dict[str, float]) -> int:
    return sum(xs) + int(sum(m.values()))


@task
def point(p: Point) -> Point:
    return Point(x=p.x * 10, y=p.y, tags=p.tags + ["seen"])


@task
def model(m: Settings) -> float:
    return m.lr * m.epochs


@task
def count_lines(f: FlyteFile) -> int:
    with open(f) as handle:
        return sum(1 for _ in handle)


@task
def count_files(d: FlyteDirectory) -> int:
    import os

    return len(os.listdir(d))


@task
def with_file(w: WithFile) -> int:
    with open(w.f) as handle:
        return len(handle.read()) * w.n


@task
def frame_rows(df: pd.DataFrame) -> int:
    return len(df)


@task
def dataset_rows(sd: StructuredDataset) -> int:
    return len(sd.open(pd.DataFrame).all())


@workflow
def types_wf(p: Point, c: Color = Color.GREEN) -> Point:
    return point(p=p)
