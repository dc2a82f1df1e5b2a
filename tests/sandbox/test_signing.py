"""Signer: HMAC over method, path, Content-MD5, size limit and expiry; tampering and expiry fail."""

from __future__ import annotations

import datetime as dt
import hashlib
import stat
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from asyncrun.sandbox._signing import SignatureError, SignatureExpiredError, Signer, base64_md5

SECRET = b"s" * 32
MD5 = hashlib.md5(b"payload").digest()
NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=1)


def upload_query(signer: Signer | None = None) -> str:
    return (signer or Signer(SECRET)).sign_upload(
        "p/d/X/file.tar.gz", expires_at=LATER, content_md5=MD5, max_bytes=1000
    )


def replace_param(query: str, key: str, value: str | None) -> str:
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != key]
    if value is not None:
        pairs.append((key, value))
    return urlencode(pairs)


def test_round_trip_returns_what_was_signed() -> None:
    grant = Signer(SECRET).verify("PUT", "p/d/X/file.tar.gz", upload_query(), now=NOW)
    assert grant.method == "PUT"
    assert grant.path == "p/d/X/file.tar.gz"
    assert grant.content_md5 == base64_md5(MD5)
    assert grant.max_bytes == 1000
    assert grant.expires_at == LATER


def test_download_signature_allows_get_and_head_but_not_put() -> None:
    signer = Signer(SECRET)
    query = signer.sign_download("p/d/X/f", expires_at=LATER)
    assert signer.verify("GET", "p/d/X/f", query, now=NOW).content_md5 == ""
    assert signer.verify("HEAD", "p/d/X/f", query, now=NOW).method == "GET"
    with pytest.raises(SignatureError):
        signer.verify("PUT", "p/d/X/f", query, now=NOW)


@pytest.mark.parametrize(
    ("method", "path", "key", "value"),
    [
        ("GET", "p/d/X/file.tar.gz", None, None),  # another method
        ("PUT", "p/d/X/other.tar.gz", None, None),  # another path
        ("PUT", "p/d/X/file.tar.gz/", None, None),
        ("PUT", "p/d/X/file.tar.gz", "md5", base64_md5(hashlib.md5(b"evil").digest())),
        ("PUT", "p/d/X/file.tar.gz", "md5", None),  # binding removed
        ("PUT", "p/d/X/file.tar.gz", "max", "999999999"),
        ("PUT", "p/d/X/file.tar.gz", "max", None),
        ("PUT", "p/d/X/file.tar.gz", "expires", str(int(LATER.timestamp()) + 3600)),
        ("PUT", "p/d/X/file.tar.gz", "expires", None),
        ("PUT", "p/d/X/file.tar.gz", "sig", "0" * 64),
        ("PUT", "p/d/X/file.tar.gz", "sig", None),
        ("PUT", "p/d/X/file.tar.gz", "sig", "not-hex"),
        ("PUT", "p/d/X/file.tar.gz", "expires", "soon"),
    ],
)
def test_tampering_with_any_part_fails(method: str, path: str, key: str | None, value: str | None) -> None:
    query = upload_query()
    if key is not None:
        query = replace_param(query, key, value)
    with pytest.raises(SignatureError) as info:
        Signer(SECRET).verify(method, path, query, now=NOW)
    assert not isinstance(info.value, SignatureExpiredError)


def test_flipping_one_signature_character_fails() -> None:
    query = upload_query()
    sig = dict(parse_qsl(query))["sig"]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    with pytest.raises(SignatureError):
        Signer(SECRET).verify("PUT", "p/d/X/file.tar.gz", replace_param(query, "sig", flipped), now=NOW)


def test_repeated_parameters_are_refused() -> None:
    query = upload_query()
    with pytest.raises(SignatureError):
        Signer(SECRET).verify("PUT", "p/d/X/file.tar.gz", query + "&max=1", now=NOW)


def test_another_secret_does_not_verify() -> None:
    with pytest.raises(SignatureError):
        Signer(b"t" * 32).verify("PUT", "p/d/X/file.tar.gz", upload_query(), now=NOW)


def test_expiry_is_enforced() -> None:
    signer = Signer(SECRET)
    query = upload_query(signer)
    signer.verify("PUT", "p/d/X/file.tar.gz", query, now=LATER - dt.timedelta(seconds=1))
    with pytest.raises(SignatureExpiredError):
        signer.verify("PUT", "p/d/X/file.tar.gz", query, now=LATER)
    # And with the real clock.
    past = signer.sign_upload("p", expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    with pytest.raises(SignatureExpiredError):
        signer.verify("PUT", "p", past)


def test_paths_with_unusual_characters_round_trip() -> None:
    signer = Signer(SECRET)
    path = 'p/d/X/a file "quoted" ?#%&=+ ü'
    query = signer.sign_download(path, expires_at=LATER)
    assert signer.verify("GET", path, query, now=NOW).path == path


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        Signer(b"short")


def test_load_or_create_makes_a_private_key_and_reuses_it(tmp_path: Path) -> None:
    key = tmp_path / "state" / "signing.key"
    first = Signer.load_or_create(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    second = Signer.load_or_create(key)
    # The same secret: a URL signed before a restart still verifies after it.
    second.verify("PUT", "p/d/X/file.tar.gz", upload_query(first), now=NOW)
    assert [p.name for p in key.parent.iterdir()] == ["signing.key"]  # no temp file left


def test_load_or_create_tightens_permissions_and_rejects_garbage(tmp_path: Path) -> None:
    key = tmp_path / "signing.key"
    key.write_text(("ab" * 32) + "\n")
    key.chmod(0o644)
    Signer.load_or_create(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    key.write_text("not hex at all")
    with pytest.raises(ValueError, match="delete it"):
        Signer.load_or_create(key)
