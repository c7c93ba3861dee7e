"""The build state (catalog_gen.site.buildstate): render only what changed, and stay exact.

The promise is twofold: an incremental build renders only the files whose inputs changed, and
its output is byte for byte what a clean build of the same state would write. The main test
walks a site through data, template, config and calendar changes and compares it with a clean
build after every step.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from catalog_gen.build import run_build
from catalog_gen.site.buildstate import digest, load_state, state_path
from catalog_gen.site.render import Renderer
from tests.conftest import NOW, env_without_key
from tests.sitecheck import site_bytes
from tests.test_site import PINNED, build_demo

OVERRIDE = (
    '{% extends "!theme/course.html" %}\n'
    "{% block description %}Kurs: {{ course.title }}{% endblock %}\n"
)


def clean_build(config, now) -> dict[str, bytes]:
    """The same config and snapshot built into a fresh folder, with no state to lean on."""
    site = dataclasses.replace(config.site, output_dir="clean-site")
    clean = dataclasses.replace(config, site=site)
    shutil.rmtree(clean.output_path, ignore_errors=True)
    state_path(clean.output_path).unlink(missing_ok=True)
    run_build(clean, None, now=now)
    return site_bytes(clean.output_path)


@pytest.fixture
def rendered(monkeypatch) -> list[str]:
    """The paths of the pages rendered, in order."""
    paths: list[str] = []
    original = Renderer.render
    monkeypatch.setattr(
        Renderer, "render", lambda self, page: paths.append(page.path) or original(self, page)
    )
    return paths


def test_incremental_builds_through_a_sequence_of_changes_equal_clean_builds(
    project, sample, rendered
):
    root = project.root
    config = project.config
    first = run_build(config, project.access(), now=NOW)
    assert first.rendered == first.pages + sum(
        1 for n in site_bytes(config.output_path) if n.endswith(".ics")
    )

    def step(now, *, access=None) -> tuple:
        rendered.clear()
        report = run_build(project.config, access, now=now)
        pages = list(rendered)
        assert site_bytes(project.config.output_path) == clean_build(project.config, now)
        return report, pages

    # 1. One course renamed, one date's seats sold out: its page, its lists and calendars.
    course_id = sorted(sample.courses)[3]
    before = site_bytes(config.output_path)
    old_slug = next(n.split("/")[1] for n in before if n.endswith(f"-{course_id}/index.html"))
    sample.change_course(course_id, title="Omdøpt kurs")
    report, pages = step(NOW, access=project.access())
    assert 0 < report.rendered < first.rendered / 2
    after = site_bytes(config.output_path)
    new_slug = f"omdopt-kurs-{course_id}"
    for page in pages:  # every page rendered showed the course, shows it, or lists them all
        shown = old_slug.encode() in before.get(page, b"") or new_slug.encode() in after[page]
        assert shown or page in ("kategori/index.html", "sted/index.html"), page

    # 2. A template override: only the course pages use it.
    (root / "templates").mkdir()
    (root / "templates" / "course.html").write_text(OVERRIDE, encoding="utf-8")
    report, pages = step(NOW)
    assert pages and [p for p in pages if not p.startswith("kurs/")] == []

    # 3. A config change every page shows (the site title): everything is rendered.
    (root / "catalog.toml").write_text(
        '[frontcore]\nrate_limit = 5\n[site]\ntitle = "Kurs hos oss"\n', encoding="utf-8"
    )
    report, pages = step(NOW)
    assert len(pages) == report.pages

    # 4. Ten days later: only what shows the dates that passed (and the lists around them).
    report, pages = step(NOW + timedelta(days=10))
    assert 0 < report.rendered < first.rendered

    # 5. The override removed: the course pages go back to the theme's.
    (root / "templates" / "course.html").unlink()
    report, pages = step(NOW + timedelta(days=10))
    assert pages and [p for p in pages if not p.startswith("kurs/")] == []


def test_a_no_change_build_stops_before_loading_the_snapshot(project, monkeypatch):
    config = project.config
    run_build(config, project.access(), now=NOW)
    before = {p: os.stat(p).st_mtime_ns for p in config.output_path.rglob("*")}
    monkeypatch.setattr(
        "catalog_gen.source.store.SnapshotStore.load",
        lambda *a: pytest.fail("a no-change build loaded the snapshot"),
    )
    report = run_build(config, None, now=NOW + timedelta(minutes=5))
    assert (report.written, report.removed, report.rendered) == (0, 0, 0)
    assert report.files == report.unchanged > report.pages > 0
    assert {p: os.stat(p).st_mtime_ns for p in config.output_path.rglob("*")} == before


def test_an_online_build_that_fetches_nothing_new_stops_as_early_as_an_offline_one(
    project, monkeypatch
):
    """The fetch finds nothing changed, so it writes no snapshot, the build-wide digest
    matches, and the build ends without rendering; the site is what a clean build writes."""
    config = project.config
    run_build(config, project.access(), now=NOW)
    snapshots = project.snapshot_bytes()
    monkeypatch.setattr(
        "catalog_gen.build.render", lambda *a: pytest.fail("a no-change night rendered")
    )
    later = NOW + timedelta(minutes=10)  # a re-run, in the same quarter hour
    report = run_build(config, project.access(), now=later)
    assert report.fetch is not None and report.fetch.saved is False
    assert report.fetch.requests > 0 and report.snapshot == report.fetch.snapshot
    assert (report.written, report.removed, report.rendered) == (0, 0, 0)
    assert project.snapshot_bytes() == snapshots
    monkeypatch.undo()
    assert site_bytes(config.output_path) == clean_build(config, later)


def test_a_file_changed_by_hand_in_the_site_is_rendered_again(project, rendered):
    config = project.config
    run_build(config, project.access(), now=NOW)
    home = config.output_path / "index.html"
    original = home.read_bytes()
    home.write_bytes(original.replace(b"<h1>", b"<h1>Hacked "))
    rendered.clear()
    report = run_build(config, None, now=NOW + timedelta(hours=1))
    assert rendered == ["index.html"] and home.read_bytes() == original
    assert report.written == 1


@pytest.mark.parametrize("damage", ["garbage", "other-site", "missing"])
def test_a_state_that_cannot_be_trusted_means_a_full_render(project, damage, rendered):
    config = project.config
    first = run_build(config, project.access(), now=NOW)
    path = state_path(config.output_path)
    if damage == "garbage":
        path.write_text("{not json")
    elif damage == "other-site":  # a site folder replaced behind the state's back
        moved = config.output_path.with_name("elsewhere")
        shutil.copytree(config.output_path, moved, copy_function=shutil.copy2)
        shutil.rmtree(config.output_path)
        moved.rename(config.output_path)
    else:
        path.unlink()
    assert load_state(config.output_path).files == {}
    rendered.clear()
    report = run_build(config, None, now=NOW + timedelta(hours=1))
    assert report.rendered == first.rendered and report.written == 0  # same bytes: kept


def test_the_state_lives_beside_the_site_never_in_it(project):
    config = project.config
    run_build(config, project.access(), now=NOW)
    assert state_path(config.output_path).parent == Path(config.output_path).parent
    assert not [p for p in config.output_path.rglob("*build-state*")]


def build_with_workers(root: Path, least_pages: int, output_dir: str):
    """``build --offline`` in a fresh process (no threads: it may fork), rendering in parallel
    from ``least_pages`` pages on."""
    (root / "catalog.toml").write_text(
        f'snapshot_dir = "snapshots/demo"\n[site]\noutput_dir = "{output_dir}"\n', encoding="utf-8"
    )
    code = (
        "import sys, catalog_gen.build as b; "
        f"b.PARALLEL_MIN_PAGES = {least_pages}; "
        "from catalog_gen.cli import main; "
        "sys.argv = ['catalog-gen', 'build', '--offline', '--json', '--now', sys.argv[1]]; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, PINNED],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env=env_without_key(),
    )


def test_parallel_rendering_gives_the_same_bytes_and_the_same_errors(tmp_path):
    build_demo(tmp_path)  # makes the demo snapshot
    parallel = build_with_workers(tmp_path, 1, "parallel")
    serial = build_with_workers(tmp_path, 10**9, "serial")
    assert parallel.returncode == serial.returncode == 0, parallel.stderr + serial.stderr
    assert site_bytes(tmp_path / "parallel") == site_bytes(tmp_path / "serial")

    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "course.html").write_text(
        '{% extends "!theme/course.html" %}{% block main %}{{ course.nope }}{% endblock %}\n'
    )
    before = site_bytes(tmp_path / "parallel")
    broken = build_with_workers(tmp_path, 1, "parallel")
    assert broken.returncode == 1
    (line,) = broken.stderr.strip().splitlines()
    assert line.startswith("error: templates/course.html:1: ") and "nope" in line
    assert site_bytes(tmp_path / "parallel") == before


def test_digests_are_pinned_so_an_upgrade_does_not_look_like_a_change():
    """A page's digest is stored between builds: if the encoding of values changed (say, by
    an optimisation of fingerprint), every page of every site would render again after the
    upgrade. A change here must be deliberate."""
    from tests.test_calendars import course_date, course_of

    cdate = course_date(7)
    value = [course_of(1, cdate), {"b": (1, 2.5, None), "a": {3, 4}}, Path("x"), True]
    # The value from before fingerprint() was optimised: the encoding did not change.
    assert digest(*value, "text") == "c8b6c4287061fcb9fefe3555db85f51b"
