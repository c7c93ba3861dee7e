"""Rendered files → ``site/``, all at once or not at all.

The new site is assembled in a staging folder beside ``site/`` and swapped in with one atomic
rename when it is complete, so a web server, an rsync job or a visitor sees either the old site
or the new one, never half of each; a build that fails or is killed before the swap leaves the
old site byte-identical (the staging folder is cleaned up by the next run).

Files whose bytes did not change are hard-linked from the old site into the new one rather than
written again, so they keep their inode and mtime and ``rsync``/CDN uploads send only what
changed. When nothing changed at all, nothing on disk is touched.

``site/`` is replaced on every build, so the folder must be one catalog-gen made: it carries a
``.catalog-gen`` marker, and a non-empty folder without one (or the project folder itself, by a
mistyped ``output_dir``) is refused rather than wiped. Inside it, a publish removes only files
that a previous build recorded as its own (``owned``, the build state's list): anything else
found there (a CNAME put there by hand, snapshots a config pointed into the site) is carried
over into the new site untouched and reported as ``foreign``, so the build can warn about it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from catalog_gen.errors import BuildError

MARKER = ".catalog-gen"
MARKER_TEXT = b"This folder is written by catalog-gen build and replaced on every build.\n"


@dataclass(frozen=True)
class OutputReport:
    """What publishing did to the site folder, by relative path."""

    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]
    swapped: bool
    #: Seconds the indexer ran (0 when no page changed and the old index was kept).
    index_seconds: float = 0.0
    #: Files in the site that no build recorded as its own: carried over untouched.
    foreign: tuple[str, ...] = ()


@dataclass(frozen=True)
class Indexer:
    """A step that derives files from the staged pages (the search index) into ``folder``.

    It runs only when some HTML changed (or its folder is missing); otherwise the old
    index is kept as it is.
    """

    folder: str
    run: Callable[[Path], None]


def publish_site(
    site_dir: Path,
    files: Mapping[str, bytes],
    *,
    kept: Collection[str] = (),
    owned: Collection[str] = (),
    protect: Path | None = None,
    indexer: Indexer | None = None,
) -> OutputReport:
    """Make ``site_dir`` contain ``files`` (relative POSIX path → bytes) and the ``kept``
    files of the current site as they are, plus what ``indexer`` derives from them.

    Of the other files in the current site, those in ``owned`` (what the previous build
    published) are removed and the rest are carried over untouched (``foreign``); with no
    record, nothing is removed. ``protect`` is a folder that must never be replaced (the
    project root).
    """
    for name in (*files, *kept):
        _check_relative(name)
    site = Path(os.path.realpath(site_dir))
    _check_target(site, protect)
    _clean_leftovers(site)

    old = _existing_files(site)
    old_index = {}
    if indexer is not None:
        prefix = indexer.folder + "/"
        old_index = {name: path for name, path in old.items() if name.startswith(prefix)}
        old = {name: path for name, path in old.items() if name not in old_index}
    missing = [name for name in kept if name not in old]
    if missing:
        raise BuildError(f"{site / missing[0]} vanished during the build; build again")
    written, unchanged = [], list(kept)
    for name, data in files.items():
        if name in old and _same_bytes(old[name], data):
            unchanged.append(name)
        else:
            written.append(name)
    owned = frozenset(owned)
    gone = set(old) - set(files) - set(kept)
    removed = sorted(gone & owned)
    foreign = {name: old[name] for name in sorted(gone - owned)}
    _check_not_in_the_way(site, foreign, [*files, *kept])
    pages_changed = any(name.endswith(".html") for name in (*written, *removed))
    reindex = indexer is not None and (pages_changed or not old_index)
    if not written and not removed and not reindex and (site / MARKER).is_file():
        unchanged_now = tuple(sorted([*unchanged, *old_index]))
        return OutputReport((), unchanged_now, (), swapped=False, foreign=tuple(foreign))

    site.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{site.name}.staging-", dir=site.parent))
    # Paths as text from here on: at 74,000 files, Path objects alone cost seconds.
    into = f"{staging}/"
    try:
        carried = old_index if not reindex else {}
        _make_folders(staging, [*unchanged, *written, *carried, *foreign])
        for name in unchanged:
            _link_or_copy(old[name], into + name)
        for name, path in foreign.items():
            _link_or_copy(path, into + name)
        for name in written:
            _write(into + name, files[name])
        marker = f"{site}/{MARKER}"
        if _same_bytes(marker, MARKER_TEXT):  # keep its mtime too: nothing to upload
            _link_or_copy(marker, into + MARKER)
        else:
            _write(into + MARKER, MARKER_TEXT)
        index_seconds = 0.0
        if reindex:
            started = time.monotonic()
            indexer.run(staging)
            index_seconds = time.monotonic() - started
            made = _keep_unchanged(staging, indexer.folder, old_index)
            written += [name for name, same in made.items() if not same]
            unchanged += [name for name, same in made.items() if same]
            stale = set(old_index) - set(made)
            removed = sorted({*removed, *(stale & owned)})
            for name in sorted(stale - owned):  # not recorded as ours: carried over too
                _make_folders(staging, [name])
                _link_or_copy(old_index[name], into + name)
                foreign[name] = old_index[name]
        else:
            for name, path in carried.items():
                _link_or_copy(path, into + name)
            unchanged += list(carried)
        os.chmod(staging, 0o755)  # mkdtemp makes it 0700; a web server must read it
        _swap_in(staging, site)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # the old site after a swap, else the leftovers
    return OutputReport(
        tuple(sorted(written)),
        tuple(sorted(unchanged)),
        tuple(removed),
        True,
        round(index_seconds, 3),
        tuple(sorted(foreign)),
    )


def _check_not_in_the_way(site: Path, foreign: Mapping[str, str], ours: Iterable[str]) -> None:
    """Refuse when a file that is not ours sits where the new site needs a folder, or inside
    what the new site needs as a file: it would have to go, and it is not ours to remove."""
    if not foreign:
        return
    ours = set(ours)
    folders = {folder for name in ours for folder in _folders_of(name)}
    for name in foreign:
        if name in folders or any(folder in ours for folder in _folders_of(name)):
            raise BuildError(
                f"{site / name} was not made by catalog-gen and is in the way of the new "
                f"site; move it out of {site}"
            )


def _folders_of(name: str) -> list[str]:
    """The folders a relative path lies in: "a/b/c" → ["a", "a/b"]."""
    parts = name.split("/")
    return ["/".join(parts[:n]) for n in range(1, len(parts))]


def _keep_unchanged(staging: Path, folder: str, old: Mapping[str, str]) -> dict[str, bool]:
    """Derived files in ``staging/folder`` → whether the old site had the same bytes; those
    are replaced by links to the old files so that they keep their mtime."""
    made = {}
    skip = len(str(staging)) + 1
    for path in sorted(_walk(f"{staging}/{folder}")):
        name = path[skip:]
        same = name in old and _same_file(old[name], path)
        if same:
            os.unlink(path)
            _link_or_copy(old[name], path)
        made[name] = same
    return made


def _same_file(a: str, b: str) -> bool:
    try:
        if os.stat(a).st_size != os.stat(b).st_size:
            return False
        with open(a, "rb") as first, open(b, "rb") as second:
            return first.read() == second.read()
    except OSError:
        return False


def _check_relative(name: str) -> None:
    path = PurePosixPath(name)
    if (
        not name
        or path.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
        or "\\" in name
        or "\0" in name
        or name.split("/")[0] == MARKER
    ):
        raise BuildError(f"refusing to write '{name}': output paths must stay inside the site")


def _check_target(site: Path, protect: Path | None) -> None:
    if protect is not None:
        guarded = Path(os.path.realpath(protect))
        if site == guarded or site in guarded.parents:
            raise BuildError(
                f"output folder {site} is the project folder or contains it; "
                "set site.output_dir to a folder of its own (default: site)"
            )
    if site.is_dir() and not (site / MARKER).is_file() and any(site.iterdir()):
        raise BuildError(
            f"{site} is not empty and was not made by catalog-gen (no {MARKER} file); "
            "the build replaces its whole content, so empty it or pick another site.output_dir"
        )
    if site.exists() and not site.is_dir():
        raise BuildError(f"{site} exists and is not a folder; pick another site.output_dir")


def _clean_leftovers(site: Path) -> None:
    """Remove what a killed build left beside the site (and finish a half-done fallback swap)."""
    if not site.parent.is_dir():
        return
    for entry in site.parent.iterdir():
        if entry.name.startswith(f".{site.name}.old-") and not site.exists():
            entry.rename(site)  # killed between the two renames of the fallback swap
        elif entry.name.startswith((f".{site.name}.staging-", f".{site.name}.old-")):
            shutil.rmtree(entry, ignore_errors=True)


def _existing_files(site: Path) -> dict[str, str]:
    """The site's files: relative name → path, both as text."""
    if not site.is_dir():
        return {}
    skip = len(str(site)) + 1
    return {path[skip:]: path for path in _walk(str(site)) if path[skip:] != MARKER}


def _walk(folder: str) -> list[str]:
    """Every file below ``folder`` (symbolic links to folders are not followed)."""
    found = []
    for root, _dirs, names in os.walk(folder):
        found += [f"{root}/{name}" for name in names]
    return found


def _make_folders(staging: Path, names: Iterable[str]) -> None:
    """Every folder the files ``names`` go into, each made once (parents first)."""
    folders = {name.rpartition("/")[0] for name in names} - {""}
    for folder in sorted(folders):  # "a" sorts before "a/b"
        os.makedirs(f"{staging}/{folder}", exist_ok=True)


def _same_bytes(path: str, data: bytes) -> bool:
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode) or info.st_size != len(data):
            return False
        with open(path, "rb") as handle:
            return handle.read() == data
    except OSError:
        return False


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links: a copy that keeps the mtime
        shutil.copy2(source, target)


def _swap_in(staging: Path, site: Path) -> None:
    """Put ``staging`` at ``site``; afterwards ``staging`` holds the old site (or nothing)."""
    if not site.exists():
        os.rename(staging, site)
        return
    if _exchange(staging, site):
        return
    # No atomic exchange here (not Linux, or an old kernel): two renames, recovered by
    # _clean_leftovers if the process dies between them.
    old = Path(tempfile.mkdtemp(prefix=f".{site.name}.old-", dir=site.parent))
    old.rmdir()
    os.rename(site, old)
    try:
        os.rename(staging, site)
    except BaseException:
        os.rename(old, site)  # put the old site straight back rather than leave none
        raise
    os.rename(old, staging)


RENAME_EXCHANGE = 2
AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux renameat2(RENAME_EXCHANGE); False if unsupported."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    result = renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), str(b))


_RENAMEAT2: list = []


def _renameat2():
    if not _RENAMEAT2:
        function = None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            function = libc.renameat2
            function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
            function.argtypes += [ctypes.c_uint]
            function.restype = ctypes.c_int
        except (OSError, AttributeError):
            function = None
        _RENAMEAT2.append(function)
    return _RENAMEAT2[0]
