"""The sandbox's blobs in S3 (or any S3-compatible server), as a real Flyte deployment keeps them.

`asyncrun sandbox serve --blob-store s3://bucket/prefix [--s3-endpoint URL]`: uploads land at
`s3://bucket/prefix/<data-proxy path>` (the same relative layout as the local `BlobStore`), signed URLs
are S3 presigned URLs (botocore, SigV4, the PUT bound to its Content-MD5), and `native_url`s are
`s3://…`. Execution data lives under `s3://bucket/prefix/metadata/…` and task outputs under
`…/raw/…` (see `Runner`). Credentials are botocore's usual chain (`AWS_ACCESS_KEY_ID`, profiles, …);
the endpoint is `--s3-endpoint`, else the environment (`_storage.s3_options`).

All methods block (network calls): async callers run them in `anyio.to_thread`.
"""

from __future__ import annotations

import binascii
import datetime as dt
import os
import threading
from typing import Any

from .._exceptions import StorageExtraError, UsageError
from .._storage import join, s3_options, scheme
from ._blobs import DEFAULT_MAX_BLOB_BYTES, BlobPathError, split_relative, upload_path

__all__ = ["ObjectBlobStore"]

# S3 refuses a single PUT above 5 GiB.
_S3_MAX_PUT_BYTES = 5 * 1024**3


class ObjectBlobStore:
    """Blobs under one `s3://bucket/prefix`, addressed by the same checked relative paths as `BlobStore`.

    Args:
        base_uri: `s3://bucket` or `s3://bucket/some/prefix`.
        endpoint_url: a custom S3 endpoint (MinIO, moto, …); "" means the environment's or AWS's.
        max_bytes: the largest upload a presigned URL is handed out for.

    Raises:
        UsageError: `base_uri` is not an `s3://` URI with a bucket.
    """

    def __init__(
        self, base_uri: str, *, endpoint_url: str = "", max_bytes: int = DEFAULT_MAX_BLOB_BYTES
    ) -> None:
        if scheme(base_uri) != "s3":
            raise UsageError(f"--blob-store must be an s3://bucket[/prefix] URI, got {base_uri!r}")
        bucket, _, prefix = base_uri[len("s3://") :].partition("/")
        if not bucket:
            raise UsageError(f"--blob-store names no bucket: {base_uri!r}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.base_uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.endpoint_url = endpoint_url or str(s3_options().get("endpoint_url", ""))
        self.max_bytes = min(max_bytes, _S3_MAX_PUT_BYTES)
        self._client: Any = None
        self._client_lock = threading.Lock()

    # ---- what the runner and task processes need ---------------------------------------------

    @property
    def storage_options(self) -> dict[str, Any]:
        """fsspec (s3fs) arguments for `_storage` calls against this store."""
        return {"endpoint_url": self.endpoint_url} if self.endpoint_url else {}

    def task_environment(self) -> dict[str, str]:
        """Variables that let a task process reach this store: asyncrun-execute, fsspec and flytekit."""
        env: dict[str, str] = {}
        if self.endpoint_url:
            for name in ("AWS_ENDPOINT_URL", "FSSPEC_S3_ENDPOINT_URL", "FLYTE_AWS_ENDPOINT"):
                env[name] = self.endpoint_url
        # flytekit reads its own names for static keys; pass the sandbox's along when it has them.
        for ours, flytes in (
            ("AWS_ACCESS_KEY_ID", "FLYTE_AWS_ACCESS_KEY_ID"),
            ("AWS_SECRET_ACCESS_KEY", "FLYTE_AWS_SECRET_ACCESS_KEY"),
        ):
            if os.environ.get(ours) and not os.environ.get(flytes):
                env[flytes] = os.environ[ours]
        return env

    def uri(self, *parts: str) -> str:
        """`s3://bucket/prefix/part/…`."""
        return join(self.base_uri, *parts)

    # ---- the BlobStore interface the data proxy uses -------------------------------------------

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
        """The relative path FlyteAdmin's data proxy would choose (`_blobs.upload_path`)."""
        return upload_path(
            project, domain, filename, content_md5=content_md5, filename_root=filename_root, org=org
        )

    def native_url(self, relative: str) -> str:
        """`s3://bucket/prefix/<relative>`."""
        split_relative(relative)
        return self.uri(relative)

    def relative_from_native(self, native_url: str) -> str:
        """The relative path of an `s3://` URL inside this store.

        Raises:
            BlobPathError: the URL is not under this store's bucket and prefix.
        """
        base = self.base_uri.rstrip("/") + "/"
        if not native_url.startswith(base):
            raise BlobPathError(f"not inside the blob store {self.base_uri}: {native_url!r}")
        relative = native_url[len(base) :]
        split_relative(relative)
        return relative

    def exists(self, relative: str) -> bool:
        """Whether an object is stored at `relative`."""
        return self._head(relative) is not None

    def md5_of(self, relative: str) -> bytes | None:
        """The raw MD5 of the stored object (its ETag for single-part uploads), or None when there is none.

        A multipart object's ETag is no MD5; it counts as "none" so the client may store it again.
        """
        head = self._head(relative)
        if head is None:
            return None
        etag = str(head.get("ETag", "")).strip('"')
        try:
            return binascii.unhexlify(etag) if len(etag) == 32 else None
        except binascii.Error:
            return None

    def presigned_put(self, relative: str, *, expires_at: dt.datetime, content_md5: bytes) -> str:
        """A presigned PUT URL; with `content_md5` the request must carry exactly that Content-MD5."""
        import base64

        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(relative)}
        if content_md5:
            params["ContentMD5"] = base64.b64encode(content_md5).decode()
        return str(
            self.client.generate_presigned_url(
                "put_object", Params=params, ExpiresIn=_seconds_until(expires_at)
            )
        )

    def presigned_get(self, relative: str, *, expires_at: dt.datetime) -> str:
        """A presigned GET URL."""
        params = {"Bucket": self.bucket, "Key": self._key(relative)}
        return str(
            self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=_seconds_until(expires_at)
            )
        )

    # ---- botocore ----------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """A botocore S3 client (made on first use; botocore clients are thread-safe)."""
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        try:
            import botocore.config
            import botocore.session
        except ImportError:
            raise StorageExtraError("install asyncrun[s3] to keep sandbox blobs in s3://") from None
        session = botocore.session.get_session()
        region = session.get_config_variable("region") or "us-east-1"
        # Path-style addressing: a custom endpoint (an IP, a MinIO host) has no per-bucket DNS names.
        config = botocore.config.Config(
            signature_version="s3v4", s3={"addressing_style": "path" if self.endpoint_url else "auto"}
        )
        return session.create_client(
            "s3", region_name=region, endpoint_url=self.endpoint_url or None, config=config
        )

    def _key(self, relative: str) -> str:
        split_relative(relative)
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _head(self, relative: str) -> dict[str, Any] | None:
        import botocore.exceptions

        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=self._key(relative))
        except botocore.exceptions.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head


def _seconds_until(expires_at: dt.datetime) -> int:
    return max(1, int((expires_at - dt.datetime.now(dt.UTC)).total_seconds()))
