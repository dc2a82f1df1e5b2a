"""`File` and `Directory`: task inputs and outputs that are paths rather than values.

A value holds a local path (`/tmp/x.csv`) or a URI (`s3://bucket/x.csv`). When a local path was
downloaded from somewhere, `remote_source` remembers where, so sending the value on to another task
needs no upload. Literal conversion lives in `_literals.py`; these classes stay plain Python.
"""

from __future__ import annotations

import os
import re
import stat
from typing import IO, Any

from .._exceptions import InputError

__all__ = ("Directory", "File", "check_local_kind")

# `s3://`, `gs://`, `https://`, `file://`, …; a Windows drive (`C:\`) has no `//` and stays local.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(path: str) -> bool:
    """Whether `path` is a URI with a scheme (`s3://…`) rather than a local path."""
    return _URI.match(path) is not None


def check_local_kind(value: File | Directory, what: str = "") -> None:
    """Refuse a local path that exists but is not what the value says (a regular file, a folder).

    A FIFO, socket or device would block or stream forever when read or uploaded; a missing path is
    left to whoever reads it. URIs other than `file://` are not looked at.

    Raises:
        InputError: the path is a FIFO, socket, device, or the wrong kind of entry.
    """
    path = value.path
    if path.startswith("file://"):
        path = path[len("file://") :]
    elif is_uri(path):
        return
    if "\x00" in path:
        where = f"{what}: " if what else ""
        raise InputError(f"{where}{path!r} is not a valid path: it contains a NUL character")
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    want_folder = isinstance(value, Directory)
    if stat.S_ISDIR(mode) if want_folder else stat.S_ISREG(mode):
        return
    kind = "a folder" if want_folder else "a regular file"
    found = (
        "a folder"
        if stat.S_ISDIR(mode)
        else "a regular file"
        if stat.S_ISREG(mode)
        else "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
    )
    where = f"{what}: " if what else ""
    raise InputError(f"{where}{value.path} is {found}, not {kind}; give {kind}")


class _PathValue(os.PathLike[str]):
    """What `File` and `Directory` share: a path, plus where it came from."""

    __slots__ = ("path", "remote_source")

    def __init__(self, path: str | os.PathLike[str], *, remote_source: str | None = None) -> None:
        self.path: str = os.fspath(path)
        self.remote_source: str | None = remote_source

    @property
    def is_remote(self) -> bool:
        """Whether `path` is a URI (`s3://…`), i.e. there is no local copy to read."""
        return is_uri(self.path)

    @property
    def uri(self) -> str:
        """Where the content lives for other machines: `remote_source` if known, else `path`."""
        return self.remote_source or self.path

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        extra = f", remote_source={self.remote_source!r}" if self.remote_source else ""
        return f"{type(self).__name__}({self.path!r}{extra})"

    # Equality is by kind and path only: `remote_source` is a cache hint, and values read back from
    # JSON (which carries just the path) must compare equal to the originals.
    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _PathValue)
        return self.path == other.path

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.path))


class File(_PathValue):
    """A single file, local or remote.

    `File("data.csv")`, `File("s3://bucket/data.csv")`; `os.fspath(f)` and `f.path` give the path.
    """

    __slots__ = ()

    def open(self, mode: str = "r", **kwargs: Any) -> IO[Any]:
        """Open the local file, as the builtin `open` does.

        Raises:
            ValueError: the path is a remote URI with no local copy.
        """
        if self.is_remote:
            raise ValueError(f"{self.path} is a remote URI; only local files can be opened")
        return open(self.path, mode, **kwargs)


class Directory(_PathValue):
    """A directory (a "multipart blob" in Flyte terms), local or remote."""

    __slots__ = ()
