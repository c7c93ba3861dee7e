"""schema.org structured data (JSON-LD) for course pages and course lists.

Search engines read a course page's dates, venues and prices from JSON-LD rather than from
the table a visitor sees. What Google's course rich results require is filled from the same
catalog records the page shows, never from provider HTML: every text here is plain text, and
the JSON is escaped so that nothing in it can close the ``<script>`` element it lives in.

- ``Course``: name, description, provider, offers (category, price, currency) and one
  ``CourseInstance`` per published date.
- ``CourseInstance``: courseMode (onsite, online, blended), courseWorkload, startDate and
  endDate with the venue's UTC offset (dates without a time stay dates), location (a ``Place``
  with its postal address, or a ``VirtualLocation``), eventStatus, offers with availability.
- ``ItemList``: a course list page's courses in order (Google's course list rich result).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from catalog_gen.site.model import Course, CourseDate, Price
from catalog_gen.site.sanitize import plain_text

SCHEMA = "https://schema.org"
DESCRIPTION_LIMIT = 500

STATUS = {
    "canceled": "https://schema.org/EventCancelled",
    "postponed": "https://schema.org/EventPostponed",
}
AVAILABILITY = {
    "full": "https://schema.org/SoldOut",
    "few": "https://schema.org/LimitedAvailability",
}


@dataclass(frozen=True)
class Provider:
    """Who offers the courses, and where the site lives (absolute URLs need it)."""

    name: str
    url: str = ""  # the site's base URL, "" when unknown
    language: str = "nb"
    #: Where a date without a known venue takes place, in the site's words ("Sted kommer").
    unknown_venue: str = "TBA"


def course_data(course: Course, provider: Provider, page_url: str | None) -> dict[str, object]:
    """The ``Course`` object of a course page."""
    data: dict[str, object] = {
        "@context": SCHEMA,
        "@type": "Course",
        "name": course.title,
        "description": _description(course),
        "provider": _organization(provider),
        "inLanguage": course.language or provider.language,
        "offers": [_offer(course.price, url=page_url)],
        "hasCourseInstance": [
            _instance(course, d, page_url, provider.unknown_venue) for d in course.dates
        ],
    }
    if page_url:
        data["url"] = page_url
    if course.reference:
        data["courseCode"] = course.reference
    if course.prerequisites_html:
        data["coursePrerequisites"] = plain_text(course.prerequisites_html, limit=DESCRIPTION_LIMIT)
    return data


def course_list_data(
    courses: Sequence[Course], page_url_of: Callable[[Course], str | None], first: int = 1
) -> dict[str, object] | None:
    """An ``ItemList`` of course pages, numbered from ``first``; None without absolute URLs."""
    items = []
    for position, course in enumerate(courses, start=first):
        url = page_url_of(course)
        if not url:
            return None
        items.append({"@type": "ListItem", "position": position, "url": url})
    if not items:
        return None
    return {"@context": SCHEMA, "@type": "ItemList", "itemListElement": items}


def script_json(data: object) -> str:
    """JSON safe inside ``<script type="application/ld+json">``: no ``<``, ``>`` or ``&``."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _description(course: Course) -> str:
    text = course.lead or plain_text(course.description_html, limit=DESCRIPTION_LIMIT)
    return text or course.title


def _organization(provider: Provider) -> dict[str, object]:
    data: dict[str, object] = {"@type": "Organization", "name": provider.name}
    if provider.url:
        data["sameAs"] = provider.url
    return data


def _offer(
    price: Price | None, *, url: str | None, availability: str | None = None
) -> dict[str, object]:
    """Google wants a ``category``; a price of 0 or none is 'on request', not free."""
    offer: dict[str, object] = {"@type": "Offer", "category": "Paid"}
    if price is not None:
        offer["price"] = _number(price.value)
        offer["priceCurrency"] = price.currency
    if availability:
        offer["availability"] = availability
    if url:
        offer["url"] = url
    return offer


def _instance(
    course: Course, d: CourseDate, page_url: str | None, unknown_venue: str
) -> dict[str, object]:
    online = bool(d.venue and d.venue.is_online)
    data: dict[str, object] = {
        "@type": "CourseInstance",
        "courseMode": _mode(course, online),
        "courseWorkload": _workload(d),
        "startDate": _moment(d.start_date, d.start_time, d.timezone),
        "eventStatus": STATUS.get(d.status, "https://schema.org/EventScheduled"),
        "eventAttendanceMode": (
            "https://schema.org/OnlineEventAttendanceMode"
            if online
            else "https://schema.org/OfflineEventAttendanceMode"
        ),
    }
    end = d.end_date or d.start_date
    if d.end_date or d.end_time:
        data["endDate"] = _moment(end, d.end_time if d.start_time else None, d.timezone)
    # Google requires a location for onsite courses; an unknown venue says so in words.
    data["location"] = _location(d) or {"@type": "Place", "name": unknown_venue}
    link = f"{page_url}#date-{d.id}" if page_url else None
    availability: str | None = AVAILABILITY.get(d.seats.state, "https://schema.org/InStock")
    if d.status == "canceled" or d.deadline_passed:
        availability = "https://schema.org/Discontinued"
    if d.status == "unknown":  # a status catalog-gen cannot read: claim nothing about it
        del data["eventStatus"]
        availability = None
    # The booking path's web page, as the sign-up button offers it (an e-mail or phone
    # link is no offer page: the date's row on the course page is).
    booking = d.booking.web_page if d.booking else ""
    offer = _offer(d.price, url=booking or link, availability=availability)
    if d.deadline:
        offer["validThrough"] = d.deadline.isoformat()
    data["offers"] = offer
    if d.instructors:
        data["instructor"] = [{"@type": "Person", "name": name} for name in d.instructors]
    return data


def _mode(course: Course, online: bool) -> str:
    """Google's three words: an online date is "Online"; otherwise the provider's own form of
    teaching decides between "Blended" and "Onsite"."""
    if online:
        return "Online"
    form = course.form_of_teaching.casefold()
    return "Blended" if "blend" in form or "kombin" in form else "Onsite"


def _workload(d: CourseDate) -> str:
    """ISO 8601 duration of the teaching: the hours when known, else whole days."""
    days = ((d.end_date or d.start_date) - d.start_date).days + 1
    if d.start_time and d.end_time:
        per_day = datetime.combine(date.min, d.end_time) - datetime.combine(date.min, d.start_time)
        if per_day > timedelta(0):
            meetings = max(len(d.sessions), days)
            minutes = int(per_day.total_seconds() // 60) * meetings
            hours, rest = divmod(minutes, 60)
            return f"PT{hours}H{rest}M" if rest else f"PT{hours}H"
    return f"P{days}D"


def _moment(day: date, clock: time | None, zone: str) -> str:
    """``2026-12-01T09:00:00+01:00`` in the date's own zone; a bare date when no time."""
    if clock is None:
        return day.isoformat()
    return datetime.combine(day, clock, tzinfo=ZoneInfo(zone)).isoformat()


def _location(d: CourseDate) -> dict[str, object] | None:
    venue = d.venue
    if venue is None:
        return None
    if venue.is_online:
        place: dict[str, object] = {"@type": "VirtualLocation"}
        if d.online_url:
            place["url"] = d.online_url
        return place
    place = {"@type": "Place", "name": venue.title or venue.city}
    address = {
        "@type": "PostalAddress",
        "streetAddress": venue.address,
        "postalCode": venue.zipcode,
        "addressLocality": venue.city,
    }
    place["address"] = {key: value for key, value in address.items() if value}
    return place


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)
