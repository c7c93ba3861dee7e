"""Each record read on its own: a draft that neither the clock nor any other record changes.

``draft_records`` reads a snapshot's part (its courses and dates) with the readers
(readers.py) and the rules (rules.py) into ``CourseDraft`` and ``DateDraft`` values, each with
the odd data it found: what the model cache (modelcache.py) keeps between builds, so that a
night reads again only the records that changed. Custom properties read as text by name (none
when ``null``, ``[]`` or ``{}``), and every other field the model does not type is kept as
``extra``, except people's contact details.

**A record never stops the catalog.** A value that cannot be used as it is gets a fallback and
a note (the kinds are declared beside the code that reports them); only what the operator
controls fails a build.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import NamedTuple, TypeVar, cast
from zoneinfo import ZoneInfo

from babel.numbers import is_currency

from catalog_gen.anomalies import Anomalies, Anomaly, kind
from catalog_gen.config import Config, PublishSettings
from catalog_gen.dates import parse_moment
from catalog_gen.site.i18n import Locale, get_locale
from catalog_gen.site.model import (
    NO_FIELDS,
    Course,
    Fields,
    Price,
    Seats,
    Session,
    Venue,
)
from catalog_gen.site.readers import (
    DAY_UNREADABLE,
    WRONG_TYPE,
    clean_line,
    has_words,
    is_empty,
    read_clock,
    read_day,
    read_flag,
    read_id,
    read_int,
    read_list,
    read_mail_address,
    read_moment,
    read_object,
    read_plain,
    read_rich,
    read_web_address,
    read_zone,
    scalar_of,
    title_of,
)
from catalog_gen.site.rules import (
    NO_CONTACT,
    BookingTerms,
    contact_terms,
    course_booking,
    course_is_public,
    date_is_listed,
    is_top_date,
    read_seats,
    read_status,
)
from catalog_gen.site.sanitize import plain_text, sanitize_html
from catalog_gen.site.slugs import slug_with_id, slugify, usable_id
from catalog_gen.snapshot import Record, SnapshotPart

LEAD_LIMIT = 200


NO_SLUG = kind(
    "value.no_slug",
    "name without letters or digits to make an address of; the address uses the id",
)


COURSE_ID = kind(
    "course.id_unusable",
    "course id that is not a positive whole number of at most 16 digits; course left out",
)


COURSE_TITLE = kind("course.title_blank", "course without a title; shown as '{untitled_course}'")


CATEGORY = kind(
    "course.category_unusable",
    "category without a usable id or name; left out of the course's categories",
)


PRICE = kind(
    "course.price_unusable",
    "price that is not a plausible amount in a known currency; shown as '{price_on_request}'",
)


DURATION = kind(
    "course.duration_unusable", "duration that is not a whole number of units; not shown"
)


FORM = kind("course.form_unusable", "form of teaching without a usable name; not shown")


LANGUAGE = kind(
    "course.language_unknown", "teaching language that is not a known language code; not shown"
)


DATE_ID = kind(
    "date.id_unusable",
    "course date id that is not a positive whole number of at most 16 digits; left out",
)


END_BEFORE_START = kind(
    "date.end_before_start", "end (day or time) before the start; shown without the end"
)


VENUE = kind(
    "date.venue_unusable",
    "location or place without a usable id; shown as '{venue_tba}'",
)


VENUE_TITLE = kind("venue.title_blank", "venue without a name; shown as '{untitled_venue}'")


@dataclass(frozen=True)
class DraftRules:
    """What a draft is made of besides its record: the publishing rules, the catalog's zone
    (for dates that do not name their own), the site's language (a fallback title) and the
    provider's contact (for a date with no booking path)."""

    rules: PublishSettings
    timezone: str = "Europe/Oslo"
    language: str = "nb"
    contact: BookingTerms = NO_CONTACT

    @classmethod
    def of(cls, config: Config) -> DraftRules:
        """The drafting rules a config sets (a contact it cannot use is a ConfigError)."""
        contact = contact_terms(config.site, config.source)
        return cls(config.publish, config.timezone, config.site.language, contact)


class CourseDraft(NamedTuple):
    """A course record read on its own: whether it is published, as what, and its odd data.

    ``course`` has no dates and no categories yet: ``assemble`` adds them (a category's
    title is the one the course with the lowest id gives it).
    """

    id: object
    anomalies: tuple[Anomaly, ...] = ()
    #: The published course without dates and categories; None when it is not published.
    course: Course | None = None
    #: Its usable categories as (id, title), in the record's order.
    categories: tuple[tuple[int, str], ...] = ()
    booking_url: str = ""
    booking_email: str = ""
    #: How its dates are booked (``publish.booking``, else the contact).
    booking: BookingTerms = NO_CONTACT


class VenueRef(NamedTuple):
    """Where a date record says it takes place, before the venue tables are known."""

    #: "location" (a location id), "place" (a place id) or "online" (neither, but virtual).
    kind: str
    id: int
    #: The date itself says it is virtual (``is_virtual``).
    online: bool


class LocationDraft(NamedTuple):
    """A location as the date with the highest id embeds it, and its odd data (reported
    when a published date is held there)."""

    venue: Venue
    anomalies: tuple[Anomaly, ...]


class GatheringDraft(NamedTuple):
    """One gathering of a date: its session (None when its start is unreadable), and the
    anomalies it reports when it is kept."""

    #: Its position in the record's list, and its ``gathering_at`` as received (for the
    #: anomaly of a gathering unreadable or more than 10 years from today: it is dropped).
    position: int
    raw_start: object
    session: Session | None
    anomalies: tuple[Anomaly, ...]


class DateDraft(NamedTuple):
    """A course-date record read on its own: everything but what the clock (has it started,
    is the deadline past), its course (price, booking), the venue tables and its sub-dates
    decide. Its odd data is kept by when it is reported: a date that has started reports
    nothing but what any record reports.

    A listed date is read both as a date of its own and as a sub-date (a session of its
    parent): ``assemble`` uses what its role needs.
    """

    id: object
    #: Reported whatever else happens: an unusable id, not a record, an unreadable is_visible.
    anomalies: tuple[Anomaly, ...] = ()
    #: Visible and not deleted (a record with a usable id): the only dates read further.
    listed: bool = False
    #: A record whose parent_id is empty or 0: a date of its own, not a sub-date.
    top: bool = False
    #: A sub-date's parent id (None when unreadable) and its value as received.
    parent: int | None = None
    parent_raw: object = None
    course_id: int | None = None
    course_raw: object = None
    timezone: str = ""
    zone_anomalies: tuple[Anomaly, ...] = ()
    start: date | None = None
    start_raw: object = None
    deadline: date | None = None
    deadline_anomalies: tuple[Anomaly, ...] = ()
    #: ``visible_when_passed_deadline``, and its anomaly (read only once the deadline passed).
    closed_visible: bool = False
    closed_anomalies: tuple[Anomaly, ...] = ()
    venue: VenueRef | None = None
    venue_anomalies: tuple[Anomaly, ...] = ()
    #: The start and end times as given, and their anomalies (a date's, or a session's).
    clock_start: time | None = None
    clock_end: time | None = None
    clock_anomalies: tuple[Anomaly, ...] = ()
    end_date: date | None = None
    end_time: time | None = None
    gatherings: tuple[GatheringDraft, ...] = ()
    event_url: str = ""
    event_url_anomalies: tuple[Anomaly, ...] = ()
    status: str = ""
    seats: Seats | None = None
    instructors: tuple[str, ...] = ()
    updated_at: datetime | None = None
    first_seen: datetime | None = None
    #: Since when the record is unchanged, in the catalog's zone (``CourseDate.seats_as_of``).
    seats_as_of: datetime | None = None
    custom_properties: Fields = NO_FIELDS
    extra: Fields = NO_FIELDS
    #: What a published date reports besides the above (end, status, seats, …).
    published_anomalies: tuple[Anomaly, ...] = ()

    @property
    def name(self) -> str:
        return f"course date {self.id}"


@dataclass
class Drafts:
    """The drafts of a set of records: a whole snapshot, or one shard of it (modelcache.py),
    with the venues each set names. ``add`` merges two sets."""

    courses: dict[object, CourseDraft] = field(default_factory=dict)
    dates: dict[object, DateDraft] = field(default_factory=dict)
    #: For each location id: the highest id of a date embedding it, and how that copy reads.
    locations: dict[int, tuple[int, LocationDraft]] = field(default_factory=dict)
    #: For each place id: the highest id of a date naming it (with a name), and its venue.
    places: dict[int, tuple[int, Venue]] = field(default_factory=dict)

    def add(self, other: Drafts) -> None:
        self.courses.update(other.courses)
        self.dates.update(other.dates)
        keep_newest(self.locations, other.locations)
        keep_newest(self.places, other.places)


_Entry = TypeVar("_Entry")


def keep_newest(
    table: dict[int, tuple[int, _Entry]], more: Mapping[int, tuple[int, _Entry]]
) -> None:
    """Add ``more``'s venues to ``table``: for each id, the one of the date with the highest
    id wins (a venue reads as the newest date that names it, whichever part holds it)."""
    for key, entry in more.items():
        if key not in table or entry[0] > table[key][0]:
            table[key] = entry


def draft_records(records: SnapshotPart, rules: DraftRules) -> Drafts:
    """Every record of a snapshot's part read on its own (see DateDraft and CourseDraft)."""
    courses, dates = records.courses, records.coursedates
    first_seen, unchanged_since = records.first_seen, records.unchanged_since
    zone = ZoneInfo(rules.timezone)
    words = get_locale(rules.language)
    shared: dict[bytes, object] = {}  # values of ``extra`` equal between records, kept once
    same = Interned()  # equal days, times, seats … between records, kept once
    drafts = Drafts()
    for cid, record in courses.items():
        drafts.courses[cid] = draft_course(cid, record, rules, words, shared)
    copies: dict[int, tuple[int, Record, Record]] = {}
    for did, record in dates.items():
        seen = same(first_seen.get(did))
        since = unchanged_since.get(did)
        as_of = same(since.astimezone(zone)) if since is not None else None
        drafts.dates[did] = draft_date(did, record, rules, (seen, as_of), shared, same)
        if not isinstance(did, int) or not isinstance(record, dict):
            continue
        location = record.get("location")
        if (
            isinstance(location, dict)
            and (lid := read_id(location.get("id"))) is not None
            and (lid not in copies or did > copies[lid][0])
        ):
            copies[lid] = (did, record, location)
        place = record.get("place")
        if isinstance(place, dict) and (pid := read_id(place.get("id"))) is not None:
            title = clean_line(place.get("title"))
            if has_words(title) and (pid not in drafts.places or did > drafts.places[pid][0]):
                # "-p<id>": a place's address can never take a location's ("<title>-<id>").
                slug = f"{slugify(title) or 'sted'}-p{pid}"
                # A negative id: never the same venue as a location with the place's number.
                drafts.places[pid] = (did, Venue(-pid, title, "", "", title, slug))
    for lid, (did, record, location) in copies.items():
        drafts.locations[lid] = (did, _read_location(lid, record, location, words))
    return drafts


_Value = TypeVar("_Value")


class Interned(dict[tuple[type, object, object, object], object]):
    """Equal values made once: a date's days, times, seats and sessions are mostly equal to
    another's, and a kept draft (modelcache.py) is read back faster with fewer objects."""

    def __call__(self, value: _Value) -> _Value:
        if value is None:
            return value
        # Equal is not enough for moments: the same instant in two zones, or at a fold.
        key = (type(value), value, getattr(value, "tzinfo", None), getattr(value, "fold", 0))
        # The key holds the value's type: what is kept under it is of the same type.
        return cast(_Value, self.setdefault(key, value))


def anomalies_of(found: Anomalies) -> tuple[Anomaly, ...]:
    return tuple(found) if found else ()


def draft_course(
    cid: object, record: object, rules: DraftRules, words: Locale, shared: dict[bytes, object]
) -> CourseDraft:
    name = f"course {cid}"
    found = Anomalies()
    if not usable_id(cid):
        found.add(COURSE_ID, name, "id", cid)
        return CourseDraft(cid, anomalies_of(found))
    if not isinstance(record, dict):
        found.add(WRONG_TYPE, name, "(record)", record)
        return CourseDraft(cid, anomalies_of(found))
    if not course_is_public(record, rules.rules, found, name):
        return CourseDraft(cid, anomalies_of(found))
    assert isinstance(cid, int)
    price = _price(record, found, name)
    booking_url = read_web_address(record, "external_booking_url", found, name)
    booking_email = read_mail_address(record, "email_booking", found, name)
    kursguiden_url = read_web_address(record, "kursguiden_url", found, name)
    booking = course_booking(
        rules.rules.booking, rules.contact, booking_url, booking_email, kursguiden_url
    )
    raw_title = read_plain(record, "title", found, name)
    title = raw_title if has_words(raw_title) else ""
    if not title:
        found.add(COURSE_TITLE, name, "title", record.get("title"))
    elif not slugify(title):
        found.add(NO_SLUG, name, "title", title)
    categories = _categories(record, name, found)
    course = Course(
        id=cid,
        title=title or words.t("untitled_course", id=cid),
        slug=slug_with_id(title, cid, "kurs"),
        reference=read_plain(record, "reference", found, name),
        lead=plain_text(read_rich(record, "text_lead", found, name), limit=LEAD_LIMIT),
        description_html=sanitize_html(read_rich(record, "text_description", found, name)),
        prerequisites_html=sanitize_html(read_rich(record, "text_prerequisites", found, name)),
        audience_html=sanitize_html(read_rich(record, "text_audience", found, name)),
        categories=(),
        price=price,
        dates=(),
        updated_at=read_moment(record, "updated_at", ZoneInfo(rules.timezone), found, name),
        duration=_duration(record, found, name),
        form_of_teaching=_form_of_teaching(record, found, name),
        language=_language(record, words, found, name),
        more_info_url=read_web_address(record, "external_more_info_url", found, name),
        kursguiden_url=kursguiden_url,
        custom_properties=read_custom_properties(record, name, found),
        extra=read_extra(record, COURSE_TYPED_FIELDS, shared),
    )
    return CourseDraft(
        cid, anomalies_of(found), course, categories, booking_url, booking_email, booking
    )


def _categories(
    record: Mapping[str, object], name: str, found: Anomalies
) -> tuple[tuple[int, str], ...]:
    """The record's usable categories as (id, title); the unusable ones are noted."""
    result = []
    for index, raw in enumerate(read_list(record, "categories", found, name)):
        field = f"categories[{index}]"
        category_id = read_id(raw.get("id")) if isinstance(raw, dict) else None
        title = clean_line(raw.get("title")) if isinstance(raw, dict) else ""
        if category_id is None or not has_words(title):
            found.add(CATEGORY, name, field, raw)
            continue
        result.append((category_id, title))  # one that makes no address: see summarize
    return tuple(result)


#: Above this a price is a typing error (or an attack on the page's layout), not a price.
LARGEST_PRICE = Decimal(10_000_000)


_THOUSANDS = re.compile(r"^\d{1,3}(?:[ .]\d{3})+(?:,\d+)?$|^\d+,\d+$")


def _price(record: Mapping[str, object], found: Anomalies, name: str) -> Price | None:
    """The course price; zero or missing reads as 'price on request', never as 'kr 0'.

    Amounts arrive as numbers or as text, the Norwegian way too ("4 900,50", "4.900,50").
    """
    raw = read_object(record, "price", found, name)
    if raw is None or is_empty(raw.get("value")):
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
    return Price(value, code, clean_line(raw.get("comment")))


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


def _language(record: Mapping[str, object], words: Locale, found: Anomalies, name: str) -> str:
    """A teaching language code, from ``{id: "no", title: ...}`` or a bare code; "" when it
    is no language (an unknown code would show as itself, and make a filter of it)."""
    raw = record.get("teaching_language")
    code = raw.get("id") if isinstance(raw, dict) else raw
    if is_empty(code):
        return ""
    text = code.strip().lower() if isinstance(code, str) else ""
    if not (text.isascii() and len(text) <= 12 and words.knows_language(text)):
        found.add(LANGUAGE, name, "teaching_language", code)
        return ""
    return text


#: A duration above this many units is a typing error.
LONGEST_DURATION = 10_000


def _duration(record: Mapping[str, object], found: Anomalies, name: str) -> tuple[int, str] | None:
    raw = read_object(record, "duration", found, name)
    if raw is None or (is_empty(raw.get("value")) and is_empty(raw.get("unit"))):
        return None
    value, unit_title = read_int(raw.get("value")), title_of(raw.get("unit"))
    if value is None or not 0 < value <= LONGEST_DURATION or not has_words(unit_title):
        found.add(DURATION, name, "duration", raw)
        return None
    return value, unit_title


def _form_of_teaching(record: Mapping[str, object], found: Anomalies, name: str) -> str:
    """The form's title; "" when there is none that can name a filter (``form/<slug>/``)."""
    raw = record.get("form_of_teaching")
    if is_empty(raw):
        return ""
    title = title_of(raw)
    if not slugify(title):
        found.add(FORM, name, "form_of_teaching", raw)
        return ""
    return title


# --- custom properties and the fields the model does not type --------------------------------

#: The course fields the model types (as Course attributes, or as the booking link and e-mail
#: of its dates; ``kursguiden_url`` is both); every other field of the record is
#: ``Course.extra``.
COURSE_TYPED_FIELDS = frozenset(
    {
        "id", "title", "reference", "text_lead", "text_description", "text_prerequisites",
        "text_audience", "categories", "price", "updated_at", "duration", "form_of_teaching",
        "teaching_language", "custom_properties", "external_booking_url", "email_booking",
        "external_more_info_url", "kursguiden_url",
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


def read_custom_properties(record: Mapping[str, object], name: str, found: Anomalies) -> Fields:
    """Custom properties as text by name (frontcore-api.md §5.8).

    ``null``, ``[]`` and ``{}`` mean none; a property set to null is deleted, so it is left
    out; a number or a boolean reads as its JSON text (``3``, ``true``); a list or an object,
    which the API does not send, is left out and noted.
    """
    raw = record.get("custom_properties")
    if raw is None or raw == [] or raw == {}:
        return NO_FIELDS
    if not isinstance(raw, dict):
        found.add(PROPERTIES_ODD, name, "custom_properties", raw)
        return NO_FIELDS
    values = {}
    for key, value in raw.items():
        if value is None:
            continue
        if isinstance(value, (dict, list)):
            found.add(PROPERTY_NESTED, name, f"custom_properties.{key}", value)
            continue
        values[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return Fields(values)


def read_extra(
    record: Mapping[str, object], typed: frozenset[str], shared: dict[bytes, object]
) -> Fields:
    """The record's fields the model does not type, as the API sent them; a value equal to
    another record's (its venue, its language) is kept once."""
    left_out = typed | PERSONAL_FIELDS
    values = [(key, value) for key, value in record.items() if key not in left_out]
    return Fields(values, shared=shared) if values else NO_FIELDS


# --- dates ----------------------------------------------------------------------------------


def draft_date(
    did: object,
    record: object,
    rules: DraftRules,
    stamps: tuple[datetime | None, datetime | None],
    shared: dict[bytes, object],
    same: Interned,
) -> DateDraft:
    """``stamps``: when a fetch first saw the date, and since when its record is unchanged
    (in the catalog's zone)."""
    first_seen, seats_as_of = stamps
    name = f"course date {did}"
    found = Anomalies()
    top = isinstance(record, dict) and is_top_date(record)
    if not usable_id(did):
        found.add(DATE_ID, name, "coursedate_id", did)
        return DateDraft(did, anomalies_of(found), top=top)
    if not isinstance(record, dict):
        found.add(WRONG_TYPE, name, "(record)", record)
        return DateDraft(did, anomalies_of(found))
    if not date_is_listed(record, found, name):
        return DateDraft(did, anomalies_of(found), top=top)
    raw_parent = record.get("parent_id")
    zoned = Anomalies()
    zone_name = read_zone(record, rules.timezone, zoned, name)
    zone = ZoneInfo(zone_name)
    start = read_day(record, "start_at", zone, found, name)  # a missing start is reported by role
    closing = Anomalies()
    deadline = read_day(record, "deadline_at", zone, closing, name)
    closed = Anomalies()
    closed_visible = read_flag(record, "visible_when_passed_deadline", False, closed, name)
    placed = Anomalies()
    venue = _venue_ref(record, placed, name)
    clocked = Anomalies()
    clock_start = read_clock(record, "start_time_at", clocked, name)
    clock_end = read_clock(record, "end_time_at", clocked, name)
    rest = Anomalies()
    last_day = read_day(record, "end_at", zone, rest, name)
    end_date = end_time = None
    if start is not None:
        if last_day is not None and last_day < start:
            rest.add(END_BEFORE_START, name, "end_at", record.get("end_at"))
        end_date = end_day(start, last_day)
        end_time = clock_end
        if clock_start and clock_end and clock_end < clock_start and end_date in (None, start):
            rest.add(END_BEFORE_START, name, "end_time_at", record.get("end_time_at"))
            end_time = None
    gatherings = tuple(
        _draft_gathering(index, gathering, zone, name, same)
        for index, gathering in enumerate(read_list(record, "gatherings", rest, name))
        if isinstance(gathering, dict)
    )
    status = read_status(record, rules.rules, rest, name)
    seats = read_seats(record, rules.rules, rest, name)
    instructors = read_instructors(record, rest, name)
    updated_at = read_moment(record, "updated_at", zone, rest, name)
    linked = Anomalies()
    event_url = read_web_address(record, "event_url", linked, name)
    custom_properties = read_custom_properties(record, name, rest)
    raw_course = record.get("course_id")
    return DateDraft(
        did,
        anomalies_of(found),
        listed=True,
        top=top,
        parent=None if top else read_int(raw_parent),
        parent_raw=None if top else raw_parent,
        course_id=read_int(raw_course),
        course_raw=raw_course,
        timezone=same(zone_name),
        zone_anomalies=anomalies_of(zoned),
        start=same(start),
        start_raw=record.get("start_at"),
        deadline=same(deadline),
        deadline_anomalies=anomalies_of(closing),
        closed_visible=closed_visible,
        closed_anomalies=anomalies_of(closed),
        venue=venue,
        venue_anomalies=anomalies_of(placed),
        clock_start=same(clock_start),
        clock_end=same(clock_end),
        clock_anomalies=anomalies_of(clocked),
        end_date=same(end_date),
        end_time=same(end_time),
        gatherings=gatherings,
        event_url=event_url,
        event_url_anomalies=anomalies_of(linked),
        status=same(status),
        seats=same(seats),
        instructors=same(instructors),
        updated_at=same(updated_at),
        first_seen=first_seen,
        seats_as_of=seats_as_of,
        custom_properties=custom_properties,
        extra=read_extra(record, DATE_TYPED_FIELDS, shared),
        published_anomalies=anomalies_of(rest),
    )


def _draft_gathering(
    index: int, record: Mapping[str, object], zone: ZoneInfo, name: str, same: Interned
) -> GatheringDraft:
    field = f"gatherings[{index}]"
    raw_start = record.get("gathering_at")
    start = parse_moment(scalar_of(raw_start), zone)
    if start is None:
        return GatheringDraft(index, raw_start, None, ())
    end = parse_moment(scalar_of(record.get("gathering_end_at")), zone)
    location = record.get("location")
    title = ""
    if isinstance(location, dict):
        title = clean_line(location.get("custom_title")) or clean_line(location.get("title"))
    found = Anomalies()
    if end is None and not is_empty(record.get("gathering_end_at")):
        found.add(DAY_UNREADABLE, name, f"{field}.gathering_end_at", record["gathering_end_at"])
    elif end is not None and end < start:
        found.add(END_BEFORE_START, name, f"{field}.gathering_end_at", record["gathering_end_at"])
        end = None
    session = Session(
        same(start.date()), same(start.time()), same(end.time() if end else None), title
    )
    return GatheringDraft(index, raw_start, same(session), anomalies_of(found))


def _venue_ref(record: Mapping[str, object], found: Anomalies, name: str) -> VenueRef | None:
    """The location, else the place (an area), else nothing: never an invented town."""
    online = read_flag(record, "is_virtual", False, found, name)
    location = read_object(record, "location", found, name)
    if location is not None:
        lid = read_id(location.get("id"))
        if lid is not None:  # this record embeds it, so the location table has it
            return VenueRef("location", lid, online)
        found.add(VENUE, name, "location.id", location.get("id"))
    place = read_object(record, "place", found, name) or {}
    place_title = clean_line(place.get("title"))
    pid = read_id(place.get("id"))
    if not has_words(place_title) or pid is None:
        if has_words(place_title) and not online:
            found.add(VENUE, name, "place.id", place.get("id"))
        # Online without a place: a venue that shows as "online" and has no page.
        return VenueRef("online", 0, True) if online else None
    return VenueRef("place", pid, online)


def _read_location(
    lid: int, record: Mapping[str, object], location: Mapping[str, object], words: Locale
) -> LocationDraft:
    found = Anomalies()
    title = clean_line(location.get("custom_title")) or clean_line(location.get("title"))
    if not has_words(title):
        found.add(VENUE_TITLE, f"venue {lid}", "title", location.get("title"))
        title = ""
    elif not slugify(title):
        found.add(NO_SLUG, f"venue {lid}", "title", title)
    place = record.get("place")
    if not isinstance(place, dict):
        place = {}
    venue = Venue(
        id=lid,
        title=title or words.t("untitled_venue", id=lid),
        address=clean_line(location.get("address")),
        zipcode=clean_line(location.get("zipcode")),
        city=clean_line(location.get("city")) or clean_line(place.get("title")),
        slug=slug_with_id(title, lid, "sted"),
        is_online=read_flag(location, "is_virtual", False, found, f"venue {lid}"),
    )
    return LocationDraft(venue, anomalies_of(found))


#: An end further than this after the start is a placeholder ("9999-12-31"), not a date.
LONGEST_DATE = timedelta(days=3 * 366)


#: Days further from today than this are placeholders or typing errors, not course days.
PLAUSIBLE = timedelta(days=10 * 366)


def end_day(start: date, end: date | None) -> date | None:
    """The last day, when it is a real one: not before the start, not a far-future filler."""
    if end is None or end < start or end - start > LONGEST_DATE:
        return None
    return end


def read_instructors(record: Mapping[str, object], found: Anomalies, name: str) -> tuple[str, ...]:
    """Instructor names only: their e-mail and phone are not the public's business."""
    names = []
    for gathering in read_list(record, "gatherings", found, name):
        if not isinstance(gathering, dict):
            continue
        for person in read_list(gathering, "instructors", found, name):
            if not isinstance(person, dict):
                continue
            full = clean_line(person.get("fullname")) or clean_line(person.get("name"))
            if has_words(full) and full not in names:
                names.append(full)
    return tuple(names)
