"""Calendar files: read back as a calendar app would, in the date's zone, byte-stable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from dataclasses import replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Event

from catalog_gen.config import load_config
from catalog_gen.demo.sample import generate_catalog
from catalog_gen.site import calendars
from catalog_gen.site.calendars import (
    FALLBACK_STAMP,
    CalendarSite,
    CalendarWriter,
    course_calendar,
    date_calendar,
    site_calendar,
)
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.model import Catalog, Course, CourseDate, Seats, Session, Venue
from catalog_gen.snapshot import Snapshot

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=OSLO)
FETCHED = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
CHANGED = datetime(2026, 11, 2, 13, 29, 4, tzinfo=OSLO)
HOSTILE = "<script>alert(1)</script>, ; \\"
SEM = Venue(6402, "Kurssenteret Sem", "Semsveien 1", "3170", "Sem", "kurssenteret-sem-6402")
ONLINE = Venue(-301, "", "", "", "", "sted-p301", is_online=True)
SITE = CalendarSite(
    title="Kurs hos Eksempel",
    host="courses.example.com",
    language="nb",
    page_url=lambda course: f"https://courses.example.com/kurs/{course.slug}/",
    online_label="Nett",
)
ROOT = Path(__file__).resolve().parent.parent


def course_date(did: int, course_id: int = 1, **fields) -> CourseDate:
    cdate = CourseDate(
        id=did,
        course_id=course_id,
        start_date=date(2026, 12, 1),
        start_time=time(9, 0),
        end_date=date(2026, 12, 1),
        end_time=time(15, 0),
        timezone="Europe/Oslo",
        deadline=None,
        status="scheduled",
        deadline_passed=False,
        venue=SEM,
        seats=Seats("available", 5),
        price=None,
        booking_url="https://book.example.test/",
        booking_email="",
        updated_at=CHANGED,
    )
    return replace(cdate, **fields)


def course_of(cid: int, *dates: CourseDate, **fields) -> Course:
    course = Course(
        id=cid,
        title=f"Kurs {cid}",
        slug=f"kurs-{cid}",
        reference="",
        lead="Kort om kurset.",
        description_html="<p>Hei</p>",
        prerequisites_html="",
        audience_html="",
        categories=(),
        price=None,
        dates=tuple(sorted(dates, key=lambda d: d.sort_key)),
        updated_at=None,
    )
    return replace(course, **fields)


def catalog_of(*courses: Course, fetched_at: datetime | None = FETCHED) -> Catalog:
    return Catalog(
        courses=courses,
        categories=(),
        venues=(),
        cities=(),
        dates=tuple(sorted((d for c in courses for d in c.dates), key=lambda d: d.sort_key)),
        now=NOW,
        fetched_at=fetched_at,
        _by_id={c.id: c for c in courses},
    )


def sample_catalog() -> Catalog:
    """Two zones, a canceled date, sessions and a hostile title: the feed at its hardest."""
    return catalog_of(
        course_of(
            1,
            course_date(11),
            course_date(12, start_date=date(2027, 6, 7), end_date=date(2027, 6, 9)),
            course_date(13, start_date=date(2026, 12, 8), status="canceled"),
            title=HOSTILE,
        ),
        course_of(
            2,
            course_date(21, course_id=2, timezone="America/New_York", venue=ONLINE),
            course_date(
                22,
                course_id=2,
                start_date=date(2027, 1, 11),
                start_time=None,
                end_date=date(2027, 1, 12),
                end_time=None,
                sessions=(
                    Session(date(2027, 1, 11), time(9, 0), time(12, 0), "Kurssenteret Sem"),
                    Session(date(2027, 1, 12), time(10, 0), None, "Helsfyr"),
                ),
            ),
            updated_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
        ),
    )


def sample_feed() -> bytes:
    """The site feed of the sample catalog (also called from a subprocess)."""
    return site_calendar(sample_catalog(), site=SITE)


def unescaped(value: object) -> str:
    """RFC 5545 TEXT as a calendar app reads it (icalendar leaves X- properties escaped)."""
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], str(value))


def events_of(ical: bytes) -> list:
    return Calendar.from_ical(ical).walk("VEVENT")


def only_event(ical: bytes):
    (event,) = events_of(ical)
    return event


def test_a_timed_date_keeps_its_wall_clock_in_its_own_zone():
    cdate = course_date(7)
    ical = date_calendar(course_of(1, cdate), cdate, site=SITE)
    event = only_event(ical)
    start, end = event["DTSTART"].dt, event["DTEND"].dt

    assert b"DTSTART;TZID=Europe/Oslo:20261201T090000\r\n" in ical
    assert (start.replace(tzinfo=None), end.replace(tzinfo=None)) == (
        datetime(2026, 12, 1, 9, 0),
        datetime(2026, 12, 1, 15, 0),
    )
    assert start.tzname() == "CET"
    assert start.astimezone(UTC) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    calendar = Calendar.from_ical(ical)
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Oslo"]
    assert calendar.get_missing_tzids() == set()


def test_summer_time_is_the_zones_own_offset():
    cdate = course_date(7, start_date=date(2027, 6, 7), end_date=date(2027, 6, 7))
    start = only_event(date_calendar(course_of(1, cdate), cdate, site=SITE))["DTSTART"].dt

    assert start.astimezone(UTC) == datetime(2027, 6, 7, 7, 0, tzinfo=UTC)


def test_every_zone_in_use_gets_a_vtimezone():
    calendar = Calendar.from_ical(sample_feed())

    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == [
        "America/New_York",
        "Europe/Oslo",
    ]
    assert calendar.get_missing_tzids() == set()
    new_york = next(e for e in calendar.walk("VEVENT") if "coursedate-21@" in str(e["UID"]))
    assert new_york["DTSTART"].dt.astimezone(UTC) == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("end_date", "first", "after_last"),
    [
        (date(2026, 12, 3), date(2026, 12, 1), date(2026, 12, 4)),
        (None, date(2026, 12, 1), date(2026, 12, 2)),
        (date(2026, 12, 1), date(2026, 12, 1), date(2026, 12, 2)),
    ],
)
def test_a_date_without_start_time_is_all_day_with_an_exclusive_end(end_date, first, after_last):
    cdate = course_date(7, start_time=None, end_time=None, end_date=end_date)
    ical = date_calendar(course_of(1, cdate), cdate, site=SITE)
    event = only_event(ical)

    assert f"DTSTART;VALUE=DATE:{first:%Y%m%d}\r\n".encode() in ical
    assert (event["DTSTART"].dt, event["DTEND"].dt) == (first, after_last)
    assert not isinstance(event["DTSTART"].dt, datetime)
    assert Calendar.from_ical(ical).walk("VTIMEZONE") == []


def test_without_end_time_a_date_lasts_one_hour_and_a_multi_day_date_its_days():
    single = course_date(7, end_time=None)
    spanning = course_date(8, end_date=date(2026, 12, 3), end_time=None)
    events = events_of(course_calendar(course_of(1, single, spanning), site=SITE))

    assert [(e["DTSTART"].dt, e["DTEND"].dt) for e in events] == [
        (datetime(2026, 12, 1, 9, tzinfo=OSLO), datetime(2026, 12, 1, 10, tzinfo=OSLO)),
        (datetime(2026, 12, 1, 9, tzinfo=OSLO), datetime(2026, 12, 4, 0, tzinfo=OSLO)),
    ]


def test_a_multi_day_date_spans_from_first_start_to_last_end():
    cdate = course_date(7, end_date=date(2026, 12, 3), end_time=time(14, 30))
    event = only_event(date_calendar(course_of(1, cdate), cdate, site=SITE))

    assert event["DTSTART"].dt == datetime(2026, 12, 1, 9, 0, tzinfo=OSLO)
    assert event["DTEND"].dt == datetime(2026, 12, 3, 14, 30, tzinfo=OSLO)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("canceled", "CANCELLED"),
        ("tbd", "TENTATIVE"),
        ("postponed", "TENTATIVE"),
        ("scheduled", "CONFIRMED"),
    ],
)
def test_status_says_canceled_or_tentative_and_the_summary_stays_the_title(status, expected):
    cdate = course_date(7, status=status)
    event = only_event(date_calendar(course_of(1, cdate), cdate, site=SITE))

    assert str(event["STATUS"]) == expected
    assert str(event["SUMMARY"]) == "Kurs 1"


def test_sessions_become_one_event_each_at_their_own_place():
    sessions = (
        Session(date(2027, 1, 11), time(9, 0), time(12, 0), "Kurssenteret Sem"),
        Session(date(2027, 1, 18), time(10, 0), time(15, 0), "Helsfyr"),
        Session(date(2027, 1, 25), None, None, ""),
    )
    cdate = course_date(7, start_date=date(2027, 1, 11), sessions=sessions)
    events = events_of(date_calendar(course_of(1, cdate), cdate, site=SITE))

    assert [str(e["UID"]) for e in events] == [
        "coursedate-7-1@courses.example.com",
        "coursedate-7-2@courses.example.com",
        "coursedate-7-3@courses.example.com",
    ]
    assert [(e["DTSTART"].dt, e["DTEND"].dt) for e in events] == [
        (datetime(2027, 1, 11, 9, tzinfo=OSLO), datetime(2027, 1, 11, 12, tzinfo=OSLO)),
        (datetime(2027, 1, 18, 10, tzinfo=OSLO), datetime(2027, 1, 18, 15, tzinfo=OSLO)),
        (date(2027, 1, 25), date(2027, 1, 26)),
    ]
    assert [str(e["LOCATION"]) for e in events] == [
        "Kurssenteret Sem, Semsveien 1, 3170 Sem",
        "Helsfyr",
        "Kurssenteret Sem, Semsveien 1, 3170 Sem",
    ]


def test_a_single_session_is_the_date_itself():
    session = Session(date(2026, 12, 1), time(9, 0), time(15, 0), "Kurssenteret Sem")
    cdate = course_date(7, sessions=(session,))
    event = only_event(date_calendar(course_of(1, cdate), cdate, site=SITE))

    assert str(event["UID"]) == "coursedate-7@courses.example.com"


def test_location_is_the_venue_and_its_address_or_the_online_label():
    at_sem = course_date(7)
    online = course_date(8, venue=ONLINE, online_url="https://meet.example.test/k1")
    nowhere = course_date(9, venue=None)
    place = course_date(10, venue=Venue(-301, "Oslo", "", "", "Oslo", "oslo-p301"))
    events = events_of(course_calendar(course_of(1, at_sem, online, nowhere, place), site=SITE))

    assert [str(e.get("LOCATION")) for e in events] == [
        "Kurssenteret Sem, Semsveien 1, 3170 Sem",
        "Nett",
        "None",
        "Oslo",
    ]
    assert "https://meet.example.test/k1" in str(events[1]["DESCRIPTION"])
    assert "meet.example.test" not in str(events[1]["URL"])


def test_url_links_back_to_the_date_on_the_course_page():
    cdate = course_date(7)
    event = only_event(date_calendar(course_of(1, cdate), cdate, site=SITE))

    assert str(event["URL"]) == "https://courses.example.com/kurs/kurs-1/#date-7"
    assert str(event["DESCRIPTION"]) == (
        "Kort om kurset.\n\nhttps://courses.example.com/kurs/kurs-1/#date-7"
    )


def test_without_a_page_url_there_is_no_link():
    cdate = course_date(7)
    no_base = replace(SITE, page_url=lambda course: None)
    event = only_event(date_calendar(course_of(1, cdate), cdate, site=no_base))

    assert "URL" not in event
    assert str(event["DESCRIPTION"]) == "Kort om kurset."


def test_a_hostile_title_round_trips_as_plain_text():
    cdate = course_date(7)
    course = course_of(1, cdate, title=HOSTILE, lead="Bold <b>claims</b>;\r\nand more")
    ical = course_calendar(course, site=replace(SITE, title=HOSTILE))
    calendar = Calendar.from_ical(ical)
    event = only_event(ical)

    assert str(event["SUMMARY"]) == HOSTILE
    assert str(event["DESCRIPTION"]).startswith("Bold <b>claims</b>;\nand more\n\n")
    assert unescaped(calendar["X-WR-CALNAME"]) == HOSTILE
    assert str(calendar["PRODID"]) == f"-//catalog-gen//{HOSTILE}//NB"
    for name in (b"SUMMARY", b"X-WR-CALNAME"):
        assert name + b":<script>alert(1)</script>\\, \\; \\\\\r\n" in ical


def test_control_characters_do_not_reach_the_file():
    cdate = course_date(7)
    course = course_of(1, cdate, title="Første\rhjelp\x00 kurs\n")
    ical = date_calendar(course, cdate, site=SITE)

    assert str(only_event(ical)["SUMMARY"]) == "Første hjelp kurs"
    assert b"\x00" not in ical
    assert b"\r" not in ical.replace(b"\r\n", b"")


#: Every control character that RFC 5545 TEXT forbids (tab and the line breaks it escapes are
#: allowed), and DEL.
CONTROL = "".join(map(chr, [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]))


def test_no_control_character_of_any_value_reaches_the_file_urls_included():
    """An online-meeting URL from the API, a page URL, a title, a lead, a venue, a session's
    place and the site's title: every value goes through the one escaper."""
    dirty_venue = replace(SEM, title=f"Sem{CONTROL}senteret")
    cdate = course_date(
        7,
        online_url=f"https://meet.example/k1{CONTROL}?pwd=x",
        venue=dirty_venue,
        sessions=(
            Session(date(2026, 12, 1), time(9, 0), time(12, 0), f"Rom{CONTROL}1"),
            Session(date(2026, 12, 2), time(9, 0), time(12, 0), "Sem"),
        ),
    )
    course = course_of(1, cdate, title=f"Første{CONTROL}hjelp", lead=f"Kort{CONTROL}om")
    site = replace(
        SITE,
        title=f"Kurs{CONTROL}katalog",
        page_url=lambda course: f"https://courses.example.com/kurs/{course.slug}{CONTROL}/",
    )
    for ical in (
        date_calendar(course, cdate, site=site),
        course_calendar(course, site=site),
        site_calendar(catalog_of(course), site=site),
    ):
        text = ical.replace(b"\r\n", b"")
        assert [chr(b) for b in text if b < 0x20 or b == 0x7F] == []
        for event in events_of(ical):
            assert "https://meet.example/k1?pwd=x" in str(event["DESCRIPTION"])
            assert str(event["URL"]) == "https://courses.example.com/kurs/kurs-1/#date-7"


def test_stamps_come_from_the_data_never_the_clock():
    cdate = course_date(7)
    newer_course = course_of(1, cdate, updated_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    unstamped = course_date(8, updated_at=None)

    event = only_event(date_calendar(course_of(1, cdate), cdate, site=SITE))
    assert event["DTSTAMP"].dt == CHANGED.astimezone(UTC)
    assert event["LAST-MODIFIED"].dt == CHANGED.astimezone(UTC)
    event = only_event(date_calendar(newer_course, cdate, site=SITE))
    assert event["LAST-MODIFIED"].dt == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    event = only_event(date_calendar(course_of(1, unstamped), unstamped, site=SITE))
    assert (event["DTSTAMP"].dt, "LAST-MODIFIED" in event) == (FALLBACK_STAMP, False)
    feed = site_calendar(catalog_of(course_of(1, unstamped)), site=SITE)
    assert only_event(feed)["DTSTAMP"].dt == FALLBACK_STAMP  # not the fetch: stable bytes


def test_the_site_feed_lists_every_date_in_order_canceled_ones_included():
    catalog = sample_catalog()
    ical = sample_feed()
    calendar = Calendar.from_ical(ical)

    assert [str(e["UID"]).split("@")[0] for e in calendar.walk("VEVENT")] == [
        "coursedate-11",
        "coursedate-21",
        "coursedate-13",
        "coursedate-22-1",
        "coursedate-22-2",
        "coursedate-12",
    ]
    assert [d.id for d in catalog.dates] == [11, 21, 13, 22, 12]
    assert str(calendar.walk("VEVENT")[2]["STATUS"]) == "CANCELLED"
    assert unescaped(calendar["X-WR-CALNAME"]) == "Kurs hos Eksempel"
    assert b"\r\nREFRESH-INTERVAL;VALUE=DURATION:PT12H\r\n" in ical
    assert b"\r\nX-PUBLISHED-TTL:PT12H\r\n" in ical


def test_calendar_headers_name_the_generator_and_the_course():
    cdate = course_date(7)
    ical = course_calendar(course_of(1, cdate), site=replace(SITE, language="en"))
    calendar = Calendar.from_ical(ical)

    assert str(calendar["PRODID"]) == "-//catalog-gen//Kurs hos Eksempel//EN"
    assert (str(calendar["VERSION"]), str(calendar["CALSCALE"])) == ("2.0", "GREGORIAN")
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert unescaped(calendar["X-WR-CALNAME"]) == "Kurs 1"
    assert b"REFRESH-INTERVAL" not in ical


def test_equal_input_gives_identical_bytes():
    assert sample_feed() == sample_feed()
    cdate = course_date(7)
    assert date_calendar(course_of(1, cdate), cdate, site=SITE) == date_calendar(
        course_of(1, cdate), cdate, site=SITE
    )


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Pacific/Kiritimati"])
def test_the_machines_zone_and_hash_seed_change_nothing(zone):
    # A fresh process also draws a new hash seed, so set-ordered output would show here.
    script = "import sys; from tests.test_calendars import sample_feed; "
    script += "sys.stdout.buffer.write(sample_feed())"
    env = {**os.environ, "TZ": zone}
    env.pop("PYTHONHASHSEED", None)
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, check=True
    )

    assert run.stdout == sample_feed()


def test_lines_end_in_crlf_and_fold_at_75_octets():
    cdate = course_date(7)
    title = "Førstehjelp og hjerte-lunge-redning for barnehageansatte " * 4
    ical = date_calendar(course_of(1, cdate, title=title), cdate, site=SITE)
    lines = ical.split(b"\r\n")

    assert ical.endswith(b"\r\n")
    assert ical.count(b"\n") == ical.count(b"\r\n")
    assert max(len(line) for line in lines) <= 75
    assert any(line.startswith(b" ") for line in lines)
    assert str(only_event(ical)["SUMMARY"]) == title.strip()


@pytest.mark.parametrize("zone", ["Europe/Oslo", "UTC", "Asia/Kathmandu"])
def test_the_site_feed_is_the_same_when_its_events_come_from_kept_course_files(zone):
    """An incremental build reuses the events of unchanged course files for the site feed:
    the feed must be byte for byte what a fresh writer makes (UTC times carry no TZID)."""
    courses = [course_of(n, course_date(100 + n, course_id=n, timezone=zone)) for n in (1, 2)]
    catalog = catalog_of(*courses)
    fresh = CalendarWriter(SITE).site_calendar(catalog)
    reusing = CalendarWriter(SITE)
    for course in courses:
        reusing.reuse(CalendarWriter(SITE).course_calendar(course))
    assert reusing.site_calendar(catalog) == fresh


@pytest.mark.parametrize("kept", ["every date", "some dates", "a torn file"])
def test_the_site_feed_made_from_its_own_last_file_is_the_one_a_fresh_writer_makes(kept):
    """A build reuses the events of the dates it kept from the last site-wide file (views into
    its bytes): two zones, sessions (several events to a date), a canceled date. A file cut
    short is not trusted: its events are made again."""
    catalog = sample_catalog()
    fresh = CalendarWriter(SITE).site_calendar(catalog)
    old, only = fresh, None
    if kept == "some dates":
        only = {12, 22}
    elif kept == "a torn file":
        old = fresh[: fresh.rindex(b"END:VEVENT")]
    reusing = CalendarWriter(SITE)
    reusing.reuse(old, only=only)
    assert reusing.site_calendar(catalog) == fresh
    assert reusing.date_calendar(catalog.course(2), catalog.course(2).dates[-1]) == (
        CalendarWriter(SITE).date_calendar(catalog.course(2), catalog.course(2).dates[-1])
    )


@pytest.mark.parametrize("kept", ["every date", "some dates"])
def test_the_site_feed_made_from_the_pieces_of_its_last_file_is_the_one_a_fresh_writer_makes(
    kept, monkeypatch
):
    """Where the last file holds each date's events (``Pieces``, kept in the build cache)
    takes them without reading the file through: same bytes, and the file is not parsed."""
    catalog = sample_catalog()
    parts, pieces = CalendarWriter(SITE).site_calendar_in_pieces(catalog)
    fresh = b"".join(parts)
    assert fresh == CalendarWriter(SITE).site_calendar(catalog)
    assert pieces.of(fresh) and set(pieces.at) == {d.id for d in catalog.dates}
    only = None if kept == "every date" else {12, 22}
    reusing = CalendarWriter(SITE)
    monkeypatch.setattr(calendars, "_UID", None)  # reading the file through would fail
    reusing.reuse(fresh, only=only, pieces=pieces)
    assert set(reusing._events) == set(pieces.at if only is None else only)
    monkeypatch.undo()
    again, again_pieces = reusing.site_calendar_in_pieces(catalog)
    assert b"".join(again) == fresh and again_pieces == pieces


def test_pieces_of_other_bytes_are_not_used():
    """Pieces cut from another file (a build that failed after keeping them, or a feed
    edited by hand) would put wrong bytes in: the file is read through instead."""
    catalog = sample_catalog()
    parts, pieces = CalendarWriter(SITE).site_calendar_in_pieces(catalog)
    fresh = b"".join(parts)
    edited = fresh.replace(b"BEGIN:VEVENT\r\n", b"BEGIN:VEVENT\r\nX-A:1\r\n", 1)
    assert not pieces.of(edited)
    reusing = CalendarWriter(SITE)
    reusing.reuse(edited[: edited.rindex(b"END:VEVENT")], pieces=pieces)  # torn: nothing
    assert reusing.site_calendar(catalog) == fresh


def test_an_event_whose_text_says_end_vevent_where_a_line_folds_is_reused_whole():
    """Lines are folded at 75 octets: a lead (the DESCRIPTION, after the UID) holding
    "END:VEVENT" can end a line with it. The events of a kept file are cut at whole lines."""
    folded_after = 0
    for shift in range(76):
        course = course_of(1, course_date(11), lead="x" * shift + "END:VEVENT" * 3)
        catalog = catalog_of(course)
        fresh = CalendarWriter(SITE).site_calendar(catalog)
        folded_after += b"END:VEVENT\r\n " in fresh
        reusing = CalendarWriter(SITE)
        reusing.reuse(fresh)
        assert reusing.site_calendar(catalog) == fresh, shift
    assert folded_after  # some lead put a fold right after its "END:VEVENT"


# -- the event writer against icalendar ------------------------------------------------------


def icalendar_events(course: Course, cdate: CourseDate, site: CalendarSite) -> bytes:
    """The reference: the same events made and serialised by icalendar's own machinery."""
    zone = ZoneInfo(cdate.timezone)
    if len(cdate.sessions) <= 1:
        spans = [
            (f"coursedate-{cdate.id}", *calendars._date_span(cdate, zone), None),
        ]
    else:
        spans = [
            (f"coursedate-{cdate.id}-{n}", *calendars._session_span(session, zone), session)
            for n, session in enumerate(cdate.sessions, start=1)
        ]
    out = []
    for uid, start, end, session in spans:
        event = Event()
        event.add("UID", f"{uid}@{site.host}")
        modified = calendars._last_modified(course, cdate)
        event.add("DTSTAMP", modified or FALLBACK_STAMP)
        if modified:
            event.add("LAST-MODIFIED", modified)
        event.add("DTSTART", start)
        event.add("DTEND", end)
        event.add("SUMMARY", calendars._line(course.title))
        event.add("STATUS", calendars._STATUS.get(cdate.status, "CONFIRMED"))
        location = (
            calendars._session_location(session, course, cdate, site)
            if session
            else calendars._location(cdate.venue, site)
        )
        if location:
            event.add("LOCATION", location)
        page = site.page_url(course)
        url = f"{page}#date-{cdate.id}" if page else ""
        if url:
            event.add("URL", re.sub(r"[\x00-\x20\x7f]", "", url))  # a URI: no white space
        parts = (calendars._text(course.lead), cdate.online_url, url)
        description = "\n\n".join(part for part in parts if part)
        if description:
            event.add("DESCRIPTION", text_without_controls(description))
        out.append(event.to_ical())
    return b"".join(out)


def text_without_controls(text: str) -> str:
    """RFC 5545 TEXT holds no control characters; icalendar escapes the line breaks (CR too)
    and keeps tabs, but writes the others as they are."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", text)


def demo_catalog() -> Catalog:
    sample = generate_catalog(today=NOW.date())
    snapshot = Snapshot(
        fetched_at=FETCHED,
        api_base="http://127.0.0.1/v2",
        courses=sample.courses,
        coursedates=sample.coursedates,
        reference={"locations": sample.locations},
        reference_fetched_at={},
        course_sources={},
    )
    return build_catalog(snapshot, load_config(None).publish, now=NOW, timezone="Europe/Oslo")


AWKWARD = [
    # Escapes at every position around the fold, multi-byte characters across it, carets.
    "a" * n + tail
    for n in range(56, 76)  # with "SUMMARY:" or "DESCRIPTION:" in front: around 75 octets
    for tail in ("\\,;", "ø\\N", "^^é", "\\" * 3)
] + ["x\r\ny\rz\n", "\\N and \\n", "🎓" * 40, "", "  spaced   out  "]


@pytest.mark.parametrize(
    "site",
    [
        SITE,
        replace(SITE, page_url=lambda course: None),
        replace(  # URL-legal ,;\ and characters no URL may hold
            SITE,
            page_url=lambda c: f"https://courses.example.com/a,b;c\\d/{c.slug}{CONTROL} x\t/",
        ),
    ],
)
def test_events_are_byte_for_byte_what_icalendar_writes(site):
    """calendars.py writes VEVENTs itself, for speed: they must be icalendar's bytes, for the
    demo's every date (sessions, online, all-day, canceled) and for awkward text."""
    catalog = demo_catalog()
    pairs = [(catalog.course(d.course_id), d) for d in catalog.dates]
    pairs += [(course_of(1, d), d) for c in sample_catalog().courses for d in c.dates]
    for n, text in enumerate(AWKWARD):
        cdate = course_date(500 + n, online_url=f"https://meet.example/{text[:3]}")
        pairs.append((course_of(1, cdate, title=text, lead=text * 2), cdate))
    for n, text in enumerate([*AWKWARD, CONTROL, f"a{CONTROL}\r\n{CONTROL}b\t;,"]):
        cdate = course_date(700 + n, online_url=f"https://meet.example/{text}")
        pairs.append((course_of(1, cdate), cdate))
    pairs.append((course_of(1, utc := course_date(9, timezone="UTC")), utc))
    pairs.append((course_of(1, etc := course_date(10, timezone="Etc/UTC")), etc))
    early = course_date(  # a mistyped year in a session: still four digits, as icalendar writes
        11,
        start_date=date(202, 5, 1),
        end_date=date(202, 5, 2),
        sessions=(
            Session(date(202, 5, 1), time(9, 0), time(12, 0), "Sem"),
            Session(date(999, 5, 2), None, None, "Nøtterøy, Vestfold"),
        ),
    )
    pairs.append((course_of(1, early), early))
    whole_day = course_date(12, start_date=date(987, 1, 2), start_time=None)
    pairs.append((course_of(1, whole_day), whole_day))
    assert len(pairs) > 150

    for course, cdate in pairs:
        ours = "".join(calendars._date_events(course, cdate, site, FALLBACK_STAMP)).encode()
        assert ours == icalendar_events(course, cdate, site), (course.title, cdate.id)


#: Lines long enough to fold two or three times (Hypothesis's texts are mostly short).
long_lines = st.text(alphabet=st.sampled_from("ab\\^;, é€😀"), min_size=60, max_size=300)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab\\^;, é€😀"), max_size=400) | long_lines)
def test_lines_fold_where_icalendar_folds_them(line):
    """Lines are broken where icalendar breaks them, by count when ASCII and by their bytes
    when not, escapes kept whole (icalendar's foldline: what the reference writer above
    produces)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from icalendar.parser import foldline

        assert calendars._fold(line) == foldline(line)


def icalendar_frame(name: str, site: CalendarSite, *, feed: bool) -> bytes:
    """A calendar's properties written by icalendar whole, its name among them: the frame
    the writer fills in with each calendar's name must give these bytes."""
    from icalendar import vDuration
    from icalendar.prop import vInline

    calendar = Calendar()
    prodid = f"-//catalog-gen//{calendars._line(site.title)}//{site.language.upper()}"
    calendar.add("PRODID", vInline(calendars._escape(prodid)))
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "PUBLISH")
    calendar.add("X-WR-CALNAME", vInline(calendars._escape(calendars._line(name))))
    if feed:
        refresh = calendars.FEED_REFRESH
        calendar.add("REFRESH-INTERVAL", refresh, parameters={"VALUE": "DURATION"})
        calendar.add("X-PUBLISHED-TTL", vDuration(refresh))
    return calendar.to_ical()


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from('Kurs i \\^;,:"é€😀\n\t'), max_size=200) | long_lines,
    st.text(alphabet=st.sampled_from("Kursleverandør AS;,"), min_size=1, max_size=90),
    st.booleans(),
)
def test_a_calendars_frame_is_the_one_icalendar_writes_for_its_name(name, title, feed):
    site = replace(SITE, title=title)
    head, end = calendars._frame(name, site, feed=feed)
    assert head + end == icalendar_frame(name, site, feed=feed)


@pytest.mark.parametrize("padding", range(80))
def test_a_site_title_that_looks_like_the_name_line_is_only_a_title(padding):
    """The frame is cut where the name's own line starts; a title saying the same, wherever
    the PRODID line folds, is left in the PRODID."""
    site = replace(SITE, title="x" * padding + "X-WR-CALNAME:catalog-gen-calendar-name")
    for feed in (False, True):
        head, end = calendars._frame("Excel", site, feed=feed)
        assert head + end == icalendar_frame("Excel", site, feed=feed)
