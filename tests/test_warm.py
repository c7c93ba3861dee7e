"""site/warm.py: what the preview keeps between saves makes the files a fresh build makes.

A warm builder reuses the catalog within a quarter hour (setting ``now``), the page plan while
the catalog's content holds, and compiled templates; each case is compared, file by file and
odd data too, with a ``SiteBuilder`` that starts from nothing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import jinja2
import pytest

from catalog_gen.anomalies import Anomalies
from catalog_gen.config import Config, load_config
from catalog_gen.site.drafts import DraftRules
from catalog_gen.site.generate import MemorySink, SiteBuilder
from catalog_gen.site.modelcache import ModelCache
from catalog_gen.site.warm import WarmSite, quarter_hour
from catalog_gen.source.store import SnapshotStore
from tests.conftest import NOW, Project

#: A home page that shows the build's moment: reusing a catalog must still show this one.
HOME = (
    '{% extends "!theme/home.html" %}\n'
    "{% block title %}{{ catalog.now.isoformat() }}{% endblock %}\n"
)


@pytest.fixture
def project(tmp_path, emulator) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, emulator)
    (root / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\n")
    assert project.run("fetch").returncode == 0
    (root / "templates").mkdir()
    (root / "templates" / "home.html").write_text(HOME)
    return project


def fresh(config: Config, snapshot, now) -> tuple[dict[str, bytes], list]:
    """The files and odd data of a builder that starts from nothing."""
    return made_by(SiteBuilder(config), snapshot, now)


def made_by(builder: SiteBuilder, snapshot, now) -> tuple[dict[str, bytes], list]:
    found = Anomalies()
    sink = MemorySink()
    builder.prepare(snapshot, now=now, anomalies=found)
    builder.files(sink)
    return sink.files, list(found)


@pytest.mark.slow
@pytest.mark.timeout(600)  # eight builds: a minute here, more on a loaded machine
def test_a_warm_builder_makes_what_a_fresh_one_makes_as_the_clock_moves(project):
    config = project.config
    store = SnapshotStore(config.snapshot_path)
    snapshot = store.stored(store.latest_name())
    warm = WarmSite(config)
    builds = []
    for later in (
        timedelta(0),
        timedelta(minutes=5),  # the same quarter hour: the catalog is kept, with a new now
        timedelta(minutes=20),  # a new quarter hour, the same courses: the plan is kept
        timedelta(days=60),  # dates have started since: the catalog is made again
    ):
        now = NOW + later
        builder = warm.builder(config)
        files, anomalies = made_by(builder, snapshot, now)
        assert (files, anomalies) == fresh(config, snapshot, now), later
        assert builder.catalog.now == now
        assert f"<title>{now.isoformat()}</title>".encode() in files["index.html"]
        builds.append(builder)

    first, same_quarter, next_quarter, later = builds
    assert quarter_hour(NOW) == quarter_hour(NOW + timedelta(minutes=5))
    assert same_quarter.catalog.courses is first.catalog.courses
    assert same_quarter.pages is first.pages and next_quarter.pages is first.pages
    assert later.catalog.dates != first.catalog.dates
    assert later.pages is not first.pages


@pytest.mark.slow
def test_new_publishing_rules_need_a_new_warm_site_and_a_template_save_compiles_anew(
    project, tmp_path
):
    config = project.config
    store = SnapshotStore(config.snapshot_path)
    snapshot = store.stored(store.latest_name())
    warm = WarmSite(config)
    assert warm.fits(config)
    hidden = load_config_with(project.root, tmp_path, "[publish]\nshow_seat_counts = false\n")
    assert not warm.fits(hidden)

    made_by(warm.builder(config), snapshot, NOW)
    home = project.root / "templates" / "home.html"
    try:
        home.write_text(HOME.replace("{{ catalog.now.isoformat() }}", "Lagret på nytt"))
        files, _ = made_by(warm.builder(config), snapshot, NOW)
        assert b"<title>Lagret p\xc3\xa5 nytt</title>" in files["index.html"]
        assert files == fresh(config, snapshot, NOW)[0]
    finally:
        home.write_text(HOME)


def load_config_with(root: Path, tmp_path: Path, extra: str) -> Config:
    """The project's config with ``extra`` added (written beside it: paths stay the same)."""
    source = (root / "catalog.toml").read_text()
    changed = root / "catalog.extra.toml"
    changed.write_text(source + extra)
    try:
        return load_config(changed)
    finally:
        changed.unlink()


@pytest.mark.slow
def test_a_warm_catalog_leaves_nothing_frozen_from_the_garbage_collector(project):
    """A build freezes what the model made (modelcache.collector_paused); the preview, which
    runs for days and drops renderers with reference cycles, must not keep them frozen."""
    import gc

    config = project.config
    store = SnapshotStore(config.snapshot_path)
    gc.unfreeze()  # what an earlier build in this worker froze
    warm = WarmSite(config)
    made_by(warm.builder(config), store.stored(store.latest_name()), NOW)
    assert gc.get_freeze_count() == 0
    ModelCache(None, DraftRules.of(config)).catalog(store.stored(store.latest_name()), now=NOW)
    assert gc.get_freeze_count() > 0  # a build's cache does freeze: the check above can fail
    gc.unfreeze()


def test_a_build_compiles_only_the_templates_changed_since_the_last_build(project, monkeypatch):
    """A build keeps the templates it compiled in the build cache (render.CompiledTemplates);
    the next compiles none of them, or only one that changed, and makes the same files. A
    kept file that is damaged costs a compile, never a wrong page."""
    config = project.config
    store = SnapshotStore(config.snapshot_path)
    snapshot = store.stored(store.latest_name())
    compiled: list[str] = []
    compile_ = jinja2.Environment.compile

    def counting(self, source, name=None, filename=None, raw=False, defer_init=False):
        compiled.append(name)
        return compile_(self, source, name, filename, raw, defer_init)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)

    def build() -> dict[str, bytes]:
        compiled.clear()
        builder = SiteBuilder(config, cache=config.build_cache_path)
        files, _ = made_by(builder, snapshot, NOW)
        builder.models.save()
        return files

    first = build()
    assert "course.html" in compiled and "home.html" in compiled
    assert build() == first and compiled == []
    home = project.root / "templates" / "home.html"
    home.write_text(HOME.replace("{{ catalog.now.isoformat() }}", "Lagret på nytt"))
    changed = build()
    assert compiled == ["home.html"]
    assert b"<title>Lagret p\xc3\xa5 nytt</title>" in changed["index.html"]
    assert changed == fresh(config, snapshot, NOW)[0]

    kept = config.build_cache_path / "model" / "templates.kept"
    kept.write_bytes(kept.read_bytes()[:-40] + b"\x00" * 40)  # damaged: not trusted
    assert build() == changed and "course.html" in compiled
