"""What each file of the site is made of, and whether it must be made again: one module.

A build renders only the files whose inputs changed (Lektor's build state is the model). The
policy, in one place: **what a page may show is what it is made of.**

- **A page** (``PageInputs``) is made of its path and template name, every template file it
  uses (through extends, include and import, the project's override and the theme's own file),
  the site-wide settings (``SiteInfo``) and the hashed names of the static files, and its own
  page data (``Page.context``: the course, the list of courses, the pagination), fingerprinted
  field by field through the catalog model: every field, custom properties and ``extra``
  included. The only fields left out are declared ``derived`` (model.py) and are functions of
  fields that are in (the catalog's indexes of its courses, a pagination's link maker of the
  page's path); properties are functions of fields. A page whose templates read the
  ``catalog`` global is also made of the whole catalog, and of the build's moment
  (``catalog.now``) when they may read that; one whose templates read ``filter_groups``, of the
  filter lists. The day otherwise enters through the model: a date that passed or closed for
  booking changes the data.
- **A calendar file** (``CalendarInputs``) is made of the course and the dates it holds, and
  the calendar settings (site title, address, language, the "online" label).
- **The whole build** (``build_inputs``) is made of the snapshot, the config, every theme,
  template, static and content file, and the quarter hour, at which any zone's day may turn
  (the exact moment when a template may read ``catalog.now``). When it matches the last
  build's, nothing can have changed and the build stops before it even loads the snapshot.

After every successful build, ``<site>/../.<site>.build-state.json`` records, for every output
file, its digest together with the size and mtime of the file that was written. The next build
computes the same digests; a file whose digest and on-disk stat still match is not rendered at
all, and is kept as it is. A file edited by hand in site/ is therefore made again.

**What each file read** (``Reads``) is kept beside the digests, so a build digests only the
files that read something that changed: each course's fingerprint (its dates, venues and
categories included, so the clock enters too: a date that closed changed its course), each
frame's digest (all a page of a template, or a calendar file, is made of but its own data),
and what each page shows (``pages.Shows``: its courses by id, and the rest of its data). A page
whose frame and ``Shows`` are the same, none of whose courses changed, and a course's calendar
files when the course did not change, take their digests from the state (``PageInputs.carried``,
``CalendarInputs.carried``); only the stat that catches a file edited by hand is left of them.
At 10,000 courses, one changed course digests 16 pages: those that show it, and the two
made of the whole catalog. The state also keeps what the publish needs to work in proportion
to the change (publish.SiteRecord: the site's folders and their mtimes, the search index's
files, the spare), the odd data the build reported, and what the model is made of is kept
beside it (modelcache.py, in ``.<site>.build-cache/``).

The state lives beside the site, not in it (it is not for the web server). Nothing it holds
decides what the published site is: a build without it renders everything and publishes the
same site (publish.py removes whatever the build did not make). What it holds is trusted as far
as it can be checked (``load_state``): the digests file by file, the publish record and the
early stop only for the exact site folder it describes (by inode, which changes with every swap
and every restore), and everything only for the same versions of catalog-gen and of the
libraries that shape output. ``build --full`` trusts none of it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import os
import tempfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeAlias

import orjson

from catalog_gen import __version__
from catalog_gen.config import Config, SitePaths
from catalog_gen.site import forked
from catalog_gen.site.model import Catalog, Course, CourseDate, Fields
from catalog_gen.site.pages import Page
from catalog_gen.site.publish import SiteRecord
from catalog_gen.site.render import Renderer, SiteInfo, find_theme, reads_catalog_now

#: Bump when what a digest covers changes, so old states are not trusted.
#: 2: custom properties and ``extra`` in the model; facet values without their courses.
#: 3: a date's calendar file is made of its course without the other dates; the sitemap has
#: a digest; the publish record (folders, foreign files, the spare).
#: 4: files trusted without the site folder's inode; the record's index files, no foreign.
#: (Not bumped for ``Reads``: a state without them is read as having none, and the digests
#: of the site feed and of the pages made of the whole catalog, now of the courses alone,
#: only make those files again once.)
STATE_VERSION = 4


class FileRecord(NamedTuple):
    """One output file: its inputs' digest and the stat of the bytes that were written (a
    named tuple: a build reads 65,000 of them at 10,000 courses, three times faster so)."""

    digest: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Reads:
    """What the files of a build read, beside their digests: a later build takes a file's
    digest from here, without making it again, when the file reads nothing that changed
    (``PageInputs.carried``, ``CalendarInputs.carried``)."""

    #: Each frame (a page template's, ``CALENDAR_FRAME``) → its digest: everything a file of
    #: it is made of but its path and its own data.
    frames: Mapping[str, str] = field(default_factory=dict)
    #: Each course's fingerprint (its published dates are part of it).
    courses: Mapping[int, str] = field(default_factory=dict)
    #: Each page with ``Shows`` → a digest of its template and their ``rest``, and their
    #: courses.
    pages: Mapping[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)


@dataclass
class BuildState:
    """The last build's digests, for the site folder with inode ``site_inode``."""

    inputs: str = ""
    site_inode: int = 0
    files: dict[str, FileRecord] = field(default_factory=dict)
    #: How many pages the site had, and every file published (for the report of a build
    #: that stops early because nothing changed).
    pages: int = 0
    published: tuple[str, ...] = ()
    #: The odd data the last build found: each anomaly's key (kind, record, field), and the
    #: report's lines, so a build that stops early still reports them, and the next one can
    #: tell which are new (``--quiet`` prints only those).
    anomalies: frozenset[tuple[str, str, str]] = frozenset()
    anomaly_lines: tuple[str, ...] = ()
    #: What the last publish left (publish.py), when the state can be trusted.
    site: SiteRecord | None = None
    #: What the files read, trusted like their digests.
    reads: Reads = field(default_factory=Reads)
    #: The files of the site found not as recorded, being looked for (``look``).
    looked: tuple[str, forked.Later[frozenset[str]]] | None = field(
        default=None, repr=False, compare=False
    )

    def look(self, site: Path) -> None:
        """Start looking for the recorded files of ``site`` that are not as recorded
        (missing, another size or mtime), in a forked process, while this one makes the
        catalog: at 10,000 courses that is 65,000 ``stat`` calls, which ``unchanged`` then
        need not make. Without a process to be had, ``unchanged`` looks file by file."""
        if self.files and self.looked is None:
            pending = forked.later(functools.partial(_not_as_recorded, str(site), self.files))
            self.looked = (str(site), pending) if pending is not None else None

    def unchanged(self, site: Path, name: str, digest: str) -> bool:
        """Whether ``name`` in ``site`` is still what a render with ``digest`` would give."""
        record = self.files.get(name)
        if record is None or record.digest != digest:
            return False
        if self.looked is not None and self.looked[0] == str(site):
            differing = self.looked[1].result()
            if differing is not None:
                return name not in differing
            self.looked = None  # the look failed: file by file after all
        # A string path: a Path per file is a third of this, 65,000 times a build.
        return _as_recorded(os.path.join(site, name), record)

    def written_bytes(self, site: Path, name: str) -> bytes | None:
        """The bytes the last build wrote to ``name``, if the file is still as it left it
        (whatever its inputs are now); None otherwise."""
        record = self.files.get(name)
        if record is None:
            return None
        try:
            with open(site / name, "rb") as handle:
                found = os.fstat(handle.fileno())
                if found.st_size != record.size or found.st_mtime_ns != record.mtime_ns:
                    return None
                return handle.read()
        except OSError:
            return None


#: Libraries whose upgrade can change the bytes of a page without any input changing.
_LIBRARIES = ("jinja2", "markupsafe", "babel", "icalendar", "nh3", "markdown")


@functools.cache
def library_versions() -> str:
    """catalog-gen's version and those of the libraries that shape its output."""
    found = [__version__]
    for name in _LIBRARIES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} ?")
    return "; ".join(found)


def state_path(site: Path) -> Path:
    return SitePaths(site).state


def load_state(site: Path) -> BuildState:
    """What the last build left for ``site``, as far as it can be trusted here.

    - The odd data it reported, always: which kinds are new is a question about the data, so
      a night in CI whose state came back from a cache tells a problem once, like cron.
    - Each file's digest, when the state was written by the same versions (the digests are
      comparable); each is trusted only for a file whose size and mtime still match on disk
      (``unchanged``), so a state restored beside a site restored from anywhere is right
      file by file: a file that is not what it describes is made again.
    - The publish record (folder mtimes, the spare) and the early stop (``inputs``), only for
      the very site folder it describes (its inode): they speak for the folder as a whole,
      which a copy, a cache or a backup restore replaces.
    """
    try:
        raw = orjson.loads(state_path(site).read_bytes())
    except (OSError, ValueError):
        return BuildState()
    if not isinstance(raw, dict):
        return BuildState()
    anomalies, lines = _anomalies(raw)
    remembered = BuildState(published=_published(raw), anomalies=anomalies, anomaly_lines=lines)
    if raw.get("version") != STATE_VERSION or raw.get("catalog_gen") != library_versions():
        return remembered
    try:
        inode = os.stat(site).st_ino
    except OSError:
        inode = -1
    try:
        files = {str(name): FileRecord(*entry) for name, entry in raw["files"].items()}
        same_folder = raw.get("site_inode") == inode
        return dataclasses.replace(
            remembered,
            inputs=str(raw["inputs"]) if same_folder else "",
            site_inode=inode,
            files=files,
            pages=int(raw["pages"]),
            site=_site_record(raw, remembered.published) if same_folder else None,
            reads=_reads(raw),
        )
    except (KeyError, TypeError, AttributeError, ValueError):
        return remembered


def _not_as_recorded(site: str, files: Mapping[str, FileRecord]) -> frozenset[str]:
    """The names of ``files`` whose file in ``site`` is not as recorded (``_as_recorded``)."""
    return frozenset(
        name for name, record in files.items() if not _as_recorded(os.path.join(site, name), record)
    )


def _as_recorded(path: str, record: FileRecord) -> bool:
    """Whether the file at ``path`` is there with the recorded size and mtime."""
    try:
        seen = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return seen.st_size == record.size and seen.st_mtime_ns == record.mtime_ns


#: The state file as read: JSON whose shape nothing has checked (a wrong one raises, and the
#: state is not trusted).
RawState: TypeAlias = dict[str, Any]


def _anomalies(raw: RawState) -> tuple[frozenset[tuple[str, str, str]], tuple[str, ...]]:
    try:
        keys = frozenset(
            (str(kind), str(record), str(field)) for kind, record, field in raw.get("anomalies", ())
        )
        return keys, tuple(str(line) for line in raw.get("anomaly_lines", ()))
    except (TypeError, ValueError):
        return frozenset(), ()


def _site_record(raw: RawState, published: tuple[str, ...]) -> SiteRecord | None:
    site = raw.get("site")
    if not isinstance(site, dict):
        return None
    spare = site.get("spare") or {}
    return SiteRecord(
        published=frozenset(published),
        folders={str(k): int(v) for k, v in site["folders"].items()},
        index_files={str(k): (int(v[0]), int(v[1])) for k, v in site.get("index", {}).items()},
        spare_inode=int(spare.get("inode", 0)),
        spare_folders={str(k): int(v) for k, v in spare.get("folders", {}).items()},
        spare_differs=frozenset(str(name) for name in spare.get("differs", ())),
    )


def _reads(raw: RawState) -> Reads:
    """What the files read, or nothing (a state from before they were kept, or one of
    another shape: then every file is digested, and the rest of the state still holds)."""
    reads: Any = raw.get("reads")
    try:
        return Reads(
            frames={str(name): str(frame) for name, frame in reads["frames"].items()},
            courses={int(course): str(print_) for course, print_ in reads["courses"].items()},
            pages={
                str(path): (str(rest), tuple(map(int, courses)))
                for path, (rest, courses) in reads["pages"].items()
            },
        )
    except (KeyError, TypeError, AttributeError, ValueError):
        return Reads()


def _published(raw: RawState) -> tuple[str, ...]:
    names = raw.get("published")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        return ()
    return tuple(names)


def save_state(
    site: Path,
    inputs: str,
    digests: Mapping[str, str],
    *,
    pages: int,
    published: Iterable[str],
    anomalies: Iterable[tuple[str, str, str]] = (),
    anomaly_lines: Iterable[str] = (),
    kept: Collection[str] = (),
    previous: BuildState | None = None,
    record: SiteRecord | None = None,
    reads: Reads | None = None,
) -> None:
    """Record the site as published (atomically: a torn state file would be trusted wrongly).

    The files ``kept`` (not rendered: ``previous``, the state this build started from,
    vouched for them) are recorded as ``previous`` has them, without looking: each is the
    very file it describes (a hard link keeps the inode). The others are looked at."""
    files = {}
    site_path = f"{site}/"
    kept = kept if previous is not None else ()
    for name, digest in digests.items():
        known = previous.files.get(name) if previous is not None and name in kept else None
        if known is not None:
            files[name] = [digest, known.size, known.mtime_ns]
            continue
        try:
            found = os.stat(site_path + name, follow_symlinks=False)
        except OSError:
            continue
        files[name] = [digest, found.st_size, found.st_mtime_ns]
    body = {
        "version": STATE_VERSION,
        "catalog_gen": library_versions(),
        "inputs": inputs,
        "site_inode": os.stat(site).st_ino,
        "pages": pages,
        "published": sorted(published),
        "files": files,
        "anomalies": sorted(list(key) for key in anomalies),
        "anomaly_lines": list(anomaly_lines),
    }
    if reads is not None:
        body["reads"] = {
            "frames": reads.frames,
            "courses": {str(course): print_ for course, print_ in reads.courses.items()},
            "pages": reads.pages,
        }
    if record is not None:
        body["site"] = {
            "folders": record.folders,
            "index": record.index_files,  # (size, mtime) pairs: JSON arrays
            "spare": {
                "inode": record.spare_inode,
                "folders": record.spare_folders,
                "differs": sorted(record.spare_differs),
            }
            if record.spare_inode
            else None,
        }
    target = state_path(site)
    handle, temporary = tempfile.mkstemp(prefix=target.name, dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- digests ----------------------------------------------------------------------------------


def digest(*parts: object) -> str:
    """A stable digest of values: dataclasses field by field, collections in order (nothing
    remembered: for a few values; a build's many go through ``Fingerprints``)."""
    return _digest(parts, None)


class Fingerprints:
    """Fingerprints of frozen model objects, remembered by identity for as long as this
    object lives: a course shown on a dozen pages is encoded once per build.

    The model cache (modelcache.py) owns one: it hands the fingerprints it kept from an
    earlier build to the objects it gives back (``remember``), and the page and calendar
    digests of the build read them. ``forget`` when the objects may go: an entry holds its
    object, so that its id stays its own while it is remembered."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[object, str]] = {}

    def of(self, value: object) -> str:
        """``fingerprint(value)``, each frozen object in it encoded once."""
        return _fingerprint(value, self._known)

    def digest(self, *parts: object) -> str:
        """``digest(*parts)``, each frozen object in them encoded once."""
        return _digest(parts, self._known)

    def remember(self, value: object, text: str) -> None:
        """Take the fingerprint of a frozen model object from an earlier build (the model
        cache keeps each with the object it was computed from, which is immutable)."""
        self._known[id(value)] = (value, text)

    def forget(self) -> None:
        self._known.clear()

    def let_go(self, values: Iterable[object]) -> None:
        """Forget these objects (which the catalog no longer holds), so that they may go."""
        known = self._known
        for value in values:
            known.pop(id(value), None)


#: A dataclass's fields that take part in its fingerprint, and whether it is frozen.
_Shape: TypeAlias = tuple[tuple[str, ...], bool]
#: Per class: its dataclass fields that take part (the ``repr`` ones) and whether it is
#: frozen, or None for a class that is not a dataclass. Looked up once per class, not per
#: value: a page digest walks thousands of values.
_SHAPES: dict[type, _Shape | None] = {}
_SCALARS = frozenset({str, int, float, bool, Decimal, date, datetime, time, type(None)})


def fingerprint(value: object) -> str:
    """A canonical text for a value (``Fields`` by their own digest; frozen dataclasses by a
    digest of their fields)."""
    return _fingerprint(value, None)


def _digest(parts: Iterable[object], known: dict[int, tuple[object, str]] | None) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(_fingerprint(part, known).encode("utf-8", "surrogatepass"))
        hasher.update(b"\x1f")
    return hasher.hexdigest()[:32]


def _fingerprint(value: object, known: dict[int, tuple[object, str]] | None) -> str:
    cls = type(value)
    if cls in _SCALARS:
        return repr(value)
    shape: _Shape | Literal[False] | None = _SHAPES.get(cls, False)
    if shape is False:  # not seen yet
        shape = _shape(cls)
    if shape is not None:
        names, frozen = shape
        if frozen and known is not None:
            cached = known.get(id(value))
            if cached is not None and cached[0] is value:
                return cached[1]
        fields = ",".join(f"{name}={_fingerprint(getattr(value, name), known)}" for name in names)
        text = f"{cls.__name__}({fields})"
        if frozen:
            text = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
            if known is not None:
                known[id(value)] = (value, text)  # holds the object: its id stays its own
        return text
    if type(value) is Fields:  # custom properties, extra: a digest of their canonical JSON
        return f"Fields({value.digest})"
    if isinstance(value, (str, int, float, bool, Decimal, date, datetime, time)):
        return repr(value)  # subclasses (Markup is a str)
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(_fingerprint(item, known) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{k!r}:{_fingerprint(v, known)}" for k, v in items) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ",".join(sorted(_fingerprint(item, known) for item in value)) + "}"
    if isinstance(value, Path):
        return repr(str(value))
    raise TypeError(f"no fingerprint for {type(value).__name__}")


def _shape(cls: type) -> _Shape | None:
    shape = None
    if dataclasses.is_dataclass(cls):
        names = tuple(f.name for f in dataclasses.fields(cls) if f.repr)
        # Not in typeshed, and dataclasses has no public way to ask whether a class is frozen.
        shape = (names, bool(cls.__dataclass_params__.frozen))  # type: ignore[attr-defined]
    _SHAPES[cls] = shape
    return shape


def files_digest(paths: Iterable[Path]) -> str:
    """Names and bytes of files (templates, static, content): what a theme edit changes."""
    hasher = hashlib.sha256()
    for path in sorted(paths):
        hasher.update(str(path).encode("utf-8", "surrogateescape") + b"\x00")
        try:
            hasher.update(path.read_bytes())
        except OSError:
            hasher.update(b"\x00missing")
        hasher.update(b"\x1f")
    return hasher.hexdigest()[:32]


# --- what each file is made of ------------------------------------------------------------------


class PageInputs:
    """The input digest of a page: its template files, its own data, the site-wide settings,
    and the whole catalog only when its templates read the ``catalog`` global (with the
    build's moment only when they may read ``catalog.now``).

    ``carried`` takes a page's digest from the last build's state instead, when the page
    read nothing that changed since: the same frame (all of the above but its path and
    data), the same ``Shows``, and none of its courses changed (``Since``). What each page
    read is kept for the next build (``reads``)."""

    def __init__(
        self,
        renderer: Renderer,
        catalog: Catalog,
        site: SiteInfo,
        assets: Mapping[str, tuple[str, bytes]],
        prints: Fingerprints,
        since: Since | None = None,
    ) -> None:
        self.renderer = renderer
        self.catalog = catalog
        self.prints = prints
        self.since = since or Since(Reads(), catalog, prints)
        self.common = prints.digest(site, {name: path for name, (path, _) in assets.items()})
        self._catalog_digest: str | None = None
        self._filters_digest: str | None = None
        self._frames: dict[str, str] = {}
        #: What each page with ``Shows`` read in this build (``Reads.pages``).
        self.read: dict[str, tuple[str, tuple[int, ...]]] = {}

    def page(self, page: Page) -> str:
        before, after = self._made_of(page.template)
        return self.prints.digest(page.path, page.template, *before, page.context, *after)

    def carried(self, page: Page, last: str | None) -> str | None:
        """``last`` (the page's digest in the last build's state), when the page reads
        nothing that changed since; else None (then ``page`` makes its digest)."""
        shows = page.shows
        if shows is None:
            return None
        read = (self.prints.digest(page.template, shows.rest), shows.courses)
        self.read[page.path] = read
        frame = self.frame(page.template)  # kept for the next build, whatever happens here
        if last is None or self.since.last.pages.get(page.path) != read:
            return None
        return last if self.since.holds(page.template, frame, shows.courses) else None

    def frame(self, template: str) -> str:
        """What every page of ``template`` is made of but its path and data."""
        if template not in self._frames:
            before, after = self._made_of(template)
            self._frames[template] = self.prints.digest(template, *before, *after)
        return self._frames[template]

    def _made_of(self, template: str) -> tuple[list[str], list[str]]:
        """What a page of ``template`` is made of besides its path, name and data: what
        comes before its data in its digest, and what after (one list for ``page`` and
        ``frame``, so that a frame covers all a page's digest does but its path and data)."""
        return [self.renderer.template_digest(template), self.common], self._extra(template)

    def reads(self, frames: Mapping[str, str]) -> Reads:
        """What the pages (and, in ``frames``, the other files) of this build read."""
        return Reads({**self._frames, **frames}, self.since.courses, self.read)

    def _extra(self, template: str) -> list[str]:
        used = self.renderer.globals_used(template)
        extra = []
        if used is None or "catalog" in used:
            extra.append(self.catalog_digest())
            read = self.renderer.catalog_attributes(template)
            if read is None or "now" in read:
                extra.append(self.prints.of(self.catalog.now))
        if used is None or "filter_groups" in used:
            if self._filters_digest is None:
                self._filters_digest = self.prints.digest(self.renderer.filter_groups())
            extra.append(self._filters_digest)
        return extra

    def catalog_digest(self) -> str:
        """Everything the catalog shows but the build's moment (``now``: see ``page``); its
        indexes and filter values are made from its courses, and its dates are theirs."""
        if self._catalog_digest is None:
            c = self.catalog
            self._catalog_digest = self.prints.digest(
                c.courses, c.categories, c.venues, c.cities, c.fetched_at
            )
        return self._catalog_digest


class Since:
    """What changed since the last build, as far as the files' digests go: which courses
    have another fingerprint now (or are new). A course's fingerprint covers its dates,
    venues and categories as the course shows them; the clock enters through them too (a
    date that started, or whose booking closed, shows so or is no longer listed: its course
    changed)."""

    def __init__(self, last: Reads, catalog: Catalog, prints: Fingerprints) -> None:
        self.last = last
        self.courses = {course.id: prints.of(course) for course in catalog.courses}
        self._changed: frozenset[int] | None = None

    def holds(self, name: str, frame: str, courses: Iterable[int]) -> bool:
        """Whether a file of the frame ``name`` (now ``frame``) that reads ``courses``
        reads nothing that changed: the same frame as the last build's, and none of the
        courses changed."""
        return self.last.frames.get(name) == frame and self.changed.isdisjoint(courses)

    @property
    def changed(self) -> frozenset[int]:
        if self._changed is None:
            before = self.last.courses
            self._changed = frozenset(
                course for course, print_ in self.courses.items() if before.get(course) != print_
            )
        return self._changed


#: The frame of the calendar files in ``Reads.frames``.
CALENDAR_FRAME = "calendar files"


class CalendarInputs:
    """The input digest of a calendar file: the dates it holds, their courses, and the few
    site settings a calendar shows (its name, the page links, the language)."""

    def __init__(
        self, site: SiteInfo, online_label: str, prints: Fingerprints, since: Since | None = None
    ) -> None:
        self.prints = prints
        self.common = prints.digest("ics", site.title, site.url, site.language, online_label)
        self.since = since

    def carried(self, course: Course) -> bool:
        """Whether the digests of ``course``'s own files (its calendar, its dates') are
        the last build's: the same frame, and the course did not change."""
        since = self.since
        return since is not None and since.holds(CALENDAR_FRAME, self.common, (course.id,))

    def course(self, course: Course) -> str:
        """A course's file: the course, and through it every published date."""
        return self.prints.digest(self.common, course)

    def date(self, course: Course, course_date: CourseDate) -> str:
        return self.prints.digest(self.common, course, course_date)

    def site(self, catalog: Catalog) -> str:
        """The site-wide feed: every published date with its course, that is the courses
        that have dates (each holds its published dates; the feed's order is the dates')."""
        return self.prints.digest(self.common, "feed", [c for c in catalog.courses if c.dates])


def build_inputs(config: Config, snapshot: str, now: datetime) -> str:
    """The digest of everything a build reads: when it equals the last build's, the site
    cannot differ. ``snapshot`` names the snapshot's data (its name and manifest digest).
    "Today" enters as the quarter hour in UTC, when every zone's day turns; the moment itself
    when a template may show it (``catalog.now``)."""
    theme = find_theme(config.site.theme, config.root)
    templates = _files_in(theme / "templates", config.root / config.site.templates_dir)
    others = _files_in(
        theme / "static", config.root / "static", config.root / config.site.content_dir
    )
    moment = now.astimezone(UTC)
    if not _templates_read_now(templates):
        moment = moment.replace(minute=moment.minute // 15 * 15, second=0, microsecond=0)
    return digest(snapshot, config, files_digest(templates + others), moment.isoformat())


def _files_in(*folders: Path) -> list[Path]:
    return [
        path
        for folder in folders
        if folder.is_dir()
        for path in folder.rglob("*")
        if path.is_file()
    ]


def _templates_read_now(templates: Iterable[Path]) -> bool:
    """Whether a template file may show ``catalog.now``."""
    texts = []
    for path in templates:
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue  # not a template the build can load; it reports what it needs
    return reads_catalog_now(texts)
