"""Every file of the site from one snapshot: the site half's own sequence.

    catalog (modelcache.py: what earlier builds made of unchanged records is kept) → page
    plan → digests → render the changed pages (forked workers that write them) → the search
    index (alongside the rest) → calendar files → sitemap, robots.txt, the Atom feed

``SiteBuilder`` holds the pieces (the catalog, the page plan, the renderer, the digests): a
build makes one, ``prepare``s it and asks it for the ``files`` whose inputs changed, which
go to a ``Sink`` as they are made (publish.py writes them into the staging folder; nothing
holds the whole site in memory). The preview server can keep one warm across edits, ask it
for the bytes of the open page first (``page``), then for the rest.

Nothing here touches site/ but through the sink; which files are kept because their inputs
did not change is buildstate.py's to decide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from catalog_gen.anomalies import Anomalies
from catalog_gen.config import Config
from catalog_gen.progress import NoProgress, Progress
from catalog_gen.site import forked
from catalog_gen.site.buildstate import (
    CALENDAR_FRAME,
    BuildState,
    CalendarInputs,
    PageInputs,
    Reads,
    Since,
    digest,
)
from catalog_gen.site.calendars import CalendarSite, CalendarWriter, Pieces
from catalog_gen.site.content import ContentPage, load_content, main_menu
from catalog_gen.site.drafts import DraftRules
from catalog_gen.site.feeds import FeedSite, atom_feed, robots_txt, sitemap_xml
from catalog_gen.site.i18n import Locale, get_locale
from catalog_gen.site.model import Catalog, Course, CourseDate
from catalog_gen.site.modelcache import ModelCache
from catalog_gen.site.pages import ROBOTS, SITEMAP, Page, Urls, absolute, plan_pages
from catalog_gen.site.publish import WRITTEN, Parts, parts_of
from catalog_gen.site.render import (
    CompiledTemplates,
    Renderer,
    SiteInfo,
    find_theme,
    static_assets,
)
from catalog_gen.site.search import matches
from catalog_gen.snapshot import Snapshot, StoredSnapshot


@dataclass(frozen=True)
class RenderedSite:
    """The output of one build: the files made (their bytes, when the sink keeps them), the
    files kept as they are, and what each is made of."""

    files: dict[str, bytes]
    #: Files whose inputs did not change since they were written: not rendered, kept.
    kept: frozenset[str]
    #: The input digest of every file that has one (pages, calendar files, the sitemap).
    digests: dict[str, str]
    pages: int
    #: Pages and calendar files rendered in this build.
    rendered: int = 0
    #: Every file of the site, by name (the rendered ones and the kept ones).
    names: frozenset[str] = field(default=frozenset(), repr=False)
    #: What the build should tell about the catalog it made (``catalog_notes``).
    notes: tuple[str, ...] = ()
    #: What the files read (kept with the digests for the next build), when known.
    reads: Reads | None = None


class Sink(Protocol):
    """Where the files of a build go (publish.Publisher for a build, a dict for tests)."""

    def plan(self, names: Collection[str], *, kept: Collection[str]) -> None:
        """Every file the site will have; ``kept`` are the old files as they are."""

    def carry(self, names: Collection[str]) -> None:
        """More of the planned files that are the old files as they are (known later)."""

    def begin(self) -> None:
        """Ready to take files from forked workers."""

    def put(self, name: str, data: Parts) -> str:
        """One file, whole or (a big one) as its parts in order: WRITTEN, UNCHANGED, or
        WRITTEN_READ_ALIKE (written, but the same to the search index); may be called in a
        forked worker."""

    def mark(self, name: str, status: str) -> None:
        """Record a worker's ``put``."""

    def course_pages_done(self, changed: Collection[str]) -> None:
        """Every course page is in: ``changed`` are those written (but not those read
        alike) or removed (the search index reads them: it may start now, beside the rest)."""


class MemorySink:
    """The files of a build as bytes in memory (tests, and ``render_files``)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def plan(self, names: Collection[str], *, kept: Collection[str]) -> None:
        pass

    def carry(self, names: Collection[str]) -> None:
        pass

    def begin(self) -> None:
        pass

    def put(self, name: str, data: Parts) -> str:
        self.files[name] = b"".join(parts_of(data))
        return WRITTEN

    def mark(self, name: str, status: str) -> None:
        pass

    def course_pages_done(self, changed: Collection[str]) -> None:
        pass


def render_files(
    config: Config,
    snapshot: Snapshot | StoredSnapshot,
    *,
    now: datetime,
    progress: Progress | None = None,
    state: BuildState | None = None,
    anomalies: Anomalies | None = None,
) -> RenderedSite:
    """Every output file of the site, from one snapshot, as bytes: rendered, or kept when
    ``state`` shows it was made from the same inputs. Odd data is noted in ``anomalies``."""
    builder = SiteBuilder(config)
    sink = MemorySink()
    try:
        builder.prepare(snapshot, now=now, anomalies=anomalies, progress=progress)
        made = builder.files(sink, state=state, progress=progress)
    finally:
        builder.done()
    return dataclasses.replace(made, files=sink.files)


class SiteBuilder:
    """The site half of a build, held for one build or kept warm (the preview server).

    ``prepare`` makes the catalog at a moment (from what the model cache kept), the page
    plan and the renderer (reading the templates, content and static files); ``page``
    renders one planned page by its path; ``files`` renders every file whose inputs changed
    into a sink. ``done`` forgets the build's fingerprints.
    """

    def __init__(
        self,
        config: Config,
        *,
        cache: Path | None = None,
        models: ModelCache | None = None,
        fresh: bool = False,
    ) -> None:
        """``models``: a model cache kept by the caller (the preview's, warm between builds);
        else one reading and writing ``cache`` (only writing it, when ``fresh``)."""
        self.config = config
        if models is None:
            models = ModelCache(cache, DraftRules.of(config), fresh=fresh)
        self.models = models
        self.catalog: Catalog | None = None

    def prepare(
        self,
        snapshot: Snapshot | StoredSnapshot,
        *,
        now: datetime,
        anomalies: Anomalies | None = None,
        progress: Progress | None = None,
    ) -> None:
        config = self.config
        progress = progress or NoProgress()
        progress.phase("catalog")
        catalog = self.models.catalog(snapshot, now=now, anomalies=anomalies)
        content = load_content(config.root / config.site.content_dir)
        urls = Urls(config.site.language)
        pages = self.plan(catalog, content, urls)
        theme = find_theme(config.site.theme, config.root)
        assets = static_assets([theme / "static", config.root / "static"])
        site = SiteInfo(
            title=config.site.title,
            language=config.site.language,
            menu=main_menu(content),
            url=config.site_url,
            description=config.site.description,
            organization=config.site.organization,
            search=config.site.search,
        )
        locale = get_locale(config.site.language)
        renderer = Renderer(
            theme=theme,
            overrides=config.root / config.site.templates_dir,
            locale=locale,
            urls=urls,
            site=site,
            catalog=catalog,
            assets=assets,
        )
        renderer.env.bytecode_cache = self.compiled_templates()
        self.catalog, self.urls, self.pages, self.site = catalog, urls, pages, site
        self.assets, self.locale, self.renderer = assets, locale, renderer
        self.by_path = {page.path: page for page in pages}

    def compiled_templates(self) -> CompiledTemplates:
        """The templates compiled before: by the last build, from the build cache (the
        preview keeps them in memory: warm.py)."""
        return CompiledTemplates(self.models.recall(COMPILED))

    def plan(self, catalog: Catalog, content: list[ContentPage], urls: Urls) -> list[Page]:
        """Every page of the site (the preview keeps the plan between builds: warm.py)."""
        site = self.config.site
        return plan_pages(catalog, content, urls, site.per_page, search=site.search)

    def page(self, path: str) -> bytes:
        """The bytes of one planned page (KeyError for a path the plan does not have)."""
        return self.renderer.render(self.by_path[path])

    def files(
        self,
        sink: Sink,
        *,
        state: BuildState | None = None,
        progress: Progress | None = None,
        check: Callable[[str, bytes], None] | None = None,
    ) -> RenderedSite:
        """Every file whose inputs changed, into ``sink``; the others named as kept.
        ``check`` sees every file's bytes before the sink does (the key check)."""
        progress = progress or NoProgress()
        state = state or BuildState()
        output = self.config.output_path
        catalog = self.catalog
        assert catalog is not None  # prepare made it
        prints = self.models.prints
        since = Since(state.reads, catalog, prints)
        inputs = PageInputs(self.renderer, catalog, self.site, self.assets, prints, since)
        progress.phase("checking", len(self.pages))
        digests: dict[str, str] = {}
        kept: set[str] = set()
        for page in self.pages:
            progress.advance()
            last = state.files.get(page.path)
            made = inputs.carried(page, last.digest if last else None) or inputs.page(page)
            digests[page.path] = made
            if state.unchanged(output, page.path, made):
                kept.add(page.path)
        calendars = CalendarFiles(
            catalog, self.site, self.urls, self.locale, state, output, self.models, since
        )
        machine = MachineFiles(catalog, self.pages, self.site, self.urls, self.locale)
        sitemap = machine.sitemap_digest()
        if sitemap is not None:
            digests[SITEMAP] = sitemap
            if state.unchanged(output, SITEMAP, sitemap):
                kept.add(SITEMAP)
        assets = {path: data for path, data in self.assets.values()}
        names = {*(p.path for p in self.pages), *calendars.names, *machine.names(), *assets}
        sink.plan(names, kept=kept)

        todo = [page for page in self.pages if page.path not in kept]
        course_pages = {p.path for p in self.pages if p.template == "course.html"}
        progress.phase("rendering", len(todo))
        put = _checked(sink, check)
        changed_pages = _PageOutcomes(sink, course_pages, self.urls.course_pages())
        with _Renderers(self.renderer, todo, put, changed_pages, progress) as rendering:
            rendering.start()
            # The calendars are checked once the pages are on their way (and the course
            # pages, in this process, are in: the search index starts before this).
            progress.phase("calendars")
            calendars.check()
            digests.update(calendars.digests)
            sink.carry(calendars.kept)
            for count, (name, data) in enumerate(calendars.render()):
                put(name, data)
                if count % 256 == 0:
                    rendering.poll()
            rendering.wait()
        progress.phase("feeds")
        for name, data in machine.render(skip={SITEMAP} & kept):
            put(name, data)
        for name, data in assets.items():
            put(name, data)
        rendered = len(todo) + calendars.rendered
        compiled = self.renderer.env.bytecode_cache
        if isinstance(compiled, CompiledTemplates) and compiled.changed:
            self.models.keep(COMPILED, compiled.saved())  # for the next build
        return RenderedSite(
            {},
            frozenset(kept | calendars.kept),
            digests,
            len(self.pages),
            rendered,
            frozenset(names),
            catalog_notes(catalog),
            inputs.reads({CALENDAR_FRAME: calendars.frame}),
        )

    def done(self) -> None:
        """Forget this build's fingerprints (the model cache's parts keep their own); call
        after saving the model cache."""
        self.models.prints.forget()


def catalog_notes(catalog: Catalog | None) -> tuple[str, ...]:
    """Hints about the catalog for the build report: bookable dates that can say only "contact
    the course provider", because they have no booking path and no contact is set."""
    if catalog is None:
        return ()
    asking = [d for d in catalog.dates if d.booking is not None and d.booking.kind == "none"]
    if not asking:
        return ()
    dates, has, says = (
        ("1 bookable date", "has", "it says")
        if len(asking) == 1
        else (f"{len(asking)} bookable dates", "have", "they say")
    )
    return (
        f"{dates} {has} no booking path (publish.booking) and the site sets no contact, so "
        f"{says} only to contact the course provider (e.g. course date {asking[0].id}); set "
        "site.contact_url, site.contact_email or site.contact_phone",
    )


def _checked(sink: Sink, check: Callable[[str, bytes], None] | None) -> Callable[[str, Parts], str]:
    if check is None:
        return sink.put

    def put(name: str, data: Parts) -> str:
        for block in (data,) if isinstance(data, bytes) else _blocks(parts_of(data)):
            check(name, block)
        return sink.put(name, data)

    return put


#: A file given in parts is checked in blocks of whole lines, of about this size.
_BLOCK = 1 << 20


def _blocks(parts: Iterable[bytes | memoryview]) -> Iterator[bytes]:
    """The parts' bytes in blocks that end after a line feed (the last, with what is left):
    what the key check finds in the whole file, it finds in one block. No spelling of a key
    holds a line feed, nor does an escape (redact.py), so none lies across two blocks, and
    each block starts where the whole file's escapes are read from. A file without line
    feeds comes in one block (the files given in parts are calendars: lines of 75 octets)."""
    buffer = bytearray()
    for part in parts:
        buffer += part
        if len(buffer) >= _BLOCK:
            cut = buffer.rfind(b"\n") + 1
            if cut:
                yield bytes(buffer[:cut])
                del buffer[:cut]
    yield bytes(buffer)


class _PageOutcomes:
    """Which course pages changed (written, or removed); tells the sink once every course
    page is in."""

    def __init__(self, sink: Sink, course_pages: Collection[str], course_glob: str) -> None:
        self.sink, self.course_pages, self.course_glob = sink, course_pages, course_glob
        self.changed: set[str] = set()
        self.told = False

    def note(self, name: str, status: str) -> None:
        if status == WRITTEN and name in self.course_pages:
            self.changed.add(name)

    def course_pages_in(self) -> None:
        if self.told:
            return
        self.told = True
        # A removed course page is no page of the new plan: it is known by its address
        # (the index read it, and must forget it).
        removed = getattr(self.sink, "removed", ())
        self.changed |= {name for name in removed if matches(name, self.course_glob)}
        self.sink.course_pages_done(self.changed)


#: The name under which the build cache keeps where the site-wide calendar holds each event.
SITE_PIECES = "site-calendar"
#: The name under which the build cache keeps the templates compiled (render.CompiledTemplates).
COMPILED = "templates"
#: Below this many pages a second process costs more than it saves (measured: bench/).
PARALLEL_MIN_PAGES = 400
#: Pages per task handed to a worker: big enough to keep the pipe busy, small enough to
#: share the work evenly.
PARALLEL_CHUNK = 64
#: What forked workers inherit: the renderer, the pages and where they go (never pickled).
_WORK: tuple[Renderer, list[Page], Callable[[str, bytes], str]] | None = None


class _Renderers:
    """The pages rendered and put into the sink: by forked workers (which write them
    themselves: parallel rendering and parallel writes) when the machine has cores to spare
    and there are enough pages, else in this process. ``start`` hands the work out; the
    caller can do other work (the calendars) before ``wait``."""

    def __init__(
        self,
        renderer: Renderer,
        pages: list[Page],
        put: Callable[[str, bytes], str],
        outcomes: _PageOutcomes,
        progress: Progress,
    ) -> None:
        # Course pages first: the search index reads them, and runs alongside the rest.
        self.pages = sorted(pages, key=lambda page: page.path not in outcomes.course_pages)
        self.renderer, self.put = renderer, put
        self.outcomes, self.progress = outcomes, progress
        self.pool: ProcessPoolExecutor | None = None
        self.futures: list[Future[list[tuple[str, str]]]] = []
        #: How many of the futures render course pages (they come first).
        self.course_futures = 0
        self.collected = 0

    def __enter__(self) -> _Renderers:
        return self

    def __exit__(self, *exc: object) -> None:
        global _WORK
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        _WORK = None

    def start(self) -> None:
        global _WORK
        workers = forked.workers(len(self.pages), PARALLEL_MIN_PAGES)
        if workers > 1:
            self.outcomes.sink.begin()
            _WORK = (self.renderer, self.pages, self.put)
            try:
                self.pool = forked.pool(workers)
                courses = sum(1 for p in self.pages if p.path in self.outcomes.course_pages)
                # Course pages apart from the others, so that the index can start early.
                bounds = [
                    (start, min(start + PARALLEL_CHUNK, end))
                    for begin, end in ((0, courses), (courses, len(self.pages)))
                    for start in range(begin, end, PARALLEL_CHUNK)
                ]
                self.futures = [self.pool.submit(_render_chunk, b) for b in bounds]
                self.course_futures = sum(1 for b in bounds if b[1] <= courses)
                return
            except OSError:  # no working semaphores here (some containers)
                if self.pool is not None:
                    self.pool.shutdown(wait=False)
                self.pool, self.futures = None, []
        for page in self.pages:
            if page.path not in self.outcomes.course_pages:  # they come first: all are in
                self.outcomes.course_pages_in()
            status = self.put(page.path, self.renderer.render(page))
            self.outcomes.note(page.path, status)
            self.progress.advance()
        self.outcomes.course_pages_in()

    def poll(self) -> None:
        """Collect what the workers finished so far; once every course page is in, say so."""
        while self.collected < len(self.futures) and self.futures[self.collected].done():
            self._collect(self.futures[self.collected])
        if self.collected >= self.course_futures:
            self.outcomes.course_pages_in()

    def wait(self) -> None:
        """Collect every worker's pages (their errors are raised here)."""
        while self.collected < len(self.futures):
            self._collect(self.futures[self.collected])
            if self.collected >= self.course_futures:
                self.outcomes.course_pages_in()
        self.outcomes.course_pages_in()

    def _collect(self, future: Future[list[tuple[str, str]]]) -> None:
        done = future.result()
        for name, status in done:
            self.outcomes.sink.mark(name, status)
            self.outcomes.note(name, status)
        self.progress.advance(len(done))
        self.collected += 1


def _render_chunk(bounds: tuple[int, int]) -> list[tuple[str, str]]:
    assert _WORK is not None
    renderer, pages, put = _WORK
    done = []
    for page in pages[bounds[0] : bounds[1]]:
        done.append((page.path, put(page.path, renderer.render(page))))
    return done


def course_address(site: SiteInfo, urls: Urls) -> Callable[[Course], str] | None:
    """A course page's public address, for calendars and the feed; None without base_url."""
    if not site.url:
        return None
    return lambda course: absolute(site.url, urls.course(course))


class CalendarFiles:
    """The .ics files: each one's digest, which are kept, and the others rendered.

    The site-wide calendar holds every date's event; when it must be made again, the events
    of dates whose own file is kept are taken from the old site-wide file (they are the
    same bytes), so only the changed dates are serialised. Where the old file holds each
    event is kept in the build cache (``SITE_PIECES``), so it is not read through to find
    them.
    """

    def __init__(
        self,
        catalog: Catalog,
        site: SiteInfo,
        urls: Urls,
        locale: Locale,
        state: BuildState,
        output: Path,
        models: ModelCache,
        since: Since | None = None,
    ) -> None:
        page_url = course_address(site, urls)
        self.calendar_site = CalendarSite(
            title=site.title,
            host=urlsplit(site.url).hostname or "catalog-gen.invalid",
            language=site.language,
            page_url=page_url or (lambda course: None),
            online_label=locale.t("online"),
        )
        self.catalog, self.urls, self.state, self.output = catalog, urls, state, output
        self.models = models
        made_of = CalendarInputs(site, self.calendar_site.online_label, models.prints, since)
        #: What every calendar file is made of but its dates (``Reads.frames``).
        self.frame = made_of.common
        self.digests: dict[str, str] = {}
        self.kept: set[str] = set()
        #: Every calendar file: (path, course, date), no course for the site-wide file and
        #: no date for a course's own.
        self._files: list[tuple[str, Course | None, CourseDate | None]] = []
        #: The files to make (``check``).
        self._todo: list[tuple[str, Course | None, CourseDate | None]] = []
        self._kept_dates: set[int] = set()
        self._made_of = made_of
        for course in catalog.courses:
            if course.dates:
                self._files.append((urls.course_calendar(course), course, None))
                self._files += [(urls.date_calendar(course, d), course, d) for d in course.dates]
        self.site_path = urls.site_calendar()
        self._files.append((self.site_path, None, None))
        self.names = [path for path, _, _ in self._files]

    def check(self) -> None:
        """Each file's digest, and which files are kept (the others are to be made)."""
        made_of = self._made_of
        carried = False
        for path, course, cdate in self._files:
            if course is None:  # the site-wide file: made of every course
                carried = False
            elif cdate is None:  # a course's own file comes before its dates'
                carried = made_of.carried(course)
            if self._add(path, course, cdate, carried) and cdate is not None:
                self._kept_dates.add(cdate.id)

    def _add(
        self, path: str, course: Course | None, cdate: CourseDate | None, carried: bool
    ) -> bool:
        """Note the file's digest (the last build's, when ``carried``: its course did not
        change) and whether it is kept; else it is to be made."""
        last = self.state.files.get(path) if carried else None
        inputs = last.digest if last else self._inputs(course, cdate)
        self.digests[path] = inputs
        if self.state.unchanged(self.output, path, inputs):
            self.kept.add(path)
            return True
        self._todo.append((path, course, cdate))
        return False

    def _inputs(self, course: Course | None, cdate: CourseDate | None) -> str:
        made_of = self._made_of
        if course is None:
            return made_of.site(self.catalog)
        return made_of.course(course) if cdate is None else made_of.date(course, cdate)

    @property
    def rendered(self) -> int:
        return len(self._todo)

    def render(self) -> Iterable[tuple[str, bytes | list[bytes | memoryview]]]:
        """Each file to make, with its bytes (the site-wide calendar as its parts)."""
        writer = CalendarWriter(self.calendar_site)
        if self._todo and self._kept_dates:
            old = self.state.written_bytes(self.output, self.site_path)
            if old is not None:  # the last build's site-wide file, as it wrote it
                pieces = self.models.recall(SITE_PIECES)
                where = pieces if isinstance(pieces, Pieces) else None
                writer.reuse(old, only=self._kept_dates, pieces=where)
        for path, course, cdate in self._todo:
            if course is None:
                parts, pieces = writer.site_calendar_in_pieces(self.catalog)
                self.models.keep(SITE_PIECES, pieces)
                yield path, parts
            elif cdate is None:
                yield path, writer.course_calendar(course)
            else:
                yield path, writer.date_calendar(course, cdate)


class MachineFiles:
    """sitemap.xml, robots.txt and the Atom feed (sitemap and feed need site.url). The
    sitemap has a digest (every page's path, lastmod and whether it is listed); the others
    are cheap enough to make every time."""

    def __init__(
        self, catalog: Catalog, pages: list[Page], site: SiteInfo, urls: Urls, locale: Locale
    ) -> None:
        self.catalog, self.pages, self.site, self.urls, self.locale = (
            catalog,
            pages,
            site,
            urls,
            locale,
        )

    def names(self) -> list[str]:
        return [ROBOTS, SITEMAP, self.urls.feed()] if self.site.url else [ROBOTS]

    def sitemap_digest(self) -> str | None:
        if not self.site.url:
            return None
        listed = [(p.path, p.lastmod) for p in self.pages if p.indexable]
        return digest("sitemap", self.site.url, listed)

    def render(self, skip: Collection[str] = ()) -> Iterable[tuple[str, bytes]]:
        site, urls, locale = self.site, self.urls, self.locale
        yield ROBOTS, robots_txt(site.url, SITEMAP if site.url else None)
        page_url = course_address(site, urls)
        if not site.url or page_url is None:
            return
        if SITEMAP not in skip:
            yield SITEMAP, sitemap_xml(self.pages, site.url)
        yield (
            urls.feed(),
            atom_feed(
                self.catalog,
                FeedSite(
                    title=locale.t("feed_title", site=site.title),
                    author=site.provider,
                    site_url=site.url,
                    feed_path=urls.feed(),
                    language=site.language,
                    page_url=page_url,
                    entry_title=lambda course, d: locale.t(
                        "feed_entry", course=course.title, date=locale.date(d.start_date, "long")
                    ),
                ),
            ),
        )
