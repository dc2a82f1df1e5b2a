"""FlyteFile and FlyteDirectory: passed between tasks, and a FlyteFile input."""

import os
import tempfile

from flytekit import task, workflow
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile


@task
def write_file(text: str) -> FlyteFile:
    path = os.path.join(tempfile.mkdtemp(), "note.txt")
    with open(path, "w") as handle:
        handle.write(text)
    return FlyteFile(path)


@task
def read_file(f: FlyteFile) -> str:
    with open(f) as handle:
        return handle.read()


@task
def write_dir(n: int) -> FlyteDirectory:
    folder = tempfile.mkdtemp()
    for i in range(n):
        with open(os.path.join(folder, f"part-{i}.txt"), "w") as handle:
            handle.write(str(i))
    return FlyteDirectory(folder)


@task
def list_dir(d: FlyteDirectory) -> list[str]:
    return sorted(os.listdir(d.download()))


@task
def count_lines(f: FlyteFile) -> int:
    with open(f) as handle:
        return sum(1 for _ in handle)


@workflow
def wf(text: str = "file contents", n: int = 3) -> tuple[str, list[str]]:
    return read_file(f=write_file(text=text)), list_dir(d=write_dir(n=n))


@workflow
def file_input(f: FlyteFile) -> int:
    return count_lines(f=f)
