"""Incremental builds are clean builds: every path through them compared byte for byte.

A build keeps three things between runs to work in proportion to the change: the build state
(what each file is made of), the model cache (what each snapshot shard's records were read
into, and what it assembled at the last moment) and the spare (the site before the last
publish, which the next staging folder starts from). Each is a way to publish stale bytes.
So every test here changes one input (the data, the clock, the templates, the config, the
kept things themselves), builds incrementally, and compares the whole site (the set of
files and every byte) with a clean build of the same inputs in a copy of the project that
has no state, no cache and no spare. Real files, real snapshots written by the store, real
``catalog-gen build`` processes where the process matters (a kill).
"""

from __future__ import annotations

import copy
import difflib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from bs4 import BeautifulSoup

from catalog_gen.anomalies import Anomalies
from catalog_gen.build import BuildReport, run_build
from catalog_gen.config import Config, load_config
from catalog_gen.demo.sample import SampleCatalog, generate_catalog
from catalog_gen.site.buildstate import CalendarInputs, PageInputs, load_state
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.drafts import DraftRules
from catalog_gen.site.model import Course, CourseDate
from catalog_gen.site.modelcache import CACHE_VERSION, ModelCache
from catalog_gen.snapshot import Snapshot, first_seen, unchanged_since
from catalog_gen.source.store import SnapshotStore
from tests.conftest import env_without_key
from tests.sitecheck import lstat_tree, site_tree

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=OSLO)
#: Small, so that a build takes a fraction of a second; its course ids (22001 …) put every
#: course in a shard of its own, so that a venue or a category spans many shards.
COURSES = 16
TOML = '[site]\nbase_url = "https://kurs.example.com/"\nsearch = false\n'


@dataclass
class Project:
    """A catalog project in a folder: a sample catalog saved as snapshots by the store, and
    what a build leaves beside its site (state, cache, spare)."""

    root: Path
    sample: SampleCatalog
    now: datetime = NOW
    fetched: datetime = NOW - timedelta(hours=1)
    reports: list[BuildReport] = field(default_factory=list)

    @classmethod
    def make(cls, root: Path, *, courses: int = COURSES, toml: str = TOML) -> Project:
        root.mkdir(parents=True, exist_ok=True)
        (root / "catalog.toml").write_text(toml, encoding="utf-8")
        sample = generate_catalog(courses, today=NOW.date())
        project = cls(root, sample)
        sample.clock = lambda: project.fetched
        project.save()
        return project

    @property
    def config(self) -> Config:
        return load_config(self.root / "catalog.toml")

    @property
    def site(self) -> Path:
        return self.config.output_path

    def save(self) -> None:
        """The sample as the next snapshot, as a fetch a minute after the last would save it."""
        self.fetched += timedelta(minutes=1)
        store = SnapshotStore(self.root / "snapshots")
        dates = copy.deepcopy(self.sample.coursedates)
        previous = store.latest()
        seen = first_seen(previous, dates, self.fetched)
        since = unchanged_since(previous, dates, self.fetched)
        courses = copy.deepcopy(self.sample.courses)
        snapshot = Snapshot(
            self.fetched, "test", courses, dates, {}, {}, {}, seen, unchanged_since=since
        )
        store.save(snapshot)

    def build(self) -> BuildReport:
        report = run_build(self.config, None, now=self.now)
        self.reports.append(report)
        return report

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """``catalog-gen build --offline`` in its own process, at the project's clock."""
        command = [sys.executable, "-m", "catalog_gen", "build", "--offline", "--quiet"]
        return subprocess.run(
            [*command, *args, "--now", self.now.isoformat()],
            cwd=self.root,
            env=env_without_key(),
            capture_output=True,
            text=True,
            timeout=180,
        )

    def write(self, name: str, text: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def configure(self, section: str, line: str) -> None:
        """Add a line to a section of catalog.toml."""
        toml = (self.root / "catalog.toml").read_text(encoding="utf-8")
        if section not in toml:
            toml += f"{section}\n"
        self.write("catalog.toml", toml.replace(f"{section}\n", f"{section}\n{line}\n", 1))

    def clean_copy(self, root: Path) -> Project:
        """The same inputs in another folder, with nothing a build leaves beside its site."""
        site = self.site.name

        def left_by_builds(folder: str, names: list[str]) -> list[str]:
            if Path(folder) != self.root:
                return [n for n in names if n == ".lock"]
            return [n for n in names if n == site or n.startswith(f".{site}.")]

        shutil.copytree(self.root, root, ignore=left_by_builds)
        return Project(root, self.sample, self.now, self.fetched)


def files_of(site: Path) -> dict[str, bytes]:
    return {name: data for name, (data, _) in site_tree(site).items()}


def assert_clean(project: Project, scratch: Path) -> None:
    """The project's site is, file for file and byte for byte, what a clean build of the
    same inputs into an empty folder makes; nothing a build leaves is left half-done."""
    shutil.rmtree(scratch, ignore_errors=True)
    clean = project.clean_copy(scratch)
    clean.build()
    expected, found = files_of(clean.site), files_of(project.site)
    missing = sorted(expected.keys() - found.keys())
    extra = sorted(found.keys() - expected.keys())
    differ = sorted(n for n in expected.keys() & found.keys() if expected[n] != found[n])
    assert (missing, extra, differ) == ([], [], []), _explain(expected, found, differ)
    leftovers = [p.name for p in project.root.iterdir() if ".staging-" in p.name]
    assert leftovers == []
    shutil.rmtree(scratch)


def _explain(expected: dict[str, bytes], found: dict[str, bytes], differ: list[str]) -> str:
    if not differ:
        return "the sets of files differ"
    name = differ[0]
    lines = difflib.unified_diff(
        expected[name].decode("utf-8", "replace").splitlines(),
        found[name].decode("utf-8", "replace").splitlines(),
        "clean/" + name,
        "incremental/" + name,
        lineterm="",
        n=1,
    )
    return f"{len(differ)} files differ; the first:\n" + "\n".join(list(lines)[:40])


@pytest.fixture
def built(tmp_path) -> Project:
    """A project built once (so that state, cache and spare exist), and built again after a
    first change (so that the spare holds a site that differs from the live one)."""
    project = Project.make(tmp_path / "project")
    project.build()
    first = sorted(project.sample.courses)[0]
    project.sample.change_course(first, text_lead="Endret ingress.")
    project.save()
    project.build()
    assert project.config.spare_path.is_dir()
    return project


# --- the edits ------------------------------------------------------------------------------


def course_ids(project: Project) -> list[int]:
    """The courses a visitor sees (active and public), by id."""
    return sorted(
        cid
        for cid, record in project.sample.courses.items()
        if record.get("is_active") and record.get("type") == "public"
        and (record.get("level") or {}).get("id") not in (15,)
    )  # fmt: skip


def upcoming_dates(project: Project, course_id: int) -> list[int]:
    today = project.now.date().isoformat()
    return [
        d["coursedate_id"]
        for d in project.sample.dates_of(course_id)
        if d["start_at"] > today and d["is_visible"] and not d["deleted_at"]
    ]


def busiest_location(project: Project) -> int:
    """The location held by the most courses (so it spans the most shards)."""
    courses: dict[int, set[int]] = {}
    for record in project.sample.coursedates.values():
        location = record.get("location") or {}
        if location.get("id") and location.get("city"):
            courses.setdefault(location["id"], set()).add(record["course_id"])
    return max(courses, key=lambda lid: (len(courses[lid]), lid))


def edit_location(project: Project, lid: int, **fields) -> int:
    """Change a location wherever a date embeds it (as Frontcore would: every date shows
    the location as it is now); returns how many dates changed."""
    count = 0
    for record in project.sample.coursedates.values():
        for holder in [record, *record.get("gatherings", [])]:
            location = holder.get("location")
            if isinstance(location, dict) and location.get("id") == lid:
                location.update(fields)
                count += holder is record
    return count


def rename_category(project: Project, category_id: int, title: str) -> int:
    count = 0
    for record in project.sample.courses.values():
        for category in record.get("categories") or []:
            if category.get("id") == category_id:
                category["title"] = title
                count += 1
    return count


def add_date(project: Project, course_id: int, *, days_ahead: int = 40) -> int:
    """A copy of one of the course's dates, with a new id, ``days_ahead`` from today."""
    sample = project.sample
    template = copy.deepcopy(sample.dates_of(course_id)[-1])
    new_id = sample.next_ids["coursedate"]
    sample.next_ids["coursedate"] += 1
    day = (project.now + timedelta(days=days_ahead)).date().isoformat()
    template.update(
        coursedate_id=new_id,
        start_at=day,
        end_at=day,
        deadline_at=None,
        is_visible=True,
        deleted_at=None,
        parent_id=None,
        status={"id": 2, "idType": 2, "title": "Will run"},
    )
    for gathering in template.get("gatherings", []):
        gathering["gathering_at"] = f"{day} 09:00"
        gathering["gathering_end_at"] = f"{day} 15:00"
        gathering["idInstance"] = new_id
    sample.coursedates[new_id] = template
    return new_id


def data(edit: Callable[[Project], object]) -> Callable[[Project], object]:
    """An edit of the catalog's data: the next fetch saves it as a new snapshot."""

    def edit_and_save(project: Project) -> None:
        edit(project)
        project.save()

    edit_and_save.__name__ = edit.__name__
    return edit_and_save


def _nothing(project):
    pass


def _course_title(project):
    project.sample.change_course(course_ids(project)[2], title="Et helt nytt navn")


def _course_text(project):
    project.sample.change_course(
        course_ids(project)[3], text_description="<p>Ny <strong>beskrivelse</strong>.</p>"
    )


def _course_price(project):
    project.sample.change_course(
        course_ids(project)[4], price={"value": 777, "currency": "NOK", "comment": "Nå billigere"}
    )


def _course_added(project):
    project.sample.add_course("Et kurs som kom i natt", dates=3)


def _course_removed(project):
    project.sample.remove_course(course_ids(project)[5])


def _course_unpublished(project):
    project.sample.change_course(course_ids(project)[6], is_active=False)


def _date_added(project):
    add_date(project, course_ids(project)[7])


def _date_removed(project):
    cid = course_ids(project)[8]
    del project.sample.coursedates[upcoming_dates(project, cid)[0]]


def _date_soft_deleted(project):
    cid = course_ids(project)[8]
    project.sample.delete_date(upcoming_dates(project, cid)[-1])


def _date_moved(project):
    """A date given to another course: it moves to that course's shard."""
    ids = course_ids(project)
    did = upcoming_dates(project, ids[9])[0]
    project.sample.coursedates[did]["course_id"] = ids[1]


def _date_status(project):
    cid = course_ids(project)[10]
    did = upcoming_dates(project, cid)[0]
    project.sample.coursedates[did]["status"] = {"id": 3, "idType": 2, "title": "Canceled"}


def _date_seats(project):
    cid = course_ids(project)[11]
    project.sample.set_free_seats(upcoming_dates(project, cid)[0], 0)


def _venue_renamed(project):
    assert edit_location(project, busiest_location(project), title="Nytt kurssenter") > 3


def _venue_city_respelled(project):
    """One venue's city written in capitals: the city page keeps one spelling, and the
    venue pages of every other venue of the city may move with the vote."""
    assert edit_location(project, busiest_location(project), city="OSLO") > 3


def _date_names_its_course_as_text(project):
    """A course id as text ("22004"): the date lies in another shard than its course, so
    the two shards are read together."""
    ids = course_ids(project)
    did = upcoming_dates(project, ids[-3])[0]
    project.sample.coursedates[did]["course_id"] = str(ids[-3])


def _sub_date_of_another_courses_date(project):
    """A sub-date (a session) whose parent is a date of a course in another shard."""
    ids = course_ids(project)
    parent = upcoming_dates(project, ids[-2])[0]
    did = add_date(project, ids[-1])
    project.sample.coursedates[did]["parent_id"] = parent
    project.sample.coursedates[did]["start_at"] = project.sample.coursedates[parent]["start_at"]


def _category_renamed(project):
    assert rename_category(project, 12, "Økonomi, regnskap og lønn") > 1


def _booking_paths_lost(project):
    """A course loses its booking address and e-mail: its dates sign up on Kursguiden."""
    project.sample.change_course(
        course_ids(project)[12], external_booking_url="", email_booking=None
    )


SCENARIOS_OF_DATA = [
    _nothing,
    _course_title,
    _course_text,
    _course_price,
    _course_added,
    _course_removed,
    _course_unpublished,
    _date_added,
    _date_removed,
    _date_soft_deleted,
    _date_moved,
    _date_status,
    _date_seats,
    _venue_renamed,
    _venue_city_respelled,
    _category_renamed,
    _booking_paths_lost,
    _date_names_its_course_as_text,
    _sub_date_of_another_courses_date,
]


@pytest.mark.slow
@pytest.mark.parametrize("edit", [data(e) for e in SCENARIOS_OF_DATA], ids=lambda e: e.__name__)
def test_a_change_of_data_builds_what_a_clean_build_does(built, edit, tmp_path):
    edit(built)
    built.build()
    assert_clean(built, tmp_path / "clean")


def stamp_of(page: bytes) -> str:
    """What a page says about the age of its seats ("" when it says nothing)."""
    found = BeautifulSoup(page, "html5lib").select(".seats-as-of")
    return " ".join(p.get_text(strip=True) for p in found)


def test_a_booking_moves_the_seats_stamp_of_the_pages_that_show_it_and_no_other(built, tmp_path):
    """Seats say their age: a fetch that finds one date booked gives that date's pages the
    new fetch's time, and rewrites no other course page (each keeps the time since which
    every seat it shows is what it shows, which the new fetch confirmed). The site is still
    what a clean build makes."""
    site = built.site
    did, free = next(
        (d, int(seats["free"]["num"]))
        for cid in course_ids(built)[11:]
        for d in upcoming_dates(built, cid)
        if int((seats := built.sample.coursedates[d]["seats"])["free"]["num"]) > 5
    )
    cid = built.sample.coursedates[did]["course_id"]
    before = files_of(site)
    pages = {n for n in before if n.startswith("kurs/") and n.endswith("/index.html")}
    stamps = {n: stamp_of(before[n]) for n in pages}
    assert all(stamps.values()), "every course page of the sample shows seats, and their age"
    built.sample.set_free_seats(did, free - 1)  # one seat booked
    built.fetched = built.now + timedelta(hours=2, minutes=14)  # 06:15 in Oslo
    built.save()
    built.now += timedelta(hours=3)
    built.build()
    after = files_of(site)
    changed = {n for n in pages if after.get(n) != before[n]}
    (page,) = changed  # the booked date's course page, and no other
    assert page.endswith(f"-{cid}/index.html")
    assert stamp_of(after[page]) == "Ledige plasser per 23. nov. kl. 06:15"
    assert stamp_of(after[page]) != stamps[page]
    assert all(stamp_of(after[n]) == stamps[n] for n in pages - changed)
    calendars = [n for n in after if n.startswith("kalender/") and after[n] != before.get(n)]
    assert calendars and all("06:15" in stamp_of(after[n]) for n in calendars)
    assert_clean(built, tmp_path / "clean")


# --- the clock, the templates, the content, the config -------------------------------------


def _a_day_later(project):
    project.now += timedelta(days=1)


def _a_week_later(project):
    """Dates start and deadlines pass in many shards; some parts' outputs still hold."""
    project.now += timedelta(days=7)


def _an_hour_later(project):
    project.now += timedelta(hours=1)


def _past_midnight_in_oslo(project):
    """22:59 UTC to 23:01 UTC: the day turns in Oslo, not in UTC."""
    project.now = datetime(2026, 11, 23, 23, 59, tzinfo=OSLO)
    project.build()
    project.now = datetime(2026, 11, 24, 0, 1, tzinfo=OSLO)


def _back_in_time(project):
    """A replay of an earlier night (--now): dates that had started are upcoming again."""
    project.now -= timedelta(days=5)


def _course_template_overridden(project):
    project.write(
        "templates/course.html",
        '{% extends "!theme/course.html" %}\n'
        "{% block description %}Om kurset: {{ course.title }}{% endblock %}\n",
    )


def _base_template_overridden(project):
    base = _theme_text("base.html").replace("</body>", "<p>Et nytt fotnotat</p></body>")
    project.write("templates/base.html", base)


def _partial_overridden(project):
    project.write(
        "templates/partials/seats.html",
        _theme_text("partials/seats.html") + "\n<!-- plasser -->\n",
    )


def _content_page_added(project):
    project.write(
        "content/om-oss.md",
        "---\ntitle: Om oss\nmenu: 5\n---\nVi holder kurs.\n",
    )


def _content_page_edited(project):
    _content_page_added(project)
    project.build()
    project.write(
        "content/om-oss.md",
        "---\ntitle: Om oss\nmenu: 5\n---\nVi holder kurs, og har gjort det lenge.\n",
    )


def _content_page_renamed_in_menu(project):
    _content_page_added(project)
    project.build()
    project.write("content/om-oss.md", "---\ntitle: Hvem vi er\nmenu: 5\n---\nVi holder kurs.\n")


def _per_page(project):
    project.configure("[site]", "per_page = 3")


def _publish_rule(project):
    """Few seats left: a rule that every draft is read by."""
    project.configure("[publish]", "few_seats_threshold = 20")


def _booking_order(project):
    """Kursguiden first: every date's path (and its structured data) may change."""
    project.configure("[publish]", 'booking = ["kursguiden", "email"]')


def _contact_set(project):
    """A course with no booking path at all, then a contact for it in the config."""
    project.sample.change_course(
        course_ids(project)[13], external_booking_url="", email_booking=None, kursguiden_url=None
    )
    project.save()
    project.build()
    project.configure("[site]", 'contact_phone = "+47 22 00 00 00"')


def _hidden_course_types(project):
    project.configure("[publish]", 'hidden_course_types = ["internal", "public"]')


def _language(project):
    project.configure("[site]", 'language = "en"')


def _site_title(project):
    project.configure("[site]", 'title = "Kurs hos oss"')


def _no_base_url(project):
    toml = (project.root / "catalog.toml").read_text(encoding="utf-8")
    project.write("catalog.toml", toml.replace('base_url = "https://kurs.example.com/"\n', ""))


def _static_file_added(project):
    project.write("static/extra.css", "body { color: black; }\n")


def _static_file_edited(project):
    _static_file_added(project)
    project.build()
    project.write("static/extra.css", "body { color: navy; }\n")


def _theme_static_overridden(project):
    project.write("static/style.css", _theme_text("../static/style.css") + "\n.x{}\n")


def _theme_text(name: str) -> str:
    from catalog_gen.site.render import find_theme

    return (find_theme("default", Path(".")) / "templates" / name).read_text(encoding="utf-8")


SCENARIOS_OF_INPUTS = [
    _a_day_later,
    _a_week_later,
    _an_hour_later,
    _past_midnight_in_oslo,
    _back_in_time,
    _course_template_overridden,
    _base_template_overridden,
    _partial_overridden,
    _content_page_added,
    _content_page_edited,
    _content_page_renamed_in_menu,
    _per_page,
    _publish_rule,
    _booking_order,
    _contact_set,
    _hidden_course_types,
    _language,
    _site_title,
    _no_base_url,
    _static_file_added,
    _static_file_edited,
    _theme_static_overridden,
]


@pytest.mark.slow
@pytest.mark.parametrize("edit", SCENARIOS_OF_INPUTS, ids=lambda e: e.__name__)
def test_a_change_of_clock_templates_content_or_config_builds_what_a_clean_build_does(
    built, edit, tmp_path
):
    edit(built)
    built.build()
    assert_clean(built, tmp_path / "clean")


def test_a_day_later_made_in_a_worker_builds_what_a_clean_build_does(built, tmp_path, monkeypatch):
    """The parts the clock touched, made again in a forked worker and read back from the
    files it saved (``ModelCache._made_apart``): the site a clean build makes."""
    from catalog_gen.site import forked, modelcache

    made: list[object] = []
    apart = forked.apart
    monkeypatch.setattr(forked, "apart", lambda work: made.append(apart(work)) or made[-1])
    monkeypatch.setattr(modelcache, "APART_MIN_PARTS", 1)
    _a_week_later(built)
    built.build()
    assert len(made) == 1 and made[0] is not None and made[0][0].assembled
    monkeypatch.setattr(modelcache, "APART_MIN_PARTS", 10**9)  # the clean build: made here
    assert_clean(built, tmp_path / "clean")
    assert len(made) == 1


# --- what a build keeps, damaged ------------------------------------------------------------


def cache_files(project: Project) -> list[Path]:
    files = sorted((project.config.build_cache_path / "model").iterdir())
    assert len(files) >= 2 * COURSES  # a drafts and a model file per shard
    return files


def _truncated(project):
    for path in cache_files(project):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(project):
    for number, path in enumerate(cache_files(project)):
        path.write_bytes(os.urandom(64 + number))


def _payload_flipped(project):
    """One byte changed in each pickle, its header intact: the digest must catch it."""
    for path in cache_files(project):
        raw = bytearray(path.read_bytes())
        raw[-10] ^= 0x55
        path.write_bytes(bytes(raw))


def _another_version(project, monkeypatch):
    """Files a catalog-gen with another cache version wrote (for the same data)."""
    monkeypatch.setattr("catalog_gen.site.modelcache.CACHE_VERSION", CACHE_VERSION + 1)
    project.now += timedelta(minutes=20)  # a build that reads the model, not one that stops
    project.build()
    monkeypatch.undo()


def _swapped_between_shards(project):
    """Each shard's files under another shard's name: well-formed, but not theirs."""
    files = [p for p in cache_files(project) if p.suffix == ".model"]
    data = [p.read_bytes() for p in files]
    for path, other in zip(files, data[1:] + data[:1], strict=True):
        path.write_bytes(other)


def _folder_gone(project):
    shutil.rmtree(project.config.build_cache_path)


def _folder_is_a_file(project):
    shutil.rmtree(project.config.build_cache_path)
    project.config.build_cache_path.write_text("not a folder")


DAMAGE = [
    _truncated,
    _garbage,
    _payload_flipped,
    _another_version,
    _swapped_between_shards,
    _folder_gone,
    _folder_is_a_file,
]


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.__name__)
def test_a_damaged_build_cache_is_ignored(built, damage, tmp_path, monkeypatch):
    """Whatever happened to the cache, the next build (one that must read it: a course
    changed, a week passed) is a clean build's."""
    if "monkeypatch" in damage.__code__.co_varnames:
        damage(built, monkeypatch)
    else:
        damage(built)
    built.sample.change_course(course_ids(built)[2], title="Et helt nytt navn")
    built.save()
    built.now += timedelta(days=7)
    report = built.build()
    assert report.rendered > 0
    assert_clean(built, tmp_path / "clean")


def test_a_build_digests_only_the_files_that_read_what_changed(built, tmp_path, monkeypatch):
    """One course's price changes: the pages that show the course, and those made of the
    whole catalog, are digested; every other page's digest, and the other courses' calendar
    files', are the last build's, from the state (``Reads``), even where the build before
    carried none of a template's pages. The site is a clean build's."""
    digested: list[str] = []
    carried: list[str] = []
    calendars: list[int] = []
    page, date, carry = PageInputs.page, CalendarInputs.date, PageInputs.carried

    def carry_logged(self, p, last):
        found = carry(self, p, last)
        carried.extend([p.path] if found else [])
        return found

    monkeypatch.setattr(
        PageInputs, "page", lambda self, p: digested.append(p.path) or page(self, p)
    )
    monkeypatch.setattr(PageInputs, "carried", carry_logged)
    monkeypatch.setattr(
        CalendarInputs, "date", lambda self, c, d: calendars.append(c.id) or date(self, c, d)
    )
    # First three weeks pass: dates start and close, every calendar page shifts (none is
    # carried), and the next build still knows the calendar pages' frame.
    built.now += timedelta(days=21)
    built.build()
    assert "kalender/index.html" in digested and not any("kalender/" in p for p in carried)
    digested.clear()
    calendars.clear()
    changed = course_ids(built)[4]
    built.sample.change_course(changed, price={"value": 4321, "currency": "NOK"})
    built.save()
    report = built.build()
    reads = load_state(built.site).reads
    shows = {path for path, (_, courses) in reads.pages.items() if changed in courses}
    assert set(digested) == shows | {"kategori/index.html", "sted/index.html"}
    assert len(digested) < report.pages / 2
    assert set(calendars) == {changed}
    assert_clean(built, tmp_path / "clean")


def test_the_site_feed_is_made_from_the_pieces_the_last_build_kept(built, tmp_path, monkeypatch):
    """A course changes: the site-wide calendar takes the other dates' events from the last
    file where the kept pieces say they are (it is not read through), and is a clean build's.
    Pieces kept by a build that failed after making the feed (the site keeps the feed before
    it) are another file's: that one is read through, and is a clean build's too."""

    def retitle(title: str) -> None:
        built.sample.change_course(course_ids(built)[2], title=title)
        built.save()

    assert (built.config.build_cache_path / "model" / "site-calendar.kept").is_file()
    retitle("Et helt nytt navn")
    monkeypatch.setattr("catalog_gen.site.calendars._UID", None)  # reading through fails
    assert built.build().rendered > 0
    monkeypatch.undo()
    assert_clean(built, tmp_path / "clean")

    feed = (built.site / "kalender.ics").read_bytes()
    retitle("Et annet navn")
    monkeypatch.setattr("catalog_gen.site.publish.Publisher.commit", lambda self: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        built.build()
    monkeypatch.undo()
    assert (built.site / "kalender.ics").read_bytes() == feed
    retitle("Et tredje navn")
    built.build()
    assert_clean(built, tmp_path / "clean")


def test_links_in_the_build_cache_and_beside_the_site_are_removed_as_links(built, tmp_path):
    """Where a build keeps its things, a link is a leftover name: the model cache's folder, a
    file in it, the build state, the spare and a staging folder, each replaced by a link to
    someone else's folder or file, are removed or replaced as links by the next build (a real
    process), which publishes a clean build's site; what they point at keeps every file."""
    outside = tmp_path / "outside"
    for name in ("model", "spare", "staging"):
        (outside / name).mkdir(parents=True)
        (outside / name / "notes.txt").write_text(f"the operator's {name}\n")
    (outside / "model" / "07.model").write_bytes(b"someone else's file")
    (outside / "state.json").write_text("{}\n")
    config = built.config
    model = config.build_cache_path / "model"
    shutil.rmtree(model)
    model.symlink_to(outside / "model", target_is_directory=True)
    config.build_state_path.unlink()
    config.build_state_path.symlink_to(outside / "state.json")
    shutil.rmtree(config.spare_path)
    config.spare_path.symlink_to(outside / "spare", target_is_directory=True)
    staging = config.output_path.parent / f".{config.output_path.name}.staging-x"
    staging.symlink_to(outside / "staging", target_is_directory=True)
    before = lstat_tree(outside)

    built.sample.change_course(course_ids(built)[2], title="Et helt nytt navn")
    built.save()
    built.now += timedelta(days=7)
    result = built.cli()
    assert result.returncode == 0, result.stderr
    assert lstat_tree(outside) == before
    assert model.is_dir() and not model.is_symlink()
    assert not any(path.is_symlink() for path in model.iterdir())
    assert not config.build_state_path.is_symlink() and not os.path.lexists(staging)
    assert not config.spare_path.is_symlink()
    assert_clean(built, tmp_path / "clean")

    # A file of the cache that is a link, even to a copy of the very file, is not read: its
    # part is read from the snapshot again.
    linked = sorted(model.glob("*.model"))[0]
    (tmp_path / "copy.model").write_bytes(linked.read_bytes())
    linked.unlink()
    linked.symlink_to(tmp_path / "copy.model")
    rules = DraftRules(config.publish, config.timezone, config.site.language)
    cache = ModelCache(config.build_cache_path, rules)
    store = SnapshotStore(config.snapshot_path)
    cache.catalog(store.stored(store.latest_name()), now=built.now)
    assert cache.last.read == (linked.stem,)


# --- the spare and the live site, touched by hand -------------------------------------------


def course_page(project: Project, folder: Path | None = None) -> Path:
    """A course page of the site (or of ``folder``, the spare) that the last build kept."""
    site = folder or project.site
    last = project.reports[-1]
    pages = sorted(
        p for p in (site / "kurs").glob("*/index.html") if str(p.relative_to(site)) not in
        last.written_files
    )  # fmt: skip
    return pages[len(pages) // 2]


def written_page(project: Project, folder: Path) -> Path:
    """A page the last build wrote, as ``folder`` (the spare: the version before) has it."""
    name = next(n for n in project.reports[-1].written_files if n.startswith("kurs/"))
    return folder / name


def _spare_edited_in_place(project):
    """A file the last build wrote: the spare has the version before, edited here in place
    (its folder's mtime does not move)."""
    path = written_page(project, project.config.spare_path)
    with open(path, "r+b") as handle:
        handle.write(b"<!-- tampered -->")


def _spare_file_shared_with_the_site_edited_in_place(project):
    """A file both sites share (a hard link): the live site changed too, under the state."""
    path = course_page(project, project.config.spare_path)
    with open(path, "r+b") as handle:
        handle.write(b"<!-- tampered -->")


def _spare_file_removed(project):
    course_page(project, project.config.spare_path).unlink()


def _spare_file_replaced(project):
    """An editor's save: a new file renamed over the old one."""
    path = course_page(project, project.config.spare_path)
    path.with_name("new").write_bytes(b"<p>tampered</p>")
    os.replace(path.with_name("new"), path)


def _spare_file_added(project):
    (project.config.spare_path / "kurs" / "tampered.html").write_bytes(b"<p>tampered</p>")


def _spare_is_another_folder(project):
    spare = project.config.spare_path
    shutil.copytree(spare, spare.with_name("copy"))
    shutil.rmtree(spare)
    spare.with_name("copy").rename(spare)


def _spare_is_a_file(project):
    shutil.rmtree(project.config.spare_path)
    project.config.spare_path.write_text("not a folder")


def _site_page_edited(project):
    path = course_page(project)
    path.write_bytes(path.read_bytes().replace(b"</h1>", b" (tampered)</h1>", 1))


def _site_page_edited_same_size(project):
    path = course_page(project)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"<h1", b"<h2", 1).replace(b"</h1>", b"</h2>", 1))


def _site_page_removed(project):
    course_page(project).unlink()


def _site_folder_removed(project):
    shutil.rmtree(course_page(project).parent)


def _site_folder_removed_with_its_course(project):
    """A course's folder removed by hand, and the course from the data (the spare still
    has the folder)."""
    folder = course_page(project).parent
    shutil.rmtree(folder)
    project.sample.remove_course(int(folder.name.rsplit("-", 1)[1]))
    project.save()


def _site_page_replaced_by_a_folder(project):
    path = course_page(project)
    path.unlink()
    path.mkdir()


def _site_page_replaced_with_last_bytes(project):
    """An rsync-style restore: the same bytes under a new inode, mtime kept."""
    path = course_page(project)
    stat = path.stat()
    shutil.copyfile(path, path.with_name("copy"))
    os.utime(path.with_name("copy"), ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(path.with_name("copy"), path)


def _site_calendar_edited(project):
    path = project.site / "kalender.ics"
    path.write_bytes(path.read_bytes().replace(b"BEGIN:VEVENT", b"BEGIN:VEVENT\r\nX-T:1", 1))


def _site_asset_edited(project):
    path = next((project.site / "static").glob("style.*.css"))
    path.write_bytes(path.read_bytes() + b"\n/* tampered */\n")


def _site_sitemap_removed(project):
    (project.site / "sitemap.xml").unlink()


def _state_removed(project):
    project.config.build_state_path.unlink()


def _state_damaged(project):
    path = project.config.build_state_path
    path.write_bytes(path.read_bytes()[:100])


TAMPERING = [
    _spare_edited_in_place,
    _spare_file_shared_with_the_site_edited_in_place,
    _spare_file_removed,
    _spare_file_replaced,
    _spare_file_added,
    _spare_is_another_folder,
    _spare_is_a_file,
    _site_page_edited,
    _site_page_edited_same_size,
    _site_page_removed,
    _site_folder_removed,
    _site_folder_removed_with_its_course,
    _site_page_replaced_by_a_folder,
    _site_page_replaced_with_last_bytes,
    _site_calendar_edited,
    _site_asset_edited,
    _site_sitemap_removed,
    _state_removed,
    _state_damaged,
]


@pytest.mark.slow
@pytest.mark.parametrize("tamper", TAMPERING, ids=lambda t: t.__name__)
def test_a_spare_or_site_touched_by_hand_never_publishes_wrong_bytes(built, tamper, tmp_path):
    """Touched, then a build with nothing to do but repair (past the quarter hour, so that it
    does not stop early), then one that publishes a change (from the spare, if trusted)."""
    tamper(built)
    built.now += timedelta(minutes=30)
    built.build()
    assert_clean(built, tmp_path / "clean")
    # Not a new title: a build without a state (one of the tamperings) removes no old page.
    built.sample.change_course(course_ids(built)[7], text_lead="En ny ingress.")
    built.save()
    built.build()
    assert_clean(built, tmp_path / "clean")


# --- the search index -----------------------------------------------------------------------


@pytest.fixture
def searchable(tmp_path) -> Project:
    """A project with the search index (Pagefind), built twice like ``built``."""
    project = Project.make(tmp_path / "project", toml=TOML.replace("false", "true"))
    project.build()
    project.sample.change_course(course_ids(project)[0], text_lead="Endret ingress.")
    project.save()
    project.build()
    return project


def _index_file_removed(project):
    next((project.site / "pagefind").rglob("*.pf_meta")).unlink()


def _index_file_edited(project):
    path = next((project.site / "pagefind").rglob("*.pf_meta"))
    path.write_bytes(path.read_bytes() + b"\0")


def _index_removed(project):
    shutil.rmtree(project.site / "pagefind")


def _search_off(project):
    toml = (project.root / "catalog.toml").read_text(encoding="utf-8")
    project.write("catalog.toml", toml.replace("search = true", "search = false"))


def _index_file_edited_same_size(project):
    """One byte changed in place: the same size, and its folder's mtime unmoved."""
    path = next((project.site / "pagefind").rglob("*.pf_meta"))
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    with open(path, "r+b") as handle:
        handle.write(data)


def _index_file_edited_keeping_its_mtime(project):
    """Edited in place and its mtime put back (``touch -r``): only the weekly run sees it."""
    path = next((project.site / "pagefind").rglob("*.pf_meta"))
    found = path.stat()
    _index_file_edited_same_size(project)
    os.utime(path, ns=(found.st_atime_ns, found.st_mtime_ns))


#: The index is made again when a page it reads changed, a file of it is missing, or a file
#: of it is not the size and mtime the last publish left (the build state keeps both).
INDEX_CASES = [
    *((_nothing, change) for change in (_nothing, _course_text, _course_removed, _site_title)),
    (_nothing, _search_off),
    (_index_file_removed, _nothing),
    (_index_file_removed, _course_removed),
    (_index_removed, _nothing),
    (_index_removed, _search_off),
    (_index_file_edited, _nothing),
    (_index_file_edited_same_size, _nothing),
    (_index_file_edited, _course_text),
]


@pytest.mark.slow
@pytest.mark.parametrize(("tamper", "change"), INDEX_CASES, ids=lambda step: step.__name__)
def test_the_search_index_is_a_clean_builds(searchable, tamper, change, tmp_path):
    tamper(searchable)
    data(change)(searchable) if change in SCENARIOS_OF_DATA else change(searchable)
    searchable.now += timedelta(minutes=30)
    searchable.build()
    assert_clean(searchable, tmp_path / "clean")


@pytest.mark.slow
def test_the_weekly_full_build_repairs_what_no_stat_shows(searchable, tmp_path):
    """An index file and a page edited in place with their mtime put back: an ordinary
    night cannot see it (docs/site.md says so); ``build --full`` trusts nothing an earlier
    build kept and leaves the site a clean build's."""
    _index_file_edited_keeping_its_mtime(searchable)
    page = course_page(searchable)
    found = page.stat()
    page.write_bytes(page.read_bytes().replace(b"<h1", b"<H1", 1))  # the same size
    os.utime(page, ns=(found.st_atime_ns, found.st_mtime_ns))
    searchable.now += timedelta(minutes=30)
    result = searchable.cli("--full")
    assert result.returncode == 0, result.stderr
    assert_clean(searchable, tmp_path / "clean")


@pytest.mark.slow
def test_a_page_replaced_by_hand_with_the_next_builds_bytes_is_not_taken_from_the_spare(
    built, tmp_path
):
    """The live page is a new file (an editor's save) holding exactly what the next build
    renders; the spare still holds the page as the last build wrote it. The page is the
    same as the live one, so it is kept: the live file, not the spare's."""
    page = course_page(built)
    name = str(page.relative_to(built.site))
    course_id = int(page.parent.name.rsplit("-", 1)[1])
    built.sample.change_course(course_id, text_lead="En ny ingress.")
    built.save()
    ahead = built.clean_copy(tmp_path / "ahead")
    ahead.build()
    page.with_name("new").write_bytes((ahead.site / name).read_bytes())
    os.replace(page.with_name("new"), page)

    built.build()

    assert_clean(built, tmp_path / "clean")


# --- a build that is killed -----------------------------------------------------------------


def kill_when(project: Project, ready: Callable[[], bool], *, timeout: float = 120) -> int:
    """Start ``catalog-gen build`` and SIGKILL it (with any worker it forked) as soon as
    ``ready()``; its exit status (-9 when it was killed, 0 when it finished first)."""
    command = [sys.executable, "-m", "catalog_gen", "build", "--offline", "--quiet"]
    child = subprocess.Popen(
        [*command, "--now", project.now.isoformat()],
        cwd=project.root,
        env=env_without_key(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while child.poll() is None and time.monotonic() < deadline:
            if ready():
                os.killpg(child.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
        return child.wait(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)


def staging_has_pages(project: Project) -> bool:
    """A staging folder beside the site with rendered pages in it."""
    return any(
        (folder / "kurs").is_dir() and any((folder / "kurs").iterdir())
        for folder in project.root.glob(f".{project.site.name}.staging-*")
    )


def test_a_build_killed_mid_render_leaves_the_site_and_the_next_build_is_clean(built, tmp_path):
    site_before = site_tree(built.site)
    state_before = built.config.build_state_path.read_bytes()
    # Every page renders again, and a course changes: a long render, from the spare.
    _base_template_overridden(built)
    data(_course_title)(built)

    status = kill_when(built, lambda: staging_has_pages(built))

    assert status == -signal.SIGKILL, "the build ended before it could be killed"
    assert site_tree(built.site) == site_before
    assert built.config.build_state_path.read_bytes() == state_before
    result = built.cli()
    assert result.returncode == 0, result.stderr
    assert_clean(built, tmp_path / "clean")
    assert not list(built.root.glob(f".{built.site.name}.staging-*"))


@pytest.mark.slow
def test_builds_killed_at_any_moment_leave_a_whole_site_and_the_next_is_clean(built, tmp_path):
    """Killed while reading the model, rendering, indexing, swapping or recording: each
    time the site is the last good one or, once swapped, the new one whole; and the build
    after it is a clean build's."""
    _course_template_overridden(built)
    data(_venue_renamed)(built)
    before = files_of(built.site)
    ahead = built.clean_copy(tmp_path / "ahead")
    started = time.monotonic()
    assert ahead.cli().returncode == 0  # the same build, timed: the kills spread over it
    took = time.monotonic() - started
    after = files_of(ahead.site)
    kills = 0
    for share in (0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0, 1.5):
        until = time.monotonic() + took * share
        status = kill_when(built, lambda until=until: time.monotonic() > until)
        if status == 0:
            break
        kills += 1
        assert files_of(built.site) in (before, after), f"killed after {share:.0%} of a build"
    assert kills >= 3
    assert built.cli().returncode == 0
    assert_clean(built, tmp_path / "clean")


def test_a_build_that_dies_between_the_swap_and_its_state_is_followed_by_a_clean_one(
    built, tmp_path, monkeypatch
):
    """The new site is live but its build state was never written: the old state names
    the old site's folder (its inode), so it is not trusted, nor is the spare."""
    data(_course_title)(built)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("catalog_gen.build.save_state", killed)
    with pytest.raises(KeyboardInterrupt):
        built.build()
    monkeypatch.undo()
    data(_course_price)(built)
    built.build()
    assert_clean(built, tmp_path / "clean")


# --- any sequence of changes ----------------------------------------------------------------


def pick(items: list, index: int):
    return items[index % len(items)] if items else None


def step_course(project: Project, index: int, what: str) -> None:
    cid = pick(course_ids(project), index)
    if cid is None:
        return
    fields = {
        "title": {"title": f"Nytt navn {index}"},
        "text": {"text_description": f"<p>Ny tekst {index}</p>"},
        "price": {"price": {"value": 100 + index, "currency": "NOK", "comment": None}},
        "hidden": {"is_active": False},
        "category": {"categories": [{"id": 13 + index % 3, "title": f"Kategori {index % 3}"}]},
    }[what]
    project.sample.change_course(cid, **fields)
    project.save()


def step_course_added(project: Project, dates: int) -> None:
    project.sample.add_course(f"Nytt kurs {dates}", dates=dates)
    project.save()


def step_course_removed(project: Project, index: int) -> None:
    cid = pick(sorted(project.sample.courses), index)
    if cid is not None:
        project.sample.remove_course(cid)
        project.save()


def step_date(project: Project, index: int, what: str, value: int) -> None:
    cid = pick(course_ids(project), index)
    did = pick(upcoming_dates(project, cid), value) if cid else None
    if what == "added" and cid:
        add_date(project, cid, days_ahead=value)
    elif did is None:
        return
    elif what == "removed":
        del project.sample.coursedates[did]
    elif what == "moved":
        project.sample.coursedates[did]["course_id"] = pick(course_ids(project), index + value + 1)
    elif what == "status":
        status = 1 + value % 4
        project.sample.coursedates[did]["status"] = {"id": status, "idType": 2, "title": "x"}
    elif what == "seats":
        project.sample.set_free_seats(did, value % 6)
    elif what == "deadline":
        day = (project.now + timedelta(days=value % 5)).date().isoformat()
        project.sample.coursedates[did]["deadline_at"] = day
    elif what == "course as text":  # the date's shard is no longer its course's
        project.sample.coursedates[did]["course_id"] = str(cid)
    elif what == "sub-date elsewhere":  # a session of a date of another course
        parent = project.sample.coursedates[did]
        other = pick(course_ids(project), index + 1)
        sub = add_date(project, other)
        project.sample.coursedates[sub].update(parent_id=did, start_at=parent["start_at"])
    project.save()


def step_venue(project: Project, what: str, value: int) -> None:
    lid = busiest_location(project)
    if what == "title":
        edit_location(project, lid, title=f"Kurssted {value}")
    else:
        edit_location(project, lid, city=["OSLO", "oslo", "Oslo", "Bergen"][value % 4])
    project.save()


def step_category(project: Project, value: int) -> None:
    rename_category(project, 11 + value % 7, f"Kategori nr. {value}")
    project.save()


def step_clock(project: Project, hours: int) -> None:
    project.now += timedelta(hours=hours)


def step_template(project: Project, variant: int) -> None:
    path = project.root / "templates" / "course.html"
    if variant == 0:
        path.unlink(missing_ok=True)
    else:
        project.write(
            "templates/course.html",
            '{% extends "!theme/course.html" %}\n'
            f"{{% block description %}}Variant {variant}: {{{{ course.title }}}}{{% endblock %}}\n",
        )


def step_config(project: Project, variant: int) -> None:
    toml = TOML + ["", "per_page = 2\n", "[publish]\nfew_seats_threshold = 9\n"][variant % 3]
    project.write("catalog.toml", toml)


def step_content(project: Project, variant: int) -> None:
    project.write("content/om-oss.md", f"---\ntitle: Om oss {variant}\nmenu: 5\n---\nTekst.\n")


def step_static(project: Project, variant: int) -> None:
    project.write("static/extra.css", f"p {{ margin: {variant}px; }}\n")


def step_cache_damaged(project: Project, index: int) -> None:
    folder = project.config.build_cache_path / "model"
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    path = pick(files, index)
    if path is not None:
        path.write_bytes(path.read_bytes()[: index % 50])


def step_spare_touched(project: Project, index: int) -> None:
    """A file of the spare removed, or edited in place (most are the live site's files
    too: then the live site changed, which a build sees only when it has something to do,
    as in ``step_site_touched``)."""
    spare = project.config.spare_path
    files = sorted(p for p in spare.rglob("*") if p.is_file()) if spare.is_dir() else []
    path = pick(files, index)
    if path is not None:
        path.unlink() if index % 2 else path.write_bytes(b"tampered")
    project.now += timedelta(minutes=30)


def step_site_touched(project: Project, index: int) -> None:
    """A page edited or removed by hand, then a build that has something to do (one whose
    inputs equal the last one's stops before it looks at the site: see docs/speed.md)."""
    files = sorted(p for p in project.site.rglob("*.html"))
    path = pick(files, index)
    if path is not None:
        path.unlink() if index % 2 else path.write_bytes(b"tampered")
    project.now += timedelta(minutes=30)


def steps():
    from hypothesis import strategies as st

    small = st.integers(0, 40)
    return st.one_of(
        st.tuples(
            st.just(step_course), small,
            st.sampled_from(["title", "text", "price", "hidden", "category"]),
        ),
        st.tuples(st.just(step_course_added), st.integers(0, 3)),
        st.tuples(st.just(step_course_removed), small),
        st.tuples(
            st.just(step_date), small,
            st.sampled_from([
                "added", "removed", "moved", "status", "seats", "deadline", "course as text",
                "sub-date elsewhere",
            ]),
            small,
        ),
        st.tuples(st.just(step_venue), st.sampled_from(["title", "city"]), small),
        st.tuples(st.just(step_category), small),
        st.tuples(st.just(step_clock), st.sampled_from([1, 7, 24, 24 * 3, 24 * 9, -24 * 2])),
        st.tuples(st.just(step_template), st.integers(0, 2)),
        st.tuples(st.just(step_config), st.integers(0, 2)),
        st.tuples(st.just(step_content), st.integers(0, 2)),
        st.tuples(st.just(step_static), st.integers(0, 2)),
        st.tuples(st.just(step_cache_damaged), small),
        st.tuples(st.just(step_spare_touched), small),
        st.tuples(st.just(step_site_touched), small),
    )  # fmt: skip


@pytest.mark.slow
def test_any_sequence_of_changes_builds_what_clean_builds_do():
    """From a small catalog, any sequence of edits, clock moves, and damage to what a build
    keeps: after each, the incremental build is a clean build's."""
    import tempfile

    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    @settings(
        max_examples=int(os.environ.get("INCREMENTAL_EXAMPLES", "6")),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
        # Each example is a few builds: shrinking a failure takes minutes, and a sequence
        # of at most four steps reads well as it is.
        phases=[Phase.explicit, Phase.generate],
    )
    @given(st.lists(steps(), min_size=1, max_size=4))
    def check(sequence):
        with tempfile.TemporaryDirectory() as folder:
            project = Project.make(Path(folder) / "project", courses=8)
            project.build()
            for number, (step, *args) in enumerate(sequence):
                step(project, *args)
                project.build()
                assert_clean(project, Path(folder) / f"clean-{number}")

    check()


# --- the model cache on its own -------------------------------------------------------------


def model_both_ways(project: Project, cache: ModelCache) -> tuple:
    """The catalog of the newest snapshot at the project's clock, made by ``cache`` (from
    what it kept) and by ``build_catalog`` (from the whole snapshot), each with its odd data."""
    store = SnapshotStore(project.root / "snapshots")
    name = store.latest_name()
    config = project.config
    kept_found, whole_found = Anomalies(), Anomalies()
    kept = cache.catalog(store.stored(name), now=project.now, anomalies=kept_found)
    whole = build_catalog(
        store.load(name),
        config.publish,
        now=project.now,
        timezone=config.timezone,
        language=config.site.language,
        anomalies=whole_found,
    )
    return kept, whole, sorted(a.key for a in kept_found), sorted(a.key for a in whole_found)


def test_the_model_cache_makes_the_whole_snapshots_catalog_reading_only_what_changed(tmp_path):
    """Field for field and with the same odd data, what ``build_catalog`` makes from the
    whole snapshot; reading from the snapshot only the shards whose records changed, and
    assembling again only those and the ones the clock touched."""
    project = Project.make(tmp_path / "project")
    config = project.config
    rules = DraftRules.of(config)
    folder = tmp_path / "cache"

    def check(*, read: int, assembled: int | None = None, warm: ModelCache | None = None):
        cache = warm or ModelCache(folder, rules)  # a new process: only the files
        kept, whole, kept_odd, whole_odd = model_both_ways(project, cache)
        cache.save()
        cache.prints.forget()
        assert kept == whole and kept_odd == whole_odd
        assert len(cache.last.read) == read
        if assembled is not None:
            assert len(cache.last.assembled) == assembled
        return cache

    check(read=COURSES, assembled=COURSES)
    check(read=0, assembled=0)
    data(_course_title)(project)
    warm = check(read=1, assembled=1)
    data(_venue_renamed)(project)  # every date at the venue: their shards' records changed
    check(read=len({int(d["course_id"]) % 100 for d in dates_at(project)}))
    project.now += timedelta(days=7)  # no record changed: the clock's parts are assembled
    warm = check(read=0, warm=warm)
    assert 0 < len(warm.last.assembled) < COURSES
    data(_date_names_its_course_as_text)(project)
    data(_sub_date_of_another_courses_date)(project)
    check(read=3)
    project.now += timedelta(days=1)
    check(read=0)


def test_parts_made_again_in_a_worker_are_the_catalog_made_here(tmp_path, monkeypatch):
    """A one-off build makes many parts again (a cold cache, a day later) in a forked worker
    and reads what it saved: the same catalog, field for field, as one made in this process
    and as ``build_catalog``'s; what the worker did not save is made here; a worker that
    fails leaves the work to this process."""
    from catalog_gen.site import forked, modelcache

    project = Project.make(tmp_path / "project")
    rules = DraftRules.of(project.config)
    runs: list[object] = []
    apart = forked.apart

    def recorded(function):
        runs.append(apart(function))
        return runs[-1]

    monkeypatch.setattr(forked, "apart", recorded)

    def made(folder: Path):
        cache = ModelCache(folder, rules)
        kept, whole, kept_odd, whole_odd = model_both_ways(project, cache)
        assert kept == whole and kept_odd == whole_odd
        here = sorted(name for name, part in cache._parts.items() if part.output_dirty)
        # No course or date but the catalog's is held by a fingerprint (the outputs the
        # worker replaced are let go).
        ours = {id(obj) for course in kept.courses for obj in (course, *course.dates)}
        held = [value for value, _ in cache.prints._known.values()]
        assert [v for v in held if isinstance(v, Course | CourseDate) and id(v) not in ours] == []
        cache.save()
        return cache, kept, here

    cache, cold, here = made(tmp_path / "apart")  # nothing kept: every part made in the worker
    assert isinstance(runs[-1], tuple) and isinstance(runs[-1][0], modelcache.CatalogRun)
    assert sorted(cache.last.read) == sorted(cache.last.assembled) == sorted(runs[-1][0].read)
    assert runs[-1][1] == set(cache.last.assembled)  # and saved them all
    assert len(cache.last.read) == COURSES
    assert not here and all(part.drafts is None for part in cache._parts.values())
    monkeypatch.setattr(modelcache, "APART_MIN_PARTS", 10**9)
    _, same, here = made(tmp_path / "here")
    assert cold == same and len(here) == COURSES
    monkeypatch.setattr(modelcache, "APART_MIN_PARTS", 1)

    project.now += timedelta(days=9)  # no record changed: the clock's parts, in the worker
    cache, _, here = made(tmp_path / "apart")
    assert runs[-1] is not None and cache.last.assembled and not cache.last.read and not here

    project.now += timedelta(days=9)  # the worker cannot save its last part: made here
    parent, write, mark = os.getpid(), ModelCache._write, tmp_path / "unsaved"

    def last_fails(self, folder, filename, key, value):
        unsaved = [name for name, part in self._parts.items() if part.output_dirty]
        if os.getpid() != parent and [filename] == [f"{name}.model" for name in unsaved]:
            mark.write_text(unsaved[0])
            raise OSError(28, "No space left on device")
        write(self, folder, filename, key, value)

    monkeypatch.setattr(ModelCache, "_write", last_fails)
    cache, _, here = made(tmp_path / "apart")
    assert runs[-1] is not None and here == [mark.read_text()]

    project.now += timedelta(days=9)  # the worker fails: all made here
    monkeypatch.setattr(ModelCache, "_write", write)
    monkeypatch.setattr(ModelCache, "_save_parts", lambda *_: os.getpid() == parent or os._exit(3))
    cache, _, here = made(tmp_path / "apart")
    assert runs[-1] is None and here and here == sorted(cache.last.assembled)

    project.now += timedelta(days=9)  # a cache it cannot write in: no worker, all made here
    (tmp_path / "a file").write_text("")
    tried = len(runs)
    cache, _, here = made(tmp_path / "a file" / "cache")
    assert len(runs) == tried and here == sorted(cache.last.assembled) != []


def dates_at(project: Project) -> list[dict]:
    lid = busiest_location(project)
    return [
        d for d in project.sample.coursedates.values() if (d.get("location") or {}).get("id") == lid
    ]
