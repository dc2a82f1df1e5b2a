"""The sandbox's blob store: a folder of uploaded files whose paths double as `native_url`s.

Layout (FlyteAdmin's data-proxy layout without the storage prefix; empty parts dropped):
`<root>/[<org>/]<project>/<domain>/<filename_root or base32(md5) with = padding>/<filename>`.

`native_url` is `local://<absolute path>`: a storage URI as FlyteAdmin's are (`s3://…`), not a local
path. flytekit checks local paths it is given (a FlyteDirectory default uploaded as one file comes
back as that file's URL and fails "is not a directory"; `file://` fails `os.path.isfile`), but treats
`local://` as remote storage, which fsspec — in flytekit's task processes too — reads from the disk.

Every path that comes from outside goes through `BlobStore.resolve`, which refuses absolute paths,
`..`, empty or control-character segments, and symlinks that lead out of the root. Writes go to a
temp file in the target's folder, are fsynced and renamed into place, so a reader never sees half a
blob. All methods block (file I/O): async callers run them in `anyio.to_thread`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from asyncrun._storage import is_local, local_path

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "DEFAULT_MAX_BLOB_BYTES",
    "NATIVE_SCHEME",
    "BlobDigestError",
    "BlobPathError",
    "BlobStore",
    "BlobTooLargeError",
    "BlobWriter",
    "split_relative",
    "upload_path",
]

DEFAULT_MAX_BLOB_BYTES = 2 * 1024**3
"""Largest blob accepted unless configured otherwise (2 GiB)."""

NATIVE_SCHEME = "local://"
"""How `native_url`s start: fsspec's name for the local disk."""

_MAX_SEGMENT_BYTES = 255  # NAME_MAX on Linux and macOS
_READ_CHUNK = 1024 * 1024
_MD5_CACHE_SIZE = 4096


class BlobPathError(ValueError):
    """A blob path that is malformed or would leave the blob root."""


class BlobTooLargeError(ValueError):
    """A blob larger than the allowed maximum."""


class BlobDigestError(ValueError):
    """The received bytes do not have the MD5 digest they were announced with."""


def _check_segment(segment: str, what: str) -> None:
    if not segment:
        raise BlobPathError(f"{what} is empty")
    if segment in (".", ".."):
        raise BlobPathError(f"{what} may not be {segment!r}")
    if "/" in segment:
        raise BlobPathError(f"{what} may not contain '/': {segment!r}")
    # Control characters would break the HTTP path and terminals; NUL would break the OS call.
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in segment):
        raise BlobPathError(f"{what} contains a control character: {segment!r}")
    if len(segment.encode("utf-8", "surrogatepass")) > _MAX_SEGMENT_BYTES:
        raise BlobPathError(f"{what} is longer than {_MAX_SEGMENT_BYTES} bytes")


def split_relative(relative: str) -> list[str]:
    """Split a blob path relative to the root into checked segments.

    Args:
        relative: a POSIX-style path such as `"p/d/ABC=/file.txt"`.

    Returns:
        The segments, each non-empty and not `.` or `..`.

    Raises:
        BlobPathError: the path is absolute, empty, or has an invalid segment.
    """
    if not relative:
        raise BlobPathError("blob path is empty")
    if relative.startswith("/"):
        raise BlobPathError(f"blob path must be relative: {relative!r}")
    segments = relative.split("/")
    for segment in segments:
        _check_segment(segment, "blob path segment")
    return segments


def upload_path(
    project: str,
    domain: str,
    filename: str,
    *,
    content_md5: bytes = b"",
    filename_root: str = "",
    org: str = "",
) -> str:
    """The relative path FlyteAdmin's data proxy would choose for an upload.

    Args:
        project: the project; one path segment.
        domain: the domain; one path segment.
        filename: the file name; may contain `/` (flytekit uploads directories file by file).
        content_md5: the raw 16-byte MD5, used as the folder when `filename_root` is empty.
        filename_root: the folder name chosen by the client.
        org: optional organisation, a leading segment when set.

    Returns:
        `[<org>/]<project>/<domain>/<filename_root or base32(md5)>/<filename>`.

    Raises:
        BlobPathError: a part is empty (other than org), contains `/` where it may not, or is
            `.`/`..`.
    """
    folder = filename_root or base64.b32encode(content_md5).decode("ascii")
    parts = [(org, "org")] if org else []
    parts += [(project, "project"), (domain, "domain"), (folder, "filename_root")]
    for value, what in parts:
        _check_segment(value, what)
    for segment in filename.split("/"):
        _check_segment(segment, "filename segment")
    return "/".join([value for value, _ in parts] + [filename])


class BlobStore:
    """Files under one root folder, addressed by checked relative paths.

    Args:
        root: the folder; created (0700) if missing. Symlinks in it are resolved once, here.
        max_bytes: the largest blob `BlobWriter` accepts.
    """

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._root = Path(os.path.realpath(root))
        self.max_bytes = max_bytes
        # (path, inode, size, mtime_ns) -> md5; so repeated CreateUploadLocation calls (flytekit sends
        # each up to 4 times) do not re-hash a large blob.
        self._md5_cache: OrderedDict[tuple[str, int, int, int], bytes] = OrderedDict()
        self._md5_lock = threading.Lock()

    @property
    def root(self) -> Path:
        """The absolute, symlink-free root folder."""
        return self._root

    def upload_path(
        self,
        project: str,
        domain: str,
        filename: str,
        *,
        content_md5: bytes = b"",
        filename_root: str = "",
        org: str = "",
    ) -> str:
        """The relative path FlyteAdmin's data proxy would choose for an upload (see `upload_path`)."""
        return upload_path(
            project, domain, filename, content_md5=content_md5, filename_root=filename_root, org=org
        )

    def native_url(self, relative: str) -> str:
        """The storage URI of a blob: `local://` and its absolute path (see module docs)."""
        split_relative(relative)
        return f"{NATIVE_SCHEME}{self._root / relative}"

    def resolve(self, relative: str) -> Path:
        """The real path of a blob, guaranteed to lie inside the root.

        The blob need not exist. Symlinks inside the root are followed as long as they stay inside.

        Raises:
            BlobPathError: the path is malformed or leads out of the root.
        """
        segments = split_relative(relative)
        real = Path(os.path.realpath(self._root.joinpath(*segments)))
        if real == self._root or not real.is_relative_to(self._root):
            raise BlobPathError(f"blob path leaves the blob root: {relative!r}")
        return real

    def relative_from_native(self, native_url: str) -> str:
        """The relative path of a `native_url` (`local://` or `file://` URL, or plain path) in this store.

        Raises:
            BlobPathError: the URL is not an absolute local path inside the root.
        """
        path = str(local_path(native_url)) if is_local(native_url) else native_url
        if not path.startswith("/"):
            raise BlobPathError(f"not an absolute local path: {native_url!r}")
        real = Path(os.path.realpath(path))
        if real == self._root or not real.is_relative_to(self._root):
            raise BlobPathError(f"not inside the blob root: {native_url!r}")
        relative = real.relative_to(self._root).as_posix()
        split_relative(relative)
        return relative

    def exists(self, relative: str) -> bool:
        """Whether a regular file is stored at `relative`."""
        return self.resolve(relative).is_file()

    def md5_of(self, relative: str) -> bytes | None:
        """The raw MD5 of the stored blob, or None when there is none. Cached by inode/size/mtime."""
        path = self.resolve(relative)
        try:
            with path.open("rb") as f:
                st = os.fstat(f.fileno())
                key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
                with self._md5_lock:
                    cached = self._md5_cache.get(key)
                if cached is not None:
                    return cached
                digest = _md5_stream(f)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        self._remember_md5(key, digest)
        return digest

    def exists_with_md5(self, relative: str, md5: bytes) -> bool:
        """Whether a blob is stored at `relative` with exactly this raw MD5 digest."""
        stored = self.md5_of(relative)
        return stored is not None and hmac.compare_digest(stored, md5)

    def open_writer(self, relative: str, *, max_bytes: int | None = None) -> BlobWriter:
        """Start writing a blob; nothing is visible at `relative` until `BlobWriter.commit`.

        Args:
            relative: where the blob goes.
            max_bytes: a limit below the store's own; the smaller one applies.

        Raises:
            BlobPathError: the path is invalid.
            OSError: the folder cannot be created (e.g. a file is in the way).
        """
        limit = self.max_bytes if max_bytes is None else min(max_bytes, self.max_bytes)
        return BlobWriter(self, self.resolve(relative), limit)

    def write_bytes(self, relative: str, data: bytes, *, expected_md5: bytes | None = None) -> Path:
        """Store `data` atomically at `relative` and return its path."""
        with self.open_writer(relative) as writer:
            writer.write(data)
            writer.commit(expected_md5=expected_md5)
        return writer.path

    def _remember_md5(self, key: tuple[str, int, int, int], digest: bytes) -> None:
        with self._md5_lock:
            self._md5_cache[key] = digest
            self._md5_cache.move_to_end(key)
            while len(self._md5_cache) > _MD5_CACHE_SIZE:
                self._md5_cache.popitem(last=False)


class BlobWriter:
    """One blob being written: bytes go to a temp file beside the target until `commit()`.

    Use as a context manager: leaving the block without a commit removes the temp file.
    """

    def __init__(self, store: BlobStore, target: Path, max_bytes: int) -> None:
        self._store = store
        self.path = target
        self.max_bytes = max_bytes
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Same folder as the target, so the final rename is atomic (same file system).
        fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".tmp", dir=target.parent)
        self._tmp = Path(tmp)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._done = False

    @property
    def md5(self) -> bytes:
        """The raw MD5 of the bytes written so far."""
        return self._md5.digest()

    def write(self, data: bytes) -> None:
        """Append bytes.

        Raises:
            BlobTooLargeError: the blob would exceed `max_bytes`; the writer is aborted.
        """
        if self._file is None:
            raise ValueError("blob writer is closed")
        if self.size + len(data) > self.max_bytes:
            self.abort()
            raise BlobTooLargeError(f"blob is larger than {self.max_bytes} bytes")
        self._file.write(data)
        self._md5.update(data)
        self.size += len(data)

    def commit(self, *, expected_md5: bytes | None = None) -> bool:
        """Check the digest, flush to disk and rename into place.

        Args:
            expected_md5: when given, the raw MD5 the content must have.

        Returns:
            True when the blob is new, False when it replaced an existing one.

        Raises:
            BlobDigestError: the content has another MD5; the writer is aborted.
            OSError: the rename failed (e.g. a folder is in the way); the writer is aborted.
        """
        if self._file is None:
            raise ValueError("blob writer is closed")
        digest = self._md5.digest()
        if expected_md5 is not None and not hmac.compare_digest(digest, expected_md5):
            self.abort()
            raise BlobDigestError("content does not match its MD5")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            created = not self.path.exists()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._done = True
        _fsync_dir(self.path.parent)
        st = self.path.stat()
        self._store._remember_md5((str(self.path), st.st_ino, st.st_size, st.st_mtime_ns), digest)
        return created

    def abort(self) -> None:
        """Drop everything written; the target is left as it was. Safe to call twice."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if not self._done:
            self._done = True
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


def _md5_stream(f: BinaryIO) -> bytes:
    digest = hashlib.md5(usedforsecurity=False)
    while chunk := f.read(_READ_CHUNK):
        digest.update(chunk)
    return digest.digest()


def _fsync_dir(path: Path) -> None:
    # The rename itself is only durable once the folder entry is on disk.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
