"""BlobStore: FlyteAdmin's upload layout, confinement to the root, atomic writes, size limit."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from asyncrun.sandbox._blobs import BlobDigestError, BlobPathError, BlobStore, BlobTooLargeError

MD5 = hashlib.md5(b"hello").digest()
B32 = base64.b32encode(MD5).decode()  # 32 chars, ends in "======"


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def test_upload_path_uses_base32_md5_with_padding(store: BlobStore) -> None:
    relative = store.upload_path("flytesnacks", "development", "fast123.tar.gz", content_md5=MD5)
    assert relative == f"flytesnacks/development/{B32}/fast123.tar.gz"
    assert B32.endswith("=")


def test_upload_path_prefers_filename_root_and_keeps_nested_filenames(store: BlobStore) -> None:
    relative = store.upload_path("p", "d", "sub/dir/file.txt", content_md5=MD5, filename_root="ROOT")
    assert relative == "p/d/ROOT/sub/dir/file.txt"
    assert store.upload_path("p", "d", "f", filename_root="R", org="acme") == "acme/p/d/R/f"


@pytest.mark.parametrize(
    ("project", "domain", "filename"),
    [
        ("", "d", "f"),
        ("p", "", "f"),
        ("..", "d", "f"),
        ("p/q", "d", "f"),
        ("p", "d", ""),
        ("p", "d", "../../escape"),
        ("p", "d", "a//b"),
        ("p", "d", "/etc/passwd"),
        ("p", "d", "nul\x00byte"),
        ("p", "d", "x" * 256),
    ],
)
def test_upload_path_rejects_bad_parts(store: BlobStore, project: str, domain: str, filename: str) -> None:
    with pytest.raises(BlobPathError):
        store.upload_path(project, domain, filename, content_md5=MD5)


def test_native_url_is_a_local_storage_uri_inside_the_root(store: BlobStore) -> None:
    # Regression (issue 18): a plain path made flytekit check it as a local file; FlyteAdmin answers a
    # storage URI. `local://` is one flytekit treats as remote and fsspec reads from the disk.
    url = store.native_url("p/d/X/f.txt")
    assert url.startswith("local:///")
    path = Path(url.removeprefix("local://"))
    assert path.is_absolute()
    assert path == store.root / "p" / "d" / "X" / "f.txt"


@pytest.mark.parametrize(
    "relative",
    ["", "/etc/passwd", "..", "../x", "a/../../x", "a/./b", "a//b", "a/", "a\nb"],
)
def test_resolve_rejects_paths_that_are_not_canonical_or_leave_the_root(
    store: BlobStore, relative: str
) -> None:
    with pytest.raises(BlobPathError):
        store.resolve(relative)
    assert issubclass(BlobPathError, ValueError)


def test_resolve_refuses_symlinks_that_lead_out_but_follows_those_inside(
    store: BlobStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "p").mkdir()
    (store.root / "p" / "out").symlink_to(outside)
    (store.root / "p" / "in").symlink_to(store.root / "p")
    with pytest.raises(BlobPathError):
        store.resolve("p/out/file")
    with pytest.raises(BlobPathError):
        store.open_writer("p/out/file")
    assert store.resolve("p/in/file") == store.root / "p" / "file"
    assert list(outside.iterdir()) == []


def test_relative_from_native_accepts_only_paths_inside_the_root(store: BlobStore, tmp_path: Path) -> None:
    store.write_bytes("p/d/X/f", b"data")
    assert store.relative_from_native(store.native_url("p/d/X/f")) == "p/d/X/f"
    plain = str(store.root / "p/d/X/f")
    assert store.relative_from_native("file://" + plain) == "p/d/X/f"
    assert store.relative_from_native(plain) == "p/d/X/f"
    for bad in [
        str(tmp_path / "elsewhere"),
        "relative/path",
        str(store.root),
        store.native_url("p") + "/../../x",
    ]:
        with pytest.raises(BlobPathError):
            store.relative_from_native(bad)


def test_write_commit_is_atomic_and_reports_new_or_replaced(store: BlobStore) -> None:
    with store.open_writer("p/d/X/f") as writer:
        writer.write(b"hel")
        # Nothing is visible under the final name before the commit.
        assert not store.exists("p/d/X/f")
        writer.write(b"lo")
        assert writer.commit(expected_md5=MD5) is True
    assert (store.root / "p/d/X/f").read_bytes() == b"hello"
    assert store.write_bytes("p/d/X/f", b"again") is not None
    assert (store.root / "p/d/X/f").read_bytes() == b"again"
    assert all_files(store.root) == ["p/d/X/f"]


def test_digest_mismatch_keeps_the_old_blob_and_leaves_no_temp_file(store: BlobStore) -> None:
    store.write_bytes("p/d/X/f", b"old")
    with store.open_writer("p/d/X/f") as writer:
        writer.write(b"new")
        with pytest.raises(BlobDigestError):
            writer.commit(expected_md5=MD5)
    assert (store.root / "p/d/X/f").read_bytes() == b"old"
    assert all_files(store.root) == ["p/d/X/f"]


def test_abandoned_writer_leaves_nothing(store: BlobStore) -> None:
    with pytest.raises(RuntimeError), store.open_writer("p/d/X/f") as writer:
        writer.write(b"partial")
        raise RuntimeError("client went away")
    assert all_files(store.root) == []


def test_size_limit_is_enforced_and_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", max_bytes=10)
    with store.open_writer("p/d/X/f") as writer:
        writer.write(b"0123456789")
        with pytest.raises(BlobTooLargeError):
            writer.write(b"!")
    assert all_files(store.root) == []
    # A per-write limit below the store's applies too.
    with store.open_writer("p/d/X/g", max_bytes=3) as writer, pytest.raises(BlobTooLargeError):
        writer.write(b"1234")
    assert all_files(store.root) == []


def test_exists_with_md5(store: BlobStore) -> None:
    assert store.md5_of("p/d/X/f") is None
    assert not store.exists_with_md5("p/d/X/f", MD5)
    store.write_bytes("p/d/X/f", b"hello")
    assert store.exists_with_md5("p/d/X/f", MD5)
    assert not store.exists_with_md5("p/d/X/f", hashlib.md5(b"other").digest())


def test_md5_follows_changes_made_behind_the_stores_back(store: BlobStore) -> None:
    path = store.write_bytes("p/d/X/f", b"hello")
    assert store.md5_of("p/d/X/f") == MD5
    path.write_bytes(b"changed!")
    os.utime(path, ns=(1, 1))  # a different mtime, even on coarse-clock file systems
    assert store.md5_of("p/d/X/f") == hashlib.md5(b"changed!").digest()


def test_blob_files_and_root_are_private(store: BlobStore) -> None:
    path = store.write_bytes("p/d/X/f", b"x")
    assert path.stat().st_mode & 0o077 == 0
    assert store.root.stat().st_mode & 0o077 == 0


def test_native_urls_read_back_as_local_files_without_fsspec(store: BlobStore) -> None:
    from asyncrun import _storage

    store.write_bytes("p/d/X/f", b"data")
    url = store.native_url("p/d/X/f")
    assert _storage.is_local(url)
    assert _storage.local_path(url) == store.root / "p/d/X/f"
    assert _storage.read_bytes(url) == b"data"


@pytest.mark.anyio
async def test_the_client_knows_a_blob_at_a_native_url_is_already_stored(store: BlobStore) -> None:
    """Same-digest uploads are skipped: the client must read `local://` native URLs as local files."""
    from types import SimpleNamespace

    from asyncrun.client._client import Client

    store.write_bytes("p/d/X/f", b"data")
    client = object.__new__(Client)  # only the local-file branch runs, which needs no connection
    assert await client._already_stored(SimpleNamespace(native_url=store.native_url("p/d/X/f")))
    assert not await client._already_stored(SimpleNamespace(native_url=store.native_url("p/d/X/missing")))
