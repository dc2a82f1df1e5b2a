"""OAuth2 tokens kept between processes: one 0600 JSON file per endpoint and client, in a 0700 folder.

The CLI and the daemon share these files, so a token obtained (or refreshed) by one is used by the
other: a waiting CLI never has to sign in again because the daemon polls.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._paths import state_home

if TYPE_CHECKING:
    from pathlib import Path

    from ._config import ClientConfig

EXPIRY_MARGIN = 30.0  # renew this long before expiry (less for tokens that live only seconds)


@dataclass(frozen=True)
class Token:
    """An access token, with the refresh token that renews it if the issuer gave one.

    `expires_at` is wall-clock seconds (None: unknown, used until refused).
    """

    access_token: str = field(repr=False)
    refresh_token: str = field(default="", repr=False)
    expires_at: float | None = None
    issued_at: float = 0.0

    def fresh(self, now: float | None = None) -> bool:
        """Whether the token is still worth sending: not within the renewal margin of its expiry
        (30 s, or a tenth of the lifetime for tokens that live only seconds)."""
        if self.expires_at is None:
            return True
        now = time.time() if now is None else now
        margin = EXPIRY_MARGIN
        if self.issued_at:
            margin = min(margin, (self.expires_at - self.issued_at) / 10)
        return self.expires_at - now > margin

    @classmethod
    def from_response(cls, body: dict[str, Any], previous_refresh: str = "") -> Token:
        """A token from a token endpoint's JSON answer (RFC 6749 §5.1)."""
        now = time.time()
        expires_in = body.get("expires_in")
        expires_at = now + float(expires_in) if isinstance(expires_in, int | float | str) else None
        return cls(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or previous_refresh),
            expires_at=expires_at,
            issued_at=now,
        )


def cache_path(config: ClientConfig) -> Path:
    """The file for this endpoint, flow, client and scopes (another client id gets another file)."""
    key = "\0".join(
        [config.endpoint, config.auth_type, config.client_id, " ".join(config.scopes), config.audience]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return state_home() / "auth" / f"{digest}.json"


def load(path: Path) -> Token | None:
    """The cached token, or None if there is none, it is unreadable, or others could read it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            return None  # not ours alone: ignore it (the next save replaces it)
        try:
            data = json.loads(handle.read())
            return Token(
                access_token=str(data["access_token"]),
                refresh_token=str(data.get("refresh_token") or ""),
                expires_at=float(data["expires_at"]) if data.get("expires_at") is not None else None,
                issued_at=float(data.get("issued_at") or 0.0),
            )
        except (ValueError, KeyError, TypeError):
            return None


def save(path: Path, token: Token, endpoint: str) -> None:
    """Write atomically, created 0600 (never readable by others, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), 0o600)
            json.dump(
                {
                    "endpoint": endpoint,
                    "access_token": token.access_token,
                    "refresh_token": token.refresh_token,
                    "expires_at": token.expires_at,
                    "issued_at": token.issued_at,
                },
                out,
            )
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
