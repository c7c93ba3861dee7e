"""One ``catalog-gen build`` run, top to bottom.

    lock → fetch what changed (unless --offline) → load the newest snapshot → catalog (publishing
    rules) → page plan → render with the theme → publish site/ atomically → report

Each step is a function of the step before; only the first (the API) and the last (the disk)
touch the world. A failure anywhere leaves the last good snapshot and the last good site as
they were.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from catalog_gen.buildstate import (
    BuildState,
    clear_cache,
    digest,
    files_digest,
    load_state,
    save_state,
)
from catalog_gen.calendars import CalendarSite, CalendarWriter
from catalog_gen.catalog import Catalog, Course, build_catalog
from catalog_gen.config import ApiAccess, Config
from catalog_gen.content import load_content
from catalog_gen.errors import ApiError, AuthError, BuildError, GuardRefused, SnapshotError
from catalog_gen.feeds import FeedSite, atom_feed, robots_txt, sitemap_xml
from catalog_gen.fetch import FetchReport, run_fetch
from catalog_gen.i18n import Locale, get_locale
from catalog_gen.lock import RunLock
from catalog_gen.output import MARKER, Indexer, OutputReport, publish_site
from catalog_gen.pages import ROBOTS, SEARCH_INDEX, SITEMAP, Page, Urls, absolute, plan_pages
from catalog_gen.progress import NoProgress, Progress
from catalog_gen.render import Renderer, SiteInfo, find_theme, static_assets
from catalog_gen.search import index_site
from catalog_gen.snapshot import Snapshot, SnapshotStore


@dataclass(frozen=True)
class BuildReport:
    """What a build did: printed as one line, or as JSON with --json."""

    snapshot: str
    site: str
    pages: int
    files: int
    written: int
    unchanged: int
    removed: int
    seconds: float
    fetch: FetchReport | None = None
    #: Whether the fetch found new or changed data (false for offline builds).
    data_changed: bool = False
    #: Hours between the snapshot's fetch and this run's "now".
    snapshot_age_hours: float = 0.0
    #: Things an unattended run should know although it succeeded (e.g. --offline-on-error).
    warnings: tuple[str, ...] = ()
    #: Hints about the configuration, shown unless --quiet (e.g. no site.base_url).
    notes: tuple[str, ...] = ()
    #: Seconds the search indexer ran (0 when no page changed or search is off).
    index_seconds: float = 0.0
    #: Pages and calendar files rendered (the others' inputs had not changed).
    rendered: int = 0
    #: The paths themselves, for the preview server (not in --json: a big site has thousands).
    written_files: tuple[str, ...] = field(default=(), repr=False)
    removed_files: tuple[str, ...] = field(default=(), repr=False)

    def as_dict(self) -> dict:
        """The --json report: the build's figures, the fetch's cost at the top level too."""
        report = asdict(self)
        del report["written_files"], report["removed_files"]
        report["warnings"] = list(self.warnings)
        report["notes"] = list(self.notes)
        report["requests"] = self.fetch.requests if self.fetch else 0
        report["retries"] = self.fetch.retries if self.fetch else 0
        report["rate_limited"] = self.fetch.rate_limited if self.fetch else 0
        return report

    def summary_line(self) -> str:
        return (
            f"built {self.site}/ from {self.snapshot}: {self.pages} pages, {self.written} files "
            f"written, {self.unchanged} unchanged, {self.removed} removed, {self.seconds:.1f} s"
        )


def run_build(
    config: Config,
    access: ApiAccess | None,
    *,
    now: datetime,
    full: bool = False,
    allow_shrink: bool = False,
    progress: Progress | None = None,
    offline_on_error: bool = False,
    max_age_hours: float | None = None,
) -> BuildReport:
    """Fetch (unless ``access`` is None: offline) and render the site into site.output_dir.

    When the API fails, nothing is published (stale-if-error) unless ``offline_on_error``:
    then the last good snapshot is rendered, with the clock still at ``now``, and the report
    carries a warning. ``max_age_hours`` refuses to render a snapshot older than that.

    Only files whose inputs changed are rendered (see buildstate.py); when nothing that goes
    into the site changed, the build ends before loading the snapshot.
    """
    started = time.monotonic()
    progress = progress or NoProgress()
    warnings: list[str] = []
    with RunLock(config.snapshot_path):
        fetched = None
        store = SnapshotStore(config.snapshot_path)
        if access is not None:
            try:
                fetched = run_fetch(
                    config,
                    access,
                    now=now,
                    full=full,
                    allow_shrink=allow_shrink,
                    progress=progress,
                    locked=True,
                )
            except ApiError as exc:
                if isinstance(exc, AuthError) or not offline_on_error:
                    raise type(exc)(f"{exc}; {_kept(store, config, now)}") from None
                warnings.append(f"{exc}; rendered the last good snapshot instead")
        name = store.latest_name()
        if name is None:
            hint = (
                "catalog-gen build" if config.source else "catalog-gen init, then catalog-gen build"
            )
            raise SnapshotError(
                f"no snapshot in {config.snapshot_path} to build from; run '{hint}' "
                "(or 'catalog-gen build --demo' to try the bundled sample)"
            )
        age_hours = (now - store.fetched_at(name)).total_seconds() / 3600
        if max_age_hours is not None and age_hours > max_age_hours:
            raise GuardRefused(
                f"the last good snapshot ({name}) is {_age(age_hours)} old, more than "
                f"--max-age {max_age_hours:g} h; nothing was published"
            )
        state = load_state(config.output_path)
        inputs = build_inputs(config, store, name, now)
        if state.inputs == inputs and (config.output_path / MARKER).is_file():
            progress.done()  # nothing that goes into the site changed: nothing to do
            outcome = OutputReport((), state.published, (), swapped=False)
            rendered = RenderedSite({}, frozenset(state.files), {}, state.pages)
        else:
            progress.phase("loading snapshot")
            # No name holds the snapshot here: render_files drops it once the catalog is built.
            rendered = render_files(
                config, store.load(name), now=now, progress=progress, state=state
            )
            key = access.api_key.encode() if access is not None else None
            if key and any(key in data for data in rendered.files.values()):
                raise BuildError("the API key appears in the rendered site; nothing was published")
            progress.phase("publishing", len(rendered.files) + len(rendered.kept))
            indexer = None
            if config.site.search:
                language = config.site.language
                courses = Urls(language).course_pages()
                indexer = Indexer(
                    SEARCH_INDEX,
                    lambda folder: index_site(folder, language=language, pages=courses),
                )
            outcome = publish_site(
                config.output_path,
                rendered.files,
                kept=rendered.kept,
                protect=config.root,
                indexer=indexer,
            )
            try:
                save_state(
                    config.output_path,
                    inputs,
                    rendered.digests,
                    pages=rendered.pages,
                    published=outcome.written + outcome.unchanged,
                )
            except OSError as exc:  # the site is live; the next build just renders everything
                warnings.append(f"could not record the build state ({exc.strerror})")
            progress.advance(len(rendered.files) + len(rendered.kept))
            progress.done()
    notes = []
    if not config.site.base_url:
        notes.append(
            "site.base_url is not set, so pages have no canonical links and there is no "
            "sitemap.xml or Atom feed; set it in catalog.toml to the site's public address"
        )
    return BuildReport(
        snapshot=name,
        site=config.site.output_dir,
        pages=rendered.pages,
        files=len(outcome.written) + len(outcome.unchanged),
        written=len(outcome.written),
        unchanged=len(outcome.unchanged),
        removed=len(outcome.removed),
        seconds=round(time.monotonic() - started, 3),
        fetch=fetched,
        data_changed=bool(fetched and fetched.data_changed),
        snapshot_age_hours=round(age_hours, 2),
        warnings=tuple(warnings),
        notes=tuple(notes),
        index_seconds=outcome.index_seconds,
        rendered=rendered.rendered,
        written_files=outcome.written,
        removed_files=outcome.removed,
    )


def build_inputs(config: Config, store: SnapshotStore, name: str, now: datetime) -> str:
    """The digest of everything a build reads: when it equals the last build's, the site
    cannot differ. "Today" enters as the quarter hour in UTC, when every zone's day turns."""
    theme = find_theme(config.site.theme, config.root)
    sources = [
        path
        for folder in (
            theme,
            config.root / config.site.templates_dir,
            config.root / "static",
            config.root / config.site.content_dir,
        )
        if folder.is_dir()
        for path in folder.rglob("*")
        if path.is_file()
    ]
    moment = now.astimezone(UTC)
    quarter = moment.replace(minute=moment.minute // 15 * 15, second=0, microsecond=0)
    return digest(
        name,
        store.manifest_digest(name),
        config,
        files_digest(sources),
        quarter.isoformat(),
    )


def _kept(store: SnapshotStore, config: Config, now: datetime) -> str:
    """The stale-if-error sentence: what was kept, and how old the last good data is."""
    last = store.latest()
    if last is None:
        return f"nothing was published, and there is no earlier snapshot in {config.snapshot_path}"
    age = _age(_age_hours(last, now))
    return (
        f"nothing was published: {config.site.output_dir}/ is unchanged and the last good "
        f"snapshot ({last.name}) is {age} old"
    )


def _age_hours(snapshot: Snapshot, now: datetime) -> float:
    return (now - snapshot.fetched_at).total_seconds() / 3600


def _age(hours: float) -> str:
    if hours < 1:
        return f"{max(hours * 60, 0):.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


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
    snapshot,
    *,
    now: datetime,
    progress: Progress | None = None,
    state: BuildState | None = None,
) -> RenderedSite:
    """Every output file of the site, from one snapshot: rendered, or kept when ``state``
    shows it was made from the same inputs."""
    progress = progress or NoProgress()
    state = state or BuildState()
    progress.phase("catalog")
    catalog = build_catalog(snapshot, config.publish, now=now, timezone=config.timezone)
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


class PageInputs:
    """The input digest of a page: its template files, its own data, the site-wide settings,
    and the whole catalog only when its templates read the ``catalog`` global."""

    def __init__(self, renderer: Renderer, catalog: Catalog, site: SiteInfo, assets) -> None:
        self.renderer = renderer
        self.catalog = catalog
        self.common = digest(site, {name: path for name, (path, _) in assets.items()})
        self._catalog_digest: str | None = None
        self._filters_digest: str | None = None

    def page(self, page: Page) -> str:
        used = self.renderer.globals_used(page.template)
        extra = []
        if used is None or "catalog" in used:
            extra.append(self.catalog_digest())
        if used is None or "filter_groups" in used:
            if self._filters_digest is None:
                self._filters_digest = digest(self.renderer.filter_groups())
            extra.append(self._filters_digest)
        return digest(
            page.path,
            page.template,
            self.renderer.template_digest(page.template),
            self.common,
            page.context,
            *extra,
        )

    def catalog_digest(self) -> str:
        """Everything the catalog shows; not ``now`` (the model already reflects the day)."""
        if self._catalog_digest is None:
            c = self.catalog
            self._catalog_digest = digest(
                c.courses, c.categories, c.venues, c.cities, c.dates, c.fetched_at
            )
        return self._catalog_digest


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
    common = digest("ics", site.title, site.url, site.language, calendar_site.online_label)
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
        if add(path, digest(common, course), lambda course=course: writer.course_calendar(course)):
            with contextlib.suppress(OSError):  # its events, for the site feed below
                writer.reuse((output / path).read_bytes())
        for d in course.dates:
            add(
                urls.date_calendar(course, d),
                digest(common, course, d),
                lambda course=course, d=d: writer.date_calendar(course, d),
            )
    everything = digest(common, [(catalog.course(d.course_id), d) for d in catalog.dates])
    add(urls.site_calendar(), everything, lambda: writer.site_calendar(catalog))
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
