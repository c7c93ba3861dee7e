"""Every date form the APIs use, read in the catalog's zone, across Oslo's DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from catalog_gen.clock import run_now
from catalog_gen.dates import parse_clock, parse_day, parse_moment

OSLO = ZoneInfo("Europe/Oslo")


def test_iso_8601_with_an_offset_is_an_instant_shown_in_the_zone():
    moment = parse_moment("2024-05-03T21:54:44+02:00", OSLO)
    assert moment == datetime(2024, 5, 3, 21, 54, 44, tzinfo=OSLO)
    late_utc = parse_moment("2026-11-22T23:30:00Z", OSLO)
    assert (late_utc.date(), late_utc.hour) == (date(2026, 11, 23), 0)  # already the 23rd in Oslo


def test_naive_date_times_are_wall_clock_time_in_the_zone():
    for text in ("2025-11-21 08:00", "2025-11-21T08:00:00"):
        moment = parse_moment(text, OSLO)
        assert (moment.hour, moment.minute) == (8, 0)
        assert moment.utcoffset() == timedelta(hours=1)  # CET in November


def test_date_only_values_are_calendar_days_never_shifted():
    assert parse_day("2026-11-23", OSLO) == date(2026, 11, 23)
    assert parse_day("2026-11-23", ZoneInfo("Pacific/Kiritimati")) == date(2026, 11, 23)
    assert parse_day("2026-11-23", ZoneInfo("America/Los_Angeles")) == date(2026, 11, 23)
    assert parse_moment("2026-11-23", OSLO) == datetime(2026, 11, 23, tzinfo=OSLO)


@pytest.mark.parametrize("value", ["1454453901.012", 1454453901.012])
def test_unix_epoch_seconds_with_a_millisecond_fraction(value):
    moment = parse_moment(value, OSLO)
    assert moment == datetime(2016, 2, 2, 22, 58, 21, 12000, tzinfo=UTC)
    assert (moment.hour, moment.minute, moment.microsecond) == (23, 58, 12000)  # Oslo, CET
    assert parse_day(value, OSLO) == date(2016, 2, 2)
    assert parse_moment("1454453901", OSLO).microsecond == 0


def test_spring_forward_a_time_in_the_gap_moves_past_three():
    """Last Sunday of March 2026: 02:00 → 03:00 in Oslo."""
    moment = parse_moment("2026-03-29 02:30", OSLO)
    assert (moment.hour, moment.minute) == (3, 30)
    assert moment.utcoffset() == timedelta(hours=2)
    before = parse_moment("2026-03-29 01:59", OSLO)
    assert moment.astimezone(UTC) - before.astimezone(UTC) == timedelta(minutes=31)


def test_fall_back_the_repeated_hour_is_read_as_the_first():
    """Last Sunday of October 2026: 03:00 → 02:00 in Oslo; 02:30 happens twice."""
    moment = parse_moment("2026-10-25 02:30", OSLO)
    assert moment.utcoffset() == timedelta(hours=2)  # the first 02:30, still summer time
    later = parse_moment("2026-10-25T02:30:00+01:00", OSLO)
    assert later.astimezone(UTC) - moment.astimezone(UTC) == timedelta(hours=1)
    assert (later.hour, later.minute) == (2, 30)


def test_clock_times_stay_as_written():
    assert parse_clock("09:00:00") == time(9, 0)
    assert parse_clock("08:30") == time(8, 30)
    assert parse_clock("2025-11-21 08:00") == time(8, 0)
    assert parse_clock(None) is None and parse_clock("later") is None


@pytest.mark.parametrize("value", [None, "", "soon", "2026-13-01", True])
def test_unreadable_values_are_none(value):
    assert parse_moment(value, OSLO) is None
    assert parse_day(value, OSLO) is None


def test_now_can_be_pinned_in_any_of_these_forms():
    assert run_now("Europe/Oslo", "2026-11-23T04:00:00+01:00").hour == 4
    assert run_now("Europe/Oslo", "2026-11-23 04:00").utcoffset() == timedelta(hours=1)
    assert run_now("Europe/Oslo", "1795143600").date() == date(2026, 11, 20)
    with pytest.raises(ValueError, match="not an ISO 8601"):
        run_now("Europe/Oslo", "tomorrow")
