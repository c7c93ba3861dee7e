"""The catalog's drafts and its parts' outputs, kept between builds.

Reading and modelling 10,000 courses takes seconds, and a night changes a handful of them.
So a build keeps, beside its build state, what it made of each part of the snapshot (a shard:
the courses whose id ends in the same two digits, with their dates), in two files (and, in
``<name>.kept``, what else a build keeps for the next: ``keep`` and ``recall``):

- ``<part>.drafts``: the drafts of the part's records (drafts.py: each record read on its
  own, which neither the clock nor any other record changes), made again only when the
  part's digest in the snapshot's manifest changes;
- ``<part>.model``: the part's summary (what the other parts read of it) and its output at
  the last build (its courses with their published dates, its odd data, the days it holds
  for, the venues and categories it read), with the fingerprint of every course and date.

A build reads every part's output, and uses it as it is while everything it was made from
still holds: the same drafts, today within the days it holds for (no date started or closed
since), the same venues and categories in the tables. Only the other parts are assembled
again, from their drafts, and within them a date or course made from the same inputs as
before is the same object, with its fingerprint: an unchanged course is neither made nor
fingerprinted again. One changed course reads and assembles one part; a day later, the
parts whose dates the clock touched. A one-off build that must make many parts again makes
them in a forked worker, which saves their files, and reads those as a later build would: the
drafts' memory goes with the worker (``_made_apart``).

The catalog made this way is the one ``build_catalog`` makes from the whole snapshot, field
for field and with the same odd data (tests/test_incremental.py compares them).

Every file is written atomically (a temporary file renamed over the old one) and used only
when its key matches (the versions of catalog-gen, Python and the libraries that shape
output, the drafting rules, the part's digest) and its bytes match the digest in its first
lines: a missing, torn, damaged or foreign file is ignored and the part made again from the
snapshot. Nothing here is ever an error; the worst a cache can do is cost a full read.

The files are pickles, read only from the project's own build cache (which the config rules
keep apart from the site, the snapshots and the sources): whoever can write there can change
the templates the build runs anyway.

Everything in the cache's ``model`` folder is catalog-gen's, so a link there is a leftover
name, never followed: a link in place of the folder is removed and a real folder made, a file
that is a link is not read (``O_NOFOLLOW``) and is replaced or removed as the link. The
cache folder itself may be a link (the operator's: another disk), like the snapshot folder.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import os
import pickle
import shutil
import stat
import sys
import tempfile
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from catalog_gen.anomalies import Anomalies
from catalog_gen.site import forked
from catalog_gen.site.buildstate import Fingerprints, fingerprint, library_versions
from catalog_gen.site.catalog import PartAt, PartOutput, Summary, Tables, combine, summarize
from catalog_gen.site.cities import CityMerge, merge_cities
from catalog_gen.site.drafts import DraftRules, Drafts, draft_records
from catalog_gen.site.model import Catalog, Course, Venue
from catalog_gen.snapshot import Snapshot, StoredSnapshot

#: Bump when what a part's files hold, or what a draft means, changes.
CACHE_VERSION = 2
_MAGIC = b"catalog-gen model cache"
#: The name of the single part of a snapshot held in memory (never stored: it has no digest).
WHOLE = "all"
#: Parts to draft from which forked workers pay (a part is a hundredth of the courses).
PARALLEL_MIN_PARTS = 8
#: Parts to make again from which a one-off build makes them in a forked worker, and reads
#: what it saved (``_made_apart``): reading a part's output back costs a few milliseconds,
#: its drafts' memory stays with the worker.
APART_MIN_PARTS = 8


@dataclass
class _Part:
    """What this process knows of one part of the snapshot."""

    key: str
    summary: Summary
    output: PartOutput | None = None
    drafts: Drafts | None = None
    #: Whether the drafts or the output differ from the files (made in this process).
    drafts_dirty: bool = False
    output_dirty: bool = False
    #: The fingerprints of the output's courses and of their dates, when known.
    prints: tuple[list[str], list[list[str]]] | None = None

    def remember_prints(self, prints: Fingerprints) -> None:
        """Give the output's objects their fingerprints (kept with them, not walked again)."""
        if self.output is None or self.prints is None:
            return
        course_prints, date_prints = self.prints
        for course, course_print, its_dates in zip(
            self.output.courses, course_prints, date_prints, strict=True
        ):
            prints.remember(course, course_print)
            for course_date, date_print in zip(course.dates, its_dates, strict=True):
                prints.remember(course_date, date_print)


@dataclass(frozen=True)
class CatalogRun:
    """What making the catalog cost: parts read from the snapshot, and assembled again."""

    parts: int = 0
    read: tuple[str, ...] = ()
    assembled: tuple[str, ...] = ()


class ModelCache:
    """The catalog of a snapshot at a moment, made from what earlier builds kept.

    One instance may be held for many builds (the preview server): the parts stay in memory
    between them, so a build after a template edit reads no file at all.

    It owns the build's fingerprints (``prints``): the page and calendar digests read them,
    and the parts it keeps give theirs back to each catalog it makes.
    """

    #: Whether what a catalog made is left out of later garbage collections (``freezing``):
    #: right for a build that ends soon, not for a process that runs for days (warm.py).
    freezes = True
    #: Whether the parts' drafts stay in memory once the catalog is made: for a process that
    #: makes the catalog again soon (the preview). A build lets those it need not save go: a
    #: day later at 10,000 courses assembles 87 parts again, and holding their drafts to its
    #: end put about 60 MB on its peak memory (625 MB to 566 MB, one run each).
    keeps_drafts = False

    def __init__(self, folder: Path | None, rules: DraftRules, *, fresh: bool = False) -> None:
        """``fresh``: read none of the files (every part is made from the snapshot), only
        write them (``build --full``, which trusts nothing an earlier build kept)."""
        self.folder = folder / "model" if folder is not None else None
        self.rules = rules
        self.fresh = fresh
        self._salt = _salt(rules)
        self._parts: dict[str, _Part] = {}
        self._keepsakes: dict[str, object] = {}
        self.prints = Fingerprints()
        self.last = CatalogRun()

    def catalog(
        self,
        snapshot: StoredSnapshot | Snapshot,
        *,
        now: datetime,
        anomalies: Anomalies | None = None,
    ) -> Catalog:
        """The catalog at ``now``: parts whose digest did not change come from memory or the
        cache files, the others are read from the snapshot and drafted."""
        if isinstance(snapshot, Snapshot):
            snapshot = _in_memory(snapshot)
        with collector_paused(freeze=self.freezes):
            return self._catalog(snapshot, now, anomalies)

    def _catalog(
        self, snapshot: StoredSnapshot, now: datetime, anomalies: Anomalies | None
    ) -> Catalog:
        keys = {
            name: hashlib.sha256(f"{self._salt}\n{name}\n{digest}".encode()).hexdigest()
            if digest
            else ""
            for name, digest in snapshot.parts.items()
        }
        parts = self._kept_parts(keys)
        apart = self._made_apart(snapshot, now, parts, keys)
        if apart is not None:
            # Read what the worker saved as the next build would (anything else is made
            # here, below), and let the outputs it replaced go: their fingerprints held them.
            self._let_go(parts, apart[1])
            self._parts = parts
            parts = self._kept_parts(keys)
        outputs, tables, summaries, merge = self._assemble(snapshot, now, parts, keys)
        if apart is not None:
            run = apart[0]
            self.last = CatalogRun(
                self.last.parts,
                tuple(sorted({*run.read, *self.last.read})),
                tuple(sorted({*run.assembled, *self.last.assembled})),
            )
        return combine(
            [outputs[name] for name in self._parts],
            tables,
            summaries,
            merge,
            now,
            snapshot.fetched_at,
            anomalies,
        )

    def _kept_parts(self, keys: dict[str, str]) -> dict[str, _Part]:
        """The parts whose output an earlier build made of the same drafts: held in this
        process, else read from their files."""
        parts: dict[str, _Part] = {}
        for name, key in keys.items():
            part = self._parts.get(name)
            if part is not None and part.key == key and key:
                part.remember_prints(self.prints)  # held from an earlier build in this process
            else:
                part = self._load_model(name, key) if key else None
            if part is not None:
                parts[name] = part
        return parts

    def _made_apart(
        self, snapshot: StoredSnapshot, now: datetime, parts: dict[str, _Part], keys: dict[str, str]
    ) -> tuple[CatalogRun, set[str]] | None:
        """Make the parts that must be made again in a forked worker, which saves them and
        says what it made and which parts' files it saved (None: all made here, below).
        Drafting and assembling many parts leaves this process holding their drafts' memory
        to its end: a day later at 10,000 courses assembles 87 parts, and the catalog then
        took 367 MB where reading every part's output takes 205 MB. Only a one-off build,
        with a cache it can write to hand the parts over in."""
        folder = self.folder
        if self.keeps_drafts or self.fresh or folder is None or not all(keys.values()):
            return None
        outputs = [parts[name].output if name in parts else None for name in keys]
        stale = sum(1 for output in outputs if output is None or not output.holds_at(now))
        if stale < APART_MIN_PARTS or not _writable(folder):
            return None

        def made() -> tuple[CatalogRun, set[str]]:
            self._assemble(snapshot, now, parts, keys)
            return self.last, self._save_parts(folder)

        return forked.apart(made)

    def _let_go(self, parts: dict[str, _Part], names: Collection[str]) -> None:
        """Take ``names`` out of ``parts``, and their objects out of the fingerprints: their
        memory is free before what replaces them is read (the allocator reuses it)."""
        for name in names:
            part = parts.pop(name, None)
            if part is not None and part.output is not None:
                self.prints.let_go(_objects(part.output.courses))

    def _assemble(
        self, snapshot: StoredSnapshot, now: datetime, parts: dict[str, _Part], keys: dict[str, str]
    ) -> tuple[dict[str, PartOutput], Tables, list[Summary], CityMerge]:
        """Every part's output at ``now``: kept where everything it was made from still
        holds, else made again from the part's drafts (read from the snapshot if need be)."""
        read = [name for name in keys if name not in parts]
        for name, (drafts, saved) in zip(read, self._drafted(snapshot, read, keys), strict=True):
            parts[name] = _Part(keys[name], summarize(drafts), None, drafts, not saved)
        self._parts = parts = {name: parts[name] for name in keys}

        summaries = [part.summary for part in parts.values()]
        linking = {name for name, part in parts.items() if part.summary.linked}
        wanted_courses = frozenset().union(*(parts[n].summary.foreign_courses for n in linking))
        wanted_parents = frozenset().union(*(parts[n].summary.foreign_parents for n in linking))
        linked = linking | {
            name
            for name, part in parts.items()
            if part.summary.course_ids & wanted_courses or part.summary.top_ids & wanted_parents
        }
        linked_drafts = [self._ensure_drafts(snapshot, name, read) for name in sorted(linking)]
        tables = Tables.of(summaries, linked_drafts)

        pending: dict[str, PartAt] = {}
        outputs: dict[str, PartOutput] = {}  # each part's output: kept, or made again below
        for name, part in parts.items():
            output = part.output
            if (
                output is None
                or name in linked
                or not output.holds_at(now)
                or not output.reads_the_same(tables)
            ):
                pending[name] = PartAt(self._ensure_drafts(snapshot, name, read), tables, now)
            else:
                outputs[name] = output
        venues: dict[int, Venue] = {}
        for name in parts:
            venues.update(pending[name].venues if name in pending else outputs[name].venues)
        merge = merge_cities(venues)
        for name, output in outputs.items():
            if not output.merges_the_same(merge):
                pending[name] = PartAt(self._ensure_drafts(snapshot, name, read), tables, now)
        for name, at in pending.items():
            part = parts[name]
            before = {c.id: c for c in part.output.courses} if part.output else None
            part.output = outputs[name] = at.finish(merge, before)
            part.output_dirty, part.prints = True, None
            if part.output is not None and before:  # what it did not take from before goes
                kept = {id(obj) for obj in _objects(part.output.courses)}
                self.prints.let_go(o for o in _objects(before.values()) if id(o) not in kept)
        self.last = CatalogRun(len(parts), tuple(sorted(set(read))), tuple(sorted(pending)))
        if not self.keeps_drafts:  # a build reads them from their files, if ever again
            for part in parts.values():
                if not part.drafts_dirty:
                    part.drafts = None
        return outputs, tables, summaries, merge

    def keep(self, name: str, value: object) -> None:
        """Keep something else a build made for the next (``recall``), saved with the parts
        (in ``<name>.kept``). The caller checks that it still fits what it is used with."""
        self._keepsakes[name] = value

    def recall(self, name: str) -> object:
        """What a build kept as ``name`` (``keep``), or None."""
        if name in self._keepsakes:
            return self._keepsakes[name]
        return self._read(f"{name}.kept", self._kept_key(name))

    def _kept_key(self, name: str) -> str:
        return hashlib.sha256(f"{self._salt}\nkept\n{name}".encode()).hexdigest()

    def save(self) -> None:
        """Write the files of what changed (each atomically) and forget the files of parts
        the snapshot no longer has. Failing to write loses nothing: the next build reads
        more. Call it before the build forgets its fingerprints (``prints.forget``)."""
        folder = self.folder
        if folder is None:
            return
        try:
            self._save_parts(folder)
            for name, value in self._keepsakes.items():
                self._write(folder, f"{name}.kept", self._kept_key(name), value)
            self._keepsakes.clear()
            with os.scandir(folder) as entries:
                for stale in entries:
                    if stale.name.split(".")[0] in self._parts:
                        continue
                    if stale.name.endswith(".kept") and stale.is_file(follow_symlinks=False):
                        continue  # a keepsake, kept by an earlier build if not this one
                    if stale.is_dir(follow_symlinks=False):
                        shutil.rmtree(stale.path)
                    else:
                        os.unlink(stale.path)  # a link too: the name goes, not its target
        except OSError:
            return

    def _save_parts(self, folder: Path) -> set[str]:
        """Write the files of the parts made or drafted since they were read; the parts
        whose output was written. A file that cannot be written is left for the next build
        to make (OSError only when the folder cannot be had)."""
        _own_folder(folder)
        saved = set()
        for name, part in self._parts.items():
            if not part.key:
                continue
            with contextlib.suppress(OSError):
                if part.drafts_dirty and part.drafts is not None:
                    self._write(folder, f"{name}.drafts", part.key, part.drafts)
                    part.drafts_dirty = False
                if part.output_dirty and part.output is not None:
                    part.prints = _prints(part.output, self.prints)
                    made = (part.summary, part.output, *part.prints)
                    self._write(folder, f"{name}.model", part.key, made)
                    part.output_dirty = False
                    saved.add(name)
        return saved

    def _draft(self, snapshot: StoredSnapshot, name: str) -> Drafts:
        records = snapshot.read(name)
        return draft_records(records, self.rules)

    def _drafted(
        self, snapshot: StoredSnapshot, names: list[str], keys: dict[str, str]
    ) -> Iterator[tuple[Drafts, bool]]:
        """The drafts of the parts ``names``, read from the snapshot, and whether their file
        is saved. In forked workers when there are enough of them (a cold build at 10,000
        courses spends 11 s here, on one core; the parts are independent): each saves the
        file and hands back its bytes, so that the drafts are pickled once, in parallel."""
        if forked.workers(len(names), PARALLEL_MIN_PARTS) < 2:
            for name in names:
                yield self._draft(snapshot, name), False
            return
        saving = functools.partial(self._draft_saved, snapshot, keys)
        for payload, saved in forked.in_order(saving, names, least=PARALLEL_MIN_PARTS):
            yield pickle.loads(payload), saved

    def _draft_saved(
        self, snapshot: StoredSnapshot, keys: dict[str, str], name: str
    ) -> tuple[bytes, bool]:
        """A part's drafts, pickled, and whether they were saved to their file."""
        payload = pickle.dumps(self._draft(snapshot, name), protocol=pickle.HIGHEST_PROTOCOL)
        if self.folder is None or not keys[name]:
            return payload, False
        try:
            _own_folder(self.folder)
            self._write_payload(self.folder, f"{name}.drafts", keys[name], payload)
        except OSError:
            return payload, False
        return payload, True

    def _ensure_drafts(self, snapshot: StoredSnapshot, name: str, read: list[str]) -> Drafts:
        """The part's drafts, now in memory: from its file, else from the snapshot (then its
        name is added to ``read``)."""
        part = self._parts[name]
        if part.drafts is not None:
            return part.drafts
        drafts = self._read(f"{name}.drafts", part.key)
        if isinstance(drafts, Drafts):
            part.drafts = drafts
            return drafts
        part.drafts = self._draft(snapshot, name)
        part.drafts_dirty = True
        read.append(name)
        return part.drafts

    def _load_model(self, name: str, key: str) -> _Part | None:
        found = self._read(f"{name}.model", key)
        if not isinstance(found, tuple) or len(found) != 4:  # as ``save`` writes it
            return None
        summary, output, course_prints, date_prints = found
        if not isinstance(summary, Summary) or not isinstance(output, PartOutput):
            return None
        if not isinstance(course_prints, list) or not isinstance(date_prints, list):
            return None  # their items are checked as they are remembered, below
        part = _Part(key, summary, output, prints=(course_prints, date_prints))
        try:
            part.remember_prints(self.prints)
        except (TypeError, ValueError):  # not the shape this version writes
            return None
        return part

    def _read(self, filename: str, key: str) -> object:
        if self.folder is None or not key or self.fresh:
            return None
        no_link = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            folder = os.open(self.folder, no_link | os.O_DIRECTORY)
            try:
                with os.fdopen(os.open(filename, no_link, dir_fd=folder), "rb") as handle:
                    data = handle.read()
            finally:
                os.close(folder)
        except OSError:  # missing, or a link: made again from the snapshot
            return None
        head, _, payload = data.partition(b"\n\n")
        lines = head.split(b"\n")
        if len(lines) != 3 or lines[0] != _MAGIC or lines[1] != key.encode():
            return None
        if hashlib.sha256(payload).hexdigest().encode() != lines[2]:
            return None  # torn or damaged: never trusted
        try:
            return pickle.loads(payload)
        except Exception:  # anything a damaged or foreign pickle may raise
            return None

    def _write(self, folder: Path, filename: str, key: str, value: object) -> None:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self._write_payload(folder, filename, key, payload)

    def _write_payload(self, folder: Path, filename: str, key: str, payload: bytes) -> None:
        digest = hashlib.sha256(payload).hexdigest().encode()
        handle, temporary = tempfile.mkstemp(prefix=f".{filename}.", dir=folder)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(b"\n".join((_MAGIC, key.encode(), digest)) + b"\n\n" + payload)
            os.replace(temporary, folder / filename)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _objects(courses: Iterable[Course]) -> Iterator[object]:
    """The courses and their dates (what the fingerprints of a part's output hold)."""
    for course in courses:
        yield course
        yield from course.dates


def _writable(folder: Path) -> bool:
    """Whether the model folder is (made) a folder this process can write in."""
    try:
        _own_folder(folder)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def _own_folder(folder: Path) -> None:
    """Make the model folder a folder of its own: a link (or a file) in its place is a
    leftover, removed as the name it is, never written through."""
    try:
        if stat.S_ISDIR(os.lstat(folder).st_mode):
            return
        os.unlink(folder)
    except FileNotFoundError:
        pass
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # API text: private


def _prints(output: PartOutput, prints: Fingerprints) -> tuple[list[str], list[list[str]]]:
    """The fingerprints of a part's courses and of their dates (most known already: the
    build's page digests took them)."""
    return (
        [prints.of(course) for course in output.courses],
        [[prints.of(d) for d in course.dates] for course in output.courses],
    )


@contextlib.contextmanager
def collector_paused(*, freeze: bool) -> Iterator[None]:
    """No garbage collection while the model is made, and (``freeze``) what was made then
    left out of later collections (``gc.freeze``, for the rest of the process's life).

    Making the model makes hundreds of thousands of objects that all live on; the collector,
    run every few hundred of them, would walk them all again each time: seconds, for a big
    catalog, of finding nothing. The model holds no reference cycles, so what a warm process
    drops is still freed at once by reference counting (but a cycle frozen with it, in
    whatever else the process held then, is never collected: a process that runs for days
    does not freeze).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


def _salt(rules: DraftRules) -> str:
    """What every part's key starts with: what a draft and a fingerprint are made by."""
    python = sys.version.split()[0]
    return f"{CACHE_VERSION}\n{library_versions()}\n{python}\n{fingerprint(rules)}"


def _in_memory(snapshot: Snapshot) -> StoredSnapshot:
    """A snapshot in memory as one part that is never stored (it has no digest)."""
    records = snapshot.part()
    return StoredSnapshot(snapshot.name or "", snapshot.fetched_at, {WHOLE: ""}, lambda _: records)
