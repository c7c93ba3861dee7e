"""One ``catalog-gen build`` run, as named steps.

    fetch_or_reuse → newest_snapshot → decide → render (→ verify each file) → publish → record
    → report

``run_build`` below is the whole run on one screen; each step is a function of its own. Only
the first (the API) and render/publish/record (the disk) touch the world, and the two halves
of catalog-gen meet here: ``catalog_gen.source`` makes the snapshot, ``catalog_gen.site`` turns
it into files. The files stream into a staging folder beside the site as they are rendered
(site/publish.py), each checked for the API key first; a failure anywhere leaves the last good
snapshot and the last good site as they were.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from catalog_gen.anomalies import Anomalies, Anomaly, report_lines
from catalog_gen.config import ApiAccess, Config, configured_api_key
from catalog_gen.errors import ApiError, AuthError, BuildError, GuardRefused, SnapshotError
from catalog_gen.progress import NoProgress, Progress
from catalog_gen.redact import contains_secret
from catalog_gen.site.buildstate import BuildState, build_inputs, load_state, save_state
from catalog_gen.site.changes import ChangeReport, as_json, compare
from catalog_gen.site.drafts import DraftRules
from catalog_gen.site.generate import RenderedSite, SiteBuilder
from catalog_gen.site.i18n import get_locale
from catalog_gen.site.model import Catalog
from catalog_gen.site.pages import SEARCH_INDEX, Urls, absolute
from catalog_gen.site.publish import MARKER, Indexer, OutputReport, Publisher, Staged
from catalog_gen.site.search import SHARDS, index_site, reader
from catalog_gen.source.lock import RunLock
from catalog_gen.source.store import SnapshotStore

if TYPE_CHECKING:
    from catalog_gen.source.fetch import FetchReport


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
    #: Hours between the last fetch that confirmed the snapshot's data and this run's "now".
    snapshot_age_hours: float = 0.0
    #: Things an unattended run should know although it succeeded (e.g. --offline-on-error).
    warnings: tuple[str, ...] = ()
    #: Hints about the configuration, shown unless --quiet (e.g. no site.base_url).
    notes: tuple[str, ...] = ()
    #: Seconds the search indexer ran (0 when no page changed or search is off).
    index_seconds: float = 0.0
    #: Pages and calendar files rendered (the others' inputs had not changed).
    rendered: int = 0
    #: Records with odd data (see anomalies.py), and how many of them the last build did
    #: not have; the report's lines for them, one per kind (--json: under ``warnings``).
    anomalies: int = 0
    new_anomalies: int = 0
    anomaly_lines: tuple[str, ...] = ()
    #: The lines of the kinds with an anomaly the last build did not have (--quiet shows these).
    new_anomaly_lines: tuple[str, ...] = ()
    #: The paths themselves, for the preview server (not in --json: a big site has thousands).
    written_files: tuple[str, ...] = field(default=(), repr=False)
    removed_files: tuple[str, ...] = field(default=(), repr=False)
    #: What the night changed in the catalog (site/changes.py); None when it did not fetch.
    changes: ChangeReport | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, object]:
        """The --json report: the build's figures, the fetch's cost at the top level too."""
        report = asdict(self)
        del report["written_files"], report["removed_files"]
        report["changes"] = as_json(self.changes) if self.changes is not None else None
        del report["anomaly_lines"], report["new_anomaly_lines"]
        report["warnings"] = list(self.warnings) + list(self.anomaly_lines)
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
    builder: SiteBuilder | None = None,
) -> BuildReport:
    """Fetch (unless ``access`` is None: offline) and render the site into site.output_dir.

    When the API fails, nothing is published (stale-if-error) unless ``offline_on_error``:
    then the last good snapshot is rendered, with the clock still at ``now``, and the report
    carries a warning. ``max_age_hours`` refuses to render a snapshot older than that.

    Only files whose inputs changed are rendered (see site/buildstate.py); when nothing that
    goes into the site changed, the build ends before loading the snapshot. With ``full``,
    nothing an earlier build kept is trusted (its state, model cache and spare): every file
    is made again and compared with the site byte for byte, which repairs any drift.

    ``builder`` is the site half to render with, when the caller keeps one between builds
    (the preview's, site/warm.py: its catalog and page plan stay in memory); the build is
    otherwise the same, step for step.
    """
    started = time.monotonic()
    progress = progress or NoProgress()
    warnings: list[str] = []
    with RunLock(config.snapshot_path) as lock:
        warnings += lock.warnings()
        store = SnapshotStore(config.snapshot_path)
        fetched, fallback = fetch_or_reuse(
            config,
            access,
            store,
            now=now,
            progress=progress,
            full=full,
            allow_shrink=allow_shrink,
            offline_on_error=offline_on_error,
        )
        warnings += fallback
        name, age_hours = newest_snapshot(config, store, now, max_age_hours)
        decision = decide(config, store, name, now, full=full)
        catalog = urls = None
        if decision.unchanged:
            progress.done()
            outcome = OutputReport((), decision.state.published, (), swapped=False)
            rendered = RenderedSite({}, frozenset(decision.state.files), {}, decision.state.pages)
            odd_data = OddData(len(decision.state.anomalies), 0, decision.state.anomaly_lines, ())
        else:
            found = Anomalies()
            decision.state.look(config.output_path)  # in a forked process, meanwhile
            builder = builder or SiteBuilder(config, cache=config.build_cache_path, fresh=full)
            publisher = staging(config, decision.state, full=full)
            try:
                check = verify(api_keys(config, access))
                rendered = render(
                    store, name, now, decision.state, progress, found, builder, publisher, check
                )
                outcome = publish(publisher, progress)
            except BaseException:
                publisher.abort()
                raise
            finally:
                builder.models.save()  # what the model is made of holds whatever the site does
                builder.done()
            odd_data = compare_anomalies(found, decision.state, says(config))
            warnings += record(config, decision, rendered, outcome, found, publisher)
            catalog, urls = builder.catalog, builder.urls
            progress.done()
        changes = report_changes(config, store, name, fetched, now, odd_data, catalog, urls)
    return report(
        config, name, rendered, outcome, fetched, started, age_hours, warnings, odd_data, changes
    )


def fetch_or_reuse(
    config: Config,
    access: ApiAccess | None,
    store: SnapshotStore,
    *,
    now: datetime,
    progress: Progress,
    full: bool,
    allow_shrink: bool,
    offline_on_error: bool,
) -> tuple[FetchReport | None, list[str]]:
    """Fetch what changed into a new snapshot, unless offline (``access`` is None); with the
    warnings the run should carry.

    Stale-if-error: when the API fails nothing is published, unless ``offline_on_error``, when
    the last good snapshot is reused with a warning (never for a refused key).
    """
    if access is None:
        return None, []
    from catalog_gen.source.fetch import run_fetch  # HTTP is for builds that fetch: 0.1 s

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
        return None, [f"{exc}; rendered the last good snapshot instead"]
    return fetched, list(fetched.warnings)


def newest_snapshot(
    config: Config, store: SnapshotStore, now: datetime, max_age_hours: float | None
) -> tuple[str, float]:
    """The snapshot to build from and its age in hours; refused when older than --max-age.

    The age counts from the last fetch that confirmed the data (``SnapshotStore.last_checked``):
    a snapshot fetched a week ago and found unchanged last night is a night old.
    """
    name = store.latest_name()
    if name is None:
        hint = "catalog-gen build" if config.source else "catalog-gen init, then catalog-gen build"
        raise SnapshotError(
            f"no snapshot in {config.snapshot_path} to build from; run '{hint}' "
            "(or 'catalog-gen build --demo' to try the bundled sample)"
        )
    age_hours = _age_hours(store, name, now)
    if max_age_hours is not None and age_hours > max_age_hours:
        raise GuardRefused(
            f"the last good snapshot ({_checked(store, name)}) is {_age(age_hours)} old, more "
            f"than --max-age {max_age_hours:g} h; nothing was published"
        )
    return name, age_hours


@dataclass(frozen=True)
class Decision:
    """What the last build left (its state) and whether this build can stop right here."""

    state: BuildState
    #: The digest of everything this build reads (see buildstate.build_inputs).
    inputs: str
    unchanged: bool


def decide(
    config: Config, store: SnapshotStore, name: str, now: datetime, *, full: bool = False
) -> Decision:
    """Compare what this build reads with what the last one read (site/buildstate.py).

    With ``full`` only the last build's odd data and list of files are taken (to tell what is
    new): its digests and its record of the site are not, so everything is made again."""
    state = load_state(config.output_path)
    if full:
        state = BuildState(
            published=state.published,
            anomalies=state.anomalies,
            anomaly_lines=state.anomaly_lines,
        )
    inputs = build_inputs(config, f"{name} {store.manifest_digest(name)}", now)
    unchanged = (
        state.inputs == inputs
        and state.site is not None
        and state.site.untouched(config.output_path)
        and (config.output_path / MARKER).is_file()
    )
    return Decision(state, inputs, unchanged)


def staging(config: Config, state: BuildState, *, full: bool = False) -> Publisher:
    """Where the new site is assembled: beside the old one, started from the spare (the
    site before the last publish) when the build state vouches for it, with the search
    index made from the staged course pages.

    Of the files in the site that this build does not make, those ``site.keep`` names are
    carried over; the others are removed (record() says which). With ``full`` the search
    index is made again whole."""
    return Publisher(
        config.output_path,
        keep=config.site.keep,
        protect=config.root,
        record=state.site,
        indexer=search_indexer(config.site.language) if config.site.search else None,
        trust_index=not full,
    )


def search_indexer(language: str, pages: str | None = None, shards: int = SHARDS) -> Indexer:
    """The search index of the course pages (``pages``: their glob), as the publisher runs
    it: told what it knows of the staged site."""
    pages = pages or Urls(language).course_pages()

    def run(folder: Path, changed: frozenset[str] | None, staged: Staged) -> None:
        files, index = staged.files, staged.index
        index_site(
            folder,
            changed,
            files,
            index,
            language=language,
            pages=pages,
            shards=shards,
            launched=staged.launched,
        )

    return Indexer(SEARCH_INDEX, run, reads=reader(pages))


def render(
    store: SnapshotStore,
    name: str,
    now: datetime,
    state: BuildState,
    progress: Progress,
    anomalies: Anomalies,
    builder: SiteBuilder,
    publisher: Publisher,
    check: Callable[[str, bytes], None],
) -> RenderedSite:
    """Every file whose inputs changed, rendered into the staging folder (each passing
    ``check`` first); the others named as kept; odd data noted. Only the parts of the
    snapshot whose records changed are read (site/modelcache.py)."""
    builder.prepare(store.stored(name), now=now, anomalies=anomalies, progress=progress)
    return builder.files(publisher, state=state, progress=progress, check=check)


@dataclass(frozen=True)
class OddData:
    """The anomalies of a build as its report tells them: all, and those new since the last."""

    count: int
    new: int
    lines: tuple[str, ...]
    new_lines: tuple[str, ...]
    #: The anomalies new since the last build, one by one (for the change report).
    new_found: tuple[Anomaly, ...] = ()


def says(config: Config) -> Callable[[str], str]:
    """What a visitor sees, by the key of its text, in the site's language (for the odd-data
    lines: "shown as 'Course <id>'" on an English site)."""
    locale = get_locale(config.site.language)
    return lambda key: locale.t(key, id="<id>")


def compare_anomalies(
    found: Anomalies, last: BuildState, say: Callable[[str], str] | None = None
) -> OddData:
    """This build's anomalies, and which kinds have one the last build did not report."""
    new = [a for a in found if a.key not in last.anomalies]
    new_kinds = {a.kind for a in new}
    return OddData(
        count=len(found),
        new=len(new),
        lines=tuple(report_lines(found, say)),
        new_lines=tuple(report_lines((a for a in found if a.kind in new_kinds), say)),
        new_found=tuple(new),
    )


def api_keys(config: Config, access: ApiAccess | None) -> set[str]:
    """Every API key this run knows: the one it fetches with, and the configured one (which
    an offline build or the preview knows too, though it never sends it)."""
    keys = {access.api_key} if access is not None else set()
    return keys | ({configured_api_key(config)} - {""})


def verify(keys: Iterable[str]) -> Callable[[str, bytes], None]:
    """The check every rendered file passes before it is published: refuse a site that
    contains an API key in any spelling (redact.contains_secret: either case, escaped in
    whole or in part, encoded).

    Only rendered files are searched: kept files are the bytes an earlier build checked.
    """
    keys = [key for key in keys if key]

    def check(name: str, data: bytes) -> None:
        if any(contains_secret(data, key) for key in keys):
            raise BuildError(
                f"the API key appears in the rendered site ({name}); nothing was published"
            )

    return check


def publish(publisher: Publisher, progress: Progress) -> OutputReport:
    """Swap the new site in atomically, once the search index (made alongside the rest of
    the build) is ready; the old site is kept as the next build's spare."""
    progress.phase("publishing")
    return publisher.commit()


def record(
    config: Config,
    decision: Decision,
    rendered: RenderedSite,
    outcome: OutputReport,
    anomalies: Anomalies,
    publisher: Publisher,
) -> list[str]:
    """Remember what each published file was made of, and the odd data found, for the next
    build; warnings."""
    warnings = removals(config, decision.state, outcome)
    try:
        save_state(
            config.output_path,
            decision.inputs,
            rendered.digests,
            pages=rendered.pages,
            published=outcome.written + outcome.unchanged + outcome.retained,
            anomalies=[a.key for a in anomalies],
            anomaly_lines=report_lines(anomalies, says(config)),
            kept=rendered.kept,
            previous=decision.state,
            record=publisher.next_record,
            reads=rendered.reads,
        )
    except OSError as exc:  # the site is live; the next build just renders everything
        warnings.append(f"could not record the build state ({exc.strerror})")
    return warnings


def removals(config: Config, last: BuildState, outcome: OutputReport) -> list[str]:
    """What a person should hear about the files the publish removed or kept: pages the
    site no longer has, files catalog-gen did not make that it removed, and files it did
    not make that ``site.keep`` kept for the first time. Files the last build did not
    publish are told apart only when its list survived (``last.published``)."""
    site = config.site.output_dir
    before = set(last.published)
    strangers = [name for name in outcome.removed if before and name not in before]
    pages = [n for n in outcome.removed if n.endswith(".html") and n not in set(strangers)]
    new_kept = [name for name in outcome.retained if name not in before]
    lines = []
    if pages:
        lines.append(f"removed {_count(pages, 'page')} the site no longer has: {_names(pages)}")
    if strangers:
        lines.append(
            f"removed {_count(strangers, 'file')} from {site}/ that catalog-gen did not make: "
            f"{_names(strangers)}; to keep such files, name them in site.keep"
        )
    if new_kept:
        lines.append(
            f"kept {_count(new_kept, 'file')} in {site}/ that catalog-gen did not make, as "
            f"site.keep says: {_names(new_kept)}"
        )
    return lines


def _count(names: Sequence[str], noun: str) -> str:
    return f"{len(names)} {noun}{'' if len(names) == 1 else 's'}"


def _names(names: Sequence[str], shown: int = 5) -> str:
    """The first few paths, as addresses (``kurs/a/`` for ``kurs/a/index.html``)."""
    paths = [name.removesuffix("index.html") or "/" for name in names[:shown]]
    return ", ".join(paths) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def report_changes(
    config: Config,
    store: SnapshotStore,
    name: str,
    fetched: FetchReport | None,
    now: datetime,
    odd_data: OddData,
    catalog: Catalog | None,
    urls: Urls | None,
) -> ChangeReport | None:
    """What this night changed (site/changes.py): from the snapshot before this fetch to the
    one built, with the odd data new tonight, each line linked to its page when the site has
    an address and a page for it. None for a build that did not fetch."""
    if fetched is None:
        return None
    names = store.names()
    before: str | None = name
    if fetched.saved:
        at = names.index(name) if name in names else 0
        before = names[at - 1] if at > 0 else None

    def page_of(course_id: int) -> str:
        if catalog is None or urls is None or not config.site_url:
            return ""
        try:
            return absolute(config.site_url, urls.course(catalog.course(course_id)))
        except KeyError:  # not published
            return ""

    return compare(
        store.stored(before) if before else None,
        store.stored(name),
        DraftRules.of(config),
        today=now.astimezone(ZoneInfo(config.timezone)).date(),
        page_of=page_of,
        odd_data=odd_data.new_found,
    )


def report(
    config: Config,
    name: str,
    rendered: RenderedSite,
    outcome: OutputReport,
    fetched: FetchReport | None,
    started: float,
    age_hours: float,
    warnings: list[str],
    odd_data: OddData,
    changes: ChangeReport | None = None,
) -> BuildReport:
    """The build's figures, warnings and notes, for the CLI to print."""
    notes = []
    if not config.site.base_url:
        notes.append(
            "site.base_url is not set, so pages have no canonical links and there is no "
            "sitemap.xml or Atom feed; set it in catalog.toml to the site's public address"
        )
    notes += rendered.notes
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
        anomalies=odd_data.count,
        new_anomalies=odd_data.new,
        anomaly_lines=odd_data.lines,
        new_anomaly_lines=odd_data.new_lines,
        written_files=outcome.written,
        removed_files=outcome.removed,
        changes=changes,
    )


def _kept(store: SnapshotStore, config: Config, now: datetime) -> str:
    """The stale-if-error sentence: what was kept, and how old the last good data is."""
    name = store.latest_name()
    if name is None:
        return f"nothing was published, and there is no earlier snapshot in {config.snapshot_path}"
    return (
        f"nothing was published: {config.site.output_dir}/ is unchanged and the last good "
        f"snapshot ({_checked(store, name)}) is {_age(_age_hours(store, name, now))} old"
    )


def _age_hours(store: SnapshotStore, name: str, now: datetime) -> float:
    """Hours since a fetch last confirmed the data of ``name``."""
    return (now - store.last_checked(name)).total_seconds() / 3600


def _checked(store: SnapshotStore, name: str) -> str:
    """The snapshot's name, and when a later fetch last found it unchanged, if one did."""
    checked = store.last_checked(name)
    if checked == store.fetched_at(name):
        return name
    return f"{name}, unchanged when checked at {checked:%Y-%m-%dT%H:%M:%SZ}"


def _age(hours: float) -> str:
    if hours < 1:
        return f"{max(hours * 60, 0):.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"
