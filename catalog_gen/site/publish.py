"""Rendered files → ``site/``, all at once or not at all.

The new site is assembled in a staging folder beside ``site/`` and swapped in with one atomic
rename when it is complete, so a web server, an rsync job or a visitor sees either the old site
or the new one, never half of each; a build that fails or is killed before the swap leaves the
old site byte-identical (the staging folder is cleaned up by the next run).

Files whose bytes did not change keep their inode and mtime (the new site holds the old file
under a second name, a hard link), so ``rsync``/CDN uploads send only what changed. When
nothing changed at all, nothing on disk is touched.

**In proportion to the change.** Assembling the new site by linking every unchanged file
costs a system call per file (40,000 at 10,000 courses), and so does deleting the old one.
So the old site is not deleted: after the swap it is kept beside the new one as the
*spare* (``.<site>.spare``), and the next build starts its staging folder from it. The
spare differs from the live site only in the files the last build wrote or removed (the
build state lists them), so bringing it up to date, then writing this build's changes,
costs what the two builds changed. The spare is used only when the build state vouches for
it (``SiteRecord``: its inode, the mtime of each of its folders, which a file added,
removed or renamed in it would move); otherwise it is deleted and the staging folder built
from scratch. Files in the staging folder are hard links shared with the live site: a file
that changes is always written under a new inode, never rewritten in place.

The files are streamed in (``Publisher.put``), from this process or from forked render
workers, which write in parallel; nothing holds the whole site in memory.

``site/`` is replaced on every build, so the folder must be one catalog-gen made: it carries a
``.catalog-gen`` marker, and a non-empty folder without one (or the project folder itself, by a
mistyped ``output_dir``) is refused rather than wiped. Inside it, **the new site is what this
build made**, plus the files that ``site.keep`` names (a CNAME, ``.well-known/``), carried over
untouched and reported as ``retained``: anything else found there is removed, whoever put it
there and whatever the build state remembers or forgot. So what a publish leaves depends only
on this build and the setting, never on bookkeeping that a CI cache, a copy or a restore from
a backup may have lost. The build state also remembers the mtime of every folder of the site,
so a file dropped into one is found without walking the whole site (when the state vouches
for the very folder; otherwise the site is walked).

**Links are never followed.** The site and the spare are walked with ``lstat``: a symbolic
link found in either is a name like any other, removed as a link (or carried over as a link,
when ``site.keep`` names it), never written, hard-linked or deleted through; new files are
created with ``O_EXCL | O_NOFOLLOW``, and a link where a folder must go is removed first.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import fnmatch
import functools
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from catalog_gen.config import SitePaths
from catalog_gen.errors import BuildError
from catalog_gen.site import forked

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
    #: Files this build did not make that ``site.keep`` names: carried over untouched.
    retained: tuple[str, ...] = ()


@dataclass(frozen=True)
class Staged:
    """What the publisher knows of the staging folder when the indexer runs."""

    #: Every file of the new site: the build's, and those ``site.keep`` carries over (None:
    #: not known; the indexer looks).
    files: frozenset[str] | None = None
    #: Each file of the old index (its name inside the indexer's folder) and its size.
    index: Mapping[str, int] | None = None
    #: For the indexer to call once its own processes run and the rest of its work is
    #: waiting for them. The build waits for that (or for the indexer to end): until then
    #: the indexer's work needs the interpreter, and a build busy beside it, with the lock
    #: the threads of a Python process share, slowed it from 0.1 s to a second.
    launched: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Indexer:
    """A step that derives files from the staged pages (the search index) into ``folder``.

    It runs only when some page changed (or its folder is missing); otherwise the old index
    is kept as it is. ``run(staging, changed, staged)`` finds the old index in
    ``staging/folder`` and brings it up to date with the staged pages: ``changed`` names the
    pages written or removed since the old index was made, or is None when there is none
    (derive everything); ``staged`` says what the publisher knows of the staging folder, so
    the indexer need not look for it on disk (it runs on a thread beside the busy build,
    where a walk of 10,000 folders took a second).
    The files in the staging folder are hard links shared with the live site: ``run`` must
    write new files (or replace them), never rewrite one in place; publish keeps the old
    file wherever it leaves or writes the same bytes.
    """

    folder: str
    run: Callable[[Path, frozenset[str] | None, Staged], None]
    #: What the indexer reads of the page ``name`` with these bytes (None: a page it does not
    #: read, or it cannot tell): a page written again that reads as the old one asks nothing
    #: of the index. Called in the forked workers, where the pages are written.
    reads: Callable[[str, bytes], bytes | None] | None = None


@dataclass(frozen=True)
class SiteRecord:
    """What a publish left, for the next one (the build state keeps it, buildstate.py):
    which files are the site's, the mtime of each of its folders, and the spare.

    Trusted only as far as the build state is (for the same site folder, by its inode).
    """

    #: Every file of the site after the publish (made by the build, or retained).
    published: frozenset[str] = frozenset()
    #: Each folder of the site ("" for the site itself) → its mtime after the publish.
    folders: Mapping[str, int] = field(default_factory=dict)
    #: Each file of the search index → its size and mtime after the publish (an index file
    #: edited in place moves neither its folder's mtime nor, maybe, its size).
    index_files: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    #: The spare (the site before the publish): its inode, its folders' mtimes, and the files
    #: where it differs from the site (written, removed).
    spare_inode: int = 0
    spare_folders: Mapping[str, int] = field(default_factory=dict)
    spare_differs: frozenset[str] = frozenset()

    def untouched(self, site: Path) -> bool:
        """Whether no file was added to, removed from or renamed in ``site`` since the
        publish (each folder keeps its mtime; a file edited in place is not seen here)."""
        return _folder_times_match(str(site), self.folders)


WRITTEN, UNCHANGED = "written", "unchanged"
#: Written, but the indexer reads of it what it read of the old file (``Indexer.reads``): no
#: reason to make the index again.
WRITTEN_READ_ALIKE = "written, read alike"
#: A file's bytes: whole, or its parts in order (``Publisher.put``).
Parts: TypeAlias = "bytes | Sequence[bytes | memoryview]"


class Publisher:
    """One publish of the site: plan which files the new site has, put them in (from this
    process or forked workers), maybe index, then ``commit`` (swap) or ``abort``."""

    def __init__(
        self,
        site_dir: Path,
        *,
        keep: Sequence[str] = (),
        protect: Path | None = None,
        record: SiteRecord | None = None,
        indexer: Indexer | None = None,
        trust_index: bool = True,
    ) -> None:
        """``trust_index=False``: make the search index again whole, whatever the old one
        looks like (``build --full``: an index file edited in place keeping its size and
        mtime is seen by nothing else)."""
        self.site = Path(os.path.realpath(site_dir))
        self.indexer = indexer
        self.trust_index = trust_index
        _check_target(self.site, protect)
        _clean_leftovers(self.site)
        self.spare = SitePaths(self.site).spare
        self.keep = tuple(keep)
        self.record = record if record is not None and self.site.is_dir() else None
        #: What the record says is looked at in a forked process, while the build makes
        #: its catalog (``_look``); None: looked at here, when needed. Either way it is a
        #: look before the swap: a file changed by hand in the site meanwhile may be missed
        #: (a look at ``plan`` took one moment less).
        self._looking: forked.Later[_Found] | None = None
        if self.record is not None:
            looks = functools.partial(_look, str(self.site), str(self.spare), self.record)
            self._looking = forked.later(looks)
        self.staging: str | None = None
        #: Whether the staging folder holds the live site's files (from the spare).
        self.synced = False
        self.old: dict[str, str] = {}
        #: Names where the site may differ from what the record says (``_inventory``).
        self.touched: set[str] = set()
        self.removed: list[str] = []
        #: Files of the old site that ``keep`` names and the new site does not make.
        self.retained: dict[str, str] = {}
        #: Files of the new site that are the old ones as they are (``plan``, ``carry``).
        self.kept: list[str] = []
        #: What the indexer is told of the staging folder (``plan``).
        self.staged = Staged()
        self.results: dict[str, str] = {}
        self.index_folder: str | None = None
        self.old_index: dict[str, str] = {}
        #: Where the old index was moved while the indexer makes the new one.
        self.index_seconds = 0.0
        self._index_thread: threading.Thread | None = None
        self._index_error: BaseException | None = None
        self._reindexed = False
        self._folders: set[str] = set()
        self.next_record: SiteRecord | None = None

    # --- what the new site holds ----------------------------------------------------------------

    def plan(self, names: Iterable[str], *, kept: Collection[str] = ()) -> None:
        """The names of every file of the new site (``kept`` ones are the old files as they
        are); the files of the indexer's folder are the indexer's to account for."""
        index = self.indexer.folder if self.indexer is not None else None
        names = set(names)
        for name in names:
            _check_relative(name)
        self.index_folder = index
        look = self._found()
        if self.record is not None:
            moved = look.moved if look is not None else None
            old, self.touched = _inventory(self.site, self.record, moved)
        else:
            old = _existing_files(self.site)
        old_index: dict[str, str] = {}
        index_stats: dict[str, tuple[int, int]] = {}
        if index is not None:
            prefix = index + "/"
            old_index = {n: p for n, p in old.items() if n.startswith(prefix)}
            seen = look.index if look is not None else {}
            index_stats = {n: seen[n] for n in old_index if n in seen}
            index_stats.update(_stats({n: p for n, p in old_index.items() if n not in seen}))
            if self.record is not None:
                known = self.record.index_files
                self.touched |= {n for n in old_index if known.get(n) != index_stats.get(n)}
        self.old, self.old_index = old, old_index
        self.kept = []
        self.carry(kept)
        gone = set(old) - names - set(old_index)
        retained = {name for name in gone if kept_by_setting(name, self.keep)}
        retained -= _in_the_way(retained, names)  # the build's own files come first
        self.removed = sorted(gone - retained)
        self.retained = {name: old[name] for name in sorted(retained)}
        cut = len(index or "") + 1
        sizes = {name[cut:]: size for name, (size, _) in index_stats.items()}
        self.staged = Staged(frozenset(names | retained), sizes)
        if self.removed:
            self.begin()

    def carry(self, names: Collection[str]) -> None:
        """More files of the new site that are the old files as they are, known once the
        build is under way (after ``plan``; maybe after ``begin``)."""
        missing = [name for name in names if name not in self.old]
        if missing:
            raise BuildError(f"{self.site / missing[0]} vanished during the build; build again")
        self.kept += names
        if self.staging is not None and not self.synced:  # begin linked the others
            self._make_folders(names)
            for name in names:
                _link_or_copy(self.old[name], f"{self.staging}/{name}")

    # --- putting files in -----------------------------------------------------------------------

    def begin(self) -> None:
        """Make the staging folder (from the spare when the record vouches for it, else from
        scratch); call it before forking workers that put files."""
        if self.staging is not None:
            return
        record = self.record
        if record is not None and record.spare_inode and self._spare_vouched_for(record):
            staging = _unique_path(self.site, "staging")
            os.rename(self.spare, staging)
            self.staging, self.synced = staging, True
            self._sync(record.spare_differs | self.touched)
        else:
            if self.spare.exists() or self.spare.is_symlink():
                _remove_tree(self.spare)
            self.staging = _scratch_folder(self.site, "staging")
            carried = [*self.kept, *self.retained]
            self._make_folders(carried)
            for name in carried:
                _link_or_copy(self.old[name], f"{self.staging}/{name}")
            for name, status in self.results.items():
                if status == UNCHANGED:
                    self._make_folders([name])
                    _link_or_copy(self.old[name], f"{self.staging}/{name}")
        for name in self.removed:
            self._unlink(name)

    def put(self, name: str, data: Parts) -> str:
        """Put one file of the new site in: kept as the old file when the bytes are the
        same, else written. A big file may come as its parts, which are never joined (the
        site-wide calendar is 45 MB at 10,000 courses). Safe in a forked worker (after
        ``begin``): the parent records the outcome with ``mark``."""
        if name in self.old and _same_bytes(self.old[name], data):
            self.same(name)
            return UNCHANGED
        self.write(name, data)
        if isinstance(data, bytes) and self._read_alike(name, data):
            self.results[name] = WRITTEN_READ_ALIKE
        return self.results[name]

    def same(self, name: str) -> None:
        """A file of the new site has the old one's bytes: the old file it is."""
        if self.staging is not None and not self.synced:
            self._make_folders([name])
            _link_or_copy(self.old[name], f"{self.staging}/{name}")
        self.results[name] = UNCHANGED

    def write(self, name: str, data: Parts) -> None:
        """Write a file that changed (under a new inode: never into the live site's file)."""
        self.begin()
        if self.synced:
            self._unlink(name, prune=False)  # the live site's file, under a second name
        self._make_folders([name])
        _write(f"{self.staging}/{name}", data)
        self.results[name] = WRITTEN

    def mark(self, name: str, status: str) -> None:
        """Record what a worker's ``put`` did (the worker put the file in place)."""
        self.results[name] = status

    # --- the search index -----------------------------------------------------------------------

    def course_pages_done(self, changed: Collection[str]) -> None:
        """Every course page is in place (``changed``: those written or removed): the index
        is made now, alongside the rest of the build (``commit`` waits for it).

        The indexer runs when a page it reads changed, or its index is missing or was
        changed by hand (a file of it removed, replaced or added); else the old index is
        kept as it is."""
        indexer = self.indexer
        if indexer is None:
            return
        prefix = f"{indexer.folder}/"
        touched = not self.trust_index or any(name.startswith(prefix) for name in self.touched)
        if not changed and self.old_index and not touched:
            return
        self.begin()
        staging = self.staging
        assert staging is not None  # begin made it
        self._reindexed = True
        if not self.synced:  # the old index, as links to the live site's files
            self._make_folders(self.old_index)
            for name, path in self.old_index.items():
                _link_or_copy(path, f"{self.staging}/{name}")
        # An index changed by hand is made again whole: its shards cannot be trusted.
        pages = frozenset(changed) if self.old_index and not touched else None
        launched = threading.Event()
        self._index_thread = threading.Thread(
            target=self._run_indexer, args=(indexer, Path(staging), pages, launched), daemon=True
        )
        self._index_thread.start()
        launched.wait()  # see Staged.launched

    def _read_alike(self, name: str, data: bytes) -> bool:
        """Whether the indexer reads of page ``name``'s new bytes what it read of the old
        file, from which the old index was made (a file changed by hand since never is)."""
        reads = self.indexer.reads if self.indexer is not None else None
        old = self.old.get(name)
        if reads is None or old is None or name in self.touched:
            return False
        read = reads(name, data)
        if read is None:
            return False
        before = _regular_bytes(old)
        return before is not None and read == reads(name, before)

    def _run_indexer(
        self,
        indexer: Indexer,
        staging: Path,
        changed: frozenset[str] | None,
        launched: threading.Event,
    ) -> None:
        """The one place the indexer runs: on the staging folder, which holds the old index,
        told which pages changed since it was made (None: there is no old index)."""
        started = time.monotonic()
        try:
            indexer.run(staging, changed, dataclasses.replace(self.staged, launched=launched.set))
        except BaseException as exc:  # raised in commit(), on the build's own thread
            self._index_error = exc
        finally:
            launched.set()
        self.index_seconds = time.monotonic() - started

    def _raise_index_error(self) -> None:
        if self._index_error is not None:
            error, self._index_error = self._index_error, None
            raise error

    # --- the swap -------------------------------------------------------------------------------

    def commit(self) -> OutputReport:
        """Swap the new site in (unless nothing changed) and report; the old site becomes the
        spare, or is removed."""
        if self._index_thread is not None:
            self._index_thread.join()
            self._index_thread = None
        self._raise_index_error()
        written = sorted(n for n, s in self.results.items() if s in (WRITTEN, WRITTEN_READ_ALIKE))
        unchanged = [n for n, s in self.results.items() if s == UNCHANGED]
        unchanged += list(self.kept)
        removed = list(self.removed)
        retained = tuple(self.retained)
        index_written: list[str] = []
        if self._reindexed:
            staging, folder = self.staging, self.index_folder
            # course_pages_done staged the index (begin), after plan named its folder.
            assert staging is not None and folder is not None
            made = _keep_unchanged(staging, folder, self.old_index)
            index_written = [name for name, same in made.items() if not same]
            unchanged += [name for name, same in made.items() if same]
            removed = sorted({*removed, *(set(self.old_index) - set(made))})
        elif self.index_folder is not None:
            unchanged += list(self.old_index)
            if self.staging is not None and not self.synced:
                self._make_folders(self.old_index)
                for name, path in self.old_index.items():
                    _link_or_copy(path, f"{self.staging}/{name}")
        written += index_written
        marker_written = False
        if self.staging is None:
            self.next_record = self._record_unchanged()
            return OutputReport((), tuple(sorted(unchanged)), (), False, retained=retained)
        marker = f"{self.site}/{MARKER}"
        if not _same_bytes(marker, MARKER_TEXT):
            if self.synced and os.path.lexists(f"{self.staging}/{MARKER}"):
                os.unlink(f"{self.staging}/{MARKER}")
            _write(f"{self.staging}/{MARKER}", MARKER_TEXT)
            marker_written = True
        elif not self.synced:  # keep its mtime too: nothing to upload
            _link_or_copy(marker, f"{self.staging}/{MARKER}")
        os.chmod(self.staging, 0o755)  # mkdtemp makes it 0700; a web server must read it
        old_names = set(self.old)
        _swap_in(Path(self.staging), self.site)
        # The staging folder now holds the old site (or nothing, for a first publish).
        published = frozenset(written) | frozenset(unchanged) | frozenset(retained)
        differs = set(written) | set(removed) | ({MARKER} if marker_written else set())
        self.next_record = SiteRecord(
            published=published,
            folders=_folder_times(self.site, published),
            index_files=self._index_stats(published),
        )
        if os.path.isdir(self.staging) and old_names:
            os.rename(self.staging, self.spare)
            self.next_record = dataclasses.replace(
                self.next_record,
                spare_inode=os.stat(self.spare).st_ino,
                spare_folders=_folder_times(self.spare, old_names),
                spare_differs=frozenset(differs),
            )
        else:
            _remove_tree(self.staging)
        self.staging = None
        return OutputReport(
            tuple(sorted(written)),
            tuple(sorted(unchanged)),
            tuple(removed),
            True,
            round(self.index_seconds, 3),
            retained,
        )

    def abort(self) -> None:
        """Leave the old site as it was; the staging folder goes (and with it the spare it
        may have been made from: the next build makes its staging folder from scratch)."""
        if self._index_thread is not None:
            self._index_thread.join()
        if self._looking is not None:
            self._looking.cancel()
        if self.staging is not None:
            _remove_tree(self.staging)
        self.staging = None

    # --- helpers --------------------------------------------------------------------------------

    def _record_unchanged(self) -> SiteRecord | None:
        """Nothing was swapped: the record stays true but for files found in the site."""
        if self.record is None:
            return None
        return dataclasses.replace(
            self.record,
            published=frozenset(self.old),
            folders=_folder_times(self.site, set(self.old)),
        )

    def _index_stats(self, published: Iterable[str]) -> dict[str, tuple[int, int]]:
        """The size and mtime of each file of the search index, as published."""
        if self.index_folder is None:
            return {}
        prefix = self.index_folder + "/"
        return _stats({n: f"{self.site}/{n}" for n in published if n.startswith(prefix)})

    def _spare_vouched_for(self, record: SiteRecord) -> bool:
        """Whether the spare is the folder the record describes, untouched since."""
        look = self._found()
        return look.spare_holds if look is not None else _spare_holds(self.spare, record)

    def _found(self) -> _Found | None:
        """What the forked look found (waited for), or None: look here."""
        if self._looking is None:
            return None
        look = self._looking.result()
        if look is None:
            self._looking = None  # it failed: look here
        return look

    def _sync(self, differs: Iterable[str]) -> None:
        """Bring the staging folder (the spare: the site before the last publish) up to the
        live site, in the names where they may differ: what the last publish wrote or
        removed, and what changed in the site since (a file removed, replaced or dropped in
        by hand: the spare would bring back, or keep, the file it had)."""
        for name in sorted(differs):
            if name == MARKER:
                self._unlink(name)
                if os.path.lexists(f"{self.site}/{MARKER}"):
                    _link_or_copy(f"{self.site}/{MARKER}", f"{self.staging}/{MARKER}")
                continue
            self._unlink(name, prune=name not in self.old)
            if name in self.old:
                self._make_folders([name])
                _link_or_copy(self.old[name], f"{self.staging}/{name}")

    def _unlink(self, name: str, *, prune: bool = True) -> None:
        """Remove a name from the staging folder (a file, or a folder the spare has where a
        file must go), and the folders it leaves empty."""
        path = f"{self.staging}/{name}"
        try:
            info = os.lstat(path)
        except OSError:
            return
        if stat.S_ISDIR(info.st_mode):
            _remove_tree(path)
        else:
            os.unlink(path)
        if not prune:
            return
        folder = name.rpartition("/")[0]
        while folder:
            try:
                os.rmdir(f"{self.staging}/{folder}")
            except OSError:
                break
            self._folders.discard(folder)
            folder = folder.rpartition("/")[0]

    def _make_folders(self, names: Iterable[str]) -> None:
        """Every folder the files ``names`` go into, each made once (parents first). A file
        or a link of the old site where a folder must go gives way (in the staging folder,
        which is ours): a folder is never reached through a link."""
        wanted = {name.rpartition("/")[0] for name in names} - {""} - self._folders
        missing = _all_folders(name + "/x" for name in wanted)
        for folder in sorted(missing - self._folders):  # "a" sorts before "a/b"
            _folder_at(f"{self.staging}/{folder}")
            self._folders.add(folder)


def _folder_at(path: str) -> None:
    """Make ``path`` a folder of its own. Forked workers each make the folders of the files
    they put, knowing nothing of the others', so two may make one at the same moment (a
    course page and its calendar files): whoever comes second finds it made, which is the
    folder it wanted, not an error."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            return
        os.unlink(path)  # a file or a link of the old site where a folder must go
    except OSError:  # not there, or a worker just made the folder (EISDIR, or EPERM off Linux)
        pass
    try:
        os.mkdir(path)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(path).st_mode):  # still no folder: say so
            raise


@dataclass(frozen=True)
class _Found:
    """What the site and the spare are, against the record (``_look``)."""

    #: The record's folders whose mtime moved (``_moved_folders``).
    moved: list[str]
    #: The size and mtime of each of the record's index files that is there.
    index: dict[str, tuple[int, int]]
    #: Whether the spare is the folder the record describes, untouched since.
    spare_holds: bool


def _look(site: str, spare: str, record: SiteRecord) -> _Found:
    """Every ``stat`` the publisher's plan makes of the site and the spare: 40,000 at 10,000
    courses, made in a forked process while the build makes its catalog."""
    index = _stats({name: f"{site}/{name}" for name in record.index_files})
    return _Found(_moved_folders(site, record), index, _spare_holds(spare, record))


def _spare_holds(spare: str | Path, record: SiteRecord) -> bool:
    """Whether the spare is the folder the record describes, untouched since."""
    try:
        if os.stat(spare, follow_symlinks=False).st_ino != record.spare_inode:
            return False
    except OSError:
        return False
    return _folder_times_match(str(spare), record.spare_folders)


def _moved_folders(root: str, record: SiteRecord) -> list[str]:
    """The record's folders of the site whose mtime moved since: a file dropped in, replaced
    or removed. Not those gone (their parent's mtime moved too, and is listed) nor those
    replaced by a link (their parent lists it, as a name)."""
    moved = []
    for folder, mtime in record.folders.items():
        try:
            found = os.stat(f"{root}/{folder}" if folder else root, follow_symlinks=False)
        except OSError:
            continue
        if found.st_mtime_ns != mtime and not stat.S_ISLNK(found.st_mode):
            moved.append(folder)
    return moved


def _inventory(
    site: Path, record: SiteRecord, moved: list[str] | None = None
) -> tuple[dict[str, str], set[str]]:
    """The site's files as the record knows them, plus whatever appeared in a folder whose
    mtime moved since (a file dropped in or replaced, a folder made) and minus what vanished
    from one; and the names in those folders (present or vanished), where the site may not
    be what the record says (nor the spare what the site is). ``moved``: those folders, when
    known (``_look``)."""
    root = str(site)
    known = set(record.published)
    files = set(known)
    touched: set[str] = set()
    by_folder: dict[str, set[str]] = {}
    for name in files:
        by_folder.setdefault(name.rpartition("/")[0], set()).add(name)
    for folder in moved if moved is not None else _moved_folders(root, record):
        path = f"{root}/{folder}" if folder else root
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        present, folders = set(), set()
        for entry in entries:
            name = f"{folder}/{entry.name}" if folder else entry.name
            if name == MARKER:
                continue
            present.add(name)
            if entry.is_dir(follow_symlinks=False):
                folders.add(name)
                if name in files:  # a file of ours replaced by a folder
                    files.discard(name)
                    touched.add(name)
                if name not in record.folders:
                    made = {found[len(root) + 1 :] for found in _walk(f"{root}/{name}")}
                    files |= made
                    touched |= made
            else:
                files.add(name)
                touched.add(name)
        for name in by_folder.get(folder, ()):
            if name not in present:
                files.discard(name)
                touched.add(name)
        for sub in record.folders:
            if sub and sub.rpartition("/")[0] == folder and sub not in folders:
                gone = {n for n in known if n.startswith(sub + "/")}
                files -= gone
                touched |= gone
    return {name: f"{root}/{name}" for name in files}, touched


def _stats(files: Mapping[str, str]) -> dict[str, tuple[int, int]]:
    """The size and mtime of each of ``files`` (name → path) still there (not followed)."""
    stats = {}
    for name, path in files.items():
        with contextlib.suppress(OSError):
            found = os.lstat(path)
            stats[name] = (found.st_size, found.st_mtime_ns)
    return stats


def _folder_times(top: Path | str, names: Iterable[str]) -> dict[str, int]:
    """The mtime of ``top`` ("") and of every folder the files ``names`` lie in."""
    folders = {"", *_all_folders(names)}
    times = {}
    root = str(top)
    for folder in folders:
        try:
            times[folder] = os.stat(f"{root}/{folder}" if folder else root).st_mtime_ns
        except OSError:
            continue
    return times


def _folder_times_match(top: str, times: Mapping[str, int]) -> bool:
    if "" not in times:
        return False
    for folder, mtime in times.items():
        try:
            if os.stat(f"{top}/{folder}" if folder else top).st_mtime_ns != mtime:
                return False
        except OSError:
            return False
    return True


def _unique_path(site: Path, kind: str) -> str:
    """A fresh name beside the site for a folder to be renamed there."""
    made = _scratch_folder(site, kind)
    os.rmdir(made)
    return made


def _scratch_folder(site: Path, kind: str) -> str:
    """A new empty folder beside the site, for a while (``SitePaths.scratch_prefix``)."""
    return tempfile.mkdtemp(prefix=SitePaths(site).scratch_prefix(kind), dir=site.parent)


def _remove_tree(path: str | Path) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def kept_by_setting(name: str, patterns: Sequence[str]) -> bool:
    """Whether ``site.keep`` names the file ``name`` (a relative POSIX path): a pattern
    matches the path, or one of the folders it lies in, name by name (``*`` and ``?`` stay
    within one name: ``google*.html`` keeps ``google1a2b.html`` but nothing in a folder)."""
    parts = name.split("/")
    for pattern in patterns:
        wanted = pattern.removesuffix("/").split("/")
        if len(wanted) <= len(parts) and all(
            map(fnmatch.fnmatchcase, parts[: len(wanted)], wanted)
        ):
            return True
    return False


def _in_the_way(retained: Iterable[str], ours: Iterable[str]) -> set[str]:
    """The retained files where the new site needs a folder, or inside a file it makes."""
    ours = set(ours)
    folders = _all_folders(ours)
    return {
        name for name in retained if name in folders or not ours.isdisjoint(_all_folders((name,)))
    }


def _all_folders(names: Iterable[str]) -> set[str]:
    """Every folder the relative paths ``names`` lie in ("a/b/c" → "a", "a/b"): each path is
    walked up only as far as a folder already found, so a site's 70,000 files cost a step
    or two each, not a list of joins."""
    folders: set[str] = set()
    for name in names:
        folder = name.rpartition("/")[0]
        while folder and folder not in folders:
            folders.add(folder)
            folder = folder.rpartition("/")[0]
    return folders


def _keep_unchanged(staging: str, folder: str, old: Mapping[str, str]) -> dict[str, bool]:
    """Derived files in ``staging/folder`` → whether the old site had the same bytes; those
    are replaced by links to the old files so that they keep their mtime."""
    made = {}
    skip = len(str(staging)) + 1
    for path in sorted(_walk(f"{staging}/{folder}")):
        name = path[skip:]
        if name in old and _same_inode(old[name], path):  # left as it was
            made[name] = True
            continue
        same = name in old and _same_file(old[name], path)
        if same:
            os.unlink(path)
            _link_or_copy(old[name], path)
        made[name] = same
    return made


def _same_inode(a: str, b: str) -> bool:
    try:
        return os.path.samestat(os.stat(a), os.stat(b))
    except OSError:
        return False


def _regular_bytes(path: str) -> bytes | None:
    """The bytes of the regular file at ``path``; None for anything else (a link, which is not
    followed, a FIFO, which would block, a folder) or none."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as handle:
            return handle.read() if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except OSError:
        return None


def _same_file(a: str, b: str) -> bool:
    try:
        first, second = os.lstat(a), os.lstat(b)
        if not (stat.S_ISREG(first.st_mode) and stat.S_ISREG(second.st_mode)):
            return False  # a link is never the same file: it is not followed
        if first.st_size != second.st_size:
            return False
        with open(a, "rb") as a_file, open(b, "rb") as b_file:
            return a_file.read() == b_file.read()
    except OSError:
        return False


def _check_relative(name: str) -> None:
    """Refuse a name that could leave the site: absolute ("/x" has an empty first part), with
    "." or "..", a backslash or a NUL, or the marker's. Strings only: it runs for every file."""
    parts = name.split("/")
    if (
        not name
        or any(part in ("", ".", "..") for part in parts)
        or "\\" in name
        or "\0" in name
        or parts[0] == MARKER
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
    paths = SitePaths(site)
    prefixes = tuple(paths.scratch_prefix(kind) for kind in ("staging", "old", "index"))
    for entry in site.parent.iterdir():
        if entry.name.startswith(paths.scratch_prefix("old")) and not site.exists():
            entry.rename(site)  # killed between the two renames of the fallback swap
        elif entry.name.startswith(prefixes):
            _remove_tree(entry)


def _existing_files(site: Path) -> dict[str, str]:
    """The site's files: relative name → path, both as text."""
    if not site.is_dir():
        return {}
    skip = len(str(site)) + 1
    return {path[skip:]: path for path in _walk(str(site)) if path[skip:] != MARKER}


def _walk(folder: str) -> list[str]:
    """Every name below ``folder`` that is not a folder: files, and links of any kind
    (a link to a folder is a name like a file, never walked into)."""
    found: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            found += _walk(entry.path)
        else:
            found.append(entry.path)
    return found


#: How much of an old file ``_same_bytes`` reads at a time (the site-wide calendar of 10,000
#: courses is 45 MB: read whole, it would be held twice at the build's peak).
_COMPARE_CHUNK = 1 << 20


def _same_bytes(path: str, data: Parts) -> bool:
    """Whether the file at ``path`` (not a link) holds ``data``, its parts one after another."""
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode) or info.st_size != _size(data):
            return False
        with open(path, "rb") as handle:
            for part in parts_of(data):
                view = memoryview(part)
                for offset in range(0, len(view), _COMPARE_CHUNK):
                    piece = view[offset : offset + _COMPARE_CHUNK]
                    if handle.read(len(piece)) != piece:
                        return False
            return not handle.read(1)
    except OSError:
        return False


def _write(path: str, data: Parts) -> None:
    """A new file at ``path``, never through a link or into an existing file (whose inode
    the live site may share)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except FileExistsError:
        os.unlink(path)  # a name left in the staging folder (ours): replaced, not written into
        fd = os.open(path, flags, 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.writelines(parts_of(data))


def parts_of(data: Parts) -> Sequence[bytes | memoryview]:
    """A file's bytes as parts (whole bytes are one)."""
    return (data,) if isinstance(data, bytes | bytearray | memoryview) else data


def _size(data: Parts) -> int:
    return sum(len(part) for part in parts_of(data))


def _link_or_copy(source: str, target: str) -> None:
    """``target`` as a second name of ``source``; a link is linked as the link itself.
    BuildError when ``source`` (a file of the live site) is gone: removed by hand since the
    build looked."""
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:  # a file system without hard links: a copy that keeps the mtime
        if not os.path.lexists(source):
            raise BuildError(f"{source} vanished during the build; build again") from None
        if os.path.islink(source):
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target, follow_symlinks=False)


def _swap_in(staging: Path, site: Path) -> None:
    """Put ``staging`` at ``site``; afterwards ``staging`` holds the old site (or nothing)."""
    if not site.exists():
        os.rename(staging, site)
        return
    if _exchange(staging, site):
        return
    # No atomic exchange here (not Linux, or an old kernel): two renames, recovered by
    # _clean_leftovers if the process dies between them.
    old = Path(_scratch_folder(site, "old"))
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


#: renameat2(olddirfd, oldpath, newdirfd, newpath, flags) → 0, or -1 with errno set.
_Renameat2: TypeAlias = Callable[[int, bytes, int, bytes, int], int]

_RENAMEAT2: list[_Renameat2 | None] = []


def _renameat2() -> _Renameat2 | None:
    if not _RENAMEAT2:
        function: _Renameat2 | None = None
        cdll = forked.libc()
        try:
            found = cdll.renameat2 if cdll is not None else None
        except AttributeError:  # a C library without it
            found = None
        if found is not None:
            found.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
            found.argtypes += [ctypes.c_uint]
            found.restype = ctypes.c_int
            function = found
        _RENAMEAT2.append(function)
    return _RENAMEAT2[0]
