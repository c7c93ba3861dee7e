"""What ``catalog-gen serve`` shows after a save: the open pages first, the rest behind them.

    save → catalog.toml, "now" → a builder prepared for the save (warm: site/warm.py) → the
    pages open in tabs rendered, and those tabs told to reload → the build, as ``build
    --offline`` runs it (rendered into a staging folder, swapped in whole, the search index
    last) → the tabs whose page the build changed further told to reload

``LiveSite`` keeps the project's ``WarmSite`` (the catalog, the page plan and the compiled
templates, made again only when what they are made of changes: a new snapshot, a clock a
quarter hour on, publishing rules) and, for the last save, a ``Revision``: the site as that
save makes it, rendered page by page on request. Until the build behind it has published the
save, the server asks the revision for a page or a static file before the disk (``fresh``),
so a page requested after a save is never the old one; calendar files, feeds and the search
index come from the disk, and are brought up to date by the build.

The build is ``run_build``, the offline build's own steps with the warm builder, so the site
it leaves is the one ``build --offline`` makes, byte for byte. It runs on a thread of its
own, one at a time. A save while it runs supersedes it: it stops at its next step and
discards its staging folder (site/ stays the last good one: publishing is one atomic swap),
and the new save's build follows. A build that fails leaves site/ as it was and shows the
error, with its file and line, in every tab, until the next good save.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from catalog_gen.build import BuildReport, api_keys, newest_snapshot, run_build, verify
from catalog_gen.config import Config
from catalog_gen.errors import CatalogGenError
from catalog_gen.progress import NoProgress
from catalog_gen.site.pages import NOT_FOUND
from catalog_gen.site.warm import WarmBuilder, WarmSite
from catalog_gen.source.store import SnapshotStore

#: Seconds a request waits for a save's pages to be prepared before it is served from disk.
READY_SECONDS = 60.0
#: Seconds the build behind a save waits for the tabs told to reload to fetch their page:
#: they are served first, not in the build's shadow (one process: it would slow them).
RELOAD_SECONDS = 1.0

#: What the server is told after each step: the files that changed (written, removed) for
#: the tabs to decide whether to reload, or the error that stopped the step.
Tell = Callable[[Sequence[str], Sequence[str], str | None], None]


class Superseded(Exception):
    """A newer save made this build moot (raised inside the build; never shown)."""


class _Stop(NoProgress):
    """The build's progress, used to stop it at its next step once it is superseded (and to
    hold it at a step, for tests)."""

    def __init__(self, cancelled: threading.Event, hold: Callable[[str], None] | None) -> None:
        self.cancelled, self.hold = cancelled, hold

    def phase(self, name: str, total: int | None = None) -> None:
        if self.hold is not None:
            self.hold(name)
        self._check()

    def advance(self, units: int = 1) -> None:
        self._check()

    def _check(self) -> None:
        if self.cancelled.is_set():
            raise Superseded()


@dataclass
class Revision:
    """The site as one save makes it, rendered page by page as the server asks (each page
    once, and checked for the API key like every file a build publishes)."""

    number: int
    builder: WarmBuilder
    check: Callable[[str, bytes], None]
    rendered: dict[str, bytes] = field(default_factory=dict)
    #: A renderer draws one page at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The pages tabs were told to reload, until each is fetched (then ``reloaded`` is set).
    awaited: set[str] = field(default_factory=set)
    reloaded: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.assets = {path: data for path, data in self.builder.assets.values()}
        self.reloaded.set()

    def await_reloads(self, pages: Collection[str]) -> None:
        """Tabs were told to reload ``pages``: ``reloaded`` is set when all are fetched."""
        with self.lock:
            self.awaited = {page for page in pages if page in self.rendered}
            if self.awaited:
                self.reloaded.clear()

    def page_name(self, name: str) -> str | None:
        """The planned page a request names: the path, or the index.html of its folder."""
        planned = self.builder.by_path
        if name in planned:
            return name
        index = f"{name}/index.html" if name else "index.html"
        return index if index in planned else None

    def render(self, name: str) -> bytes:
        with self.lock:
            data = self.rendered.get(name)
            if data is None:
                data = self.builder.page(name)
                self.check(name, data)
                self.rendered[name] = data
            return data

    def file(self, name: str) -> tuple[int, str, bytes] | None:
        """(status, file name, bytes) of a page or static file of this revision; None for
        the files it leaves to the disk (calendar files, feeds, the search index)."""
        page = self.page_name(name)
        if page is not None:
            return 200, page, self.render(page)
        if name in self.assets:
            return 200, name, self.assets[name]
        if (name.endswith(".html") or "." not in name.rpartition("/")[2]) and (
            NOT_FOUND in self.builder.by_path
        ):
            return 404, NOT_FOUND, self.render(NOT_FOUND)
        return None

    def served(self, name: str) -> None:
        """A page of this revision was sent to a browser."""
        with self.lock:
            self.awaited.discard(name)
            if not self.awaited:
                self.reloaded.set()

    def shows(self, name: str, site: Path) -> bool:
        """Whether a tab was shown this file as the build published it (no reload needed)."""
        data = self.rendered.get(name)
        if data is None:
            return False
        with suppress(OSError):
            return (site / name).read_bytes() == data
        return False


@dataclass
class _Job:
    """One save's build, for the build thread."""

    number: int
    config: Config
    now: datetime
    warm: WarmSite
    #: The save's pages as the tabs were shown them.
    revision: Revision
    cancelled: threading.Event = field(default_factory=threading.Event)


class LiveSite:
    """The preview's site: each save's revision at once, its build behind it.

    ``config`` reads catalog.toml again (it may have changed); ``now`` gives the moment a
    save is built at (once per save: pinned with --now, else the clock in the catalog's
    zone). ``tell`` is how the server hears of changed files and errors; ``log`` takes the
    lines for the terminal.
    """

    def __init__(
        self,
        *,
        config: Callable[[], Config],
        now: Callable[[Config], datetime],
        log: Callable[[str], None] = print,
        tell: Tell | None = None,
    ) -> None:
        self._config, self._now, self._log = config, now, log
        self.tell: Tell = tell or (lambda written, removed, error: None)
        #: Called on the build thread with "build" before each build, then with the name of
        #: each of its phases ("catalog", "rendering", "publishing" …): tests hold it there.
        self.hold: Callable[[str], None] | None = None
        self._lock = threading.Condition()
        self._saves = 0  # saves seen (the first build counts as one)
        self._published = 0  # the save whose build site/ holds
        self._revision: Revision | None = None
        self._ready = threading.Event()  # no save is being prepared
        self._ready.set()
        self._error: str | None = None
        self._warm: WarmSite | None = None
        self._snapshots: Path | None = None
        self._snapshot: str | None = None
        self._site_dir: Path | None = None
        self._job: _Job | None = None  # waiting for the build thread
        self._running: _Job | None = None
        self._stopping = False
        self._printed: tuple[str, ...] | None = None
        self._thread = threading.Thread(target=self._builds, daemon=True)
        self._thread.start()

    # --- a save -------------------------------------------------------------------------------

    def refresh(
        self, open_pages: Collection[str] = (), *, fatal: tuple[type[Exception], ...] = ()
    ) -> None:
        """A save (or the first build): render the open pages, tell the tabs, start the build.

        Errors (a bad config, a template error on an open page, no snapshot) become the error
        the tabs show, unless of a ``fatal`` kind, raised.
        """
        started = time.monotonic()
        with self._lock:
            self._saves += 1
            number = self._saves
            self._ready.clear()  # requests wait for this save's revision
            previous = self._revision
            self._cancel()
        try:
            try:
                revision, job = self._prepare(number)
                written, removed = self._render_first(revision, previous, open_pages)
            except Exception as exc:  # a file half-saved too: shown, and the next save retries
                if isinstance(exc, fatal):
                    raise
                with self._lock:
                    self._revision = None
                self._fail(number, _message(exc))
                return
            with self._lock:
                self._revision = revision
        finally:
            self._ready.set()
        if written or removed or self._error is not None:
            self._error = None
            revision.await_reloads(written)
            self.tell(written, removed, None)
        seconds = time.monotonic() - started
        shown = [_url(name) for name in sorted(set(open_pages))]
        if shown:
            more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
            self._log(f"rendered {', '.join(shown[:3])}{more} first: {seconds:.2f} s")
        with self._lock:
            self._job = job
            self._lock.notify_all()

    def _prepare(self, number: int) -> tuple[Revision, _Job]:
        config = self._config()
        now = self._now(config)
        if self._warm is None or not self._warm.fits(config):
            self._warm = WarmSite(config)
        store = SnapshotStore(config.snapshot_path)
        self._snapshots, self._site_dir = config.snapshot_path, config.output_path
        name, _ = newest_snapshot(config, store, now, None)
        self._snapshot = name
        builder = self._warm.builder(config)
        builder.prepare(store.stored(name), now=now)
        revision = Revision(number, builder, verify(api_keys(config, None)))
        return revision, _Job(number, config, now, self._warm, revision)

    def _render_first(
        self, revision: Revision, previous: Revision | None, open_pages: Collection[str]
    ) -> tuple[list[str], list[str]]:
        """Render the open pages; which of them differ from what their tabs show, and which
        are gone (and which static files are new: a tab reloads for those too)."""
        site = self._site_dir
        assert site is not None
        written, removed = [], []
        for page in sorted(set(open_pages)):
            name = revision.page_name(page)
            if name is None:
                gone = previous is not None and previous.page_name(page) is not None
                if gone or (site / page).is_file():
                    removed.append(page)
                continue
            data = revision.render(name)
            before = previous.rendered.get(name) if previous is not None else None
            if before is None:
                with suppress(OSError):
                    before = (site / name).read_bytes()
            if data != before:
                written.append(page)
        if previous is not None:
            new_assets = set(revision.assets) - set(previous.assets)
        else:
            new_assets = {name for name in revision.assets if not (site / name).is_file()}
        return written + sorted(new_assets), removed

    def fresh(self, name: str) -> tuple[int, str, bytes] | None:
        """A page or static file as the last save makes it, while its build has not yet
        published it; None when site/ holds it (or the file is not one the revision makes).
        A template error in the page is raised (CatalogGenError)."""
        self._ready.wait(READY_SECONDS)
        with self._lock:
            if self._published == self._saves or self._revision is None:
                return None
            revision = self._revision
        return revision.file(name)

    def served(self, name: str) -> None:
        """``fresh`` gave a page that has now been sent: once every tab told to reload has
        fetched its page, the build behind the save may start."""
        revision = self._revision
        if revision is not None:
            revision.served(name)

    def snapshot_changed(self) -> bool:
        """Whether the snapshot folder has a newer snapshot than the one shown."""
        if self._snapshots is None:
            return True
        try:
            return SnapshotStore(self._snapshots).latest_name() != self._snapshot
        except (OSError, CatalogGenError):
            return True

    # --- the build behind ---------------------------------------------------------------------

    def _builds(self) -> None:
        """The build thread: the latest save's build, one at a time."""
        while True:
            with self._lock:
                while self._job is None and not self._stopping:
                    self._lock.wait()
                if self._stopping or self._job is None:  # the wait ends on a job or a stop
                    return
                job, self._job = self._job, None
                self._running = job
            try:
                self._build(job)
            except Exception as exc:  # a bug: shown, and the preview lives on
                self._fail(job.number, _message(exc))
            finally:
                with self._lock:
                    self._running = None
                    self._lock.notify_all()

    def _build(self, job: _Job) -> None:
        job.revision.reloaded.wait(RELOAD_SECONDS)
        hold = self.hold
        if hold is not None:
            hold("build")
        if job.cancelled.is_set():
            return
        builder = job.warm.builder(job.config)
        try:
            report = run_build(
                job.config, None, now=job.now, progress=_Stop(job.cancelled, hold), builder=builder
            )
        except Superseded:
            return
        except CatalogGenError as exc:
            self._fail(job.number, str(exc))
            return
        with self._lock:
            if job.number != self._saves:
                return  # site/ holds an older save now; the newer save's build follows
            self._published = job.number
            revision = self._revision
        site = job.config.output_path
        written = [n for n in report.written_files if not (revision and revision.shows(n, site))]
        self.tell(written, report.removed_files, None)
        self._report(report)

    def _report(self, report: BuildReport) -> None:
        """The build's line, its warnings, and its odd data when that changed."""
        for warning in report.warnings:
            self._log(f"warning: {warning}")
        if report.anomaly_lines != self._printed:
            for line in report.anomaly_lines:
                self._log(f"warning: {line}")
            if self._printed is None:
                for note in report.notes:
                    self._log(f"note: {note}")
            self._printed = report.anomaly_lines
        self._log(report.summary_line())

    def _fail(self, number: int, message: str) -> None:
        with self._lock:
            if number != self._saves:
                return  # a newer save is under way
        self._error = message
        self.tell((), (), message)
        self._log(f"error: {message}")

    def _cancel(self) -> None:
        """Supersede the waiting and the running build (hold the lock)."""
        for job in (self._job, self._running):
            if job is not None:
                job.cancelled.set()
        self._job = None

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until no build waits or runs; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._job is None and self._running is None, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Supersede the build under way (site/ stays as it was) and end the build thread."""
        with self._lock:
            self._stopping = True
            self._cancel()
            self._lock.notify_all()
        self._thread.join(timeout)


def _message(exc: Exception) -> str:
    """The error line: a named error says what happened; anything else says what it is."""
    return str(exc) if isinstance(exc, CatalogGenError) else f"{type(exc).__name__}: {exc}"


def _url(name: str) -> str:
    """A page's path as its address reads: ``kurs/x/index.html`` → ``/kurs/x/``."""
    if name == "index.html":
        return "/"
    return "/" + name.removesuffix("index.html")
