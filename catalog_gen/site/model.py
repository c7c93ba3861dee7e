"""The catalog model: the typed records every template sees, and nothing else.

These frozen dataclasses are what ``build_catalog`` (catalog.py) makes of a snapshot's raw
records, after every publishing rule has been applied. Templates read them (``course``,
``catalog``, ``d`` in a dates table); the page digests fingerprint them field by field
(buildstate.py), so a field a template can read is a field whose change renders a page again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

from catalog_gen.site.slugs import slugify


@dataclass(frozen=True)
class Category:
    id: int
    title: str
    slug: str


@dataclass(frozen=True)
class Venue:
    """Where a date takes place: a Frontcore location, or a bare place/city when that is all."""

    id: int
    title: str
    address: str
    zipcode: str
    city: str
    slug: str
    is_online: bool = False

    @property
    def full_address(self) -> str:
        town = " ".join(part for part in (self.zipcode, self.city) if part)
        return ", ".join(part for part in (self.address, town) if part)


@dataclass(frozen=True)
class City:
    name: str
    slug: str


@dataclass(frozen=True)
class Price:
    """A price in whole or decimal currency units, always with the API's own currency."""

    value: Decimal
    currency: str
    comment: str = ""


@dataclass(frozen=True)
class Seats:
    """Seat availability in three states plus unknown; ``free`` only when it may be shown."""

    state: str  # "available", "few", "full" or "unknown"
    free: int | None = None


@dataclass(frozen=True)
class Session:
    """One meeting of a multi-part date: a sub-date or a gathering."""

    start_date: date
    start_time: time | None
    end_time: time | None
    venue_title: str


@dataclass(frozen=True)
class CourseDate:
    id: int
    course_id: int
    start_date: date
    start_time: time | None
    end_date: date | None
    end_time: time | None
    timezone: str
    deadline: date | None
    #: "scheduled", "tbd", "canceled", "postponed", or "unknown" (a status id catalog-gen does
    #: not know: listed, never bookable; see catalog.py)
    status: str
    deadline_passed: bool
    venue: Venue | None
    seats: Seats
    price: Price | None
    booking_url: str
    booking_email: str
    sessions: tuple[Session, ...] = ()
    instructors: tuple[str, ...] = ()
    #: When the provider last changed the date (for sitemap lastmod and calendar stamps).
    updated_at: datetime | None = None
    #: When a fetch first saw the date (the snapshot diff); the Atom feed of new dates.
    first_seen: datetime | None = None
    #: Where the course is taught online (``event_url``), when the date is virtual.
    online_url: str = ""

    @property
    def bookable(self) -> bool:
        """Whether a sign-up link belongs next to this date."""
        return (
            self.status in ("scheduled", "tbd")
            and not self.deadline_passed
            and self.seats.state != "full"
            and bool(self.booking_url or self.booking_email)
        )

    @property
    def city(self) -> str:
        return self.venue.city if self.venue else ""

    @property
    def sort_key(self) -> tuple:
        return (self.start_date, self.start_time or time.min, self.id)


@dataclass(frozen=True)
class Course:
    id: int
    title: str
    slug: str
    reference: str
    lead: str
    description_html: str
    prerequisites_html: str
    audience_html: str
    categories: tuple[Category, ...]
    price: Price | None
    dates: tuple[CourseDate, ...]
    updated_at: datetime | None
    duration: tuple[int, str] | None = None
    form_of_teaching: str = ""
    #: The teaching language's code as the API gives it ("no", "en"); names come from i18n.
    language: str = ""

    @property
    def next_date(self) -> CourseDate | None:
        return self.dates[0] if self.dates else None

    @property
    def instructors(self) -> tuple[str, ...]:
        """Everyone teaching any published date, in order of first appearance."""
        return tuple(dict.fromkeys(name for d in self.dates for name in d.instructors))

    @property
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
        return slugify(self.form_of_teaching)


@dataclass(frozen=True)
class FacetValue:
    """One value of a course-list filter and the courses that have it.

    ``key`` is the value in addresses: a language code, a slug, or a month (``2026-12``);
    ``title`` is the provider's wording where there is one (language and month names are
    the site language's, from i18n).
    """

    kind: str
    key: str
    title: str
    courses: tuple[Course, ...] = field(repr=False)

    @property
    def slug(self) -> str:
        return self.key


#: The filters a course list offers besides category and city, in the order shown.
FACETS = ("month", "language", "form")


@dataclass(frozen=True)
class Catalog:
    """Everything a site shows, ordered the way it is shown (deterministic for equal input)."""

    courses: tuple[Course, ...]
    categories: tuple[Category, ...]
    venues: tuple[Venue, ...]
    cities: tuple[City, ...]
    #: Every published date of every course, soonest first.
    dates: tuple[CourseDate, ...]
    now: datetime
    fetched_at: datetime | None = None
    _by_id: Mapping[int, Course] = field(default_factory=dict, repr=False)
    _by_category: Mapping[int, tuple[Course, ...]] = field(default_factory=dict, repr=False)
    _by_venue: Mapping[int, tuple[Course, ...]] = field(default_factory=dict, repr=False)
    _by_city: Mapping[str, tuple[Course, ...]] = field(default_factory=dict, repr=False)
    #: Course-list filters beyond category and city (see FACETS), values in order.
    _facets: Mapping[str, tuple[FacetValue, ...]] = field(default_factory=dict, repr=False)

    def facet(self, kind: str) -> tuple[FacetValue, ...]:
        """The values of one filter (``month``, ``language``, ``form``) with their courses."""
        return self._facets.get(kind, ())

    def course(self, course_id: int) -> Course:
        return self._by_id[course_id]

    def courses_in(self, category: Category) -> tuple[Course, ...]:
        return self._by_category.get(category.id, ())

    def courses_at(self, venue: Venue) -> tuple[Course, ...]:
        return self._by_venue.get(venue.id, ())

    def courses_in_city(self, city: City) -> tuple[Course, ...]:
        return self._by_city.get(city.slug, ())
