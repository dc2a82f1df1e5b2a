"""`asyncrun._storage` against a real S3 server (moto on loopback) and on local paths."""

from __future__ import annotations

import subprocess
import sys

import pytest

from asyncrun import _storage
from asyncrun._exceptions import BlobNotFoundError, StorageError, StorageExtraError

from .conftest import bucket_keys


def test_s3_write_read_exists_and_delete(s3_env, bucket, s3_client) -> None:
    uri = f"s3://{bucket}/a/b/data.bin"
    assert not _storage.exists(uri)
    _storage.write_bytes(uri, b"\x00payload")
    assert _storage.exists(uri)
    assert _storage.read_bytes(uri) == b"\x00payload"
    # The object really is in the bucket, where any S3 client sees it.
    assert bucket_keys(s3_client, bucket) == ["a/b/data.bin"]
    assert s3_client.get_object(Bucket=bucket, Key="a/b/data.bin")["Body"].read() == b"\x00payload"
    _storage.delete(uri)
    assert not _storage.exists(uri)
    _storage.delete(uri)  # nothing there is fine


def test_missing_s3_key_is_a_clear_error(s3_env, bucket) -> None:
    with pytest.raises(BlobNotFoundError, match=rf"^nothing is stored at s3://{bucket}/nope\.pb$"):
        _storage.read_bytes(f"s3://{bucket}/nope.pb")
    with pytest.raises(BlobNotFoundError):
        _storage.download(f"s3://{bucket}/nope.pb", _storage.local_path("/tmp/never-written"))


def test_missing_bucket_is_a_storage_error(s3_env) -> None:
    with pytest.raises(StorageError, match="no-such-bucket-here"):
        _storage.read_bytes("s3://no-such-bucket-here/x")


def test_upload_and_download_folders(s3_env, bucket, tmp_path, s3_client) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "one.txt").write_text("1")
    (source / "sub" / "two.txt").write_text("2")
    _storage.upload(source, f"s3://{bucket}/dir")
    assert bucket_keys(s3_client, bucket) == ["dir/one.txt", "dir/sub/two.txt"]
    back = _storage.download(f"s3://{bucket}/dir", tmp_path / "back", recursive=True)
    assert (back / "one.txt").read_text() == "1" and (back / "sub" / "two.txt").read_text() == "2"
    single = _storage.download(f"s3://{bucket}/dir/one.txt", tmp_path / "single.txt")
    assert single.read_text() == "1"


def test_endpoint_from_fsspec_variable(s3_env, bucket, monkeypatch) -> None:
    # FSSPEC_S3_ENDPOINT_URL wins over AWS_ENDPOINT_URL: a wrong AWS_ENDPOINT_URL is then not used.
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", s3_env)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    _storage.write_bytes(f"s3://{bucket}/via-fsspec-var", b"ok")
    assert _storage.read_bytes(f"s3://{bucket}/via-fsspec-var") == b"ok"


def test_local_paths_and_file_urls(tmp_path) -> None:
    plain = str(tmp_path / "x" / "data.pb")
    _storage.write_bytes(plain, b"abc")
    assert _storage.read_bytes(plain) == b"abc"
    assert _storage.read_bytes(f"file://{plain}") == b"abc"
    assert _storage.exists(f"file://{plain}")
    assert not [p for p in (tmp_path / "x").iterdir() if p.name != "data.pb"]  # no temp file left
    with pytest.raises(BlobNotFoundError, match="nothing is stored at"):
        _storage.read_bytes(str(tmp_path / "missing.pb"))
    assert _storage.join("s3://b/p/", "/x/", "y.pb") == "s3://b/p/x/y.pb"
    assert _storage.is_local("/a/b") and _storage.is_local("file:///a") and not _storage.is_local("gs://b/k")


def test_local_paths_do_not_import_fsspec(tmp_path) -> None:
    code = (
        "import sys; from asyncrun import _storage; p = sys.argv[1]; _storage.write_bytes(p, b'1'); "
        "_storage.read_bytes(p); print('fsspec' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "f")], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("module", "call", "message"),
    [
        ("s3fs", "read_bytes('s3://bucket/key')", "install asyncrun[s3] to read s3:// URIs"),
        ("gcsfs", "write_bytes('gs://bucket/key', b'')", "install asyncrun[gcs] to write gs:// URIs"),
    ],
)
def test_missing_extra_is_one_line(module, call, message) -> None:
    # A Python where the driver cannot be imported: the message names the extra to install.
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from asyncrun import _storage\n"
        "from asyncrun._exceptions import StorageExtraError\n"
        f"try:\n    _storage.{call}\n"
        "except StorageExtraError as exc:\n    print(exc, exc.exit_code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{message} 2"
    assert issubclass(StorageExtraError, StorageError)
