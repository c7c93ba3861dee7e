"""The published catalog: typed records built from a snapshot, with every publishing rule here.

Raw API records stop at this boundary. ``build_catalog`` reads a snapshot and decides, in one
tested place, what a visitor may see:

- inactive courses, and courses whose ``type`` or ``level`` the config hides (internal and
  corporate training), are not published, and neither are their dates;
- dates that are invisible, soft-deleted, or already started are not published;
- a sub-date (``parent_id``) is shown under its parent date, never as a date of its own;
- a date past its deadline is shown only when ``visible_when_passed_deadline`` says so, and then
  as closed for booking;
- canceled and postponed dates stay listed, marked, without a booking link;
- seats read as a number left, few left, fully booked, or nothing when capacity is unknown;
- custom properties read as text by name (none when ``null``, ``[]`` or ``{}``), and every
  other field the model does not type is kept as ``extra``, except people's contact details.

Dates and times are the provider's wall-clock values in the date's own time zone; nothing here
converts them through the build machine's zone. "Today" is the run's ``now`` seen in each
date's zone (a course in Europe/Oslo starts "today" by Oslo's calendar, wherever CI runs).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from catalog_gen.anomalies import Anomalies, kind
from catalog_gen.config import PublishSettings
from catalog_gen.dates import parse_clock, parse_day, parse_moment
from catalog_gen.site.model import (
    FACETS,
    Catalog,
    Category,
    City,
    Course,
    CourseDate,
    FacetValue,
    Fields,
    Price,
    Seats,
    Session,
    Venue,
)
from catalog_gen.site.sanitize import plain_text, sanitize_html
from catalog_gen.site.slugs import assign_slugs, slugify
from catalog_gen.snapshot import Snapshot

# Course-date status ids (frontcore-api.md §6.2).
STATUS_TBD, STATUS_WILL_RUN, STATUS_CANCELED, STATUS_POSTPONED = 1, 2, 3, 4
LEAD_LIMIT = 200


@dataclass
class Reading:
    """What reading one snapshot keeps besides the model: the odd values it found, and the
    values of ``extra`` shared between records."""

    anomalies: Anomalies
    shared: dict[bytes, object] = field(default_factory=dict)


def build_catalog(
    snapshot: Snapshot,
    rules: PublishSettings,
    *,
    now: datetime,
    timezone: str = "Europe/Oslo",
    anomalies: Anomalies | None = None,
) -> Catalog:
    """Apply the publishing rules to a snapshot's raw records.

    ``timezone`` is the catalog's zone, used for dates that do not name their own; odd values
    are noted in ``anomalies``.
    """
    reading = Reading(anomalies if anomalies is not None else Anomalies())
    published = {
        cid: record for cid, record in snapshot.courses.items() if _course_is_public(record, rules)
    }
    slugs = assign_slugs(
        {cid: str(r.get("title") or "") for cid, r in published.items()}, fallback="kurs"
    )
    venue_slugs = _venue_slugs(snapshot.coursedates.values())
    dates_by_course = _published_dates(
        snapshot.coursedates,
        published,
        rules,
        now,
        venue_slugs,
        timezone,
        snapshot.first_seen,
        reading,
    )

    categories: dict[int, Category] = {}
    courses = []
    for cid, record in published.items():
        course_categories = []
        for raw in record.get("categories") or []:
            category_id = _int(raw.get("id")) if isinstance(raw, dict) else None
            title = str(raw.get("title") or "").strip() if isinstance(raw, dict) else ""
            if category_id is None or not title:
                continue
            category = categories.setdefault(
                category_id,
                Category(category_id, title, f"{slugify(title) or 'kategori'}-{category_id}"),
            )
            course_categories.append(category)
        courses.append(
            Course(
                id=cid,
                title=str(record.get("title") or "").strip(),
                slug=slugs[cid],
                reference=str(record.get("reference") or ""),
                lead=plain_text(record.get("text_lead"), limit=LEAD_LIMIT),
                description_html=sanitize_html(record.get("text_description")),
                prerequisites_html=sanitize_html(record.get("text_prerequisites")),
                audience_html=sanitize_html(record.get("text_audience")),
                categories=tuple(sorted(set(course_categories), key=lambda c: (c.title, c.id))),
                price=_price(record.get("price")),
                dates=tuple(dates_by_course.get(cid, ())),
                updated_at=parse_moment(record.get("updated_at"), ZoneInfo(timezone)),
                duration=_duration(record.get("duration")),
                form_of_teaching=_title_of(record.get("form_of_teaching")),
                language=_language(record.get("teaching_language")),
                custom_properties=_custom_properties(record, f"course {cid}", reading),
                extra=_extra(record, COURSE_TYPED_FIELDS, reading),
            )
        )
    courses.sort(key=lambda c: (c.title.casefold(), c.id))

    by_category: dict[int, list[Course]] = defaultdict(list)
    by_venue: dict[int, list[Course]] = defaultdict(list)
    by_city: dict[str, list[Course]] = defaultdict(list)
    venues: dict[int, Venue] = {}
    cities: dict[str, City] = {}
    for course in courses:
        for category in course.categories:
            by_category[category.id].append(course)
        seen_venues, seen_cities = set(), set()
        for d in course.dates:
            if d.venue is None or d.venue.is_online:
                continue
            venues[d.venue.id] = d.venue
            if d.venue.id not in seen_venues:
                seen_venues.add(d.venue.id)
                by_venue[d.venue.id].append(course)
            if d.venue.city:
                city = cities.setdefault(d.venue.city, City(d.venue.city, slugify(d.venue.city)))
                if city.slug not in seen_cities:
                    seen_cities.add(city.slug)
                    by_city[city.slug].append(course)

    by_facet: dict[str, dict[str, list[Course]]] = {facet: defaultdict(list) for facet in FACETS}
    form_titles: dict[str, str] = {}
    for course in courses:
        for month in course.months:
            by_facet["month"][month].append(course)
        if course.language:
            by_facet["language"][course.language].append(course)
        if course.form_slug:
            by_facet["form"][course.form_slug].append(course)
            form_titles.setdefault(course.form_slug, course.form_of_teaching)

    return Catalog(
        courses=tuple(courses),
        categories=tuple(sorted(categories.values(), key=lambda c: (c.title.casefold(), c.id))),
        venues=tuple(sorted(venues.values(), key=lambda v: (v.title.casefold(), v.id))),
        cities=tuple(sorted(cities.values(), key=lambda c: c.name.casefold())),
        dates=tuple(sorted((d for c in courses for d in c.dates), key=lambda d: d.sort_key)),
        now=now,
        fetched_at=snapshot.fetched_at,
        _by_id={c.id: c for c in courses},
        _by_category={k: tuple(v) for k, v in by_category.items()},
        _by_venue={k: tuple(v) for k, v in by_venue.items()},
        _by_city={k: tuple(v) for k, v in by_city.items()},
        _facets={
            facet: tuple(FacetValue(facet, key, form_titles.get(key, key)) for key in sorted(found))
            for facet, found in by_facet.items()
        },
        _by_facet={
            (facet, key): tuple(courses)
            for facet, found in by_facet.items()
            for key, courses in found.items()
        },
    )


# --- courses --------------------------------------------------------------------------------


def _course_is_public(record: Mapping, rules: PublishSettings) -> bool:
    if not _flag(record.get("is_active"), default=True):
        return False
    if str(record.get("type") or "public") in rules.hidden_course_types:
        return False
    level = record.get("level")
    level_id = _int(level.get("id")) if isinstance(level, dict) else None
    return level_id not in rules.hidden_level_ids


def _price(raw: object) -> Price | None:
    """The course price; zero or missing reads as 'price on request', never as 'kr 0'."""
    if not isinstance(raw, dict):
        return None
    try:
        value = Decimal(str(raw.get("value")))
    except (InvalidOperation, ValueError):
        return None
    currency = str(raw.get("currency") or "").strip().upper()
    if not value.is_finite() or value <= 0 or len(currency) != 3:
        return None
    return Price(value, currency, str(raw.get("comment") or "").strip())


def _language(raw: object) -> str:
    """A teaching language code, from ``{id: "no", title: ...}`` or a bare code."""
    code = raw.get("id") if isinstance(raw, dict) else raw
    text = str(code or "").strip().lower()
    return text if text.isascii() and text.replace("-", "").isalnum() and len(text) <= 12 else ""


#: The course fields the model types (as Course attributes, or as the booking link and e-mail
#: of its dates); every other field of the record is ``Course.extra``.
COURSE_TYPED_FIELDS = frozenset(
    {
        "id", "title", "reference", "text_lead", "text_description", "text_prerequisites",
        "text_audience", "categories", "price", "updated_at", "duration", "form_of_teaching",
        "teaching_language", "custom_properties", "external_booking_url", "email_booking",
    }
)  # fmt: skip
#: The course-date fields the model types (``course`` is the date's course, ``gatherings``
#: its sessions and instructors, ``event_url`` its ``online_url``, ``parent_id`` what makes a
#: sub-date a session); every other field is ``CourseDate.extra``.
DATE_TYPED_FIELDS = frozenset(
    {
        "coursedate_id", "id", "course_id", "course", "start_at", "start_time_at", "end_at",
        "end_time_at", "timezone", "deadline_at", "status", "status_id", "seats",
        "seats_status", "is_virtual", "gatherings", "updated_at", "event_url",
        "custom_properties", "parent_id",
    }
)  # fmt: skip
#: Never in ``extra``: people's e-mail and phone are not the public's business
#: (integration-traps.md); instructors' names are typed (``CourseDate.instructors``).
PERSONAL_FIELDS = frozenset({"instructors", "contacts"})

PROPERTIES_ODD = kind(
    "custom_properties.not_an_object",
    "custom properties neither an object nor empty; read as none",
)
PROPERTY_NESTED = kind(
    "custom_properties.nested_value", "a custom property holding a list or an object; left out"
)


def _custom_properties(record: Mapping, name: str, reading: Reading) -> Fields:
    """Custom properties as text by name (frontcore-api.md §5.8).

    ``null``, ``[]`` and ``{}`` mean none; a property set to null is deleted, so it is left
    out; a number or a boolean reads as its JSON text (``3``, ``true``); a list or an object,
    which the API does not send, is left out and noted.
    """
    raw = record.get("custom_properties")
    if raw is None or raw == [] or raw == {}:
        return Fields()
    if not isinstance(raw, dict):
        reading.anomalies.add(PROPERTIES_ODD, name, "custom_properties", raw)
        return Fields()
    values = {}
    for key, value in raw.items():
        if value is None:
            continue
        if isinstance(value, (dict, list)):
            reading.anomalies.add(PROPERTY_NESTED, name, f"custom_properties.{key}", value)
            continue
        values[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return Fields(values)


def _extra(record: Mapping, typed: frozenset[str], reading: Reading) -> Fields:
    """The record's fields the model does not type, as the API sent them; a value equal to
    another record's (its venue, its language) is kept once."""
    left_out = typed | PERSONAL_FIELDS
    return Fields(
        ((key, value) for key, value in record.items() if key not in left_out),
        shared=reading.shared,
    )


def _duration(raw: object) -> tuple[int, str] | None:
    if not isinstance(raw, dict):
        return None
    value, unit = _int(raw.get("value")), raw.get("unit")
    unit_title = _title_of(unit)
    return (value, unit_title) if value and unit_title else None


# --- dates ----------------------------------------------------------------------------------


def _published_dates(
    raw_dates: Mapping[int, dict],
    courses: Mapping[int, dict],
    rules: PublishSettings,
    now: datetime,
    venue_slugs: Mapping[int, str],
    default_zone: str,
    first_seen: Mapping[int, datetime],
    reading: Reading,
) -> dict[int, list[CourseDate]]:
    children: dict[int, list[dict]] = defaultdict(list)
    tops = []
    for record in raw_dates.values():
        if not _date_is_listed(record):
            continue
        parent = _int(record.get("parent_id"))
        if parent:
            children[parent].append(record)
        else:
            tops.append(record)

    result: dict[int, list[CourseDate]] = defaultdict(list)
    for record in tops:
        course = courses.get(_int(record.get("course_id")) or 0)
        if course is None:
            continue
        parsed = _course_date(
            record, course, rules, now, venue_slugs, children, default_zone, reading
        )
        if parsed is not None:
            result[parsed.course_id].append(replace(parsed, first_seen=first_seen.get(parsed.id)))
    for dates in result.values():
        dates.sort(key=lambda d: d.sort_key)
    return result


def _date_is_listed(record: Mapping) -> bool:
    return _flag(record.get("is_visible"), default=True) and not record.get("deleted_at")


def _course_date(
    record: Mapping,
    course: Mapping,
    rules: PublishSettings,
    now: datetime,
    venue_slugs: Mapping[int, str],
    children: Mapping[int, list[dict]],
    default_zone: str,
    reading: Reading,
) -> CourseDate | None:
    zone_name = _zone_name(record.get("timezone"), default_zone)
    zone = ZoneInfo(zone_name)
    start = parse_day(record.get("start_at"), zone)
    if start is None:
        return None  # a date without a start day cannot be listed or sorted
    today = now.astimezone(zone).date()
    if start < today:
        return None
    deadline = parse_day(record.get("deadline_at"), zone)
    deadline_passed = deadline is not None and deadline < today
    if deadline_passed and not _flag(record.get("visible_when_passed_deadline"), default=False):
        return None
    did = _int(record.get("coursedate_id") or record.get("id")) or 0
    venue = _venue(record, venue_slugs)
    booking_url = _safe_url(course.get("external_booking_url"))
    sessions = [_session(child, venue_slugs, zone) for child in children.get(did, ())]
    sessions += [_gathering(g, zone) for g in record.get("gatherings") or [] if isinstance(g, dict)]
    return CourseDate(
        id=did,
        course_id=_int(record.get("course_id")) or 0,
        start_date=start,
        start_time=parse_clock(record.get("start_time_at")),
        end_date=_end_day(start, parse_day(record.get("end_at"), zone)),
        end_time=parse_clock(record.get("end_time_at")),
        timezone=zone_name,
        deadline=deadline,
        status=_status(record),
        deadline_passed=deadline_passed,
        venue=venue,
        seats=_seats(record, rules),
        price=_price(course.get("price")),
        booking_url=booking_url,
        booking_email=_email(course.get("email_booking")),
        sessions=tuple(
            sorted(
                (s for s in sessions if s is not None),
                key=lambda s: (s.start_date, s.start_time or time.min),
            )
        ),
        instructors=_instructors(record),
        updated_at=parse_moment(record.get("updated_at"), zone),
        online_url=_safe_url(record.get("event_url")) if venue and venue.is_online else "",
        custom_properties=_custom_properties(record, f"course date {did}", reading),
        extra=_extra(record, DATE_TYPED_FIELDS, reading),
    )


#: An end further than this after the start is a placeholder ("9999-12-31"), not a date.
LONGEST_DATE = timedelta(days=3 * 366)


def _end_day(start: date, end: date | None) -> date | None:
    """The last day, when it is a real one: not before the start, not a far-future filler."""
    if end is None or end < start or end - start > LONGEST_DATE:
        return None
    return end


def _status(record: Mapping) -> str:
    status = record.get("status")
    sid = _int(status.get("id")) if isinstance(status, dict) else _int(record.get("status_id"))
    return {
        STATUS_TBD: "tbd",
        STATUS_CANCELED: "canceled",
        STATUS_POSTPONED: "postponed",
    }.get(sid or STATUS_WILL_RUN, "scheduled")


def _seats(record: Mapping, rules: PublishSettings) -> Seats:
    """Three states plus unknown: ``fully_booked`` wins; 0 capacity with 0 free is unknown."""
    seats = record.get("seats") if isinstance(record.get("seats"), dict) else {}
    free = _int(_dig(seats, "free", "num"))
    capacity = _int(_dig(seats, "allocated_capacity", "num"))
    if str(record.get("seats_status") or "") == "fully_booked":
        return Seats("full")
    if free is None or (not capacity and free <= 0):
        return Seats("unknown")
    if free <= 0:
        return Seats("full")
    if free <= rules.few_seats_threshold:
        return Seats("few", free if rules.show_seat_counts else None)
    return Seats("available", free if rules.show_seat_counts else None)


def _venue_slugs(records: Iterable[dict]) -> dict[int, str]:
    titles = {}
    for record in records:
        location = record.get("location")
        if isinstance(location, dict) and _int(location.get("id")):
            titles[_int(location["id"])] = _location_title(location)
    return assign_slugs(titles, fallback="sted")


def _venue(record: Mapping, venue_slugs: Mapping[int, str]) -> Venue | None:
    """The location, else the place (an area), else nothing: never an invented town."""
    location = record.get("location")
    place = record.get("place") if isinstance(record.get("place"), dict) else {}
    online = _flag(record.get("is_virtual"), default=False)
    if isinstance(location, dict) and _int(location.get("id")):
        lid = _int(location["id"])
        return Venue(
            id=lid,
            title=_location_title(location),
            address=str(location.get("address") or "").strip(),
            zipcode=str(location.get("zipcode") or "").strip(),
            city=str(location.get("city") or place.get("title") or "").strip(),
            slug=venue_slugs.get(lid, f"sted-{lid}"),
            is_online=online or _flag(location.get("is_virtual"), default=False),
        )
    place_title = str(place.get("title") or "").strip()
    if place_title or online:
        pid = -(_int(place.get("id")) or 0)  # negative: never collides with a location id
        # "-p<id>": a place's address can never take a location's ("<title>-<id>").
        slug = f"{slugify(place_title) or 'sted'}-p{abs(pid)}"
        return Venue(pid, place_title, "", "", place_title, slug, is_online=online)
    return None


def _location_title(location: Mapping) -> str:
    return str(location.get("custom_title") or location.get("title") or "").strip()


def _session(record: Mapping, venue_slugs: Mapping[int, str], zone: ZoneInfo) -> Session | None:
    start = parse_day(record.get("start_at"), zone)
    if start is None:
        return None
    venue = _venue(record, venue_slugs)
    return Session(
        start,
        parse_clock(record.get("start_time_at")),
        parse_clock(record.get("end_time_at")),
        venue.title if venue else "",
    )


def _gathering(record: Mapping, zone: ZoneInfo) -> Session | None:
    start = parse_moment(record.get("gathering_at"), zone)
    end = parse_moment(record.get("gathering_end_at"), zone)
    if start is None:
        return None
    location = record.get("location")
    title = _location_title(location) if isinstance(location, dict) else ""
    return Session(start.date(), start.time(), end.time() if end else None, title)


def _instructors(record: Mapping) -> tuple[str, ...]:
    """Instructor names only: their e-mail and phone are not the public's business."""
    names = []
    for gathering in record.get("gatherings") or []:
        for person in (gathering or {}).get("instructors") or []:
            name = str((person or {}).get("fullname") or (person or {}).get("name") or "").strip()
            if name and name not in names:
                names.append(name)
    return tuple(names)


# --- tolerant readers -------------------------------------------------------------------------


def _int(value: object) -> int | None:
    """Ints arrive as ints or strings ("12"); anything else is unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _flag(value: object, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _dig(mapping: Mapping, *keys: str) -> object:
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def _zone_name(value: object, default: str) -> str:
    name = str(value or "").strip() or default
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return default
    return name


def _title_of(value: object) -> str:
    return str(value.get("title") or "").strip() if isinstance(value, dict) else ""


def _safe_url(value: object) -> str:
    text = str(value or "").strip()
    return text if text.lower().startswith(("https://", "http://")) else ""


def _email(value: object) -> str:
    text = str(value or "").strip()
    return text if "@" in text and " " not in text and "<" not in text else ""
