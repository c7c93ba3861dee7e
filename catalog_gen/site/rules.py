"""What a visitor may see: the publishing rules, each in one place.

- inactive courses, and courses whose ``type`` or ``level`` the config hides (internal and
  corporate training), are not published, and neither are their dates;
- dates that are invisible, soft-deleted, or already started are not published;
- a sub-date (``parent_id``) is shown under its parent date, never as a date of its own;
- canceled and postponed dates stay listed, marked, without a booking link; a status id
  catalog-gen does not know (and ``publish.date_status`` does not map) is listed as "not
  confirmed", also without one;
- every other date that is not fully booked can be booked, through the first path of
  ``publish.booking`` its course has (its booking address, its booking e-mail, its page on
  Kursguiden), else by getting in touch with the provider (``site.contact_*``);
- seats read as a number left, few left, fully booked, or nothing when capacity is unknown.

The rules that depend on the clock (a date that started, a deadline that passed) are applied
where the catalog is put together at a moment (catalog.py); these read a record on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import NamedTuple
from urllib.parse import quote

from catalog_gen.anomalies import Anomalies, kind
from catalog_gen.config import PublishSettings, SiteSettings
from catalog_gen.errors import ConfigError
from catalog_gen.site.addresses import link_target, mail_address, web_address
from catalog_gen.site.model import (
    BookingPath,
    Price,
    Seats,
    Venue,
)
from catalog_gen.site.readers import is_empty, read_flag, read_int, read_object, read_whole

# Course-date status ids (frontcore-api.md §6.2).
STATUS_TBD, STATUS_WILL_RUN, STATUS_CANCELED, STATUS_POSTPONED = 1, 2, 3, 4


DATE_STATES = {
    STATUS_TBD: "tbd",
    STATUS_WILL_RUN: "scheduled",
    STATUS_CANCELED: "canceled",
    STATUS_POSTPONED: "postponed",
}


COURSE_TYPE = kind(
    "course.type_unknown",
    "course type other than 'public' and not in publish.hidden_course_types; published",
)


COURSE_LEVEL = kind(
    "course.level_unreadable",
    "course level without a readable id; published (publish.hidden_level_ids cannot apply)",
)


STATUS = kind(
    "date.status_unknown",
    "course date status that is not 1-4 nor mapped in publish.date_status; listed as "
    "'{status_unknown}', no booking",
)


SEATS = kind(
    "date.seats_unusable",
    "seat count that is unreadable, negative or absurd; no seat count shown",
)


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


# --- courses --------------------------------------------------------------------------------


def course_is_public(
    record: Mapping[str, object], rules: PublishSettings, found: Anomalies, name: str
) -> bool:
    """The course rules: active, of a type and at a level the config does not hide."""
    if not read_flag(record, "is_active", True, found, name):
        return False
    kind_of_course = record.get("type")
    if isinstance(kind_of_course, str) and kind_of_course.strip():
        kind_of_course = kind_of_course.strip()
        if kind_of_course in rules.hidden_course_types:
            return False
        if kind_of_course != "public":
            found.add(COURSE_TYPE, name, "type", kind_of_course)
    elif not is_empty(kind_of_course):
        found.add(COURSE_TYPE, name, "type", kind_of_course)
    level = record.get("level")
    raw_level = level.get("id") if isinstance(level, dict) else level
    if is_empty(raw_level):
        return True
    level_id = read_int(raw_level)
    if level_id is None:
        found.add(COURSE_LEVEL, name, "level.id", raw_level)
    return level_id not in rules.hidden_level_ids


def date_is_listed(record: Mapping[str, object], found: Anomalies, name: str) -> bool:
    """The date rules that need no clock: visible, and not soft-deleted."""
    return read_flag(record, "is_visible", True, found, name) and not record.get("deleted_at")


def is_top_date(record: object) -> bool:
    return isinstance(record, dict) and (
        is_empty(record.get("parent_id")) or record.get("parent_id") == 0
    )


def read_status(
    record: Mapping[str, object], rules: PublishSettings, found: Anomalies, name: str
) -> str:
    """The date's state; one catalog-gen does not know is "unknown" (listed, never bookable)
    until ``publish.date_status`` maps it."""
    status = record.get("status")
    raw = status.get("id") if isinstance(status, dict) else status
    if is_empty(raw):
        raw = record.get("status_id")
    sid = read_int(raw)
    state = None if sid is None else rules.date_status.get(sid, DATE_STATES.get(sid))
    if state is None:
        found.add(STATUS, name, "status.id", raw)
        return "unknown"
    return state


#: More free seats than this is a typing error, not a course.
MOST_SEATS = 100_000


def read_seats(
    record: Mapping[str, object], rules: PublishSettings, found: Anomalies, name: str
) -> Seats:
    """Three states plus unknown: ``fully_booked`` wins; 0 capacity with 0 free is unknown; a
    negative free count is an overbooked (full) date."""
    seats = read_object(record, "seats", found, name) or {}
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


def _seat_count(seats: Mapping[str, object], key: str, found: Anomalies, name: str) -> int | None:
    """``seats.<key>.num``, or a bare ``seats.<key>``; as a number or numeric text."""
    raw = seats.get(key)
    if isinstance(raw, dict):
        raw = raw.get("num")
    if is_empty(raw):
        return None
    count = read_whole(raw)
    if count is None:
        found.add(SEATS, name, f"seats.{key}.num", raw)
    return count


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


def date_booking(
    terms: DateTerms, status: str, passed: bool, seats: Seats, day: date
) -> BookingPath | None:
    """The date's booking path, or None when it cannot be booked (canceled, postponed, of
    an unknown status, past its deadline, fully booked)."""
    if status not in ("scheduled", "tbd") or passed or seats.state == "full":
        return None
    return booking_path(terms.booking, terms.title, day)
