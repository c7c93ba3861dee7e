"""The build state (catalog_gen.site.buildstate): render only what changed, and stay exact.

The promise is twofold: an incremental build renders only the files whose inputs changed, and
its output is byte for byte what a clean build of the same state would write. The main test
walks a site through data, template, config and calendar changes and compares it with a clean
build after every step.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from catalog_gen.build import run_build
from catalog_gen.config import PublishSettings, load_config
from catalog_gen.demo.sample import generate_catalog
from catalog_gen.site import buildstate
from catalog_gen.site.buildstate import (
    BuildState,
    FileRecord,
    build_inputs,
    digest,
    fingerprint,
    load_state,
    state_path,
)
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.content import ContentPage
from catalog_gen.site.generate import render_files
from catalog_gen.site.i18n import get_locale
from catalog_gen.site.model import Course, CourseDate, Fields
from catalog_gen.site.pages import Pagination, Urls, plan_pages
from catalog_gen.site.render import Renderer, SiteInfo, find_theme
from catalog_gen.snapshot import Snapshot
from tests.conftest import NOW, TODAY, env_without_key
from tests.sitecheck import site_bytes
from tests.test_site import PINNED, build_demo
from tools.reference import OBJECTS, attributes

OVERRIDE = (
    '{% extends "!theme/course.html" %}\n'
    "{% block description %}Kurs: {{ course.title }}{% endblock %}\n"
)


def clean_build(config, now) -> dict[str, bytes]:
    """The same config and snapshot built into a fresh folder, with no state, no model cache
    and no spare to lean on (all three are removed first: nothing of a last clean build)."""
    site = dataclasses.replace(config.site, output_dir="clean-site")
    clean = dataclasses.replace(config, site=site)
    paths = clean.site_paths
    for left in (paths.site, paths.cache, paths.spare):
        shutil.rmtree(left, ignore_errors=True)
    paths.state.unlink(missing_ok=True)
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


@pytest.mark.slow
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

    # 2. A booking: one date's seats change and its updated_at does not (as in Frontcore).
    #    The fetch sees it; the course's page, every page listing the course or the date,
    #    the two pages made of the whole catalog, and the course's calendar files render.
    did, slug = bookable_date(sample, after, skip=course_id)
    stamp = sample.coursedates[did]["updated_at"]
    sample.set_free_seats(did, 2)
    assert sample.coursedates[did]["updated_at"] == stamp
    report, pages = step(NOW, access=project.access())
    after = site_bytes(config.output_path)
    row = parse_bytes(after[f"kurs/{slug}/index.html"]).find(id=f"date-{did}")
    assert "Få plasser igjen (2)" in row.get_text(" ", strip=True)
    showing = {name for name, data in after.items() if f"kurs/{slug}/".encode() in data}
    expected = {f"kurs/{slug}/index.html", "kategori/index.html", "sted/index.html"}
    assert set(pages) == {p for p in showing if p.endswith(".html")} | expected
    calendars = [n for n in after if n.startswith(f"kurs/{slug}/") and n.endswith(".ics")]
    assert report.rendered == len(pages) + len(calendars) + 1  # and kalender.ics

    # 3. A template override: only the course pages use it.
    (root / "templates").mkdir()
    (root / "templates" / "course.html").write_text(OVERRIDE, encoding="utf-8")
    report, pages = step(NOW)
    assert pages and [p for p in pages if not p.startswith("kurs/")] == []

    # 4. A config change every page shows (the site title): everything is rendered.
    (root / "catalog.toml").write_text(
        '[frontcore]\nrate_limit = 5\n[site]\ntitle = "Kurs hos oss"\n', encoding="utf-8"
    )
    report, pages = step(NOW)
    assert len(pages) == report.pages

    # 5. Ten days later: only what shows the dates that passed (and the lists around them).
    report, pages = step(NOW + timedelta(days=10))
    assert 0 < report.rendered < first.rendered

    # 6. The override removed: the course pages go back to the theme's.
    (root / "templates" / "course.html").unlink()
    report, pages = step(NOW + timedelta(days=10))
    assert pages and [p for p in pages if not p.startswith("kurs/")] == []


def bookable_date(sample, site: dict[str, bytes], *, skip: int) -> tuple[int, str]:
    """A published date (not of course ``skip``) showing more than a few free seats: its id
    and its course's slug."""
    for did, record in sorted(sample.coursedates.items()):
        free = int(record["seats"]["free"]["num"])
        if record["course_id"] == skip or record["seats"]["allocated_capacity"]["num"] < 10:
            continue
        for name, data in site.items():
            if f'id="date-{did}"'.encode() in data and f"{free} ledige plasser".encode() in data:
                return did, name.split("/")[1]
    raise AssertionError("the sample has no published date with free seats")


def parse_bytes(data: bytes):
    from bs4 import BeautifulSoup

    return BeautifulSoup(data, "html5lib")


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["garbage", "missing"])
def test_a_state_that_cannot_be_trusted_means_a_full_render(project, damage, rendered):
    config = project.config
    first = run_build(config, project.access(), now=NOW)
    path = state_path(config.output_path)
    if damage == "garbage":
        path.write_text("{not json")
    else:
        path.unlink()
    assert load_state(config.output_path).files == {}
    rendered.clear()
    report = run_build(config, None, now=NOW + timedelta(hours=1))
    assert report.rendered == first.rendered and report.written == 0  # same bytes: kept


@pytest.mark.slow
@pytest.mark.parametrize("restore", ["copied with times", "copied", "older build"])
def test_a_site_folder_replaced_behind_the_states_back_is_checked_file_by_file(
    project, sample, rendered, tmp_path, restore
):
    """A CI cache, a backup, a copy: the site folder is another one (its inode), so the
    state's record of the folder and its early stop are not trusted; each file is, as far as
    its size and mtime say it is what the state describes. A file that is not is made again;
    the site is a clean build's."""
    config = project.config
    run_build(config, project.access(), now=NOW)
    backup = tmp_path / "backup"
    shutil.copytree(config.output_path, backup, symlinks=True)  # copy2: times kept
    course_id = sorted(sample.courses)[0]
    sample.change_course(course_id, title="Nytt navn")
    run_build(config, project.access(), now=NOW)
    moved = config.output_path.with_name("elsewhere")
    source = backup if restore == "older build" else config.output_path
    copy = shutil.copy2 if restore != "copied" else shutil.copyfile
    shutil.copytree(source, moved, copy_function=copy, symlinks=True)
    shutil.rmtree(config.output_path)
    moved.rename(config.output_path)

    state = load_state(config.output_path)
    assert state.site is None and state.inputs == "" and state.files
    rendered.clear()
    later = NOW + timedelta(minutes=1)
    report = run_build(config, None, now=later)
    made = list(rendered)
    assert site_bytes(config.output_path) == clean_build(config, later)
    if restore == "copied with times":
        assert made == [] and report.written == 0  # every file is what the state says
    elif restore == "copied":
        assert report.written == 0 and len(made) == report.pages  # all checked, same
    else:  # the pages showing the renamed course are the old ones: made again
        assert 0 < report.written < report.files


@pytest.mark.slow
def test_the_state_lives_beside_the_site_never_in_it(project):
    config = project.config
    run_build(config, project.access(), now=NOW)
    assert state_path(config.output_path).parent == Path(config.output_path).parent
    assert not [p for p in config.output_path.rglob("*build-state*")]


def build_with_workers(root: Path, least: int, output_dir: str):
    """``build --offline`` in a fresh process (no threads: it may fork), making the catalog,
    drafting the snapshot's parts and rendering pages in forked workers from ``least`` of them
    on. Each pool of workers it forks is logged to ``forks.log`` (how many processes), and
    each process forked for work apart (``apart``)."""
    (root / "catalog.toml").write_text(
        f'snapshot_dir = "snapshots/demo"\n[site]\noutput_dir = "{output_dir}"\n', encoding="utf-8"
    )
    code = (
        "import sys, catalog_gen.site.generate as g, catalog_gen.site.modelcache as m; "
        "import catalog_gen.site.forked as f; "
        f"g.PARALLEL_MIN_PAGES = m.PARALLEL_MIN_PARTS = m.APART_MIN_PARTS = {least}; "
        "pool = f.pool; "
        "f.pool = lambda n: (open('forks.log', 'a').write(f'{n}\\n'), pool(n))[1]; "
        "apart = f.apart; "
        "f.apart = lambda work: (open('forks.log', 'a').write('apart\\n'), apart(work))[1]; "
        "from catalog_gen.cli import main; "
        "sys.argv = ['catalog-gen', 'build', '--offline', '--json', '--now', sys.argv[1]]; main()"
    )
    (root / "forks.log").unlink(missing_ok=True)
    return subprocess.run(
        [sys.executable, "-c", code, PINNED],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env=env_without_key(),
    )


def forks(root: Path) -> list[str]:
    """The pools of workers the last ``build_with_workers`` forked: their sizes."""
    log = root / "forks.log"
    return log.read_text().split() if log.exists() else []


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="forks only with two cores")
@pytest.mark.slow
def test_parallel_drafting_and_rendering_give_the_same_bytes_and_the_same_errors(tmp_path):
    build_demo(tmp_path)  # makes the demo snapshot
    parallel = build_with_workers(tmp_path, 1, "parallel")
    # One worker made the catalog (and forked a pool that drafted the parts), one pool
    # rendered the pages.
    assert len(forks(tmp_path)) == 3 and forks(tmp_path)[0] == "apart"
    serial = build_with_workers(tmp_path, 10**9, "serial")
    assert forks(tmp_path) == []
    assert parallel.returncode == serial.returncode == 0, parallel.stderr + serial.stderr
    assert site_bytes(tmp_path / "parallel") == site_bytes(tmp_path / "serial")

    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "course.html").write_text(
        '{% extends "!theme/course.html" %}{% block main %}{{ course.nope }}{% endblock %}\n'
    )
    before = site_bytes(tmp_path / "parallel")
    broken = build_with_workers(tmp_path, 1, "parallel")
    assert forks(tmp_path)  # the error came from a worker
    assert broken.returncode == 1
    (line,) = broken.stderr.strip().splitlines()
    assert line.startswith("error: templates/course.html:1: ") and "nope" in line
    assert site_bytes(tmp_path / "parallel") == before


def test_digests_are_pinned_so_an_upgrade_does_not_look_like_a_change():
    """A page's digest is stored between builds: if the encoding of values changed (say, by
    an optimisation of fingerprint), every page of every site would render again after the
    upgrade. A change here must be deliberate."""
    from tests.test_calendars import course_date, course_of

    cdate = course_date(7, custom_properties=Fields({"rom": "Auditorium 2"}))
    course = course_of(1, cdate, extra=Fields({"level": {"id": 6, "title": "Courses"}, "tags": []}))
    value = [course, {"b": (1, 2.5, None), "a": {3, 4}}, Path("x"), True]
    # Changed on purpose when courses and dates gained custom_properties and extra (state
    # version 2), again when courses gained more_info_url, and when courses gained
    # kursguiden_url and dates their booking path and seats_as_of; without them the value still
    # gives c8b6c4287061fcb9fefe3555db85f51b, the value from before fingerprint() was optimised.
    assert digest(*value, "text") == "51ad35daf1b0c6e793ea7d27daa63e98"


# --- every field a template can read is made of what the page is made of ---------------------


def test_a_field_left_out_of_the_digests_is_derived_from_one_that_is_in():
    """fingerprint() skips fields with repr=False: each must say what it is made from."""
    for cls in OBJECTS:
        if not dataclasses.is_dataclass(cls):
            continue
        for field in dataclasses.fields(cls):
            if not field.repr and not field.name.startswith("_babel"):
                assert field.metadata.get("derived_from"), f"{cls.__name__}.{field.name}"


def test_only_pages_that_may_read_catalog_now_are_made_of_it(tmp_path):
    def analysed() -> Renderer:  # one per build: it keeps its analyses
        return Renderer(
            theme=find_theme("default", tmp_path),
            overrides=tmp_path / "templates",
            locale=get_locale("nb"),
            urls=Urls("nb"),
            site=SiteInfo("x", "nb"),
            catalog=None,
            assets={},
        )

    renderer = analysed()
    assert renderer.catalog_attributes("categories.html") == {"categories", "courses", "courses_in"}
    assert renderer.catalog_attributes("venues.html") == {"cities", "courses", "venues"}
    assert renderer.catalog_attributes("course.html") == frozenset()
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "venues.html").write_text(
        '{% extends "!theme/venues.html" %}{% set c = catalog %}{% block main %}{{ c.now }}'
        "{% endblock %}"
    )
    (tmp_path / "templates" / "home.html").write_text("{{ catalog.now.year }}")
    renderer = analysed()
    assert renderer.catalog_attributes("venues.html") is None  # used whole: anything
    assert renderer.catalog_attributes("home.html") == {"now"}

    # The build as a whole: within a quarter hour the same, unless a template shows the time.
    (tmp_path / "catalog.toml").write_text("")
    config = load_config(tmp_path / "catalog.toml")
    later = NOW + timedelta(minutes=5)
    assert build_inputs(config, "s", NOW) != build_inputs(config, "s", later)
    (tmp_path / "templates" / "home.html").unlink()
    (tmp_path / "templates" / "venues.html").unlink()
    assert build_inputs(config, "s", NOW) == build_inputs(config, "s", later)


def every_attribute(variable: str, cls: type) -> str:
    """``{{ variable.name }}`` for every field and property of ``cls``: a template that
    prints all of them shows everything the model has."""
    return " ".join(f"{{{{ {variable}.{a.name} }}}}" for a in attributes(cls) if a.usage == a.name)


def printing_override(theme_file: str, body: str) -> str:
    return (
        f'{{% extends "!theme/{theme_file}" %}}{{% block main %}}{{{{ super() }}}}'
        f'<pre class="fields">{body}</pre>{{% endblock %}}\n'
    )


CLASSES = {cls.__name__: cls for cls in OBJECTS}
PRINT_EVERYTHING = {
    # The course page prints every attribute of the course and of everything in it.
    "course.html": printing_override(
        "course.html",
        every_attribute("course", CLASSES["Course"])
        + "{% if course.price %}" + every_attribute("course.price", CLASSES["Price"])
        + "{% endif %}{% for c in course.categories %}" + every_attribute("c", CLASSES["Category"])
        + "{% endfor %}{% for d in course.dates %}" + every_attribute("d", CLASSES["CourseDate"])
        + "{% if d.venue %}" + every_attribute("d.venue", CLASSES["Venue"]) + "{% endif %}"
        + every_attribute("d.seats", CLASSES["Seats"])
        + "{% for s in d.sessions %}" + every_attribute("s", CLASSES["Session"])
        + "{% endfor %}{% endfor %}",
    ),
    # A page made of the whole catalog prints the build's moment and the filter values.
    "categories.html": printing_override(
        "categories.html",
        every_attribute("catalog", CLASSES["Catalog"])
        + "{% for kind in ['month', 'language', 'form'] %}{% for v in catalog.facet(kind) %}"
        + every_attribute("v", CLASSES["FacetValue"])
        + ": {% for c in catalog.courses_with(v) %}{{ c.id }} {% endfor %}{% endfor %}"
        + "{% endfor %}{% for city in catalog.cities %}" + every_attribute("city", CLASSES["City"])
        + "{% endfor %}",
    ),
    "facet.html": printing_override("facet.html", every_attribute("facet", CLASSES["FacetValue"])),
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Change:
    """A change to the snapshot (raw records, as the API sends them) or to the build's now."""

    name: str
    change: Callable[[Snapshot, int, int, int], Snapshot]
    #: Whose record it changes: "course", "date", "online date" or "catalog".
    of: str = "course"
    minutes_later: int = 0


def course_field(name: str, value) -> Change:
    def change(snapshot, cid, did, online):
        snapshot.courses[cid][name] = value
        return snapshot

    return Change(f"course.{name}", change)


def date_field(name: str, value, of: str = "date") -> Change:
    def change(snapshot, cid, did, online):
        record = snapshot.coursedates[online if of == "online date" else did]
        record[name] = value(record) if callable(value) else value
        return snapshot

    return Change(f"{of}.{name}", change, of)


def shifted(days: int, field: str):
    return lambda record: (date.fromisoformat(record[field]) + timedelta(days=days)).isoformat()


def renamed_instructor(record):
    gatherings = copy.deepcopy(record["gatherings"])
    gatherings[0]["instructors"][0]["fullname"] = "Ny Kursholder"
    return gatherings


def booked(snapshot, cid, did, online):
    """A booking: one seat left (in Frontcore, ``updated_at`` does not move)."""
    record = snapshot.coursedates[did]
    record["seats"] = {"allocated_capacity": {"num": 40}, "free": {"num": 1}}
    record["seats_status"] = "open"
    return snapshot


def later_first_seen(snapshot, cid, did, online):
    return dataclasses.replace(
        snapshot, first_seen={**snapshot.first_seen, did: FETCHED + timedelta(hours=1)}
    )


def later_fetch(snapshot, cid, did, online):
    return dataclasses.replace(snapshot, fetched_at=FETCHED + timedelta(minutes=1))


def seats_read_later(snapshot, cid, did, online):
    """A fetch read the date anew (a booking): the pages showing its seats say so."""
    since = {**snapshot.unchanged_since, did: FETCHED + timedelta(minutes=30)}
    return dataclasses.replace(snapshot, unchanged_since=since)


CHANGES = [
    course_field("title", "Nytt kursnavn"),
    course_field("reference", "REF-NY"),
    course_field("text_lead", "En ny ingress."),
    course_field("text_description", "<p>En ny beskrivelse.</p>"),
    course_field("text_prerequisites", "<p>Nye forkunnskaper.</p>"),
    course_field("text_audience", "<p>En ny målgruppe.</p>"),
    course_field("categories", [{"id": 999, "title": "Ny kategori"}]),
    course_field("price", {"value": 12345, "currency": "NOK", "comment": "ny"}),
    course_field("updated_at", "2026-11-22T10:00:00+01:00"),
    course_field("duration", {"value": 9, "unit": {"id": 1, "title": "day"}}),
    course_field("form_of_teaching", {"id": 9, "title": "Hybrid"}),
    course_field("teaching_language", {"id": "de", "title": "German"}),
    course_field("custom_properties", {"partner": "Ny partner"}),
    course_field("kursguiden_url", "https://www.kursguiden.no/kurs/ny/"),  # extra
    course_field("external_booking_url", "https://booking.example.test/ny"),
    course_field("email_booking", "ny@example.test"),
    date_field("start_at", shifted(1, "start_at")),
    date_field("end_at", shifted(1, "end_at")),
    date_field("start_time_at", "07:15:00"),
    date_field("end_time_at", "17:45:00"),
    date_field("timezone", "Europe/London"),
    date_field("deadline_at", shifted(-1, "start_at")),
    date_field("status", {"id": 3, "idType": 2, "title": "Canceled"}),
    Change("date.seats", booked, "date"),
    date_field("location", lambda r: {**r["location"], "address": "Ny gate 1"}),
    date_field("place", lambda r: {**(r["place"] or {}), "title_additional_info": "Inngang B"}),
    date_field("gatherings", renamed_instructor),
    date_field("updated_at", "2026-11-22T11:00:00+01:00"),
    date_field("custom_properties", {"rom": "Rom 9"}),
    date_field("reference", "REF-NY-01"),  # extra
    date_field("event_url", "https://meet.example.test/ny", of="online date"),
    Change("date.first_seen", later_first_seen, "date"),
    Change("date.seats_as_of", seats_read_later, "date"),
    Change("catalog.fetched_at", later_fetch, "catalog"),
    Change("catalog.now", lambda snapshot, *ids: snapshot, "catalog", minutes_later=1),
]
FETCHED = NOW - timedelta(hours=1)


@pytest.fixture(scope="module")
def printing_project(tmp_path_factory):
    """A project whose templates print every attribute, a snapshot of the sample, and the
    records to change: a course with dates at a venue, one of its dates, an online date."""
    root = tmp_path_factory.mktemp("printing")
    (root / "catalog.toml").write_text("[site]\nper_page = 4\n")  # lists of several pages
    (root / "templates").mkdir()
    for name, text in PRINT_EVERYTHING.items():
        (root / "templates" / name).write_text(text, encoding="utf-8")
    config = load_config(root / "catalog.toml")
    sample = generate_catalog(20, today=TODAY)
    snapshot = Snapshot(
        FETCHED, "", sample.courses, sample.coursedates, {}, {}, {},
        first_seen={did: FETCHED for did in sample.coursedates},
        unchanged_since={did: FETCHED for did in sample.coursedates},  # as a fetch keeps it
    )  # fmt: skip
    catalog = build_catalog(snapshot, config.publish, now=NOW)
    course = max(
        (c for c in catalog.courses if c.categories and c.dates[:1] and c.dates[0].venue),
        key=lambda c: (c.dates[0].venue.id > 0 and bool(c.dates[0].instructors), len(c.dates)),
    )
    online = next(d for d in catalog.dates if d.online_url and d.course_id != course.id)
    ids = (course.id, course.dates[0].id, online.id)
    return config, snapshot, ids, outcome(config, snapshot, NOW)


def outcome(config, snapshot, now) -> tuple[dict[str, str], dict[str, bytes], dict]:
    """Every file's digest and bytes from a build with nothing to keep, and the page plan."""
    rendered = render_files(config, snapshot, now=now)
    catalog = build_catalog(snapshot, config.publish, now=now)
    plan = plan_pages(catalog, [], Urls("nb"), config.site.per_page, search=config.site.search)
    return rendered.digests, rendered.files, {page.path: page for page in plan}


def holds(value, course_id: int) -> bool:
    """Whether page data holds the course (or one of its dates)."""
    if isinstance(value, Course):
        return value.id == course_id
    if isinstance(value, CourseDate):
        return value.course_id == course_id
    if isinstance(value, Pagination):
        return holds(value.items, course_id)
    if isinstance(value, dict):
        return any(holds(item, course_id) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(holds(item, course_id) for item in value)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.name)
def test_a_changed_field_renders_exactly_the_pages_that_show_it(printing_project, change):
    """With templates that print every attribute of the model, each field is shown
    somewhere. Changing it must change the digest of every file whose bytes change (a clean
    build is the oracle: nothing stale), and only of files that show the changed record
    (nothing rendered for nothing)."""
    config, base, (cid, did, online), (digests, files, plan) = printing_project
    snapshot = change.change(copy.deepcopy(base), cid, did, online)
    now = NOW + timedelta(minutes=change.minutes_later)
    new_digests, new_files, new_plan = outcome(config, snapshot, now)

    common = digests.keys() & new_digests.keys()
    changed_bytes = {name for name in common if files[name] != new_files[name]}
    assert changed_bytes, f"{change.name} shows on no page: the override does not print it"
    stale = {name for name in changed_bytes if digests[name] == new_digests[name]}
    assert stale == set(), f"{change.name}: kept although their bytes change"

    owner = {"course": cid, "date": cid, "online date": base.coursedates[online]["course_id"]}
    owner = owner.get(change.of)
    # Its calendar files live beside its page (whose address changes with its title).
    folders = {
        path.rsplit("/", 1)[0]
        for found in (plan, new_plan)
        for path, page in found.items()
        if page.template == "course.html" and page.context["course"].id == owner
    }
    whole_catalog = {"kategori/index.html", "sted/index.html", "kalender.ics"}
    if change.name == "catalog.now":
        whole_catalog = {"kategori/index.html"}  # the only page that prints it
    for name in sorted(common - changed_bytes):
        if digests[name] == new_digests[name] or name in whole_catalog:
            continue
        assert owner is not None, f"{change.name}: {name} rendered for nothing"
        if name.endswith(".ics"):
            shows = name.rsplit("/", 1)[0] in folders
        else:
            pages = [found[name] for found in (plan, new_plan) if name in found]
            shows = any(holds(page.context, owner) for page in pages)
        assert shows, f"{change.name}: {name} rendered although it does not show the record"


def same_shows_same_data(
    before,
    after,
    *,
    per_page: int = 4,
    hours: float = 0,
    rules=None,
    language: str = "nb",
    search: bool = True,
    content=((), ()),
) -> int:
    """What lets a build carry a page's digest over without walking its data
    (``PageInputs.carried``): a page planned from both snapshots (and the content pages of
    ``content``, before and after) whose ``Shows`` are the same, none of whose courses has
    another fingerprint, has the same data (its context, fingerprint for fingerprint). How
    many pages were such pages."""
    rules = rules or PublishSettings()

    def planned(snapshot: Snapshot, now, pages):
        catalog = build_catalog(snapshot, rules, now=now)
        plan = plan_pages(catalog, list(pages), Urls(language), per_page, search=search)
        courses = {course.id: fingerprint(course) for course in catalog.courses}
        return courses, {page.path: page for page in plan}

    courses, plan = planned(before, NOW, content[0])
    new_courses, new_plan = planned(after, NOW + timedelta(hours=hours), content[1])
    changed = {course for course, made in new_courses.items() if courses.get(course) != made}
    same = 0
    for path in sorted(plan.keys() & new_plan.keys()):
        old, new = plan[path].shows, new_plan[path].shows
        assert old is not None and new is not None, path
        if (fingerprint(old.rest), old.courses) != (fingerprint(new.rest), new.courses):
            continue
        if changed & set(new.courses):
            continue
        same += 1
        assert fingerprint(plan[path].context) == fingerprint(new_plan[path].context), path
    return same


@pytest.mark.slow
@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.name)
def test_a_page_that_shows_the_same_of_unchanged_courses_has_the_same_data(
    printing_project, change
):
    """For every change of every field the templates can print; most pages are the same."""
    config, base, (cid, did, online), (_, _, plan) = printing_project
    after = change.change(copy.deepcopy(base), cid, did, online)
    hours = change.minutes_later / 60
    same = same_shows_same_data(base, after, hours=hours, rules=config.publish)
    assert same > len(plan) / 2


def test_a_calendar_page_of_one_courses_dates_moved_along_is_not_the_same():
    """A course with four dates in a row fills calendar pages alone; another course's date
    that moves from before them to after moves each page along by one date: the pages show
    the same course, the same numbers, and other dates of it."""
    sample = generate_catalog(4, today=TODAY, dates_per_course=4)
    first, second, *_ = sorted(sample.courses)
    others = iter(range(60, 200))
    for record in sample.coursedates.values():
        record["start_at"] = (TODAY + timedelta(days=next(others))).isoformat()
    run = sorted(d for d, r in sample.coursedates.items() if r["course_id"] == first)
    for day, did in enumerate(run, start=10):
        sample.coursedates[did]["start_at"] = (TODAY + timedelta(days=day)).isoformat()
    moved = min(d for d, r in sample.coursedates.items() if r["course_id"] == second)
    sample.coursedates[moved]["start_at"] = (TODAY + timedelta(days=9)).isoformat()
    for record in sample.coursedates.values():
        record["end_at"] = record["start_at"]
        record["deadline_at"] = None
    before = Snapshot(FETCHED, "", sample.courses, sample.coursedates, {}, {}, {})
    after = copy.deepcopy(before)
    later = (TODAY + timedelta(days=30)).isoformat()
    after.coursedates[moved]["start_at"] = after.coursedates[moved]["end_at"] = later
    assert same_shows_same_data(before, after, per_page=1) > 0


def test_shows_stand_for_the_data_through_any_edits_of_the_records_and_clock():
    """The same property through random edits of a whole catalog: courses hidden, retitled
    (they move in every list), dates removed, moved or taken to another venue, categories
    swapped, the clock moved (dates close), lists of one to five to a page. Each edit moves
    what lists hold, their totals and their pages."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    sample = generate_catalog(24, today=TODAY, dates_per_course=3)
    base = Snapshot(FETCHED, "", sample.courses, sample.coursedates, {}, {}, {})
    course_ids, date_ids = sorted(sample.courses), sorted(sample.coursedates)
    edit = st.tuples(
        st.sampled_from(["hide", "title", "drop date", "move date", "venue", "category"]),
        st.integers(0, 1000),
        st.integers(0, 1000),
    )
    found = {"same": 0}

    def edited(snapshot: Snapshot, edits) -> Snapshot:
        snapshot = copy.deepcopy(snapshot)
        courses, dates = snapshot.courses, snapshot.coursedates
        for kind, a, b in edits:
            course = courses[course_ids[a % len(course_ids)]]
            other = courses[course_ids[b % len(course_ids)]]
            did = date_ids[a % len(date_ids)]
            if kind == "hide":
                course["is_active"] = False
            elif kind == "title":
                course["title"] = f"{'ABCXYZ'[b % 6]} kurs {a}"
            elif kind == "category":
                course["categories"] = copy.deepcopy(other["categories"])
            elif did in dates and kind == "drop date":
                del dates[did]
            elif did in dates and kind == "move date":
                dates[did]["start_at"] = shifted(b % 90 - 30, "start_at")(dates[did])
                dates[did]["end_at"] = dates[did]["start_at"]
            elif did in dates and kind == "venue":
                moved = dates[date_ids[b % len(date_ids)]]
                dates[did]["location"] = copy.deepcopy(moved.get("location"))
        return snapshot

    about = ContentPage("om", "Om oss", "", "<p>Hei.</p>", 1, "content/om.md")
    pages = st.sampled_from([(), (about,), (dataclasses.replace(about, html="<p>Hallo.</p>"),)])

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.lists(edit, max_size=3),
        st.lists(edit, min_size=1, max_size=3),
        st.sampled_from([0, 1, 30, 24 * 20]),
        st.integers(1, 5),
        st.sampled_from(["nb", "en"]),
        st.booleans(),
        st.tuples(pages, pages),
    )
    def check(before_edits, edits, hours, per_page, language, search, content):
        before = edited(base, before_edits)
        after = edited(before, edits)
        found["same"] += same_shows_same_data(
            before,
            after,
            per_page=per_page,
            hours=hours,
            language=language,
            search=search,
            content=content,
        )

    check()
    assert found["same"] > 0


@pytest.mark.slow
def test_what_the_last_build_published_is_known_even_when_its_digests_are_not(project):
    """After an upgrade the digests are not trusted, but the files are still the last build's:
    the next publish may remove them (it removes nothing it has no record of)."""
    config = project.config
    run_build(config, project.access(), now=NOW)
    path = state_path(config.output_path)
    state = json.loads(path.read_text())
    state["catalog_gen"] = "0.0.1; an older catalog-gen"
    path.write_text(json.dumps(state))

    loaded = load_state(config.output_path)

    assert loaded.files == {} and loaded.inputs == ""
    assert loaded.published and set(loaded.published) == set(state["published"])


def test_files_looked_at_in_a_worker_are_judged_as_they_are_one_by_one(tmp_path, monkeypatch):
    """``BuildState.look`` stats the recorded files in a forked process while the build goes
    on; ``unchanged`` then judges each file as it would by looking itself: one edited in
    place (same size), one grown, one gone, one now a link, one now a folder, and the rest
    as recorded. A look whose worker fails leaves ``unchanged`` looking file by file."""
    site = tmp_path / "site"
    records = {}
    for number in range(60):
        path = site / f"kurs/k-{number}/index.html"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"<p>%d</p>" % number)
        found = path.stat()
        records[path.relative_to(site).as_posix()] = FileRecord(
            "d", found.st_size, found.st_mtime_ns
        )
    edited, grown, gone, linked, folder = (f"kurs/k-{n}/index.html" for n in range(5))
    os.utime(site / edited, ns=(1, 1))
    (site / grown).write_bytes(b"<p>1</p> and more")
    (site / gone).unlink()
    (site / linked).unlink()
    (site / linked).symlink_to(site / "kurs/k-10/index.html")
    (site / folder).unlink()
    (site / folder).mkdir()
    judged = {name: BuildState(files=records).unchanged(site, name, "d") for name in records}
    assert [name for name, same in judged.items() if not same] == [
        edited,
        grown,
        gone,
        linked,
        folder,
    ]

    state = BuildState(files=records)
    state.look(site)
    assert state.looked is not None  # a worker was forked
    assert {name: state.unchanged(site, name, "d") for name in records} == judged
    assert not state.unchanged(site, "kurs/k-20/index.html", "another digest")
    assert state.looked is not None  # judged from what the worker found

    def fails(site, files):
        raise OSError("no look")

    monkeypatch.setattr(buildstate, "_not_as_recorded", fails)
    state = BuildState(files=records)
    state.look(site)
    assert {name: state.unchanged(site, name, "d") for name in records} == judged
    assert state.looked is None  # it fell back to looking itself
