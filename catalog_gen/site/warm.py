"""The site half kept warm between builds, for the preview server.

``catalog-gen serve`` builds after every save. Made from scratch, a build makes the catalog of
the snapshot (a second at 10,000 courses even from the model cache), plans its pages (seconds
more) and compiles every template it renders. ``WarmSite`` keeps them between builds:

- the catalog, with the odd data found making it, while the snapshot, the drafting rules and
  the quarter hour of "now" are the same. Within a quarter hour in UTC the date is the same in
  every time zone, and the catalog reads the clock only as each date's "today" and as
  ``catalog.now``: so it is the same catalog, with ``now`` set to this build's moment;
- the page plan, while the catalog, the content pages and the plan's settings are the same;
- the compiled templates (Jinja's bytecode, by template file and source text): a save compiles
  the saved template again, not the others.

Each build gets a ``WarmBuilder`` of its own (a ``SiteBuilder`` that takes these from the
``WarmSite``), so the preview can render pages with one while a build runs with another (a
renderer serves one page at a time). What a warm builder makes is what a ``SiteBuilder`` makes
from the same inputs, byte for byte: tests/test_serve.py compares the sites.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeAlias

from catalog_gen.anomalies import Anomalies, Anomaly
from catalog_gen.config import Config
from catalog_gen.site.content import ContentPage
from catalog_gen.site.drafts import DraftRules
from catalog_gen.site.generate import SiteBuilder
from catalog_gen.site.model import Catalog
from catalog_gen.site.modelcache import ModelCache
from catalog_gen.site.pages import Page, Urls
from catalog_gen.site.render import CompiledTemplates
from catalog_gen.snapshot import Snapshot, StoredSnapshot

#: What a kept catalog is made of (``_catalog_key``): the snapshot's name, its moment, each
#: part's name and digest, and the quarter hour.
CatalogKey: TypeAlias = tuple[str, datetime, tuple[tuple[str, str], ...], datetime]
#: What a kept page plan is made of besides the catalog (``WarmSite.plan``).
PlanKey: TypeAlias = tuple[tuple[ContentPage, ...], Urls, int, bool]


def quarter_hour(now: datetime) -> datetime:
    """The quarter hour of ``now`` in UTC: every zone's date turns on one."""
    moment = now.astimezone(UTC)
    return moment.replace(minute=moment.minute // 15 * 15, second=0, microsecond=0)


class KeptModels(ModelCache):
    """A model cache that also keeps the last catalog it made, and its odd data.

    Safe to share between threads: one catalog is made at a time, and ``save`` waits for it.
    It runs for days and drops renderers and catalogs, whose reference cycles a frozen
    object would never give back: it does not freeze what it made.
    """

    freezes = False
    keeps_drafts = True

    def __init__(self, folder: Path | None, rules: DraftRules) -> None:
        super().__init__(folder, rules)
        self._lock = threading.Lock()
        self._key: CatalogKey | None = None
        self._kept: Catalog | None = None
        self._found: tuple[Anomaly, ...] = ()

    def catalog(
        self,
        snapshot: StoredSnapshot | Snapshot,
        *,
        now: datetime,
        anomalies: Anomalies | None = None,
    ) -> Catalog:
        key = _catalog_key(snapshot, now)
        with self._lock:
            kept = self._kept
            if key is None or key != self._key or kept is None:
                # The fingerprints of the catalog that goes (they hold its objects) go too;
                # the parts kept give theirs back.
                self.prints.forget()
                found = Anomalies()
                made = super().catalog(snapshot, now=now, anomalies=found)
                if kept is None or not _same_but_now(made, kept):  # else its plan holds
                    kept = self._kept = made
                self._key, self._found = key, tuple(found)
            if anomalies is not None:
                anomalies.extend(self._found)
        return kept if kept.now == now else dataclasses.replace(kept, now=now)

    def kept(self) -> Catalog | None:
        """The catalog the last ``catalog`` made (its ``now`` may be earlier)."""
        return self._kept

    def save(self) -> None:
        with self._lock:
            super().save()


def _same_but_now(made: Catalog, kept: Catalog) -> bool:
    """Whether two catalogs differ at most in ``now`` (a quarter hour later, most days, the
    model cache gives back the same courses and dates: the same objects, quick to compare)."""
    return dataclasses.replace(made, now=kept.now) == kept


def _catalog_key(snapshot: StoredSnapshot | Snapshot, now: datetime) -> CatalogKey | None:
    """What the catalog is made of: the snapshot's data and the quarter hour (None for a
    snapshot held only in memory, which has no digests to tell it by)."""
    if not isinstance(snapshot, StoredSnapshot):
        return None
    parts = tuple(sorted(snapshot.parts.items()))
    return (snapshot.name, snapshot.fetched_at, parts, quarter_hour(now))


class WarmSite:
    """What the preview keeps between builds of one project (see the module's docstring).

    It serves while the drafting rules and the build cache's folder stay as they are
    (``fits``); after a config change that moves them, make a new one.
    """

    def __init__(self, config: Config) -> None:
        self.rules = DraftRules.of(config)
        self.cache = config.build_cache_path
        self.models = KeptModels(self.cache, self.rules)
        self.bytecode = CompiledTemplates()
        self._lock = threading.Lock()
        self._planned_for: Catalog | None = None
        self._plan_key: PlanKey | None = None
        self._plan: list[Page] = []

    def fits(self, config: Config) -> bool:
        """Whether this warm site can build for ``config`` (same rules, same cache)."""
        rules = DraftRules.of(config)
        return rules == self.rules and config.build_cache_path == self.cache

    def builder(self, config: Config) -> WarmBuilder:
        """A builder of its own for one build (or one preview of a save)."""
        return WarmBuilder(config, self)

    def plan(
        self, builder: SiteBuilder, catalog: Catalog, content: list[ContentPage], urls: Urls
    ) -> list[Page]:
        """The page plan, kept while what it is made of is the same. Pages hold the catalog's
        courses, never the catalog, so a plan holds whatever ``now`` the catalog has."""
        site = builder.config.site
        base = self.models.kept()
        key: PlanKey = (tuple(content), urls, site.per_page, site.search)
        with self._lock:
            if base is None or catalog.courses is not base.courses:  # not the kept catalog
                return SiteBuilder.plan(builder, catalog, content, urls)
            if self._planned_for is not base or key != self._plan_key:
                self._plan = SiteBuilder.plan(builder, catalog, content, urls)
                self._planned_for, self._plan_key = base, key
            return self._plan


class WarmBuilder(SiteBuilder):
    """A ``SiteBuilder`` that takes the catalog, the page plan and the compiled templates
    from a ``WarmSite``, and leaves the fingerprints of the kept catalog cached."""

    def __init__(self, config: Config, warm: WarmSite) -> None:
        super().__init__(config, models=warm.models)
        self.warm = warm

    def compiled_templates(self) -> CompiledTemplates:
        return self.warm.bytecode

    def plan(self, catalog: Catalog, content: list[ContentPage], urls: Urls) -> list[Page]:
        return self.warm.plan(self, catalog, content, urls)

    def done(self) -> None:
        """Nothing to forget: the kept catalog's fingerprints serve the next build too (they
        go when the catalog does, see ``KeptModels``)."""
