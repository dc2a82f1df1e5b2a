"""The code package: which files `--copy auto|all` ships, and a byte-for-byte reproducible archive."""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import io
import os
import sys
import tarfile
import types
from pathlib import Path

import pytest

from asyncrun._exceptions import UsageError
from asyncrun._execute import unpack
from asyncrun.client._package import ENTRY_MTIME, CodePackage, build_package, select_files


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def module(name: str, file: Path | str | None) -> types.ModuleType:
    mod = types.ModuleType(name)
    if file is not None:
        mod.__file__ = str(file)
    return mod


def names(paths: list[Path]) -> list[str]:
    return [p.as_posix() for p in paths]


# ---------------------------------------------------------------------------------------------
# --copy auto


def test_auto_ships_loaded_modules_under_the_root_only(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(
        root,
        {
            "app.py": "",
            "pkg/__init__.py": "",
            "pkg/util.py": "",
            "pkg/unused.py": "",
            "data.csv": "a,b",
            ".gitignore": "app.py\npkg/\n",  # ignore files do not apply to auto: the code ran
        },
    )
    write(tmp_path, {"elsewhere/lib.py": ""})
    modules = [
        module("app", root / "app.py"),
        module("pkg", root / "pkg" / "__init__.py"),
        module("pkg.util", root / "pkg" / "util.py"),
        module("pkg.util_again", root / "pkg" / ".." / "pkg" / "util.py"),  # same file, other spelling
        module("lib", tmp_path / "elsewhere" / "lib.py"),
        module("builtin_like", None),
        module("gone", root / "deleted.py"),
        os,  # the standard library
        sys.modules["asyncrun.client._package"],  # asyncrun itself
    ]
    assert names(select_files(root, "auto", modules)) == ["app.py", "pkg/__init__.py", "pkg/util.py"]


def lazily_imported(name: str, file: Path) -> types.ModuleType:
    """A module as `importlib.util.LazyLoader` leaves it (flytekit imports joblib so): not run yet."""
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    lazy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lazy)
    return lazy


def test_auto_does_not_run_a_lazily_imported_module(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    marker = tmp_path / "ran"
    write(root, {"app.py": "", "heavy.py": f"open({str(marker)!r}, 'w').close()\n"})
    heavy = lazily_imported("heavy_not_run", root / "heavy.py")
    files = select_files(root, "auto", [module("app", root / "app.py"), heavy])
    assert not marker.exists()  # reading its file name did not import it
    assert names(files) == ["app.py", "heavy.py"]


def test_auto_skips_a_virtualenv_inside_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "proj"
    write(root, {"app.py": "", "venv/lib/python3/site-packages/dep.py": ""})
    monkeypatch.setattr(sys, "prefix", str(root / "venv"))
    modules = [module("app", root / "app.py"), module("dep", root / "venv/lib/python3/site-packages/dep.py")]
    assert names(select_files(root, "auto", modules)) == ["app.py"]


def test_auto_keeps_a_project_that_lives_inside_the_interpreter_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A system Python with prefix /usr and a checkout in /usr/src/app must still ship the app.
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setattr(sys, "base_prefix", str(tmp_path))
    monkeypatch.setattr(sys, "exec_prefix", str(tmp_path))
    root = tmp_path / "src" / "app"
    write(root, {"main.py": ""})
    assert names(select_files(root, "auto", [module("main", root / "main.py")])) == ["main.py"]


def test_auto_defaults_to_sys_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "proj"
    write(root, {"auto_default_probe.py": ""})
    monkeypatch.setitem(sys.modules, "auto_default_probe", module("x", root / "auto_default_probe.py"))
    assert names(select_files(root, "auto")) == ["auto_default_probe.py"]


# ---------------------------------------------------------------------------------------------
# --copy all


def test_all_walks_the_root_and_skips_tool_folders(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.py": "",
            "b/c.txt": "",
            ".hidden.cfg": "",
            ".git/HEAD": "",
            ".venv/bin/python": "",
            "b/__pycache__/c.cpython-311.pyc": "",
            "b/stale.pyc": "",
        },
    )
    (tmp_path / "empty").mkdir()
    assert names(select_files(tmp_path, "all")) == [".hidden.cfg", "a.py", "b/c.txt"]


def test_all_applies_gitignore_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".gitignore": "*.log\n!keep.log\nbuild/\n/top.txt\ndata\n",
            "x.log": "",
            "keep.log": "",
            "build/out.py": "",
            "src/build/deep.py": "",
            "top.txt": "",
            "src/top.txt": "",
            "data/big.bin": "",
            "src/main.py": "",
        },
    )
    assert names(select_files(tmp_path, "all")) == [".gitignore", "keep.log", "src/main.py", "src/top.txt"]


def test_all_nested_ignore_files_scope_and_override(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            ".gitignore": "*.tmp\n",
            "a.tmp": "",
            "sub/.gitignore": "!wanted.tmp\nlocal.txt\n",
            "sub/wanted.tmp": "",
            "sub/other.tmp": "",
            "sub/local.txt": "",
            "local.txt": "",  # the sub/ rule does not reach up
            ".asyncrunignore": "secrets/\n",
            "secrets/key.pem": "",
            "sub/.asyncrunignore": "generated_*.py\n",
            "sub/generated_1.py": "",
            "sub/mod.py": "",
        },
    )
    assert names(select_files(tmp_path, "all")) == [
        ".asyncrunignore",
        ".gitignore",
        "local.txt",
        "sub/.asyncrunignore",
        "sub/.gitignore",
        "sub/mod.py",
        "sub/wanted.tmp",
    ]


def test_asyncrunignore_wins_over_gitignore_in_the_same_folder(tmp_path: Path) -> None:
    write(tmp_path, {".gitignore": "*.cfg\n", ".asyncrunignore": "!ship.cfg\n", "ship.cfg": "", "no.cfg": ""})
    assert "ship.cfg" in names(select_files(tmp_path, "all"))
    assert "no.cfg" not in names(select_files(tmp_path, "all"))


def test_all_does_not_follow_symlinks_out_of_the_project(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root, {"pkg/mod.py": "", "main.py": ""})
    write(tmp_path, {"outside/secret.txt": "", "outside_file.txt": ""})
    (root / "linked_outside").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "outside_file.txt").symlink_to(tmp_path / "outside_file.txt")
    (root / "alias").symlink_to(root / "pkg", target_is_directory=True)
    (root / "main_alias.py").symlink_to("main.py")
    (root / "dangling.py").symlink_to("missing.py")
    found = names(select_files(root, "all"))
    assert found == ["alias", "main.py", "main_alias.py", "pkg/mod.py"]  # links inside kept as links


def test_unknown_mode_and_missing_root_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="copy mode"):
        select_files(tmp_path, "some")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not a folder"):
        select_files(tmp_path / "nope", "all")


# ---------------------------------------------------------------------------------------------
# The archive


def build(root: Path, out: Path, mode: str = "all") -> CodePackage:
    return build_package(root, select_files(root, mode), out)  # type: ignore[arg-type]


PROJECT = {
    "hello.py": "print('hi')\n",
    "pkg/__init__.py": "",
    "pkg/run.sh": "#!/bin/sh\n",
    "pkg/data.json": "{}",
}


def test_same_files_give_the_same_bytes_anywhere_and_anytime(tmp_path: Path) -> None:
    first, second = tmp_path / "checkout-one", tmp_path / "elsewhere" / "deeper" / "two"
    for root in (first, second):
        write(root, PROJECT)
        (root / "pkg" / "run.sh").chmod(0o755)
    # Different mtimes, permissions (beyond the executable bit) and creation order.
    for i, path in enumerate(sorted(second.rglob("*"))):
        os.utime(path, (1_000_000 + i, 2_000_000_000 - i))
    (second / "hello.py").chmod(0o600)
    (second / "pkg" / "run.sh").chmod(0o700)
    one = build(first, tmp_path / "out1")
    two = build(second, tmp_path / "out2")
    assert one.path.read_bytes() == two.path.read_bytes()
    assert one.filename == two.filename == f"fast{one.md5_hex}.tar.gz"
    again = build(first, tmp_path / "out1")
    assert again == one  # rebuilt in place: same name, same digest


def test_content_a_name_or_the_executable_bit_changes_the_digest(tmp_path: Path) -> None:
    write(tmp_path / "p", PROJECT)
    base = build(tmp_path / "p", tmp_path / "o").md5
    (tmp_path / "p" / "hello.py").write_text("print('hi!')\n")
    changed = build(tmp_path / "p", tmp_path / "o").md5
    (tmp_path / "p" / "pkg" / "run.sh").chmod(0o755)
    executable = build(tmp_path / "p", tmp_path / "o").md5
    (tmp_path / "p" / "hello.py").rename(tmp_path / "p" / "hallo.py")
    renamed = build(tmp_path / "p", tmp_path / "o").md5
    assert len({base, changed, executable, renamed}) == 4


def test_archive_headers_are_normalized(tmp_path: Path) -> None:
    write(tmp_path / "p", PROJECT)
    (tmp_path / "p" / "pkg" / "run.sh").chmod(0o775)
    package = build(tmp_path / "p", tmp_path / "o")
    data = package.path.read_bytes()
    # gzip: no FNAME/FEXTRA/FCOMMENT flags and mtime 0 (RFC 1952 header bytes 3..7).
    assert data[:3] == b"\x1f\x8b\x08" and data[3] == 0 and data[4:8] == b"\0\0\0\0"
    assert package.size == len(data)
    assert package.md5 == hashlib.md5(data).digest()
    assert package.md5_b64 == base64.b64encode(package.md5).decode()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == list(package.files) == sorted(PROJECT)
        for m in members:
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.pax_headers) == (ENTRY_MTIME, 0, 0, "", "", {})
            assert m.mode == (0o755 if m.name == "pkg/run.sh" else 0o644)
        assert tar.extractfile("hello.py").read() == b"print('hi')\n"  # type: ignore[union-attr]
    assert b"PaxHeader" not in gzip.decompress(data)
    assert str(tmp_path).encode() not in gzip.decompress(data)


def test_unusual_names_round_trip_through_the_task_side_unpacker(tmp_path: Path) -> None:
    long_dir = "d" * 120
    files = {
        "with space.py": "a",
        "ünïcødé/模块.py": "b",
        f"{long_dir}/{'f' * 120}.py": "c",
        "-leading-dash.txt": "d",
    }
    write(tmp_path / "p", files)
    (tmp_path / "p" / "link.py").symlink_to("with space.py")
    package = build(tmp_path / "p", tmp_path / "o")
    dest = tmp_path / "unpacked"
    unpack(str(package.path), dest)
    for name, text in files.items():
        assert (dest / name).read_text() == text
    assert (dest / "link.py").is_symlink() and (dest / "link.py").read_text() == "a"


def test_files_outside_the_root_are_refused(tmp_path: Path) -> None:
    write(tmp_path, {"p/a.py": "", "secret.txt": ""})
    root = tmp_path / "p"
    with pytest.raises(UsageError, match="inside the project root"):
        build_package(root, [Path("../secret.txt")], tmp_path / "o")
    with pytest.raises(UsageError, match="outside the project root"):
        build_package(root, [tmp_path / "secret.txt"], tmp_path / "o")
    package = build_package(root, [root / "a.py", Path("a.py")], tmp_path / "o")
    assert package.files == ("a.py",)  # absolute inside the root is fine; duplicates collapse


def test_a_loaded_module_linked_in_from_outside_is_shipped_as_content(tmp_path: Path) -> None:
    write(tmp_path, {"shared/common.py": "X = 1\n", "p/main.py": ""})
    root = tmp_path / "p"
    (root / "common.py").symlink_to(tmp_path / "shared" / "common.py")
    package = build_package(root, [Path("common.py"), Path("main.py")], tmp_path / "o")
    with tarfile.open(package.path) as tar:
        member = tar.getmember("common.py")
        assert member.isfile() and tar.extractfile(member).read() == b"X = 1\n"  # type: ignore[union-attr]


def test_an_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path, {"p/a.py": ""})
    with pytest.raises(UsageError, match="cannot package"):
        build_package(tmp_path / "p", [Path("missing.py")], tmp_path / "o")
    os.mkfifo(tmp_path / "p" / "pipe")
    with pytest.raises(UsageError, match="not a regular file"):
        build_package(tmp_path / "p", [Path("pipe")], tmp_path / "o")
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.startswith(".fast-")]  # temp file removed


class NoNamespace:
    """As cffi's compiled `lib` objects in sys.modules: passes for a module, has no __dict__."""

    __slots__ = ()

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return types.ModuleType


def test_auto_passes_over_module_entries_without_a_namespace(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root, {"app.py": ""})
    entries = [module("app", root / "app.py"), NoNamespace(), object()]
    assert isinstance(entries[1], types.ModuleType)
    assert names(select_files(root, "auto", entries)) == ["app.py"]  # type: ignore[arg-type]
