"""Open a blob URI for reading or writing: `s3://…`, `gs://…`, `file://…`, `local://…` or a plain path.

The one place asyncrun touches stored data: the client (code upload checks, outputs, downloads), the
task entry point `asyncrun-execute` (inputs, outputs, File/Directory values) and the sandbox (blobs
and execution data when it keeps them in an object store). Every function blocks: async callers run
them in `anyio.to_thread`.

Local paths and `file://`/`local://` URLs are handled with plain file calls, so a sandbox on a local
folder never imports fsspec; every other scheme goes through fsspec (imported on first use) with the driver of
its extra: `asyncrun[s3]` (s3fs) or `asyncrun[gcs]` (gcsfs). Credentials come from the usual places:
`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`/`AWS_PROFILE` and a custom endpoint in
`FSSPEC_S3_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` (flytekit's `FLYTE_AWS_*`
names are honoured too); `GOOGLE_APPLICATION_CREDENTIALS` for GCS.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._exceptions import BlobNotFoundError, StorageError, StorageExtraError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = [
    "delete",
    "download",
    "exists",
    "filesystem",
    "is_local",
    "join",
    "local_path",
    "read_bytes",
    "credentials_configured",
    "s3_options",
    "scheme",
    "upload",
    "walk_files",
    "write_bytes",
]

# Scheme -> (the extra that installs its driver, fsspec's protocol name).
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}


def scheme(uri: str) -> str:
    """The URI's scheme in lower case (`s3`, `gs`, `file`), or "" for a plain path."""
    head, sep, _ = uri.partition("://")
    return head.lower() if sep and head.isascii() and head.replace("+", "").replace(".", "").isalnum() else ""


# `local://` is fsspec's other name for the local disk: the sandbox's blob URIs use it, because flytekit
# treats it as remote storage (no local-path checks on it) and still reads it with plain file calls.
_LOCAL_SCHEMES = ("file", "local")


def is_local(uri: str) -> bool:
    """Whether the URI is a plain path, a `file://` URL or a `local://` URL."""
    return scheme(uri) in ("", *_LOCAL_SCHEMES)


def local_path(uri: str) -> Path:
    """The path of a plain path, `file://` or `local://` URL."""
    found = scheme(uri)
    if found in _LOCAL_SCHEMES:
        return Path(uri[len(found) + len("://") :])
    return Path(uri)


def join(prefix: str, *parts: str) -> str:
    """`prefix/part/…` with single slashes, for paths and URIs alike."""
    return "/".join([prefix.rstrip("/"), *(part.strip("/") for part in parts if part)])


def s3_options() -> dict[str, Any]:
    """s3fs arguments from the environment: a custom endpoint and flytekit's credential names."""
    env = os.environ
    # No listing cache: objects appear from other processes (task outputs) and must be seen at once.
    options: dict[str, Any] = {"use_listings_cache": False}
    endpoint = (
        env.get("FSSPEC_S3_ENDPOINT_URL")
        or env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
        or env.get("FLYTE_AWS_ENDPOINT")
    )
    if endpoint:
        options["endpoint_url"] = endpoint
    # AWS_* are read by botocore itself; FLYTE_AWS_* are what flytekit's deployments set.
    if "AWS_ACCESS_KEY_ID" not in env and env.get("FLYTE_AWS_ACCESS_KEY_ID"):
        options["key"] = env["FLYTE_AWS_ACCESS_KEY_ID"]
        options["secret"] = env.get("FLYTE_AWS_SECRET_ACCESS_KEY", "")
    return options


def credentials_configured(uri: str) -> bool:
    """Whether this machine is set up to reach the store of `uri` itself (not just via signed URLs).

    Lets a client skip an optional lookup instead of waiting for a driver to give up on
    instance-metadata credentials that are not there.
    """
    env = os.environ
    if scheme(uri) in ("s3", "s3a"):
        names = (
            "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "FLYTE_AWS_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        )  # fmt: skip
        files = env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
        return any(env.get(name) for name in names) or Path(files).expanduser().is_file()
    if scheme(uri) in ("gs", "gcs"):
        adc = Path("~/.config/gcloud/application_default_credentials.json").expanduser()
        return bool(env.get("GOOGLE_APPLICATION_CREDENTIALS")) or adc.is_file()
    return is_local(uri)


def filesystem(uri: str, *, verb: str = "read", options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec file system for a remote URI and the path within it.

    Args:
        uri: a remote URI (`s3://bucket/key`).
        verb: what the caller means to do, for the message when the driver is missing.
        options: fsspec arguments on top of those from the environment (e.g. `endpoint_url`).

    Raises:
        StorageExtraError: the scheme's driver is not installed (one line naming the extra).
    """
    protocol = scheme(uri)
    extra = _EXTRAS.get(protocol)
    try:
        import fsspec

        merged = {**(s3_options() if extra == "s3" else {}), **(options or {})}
        fs = fsspec.filesystem(protocol, **merged)
    except ImportError:
        what = f"asyncrun[{extra}]" if extra else f"the fsspec driver for {protocol}://"
        raise StorageExtraError(f"install {what} to {verb} {protocol}:// URIs") from None
    except ValueError as exc:  # fsspec: "Protocol not known"
        raise StorageError(f"cannot {verb} {uri}: {exc}") from None
    return fs, fs._strip_protocol(uri)


def _failed(verb: str, uri: str, exc: Exception) -> StorageError:
    if isinstance(exc, FileNotFoundError):
        return BlobNotFoundError(f"nothing is stored at {uri}")
    if isinstance(exc, PermissionError):
        return StorageError(f"cannot {verb} {uri}: permission denied; check the store's credentials")
    return StorageError(f"cannot {verb} {uri}: {type(exc).__name__}: {exc}")


def read_bytes(uri: str, *, options: Mapping[str, Any] | None = None) -> bytes:
    """The whole content of the file at `uri`.

    Raises:
        BlobNotFoundError: nothing is stored there.
        StorageError: the store failed or refused.
    """
    try:
        if is_local(uri):
            return local_path(uri).read_bytes()
        fs, path = filesystem(uri, options=options)
        data: bytes = fs.cat_file(path)
        return data
    except StorageError:
        raise
    except Exception as exc:  # drivers raise their own types too (botocore, google.api_core)
        raise _failed("read", uri, exc) from exc


def write_bytes(uri: str, data: bytes, *, options: Mapping[str, Any] | None = None) -> None:
    """Store `data` at `uri`; local files are written to a temp file and renamed, so never seen half."""
    try:
        if is_local(uri):
            path = local_path(uri)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                tmp.write_bytes(data)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)  # a full disk must not also leave half a file behind
                raise
            return
        fs, path_in = filesystem(uri, verb="write", options=options)
        fs.pipe_file(path_in, data)  # one PUT: an object appears whole or not at all
    except StorageError:
        raise
    except Exception as exc:
        raise _failed("write", uri, exc) from exc


def exists(uri: str, *, options: Mapping[str, Any] | None = None) -> bool:
    """Whether a file (or, for a prefix, anything below it) is stored at `uri`."""
    try:
        if is_local(uri):
            return local_path(uri).exists()
        fs, path = filesystem(uri, options=options)
        return bool(fs.exists(path))
    except StorageError:
        raise
    except Exception as exc:
        raise _failed("read", uri, exc) from exc


def download(
    uri: str, dest: Path, *, recursive: bool = False, options: Mapping[str, Any] | None = None
) -> Path:
    """Copy the file (or, with `recursive`, the folder) at `uri` to the local path `dest`.

    Raises:
        BlobNotFoundError: nothing is stored there.
    """
    try:
        if is_local(uri):
            source = local_path(uri)
            if recursive:
                shutil.copytree(source, dest, dirs_exist_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest)
            return dest
        fs, path = filesystem(uri, options=options)
        if recursive:
            files = [name for name in fs.find(path) if not name.endswith("/")]
            if not files:
                raise FileNotFoundError(uri)
            for name in files:
                target = dest / name[len(path.rstrip("/")) + 1 :]
                target.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(name, str(target))
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(path, str(dest))
        return dest
    except StorageError:
        raise
    except Exception as exc:
        raise _failed("read", uri, exc) from exc


def upload(source: Path, uri: str, *, options: Mapping[str, Any] | None = None) -> None:
    """Copy the local file or folder `source` to `uri` (a folder's files keep their relative paths)."""
    try:
        if is_local(uri):
            target = local_path(uri)
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target)
            return
        fs, path = filesystem(uri, verb="write", options=options)
        if source.is_dir():
            for file in walk_files(source):
                fs.put_file(str(file), f"{path.rstrip('/')}/{file.relative_to(source).as_posix()}")
        else:
            fs.put_file(str(source), path)
    except StorageError:
        raise
    except Exception as exc:
        raise _failed("write", uri, exc) from exc


def delete(uri: str, *, options: Mapping[str, Any] | None = None) -> None:
    """Remove the file at `uri`; nothing there is fine."""
    try:
        if is_local(uri):
            local_path(uri).unlink(missing_ok=True)
            return
        fs, path = filesystem(uri, verb="write", options=options)
        if fs.exists(path):
            fs.rm_file(path)
    except StorageError:
        raise
    except Exception as exc:
        raise _failed("delete", uri, exc) from exc


def walk_files(folder: Path) -> Iterator[Path]:
    """Every regular file below `folder`, sorted."""
    yield from sorted(p for p in folder.rglob("*") if p.is_file())
