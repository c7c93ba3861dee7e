"""One ``catalog-gen build`` run, top to bottom.

    lock → fetch what changed (unless --offline) → load the newest snapshot → catalog (publishing
    rules) → page plan → render with the theme → publish site/ atomically → report

Each step is a function of the step before; only the first (the API) and the last (the disk)
touch the world. A failure anywhere leaves the last good snapshot and the last good site as
they were.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime

from catalog_gen.catalog import build_catalog
from catalog_gen.config import ApiAccess, Config
from catalog_gen.content import load_content
from catalog_gen.errors import BuildError, SnapshotError
from catalog_gen.fetch import FetchReport, run_fetch
from catalog_gen.i18n import get_locale
from catalog_gen.lock import RunLock
from catalog_gen.output import publish_site
from catalog_gen.pages import Urls, plan_pages
from catalog_gen.progress import NoProgress, Progress
from catalog_gen.render import Renderer, SiteInfo, find_theme, static_assets
from catalog_gen.snapshot import SnapshotStore


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
    #: The paths themselves, for the preview server (not in --json: a big site has thousands).
    written_files: tuple[str, ...] = field(default=(), repr=False)
    removed_files: tuple[str, ...] = field(default=(), repr=False)

    def as_dict(self) -> dict:
        report = asdict(self)
        del report["written_files"], report["removed_files"]
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
    changed_templates: frozenset[str] | None = None,
) -> BuildReport:
    """Fetch (unless ``access`` is None: offline) and render the site into site.output_dir.

    ``changed_templates`` (the preview server's hint after an edit): only pages that use one
    of these templates are rendered again; the others keep their bytes from the current site.
    """
    started = time.monotonic()
    progress = progress or NoProgress()
    with RunLock(config.snapshot_path):
        fetched = None
        if access is not None:
            fetched = run_fetch(
                config,
                access,
                now=now,
                full=full,
                allow_shrink=allow_shrink,
                progress=progress,
                locked=True,
            )
        store = SnapshotStore(config.snapshot_path)
        snapshot = store.latest()
        if snapshot is None:
            hint = (
                "catalog-gen build" if config.source else "catalog-gen init, then catalog-gen build"
            )
            raise SnapshotError(
                f"no snapshot in {config.snapshot_path} to build from; run '{hint}' "
                "(or 'catalog-gen build --demo' to try the bundled sample)"
            )
        files, pages = render_files(
            config, snapshot, now=now, progress=progress, changed_templates=changed_templates
        )
        if access is not None and access.api_key.encode() in b"".join(files.values()):
            raise BuildError("the API key appears in the rendered site; nothing was published")
        progress.phase("publishing", len(files))
        outcome = publish_site(config.output_path, files, protect=config.root)
        progress.advance(len(files))
        progress.done()
    return BuildReport(
        snapshot=snapshot.name or "?",
        site=config.site.output_dir,
        pages=pages,
        files=len(files),
        written=len(outcome.written),
        unchanged=len(outcome.unchanged),
        removed=len(outcome.removed),
        seconds=round(time.monotonic() - started, 3),
        fetch=fetched,
        written_files=outcome.written,
        removed_files=outcome.removed,
    )


def render_files(
    config: Config,
    snapshot,
    *,
    now: datetime,
    progress: Progress | None = None,
    changed_templates: frozenset[str] | None = None,
):
    """Every output file of the site as bytes (and the number of pages), from one snapshot."""
    progress = progress or NoProgress()
    catalog = build_catalog(snapshot, config.publish, now=now, timezone=config.timezone)
    content = load_content(config.root / config.site.content_dir)
    urls = Urls(config.site.language)
    pages = plan_pages(catalog, content, urls, config.site.per_page)
    theme = find_theme(config.site.theme, config.root)
    assets = static_assets([theme / "static", config.root / "static"])
    site = SiteInfo(
        title=config.site.title,
        language=config.site.language,
        menu=tuple(sorted((p for p in content if p.menu is not None), key=lambda p: p.menu)),
    )
    renderer = Renderer(
        theme=theme,
        overrides=config.root / config.site.templates_dir,
        locale=get_locale(config.site.language),
        urls=urls,
        site=site,
        catalog=catalog,
        assets=assets,
    )
    progress.phase("rendering", len(pages))
    files: dict[str, bytes] = {}
    for page in pages:
        files[page.path] = _unaffected(config, renderer, page, changed_templates)
        if files[page.path] is None:
            files[page.path] = renderer.render(page)
        progress.advance()
    for path, data in assets.values():
        files[path] = data
    return files, len(pages)


def _unaffected(
    config: Config, renderer: Renderer, page, changed: frozenset[str] | None
) -> bytes | None:
    """The page's current bytes when none of its templates changed, else None (render it)."""
    if changed is None:
        return None
    uses = renderer.dependencies(page.template)
    if uses is None or uses & changed:
        return None
    try:
        return (config.output_path / page.path).read_bytes()
    except OSError:
        return None
