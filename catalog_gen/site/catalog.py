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
- every other date that is not fully booked can be booked, through the first path of
  ``publish.booking`` its course has (its booking address, its booking e-mail, its page on
  Kursguiden), else by getting in touch with the provider (``site.contact_*``);
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
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import NamedTuple
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from anyascii import anyascii
from babel.numbers import is_currency

from catalog_gen.anomalies import Anomalies, Anomaly, kind
from catalog_gen.config import Config, PublishSettings, SiteSettings
from catalog_gen.dates import parse_clock, parse_day, parse_moment
from catalog_gen.errors import ConfigError
from catalog_gen.site.addresses import link_target, mail_address, web_address
from catalog_gen.site.i18n import Locale, get_locale
from catalog_gen.site.model import (
    FACETS,
    NO_FIELDS,
    BookingPath,
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
from catalog_gen.snapshot import Snapshot, SnapshotPart

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
COURSE_TITLE = kind("course.title_blank", "course without a title; shown as '{untitled_course}'")
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
    "price that is not a plausible amount in a known currency; shown as '{price_on_request}'",
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
    "time of day that cannot be read (e.g. '25:99'); start shown as '{time_tba}', end left out",
)
ZONE = kind("date.timezone_unknown", "time zone that is not an IANA zone name; read in 'timezone'")
STATUS = kind(
    "date.status_unknown",
    "course date status that is not 1-4 nor mapped in publish.date_status; listed as "
    "'{status_unknown}', no booking",
)
SEATS = kind(
    "date.seats_unusable",
    "seat count that is unreadable, negative or absurd; no seat count shown",
)
VENUE = kind(
    "date.venue_unusable",
    "location or place without a usable id; shown as '{venue_tba}'",
)
SESSION = kind(
    "date.session_unreadable",
    "sub-date or gathering without a readable start (or more than 10 years away); left out "
    "of the date's sessions",
)
VENUE_TITLE = kind("venue.title_blank", "venue without a name; shown as '{untitled_venue}'")
CITY = kind(
    "venue.city_unusable",
    "city name without letters or digits; no city page (the venue is listed under "
    "'{other_venues}')",
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
    contact: BookingTerms | None = None,
    anomalies: Anomalies | None = None,
) -> Catalog:
    """Apply the publishing rules to a snapshot's raw records.

    ``timezone`` is the catalog's zone, used for dates that do not name their own; ``language``
    the site's, for the few words the catalog itself supplies (a fallback title); ``contact``
    how a bookable date without a booking path says to get in touch (``contact_terms``). What
    could not be used as it was is added to ``anomalies``.

    Two steps, so that a build can keep the first between runs (modelcache.py): every record
    is read on its own into a draft (``draft_records``), which neither the clock nor any other
    record changes; then the drafts are put together at ``now`` (``assemble``).
    """
    drafts = draft_records(
        snapshot.part(), DraftRules(rules, timezone, language, contact or NO_CONTACT)
    )
    return assemble(drafts, now=now, fetched_at=snapshot.fetched_at, anomalies=anomalies)


# --- drafts: what each record says on its own ------------------------------------------------


class BookingTerms(NamedTuple):
    """How a course's dates are booked, before a date makes it its ``BookingPath``: the kind
    (``BookingPath.kind``), where it leads (``via`` "web": an http(s) address; "mail": an
    e-mail address, which becomes a ``mailto:`` naming the course and the day; "tel": a
    ``tel:`` URL; "": nowhere), the words' key and the contact the words name."""

    kind: str
    via: str
    target: str
    words: str
    contact: str = ""


#: A bookable date without a booking path, when no contact is set: words, no link.
NO_CONTACT = BookingTerms("none", "", "", "book_ask")
#: The words of each booking path of ``publish.booking``.
PATH_WORDS = {"external": "book", "email": "book_by_email", "kursguiden": "book_on_kursguiden"}


def contact_terms(site: SiteSettings, source: object = None) -> BookingTerms:
    """The provider's contact for a bookable date with no booking path: ``site.contact_url``,
    else ``contact_email``, else ``contact_phone``; ``NO_CONTACT`` when none is set. A value
    the one URL policy refuses is a ConfigError naming the key (the operator set it)."""
    where = f"{source}: " if source else ""
    if site.contact_url:
        url = web_address(site.contact_url)
        if not url:
            raise ConfigError(f"{where}'site.contact_url' is not a usable web address")
        return BookingTerms("contact", "web", url, "book_contact")
    if site.contact_email:
        address = mail_address(site.contact_email)
        if not address:
            raise ConfigError(f"{where}'site.contact_email' is not one plain e-mail address")
        return BookingTerms("contact", "mail", address, "book_contact_email", site.contact_email)
    if site.contact_phone:
        number = re.sub(r"[^0-9+]", "", site.contact_phone)
        return BookingTerms(
            "contact", "tel", f"tel:{number}", "book_contact_phone", site.contact_phone
        )
    return NO_CONTACT


def course_booking(
    order: Iterable[str], contact: BookingTerms, external: str, email: str, kursguiden: str
) -> BookingTerms:
    """The first path of ``order`` (``publish.booking``) the course has, else ``contact``.
    The addresses have passed the readers (an unusable one is "", with its anomaly), so an
    unsafe address falls through to the next path here."""
    found = {
        "external": ("web", external),
        "email": ("mail", email),
        "kursguiden": ("web", kursguiden),
    }
    for kind_of_path in order:
        via, target = found[kind_of_path]
        if target:
            return BookingTerms(kind_of_path, via, target, PATH_WORDS[kind_of_path])
    return contact


def booking_path(terms: BookingTerms, title: str, day: date) -> BookingPath:
    """A date's ``BookingPath``: an e-mail link's subject names the course and the day."""
    if terms.via == "mail":
        subject = quote(f"{title} {day.isoformat()}", safe="")
        url = link_target(f"mailto:{terms.target}?subject={subject}")
    else:
        url = terms.target
    return BookingPath(terms.kind, url, terms.words, terms.contact)


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
    index: int
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
        for table, more in ((self.locations, other.locations), (self.places, other.places)):
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
    same = _Interned()  # equal days, times, seats … between records, kept once
    drafts = Drafts()
    for cid, record in courses.items():
        drafts.courses[cid] = _draft_course(cid, record, rules, words, shared)
    copies: dict[int, tuple[int, Mapping, Mapping]] = {}
    for did, record in dates.items():
        seen = same(first_seen.get(did))
        since = unchanged_since.get(did)
        as_of = same(since.astimezone(zone)) if since is not None else None
        drafts.dates[did] = _draft_date(did, record, rules, (seen, as_of), shared, same)
        if not isinstance(did, int) or not isinstance(record, dict):
            continue
        location = record.get("location")
        lid = _id(location.get("id")) if isinstance(location, dict) else None
        if lid is not None and (lid not in copies or did > copies[lid][0]):
            copies[lid] = (did, record, location)
        place = record.get("place")
        if isinstance(place, dict) and (pid := _id(place.get("id"))) is not None:
            title = _clean_line(place.get("title"))
            if _has_words(title) and (pid not in drafts.places or did > drafts.places[pid][0]):
                # "-p<id>": a place's address can never take a location's ("<title>-<id>").
                slug = f"{slugify(title) or 'sted'}-p{pid}"
                # A negative id: never the same venue as a location with the place's number.
                drafts.places[pid] = (did, Venue(-pid, title, "", "", title, slug))
    for lid, (did, record, location) in copies.items():
        drafts.locations[lid] = (did, _read_location(lid, record, location, words))
    return drafts


class _Interned(dict):
    """Equal values made once: a date's days, times, seats and sessions are mostly equal to
    another's, and a kept draft (modelcache.py) is read back faster with fewer objects."""

    def __call__(self, value: object) -> object:
        if value is None:
            return None
        # Equal is not enough for moments: the same instant in two zones, or at a fold.
        key = (type(value), value, getattr(value, "tzinfo", None), getattr(value, "fold", 0))
        return self.setdefault(key, value)


def _anomalies(found: Anomalies) -> tuple[Anomaly, ...]:
    return tuple(found) if found else ()


def _draft_course(
    cid: object, record: object, rules: DraftRules, words: Locale, shared: dict[bytes, object]
) -> CourseDraft:
    name = f"course {cid}"
    found = Anomalies()
    if not usable_id(cid):
        found.add(COURSE_ID, name, "id", cid)
        return CourseDraft(cid, _anomalies(found))
    if not isinstance(record, dict):
        found.add(WRONG_TYPE, name, "(record)", record)
        return CourseDraft(cid, _anomalies(found))
    if not _course_is_public(record, rules.rules, found, name):
        return CourseDraft(cid, _anomalies(found))
    assert isinstance(cid, int)
    price = _price(record, found, name)
    booking_url = _web_address(record, "external_booking_url", found, name)
    booking_email = _mail_address(record, "email_booking", found, name)
    kursguiden_url = _web_address(record, "kursguiden_url", found, name)
    booking = course_booking(
        rules.rules.booking, rules.contact, booking_url, booking_email, kursguiden_url
    )
    raw_title = _plain(record, "title", found, name)
    title = raw_title if _has_words(raw_title) else ""
    if not title:
        found.add(COURSE_TITLE, name, "title", record.get("title"))
    elif not slugify(title):
        found.add(NO_SLUG, name, "title", title)
    categories = _categories(record, name, found)
    course = Course(
        id=cid,
        title=title or words.t("untitled_course", id=cid),
        slug=slug_with_id(title, cid, "kurs"),
        reference=_plain(record, "reference", found, name),
        lead=plain_text(_rich(record, "text_lead", found, name), limit=LEAD_LIMIT),
        description_html=sanitize_html(_rich(record, "text_description", found, name)),
        prerequisites_html=sanitize_html(_rich(record, "text_prerequisites", found, name)),
        audience_html=sanitize_html(_rich(record, "text_audience", found, name)),
        categories=(),
        price=price,
        dates=(),
        updated_at=_moment(record, "updated_at", ZoneInfo(rules.timezone), found, name),
        duration=_duration(record, found, name),
        form_of_teaching=_form_of_teaching(record, found, name),
        language=_language(record, words, found, name),
        more_info_url=_web_address(record, "external_more_info_url", found, name),
        kursguiden_url=kursguiden_url,
        custom_properties=_custom_properties(record, name, found),
        extra=_extra(record, COURSE_TYPED_FIELDS, shared),
    )
    return CourseDraft(
        cid, _anomalies(found), course, categories, booking_url, booking_email, booking
    )


# --- courses --------------------------------------------------------------------------------


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


def _categories(record: Mapping, name: str, found: Anomalies) -> tuple[tuple[int, str], ...]:
    """The record's usable categories as (id, title); the unusable ones are noted."""
    result = []
    for index, raw in enumerate(_list(record, "categories", found, name)):
        field = f"categories[{index}]"
        category_id = _id(raw.get("id")) if isinstance(raw, dict) else None
        title = _clean_line(raw.get("title")) if isinstance(raw, dict) else ""
        if category_id is None or not _has_words(title):
            found.add(CATEGORY, name, field, raw)
            continue
        result.append((category_id, title))  # one that makes no address: see summarize
    return tuple(result)


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


def _custom_properties(record: Mapping, name: str, found: Anomalies) -> Fields:
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


def _extra(record: Mapping, typed: frozenset[str], shared: dict[bytes, object]) -> Fields:
    """The record's fields the model does not type, as the API sent them; a value equal to
    another record's (its venue, its language) is kept once."""
    left_out = typed | PERSONAL_FIELDS
    values = [(key, value) for key, value in record.items() if key not in left_out]
    return Fields(values, shared=shared) if values else NO_FIELDS


# --- dates ----------------------------------------------------------------------------------


def _draft_date(
    did: object,
    record: object,
    rules: DraftRules,
    stamps: tuple[datetime | None, datetime | None],
    shared: dict[bytes, object],
    same: _Interned,
) -> DateDraft:
    """``stamps``: when a fetch first saw the date, and since when its record is unchanged
    (in the catalog's zone)."""
    first_seen, seats_as_of = stamps
    name = f"course date {did}"
    found = Anomalies()
    top = isinstance(record, dict) and _is_top_date(record)
    if not usable_id(did):
        found.add(DATE_ID, name, "coursedate_id", did)
        return DateDraft(did, _anomalies(found), top=top)
    if not isinstance(record, dict):
        found.add(WRONG_TYPE, name, "(record)", record)
        return DateDraft(did, _anomalies(found))
    if not _date_is_listed(record, found, name):
        return DateDraft(did, _anomalies(found), top=top)
    raw_parent = record.get("parent_id")
    zoned = Anomalies()
    zone_name = _zone_name(record, rules.timezone, zoned, name)
    zone = ZoneInfo(zone_name)
    start = _day(record, "start_at", zone, found, name)  # a missing start is reported by role
    closing = Anomalies()
    deadline = _day(record, "deadline_at", zone, closing, name)
    closed = Anomalies()
    closed_visible = _read_flag(record, "visible_when_passed_deadline", False, closed, name)
    placed = Anomalies()
    venue = _venue_ref(record, placed, name)
    clocked = Anomalies()
    clock_start = _clock(record, "start_time_at", clocked, name)
    clock_end = _clock(record, "end_time_at", clocked, name)
    rest = Anomalies()
    last_day = _day(record, "end_at", zone, rest, name)
    end_date = end_time = None
    if start is not None:
        if last_day is not None and last_day < start:
            rest.add(END_BEFORE_START, name, "end_at", record.get("end_at"))
        end_date = _end_day(start, last_day)
        end_time = clock_end
        if clock_start and clock_end and clock_end < clock_start and end_date in (None, start):
            rest.add(END_BEFORE_START, name, "end_time_at", record.get("end_time_at"))
            end_time = None
    gatherings = tuple(
        _draft_gathering(index, gathering, zone, name, same)
        for index, gathering in enumerate(_list(record, "gatherings", rest, name))
        if isinstance(gathering, dict)
    )
    status = _status(record, rules.rules, rest, name)
    seats = _seats(record, rules.rules, rest, name)
    instructors = _instructors(record, rest, name)
    updated_at = _moment(record, "updated_at", zone, rest, name)
    linked = Anomalies()
    event_url = _web_address(record, "event_url", linked, name)
    custom_properties = _custom_properties(record, name, rest)
    raw_course = record.get("course_id")
    return DateDraft(
        did,
        _anomalies(found),
        listed=True,
        top=top,
        parent=None if top else _int(raw_parent),
        parent_raw=None if top else raw_parent,
        course_id=_int(raw_course),
        course_raw=raw_course,
        timezone=same(zone_name),
        zone_anomalies=_anomalies(zoned),
        start=same(start),
        start_raw=record.get("start_at"),
        deadline=same(deadline),
        deadline_anomalies=_anomalies(closing),
        closed_visible=closed_visible,
        closed_anomalies=_anomalies(closed),
        venue=venue,
        venue_anomalies=_anomalies(placed),
        clock_start=same(clock_start),
        clock_end=same(clock_end),
        clock_anomalies=_anomalies(clocked),
        end_date=same(end_date),
        end_time=same(end_time),
        gatherings=gatherings,
        event_url=event_url,
        event_url_anomalies=_anomalies(linked),
        status=same(status),
        seats=same(seats),
        instructors=same(instructors),
        updated_at=same(updated_at),
        first_seen=first_seen,
        seats_as_of=seats_as_of,
        custom_properties=custom_properties,
        extra=_extra(record, DATE_TYPED_FIELDS, shared),
        published_anomalies=_anomalies(rest),
    )


def _date_is_listed(record: Mapping, found: Anomalies, name: str) -> bool:
    """The date rules that need no clock: visible, and not soft-deleted."""
    return _read_flag(record, "is_visible", True, found, name) and not record.get("deleted_at")


def _is_top_date(record: object) -> bool:
    return isinstance(record, dict) and (
        _is_empty(record.get("parent_id")) or record.get("parent_id") == 0
    )


def _draft_gathering(
    index: int, record: Mapping, zone: ZoneInfo, name: str, same: _Interned
) -> GatheringDraft:
    field = f"gatherings[{index}]"
    raw_start = record.get("gathering_at")
    start = parse_moment(_scalar(raw_start), zone)
    if start is None:
        return GatheringDraft(index, raw_start, None, ())
    end = parse_moment(_scalar(record.get("gathering_end_at")), zone)
    location = record.get("location")
    title = ""
    if isinstance(location, dict):
        title = _clean_line(location.get("custom_title")) or _clean_line(location.get("title"))
    found = Anomalies()
    if end is None and not _is_empty(record.get("gathering_end_at")):
        found.add(DAY_UNREADABLE, name, f"{field}.gathering_end_at", record["gathering_end_at"])
    elif end is not None and end < start:
        found.add(END_BEFORE_START, name, f"{field}.gathering_end_at", record["gathering_end_at"])
        end = None
    session = Session(
        same(start.date()), same(start.time()), same(end.time() if end else None), title
    )
    return GatheringDraft(index, raw_start, same(session), _anomalies(found))


def _venue_ref(record: Mapping, found: Anomalies, name: str) -> VenueRef | None:
    """The location, else the place (an area), else nothing: never an invented town."""
    online = _read_flag(record, "is_virtual", False, found, name)
    location = _object(record, "location", found, name)
    if location is not None:
        lid = _id(location.get("id"))
        if lid is not None:  # this record embeds it, so the location table has it
            return VenueRef("location", lid, online)
        found.add(VENUE, name, "location.id", location.get("id"))
    place = _object(record, "place", found, name) or {}
    place_title = _clean_line(place.get("title"))
    pid = _id(place.get("id"))
    if not _has_words(place_title) or pid is None:
        if _has_words(place_title) and not online:
            found.add(VENUE, name, "place.id", place.get("id"))
        # Online without a place: a venue that shows as "online" and has no page.
        return VenueRef("online", 0, True) if online else None
    return VenueRef("place", pid, online)


def _read_location(lid: int, record: Mapping, location: Mapping, words: Locale) -> LocationDraft:
    found = Anomalies()
    title = _clean_line(location.get("custom_title")) or _clean_line(location.get("title"))
    if not _has_words(title):
        found.add(VENUE_TITLE, f"venue {lid}", "title", location.get("title"))
        title = ""
    elif not slugify(title):
        found.add(NO_SLUG, f"venue {lid}", "title", title)
    place = record.get("place") if isinstance(record.get("place"), dict) else {}
    venue = Venue(
        id=lid,
        title=title or words.t("untitled_venue", id=lid),
        address=_clean_line(location.get("address")),
        zipcode=_clean_line(location.get("zipcode")),
        city=_clean_line(location.get("city")) or _clean_line(place.get("title")),
        slug=slug_with_id(title, lid, "sted"),
        is_online=_read_flag(location, "is_virtual", False, found, f"venue {lid}"),
    )
    return LocationDraft(venue, _anomalies(found))


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


# --- the catalog at a moment: drafts put together ---------------------------------------------
#
# The drafts of a snapshot come in parts (its shards; one part for a snapshot in memory).
# Each part is assembled on its own (``assemble_part``: its courses and their dates at this
# moment), reading what it needs of the others from ``Tables`` (made from every part's
# ``Summary``); then the cities are merged over all parts and the parts' courses combined into
# the catalog (``combine``). A part's output records everything it read (the days it holds
# for, the venues and categories it looked up), so a build that kept it (modelcache.py) can
# tell, without reading the part's drafts, that it would be assembled the same again.


@dataclass(frozen=True)
class Summary:
    """What a part's drafts tell the others, small enough to keep beside its output."""

    course_ids: frozenset
    published: frozenset[int]
    top_ids: frozenset
    #: Category id → (lowest course id naming it, that course's title for it).
    titles: Mapping[int, tuple[int, str]]
    #: Category id → (lowest course id with a title for it that makes no address, that title).
    unaddressable: Mapping[int, tuple[int, str]]
    locations: Mapping[int, tuple[int, LocationDraft]]
    places: Mapping[int, tuple[int, Venue]]
    #: Course ids its dates name and parent ids its sub-dates name that are not its own.
    foreign_courses: frozenset
    foreign_parents: frozenset

    @property
    def linked(self) -> bool:
        """Whether it names records of other parts (then it is always assembled again)."""
        return bool(self.foreign_courses or self.foreign_parents)


def summarize(drafts: Drafts) -> Summary:
    published = sorted(cid for cid, d in drafts.courses.items() if d.course is not None)
    titles: dict[int, tuple[int, str]] = {}
    unaddressable: dict[int, tuple[int, str]] = {}
    for cid in published:
        for category_id, title in drafts.courses[cid].categories:
            titles.setdefault(category_id, (cid, title))
            if not slugify(title):
                unaddressable.setdefault(category_id, (cid, title))
    top_ids = frozenset(did for did, d in drafts.dates.items() if d.top)
    foreign_courses, foreign_parents = set(), set()
    for draft in drafts.dates.values():
        if not draft.listed:
            continue
        if draft.top:
            if draft.course_id is not None and draft.course_id not in drafts.courses:
                foreign_courses.add(draft.course_id)
        elif draft.parent is not None and draft.parent != draft.id and draft.parent not in top_ids:
            foreign_parents.add(draft.parent)
    return Summary(
        course_ids=frozenset(drafts.courses),
        published=frozenset(published),
        top_ids=top_ids,
        titles=titles,
        unaddressable=unaddressable,
        locations=dict(drafts.locations),
        places=dict(drafts.places),
        foreign_courses=frozenset(foreign_courses),
        foreign_parents=frozenset(foreign_parents),
    )


@dataclass(frozen=True)
class Tables:
    """What every part reads of all the parts: venues, categories, and the few records one
    part names in another (dates of a course kept elsewhere, sub-dates of a date elsewhere)."""

    locations: Mapping[int, LocationDraft]
    places: Mapping[int, Venue]
    categories: Mapping[int, Category]
    course_ids: Container
    top_ids: Container
    #: Top dates of other parts, by the course id they name; sub-dates, by their parent.
    dates_for: Mapping[object, tuple[DateDraft, ...]]
    children_for: Mapping[object, tuple[DateDraft, ...]]

    @classmethod
    def of(cls, summaries: Iterable[Summary], linked: Iterable[Drafts] = ()) -> Tables:
        """The tables of these parts; ``linked`` are the drafts of every linked part."""
        summaries = list(summaries)
        locations: dict[int, tuple[int, LocationDraft]] = {}
        places: dict[int, tuple[int, Venue]] = {}
        titles: dict[int, tuple[int, str]] = {}
        for summary in summaries:
            for table, more in ((locations, summary.locations), (places, summary.places)):
                for key, entry in more.items():
                    if key not in table or entry[0] > table[key][0]:
                        table[key] = entry
            for category_id, entry in summary.titles.items():
                if category_id not in titles or entry[0] < titles[category_id][0]:
                    titles[category_id] = entry
        categories = {
            category_id: Category(category_id, title, slug_with_id(title, category_id, "kategori"))
            for category_id, (_, title) in titles.items()
        }
        course_ids: set = set()
        top_ids: set = set()
        linking = [s for s in summaries if s.linked]
        if linking:  # only then does a part look up another's records
            for summary in summaries:
                course_ids |= summary.course_ids
                top_ids |= summary.top_ids
        wanted_courses = frozenset().union(*(s.foreign_courses for s in linking))
        wanted_parents = frozenset().union(*(s.foreign_parents for s in linking))
        dates_for: dict[object, list[DateDraft]] = defaultdict(list)
        children_for: dict[object, list[DateDraft]] = defaultdict(list)
        for drafts in linked:
            away: set = set()  # its tops whose course is in another part
            for draft in drafts.dates.values():
                cid = draft.course_id
                if (
                    draft.listed
                    and draft.top
                    and cid in wanted_courses
                    and cid not in drafts.courses
                ):
                    dates_for[cid].append(draft)
                    away.add(draft.id)
            for draft in drafts.dates.values():
                if not draft.listed or draft.top or draft.parent is None:
                    continue
                own = drafts.dates.get(draft.parent)
                if draft.parent in away or (
                    draft.parent in wanted_parents and (own is None or not own.top)
                ):
                    children_for[draft.parent].append(draft)
        return cls(
            locations={lid: entry for lid, (_, entry) in locations.items()},
            places={pid: venue for pid, (_, venue) in places.items()},
            categories=categories,
            course_ids=course_ids,
            top_ids=top_ids,
            dates_for={k: tuple(v) for k, v in dates_for.items()},
            children_for={k: tuple(v) for k, v in children_for.items()},
        )

    def anomalies(self, summaries: Iterable[Summary], used_locations: Iterable[int]) -> list:
        """The odd data of records shared by parts: category titles that make no address,
        and the locations published dates are held at."""
        found = Anomalies()
        unaddressable: dict[int, tuple[int, str]] = {}
        for summary in summaries:
            for category_id, entry in summary.unaddressable.items():
                if category_id not in unaddressable or entry[0] < unaddressable[category_id][0]:
                    unaddressable[category_id] = entry
        for category_id, (_, title) in sorted(unaddressable.items()):
            found.add(NO_SLUG, f"category {category_id}", "title", title)
        for lid in sorted(set(used_locations)):
            found.extend(self.locations[lid].anomalies)
        return list(found)


#: One published date before the cities are merged: (draft, venue, sessions, deadline
#: passed, online URL).
Pending = tuple[DateDraft, Venue | None, tuple[Session, ...], bool, str]


@dataclass
class PartOutput:
    """A part's share of the catalog at a moment, and everything it was made from besides its
    drafts: kept between builds (modelcache.py), it is reused while all of it still holds."""

    courses: list[Course]
    anomalies: tuple[Anomaly, ...]
    #: Per zone, the first and the last day (in that zone) for which it holds.
    days: dict[str, tuple[date, date]]
    #: The venues and categories it looked up in the tables, as they were.
    read: dict[tuple[str, int], object]
    #: The locations its published dates are held at (their odd data is reported once).
    used_locations: frozenset[int]
    #: Its published dates' venues (not online) before and after the cities were merged.
    venues: dict[int, Venue]
    merged: dict[int, Venue]

    def holds_at(self, now: datetime) -> bool:
        return all(
            first <= now.astimezone(ZoneInfo(zone)).date() <= last
            for zone, (first, last) in self.days.items()
        )

    def reads_the_same(self, tables: Tables) -> bool:
        for (table, key), value in self.read.items():
            if table == "location":
                found = tables.locations.get(key)
                if found is None or found.venue != value:
                    return False
            elif (tables.places if table == "place" else tables.categories).get(key) != value:
                return False
        return True

    def merges_the_same(self, merge: CityMerge) -> bool:
        return all(merge.renamed.get(vid, self.venues[vid]) == v for vid, v in self.merged.items())


class PartAt:
    """One part of the drafts at a moment, before the cities are merged: which of its dates
    are published, with what; then (``finish``) its courses."""

    def __init__(self, drafts: Drafts, tables: Tables, now: datetime) -> None:
        self.drafts, self.tables, self.now = drafts, tables, now
        self.found = Anomalies()
        self.days: dict[str, tuple[date, date]] = {}
        self.read: dict[tuple[str, int], object] = {}
        self.used_locations: set[int] = set()
        self._today: dict[str, date] = {}
        self._online: dict[Venue, Venue] = {}
        self.pending: dict[int, list[Pending]] = self._published()
        self.venues = {
            venue.id: venue
            for entries in self.pending.values()
            for _, venue, *_ in entries
            if venue is not None and not venue.is_online
        }

    def finish(self, merge: CityMerge, before: Mapping[int, Course] | None = None) -> PartOutput:
        """Its courses with their published dates, the cities merged. ``before`` are the
        courses the same drafts gave the last time: objects made from the same inputs are
        taken from there (with their fingerprints) rather than made again."""
        old_dates = {d.id: d for c in (before or {}).values() for d in c.dates}
        merged: dict[int, Venue] = {}
        courses = []
        for cid, draft in self.drafts.courses.items():
            if draft.course is None:
                continue
            terms = DateTerms(
                draft.course.price,
                draft.booking_url,
                draft.booking_email,
                draft.booking,
                draft.course.title,
            )
            made = []
            for date_draft, venue, sessions, passed, online_url in self.pending.get(cid, ()):
                if venue is not None and not venue.is_online:
                    venue = merged[venue.id] = merge.renamed.get(venue.id, venue)
                old = old_dates.get(date_draft.id)
                if old is None or not _same_date_inputs(
                    old, cid, terms, venue, sessions, passed, online_url
                ):
                    old = _course_date(date_draft, cid, terms, venue, sessions, passed, online_url)
                made.append(old)
            made.sort(key=lambda d: d.sort_key)
            categories = tuple(
                sorted(
                    {self._category(category_id) for category_id, _ in draft.categories},
                    key=lambda c: (c.title, c.id),
                )
            )
            course = (before or {}).get(cid)
            if (
                course is None
                or course.categories != categories
                or len(course.dates) != len(made)
                or any(a is not b for a, b in zip(course.dates, made, strict=True))
            ):
                course = replace(draft.course, categories=categories, dates=tuple(made))
            courses.append(course)
        return PartOutput(
            courses=courses,
            anomalies=tuple(self.found),
            days=self.days,
            read=self.read,
            used_locations=frozenset(self.used_locations),
            venues=self.venues,
            merged=merged,
        )

    def _category(self, category_id: int) -> Category:
        category = self.tables.categories[category_id]
        self.read[("category", category_id)] = category
        return category

    def _published(self) -> dict[int, list[Pending]]:
        found, drafts, tables = self.found, self.drafts, self.tables
        for draft in drafts.courses.values():
            found.extend(draft.anomalies)
        tops: list[DateDraft] = []
        children: dict[object, list[DateDraft]] = defaultdict(list)
        for draft in drafts.dates.values():
            if draft.anomalies:
                found.extend(draft.anomalies)
            if not draft.listed:
                continue
            if draft.top:
                tops.append(draft)
                continue
            parent = draft.parent
            own = drafts.dates.get(parent)
            if parent is None or parent == draft.id:
                found.add(DATE_PARENT, draft.name, "parent_id", draft.parent_raw)
            elif own is not None and own.top:
                children[parent].append(draft)
            elif parent not in tables.top_ids:
                found.add(DATE_PARENT, draft.name, "parent_id", draft.parent_raw)
            # else: a sub-date of a date in another part, which assembles it
        for cid in drafts.courses:
            tops.extend(tables.dates_for.get(cid, ()))
        result: dict[int, list[Pending]] = defaultdict(list)
        for draft in tops:
            cid = draft.course_id
            if cid not in drafts.courses:
                if cid is None or cid not in tables.course_ids:
                    found.add(DATE_COURSE, draft.name, "course_id", draft.course_raw)
                continue  # else: the date of a course in another part, which assembles it
            if drafts.courses[cid].course is None:
                continue  # the course is not published, and so neither are its dates
            found.extend(draft.zone_anomalies)
            subs = [*children.get(draft.id, ()), *tables.children_for.get(draft.id, ())]
            published = self._at(draft, sorted(subs, key=lambda c: c.id))
            if published is not None:
                result[cid].append(published)
        return result

    def _at(self, draft: DateDraft, children: list[DateDraft]) -> Pending | None:
        found = self.found
        zone_name = draft.timezone
        today = self._today_in(zone_name)
        start = draft.start
        if start is None:
            # A date without a start day cannot be listed or sorted.
            found.add(DATE_START, draft.name, "start_at", draft.start_raw)
            return None
        if start > today + PLAUSIBLE:
            # "9999-12-31" is a placeholder, and a year after it no calendar can hold.
            self._holds(zone_name, None, _shift(start, -PLAUSIBLE - ONE_DAY))
            found.add(DATE_START, draft.name, "start_at", draft.start_raw)
            return None
        if start < today:
            self._holds(zone_name, _shift(start, ONE_DAY), None)
            return None
        self._holds(zone_name, _shift(start, -PLAUSIBLE), start)
        found.extend(draft.deadline_anomalies)
        passed = draft.deadline is not None and draft.deadline < today
        if draft.deadline is not None:
            if passed:
                self._holds(zone_name, _shift(draft.deadline, ONE_DAY), None)
            else:
                self._holds(zone_name, None, draft.deadline)
        if passed:
            found.extend(draft.closed_anomalies)
            if not draft.closed_visible:
                return None
        found.extend(draft.venue_anomalies)
        found.extend(draft.clock_anomalies)
        found.extend(draft.published_anomalies)
        venue = self._venue(draft.venue)
        sessions = []
        zone = ZoneInfo(zone_name)
        for child in children:
            raw = child.start_raw
            day = parse_day(raw, zone) if isinstance(raw, str) and raw else None
            if day is None or not self._near(zone_name, day, today):
                found.add(SESSION, child.name, "start_at", raw)
                continue
            found.extend(child.venue_anomalies)
            found.extend(child.clock_anomalies)
            place = self._venue(child.venue)
            title = place.title if place else ""
            sessions.append(Session(day, child.clock_start, child.clock_end, title))
        for gathering in draft.gatherings:
            session = gathering.session
            if session is None or not self._near(zone_name, session.start_date, today):
                field = f"gatherings[{gathering.index}].gathering_at"
                found.add(SESSION, draft.name, field, gathering.raw_start)
                continue
            found.extend(gathering.anomalies)
            sessions.append(session)
        sessions.sort(key=lambda s: (s.start_date, s.start_time or time.min))
        online_url = ""
        if venue is not None and venue.is_online:
            online_url = draft.event_url
            found.extend(draft.event_url_anomalies)
        return (draft, venue, tuple(sessions), passed, online_url)

    def _near(self, zone: str, day: date, today: date) -> bool:
        """Whether a session's day is within 10 years of today (else it is dropped)."""
        if day < today - PLAUSIBLE:
            self._holds(zone, _shift(day, PLAUSIBLE + ONE_DAY), None)
            return False
        if day > today + PLAUSIBLE:
            self._holds(zone, None, _shift(day, -PLAUSIBLE - ONE_DAY))
            return False
        self._holds(zone, _shift(day, -PLAUSIBLE), _shift(day, PLAUSIBLE))
        return True

    def _holds(self, zone: str, first: date | None, last: date | None) -> None:
        """Narrow the days (in ``zone``) for which this part's output holds."""
        low, high = self.days.get(zone, (date.min, date.max))
        self.days[zone] = (max(low, first or date.min), min(high, last or date.max))

    def _today_in(self, zone: str) -> date:
        """ "Today" in a date's own zone: a course in Europe/Oslo starts "today" by Oslo's
        calendar, wherever the build runs."""
        if zone not in self._today:
            self._today[zone] = self.now.astimezone(ZoneInfo(zone)).date()
            self._holds(zone, None, None)
        return self._today[zone]

    def _venue(self, ref: VenueRef | None) -> Venue | None:
        if ref is None:
            return None
        if ref.kind == "location":
            self.used_locations.add(ref.id)
            venue = self.tables.locations[ref.id].venue
            self.read[("location", ref.id)] = venue
            return self._as_online(venue) if ref.online and not venue.is_online else venue
        if ref.kind == "place":
            venue = self.tables.places[ref.id]
            self.read[("place", ref.id)] = venue
            return self._as_online(venue) if ref.online else venue
        return ONLINE_ONLY

    def _as_online(self, venue: Venue) -> Venue:
        if venue not in self._online:
            self._online[venue] = replace(venue, is_online=True)
        return self._online[venue]


ONE_DAY = timedelta(days=1)


def _shift(day: date, delta: timedelta) -> date:
    """``day + delta``, held at the calendar's ends (a bound beyond them is no bound)."""
    try:
        return day + delta
    except OverflowError:
        return date.max if delta > timedelta(0) else date.min


#: The venue of an online date that names neither a location nor a place: no page.
ONLINE_ONLY = Venue(0, "", "", "", "", "sted-p0", is_online=True)


class DateTerms(NamedTuple):
    """What a date takes from its course: the price, the booking address and e-mail, how it
    is booked, and the title (an e-mail link's subject names the course)."""

    price: Price | None
    booking_url: str
    booking_email: str
    booking: BookingTerms
    title: str


def _booking(
    terms: DateTerms, status: str, passed: bool, seats: Seats, day: date
) -> BookingPath | None:
    """The date's booking path, or None when it cannot be booked (canceled, postponed, of
    an unknown status, past its deadline, fully booked)."""
    if status not in ("scheduled", "tbd") or passed or seats.state == "full":
        return None
    return booking_path(terms.booking, terms.title, day)


def _same_date_inputs(
    made: CourseDate,
    course_id: int,
    terms: DateTerms,
    venue: Venue | None,
    sessions: tuple[Session, ...],
    passed: bool,
    online_url: str,
) -> bool:
    """Whether ``made`` (from the same draft) is what these inputs would make again."""
    return (
        made.course_id == course_id
        and (made.price, made.booking_url, made.booking_email)
        == (terms.price, terms.booking_url, terms.booking_email)
        and made.booking == _booking(terms, made.status, passed, made.seats, made.start_date)
        and made.venue == venue
        and made.sessions == sessions
        and made.deadline_passed == passed
        and made.online_url == online_url
    )


def _course_date(
    draft: DateDraft,
    course_id: int,
    terms: DateTerms,
    venue: Venue | None,
    sessions: tuple[Session, ...],
    deadline_passed: bool,
    online_url: str,
) -> CourseDate:
    return CourseDate(
        id=draft.id,
        course_id=course_id,
        start_date=draft.start,
        start_time=draft.clock_start,
        end_date=draft.end_date,
        end_time=draft.end_time,
        timezone=draft.timezone,
        deadline=draft.deadline,
        status=draft.status,
        deadline_passed=deadline_passed,
        venue=venue,
        seats=draft.seats,
        price=terms.price,
        booking_url=terms.booking_url,
        booking_email=terms.booking_email,
        booking=_booking(terms, draft.status, deadline_passed, draft.seats, draft.start),
        sessions=sessions,
        instructors=draft.instructors,
        updated_at=draft.updated_at,
        first_seen=draft.first_seen,
        seats_as_of=draft.seats_as_of,
        online_url=online_url,
        custom_properties=draft.custom_properties,
        extra=draft.extra,
    )


@dataclass(frozen=True)
class CityMerge:
    """One city per spelling group (see ``city_key``): the venues whose city is spelled
    otherwise, renamed; each venue's city; the odd city names found."""

    renamed: Mapping[int, Venue]
    city_of: Mapping[int, City]
    anomalies: tuple[Anomaly, ...]


def merge_cities(venues: Mapping[int, Venue]) -> CityMerge:
    """A city has no id, so its spellings are merged by a key: one page per city under its
    most frequent spelling, with a slug made from the key so it stays put."""
    found = Anomalies()
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    key_of: dict[int, str] = {}
    for vid in sorted(venues):
        venue = venues[vid]
        key = city_key(venue.city)
        if key:
            spellings[key][venue.city] += 1
            key_of[vid] = key
        elif venue.city:
            found.add(CITY, _venue_name(venue), "city", venue.city)
    cities = {}
    for key, counts in spellings.items():
        # The most frequent spelling; between equals, one that is not all capitals or
        # all small letters, then the first in code-point order: stable for equal data.
        shown = min(counts, key=lambda s: (-counts[s], s.isupper() or s.islower(), s))
        cities[key] = City(shown, keyed_slug(shown, key, "by"))
    renamed = {}
    for vid, venue in venues.items():
        key = key_of.get(vid)
        city = cities[key].name if key else ""
        if key and venue.city != city:
            found.add(CITY_VARIANTS, _venue_name(venue), "city", venue.city)
        if venue.city != city:
            renamed[vid] = replace(venue, city=city)
    city_of = {vid: cities[key] for vid, key in key_of.items()}
    return CityMerge(renamed, city_of, tuple(found))


def assemble(
    drafts: Drafts,
    *,
    now: datetime,
    fetched_at: datetime | None = None,
    anomalies: Anomalies | None = None,
) -> Catalog:
    """The catalog at ``now`` from the drafts of every record, as one part: which dates are
    published (started, closed for booking), with which venues, cities and categories."""
    summary = summarize(drafts)
    tables = Tables.of([summary], [drafts] if summary.linked else [])
    part = PartAt(drafts, tables, now)
    merge = merge_cities(part.venues)
    output = part.finish(merge)
    return combine([output], tables, [summary], merge, now, fetched_at, anomalies)


def combine(
    outputs: Iterable[PartOutput],
    tables: Tables,
    summaries: Iterable[Summary],
    merge: CityMerge,
    now: datetime,
    fetched_at: datetime | None,
    anomalies: Anomalies | None = None,
) -> Catalog:
    """The catalog of the parts' courses, with the odd data of them all in ``anomalies``."""
    outputs = list(outputs)
    found = anomalies if anomalies is not None else Anomalies()
    courses: list[Course] = []
    used: set[int] = set()
    for output in outputs:
        found.extend(output.anomalies)
        courses.extend(output.courses)
        used |= output.used_locations
    found.extend(tables.anomalies(summaries, used))
    found.extend(merge.anomalies)
    courses.sort(key=lambda c: (c.title.casefold(), c.id))
    return _catalog(courses, tables.categories, merge.city_of, now, fetched_at)


def _catalog(
    courses: list[Course],
    categories: Mapping[int, Category],
    city_of: Mapping[int, City],
    now: datetime,
    fetched_at: datetime | None,
) -> Catalog:
    """The catalog of these courses (in the order shown), with its indexes and filters."""
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
            city = city_of.get(d.venue.id)
            if city is not None and city.slug not in seen_cities:
                seen_cities.add(city.slug)
                by_city[city.slug].append(course)
    cities = {city.slug: city for v in venue_list.values() if (city := city_of.get(v.id))}

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
        fetched_at=fetched_at,
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
