"""Seats that say their age: "Ledige plasser per 4. des. kl. 03:15" wherever seats are shown.

The time is a fetch's, never the build's: the newest ``unchanged_since`` (snapshot.py) among
the dates whose seats the page shows, in the catalog's zone. At that moment a fetch read every
seat on the page as shown; it moves only when something the page shows changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from catalog_gen.config import PublishSettings, load_config
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.generate import render_files
from catalog_gen.site.model import seats_as_of
from catalog_gen.snapshot import Snapshot
from tests.conftest import snapshot_of
from tests.test_catalog import NOW, cdate, course

FETCHED = datetime(2026, 12, 4, 2, 15, tzinfo=UTC)  # 03:15 in Oslo, 21:15 the day before in NY
EARLIER = FETCHED - timedelta(days=3)
UNKNOWN_SEATS = {"seats": {"allocated_capacity": {"num": 0}, "free": {"num": 0}}}


def fetched(courses, dates, since) -> Snapshot:
    """The records as fetched at FETCHED, each date's record unchanged since ``since[id]``."""
    return snapshot_of(courses, dates, fetched_at=FETCHED, unchanged_since=since)


def sample():
    """Course 1: two dates with seats shown, changed at different fetches; course 2: seats
    unknown (nothing shown); course 3: no dates; course 4: fully booked, read long ago."""
    courses = [course(1), course(2), course(3), course(4)]
    dates = [
        cdate(10, 1, start="2026-12-10"),
        cdate(11, 1, start="2026-12-17", seats_status="fully_booked"),
        cdate(20, 2, start="2026-12-10", **UNKNOWN_SEATS),
        cdate(40, 4, start="2026-12-11", seats_status="fully_booked"),
    ]
    since = {10: EARLIER, 11: FETCHED, 20: FETCHED, 40: EARLIER - timedelta(days=30)}
    return courses, dates, since


def test_a_page_says_the_newest_time_among_the_seats_it_shows():
    catalog = build_catalog(fetched(*sample()), PublishSettings(), now=NOW)
    one, two, three, four = catalog.courses
    oslo = FETCHED.astimezone(one.dates[0].seats_as_of.tzinfo)
    assert str(one.dates[0].seats_as_of.tzinfo) == "Europe/Oslo"  # the catalog's zone
    assert seats_as_of(one.dates) == oslo  # the newer of the two
    assert seats_as_of(one.dates[:1]) == EARLIER
    assert seats_as_of(two.dates) is None  # seats unknown: nothing shown, no time
    assert seats_as_of(three.dates) is None
    # A course list shows each course's next date: course 1's was read three days earlier.
    assert seats_as_of([one, two, three, four]) == EARLIER
    assert seats_as_of([two, three]) is None
    assert seats_as_of(catalog.dates) == oslo


def test_a_date_with_no_time_of_its_own_reads_as_its_snapshots_fetch():
    courses, dates, _ = sample()
    catalog = build_catalog(fetched(courses, dates, {}), PublishSettings(), now=NOW)
    assert {d.seats_as_of for d in catalog.dates} == {FETCHED}


def render(tmp_path: Path, toml: str) -> dict[str, BeautifulSoup]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "catalog.toml").write_text(toml, encoding="utf-8")
    site = render_files(load_config(tmp_path / "catalog.toml"), fetched(*sample()), now=NOW)
    return {
        name: BeautifulSoup(data, "html5lib")
        for name, data in site.files.items()
        if name.endswith(".html")
    }


def stamps(page: BeautifulSoup) -> list[str]:
    return [p.get_text(strip=True) for p in page.select("main .seats-as-of")]


def course_page(pages: dict[str, BeautifulSoup], cid: int) -> BeautifulSoup:
    (page,) = [p for name, p in pages.items() if name.endswith(f"-{cid}/index.html")]
    return page


@pytest.mark.parametrize(
    ("toml", "newest", "older", "calendar"),
    [
        (
            "",
            "Ledige plasser per 4. des. kl. 03:15",
            "Ledige plasser per 1. des. kl. 03:15",
            "kalender/index.html",
        ),
        (
            '[site]\nlanguage = "en"\n',
            "Seats as of 4 Dec, 03:15",
            "Seats as of 1 Dec, 03:15",
            "calendar/index.html",
        ),
        (
            'timezone = "America/New_York"\n',
            "Ledige plasser per 3. des. kl. 21:15",
            "Ledige plasser per 30. nov. kl. 21:15",
            "kalender/index.html",
        ),
    ],
    ids=["nb", "en", "another-zone"],
)
def test_the_seats_stamp_in_the_site_language_and_the_catalogs_zone(
    tmp_path, toml, newest, older, calendar
):
    pages = render(tmp_path, toml)
    assert stamps(course_page(pages, 1)) == [newest]
    assert stamps(course_page(pages, 2)) == []  # no seats shown: no time either
    assert stamps(course_page(pages, 3)) == []  # no dates
    assert stamps(pages["index.html"]) == [older]  # the cards show each course's next date
    assert stamps(pages[calendar]) == [newest]
    assert stamps(pages["404.html"]) == []
    # The stamp is not searchable text: Pagefind leaves it out.
    assert course_page(pages, 1).select_one(".seats-as-of").has_attr("data-pagefind-ignore")
