"""HMAC-signed blob URLs: the sandbox's stand-in for S3/GCS pre-signed URLs.

A signature covers the HTTP method, the blob path relative to the root, the Content-MD5 (base64)
the upload must carry, the size limit and the expiry, so changing any of them (or the path) breaks
it. The query string of a signed URL looks like::

    expires=1767225600&md5=1B2M2Y8AsgTpgAmY7PhCfg%3D%3D&max=2147483648&sig=<64 hex>

`md5` and `max` are left out when not bound. The secret lives in a 0600 file next to the sandbox
database, so URLs stay valid across a restart of the sandbox.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Grant", "SignatureError", "SignatureExpiredError", "Signer", "base64_md5"]

log = logging.getLogger("asyncrun.sandbox")

_MIN_SECRET_BYTES = 16
_NEW_SECRET_BYTES = 32
_DOMAIN = "asyncrun-blob-v1"  # versioned, so a future format cannot be confused with this one
_DIGITS = re.compile(r"[0-9]{1,15}")
_HEX_SIG = re.compile(r"[0-9a-f]{64}")


class SignatureError(ValueError):
    """A signed URL that is missing parts, malformed, or does not match its signature."""


class SignatureExpiredError(SignatureError):
    """A correctly signed URL whose expiry has passed."""


@dataclass(frozen=True)
class Grant:
    """What a verified signature allows.

    Attributes:
        method: `PUT` or `GET`.
        path: the blob path relative to the root.
        content_md5: the base64 MD5 an upload must carry; `""` when not bound.
        max_bytes: the largest upload allowed; 0 when not bound.
        expires_at: when the URL stops working (UTC, whole seconds).
    """

    method: str
    path: str
    content_md5: str
    max_bytes: int
    expires_at: dt.datetime


class Signer:
    """Signs and verifies blob URLs with HMAC-SHA256.

    Args:
        secret: the key; at least 16 bytes.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < _MIN_SECRET_BYTES:
            raise ValueError(f"signing secret must have at least {_MIN_SECRET_BYTES} bytes")
        self._secret = secret

    @classmethod
    def load_or_create(cls, path: Path) -> Signer:
        """Read the secret from `path` (hex), creating it with mode 0600 on first use.

        Two processes starting at once end up with the same secret: the file is created under a
        temp name and hard-linked into place, which fails if another process won the race.

        Raises:
            ValueError: the file exists but does not hold a usable secret.
        """
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".signing-key-", dir=path.parent)  # mode 0600
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(_NEW_SECRET_BYTES) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                os.unlink(tmp)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("signing key %s had mode %o; restricting it to 0600", path, mode)
            os.chmod(path, 0o600)
        text = path.read_text(encoding="ascii", errors="replace").strip()
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            secret = b""
        if len(secret) < _MIN_SECRET_BYTES:
            raise ValueError(f"signing key file {path} is not valid; delete it to create a new key")
        return cls(secret)

    def sign(
        self,
        method: str,
        path: str,
        *,
        expires_at: dt.datetime,
        content_md5: str = "",
        max_bytes: int = 0,
    ) -> str:
        """The query string that authorises `method` on `path` until `expires_at`.

        Args:
            method: the HTTP method, e.g. `PUT`.
            path: the blob path relative to the root, exactly as the server will see it decoded.
            expires_at: an aware datetime; fractions of a second are dropped.
            content_md5: base64 MD5 the request must carry in `Content-MD5`; `""` for none.
            max_bytes: the largest body allowed; 0 for no limit beyond the server's.
        """
        expires = int(expires_at.timestamp())
        params = {"expires": str(expires)}
        if content_md5:
            params["md5"] = content_md5
        if max_bytes:
            params["max"] = str(max_bytes)
        params["sig"] = self._mac(method, path, content_md5, max_bytes, expires)
        return urlencode(params)

    def sign_upload(
        self, path: str, *, expires_at: dt.datetime, content_md5: bytes = b"", max_bytes: int = 0
    ) -> str:
        """The query string for a PUT of `path`, bound to the raw MD5 `content_md5` when given."""
        md5_b64 = base64_md5(content_md5) if content_md5 else ""
        return self.sign("PUT", path, expires_at=expires_at, content_md5=md5_b64, max_bytes=max_bytes)

    def sign_download(self, path: str, *, expires_at: dt.datetime) -> str:
        """The query string for a GET of `path`."""
        return self.sign("GET", path, expires_at=expires_at)

    def verify(self, method: str, path: str, query: str, *, now: dt.datetime | None = None) -> Grant:
        """Check a signed request.

        Args:
            method: the request's method (`HEAD` is checked as `GET`).
            path: the decoded blob path the request addresses.
            query: the raw query string.
            now: the current time, for tests; defaults to the clock.

        Returns:
            What the signature allows.

        Raises:
            SignatureExpiredError: the signature is genuine but expired.
            SignatureError: anything else is wrong (missing, repeated or altered parameters).
        """
        method = "GET" if method.upper() == "HEAD" else method.upper()
        try:
            params = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=20)
        except ValueError as exc:
            raise SignatureError("malformed query string") from exc
        if any(len(values) != 1 for values in params.values()):
            raise SignatureError("repeated query parameter")
        values = {key: vals[0] for key, vals in params.items()}
        expires_text = values.get("expires", "")
        max_text = values.get("max", "0")
        sig = values.get("sig", "")
        content_md5 = values.get("md5", "")
        if not (_DIGITS.fullmatch(expires_text) and _DIGITS.fullmatch(max_text) and _HEX_SIG.fullmatch(sig)):
            raise SignatureError("missing or malformed signature parameters")
        expires, max_bytes = int(expires_text), int(max_text)
        expected = self._mac(method, path, content_md5, max_bytes, expires)
        if not hmac.compare_digest(expected.encode("ascii"), sig.encode("ascii")):
            raise SignatureError("signature does not match")
        expires_at = dt.datetime.fromtimestamp(expires, dt.UTC)
        current = now if now is not None else dt.datetime.now(dt.UTC)
        if current >= expires_at:
            raise SignatureExpiredError(f"signed URL expired at {expires_at.isoformat()}")
        return Grant(method, path, content_md5, max_bytes, expires_at)

    def _mac(self, method: str, path: str, content_md5: str, max_bytes: int, expires: int) -> str:
        # JSON keeps the fields unambiguous whatever characters the path holds.
        message = json.dumps(
            [_DOMAIN, method.upper(), path, content_md5, max_bytes, expires],
            separators=(",", ":"),
            ensure_ascii=True,
        )
        return hmac.new(self._secret, message.encode("ascii"), hashlib.sha256).hexdigest()


def base64_md5(raw: bytes) -> str:
    """The `Content-MD5` header form (standard base64) of a raw MD5 digest."""
    return base64.b64encode(raw).decode("ascii")
