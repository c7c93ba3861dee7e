"""Every file of the site from one snapshot: the site half's own sequence.

    catalog (publishing rules) → page plan → digests → render the changed pages (in forked
    workers on a big site) → calendar files → sitemap, robots.txt and the Atom feed

Nothing here touches site/: the files come back as bytes, with the names of the files that
are kept as they are because their inputs did not change (buildstate.py decides), and
publish.py writes them. The build (``catalog_gen.build``) calls this between loading the
snapshot and publishing.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from catalog_gen.anomalies import Anomalies
from catalog_gen.config import Config
from catalog_gen.progress import NoProgress, Progress
from catalog_gen.site.buildstate import BuildState, CalendarInputs, PageInputs, clear_cache
from catalog_gen.site.calendars import CalendarSite, CalendarWriter
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.content import load_content
from catalog_gen.site.feeds import FeedSite, atom_feed, robots_txt, sitemap_xml
from catalog_gen.site.i18n import Locale, get_locale
from catalog_gen.site.model import Catalog, Course
from catalog_gen.site.pages import ROBOTS, SITEMAP, Page, Urls, absolute, plan_pages
from catalog_gen.site.render import Renderer, SiteInfo, find_theme, static_assets
from catalog_gen.snapshot import Snapshot


@dataclass(frozen=True)
class RenderedSite:
    """The output of one build before publishing: new bytes, and files kept as they are."""

    files: dict[str, bytes]
    #: Files whose inputs did not change since they were written: not rendered, kept.
    kept: frozenset[str]
    #: The input digest of every file that has one (pages and calendar files).
    digests: dict[str, str]
    pages: int

    @property
    def rendered(self) -> int:
        """Pages and calendar files rendered in this build."""
        return len(self.digests) - len(self.kept) if self.digests else 0


def render_files(
    config: Config,
    snapshot: Snapshot,
    *,
    now: datetime,
    progress: Progress | None = None,
    state: BuildState | None = None,
    anomalies: Anomalies | None = None,
) -> RenderedSite:
    """Every output file of the site, from one snapshot: rendered, or kept when ``state``
    shows it was made from the same inputs. Odd data is noted in ``anomalies``."""
    progress = progress or NoProgress()
    state = state or BuildState()
    progress.phase("catalog")
    catalog = build_catalog(
        snapshot,
        config.publish,
        now=now,
        timezone=config.timezone,
        language=config.site.language,
        anomalies=anomalies,
    )
    del snapshot  # the raw records (most of the memory at 10,000 courses) are not needed now
    content = load_content(config.root / config.site.content_dir)
    urls = Urls(config.site.language)
    pages = plan_pages(catalog, content, urls, config.site.per_page, search=config.site.search)
    theme = find_theme(config.site.theme, config.root)
    assets = static_assets([theme / "static", config.root / "static"])
    site = SiteInfo(
        title=config.site.title,
        language=config.site.language,
        menu=tuple(sorted((p for p in content if p.menu is not None), key=lambda p: p.menu)),
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
    inputs = PageInputs(renderer, catalog, site, assets)
    output = config.output_path
    files: dict[str, bytes] = {}
    kept: set[str] = set()
    digests: dict[str, str] = {}
    progress.phase("checking", len(pages))
    try:
        for page in pages:
            progress.advance()
            digests[page.path] = inputs.page(page)
            if state.unchanged(output, page.path, digests[page.path]):
                kept.add(page.path)
        progress.phase("rendering", len(pages) - len(kept))
        files.update(render_pages(renderer, [p for p in pages if p.path not in kept], progress))
        for path, data in assets.values():
            files[path] = data
        progress.phase("calendars")
        calendars = calendar_files(catalog, site, urls, locale, state, output)
        files.update(calendars.files)
        kept |= calendars.kept
        digests.update(calendars.digests)
        progress.phase("feeds")
        files.update(machine_files(catalog, pages, site, urls, locale))
    finally:
        clear_cache()
    return RenderedSite(files, frozenset(kept), digests, len(pages))


#: Below this many pages a second process costs more than it saves (measured: bench/).
PARALLEL_MIN_PAGES = 400
#: Pages per task handed to a worker: big enough to keep the pipe busy, small enough to
#: share the work evenly.
PARALLEL_CHUNK = 64
#: What forked workers inherit: the renderer and the pages (never pickled, only indexed).
_WORK: tuple[Renderer, list[Page]] | None = None


def render_pages(renderer: Renderer, pages: list[Page], progress: Progress) -> dict[str, bytes]:
    """The pages' bytes; on a machine with several cores and enough pages, from forked
    workers that inherit the catalog, so nothing but the finished bytes crosses a pipe."""
    workers = _workers(len(pages))
    if workers < 2:
        return render_pages_serially(renderer, pages, progress)
    global _WORK
    _WORK = (renderer, pages)
    try:
        chunks = [
            (start, min(start + PARALLEL_CHUNK, len(pages)))
            for start in range(0, len(pages), PARALLEL_CHUNK)
        ]
        rendered = {}
        try:
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        except OSError:  # no working semaphores here (some containers): render in this process
            _WORK = None
            return render_pages_serially(renderer, pages, progress)
        # A worker that dies (killed for memory) fails the build with BrokenProcessPool,
        # instead of leaving it waiting forever with the lock held.
        with pool:
            for done in pool.map(_render_chunk, chunks):
                rendered.update(done)
                progress.advance(len(done))
        return rendered
    finally:
        _WORK = None


def render_pages_serially(
    renderer: Renderer, pages: list[Page], progress: Progress
) -> dict[str, bytes]:
    rendered = {}
    for page in pages:
        rendered[page.path] = renderer.render(page)
        progress.advance()
    return rendered


def _render_chunk(bounds: tuple[int, int]) -> list[tuple[str, bytes]]:
    assert _WORK is not None
    renderer, pages = _WORK
    return [(pages[i].path, renderer.render(pages[i])) for i in range(*bounds)]


def _workers(pages: int) -> int:
    """Processes to render with: one unless it pays, and never by forking a process that runs
    threads (the preview server, the demo's emulator), which fork does not copy safely."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if pages < PARALLEL_MIN_PAGES or cores < 2 or threading.active_count() > 1:
        return 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return min(cores, 4)


def course_address(site: SiteInfo, urls: Urls) -> Callable[[Course], str] | None:
    """A course page's public address, for calendars and the feed; None without base_url."""
    if not site.url:
        return None
    return lambda course: absolute(site.url, urls.course(course))


def calendar_files(
    catalog: Catalog, site: SiteInfo, urls: Urls, locale: Locale, state: BuildState, output
) -> RenderedSite:
    """The .ics files, each rendered only when the course or date it shows changed."""
    page_url = course_address(site, urls)
    calendar_site = CalendarSite(
        title=site.title,
        host=urlsplit(site.url).hostname or "catalog-gen.invalid",
        language=site.language,
        page_url=page_url or (lambda course: None),
        online_label=locale.t("online"),
    )
    made_of = CalendarInputs(site, calendar_site.online_label)
    writer = CalendarWriter(calendar_site)
    files: dict[str, bytes] = {}
    kept: set[str] = set()
    digests: dict[str, str] = {}

    def add(path: str, inputs: str, make) -> bool:
        digests[path] = inputs
        if state.unchanged(output, path, inputs):
            kept.add(path)
            return True
        files[path] = make()
        return False

    for course in catalog.courses:
        if not course.dates:
            continue
        path = urls.course_calendar(course)
        if add(path, made_of.course(course), lambda course=course: writer.course_calendar(course)):
            with contextlib.suppress(OSError):  # its events, for the site feed below
                writer.reuse((output / path).read_bytes())
        for d in course.dates:
            add(
                urls.date_calendar(course, d),
                made_of.date(course, d),
                lambda course=course, d=d: writer.date_calendar(course, d),
            )
    add(urls.site_calendar(), made_of.site(catalog), lambda: writer.site_calendar(catalog))
    return RenderedSite(files, frozenset(kept), digests, 0)


def machine_files(
    catalog: Catalog, pages: list[Page], site: SiteInfo, urls: Urls, locale: Locale
) -> dict[str, bytes]:
    """sitemap.xml, robots.txt and the Atom feed (sitemap and feed need site.url): cheap
    enough to make every time."""
    page_url = course_address(site, urls)
    files: dict[str, bytes] = {}
    files[ROBOTS] = robots_txt(site.url, SITEMAP if site.url else None)
    if site.url and page_url is not None:
        files[SITEMAP] = sitemap_xml(pages, site.url)
        files[urls.feed()] = atom_feed(
            catalog,
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
        )
    return files
