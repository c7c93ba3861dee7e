"""iCalendar (RFC 5545) files for course dates: one date, one course, and the site-wide feed.

A visitor who adds a date to their calendar, or subscribes to the whole catalog, should see
the course at the wall-clock time the provider gave, in the date's own zone, wherever the
build ran; so every timed value carries its ``TZID`` and the file carries a ``VTIMEZONE``
for each zone it names. Like every other output these files are deterministic: the stamps
come from the data (``updated_at``), never from the clock, so an unchanged catalog gives
byte-identical files and a subscribed calendar sees no spurious changes.

Decisions a reader may look for:

- A date with a start time but no end time ends one hour after it starts (an explicit
  ``DTEND``, so every event has the same shape); one that spans several days without an end
  time runs to midnight after its last day. An end that is not after the start is ignored.
- A date with more than one session becomes one event per session (``coursedate-<id>-<n>``);
  a single session adds nothing the date itself does not say.
- ``DTSTAMP`` and ``LAST-MODIFIED`` are the newer of the date's and the course's
  ``updated_at`` (an event shows both); without either, ``DTSTAMP`` is a fixed moment, the
  same in every file (not the fetch time: that would rewrite the file every night).
- Canceled dates stay in the files with ``STATUS:CANCELLED`` so subscribed calendars mark
  or drop them; the summary stays the bare course title.
- Every value written into a file passes one escaper, ``_escape``: it removes the control
  characters RFC 5545 forbids (an online-meeting URL from the API may hold them) and escapes
  TEXT; a URI (the ``URL`` property) loses white space too and is otherwise written as it is.

icalendar writes the calendar frame and the VTIMEZONEs (a few per build). The events, tens of
thousands at 10,000 courses, are written here: each has the same few properties, and
icalendar's general machinery cost half a millisecond an event, most of a cold build's
calendar time. The bytes are icalendar's own (same property order, escaping and folding);
tests/test_calendars.py holds an icalendar reference writer and compares the two.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import TypeVar
from zoneinfo import ZoneInfo

from icalendar import Calendar, Timezone, vDuration
from icalendar.prop import vInline
from icalendar.timezone.tzid import tzid_from_dt

from catalog_gen.site.model import Catalog, Course, CourseDate, Session, Venue

#: A line to fold: text, or its UTF-8 bytes.
_Text = TypeVar("_Text", str, bytes)
#: How often a subscribed calendar app should fetch the site feed again.
FEED_REFRESH = timedelta(hours=12)
#: How long a timed event without an end time lasts.
OPEN_END_LENGTH = timedelta(hours=1)
#: ``DTSTAMP`` when nothing in the data says when it changed (must not be "now").
FALLBACK_STAMP = datetime(2000, 1, 1, tzinfo=UTC)

_STATUS = {
    "canceled": "CANCELLED",
    "tbd": "TENTATIVE",
    "postponed": "TENTATIVE",
    "unknown": "TENTATIVE",
}
_BEGIN_EVENT, _END_EVENT = b"BEGIN:VEVENT\r\n", b"END:VEVENT\r\n"
_UID = re.compile(rb"^UID:coursedate-(\d+)(?:-\d+)?@", re.MULTILINE)
_TIMED = re.compile(rb"^DT(?:START|END);TZID=([^:;\r\n]+)[^:\r\n]*:(\d{4})", re.MULTILINE)
# RFC 5545 forbids control characters in TEXT values; tab is allowed, newline is escaped.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Nor may a URI hold them, or white space.
_NOT_IN_URI = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True)
class CalendarSite:
    """What the calendar files need to know about the site that publishes them."""

    title: str
    #: The UID domain, e.g. ``courses.example.com``; ``catalog-gen.invalid`` when unknown.
    host: str
    #: The site language ("nb", "en"), named in ``PRODID``.
    language: str
    #: The absolute URL of a course page, or None when the site has no base URL.
    page_url: Callable[[Course], str | None]
    #: ``LOCATION`` of online dates, in the site language.
    online_label: str = "Online"


#: The first and last year of the times in each zone: ((zone, first, last), ...) by zone name.
_Spans = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class Pieces:
    """Where a calendar file holds each date's events, and the years of their times by zone:
    what a later build needs to take those events from the file without reading through it
    (the site-wide feed of 10,000 courses is 45 MB and 87,000 events, and finding them cost a
    build that changed one course 0.7 s). Good only for the very bytes it was cut from."""

    #: The SHA-256 of the file's bytes.
    digest: str
    #: Each date's id → the start and end of its events in the file, and their years.
    at: dict[int, tuple[int, int, _Spans]]

    def of(self, calendar: bytes) -> bool:
        """Whether these are the pieces of ``calendar``."""
        return hashlib.sha256(calendar).hexdigest() == self.digest


class CalendarWriter:
    """Writes the calendar files of one build, serialising each event and time zone once.

    A date's event is the same in its own file, its course's file and the site feed, and
    every file in Oslo time carries the same VTIMEZONE: the components are made and folded by
    icalendar once, then each file is its header, its components and its footer.
    """

    def __init__(self, site: CalendarSite):
        self.site = site
        #: Each date's serialised events, and the span of years of their times by zone
        #: (None for events reused from a kept file: read from their bytes where used).
        self._events: dict[int, tuple[bytes | memoryview, _Spans | None]] = {}
        #: Each span once: most events of a catalog share one, and 87,000 events each with
        #: a dict of their own cost a build at 10,000 courses 28 MB at its peak.
        self._spans: dict[_Spans, _Spans] = {}
        self._zones: dict[tuple[str, int, int], bytes] = {}

    def date_calendar(self, course: Course, cdate: CourseDate) -> bytes:
        """One course date as a calendar file (the 'add to calendar' download)."""
        return self._calendar(course.title, [(course, cdate)])

    def course_calendar(self, course: Course) -> bytes:
        """All published dates of one course."""
        return self._calendar(course.title, [(course, d) for d in course.dates])

    def site_calendar(self, catalog: Catalog) -> bytes:
        """Every published upcoming date of the catalog: the feed a calendar app subscribes to."""
        return self._calendar(self.site.title, _feed_dates(catalog), feed=True)

    def site_calendar_in_pieces(self, catalog: Catalog) -> tuple[list[bytes | memoryview], Pieces]:
        """The site-wide feed as its parts in order (45 MB at 10,000 courses: joined, it
        would be held twice at the build's peak), and where it holds each date's events
        (for ``reuse``)."""
        at: dict[int, tuple[int, int, _Spans]] = {}
        parts = self._parts(self.site.title, _feed_dates(catalog), feed=True, at=at)
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part)
        return parts, Pieces(digest.hexdigest(), at)

    def _calendar(
        self, name: str, dates: list[tuple[Course, CourseDate]], *, feed: bool = False
    ) -> bytes:
        """The calendar file of these dates."""
        return b"".join(self._parts(name, dates, feed=feed))

    def _parts(
        self,
        name: str,
        dates: list[tuple[Course, CourseDate]],
        *,
        feed: bool = False,
        at: dict[int, tuple[int, int, _Spans]] | None = None,
    ) -> list[bytes | memoryview]:
        """The calendar file of these dates, in parts; ``at`` is given where each date's
        events are."""
        events: list[bytes | memoryview] = []
        spans: list[_Spans] = []
        for course, cdate in dates:
            data, zones = self._event_bytes(course, cdate)
            if zones is None:  # an event reused from a file read through: read its years once
                zones = self._interned(_zone_years(data))
                self._events[cdate.id] = (data, zones)
            events.append(data)
            spans.append(zones)
        years: dict[str, list[int]] = {}
        for zones in set(spans):  # interned: a few distinct among 46,000 events
            for zone, first, last in zones:
                years.setdefault(zone, []).extend((first, last))
        head, foot = _frame(name, self.site, feed=feed)
        timezones = [
            self._zone_bytes(zone, min(found), max(found)) for zone, found in sorted(years.items())
        ]
        if at is not None:
            offset = len(head) + sum(len(zone) for zone in timezones)
            for (_, cdate), data, zones in zip(dates, events, spans, strict=True):
                at[cdate.id] = (offset, offset + len(data), zones)
                offset += len(data)
        return [head, *timezones, *events, foot]

    def _interned(self, spans: _Spans) -> _Spans:
        """One tuple per span: most events of a catalog share one."""
        return self._spans.setdefault(spans, spans)

    def _event_bytes(
        self, course: Course, cdate: CourseDate
    ) -> tuple[bytes | memoryview, _Spans | None]:
        if cdate.id not in self._events:
            data = "".join(_date_events(course, cdate, self.site, FALLBACK_STAMP)).encode()
            self._events[cdate.id] = (data, self._interned(_zone_years(data)))
        return self._events[cdate.id]

    def reuse(
        self,
        calendar: bytes,
        *,
        only: Collection[int] | None = None,
        pieces: Pieces | None = None,
    ) -> None:
        """Take the events of a calendar file this writer made, for the dates whose inputs
        did not change since (``only``: their ids; None: all), so that files holding them
        are assembled without serialising them again. ``pieces``: where the file holds them
        (``site_calendar_in_pieces``), used when they are this file's; else it is read
        through.

        The events are views into ``calendar``, not copies: the site-wide file of 10,000
        courses is 45 MB and 87,000 events, and a build that copied them held it three times
        over (its peak memory)."""
        view = memoryview(calendar)
        if pieces is not None and pieces.of(calendar):
            for date_id, (start, end, spans) in pieces.at.items():
                if only is None or date_id in only:
                    self._events.setdefault(date_id, (view[start:end], self._interned(spans)))
            return
        blocks: dict[int, list[memoryview]] = {}
        # Whole lines only: a text may hold "END:VEVENT", and a fold may end a line after it.
        begin, finish = b"\r\n" + _BEGIN_EVENT, b"\r\n" + _END_EVENT
        start = calendar.find(begin)
        while start != -1:
            start += 2
            end = calendar.find(finish, start)
            uid = _UID.search(calendar, start, end) if end != -1 else None
            if uid is None:
                return  # not a file of ours (or torn): serialise as usual
            end += len(finish)
            date_id = int(uid.group(1))
            if only is None or date_id in only:
                blocks.setdefault(date_id, []).append(view[start:end])
            start = calendar.find(begin, end - 2)
        for date_id, events in blocks.items():
            data = events[0] if len(events) == 1 else b"".join(events)
            self._events.setdefault(date_id, (data, None))

    def _zone_bytes(self, zone: str, first: int, last: int) -> bytes:
        key = (zone, first, last)
        if key not in self._zones:
            timezone = Timezone.from_tzid(
                zone, first_date=date(first, 1, 1), last_date=date(last + 1, 1, 1)
            )
            self._zones[key] = timezone.to_ical()
        return self._zones[key]


def _feed_dates(catalog: Catalog) -> list[tuple[Course, CourseDate]]:
    """Every published date of the catalog with its course, in the dates' order."""
    return [(catalog.course(d.course_id), d) for d in catalog.dates]


def date_calendar(course: Course, date: CourseDate, *, site: CalendarSite) -> bytes:
    """One course date as a calendar file (the 'add to calendar' download)."""
    return CalendarWriter(site).date_calendar(course, date)


def course_calendar(course: Course, *, site: CalendarSite) -> bytes:
    """All published dates of one course."""
    return CalendarWriter(site).course_calendar(course)


def site_calendar(catalog: Catalog, *, site: CalendarSite) -> bytes:
    """Every published upcoming date of the catalog: the feed a calendar app subscribes to."""
    return CalendarWriter(site).site_calendar(catalog)


# --- calendar -------------------------------------------------------------------------------


def _frame(name: str, site: CalendarSite, *, feed: bool) -> tuple[bytes, bytes]:
    """A calendar's properties as (everything before its components, the closing line):
    the site's frame with the calendar's name, a course's title (one per course: icalendar
    making each whole took 5 of a cold build's seconds at 10,000 courses)."""
    before, after, end = _site_frame(site, feed=feed)
    named = _fold("X-WR-CALNAME:" + _escape(_line(name))) + "\r\n"
    return before + named.encode() + after, end


#: A name no calendar has (no character of it is escaped or folded): its line is cut out
#: of the site's frame and each calendar's own name put in its place.
_NAME_MARK = "catalog-gen-calendar-name"


@lru_cache(maxsize=8)
def _site_frame(site: CalendarSite, *, feed: bool) -> tuple[bytes, bytes, bytes]:
    """The properties of the site's calendars as (what comes before the name's line, what
    comes after it, the closing line), written by icalendar."""
    calendar = Calendar()
    # The texts are escaped here (vInline: icalendar writes them as they are, and folds them).
    prodid = f"-//catalog-gen//{_line(site.title)}//{site.language.upper()}"
    calendar.add("PRODID", vInline(_escape(prodid)))
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "PUBLISH")
    calendar.add("X-WR-CALNAME", vInline(_NAME_MARK))
    if feed:
        calendar.add("REFRESH-INTERVAL", FEED_REFRESH, parameters={"VALUE": "DURATION"})
        calendar.add("X-PUBLISHED-TTL", vDuration(FEED_REFRESH))
    end = b"END:VCALENDAR\r\n"
    # A property's line starts after a line break; a folded line's rest after a break and a
    # space: the site's title may say anything, but not start a line.
    line = f"\r\nX-WR-CALNAME:{_NAME_MARK}\r\n".encode()
    before, found, after = calendar.to_ical().removesuffix(end).partition(line)
    assert found, "icalendar wrote no X-WR-CALNAME line"
    return before + b"\r\n", after, end


def _zone_years(events: bytes | memoryview) -> _Spans:
    """The years of the serialised events' times with a ``TZID``, by zone name (UTC times are
    written with ``Z`` and need no VTIMEZONE).

    Read from the bytes, so events made in this build and events reused from a kept file give
    the same answer. The VTIMEZONEs then cover only those years (not icalendar's 1970–2038),
    in name order (not ``Calendar.add_missing_timezones``, whose order changes from one
    process to the next).
    """
    years: dict[str, list[int]] = {}
    for zone, year in _TIMED.findall(events):
        years.setdefault(zone.decode(), []).append(int(year))
    return tuple((zone, min(found), max(found)) for zone, found in sorted(years.items()))


# --- events ---------------------------------------------------------------------------------


def _date_events(
    course: Course, cdate: CourseDate, site: CalendarSite, fallback: datetime
) -> list[str]:
    """The date's VEVENT blocks, as text: one, or one per session."""
    zone = ZoneInfo(cdate.timezone)
    uid = f"coursedate-{cdate.id}@{site.host}"
    if len(cdate.sessions) <= 1:
        start, end = _date_span(cdate, zone)
        location = _location(cdate.venue, site)
        return [_event(course, cdate, site, fallback, uid, start, end, location)]
    return [
        _event(
            course,
            cdate,
            site,
            fallback,
            f"coursedate-{cdate.id}-{n}@{site.host}",
            *_session_span(session, zone),
            _session_location(session, course, cdate, site),
        )
        for n, session in enumerate(cdate.sessions, start=1)
    ]


def _event(
    course: Course,
    cdate: CourseDate,
    site: CalendarSite,
    fallback: datetime,
    uid: str,
    start: date | datetime,
    end: date | datetime,
    location: str,
) -> str:
    """One VEVENT, in icalendar's property order: its fixed first five, the rest by name."""
    modified = _last_modified(course, cdate)
    page = site.page_url(course)
    url = f"{page}#date-{cdate.id}" if page else ""
    description = "\n\n".join(part for part in (_text(course.lead), cdate.online_url, url) if part)
    lines = [
        "BEGIN:VEVENT",
        "SUMMARY:" + _escape(_line(course.title)),
        "DTSTART" + _when(start),
        "DTEND" + _when(end),
        "DTSTAMP:" + _stamp(modified or fallback),
        "UID:" + _escape(uid),
    ]
    if description:
        lines.append("DESCRIPTION:" + _escape(description))
    if modified:
        lines.append("LAST-MODIFIED:" + _stamp(modified))
    if location:
        lines.append("LOCATION:" + _escape(location))
    lines.append("STATUS:" + _STATUS.get(cdate.status, "CONFIRMED"))
    if url:
        lines.append("URL:" + _escape(url, uri=True))
    lines.append("END:VEVENT")
    return "".join(_fold(line) + "\r\n" for line in lines)


def _date_span(cdate: CourseDate, zone: ZoneInfo) -> tuple[date | datetime, date | datetime]:
    """Start and exclusive end: whole days without a start time, else wall-clock times."""
    last_day = cdate.start_date
    if cdate.end_date and cdate.end_date > cdate.start_date:
        last_day = cdate.end_date
    if cdate.start_time is None:
        return cdate.start_date, last_day + timedelta(days=1)
    start = datetime.combine(cdate.start_date, cdate.start_time, tzinfo=zone)
    return start, _timed_end(start, last_day, cdate.end_time)


def _session_span(session: Session, zone: ZoneInfo) -> tuple[date | datetime, date | datetime]:
    if session.start_time is None:
        return session.start_date, session.start_date + timedelta(days=1)
    start = datetime.combine(session.start_date, session.start_time, tzinfo=zone)
    return start, _timed_end(start, session.start_date, session.end_time)


def _timed_end(start: datetime, last_day: date, end_time: time | None) -> datetime:
    # Same tzinfo on both sides: comparison and arithmetic are on the wall clock.
    if end_time is not None:
        end = datetime.combine(last_day, end_time, tzinfo=start.tzinfo)
        if end > start:
            return end
    if last_day > start.date():
        return datetime.combine(last_day + timedelta(days=1), time(), tzinfo=start.tzinfo)
    return start + OPEN_END_LENGTH


def _location(venue: Venue | None, site: CalendarSite) -> str:
    if venue is None:
        return ""
    if venue.is_online:
        return _line(site.online_label)
    # A bare place ("Oslo") has its title as its whole address: say it once.
    parts = (_line(venue.title), _line(venue.full_address))
    return ", ".join(dict.fromkeys(part for part in parts if part))


def _session_location(
    session: Session, course: Course, cdate: CourseDate, site: CalendarSite
) -> str:
    """The date's venue, unless the session names another; then that one, with its address
    when one of the course's dates is held there."""
    title = _line(session.venue_title)
    if not title or (cdate.venue is not None and _line(cdate.venue.title) == title):
        return _location(cdate.venue, site)
    for other in course.dates:
        if other.venue and not other.venue.is_online and _line(other.venue.title) == title:
            return _location(other.venue, site)
    return title


# --- values ---------------------------------------------------------------------------------


def _when(moment: date | datetime) -> str:
    """DTSTART/DTEND parameters and value: a whole day, a UTC time, or a wall time in a zone."""
    if not isinstance(moment, datetime):
        return f";VALUE=DATE:{_day(moment)}"
    zone = _zone_id(moment.tzinfo)
    if zone == "UTC":
        return ":" + _stamp(moment)
    return f";TZID={zone}:{_day(moment)}T{_clock(moment)}"


@lru_cache(maxsize=256)
def _zone_id(zone: tzinfo | None) -> str:
    """The TZID icalendar gives a zone ("UTC" for any name of UTC)."""
    return tzid_from_dt(datetime(2000, 1, 1, tzinfo=zone)) or "UTC"


def _stamp(moment: datetime) -> str:
    """A time already in UTC (DTSTAMP, LAST-MODIFIED, a UTC start or end), with its Z."""
    return f"{_day(moment)}T{_clock(moment)}Z"


# Not strftime: its %Y writes the year 202 as "202" on glibc, where RFC 5545 (and icalendar)
# want "0202"; a mistyped session date in the data must not shift the calendar by centuries.
def _day(moment: date) -> str:
    return f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"


def _clock(moment: datetime) -> str:
    return f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"


def _escape(text: str, *, uri: bool = False) -> str:
    """The one way a value enters a calendar file: control characters removed, then RFC 5545
    TEXT escaping step for step as icalendar does it (its ``\\N`` first). A ``uri`` loses
    white space too and is otherwise written as it is, as icalendar writes a URI."""
    if uri:
        return _NOT_IN_URI.sub("", text)
    # A carriage return reads as a line break, as icalendar reads it; then nothing is left
    # of the control characters but the line breaks, which are escaped.
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return (
        text.replace("\\N", "\n")
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\n", "\\n")
    )


def _fold(line: str, limit: int = 75) -> str:
    """RFC 5545 line folding as icalendar does it: a break before the character that would
    reach ``limit`` octets, never right after a backslash or caret (an escape stays whole)."""
    if len(line) < limit // 4:
        return line
    if line.isascii():  # one octet a character
        return _fold_octets(line, limit) if len(line) >= limit else line
    data = line.encode()
    if len(data) < limit:
        return line
    return _fold_octets(data, limit).decode()


def _fold_octets(line: _Text, limit: int) -> _Text:
    """``_fold`` of a line of one-octet characters, or of a line's UTF-8 bytes, by slicing:
    each part is the most whole characters that stay below ``limit`` octets (a part never
    ends inside a character: the bytes 0b10xxxxxx continue one), less an escape's first
    character, which opens the next part instead. The same breaks as a walk through the
    characters, without looking at each (a course's description is folded a dozen times)."""
    width = limit - 1
    octets = line.encode() if isinstance(line, str) else line  # only to find the breaks
    parts: list[_Text] = []
    start = 0
    while len(octets) - start > width:
        end = start + width
        while octets[end] & 0xC0 == 0x80:  # inside a character: it goes to the next part
            end -= 1
        if octets[end - 1] in b"\\^" and end - start > 1:  # keep an escape whole
            end -= 1
        parts.append(line[start:end])
        start = end
    parts.append(line[start:])
    return "\r\n ".join(parts) if isinstance(line, str) else b"\r\n ".join(parts)


def _last_modified(course: Course, cdate: CourseDate) -> datetime | None:
    zone = ZoneInfo(cdate.timezone)
    stamps = [_utc(s, zone) for s in (cdate.updated_at, course.updated_at) if s]
    return max(stamps) if stamps else None


def _utc(moment: datetime, zone: tzinfo) -> datetime:
    """A stamp in UTC, as RFC 5545 wants; a naive one is read in ``zone``, never the machine's."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC).replace(microsecond=0)


def _line(text: str) -> str:
    """One line of plain text: control characters and runs of white space become one space."""
    return " ".join(_CONTROL.sub(" ", text).split())


def _text(text: str) -> str:
    """Plain text that may keep its line breaks."""
    return _CONTROL.sub(" ", text.replace("\r\n", "\n")).strip()
