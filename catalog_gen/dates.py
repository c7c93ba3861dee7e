"""Dates and times in every form the APIs send, read without the build machine's zone.

Frontcore sends date-only values (``2026-11-23``), wall-clock times (``09:00:00``), naive local
date-times (``2025-11-21 08:00``, ``2026-05-11 10:00:00``), ISO 8601 with an offset
(``2024-05-03T21:54:44+02:00``), and Front-style APIs Unix epoch seconds with a millisecond
fraction (``1454453901.012``). The rules:

- a date-only value is a calendar day, never an instant: it is not shifted by any zone
  (parsing it as UTC midnight is how a course on the 23rd shows on the 22nd);
- a naive date-time is wall-clock time in the catalog's (or the date's) zone; on the autumn
  DST change the first of the two repeated hours is meant, and a time in the spring gap
  (02:30 on the last Sunday of March in Oslo) moves forward to the same distance past 03:00;
- a value with an offset, or an epoch, is an instant, shown in the zone it is read in.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

_EPOCH = re.compile(r"^\d{9,11}(\.\d+)?$")


def parse_moment(value: object, zone: ZoneInfo) -> datetime | None:
    """An aware datetime in ``zone`` for any accepted form; None for empty or unreadable."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime.combine(value, time.min)
        elif isinstance(value, int | float):
            return _from_epoch(float(value), zone)
        else:
            return _parse_text(str(value), zone)
        return _in_zone(moment, zone)
    except OverflowError:  # a moment at the edge of the calendar (year 1 or 9999) in a zone
        return None


@lru_cache(maxsize=65536)
def _parse_text(value: str, zone: ZoneInfo) -> datetime | None:
    """parse_moment for text, remembered: a catalog repeats the same session times and
    stamps tens of thousands of times (datetimes are immutable, so sharing one is safe)."""
    text = value.strip()
    if _EPOCH.match(text):
        return _from_epoch(float(text), zone)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _in_zone(moment, zone)


def _in_zone(moment: datetime, zone: ZoneInfo) -> datetime:
    if moment.tzinfo is None:
        # Wall-clock time in the zone; astimezone() settles a time in the spring gap.
        return moment.replace(tzinfo=zone, fold=0).astimezone(UTC).astimezone(zone)
    return moment.astimezone(zone)


def parse_day(value: object, zone: ZoneInfo) -> date | None:
    """The calendar day a value names, in ``zone``: a date-only value is taken as it is."""
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    moment = parse_moment(value, zone)
    return moment.date() if moment else None


def parse_clock(value: object) -> time | None:
    """A wall-clock time (``09:00:00``, ``09:00``) as it is: no zone, no conversion."""
    if not value:
        return None
    text = str(value).strip()
    if "T" in text or " " in text:  # a whole date-time: its clock part
        text = re.split(r"[T ]", text, maxsplit=1)[1]
    try:
        return time.fromisoformat(text[:8])
    except ValueError:
        return None


def _from_epoch(seconds: float, zone: ZoneInfo) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, UTC).astimezone(zone)
    except (OverflowError, OSError, ValueError):
        return None
