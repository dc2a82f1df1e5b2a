"""The code package of a remote run: which files, and a deterministic `fast<md5>.tar.gz` of them.

The archive only depends on the relative paths and contents of the files (and their executable bit):
not on the absolute path of the checkout, file mtimes, owners or the umask. So the same code gives the
same archive name and digest everywhere, the upload can be skipped when that digest is stored, and the
registration version derived from it (see `_serialize`) does not change when the checkout moves
(pyflyte-run.md §9 quirk 11).

Everything here blocks (file walks, tar, gzip): call it from `anyio.to_thread.run_sync`.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import os
import site
import stat
import sys
import sysconfig
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Literal

from .._exceptions import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import ModuleType

    from pathspec import GitIgnoreSpec

__all__ = ("CodePackage", "build_package", "select_files")

# Folders never worth shipping, whatever the ignore files say.
SKIPPED_DIRS = frozenset({".git", "__pycache__", ".venv"})
SKIPPED_SUFFIXES = (".pyc",)
IGNORE_FILES = (".gitignore", ".asyncrunignore")  # later files win over earlier ones in one folder
# 1980-01-01T00:00:00Z: the earliest time a zip can hold, which flytekit uses for its entries too.
ENTRY_MTIME = 315532800
_CHUNK = 1 << 20


@dataclass(frozen=True)
class CodePackage:
    """A built code archive.

    Attributes:
        path: where the archive was written; its name is `fast<md5hex>.tar.gz`.
        md5: the 16-byte MD5 digest of the archive bytes (what `Content-MD5` and the
            data proxy's `content_md5` carry).
        size: the archive size in bytes.
        files: the archived paths, relative to the project root, POSIX-style, sorted.
    """

    path: Path
    md5: bytes
    size: int
    files: tuple[str, ...]

    @property
    def md5_hex(self) -> str:
        """The digest as 32 lowercase hex characters."""
        return self.md5.hex()

    @property
    def md5_b64(self) -> str:
        """The digest in standard base64, as the `Content-MD5` header wants it."""
        return base64.b64encode(self.md5).decode("ascii")

    @property
    def filename(self) -> str:
        """`fast<md5hex>.tar.gz`, the name flytekit gives the same kind of archive."""
        return self.path.name


# ---------------------------------------------------------------------------------------------
# Which files


def select_files(
    root: Path,
    mode: Literal["auto", "all"],
    modules: Iterable[ModuleType] | None = None,
) -> list[Path]:
    """The files of the project at `root` to ship, as sorted, unique paths relative to `root`.

    Args:
        root: the project root (the folder whose contents are importable by module name).
        mode: `"auto"` ships the source of every loaded module under `root` (ignore files do not
            apply: the code ran, so it is needed); `"all"` ships every file under `root` except
            `.git`, `.venv`, `__pycache__`, `*.pyc` and what `.gitignore` / `.asyncrunignore` files
            (in any folder, with git's rules) exclude. Symlinks are never followed: one that
            points inside the project is shipped as a link, any other is left out.
        modules: the modules to consider for `"auto"` (default: `sys.modules`).

    Raises:
        UsageError: `root` is not a folder, or `mode` is unknown.
    """
    if not root.is_dir():
        raise UsageError(f"project root {root} is not a folder")
    if mode == "auto":
        found = _loaded_module_files(root, sys.modules.values() if modules is None else modules)
    elif mode == "all":
        found = set(_walk(root))
    else:
        raise UsageError(f"unknown copy mode {mode!r} (expected 'auto' or 'all')")
    return sorted(found, key=lambda p: p.as_posix())


def _loaded_module_files(root: Path, modules: Iterable[ModuleType]) -> set[Path]:
    roots = _same_folder_spellings(root)
    excluded = _environment_dirs(roots)
    root_prefixes = tuple(str(r) + os.sep for r in roots)
    excluded_prefixes = tuple(str(e) + os.sep for e in excluded)
    found: set[Path] = set()
    for module in list(modules):  # sys.modules may change while we look (imports in other threads)
        # Read __file__ as stored: asking a lazily imported module (importlib.util.LazyLoader, as
        # flytekit imports joblib) for any attribute would import it, and what it imports.
        try:
            file = object.__getattribute__(module, "__dict__").get("__file__")
        except AttributeError:
            continue  # no namespace of its own (cffi's compiled `lib` objects): no source file either
        if not isinstance(file, str) or not file:
            continue  # builtins, namespace packages, frozen modules
        absolute = os.path.abspath(file)
        # Installed code (most of sys.modules) is ruled out by a string test, before any syscall.
        if absolute.startswith(excluded_prefixes) and not absolute.startswith(root_prefixes):
            continue
        path = Path(absolute)
        relative = _relative_to_any(path, roots)
        if relative is None:
            continue
        if not path.is_file() or any(_is_within(p, excluded) for p in (path, Path(os.path.realpath(path)))):
            continue
        found.add(relative)
    return found


def _same_folder_spellings(root: Path) -> tuple[Path, ...]:
    # A module's __file__ follows the sys.path entry it came from, which may spell the root
    # through a symlink (macOS /tmp → /private/tmp) or not.
    spellings = [Path(os.path.abspath(root)), root.resolve()]
    return tuple(dict.fromkeys(spellings))


def _environment_dirs(roots: tuple[Path, ...]) -> tuple[Path, ...]:
    """Folders holding installed code: interpreter prefixes, stdlib, site-packages, asyncrun."""
    dirs: list[str] = [str(Path(__file__).resolve().parents[1])]  # the asyncrun package
    dirs += [p for p in sysconfig.get_paths().values() if p]
    with contextlib.suppress(AttributeError):  # site may be stubbed out (python -S, embedders)
        dirs += site.getsitepackages()
    with contextlib.suppress(AttributeError):
        dirs.append(site.getusersitepackages())
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        # A project checked out *inside* a prefix (say /usr/src/app with a system Python) must not
        # lose all its files; the prefix's library folders are excluded above anyway.
        if not any(_is_within(r, (Path(prefix),)) for r in roots):
            dirs.append(prefix)
    resolved = {Path(os.path.abspath(d)) for d in dirs} | {Path(os.path.realpath(d)) for d in dirs}
    return tuple(sorted(resolved))


def _is_within(path: Path, folders: Iterable[Path]) -> bool:
    return any(path == folder or folder in path.parents for folder in folders)


def _relative_to_any(path: Path, roots: Iterable[Path]) -> Path | None:
    for candidate in (path, Path(os.path.realpath(path))):
        for root in roots:
            if candidate != root and root in candidate.parents:
                return candidate.relative_to(root)
    return None


def _walk(root: Path) -> Iterator[Path]:
    real_root = root.resolve()
    # (folder relative to root, its spec), outermost first; git lets deeper files override.
    specs: list[tuple[PurePosixPath, GitIgnoreSpec]] = []
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        here = PurePosixPath(Path(folder).relative_to(root).as_posix())
        specs = [(base, spec) for base, spec in specs if base in _lineage(here)]
        spec = _load_ignore_spec(Path(folder))
        if spec is not None:
            specs.append((here, spec))
        kept_dirs = []
        for name in sorted(dirnames):
            path = here / name
            if name in SKIPPED_DIRS or _ignored(path, specs, is_dir=True):
                continue
            if os.path.islink(os.path.join(folder, name)):
                if _link_inside(Path(folder, name), real_root) and not _ignored(path, specs, is_dir=False):
                    yield Path(path)  # shipped as a link, like git does; never entered
                continue
            kept_dirs.append(name)
        dirnames[:] = kept_dirs  # prune: git never re-includes files below an excluded folder
        for name in sorted(filenames):
            path = here / name
            full = Path(folder, name)
            if name.endswith(SKIPPED_SUFFIXES) or _ignored(path, specs, is_dir=False):
                continue
            if full.is_symlink():
                if _link_inside(full, real_root):
                    yield Path(path)
            elif full.is_file():  # sockets, fifos and devices are not code
                yield Path(path)


def _lineage(path: PurePosixPath) -> set[PurePosixPath]:
    return {path, *path.parents}


def _load_ignore_spec(folder: Path) -> GitIgnoreSpec | None:
    lines: list[str] = []
    for name in IGNORE_FILES:
        file = folder / name
        if file.is_file():
            lines += file.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines:
        return None
    from pathspec import GitIgnoreSpec  # only `--copy all` pays for the import

    return GitIgnoreSpec.from_lines(lines)


def _ignored(path: PurePosixPath, specs: list[tuple[PurePosixPath, GitIgnoreSpec]], *, is_dir: bool) -> bool:
    # The deepest ignore file with an opinion decides (a `!pattern` there re-includes).
    for base, spec in reversed(specs):
        relative = path.relative_to(base).as_posix() if base != PurePosixPath(".") else path.as_posix()
        result = spec.check_file(relative + "/" if is_dir else relative)
        if result.include is not None:
            return bool(result.include)
    return False


def _link_inside(link: Path, real_root: Path) -> bool:
    """Whether a symlink points at something that exists inside the project (else it would dangle
    or escape once unpacked, and the task's safe extraction would refuse the whole archive)."""
    target = Path(os.path.realpath(link))
    return target.exists() and real_root in target.parents


# ---------------------------------------------------------------------------------------------
# The archive


def build_package(root: Path, files: list[Path], out_dir: Path) -> CodePackage:
    """Write `files` (relative to `root`, or absolute inside it) as a deterministic tar.gz in `out_dir`.

    Entries are sorted by path and normalized (mtime 1980-01-01, uid/gid 0, no owner names, mode
    0644 or 0755, GNU format without pax headers); the gzip header has mtime 0 and no file name.
    Equal inputs therefore give byte-identical archives, named `fast<md5hex>.tar.gz`.

    Raises:
        UsageError: a file is outside `root`, escapes it with `..`, or cannot be read.
    """
    entries = _entries(root, files)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Write to a temporary name first: the final name depends on the digest of the bytes.
    fd, tmp_name = tempfile.mkstemp(prefix=".fast-", suffix=".tar.gz.tmp", dir=out_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            _write_archive(root, entries, raw)
        md5 = _md5_of(tmp)
        final = out_dir / f"fast{md5.hex()}.tar.gz"
        size = tmp.stat().st_size
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return CodePackage(path=final, md5=md5, size=size, files=tuple(name for name, _ in entries))


def _entries(root: Path, files: Iterable[Path]) -> list[tuple[str, Path]]:
    """(archive name, path on disk) per file, unique and sorted by archive name."""
    roots = _same_folder_spellings(root)
    by_name: dict[str, Path] = {}
    for file in files:
        if file.is_absolute():
            relative = _relative_to_any(Path(os.path.abspath(file)), roots)
            if relative is None:
                raise UsageError(f"cannot package {file}: it is outside the project root {root}")
        else:
            relative = file
        name = relative.as_posix()
        parts = PurePosixPath(name).parts
        if not parts or ".." in parts or name.startswith("/"):
            raise UsageError(f"cannot package {file}: the path must stay inside the project root")
        by_name[PurePosixPath(name).as_posix()] = root / relative
    return sorted(by_name.items())


def _write_archive(root: Path, entries: list[tuple[str, Path]], raw: IO[bytes]) -> None:
    real_root = root.resolve()
    # filename="" keeps the temp file's name out of the gzip header; mtime=0 keeps the clock out.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8") as tar,
    ):
        for name, path in entries:
            try:
                _add_entry(tar, name, path, real_root)
            except OSError as exc:
                raise UsageError(f"cannot package {path}: {exc.strerror or exc}") from exc


def _add_entry(tar: tarfile.TarFile, name: str, path: Path, real_root: Path) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = ENTRY_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if path.is_symlink():
        target = Path(os.path.realpath(path))
        if real_root in target.parents and target.exists():
            # Kept as a link, with a relative target: the task side extracts with tarfile's "data"
            # filter, which refuses absolute link targets and ones leaving the destination.
            info.type = tarfile.SYMTYPE
            info.mode = 0o777
            info.linkname = Path(os.path.relpath(target, os.path.realpath(path.parent))).as_posix()
            tar.addfile(info)
            return
        # A loaded module linked in from outside the project: ship its content, or it would dangle.
        path = target
    if not stat.S_ISREG(path.stat().st_mode):  # checked before opening: a fifo would block open()
        raise UsageError(f"cannot package {path}: not a regular file")
    with path.open("rb") as handle:
        st = os.fstat(handle.fileno())
        info.mode = 0o755 if st.st_mode & 0o111 else 0o644
        info.size = st.st_size
        tar.addfile(info, handle)


def _md5_of(path: Path) -> bytes:
    digest = hashlib.md5(usedforsecurity=False)  # an integrity check the blob store verifies
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()
