"""The published catalog: typed records built from a snapshot, with every publishing rule here.

Raw API records stop at this boundary. ``build_catalog`` reads a snapshot and decides, in one
tested place, what a visitor may see:

- inactive courses, and courses whose ``type`` or ``level`` the config hides (internal and
  corporate training), are not published, and neither are their dates;
- dates that are invisible, soft-deleted, or already started are not published;
- a sub-date (``parent_id``) is shown under its parent date, never as a date of its own;
- a date past its deadline is shown only when ``visible_when_passed_deadline`` says so, and then
  as closed for booking;
- canceled and postponed dates stay listed, marked, without a booking link; a status id
  catalog-gen does not know (and ``publish.date_status`` does not map) is listed as "not
  confirmed", also without one;
- seats read as a number left, few left, fully booked, or nothing when capacity is unknown;
- spellings of one city ("Oslo", "OSLO", " oslo") are one city with one page;
- custom properties read as text by name (none when ``null``, ``[]`` or ``{}``), and every
  other field the model does not type is kept as ``extra``, except people's contact details.

**A record never stops the catalog.** Every value is read by a tolerant reader that accepts the
forms the API is known to send (numbers as strings, ``[]`` for an empty object, ``null`` for an
empty list) and turns anything else into a safe fallback, noted in ``anomalies`` with the
record, the field and the value (the kinds are declared below, beside the code that reports
them; the build prints them grouped). Only what the operator controls fails a build.

Dates and times are the provider's wall-clock values in the date's own time zone; nothing here
converts them through the build machine's zone. "Today" is the run's ``now`` seen in each
date's zone (a course in Europe/Oslo starts "today" by Oslo's calendar, wherever CI runs).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from anyascii import anyascii
from babel.numbers import is_currency

from catalog_gen.anomalies import Anomalies, kind
from catalog_gen.config import PublishSettings
from catalog_gen.dates import parse_clock, parse_day, parse_moment
from catalog_gen.site.addresses import mail_address, web_address
from catalog_gen.site.i18n import Locale, get_locale
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
from catalog_gen.site.slugs import keyed_slug, slug_with_id, slugify, usable_id
from catalog_gen.snapshot import Snapshot

# Course-date status ids (frontcore-api.md §6.2).
STATUS_TBD, STATUS_WILL_RUN, STATUS_CANCELED, STATUS_POSTPONED = 1, 2, 3, 4
DATE_STATES = {
    STATUS_TBD: "tbd",
    STATUS_WILL_RUN: "scheduled",
    STATUS_CANCELED: "canceled",
    STATUS_POSTPONED: "postponed",
}
LEAD_LIMIT = 200

# --- the odd data this module turns into fallbacks (anomalies.py) ---------------------------

WRONG_TYPE = kind(
    "value.wrong_type",
    "value of the wrong type (text, a list or an object expected); treated as missing",
)
FLAG_UNREADABLE = kind(
    "value.flag_unreadable",
    "yes/no value that is neither; read as no (for is_active and is_visible: not published)",
)
NO_SLUG = kind(
    "value.no_slug",
    "name without letters or digits to make an address of; the address uses the id",
)
COURSE_ID = kind(
    "course.id_unusable",
    "course id that is not a positive whole number of at most 16 digits; course left out",
)
COURSE_TITLE = kind("course.title_blank", "course without a title; shown as 'Kurs <id>'")
COURSE_TYPE = kind(
    "course.type_unknown",
    "course type other than 'public' and not in publish.hidden_course_types; published",
)
COURSE_LEVEL = kind(
    "course.level_unreadable",
    "course level without a readable id; published (publish.hidden_level_ids cannot apply)",
)
CATEGORY = kind(
    "course.category_unusable",
    "category without a usable id or name; left out of the course's categories",
)
PRICE = kind(
    "course.price_unusable",
    "price that is not a plausible amount in a known currency; shown as 'price on request'",
)
DURATION = kind(
    "course.duration_unusable", "duration that is not a whole number of units; not shown"
)
FORM = kind("course.form_unusable", "form of teaching without a usable name; not shown")
LANGUAGE = kind(
    "course.language_unknown", "teaching language that is not a known language code; not shown"
)
EMAIL = kind(
    "address.email_unusable",
    "e-mail that is not exactly one plain address (no query, comma, line break or "
    "percent-escape); no e-mail link",
)
URL = kind(
    "address.url_unusable",
    "web address that is not a plain absolute http(s) URL with a host; no link",
)
DATE_ID = kind(
    "date.id_unusable",
    "course date id that is not a positive whole number of at most 16 digits; left out",
)
DATE_COURSE = kind("date.course_missing", "course date whose course is not in the data; left out")
DATE_PARENT = kind(
    "date.parent_unusable",
    "sub-date whose parent_id names no date of its own in the data; left out",
)
DATE_START = kind(
    "date.start_unreadable",
    "course date without a readable start day (or one more than 10 years ahead); left out",
)
DAY_UNREADABLE = kind(
    "date.day_unreadable", "end day, deadline or change stamp that cannot be read; left out"
)
END_BEFORE_START = kind(
    "date.end_before_start", "end (day or time) before the start; shown without the end"
)
TIME_UNREADABLE = kind(
    "date.time_unreadable",
    "time of day that cannot be read (e.g. '25:99'); start shown as 'time to be announced', "
    "end left out",
)
ZONE = kind("date.timezone_unknown", "time zone that is not an IANA zone name; read in 'timezone'")
STATUS = kind(
    "date.status_unknown",
    "course date status that is not 1-4 nor mapped in publish.date_status; listed as "
    "'status not confirmed', no booking",
)
SEATS = kind(
    "date.seats_unusable",
    "seat count that is unreadable, negative or absurd; no seat count shown",
)
VENUE = kind(
    "date.venue_unusable",
    "location or place without a usable id; shown as 'venue to be announced'",
)
SESSION = kind(
    "date.session_unreadable",
    "sub-date or gathering without a readable start (or more than 10 years away); left out "
    "of the date's sessions",
)
VENUE_TITLE = kind("venue.title_blank", "venue without a name; shown as 'Kurssted <id>'")
CITY = kind(
    "venue.city_unusable",
    "city name without letters or digits; no city page (the venue is listed under 'other venues')",
)
CITY_VARIANTS = kind(
    "city.spelled_differently",
    "one city written in several ways (case, accents, spaces); one city page, under the "
    "most frequent spelling",
)


def build_catalog(
    snapshot: Snapshot,
    rules: PublishSettings,
    *,
    now: datetime,
    timezone: str = "Europe/Oslo",
    language: str = "nb",
    anomalies: Anomalies | None = None,
) -> Catalog:
    """Apply the publishing rules to a snapshot's raw records.

    ``timezone`` is the catalog's zone, used for dates that do not name their own; ``language``
    the site's, for the few words the catalog itself supplies (a fallback title). What could
    not be used as it was is added to ``anomalies``.
    """
    found = anomalies if anomalies is not None else Anomalies()
    shared: dict[bytes, object] = {}  # values of ``extra`` equal between records, kept once
    words = get_locale(language)
    published = _published_courses(snapshot.courses, rules, found)
    venues = _Venues(snapshot.coursedates, found, words)
    terms = {cid: _CourseTerms(cid, record, found) for cid, record in published.items()}
    dates_by_course = _published_dates(
        snapshot.coursedates,
        snapshot.courses,
        terms,
        rules,
        now,
        venues,
        timezone,
        snapshot.first_seen,
        found,
        shared,
    )
    dates_by_course = venues.merge_cities(dates_by_course)

    categories: dict[int, Category] = {}
    courses = []
    for cid, record in published.items():
        name = f"course {cid}"
        raw_title = _plain(record, "title", found, name)
        title = raw_title if _has_words(raw_title) else ""
        if not title:
            found.add(COURSE_TITLE, name, "title", record.get("title"))
        elif not slugify(title):
            found.add(NO_SLUG, name, "title", title)
        course_categories = _categories(record, name, categories, found)
        courses.append(
            Course(
                id=cid,
                title=title or words.t("untitled_course", id=cid),
                slug=slug_with_id(title, cid, "kurs"),
                reference=_plain(record, "reference", found, name),
                lead=plain_text(_rich(record, "text_lead", found, name), limit=LEAD_LIMIT),
                description_html=sanitize_html(_rich(record, "text_description", found, name)),
                prerequisites_html=sanitize_html(_rich(record, "text_prerequisites", found, name)),
                audience_html=sanitize_html(_rich(record, "text_audience", found, name)),
                categories=tuple(sorted(set(course_categories), key=lambda c: (c.title, c.id))),
                price=terms[cid].price,
                dates=tuple(dates_by_course.get(cid, ())),
                updated_at=_moment(record, "updated_at", ZoneInfo(timezone), found, name),
                duration=_duration(record, found, name),
                form_of_teaching=_form_of_teaching(record, found, name),
                language=_language(record, words, found, name),
                more_info_url=_web_address(record, "external_more_info_url", found, name),
                custom_properties=_custom_properties(record, name, found),
                extra=_extra(record, COURSE_TYPED_FIELDS, shared),
            )
        )
    courses.sort(key=lambda c: (c.title.casefold(), c.id))

    by_category: dict[int, list[Course]] = defaultdict(list)
    by_venue: dict[int, list[Course]] = defaultdict(list)
    by_city: dict[str, list[Course]] = defaultdict(list)
    venue_list: dict[int, Venue] = {}
    for course in courses:
        for category in course.categories:
            by_category[category.id].append(course)
        seen_venues, seen_cities = set(), set()
        for d in course.dates:
            if d.venue is None or d.venue.is_online:
                continue
            venue_list[d.venue.id] = d.venue
            if d.venue.id not in seen_venues:
                seen_venues.add(d.venue.id)
                by_venue[d.venue.id].append(course)
            city = venues.city_of(d.venue)
            if city is not None and city.slug not in seen_cities:
                seen_cities.add(city.slug)
                by_city[city.slug].append(course)
    cities = {city.slug: city for v in venue_list.values() if (city := venues.city_of(v))}

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
        venues=tuple(sorted(venue_list.values(), key=lambda v: (v.title.casefold(), v.id))),
        cities=tuple(sorted(cities.values(), key=lambda c: (c.name.casefold(), c.slug))),
        dates=tuple(sorted((d for c in courses for d in c.dates), key=lambda d: d.sort_key)),
        now=now,
        fetched_at=snapshot.fetched_at,
        _by_id={c.id: c for c in courses},
        _by_category={k: tuple(v) for k, v in by_category.items()},
        _by_venue={k: tuple(v) for k, v in by_venue.items()},
        _by_city={k: tuple(v) for k, v in by_city.items()},
        _facets={
            facet: tuple(
                FacetValue(facet, key, form_titles.get(key, key)) for key in sorted(grouped)
            )
            for facet, grouped in by_facet.items()
        },
        _by_facet={
            (facet, key): tuple(listed)
            for facet, grouped in by_facet.items()
            for key, listed in grouped.items()
        },
    )


# --- courses --------------------------------------------------------------------------------


def _published_courses(
    records: Mapping[int, dict], rules: PublishSettings, found: Anomalies
) -> dict[int, dict]:
    published = {}
    for cid, record in records.items():
        if not usable_id(cid):
            found.add(COURSE_ID, f"course {cid}", "id", cid)
        elif not isinstance(record, dict):
            found.add(WRONG_TYPE, f"course {cid}", "(record)", record)
        elif _course_is_public(record, rules, found, f"course {cid}"):
            published[cid] = record
    return published


def _course_is_public(record: Mapping, rules: PublishSettings, found: Anomalies, name: str) -> bool:
    """The course rules: active, of a type and at a level the config does not hide."""
    if not _read_flag(record, "is_active", True, found, name):
        return False
    kind_of_course = record.get("type")
    if isinstance(kind_of_course, str) and kind_of_course.strip():
        kind_of_course = kind_of_course.strip()
        if kind_of_course in rules.hidden_course_types:
            return False
        if kind_of_course != "public":
            found.add(COURSE_TYPE, name, "type", kind_of_course)
    elif not _is_empty(kind_of_course):
        found.add(COURSE_TYPE, name, "type", kind_of_course)
    level = record.get("level")
    raw_level = level.get("id") if isinstance(level, dict) else level
    if _is_empty(raw_level):
        return True
    level_id = _int(raw_level)
    if level_id is None:
        found.add(COURSE_LEVEL, name, "level.id", raw_level)
    return level_id not in rules.hidden_level_ids


class _CourseTerms:
    """What every date of a course shares: its price and where to book (read once)."""

    def __init__(self, cid: int, record: Mapping, found: Anomalies) -> None:
        name = f"course {cid}"
        self.price = _price(record, found, name)
        self.booking_url = _web_address(record, "external_booking_url", found, name)
        self.booking_email = _mail_address(record, "email_booking", found, name)


def _categories(
    record: Mapping, name: str, known: dict[int, Category], found: Anomalies
) -> list[Category]:
    result = []
    for index, raw in enumerate(_list(record, "categories", found, name)):
        field = f"categories[{index}]"
        category_id = _id(raw.get("id")) if isinstance(raw, dict) else None
        title = _clean_line(raw.get("title")) if isinstance(raw, dict) else ""
        if category_id is None or not _has_words(title):
            found.add(CATEGORY, name, field, raw)
            continue
        if not slugify(title):
            found.add(NO_SLUG, f"category {category_id}", "title", title)
        category = known.setdefault(
            category_id, Category(category_id, title, slug_with_id(title, category_id, "kategori"))
        )
        result.append(category)
    return result


#: Above this a price is a typing error (or an attack on the page's layout), not a price.
LARGEST_PRICE = Decimal(10_000_000)
_THOUSANDS = re.compile(r"^\d{1,3}(?:[ .]\d{3})+(?:,\d+)?$|^\d+,\d+$")


def _price(record: Mapping, found: Anomalies, name: str) -> Price | None:
    """The course price; zero or missing reads as 'price on request', never as 'kr 0'.

    Amounts arrive as numbers or as text, the Norwegian way too ("4 900,50", "4.900,50").
    """
    raw = _object(record, "price", found, name)
    if raw is None or _is_empty(raw.get("value")):
        return None
    value = _amount(raw.get("value"))
    if value is None or value < 0 or value > LARGEST_PRICE:
        found.add(PRICE, name, "price.value", raw.get("value"))
        return None
    if value == 0:
        return None
    currency = raw.get("currency")
    code = currency.strip().upper() if isinstance(currency, str) else ""
    if not (len(code) == 3 and code.isascii() and code.isalpha() and is_currency(code)):
        found.add(PRICE, name, "price.currency", currency)
        return None
    return Price(value, code, _clean_line(raw.get("comment")))


def _amount(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = re.sub(r"[\s\u00a0\u202f]", " ", value.strip())
    if _THOUSANDS.match(text):
        text = text.replace(" ", "").replace(".", "").replace(",", ".")
    try:
        amount = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def _language(record: Mapping, words: Locale, found: Anomalies, name: str) -> str:
    """A teaching language code, from ``{id: "no", title: ...}`` or a bare code; "" when it
    is no language (an unknown code would show as itself, and make a filter of it)."""
    raw = record.get("teaching_language")
    code = raw.get("id") if isinstance(raw, dict) else raw
    if _is_empty(code):
        return ""
    text = code.strip().lower() if isinstance(code, str) else ""
    if not (text.isascii() and len(text) <= 12 and words.knows_language(text)):
        found.add(LANGUAGE, name, "teaching_language", code)
        return ""
    return text


#: A duration above this many units is a typing error.
LONGEST_DURATION = 10_000


def _duration(record: Mapping, found: Anomalies, name: str) -> tuple[int, str] | None:
    raw = _object(record, "duration", found, name)
    if raw is None or (_is_empty(raw.get("value")) and _is_empty(raw.get("unit"))):
        return None
    value, unit_title = _int(raw.get("value")), _title_of(raw.get("unit"))
    if value is None or not 0 < value <= LONGEST_DURATION or not _has_words(unit_title):
        found.add(DURATION, name, "duration", raw)
        return None
    return value, unit_title


def _form_of_teaching(record: Mapping, found: Anomalies, name: str) -> str:
    """The form's title; "" when there is none that can name a filter (``form/<slug>/``)."""
    raw = record.get("form_of_teaching")
    if _is_empty(raw):
        return ""
    title = _title_of(raw)
    if not slugify(title):
        found.add(FORM, name, "form_of_teaching", raw)
        return ""
    return title


# --- custom properties and the fields the model does not type --------------------------------

#: The course fields the model types (as Course attributes, or as the booking link and e-mail
#: of its dates); every other field of the record is ``Course.extra``.
COURSE_TYPED_FIELDS = frozenset(
    {
        "id", "title", "reference", "text_lead", "text_description", "text_prerequisites",
        "text_audience", "categories", "price", "updated_at", "duration", "form_of_teaching",
        "teaching_language", "custom_properties", "external_booking_url", "email_booking",
        "external_more_info_url",
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


def _custom_properties(record: Mapping, name: str, found: Anomalies) -> Fields:
    """Custom properties as text by name (frontcore-api.md §5.8).

    ``null``, ``[]`` and ``{}`` mean none; a property set to null is deleted, so it is left
    out; a number or a boolean reads as its JSON text (``3``, ``true``); a list or an object,
    which the API does not send, is left out and noted.
    """
    raw = record.get("custom_properties")
    if raw is None or raw == [] or raw == {}:
        return Fields()
    if not isinstance(raw, dict):
        found.add(PROPERTIES_ODD, name, "custom_properties", raw)
        return Fields()
    values = {}
    for key, value in raw.items():
        if value is None:
            continue
        if isinstance(value, (dict, list)):
            found.add(PROPERTY_NESTED, name, f"custom_properties.{key}", value)
            continue
        values[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return Fields(values)


def _extra(record: Mapping, typed: frozenset[str], shared: dict[bytes, object]) -> Fields:
    """The record's fields the model does not type, as the API sent them; a value equal to
    another record's (its venue, its language) is kept once."""
    left_out = typed | PERSONAL_FIELDS
    return Fields(
        ((key, value) for key, value in record.items() if key not in left_out), shared=shared
    )


# --- dates ----------------------------------------------------------------------------------


def _published_dates(
    raw_dates: Mapping[int, dict],
    all_courses: Mapping[int, dict],
    courses: Mapping[int, _CourseTerms],
    rules: PublishSettings,
    now: datetime,
    venues: _Venues,
    default_zone: str,
    first_seen: Mapping[int, datetime],
    found: Anomalies,
    shared: dict[bytes, object],
) -> dict[int, list[CourseDate]]:
    children: dict[int, list[tuple[int, dict]]] = defaultdict(list)
    tops = []
    for did, record in raw_dates.items():
        name = f"course date {did}"
        if not usable_id(did):
            found.add(DATE_ID, name, "coursedate_id", did)
            continue
        if not isinstance(record, dict):
            found.add(WRONG_TYPE, name, "(record)", record)
            continue
        if not _date_is_listed(record, found, name):
            continue
        raw_parent = record.get("parent_id")
        if _is_empty(raw_parent) or raw_parent == 0:
            tops.append((did, record))
            continue
        parent = _int(raw_parent)
        if parent is None or parent == did or not _is_top_date(raw_dates.get(parent)):
            found.add(DATE_PARENT, name, "parent_id", raw_parent)
        else:
            children[parent].append((did, record))

    result: dict[int, list[CourseDate]] = defaultdict(list)
    for did, record in tops:
        name = f"course date {did}"
        raw_course = record.get("course_id")
        cid = _int(raw_course)
        if cid is None or cid not in all_courses:
            found.add(DATE_COURSE, name, "course_id", raw_course)
            continue
        terms = courses.get(cid)
        if terms is None:
            continue  # the course is not published, and so neither are its dates
        zone_name = _zone_name(record, default_zone, found, name)
        context = _DateContext(did, cid, ZoneInfo(zone_name), zone_name, name, found, shared)
        parsed = _course_date(record, context, terms, rules, now, venues, children.get(did, ()))
        if parsed is not None:
            result[cid].append(replace(parsed, first_seen=first_seen.get(did)))
    for dates in result.values():
        dates.sort(key=lambda d: d.sort_key)
    return result


def _date_is_listed(record: Mapping, found: Anomalies, name: str) -> bool:
    """The date rules that need no clock: visible, and not soft-deleted."""
    return _read_flag(record, "is_visible", True, found, name) and not record.get("deleted_at")


def _is_top_date(record: object) -> bool:
    return isinstance(record, dict) and (
        _is_empty(record.get("parent_id")) or record.get("parent_id") == 0
    )


class _DateContext:
    """Who a date is (for the report), the zone its values are read in, and the values of
    ``extra`` shared between records."""

    def __init__(
        self,
        did: int,
        cid: int,
        zone: ZoneInfo,
        zone_name: str,
        name: str,
        found: Anomalies,
        shared: dict[bytes, object],
    ) -> None:
        self.did, self.cid, self.zone, self.zone_name = did, cid, zone, zone_name
        self.name, self.found, self.shared = name, found, shared


def _course_date(
    record: Mapping,
    context: _DateContext,
    terms: _CourseTerms,
    rules: PublishSettings,
    now: datetime,
    venues: _Venues,
    children: Iterable[tuple[int, dict]],
) -> CourseDate | None:
    name, found, zone = context.name, context.found, context.zone
    start = _day(record, "start_at", zone, found, name)
    today = now.astimezone(zone).date()
    if start is None or start > today + PLAUSIBLE:
        # A date without a start day cannot be listed or sorted; "9999-12-31" is a
        # placeholder, and a year after it no calendar can hold.
        found.add(DATE_START, name, "start_at", record.get("start_at"))
        return None
    if start < today:
        return None
    deadline = _day(record, "deadline_at", zone, found, name)
    deadline_passed = deadline is not None and deadline < today
    if deadline_passed and not _read_flag(
        record, "visible_when_passed_deadline", False, found, name
    ):
        return None
    venue = venues.of(record, name)
    last_day = _day(record, "end_at", zone, found, name)
    if last_day is not None and last_day < start:
        found.add(END_BEFORE_START, name, "end_at", record.get("end_at"))
    end_date = _end_day(start, last_day)
    start_time = _clock(record, "start_time_at", found, name)
    end_time = _clock(record, "end_time_at", found, name)
    if start_time and end_time and end_time < start_time and end_date in (None, start):
        found.add(END_BEFORE_START, name, "end_time_at", record.get("end_time_at"))
        end_time = None
    sessions = [_session(did, child, venues, zone, today, found) for did, child in children]
    sessions += [
        _gathering(index, g, context, today)
        for index, g in enumerate(_list(record, "gatherings", found, name))
        if isinstance(g, dict)
    ]
    online = venue is not None and venue.is_online
    return CourseDate(
        id=context.did,
        course_id=context.cid,
        start_date=start,
        start_time=start_time,
        end_date=end_date,
        end_time=end_time,
        timezone=context.zone_name,
        deadline=deadline,
        status=_status(record, rules, found, name),
        deadline_passed=deadline_passed,
        venue=venue,
        seats=_seats(record, rules, found, name),
        price=terms.price,
        booking_url=terms.booking_url,
        booking_email=terms.booking_email,
        sessions=tuple(
            sorted(
                (s for s in sessions if s is not None),
                key=lambda s: (s.start_date, s.start_time or time.min),
            )
        ),
        instructors=_instructors(record, found, name),
        updated_at=_moment(record, "updated_at", zone, found, name),
        online_url=_web_address(record, "event_url", found, name) if online else "",
        custom_properties=_custom_properties(record, name, found),
        extra=_extra(record, DATE_TYPED_FIELDS, context.shared),
    )


#: An end further than this after the start is a placeholder ("9999-12-31"), not a date.
LONGEST_DATE = timedelta(days=3 * 366)
#: Days further from today than this are placeholders or typing errors, not course days.
PLAUSIBLE = timedelta(days=10 * 366)


def _end_day(start: date, end: date | None) -> date | None:
    """The last day, when it is a real one: not before the start, not a far-future filler."""
    if end is None or end < start or end - start > LONGEST_DATE:
        return None
    return end


def _status(record: Mapping, rules: PublishSettings, found: Anomalies, name: str) -> str:
    """The date's state; one catalog-gen does not know is "unknown" (listed, never bookable)
    until ``publish.date_status`` maps it."""
    status = record.get("status")
    raw = status.get("id") if isinstance(status, dict) else status
    if _is_empty(raw):
        raw = record.get("status_id")
    sid = _int(raw)
    state = None if sid is None else rules.date_status.get(sid, DATE_STATES.get(sid))
    if state is None:
        found.add(STATUS, name, "status.id", raw)
        return "unknown"
    return state


#: More free seats than this is a typing error, not a course.
MOST_SEATS = 100_000


def _seats(record: Mapping, rules: PublishSettings, found: Anomalies, name: str) -> Seats:
    """Three states plus unknown: ``fully_booked`` wins; 0 capacity with 0 free is unknown; a
    negative free count is an overbooked (full) date."""
    seats = _object(record, "seats", found, name) or {}
    free = _seat_count(seats, "free", found, name)
    capacity = _seat_count(seats, "allocated_capacity", found, name)
    if str(record.get("seats_status") or "") == "fully_booked":
        return Seats("full")
    if capacity is not None and capacity < 0:
        found.add(SEATS, name, "seats.allocated_capacity.num", capacity)
        return Seats("unknown")
    if free is not None and (free > MOST_SEATS or (capacity and free > capacity)):
        found.add(SEATS, name, "seats.free.num", free)
        return Seats("unknown")
    if free is None or (not capacity and free <= 0):
        return Seats("unknown")
    if free <= 0:
        return Seats("full")
    if free <= rules.few_seats_threshold:
        return Seats("few", free if rules.show_seat_counts else None)
    return Seats("available", free if rules.show_seat_counts else None)


def _seat_count(seats: Mapping, key: str, found: Anomalies, name: str) -> int | None:
    """``seats.<key>.num``, or a bare ``seats.<key>``; as a number or numeric text."""
    raw = seats.get(key)
    if isinstance(raw, dict):
        raw = raw.get("num")
    if _is_empty(raw):
        return None
    count = _whole(raw)
    if count is None:
        found.add(SEATS, name, f"seats.{key}.num", raw)
    return count


class _Venues:
    """Every venue the published dates name, read once: one ``Venue`` per location id (read
    from the copy embedded in the date with the highest id) or place id, and their cities.

    A city has no id, so its spellings are merged by a key (``city_key``): one page per city
    under its most frequent spelling, with a slug made from the key so it stays put.
    """

    def __init__(self, raw_dates: Mapping[int, dict], found: Anomalies, words: Locale) -> None:
        self._found, self._words = found, words
        self._copies: dict[int, tuple[Mapping, Mapping]] = {}  # location id → (date, location)
        self._locations: dict[int, Venue] = {}
        self._places: dict[int, Venue] = {}
        self._cities: dict[str, City] = {}
        self._city_of: dict[int, str] = {}  # venue id → city key
        for did in sorted(k for k in raw_dates if isinstance(k, int)):
            record = raw_dates[did]
            location = record.get("location") if isinstance(record, dict) else None
            if isinstance(location, dict) and (lid := _id(location.get("id"))) is not None:
                self._copies[lid] = (record, location)

    def _location(self, lid: int) -> Venue | None:
        if lid not in self._locations and lid in self._copies:
            self._locations[lid] = self._read_location(lid, *self._copies[lid])
        return self._locations.get(lid)

    def _read_location(self, lid: int, record: Mapping, location: Mapping) -> Venue:
        title = _clean_line(location.get("custom_title")) or _clean_line(location.get("title"))
        if not _has_words(title):
            self._found.add(VENUE_TITLE, f"venue {lid}", "title", location.get("title"))
            title = ""
        elif not slugify(title):
            self._found.add(NO_SLUG, f"venue {lid}", "title", title)
        place = record.get("place") if isinstance(record.get("place"), dict) else {}
        return Venue(
            id=lid,
            title=title or self._words.t("untitled_venue", id=lid),
            address=_clean_line(location.get("address")),
            zipcode=_clean_line(location.get("zipcode")),
            city=_clean_line(location.get("city")) or _clean_line(place.get("title")),
            slug=slug_with_id(title, lid, "sted"),
            is_online=_read_flag(location, "is_virtual", False, self._found, f"venue {lid}"),
        )

    def of(self, record: Mapping, name: str) -> Venue | None:
        """The location, else the place (an area), else nothing: never an invented town."""
        online = _read_flag(record, "is_virtual", False, self._found, name)
        location = _object(record, "location", self._found, name)
        if location is not None:
            lid = _id(location.get("id"))
            venue = self._location(lid) if lid is not None else None
            if venue is not None:
                return replace(venue, is_online=True) if online and not venue.is_online else venue
            self._found.add(VENUE, name, "location.id", location.get("id"))
        place = _object(record, "place", self._found, name) or {}
        place_title = _clean_line(place.get("title"))
        pid = _id(place.get("id"))
        if not _has_words(place_title) or pid is None:
            if _has_words(place_title) and not online:
                self._found.add(VENUE, name, "place.id", place.get("id"))
            # Online without a place: a venue that shows as "online" and has no page.
            return Venue(0, "", "", "", "", "sted-p0", is_online=True) if online else None
        if pid not in self._places:
            # "-p<id>": a place's address can never take a location's ("<title>-<id>").
            slug = f"{slugify(place_title) or 'sted'}-p{pid}"
            # A negative id: never the same venue as a location with the place's number.
            self._places[pid] = Venue(-pid, place_title, "", "", place_title, slug)
        venue = self._places[pid]
        return replace(venue, is_online=True) if online else venue

    def merge_cities(
        self, dates_by_course: Mapping[int, list[CourseDate]]
    ) -> dict[int, list[CourseDate]]:
        """The dates with each venue's city spelled as its city page is named ("" when the
        name cannot make a page); the cities themselves are then ``city_of``."""
        venues = {
            d.venue.id: d.venue
            for dates in dates_by_course.values()
            for d in dates
            if d.venue is not None and not d.venue.is_online
        }
        spellings: dict[str, Counter[str]] = defaultdict(Counter)
        for vid in sorted(venues):
            venue = venues[vid]
            key = city_key(venue.city)
            if key:
                spellings[key][venue.city] += 1
                self._city_of[vid] = key
            elif venue.city:
                self._found.add(CITY, _venue_name(venue), "city", venue.city)
        for key, counts in spellings.items():
            # The most frequent spelling; between equals, one that is not all capitals or
            # all small letters, then the first in code-point order: stable for equal data.
            shown = min(counts, key=lambda s: (-counts[s], s.isupper() or s.islower(), s))
            self._cities[key] = City(shown, keyed_slug(shown, key, "by"))
        renamed = {}
        for vid, venue in venues.items():
            key = self._city_of.get(vid)
            city = self._cities[key].name if key else ""
            if key and venue.city != city:
                self._found.add(CITY_VARIANTS, _venue_name(venue), "city", venue.city)
            if venue.city != city:
                renamed[vid] = replace(venue, city=city)
        if not renamed:
            return dict(dates_by_course)
        return {
            cid: [
                replace(d, venue=renamed[d.venue.id])
                if d.venue is not None and d.venue.id in renamed and not d.venue.is_online
                else d
                for d in dates
            ]
            for cid, dates in dates_by_course.items()
        }

    def city_of(self, venue: Venue) -> City | None:
        key = self._city_of.get(venue.id)
        return self._cities[key] if key else None


def _venue_name(venue: Venue) -> str:
    return f"place {-venue.id}" if venue.id < 0 else f"venue {venue.id}"


def city_key(name: str) -> str:
    """What makes two spellings one city: case, accents on Latin and Greek letters, Latin
    letters without an accent to strip (ø/o, æ/ae, ß/ss), spaces and punctuation do not count.
    "" for a name without letters or digits."""
    folded = []
    latin_or_greek = False
    for char in unicodedata.normalize("NFKD", name.casefold()):
        if unicodedata.combining(char):
            if not latin_or_greek:
                folded.append(char)
            continue
        char_name = unicodedata.name(char, "")
        latin_or_greek = char_name.startswith(("LATIN", "GREEK"))
        if char_name.startswith("LATIN") and not char.isascii():
            folded.append(anyascii(char).lower())
        elif char.isalnum():
            folded.append(char)
        else:
            folded.append(" ")
    return " ".join(unicodedata.normalize("NFC", "".join(folded)).split())


def _session(
    did: int, record: Mapping, venues: _Venues, zone: ZoneInfo, today: date, found: Anomalies
) -> Session | None:
    name = f"course date {did}"
    start = _day(record, "start_at", zone, found, name)
    if start is None or abs(start - today) > PLAUSIBLE:
        found.add(SESSION, name, "start_at", record.get("start_at"))
        return None
    venue = venues.of(record, name)
    return Session(
        start,
        _clock(record, "start_time_at", found, name),
        _clock(record, "end_time_at", found, name),
        venue.title if venue else "",
    )


def _gathering(index: int, record: Mapping, context: _DateContext, today: date) -> Session | None:
    field = f"gatherings[{index}]"
    start = parse_moment(_scalar(record.get("gathering_at")), context.zone)
    end = parse_moment(_scalar(record.get("gathering_end_at")), context.zone)
    if start is None or abs(start.date() - today) > PLAUSIBLE:
        context.found.add(
            SESSION, context.name, f"{field}.gathering_at", record.get("gathering_at")
        )
        return None
    location = record.get("location")
    title = ""
    if isinstance(location, dict):
        title = _clean_line(location.get("custom_title")) or _clean_line(location.get("title"))
    if end is None and not _is_empty(record.get("gathering_end_at")):
        context.found.add(
            DAY_UNREADABLE, context.name, f"{field}.gathering_end_at", record["gathering_end_at"]
        )
    elif end is not None and end < start:
        context.found.add(
            END_BEFORE_START, context.name, f"{field}.gathering_end_at", record["gathering_end_at"]
        )
        end = None
    return Session(start.date(), start.time(), end.time() if end else None, title)


def _instructors(record: Mapping, found: Anomalies, name: str) -> tuple[str, ...]:
    """Instructor names only: their e-mail and phone are not the public's business."""
    names = []
    for gathering in _list(record, "gatherings", found, name):
        if not isinstance(gathering, dict):
            continue
        for person in _list(gathering, "instructors", found, name):
            if not isinstance(person, dict):
                continue
            full = _clean_line(person.get("fullname")) or _clean_line(person.get("name"))
            if _has_words(full) and full not in names:
                names.append(full)
    return tuple(names)


# --- addresses: values, never markup (addresses.py) ------------------------------------------


def _mail_address(record: Mapping, key: str, found: Anomalies, name: str) -> str:
    """One plain address for a ``mailto:`` link (addresses.py); "" with an anomaly for
    anything else (two addresses, a query, a header injection)."""
    raw = record.get(key)
    if _is_empty(raw):
        return ""
    address = mail_address(raw)
    if not address:
        found.add(EMAIL, name, key, raw)
    return address


def _web_address(record: Mapping, key: str, found: Anomalies, name: str) -> str:
    """An absolute http(s) address to link to (addresses.py); "" with an anomaly else."""
    raw = record.get(key)
    if _is_empty(raw):
        return ""
    url = web_address(raw)
    if not url:
        found.add(URL, name, key, raw)
    return url


# --- tolerant readers -------------------------------------------------------------------------


def _int(value: object) -> int | None:
    """Ints arrive as ints or strings ("12"); anything else (12.5, "12 kurs") is unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _id(value: object) -> int | None:
    """A record id that can be part of an address, as a number or numeric text; else None."""
    rid = _int(value)
    return rid if rid is not None and usable_id(rid) else None


def _whole(value: object) -> int | None:
    """A whole number: 12, 12.0, "12", "12.0"; not 12.5, not "12 seats"."""
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except (InvalidOperation, ValueError):
            return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    if isinstance(value, float | Decimal) and (not math.isfinite(value) or value != int(value)):
        return None
    return int(value)


_YES, _NO = frozenset({"1", "true", "yes"}), frozenset({"0", "false", "no"})


def _read_flag(record: Mapping, key: str, default: bool, found: Anomalies, name: str) -> bool:
    """A yes/no field: true/false, 1/0, "1"/"0", "true"/"false", "yes"/"no"; ``default`` when
    missing; no (with an anomaly) for anything else."""
    value = record.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _YES or text in _NO:
        return text in _YES
    found.add(FLAG_UNREADABLE, name, key, value)
    return False


def _is_empty(value: object) -> bool:
    """Nothing, in any of the ways a PHP API says it: null, "", [], {}."""
    return value is None or value == "" or (isinstance(value, list | dict) and not value)


def _object(record: Mapping, key: str, found: Anomalies, name: str) -> dict | None:
    """An object field; None when empty (null, [] or {}), or of another type (an anomaly)."""
    value = record.get(key)
    if isinstance(value, dict):
        return value or None
    if not _is_empty(value) and value is not False:
        found.add(WRONG_TYPE, name, key, value)
    return None


def _list(record: Mapping, key: str, found: Anomalies, name: str) -> list:
    """A list field; [] when empty (null, {}), or of another type (an anomaly)."""
    value = record.get(key)
    if isinstance(value, list):
        return value
    if not _is_empty(value) and value is not False:
        found.add(WRONG_TYPE, name, key, value)
    return []


def _scalar(value: object) -> object:
    return value if isinstance(value, str | int | float) and not isinstance(value, bool) else None


def _zone_name(record: Mapping, default: str, found: Anomalies, name: str) -> str:
    value = record.get("timezone")
    if _is_empty(value):
        return default
    text = value.strip() if isinstance(value, str) else ""
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        found.add(ZONE, name, "timezone", value)
        return default
    return text


def _day(record: Mapping, key: str, zone: ZoneInfo, found: Anomalies, name: str) -> date | None:
    """A calendar day; None when missing, or unreadable (then an anomaly, except for
    ``start_at``, whose absence the caller reports as the date's own loss)."""
    value = record.get(key)
    if _is_empty(value):
        return None
    day = parse_day(value, zone) if isinstance(value, str) else None
    if day is None and key != "start_at":
        found.add(DAY_UNREADABLE, name, key, value)
    return day


def _moment(
    record: Mapping, key: str, zone: ZoneInfo, found: Anomalies, name: str
) -> datetime | None:
    value = record.get(key)
    if _is_empty(value):
        return None
    moment = parse_moment(_scalar(value), zone)
    if moment is None:
        found.add(DAY_UNREADABLE, name, key, value)
    return moment


def _clock(record: Mapping, key: str, found: Anomalies, name: str) -> time | None:
    value = record.get(key)
    if _is_empty(value):
        return None
    clock = parse_clock(value) if isinstance(value, str) else None
    if clock is None:
        found.add(TIME_UNREADABLE, name, key, value)
    return clock


def _title_of(value: object) -> str:
    return _clean_line(value.get("title")) if isinstance(value, dict) else ""


#: Characters that may not appear in an HTML document (control characters, noncharacters,
#: lone surrogates): removed from every text before it reaches a template.
_UNWRITABLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17))
    + "]"
)


def _clean_line(value: object) -> str:
    """One line of provider text, as shown: unwritable characters gone, white space one
    space. Numbers read as their text; anything else as ""."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    text = str(value)
    if text.isprintable() and "  " not in text and text == text.strip():
        return text  # the common case, at C speed: nothing to remove or collapse
    return " ".join(_UNWRITABLE.sub("", text).split())


def _plain(record: Mapping, key: str, found: Anomalies, name: str) -> str:
    value = record.get(key)
    if not _is_empty(value) and value is not False and not isinstance(value, str | int | float):
        found.add(WRONG_TYPE, name, key, value)
    return _clean_line(value)


def _rich(record: Mapping, key: str, found: Anomalies, name: str) -> str | None:
    """A provider text (HTML or plain) with the characters HTML cannot hold removed; vertical
    tabs and form feeds (Word's line breaks) become line breaks."""
    value = record.get(key)
    if not isinstance(value, str):
        if not _is_empty(value) and value is not False:
            found.add(WRONG_TYPE, name, key, value)
        return None
    return _UNWRITABLE.sub("", value.replace("\x0b", "\n").replace("\x0c", "\n"))


def _has_words(text: str) -> bool:
    """Whether a text has something to read: a letter, digit, punctuation mark or symbol
    (not only spaces, invisible format characters or lone accents)."""
    if text[:1].isalnum():
        return True  # nearly every name: a letter or digit first
    return any(unicodedata.category(char)[0] in "LNPS" for char in text)
