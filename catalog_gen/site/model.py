"""The catalog model: the typed records every template sees, and nothing else.

These frozen dataclasses are what ``build_catalog`` (catalog.py) makes of a snapshot's raw
records, after every publishing rule has been applied. Templates read them (``course``,
``catalog``, ``d`` in a dates table); the page digests fingerprint them field by field
(buildstate.py), so a field a template can read is a field whose change renders a page again.
The one exception is a field declared ``derived`` (an index of the catalog, a pagination's
link maker): it is left out of ``repr`` and of the digests, and is a function of fields that
are in them.

Every field carries a ``#:`` comment: docs/templates.md is generated from them
(``python -m tools.reference``), so a field without one fails a test.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, cast

import orjson

from catalog_gen.site.slugs import slugify
from catalog_gen.snapshot import canonical_bytes


def derived(source: str) -> dict[str, str]:
    """Field metadata for a field left out of ``repr`` and of the page digests because it is
    computed from ``source``, which is in them (buildstate.py; a test holds every field with
    ``repr=False`` to this): ``field(repr=False, metadata=derived("courses"))``."""
    return {"derived_from": source}


class Fields(Mapping[str, Any]):
    """Named values from the API, read-only: custom properties, and a record's ``extra``.

    A mapping, ordered by name: ``'partner' in fields``, ``fields.items()``,
    ``fields.get('partner')``, ``fields|length``, ``fields|tojson``. A template reads a value
    as an attribute or an item (``course.custom_properties.partner``,
    ``course.custom_properties['partner']``), and a name the record lacks, or a ``null``,
    reads as ``BLANK`` there, all the way down (render.py): in Frontcore an empty property
    and an absent one are the same, and a provider clearing a property on one course must not
    fail a build. Python code gets the usual ``KeyError`` for a name that is not there.

    The values are a private copy of the JSON data (an object inside reads as a ``Fields``
    too, a list as a tuple), so nothing can change them once the model is built; a
    ``Fields`` is hashable and compares by content, like the frozen dataclasses that hold it.
    """

    __slots__ = ("_digest", "_values")

    def __init__(
        self,
        values: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
        *,
        shared: dict[bytes, Any] | None = None,
    ) -> None:
        """Copy ``values`` (JSON data). With ``shared``, equal objects and lists among the
        values of many records are kept once (the same venue on a thousand dates)."""
        values = dict(values)
        shared = {} if shared is None else shared
        self._values: dict[str, Any] = {key: _copied(values[key], shared) for key in sorted(values)}
        self._digest = hashlib.sha256(_canonical(self._values)).hexdigest()[:32]

    @classmethod
    def _view(cls, values: dict[str, Any]) -> Fields:
        """A read-only view of an object inside another ``Fields`` (never copied, never
        changed: the outer one owns it)."""
        view = cls.__new__(cls)
        view._values = values
        view._digest = ""
        return view

    def __getitem__(self, name: str) -> Any:
        return _read(self._values[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    @property
    def digest(self) -> str:
        """A digest of the values' canonical JSON (what the page digests use)."""
        if not self._digest:
            self._digest = hashlib.sha256(_canonical(self._values)).hexdigest()[:32]
        return self._digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other: object) -> bool:
        """Equal to a ``Fields`` or a dict with the same JSON data."""
        if isinstance(other, Fields):
            return self.digest == other.digest
        if not isinstance(other, Mapping):
            return NotImplemented
        try:
            return self == Fields(other)
        except TypeError:  # not JSON data
            return False

    def __repr__(self) -> str:
        return f"Fields({self._values!r})"

    def as_json(self) -> dict[str, Any]:
        """The values as plain JSON data (a copy; what ``tojson`` writes)."""
        # A mapping's canonical JSON reads back as an object: a dict.
        return cast(dict[str, Any], _loads(_canonical(self._values)))


class Blank(str):
    """What a template reads for a JSON ``null`` in custom properties or ``extra``, and for a
    field the record lacks: empty text that has every field, each blank too.

    So ``d.extra.location.lat`` reads as "" when the API sends ``"location": null`` (as it
    does for place-only dates), and ``d.extra.place.title_additional_info`` prints nothing
    rather than the word ``None``: a template written against one record's shape cannot be
    broken by another's (render.TemplateEnvironment hands out ``BLANK`` for any attribute
    or item of it). It is false, has length 0, and is "" in comparisons and joins.
    """

    __slots__ = ()

    def __new__(cls) -> Blank:
        return super().__new__(cls, "")

    def __repr__(self) -> str:
        return "BLANK"

    def __reduce__(self) -> str:
        return "BLANK"


#: The one blank value (see ``Blank``).
BLANK = Blank()


def _read(value: Any) -> Any:
    """A value of a ``Fields`` as it is handed out: objects as ``Fields``, lists as tuples,
    ``null`` as ``BLANK``."""
    if type(value) is dict:
        return Fields._view(value)
    if type(value) is list:
        return tuple(_read(item) for item in value)
    if value is None:
        return BLANK
    return value


def _copied(value: Any, shared: dict[bytes, Any]) -> Any:
    """A private copy of a JSON value (keys sorted at every level), the one already made when
    an equal value was: the canonical JSON is the key."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    canonical = _canonical(value)
    copy = shared.get(canonical)
    if copy is None:
        copy = shared[canonical] = _loads(canonical)
    return copy


def _canonical(value: Any) -> bytes:
    """A JSON value's canonical bytes (snapshot.canonical_bytes: the one canonical JSON)."""
    return canonical_bytes(value, _as_json)


def _loads(canonical: bytes) -> Any:
    try:
        return orjson.loads(canonical)
    except orjson.JSONDecodeError:  # an integer beyond 64 bits: a record made otherwise
        return json.loads(canonical.decode("utf-8", "surrogatepass"))


def _as_json(value: Any) -> Any:
    if isinstance(value, Fields):
        return value._values
    raise TypeError(f"{type(value).__name__} is not a JSON value")


#: The empty ``Fields``: a record with no custom properties, or nothing untyped.
NO_FIELDS = Fields()


def json_default(value: object) -> object:
    """``json.dumps``'s ``default`` for model values (``Fields``; dates as ISO text)."""
    if isinstance(value, Fields):
        return value.as_json()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass(frozen=True)
class Category:
    """A course category, as the provider names it."""

    #: The category's id in Frontcore.
    id: int
    #: Its name.
    title: str
    #: Its address segment: the title in ASCII plus the id (``helse-miljo-og-sikkerhet-11``).
    slug: str


@dataclass(frozen=True)
class Venue:
    """Where a date takes place: a Frontcore location, or a bare place/city when that is all."""

    #: The location's id; negative for a venue made from a place (an area) alone.
    id: int
    #: The venue's name (the location's custom title, else its title, else the place's).
    title: str
    #: The street address ("" when unknown).
    address: str
    #: The postal code ("" when unknown).
    zipcode: str
    #: The town: the location's city, else the place's name.
    city: str
    #: Its address segment (``kurssenteret-sem-6402``; ``oslo-p301`` for a place).
    slug: str
    #: Whether the date is held online (the date or the location says it is virtual).
    is_online: bool = False

    @property
    def full_address(self) -> str:
        """``Semsveien 1, 3170 Sem``: the parts there are, joined."""
        town = " ".join(part for part in (self.zipcode, self.city) if part)
        return ", ".join(part for part in (self.address, town) if part)


@dataclass(frozen=True)
class City:
    """A town with at least one venue: the city filter and ``by/<city>/`` lists."""

    #: The town's name, as the venues give it.
    name: str
    #: Its address segment (``oslo``).
    slug: str


@dataclass(frozen=True)
class Price:
    """A price in whole or decimal currency units, always with the API's own currency."""

    #: The amount; never zero (a zero price reads as "price on request": no Price at all).
    value: Decimal
    #: The ISO 4217 code (``NOK``).
    currency: str
    #: The provider's note on the price ("" when none).
    comment: str = ""


@dataclass(frozen=True)
class Seats:
    """Seat availability in three states plus unknown; ``free`` only when it may be shown."""

    #: ``available``, ``few``, ``full`` or ``unknown`` (no capacity set).
    state: str
    #: Free seats, when known and ``publish.show_seat_counts`` is on; else None.
    free: int | None = None

    @property
    def shown(self) -> bool:
        """Whether a page says anything about these seats: a count, "few" or "full" (then it
        also says how old they are: ``seats_as_of``)."""
        return self.state in ("full", "few") or (
            self.state == "available" and self.free is not None
        )


@dataclass(frozen=True)
class BookingPath:
    """Where a bookable date's sign-up happens: the first path of ``publish.booking`` its
    course has, else how to get in touch with the provider (decided in site/rules.py, so
    the theme, an override and the structured data show the same)."""

    #: ``external`` (the course's ``external_booking_url``), ``email`` (its ``email_booking``),
    #: ``kursguiden`` (its page on Kursguiden, ``kursguiden_url``); ``contact`` (none of those:
    #: the provider's ``site.contact_url``, ``contact_email`` or ``contact_phone``), or
    #: ``none`` (no contact set either: words without a link).
    kind: str
    #: The link: an http(s) address, a ``mailto:`` with the course and the day as its subject,
    #: or a ``tel:`` number; "" for ``none``. Every address from the API has passed the one URL
    #: policy (the contact is the operator's own, from catalog.toml).
    url: str
    #: The UI text key of its words: ``t(d.booking.words, contact=d.booking.contact)`` says
    #: where it leads ("Meld deg på hos Kursguiden" / "Book on Kursguiden").
    words: str
    #: The e-mail address or phone number the words name, for ``contact`` ("" otherwise).
    contact: str = ""

    @property
    def web_page(self) -> str:
        """``url`` when it is a web page (http or https), else "" (structured data offers it)."""
        return self.url if self.url.startswith(("https://", "http://")) else ""


@dataclass(frozen=True)
class Session:
    """One meeting of a multi-part date: a sub-date or a gathering."""

    #: The day it meets.
    start_date: date
    #: When it starts (None when the provider gave no time).
    start_time: time | None
    #: When it ends (None when not given).
    end_time: time | None
    #: Where it meets ("" when not given).
    venue_title: str


@dataclass(frozen=True)
class CourseDate:
    """One published date of a course (a "course date" in Frontcore), as a dates row shows it."""

    #: The date's id in Frontcore (``coursedate_id``).
    id: int
    #: The id of its course (``catalog.course(d.course_id)``).
    course_id: int
    #: The first day, in the date's own time zone.
    start_date: date
    #: The start time at the venue (None: "time to be announced").
    start_time: time | None
    #: The last day (None when it is the start day's or a placeholder).
    end_date: date | None
    #: The end time at the venue (None when not given).
    end_time: time | None
    #: The IANA zone its days and times are in (the catalog's ``timezone`` when not given).
    timezone: str
    #: The last day to book (None when none is set).
    deadline: date | None
    #: ``scheduled``, ``tbd`` (to be decided), ``canceled``, ``postponed``, or ``unknown`` (a
    #: status id catalog-gen does not know: listed, never bookable; see ``publish.date_status``).
    status: str
    #: Whether the booking deadline is past (then it is listed only as closed for booking).
    deadline_passed: bool
    #: Where it takes place (None when neither a location nor a place is set).
    venue: Venue | None
    #: Seat availability.
    seats: Seats
    #: The course's price (None: price on request).
    price: Price | None
    #: The course's booking address (``external_booking_url``; "" when none).
    booking_url: str
    #: The course's booking e-mail (``email_booking``; "" when none).
    booking_email: str
    #: Where to sign up, for a date that can be booked (scheduled or to be decided, the
    #: deadline not passed, not fully booked); None for one that cannot.
    booking: BookingPath | None = None
    #: The meetings of a multi-part date, in order (sub-dates and gatherings).
    sessions: tuple[Session, ...] = ()
    #: The names of its instructors (never their e-mail or phone).
    instructors: tuple[str, ...] = ()
    #: When the provider last changed the date (for sitemap lastmod and calendar stamps).
    updated_at: datetime | None = None
    #: When a fetch first saw the date (the snapshot diff); the Atom feed of new dates.
    first_seen: datetime | None = None
    #: The seats' age: the fetch since which the date's record (its seats too) is what it is,
    #: in the catalog's zone. Every fetch reads the date again, so every fetch since then read
    #: these seats; a page says the newest of these among its dates (``|seats_as_of``).
    seats_as_of: datetime | None = None
    #: Where the course is taught online (``event_url``), when the date is virtual.
    online_url: str = ""
    #: The provider's custom properties of the date (``d.custom_properties.partner``): text
    #: values by name; none is an empty mapping.
    custom_properties: Fields = NO_FIELDS
    #: The date record's other fields as the API sent them (``d.extra.kursguiden_url``):
    #: those the model does not type, and never people's contact details.
    extra: Fields = NO_FIELDS

    @property
    def bookable(self) -> bool:
        """Whether the date can be booked: then ``booking`` says where (a link, or how to get
        in touch)."""
        return self.booking is not None

    @property
    def city(self) -> str:
        """The venue's town ("" when there is no venue)."""
        return self.venue.city if self.venue else ""

    @property
    def sort_key(self) -> tuple[date, time, int]:
        """The order dates are listed in: start day, start time, id."""
        return (self.start_date, self.start_time or time.min, self.id)


@dataclass(frozen=True)
class Course:
    """A published course with its published dates."""

    #: The course's id in Frontcore.
    id: int
    #: Its title.
    title: str
    #: Its address segment: the title in ASCII plus the id (``forstehjelp-22017``).
    slug: str
    #: The provider's own reference ("" when none).
    reference: str
    #: The lead text as plain text, at most 200 characters (``text_lead``).
    lead: str
    #: The description as sanitised HTML (``text_description``; print it with ``|safe``).
    description_html: str
    #: The prerequisites as sanitised HTML (``text_prerequisites``).
    prerequisites_html: str
    #: Who the course is for, as sanitised HTML (``text_audience``).
    audience_html: str
    #: Its categories, by title.
    categories: tuple[Category, ...]
    #: Its price (None: price on request).
    price: Price | None
    #: Its published dates, soonest first.
    dates: tuple[CourseDate, ...]
    #: When the provider last changed the course.
    updated_at: datetime | None
    #: How long it lasts, as (amount, unit): ``(2, "day")``; None when not given.
    duration: tuple[int, str] | None = None
    #: The form of teaching as the provider names it ("Klasserom"; "" when not given).
    form_of_teaching: str = ""
    #: The teaching language's code as the API gives it ("no", "en"); names come from i18n.
    language: str = ""
    #: The provider's own page about the course (``external_more_info_url``: an http(s)
    #: address, checked like every address we link to; "" when none).
    more_info_url: str = ""
    #: The course's public page on Kursguiden, where sign-up happens (``kursguiden_url``:
    #: checked like every address we link to; "" when none).
    kursguiden_url: str = ""
    #: The provider's custom properties of the course (``course.custom_properties.partner``):
    #: text values by name; none is an empty mapping.
    custom_properties: Fields = NO_FIELDS
    #: The course record's other fields as the API sent them (``course.extra.text_place``):
    #: those the model does not type.
    extra: Fields = NO_FIELDS

    @property
    def next_date(self) -> CourseDate | None:
        """The soonest published date (None when there is none)."""
        return self.dates[0] if self.dates else None

    @property
    def instructors(self) -> tuple[str, ...]:
        """Everyone teaching any published date, in order of first appearance."""
        return tuple(dict.fromkeys(name for d in self.dates for name in d.instructors))

    # Asked for by every list the course is on (the sitemap's lastmod): worked out once.
    @functools.cached_property
    def last_modified(self) -> datetime | None:
        """The newest change to the course or any of its published dates."""
        stamps = [s for s in (self.updated_at, *(d.updated_at for d in self.dates)) if s]
        return max(stamps) if stamps else None

    @property
    def months(self) -> tuple[str, ...]:
        """The months (``2026-12``) in which a published date starts, soonest first."""
        return tuple(dict.fromkeys(f"{d.start_date:%Y-%m}" for d in self.dates))

    @property
    def form_slug(self) -> str:
        """The form of teaching as an address segment (``klasserom``)."""
        return slugify(self.form_of_teaching)


@dataclass(frozen=True)
class FacetValue:
    """One value of a course-list filter (a month, a teaching language, a form of teaching).

    Its courses are ``catalog.courses_with(value)``, as a category's are
    ``catalog.courses_in(category)``: a value holds no courses itself, so a list page that
    shows one is not made of every course it filters.
    """

    #: ``month``, ``language`` or ``form``.
    kind: str
    #: The value in addresses: a month (``2026-12``), a language code or a slug.
    key: str
    #: The provider's wording where there is one (``facet_title(value)`` gives the site's).
    title: str

    @property
    def slug(self) -> str:
        """The value's address segment: its ``key``."""
        return self.key


def seats_as_of(shown: Iterable[CourseDate | Course]) -> datetime | None:
    """When the seats a page shows were read: the newest ``seats_as_of`` of the dates whose
    seats it shows (a course stands for its next date, as a course list shows it); None when
    it shows none. At that moment a fetch read every one of them as the page shows it (each
    date's record was unchanged from its own ``seats_as_of`` on), and it moves only when one
    of them changes: a page is not made again for the stamp alone."""
    stamps = []
    for item in shown:
        d = item.next_date if isinstance(item, Course) else item
        if d is not None and d.seats.shown and d.seats_as_of is not None:
            stamps.append(d.seats_as_of)
    return max(stamps, default=None)


#: The filters a course list offers besides category and city, in the order shown.
FACETS = ("month", "language", "form")
#: The catalog's indexes are made from its courses.
INDEX = derived("courses")


@dataclass(frozen=True)
class Catalog:
    """Everything a site shows, ordered the way it is shown (deterministic for equal input)."""

    #: Every published course, by title.
    courses: tuple[Course, ...]
    #: Every category with a published course, by title.
    categories: tuple[Category, ...]
    #: Every venue of a published date (not online ones), by title.
    venues: tuple[Venue, ...]
    #: Every town with a venue, by name.
    cities: tuple[City, ...]
    #: Every published date of every course, soonest first.
    dates: tuple[CourseDate, ...]
    #: This build's moment (``--now``, else the clock): "today" is its day in each date's zone.
    now: datetime
    #: When the snapshot was fetched.
    fetched_at: datetime | None = None
    #: Indexes of the courses, for the methods below: functions of ``courses``.
    _by_id: Mapping[int, Course] = field(default_factory=dict, repr=False, metadata=INDEX)
    _by_category: Mapping[int, tuple[Course, ...]] = field(
        default_factory=dict, repr=False, metadata=INDEX
    )
    _by_venue: Mapping[int, tuple[Course, ...]] = field(
        default_factory=dict, repr=False, metadata=INDEX
    )
    _by_city: Mapping[str, tuple[Course, ...]] = field(
        default_factory=dict, repr=False, metadata=INDEX
    )
    #: Course-list filters beyond category and city (see FACETS), values in order.
    _facets: Mapping[str, tuple[FacetValue, ...]] = field(
        default_factory=dict, repr=False, metadata=INDEX
    )
    #: The courses of each filter value, by (kind, key).
    _by_facet: Mapping[tuple[str, str], tuple[Course, ...]] = field(
        default_factory=dict, repr=False, metadata=INDEX
    )

    def facet(self, kind: str) -> tuple[FacetValue, ...]:
        """The values of one filter (``month``, ``language``, ``form``), in order."""
        return self._facets.get(kind, ())

    def course(self, course_id: int) -> Course:
        """The course with this id (an error when it is not published)."""
        return self._by_id[course_id]

    def courses_in(self, category: Category) -> tuple[Course, ...]:
        """The courses of a category, by title."""
        return self._by_category.get(category.id, ())

    def courses_at(self, venue: Venue) -> tuple[Course, ...]:
        """The courses with a date at a venue, by title."""
        return self._by_venue.get(venue.id, ())

    def courses_in_city(self, city: City) -> tuple[Course, ...]:
        """The courses with a date in a town, by title."""
        return self._by_city.get(city.slug, ())

    def courses_with(self, value: FacetValue) -> tuple[Course, ...]:
        """The courses a filter value selects (a month, a language, a form), by title."""
        return self._by_facet.get((value.kind, value.key), ())
