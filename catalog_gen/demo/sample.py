"""A generated, realistic Frontcore catalog for the emulator, the tests and ``--demo``.

The data is shaped like the raw API (see ``frontcore-api.md`` §5): plain dicts with Frontcore's
field names and quirks (string seat counts, ``[]`` for empty custom properties, ids called
``coursedate_id``), so a client that reads it through the emulator meets what it will meet in
production. Every awkward case a catalog must handle (canceled, postponed, soft-deleted,
invisible and past dates, sub-dates, passed deadlines, full and unknown capacity, internal and
inactive courses, hostile HTML, foreign currencies) is placed deliberately, in a cycle of
``CYCLE`` courses, so that even the default 48 courses contain each of them at least once.

Generation is deterministic: only ``random.Random(seed)`` is used, every date is placed relative
to ``today`` and every timestamp is derived from it, never read from the wall clock. Only the
mutation helpers, which simulate edits between two fetches, read ``SampleCatalog.clock``.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple, TypedDict
from zoneinfo import ZoneInfo

from catalog_gen.snapshot import Record

OSLO = ZoneInfo("Europe/Oslo")

#: The realism schedule repeats every CYCLE courses; the default catalog is exactly one cycle.
CYCLE = 48

FIRST_COURSE_ID = 22001
FIRST_COURSEDATE_ID = 900001
FIRST_GATHERING_ID = 428001
FIRST_PRODUCT_ID = 8001


def oslo_now() -> datetime:
    """The real current time in Europe/Oslo: the default clock of the mutation helpers."""
    return datetime.now(OSLO)


# --------------------------------------------------------------------------------------------
# Fixtures: classification pairs, categories, titles, venues, instructors
# --------------------------------------------------------------------------------------------

LEVEL_COURSES = {"id": 6, "title": "Courses"}
LEVEL_CORPORATE = {"id": 15, "title": "Corporate training"}
LEVEL_CERTIFICATION = {"id": 8, "title": "Certification"}
CLASSROOM = {"id": 1, "title": "Classroom"}
ONLINE = {"id": 3, "title": "Online"}
BLENDED = {"id": 5, "title": "Blended learning"}
NORWEGIAN = {"id": "no", "title": "Norwegian"}
ENGLISH = {"id": "en", "title": "English"}
DAYTIME = {"id": 1, "title": "Daytime"}
EVENING = {"id": 2, "title": "Evening"}

STATUSES = {
    1: "To be defined",
    2: "Will run",
    3: "Canceled",
    4: "Postponed",
}

CURRENCIES = {
    "NOK": {"id": 1, "title": "NOK", "long_title": "Norwegian kroner"},
    "EUR": {"id": 2, "title": "EUR", "long_title": "Euro"},
    "SEK": {"id": 3, "title": "SEK", "long_title": "Swedish kroner"},
}

CATEGORIES = {
    11: "Helse, miljø og sikkerhet",
    12: "Økonomi og regnskap",
    13: "Ledelse",
    14: "IT og digitalisering",
    15: "Språk og kommunikasjon",
    16: "Bygg og anlegg",
    17: "Salg og markedsføring",
}

#: (title, category id). Titles repeat with a variant suffix once a catalog outgrows the list.
TITLES: tuple[tuple[str, int], ...] = (
    ("Førstehjelp på arbeidsplassen", 11),
    ("Grunnkurs i økonomi og regnskap", 12),
    ("Bærekraftig ledelse", 13),
    ("Sikkerhet ved arbeid i høyden", 11),
    ("Excel for viderekomne", 14),
    ("Norsk for utenlandske arbeidstakere", 15),
    ("Våtromskurs", 16),
    ("Salgsteknikk og kundebehandling", 17),
    ("HMS for ledere", 11),
    ("Budsjettering og prognoser", 12),
    ("Prosjektledelse i praksis", 13),
    ("Power BI – fra data til innsikt", 14),
    ("Business English", 15),
    ("Byggesaksbehandling", 16),
    ("Digital markedsføring", 17),
    ("Varme arbeider", 11),
    ("Merverdiavgift i praksis", 12),
    ("Endringsledelse", 13),
    ("Informasjonssikkerhet for alle", 14),
    ("Klart språk i offentlig sektor", 15),
    ("Stillasmontering", 16),
    ("Kundeservice i verdensklasse", 17),
    ("Brannvernleder – grunnkurs", 11),
    ("Årsoppgjør for små bedrifter", 12),
    ("Coaching for ledere", 13),
    ("Python for nybegynnere", 14),
    ("Presentasjonsteknikk", 15),
    ("Universell utforming av bygg", 16),
    ("Forhandlingsteknikk", 17),
    ("Arbeidsmiljø og psykososialt miljø", 11),
    ("Lønn og personalregnskap", 12),
    ("Medarbeidersamtalen", 13),
    ("Personvern og GDPR i praksis", 14),
    ("Skriving for nett", 15),
    ("Truckførerkurs", 16),
    ("Sosiale medier for bedrifter", 17),
    ("Økonomistyring for ikke-økonomer", 12),
    ("Konflikthåndtering på arbeidsplassen", 13),
    ("Kunstig intelligens på jobben", 14),
    ("Microsoft Teams og SharePoint", 14),
    ("Kranførerkurs G11", 16),
    ("Sikker jobbanalyse (SJA)", 11),
    ("Styrearbeid i praksis", 13),
)
TITLE_VARIANTS = ("– videregående", "– nettkurs", "– intensivkurs", "– del 2", "– for ledere")

HOSTILE_TITLE = "Sikker koding: <b>\"XSS\"</b> & 'injeksjon'"


class VenueFixture(NamedTuple):
    """A physical venue (§5.4) and the place (§5.3, the geographic area) it lies in."""

    id: int
    title: str
    address: str | None
    zipcode: str | None
    city: str | None
    state: str | None
    lat: float
    lng: float
    capacity: int
    place: tuple[int, str, int, str] | None  # (id, title, parent id, parent title)


# fmt: off
VENUES: tuple[VenueFixture, ...] = (
    VenueFixture(6401, "Kurssenteret Akersgata", "Akersgata 32", "0180", "Oslo", "Oslo",
                 59.9139, 10.7430, 24, (301, "Oslo", 3, "Oslo")),
    VenueFixture(6402, "Helsfyr Konferansesenter", "Innspurten 15", "0663", "Oslo", "Oslo",
                 59.9125, 10.8003, 60, (301, "Oslo", 3, "Oslo")),
    VenueFixture(6403, "Bryggen Kurs og Møte", "Bryggen 15", "5003", "Bergen", "Vestland",
                 60.3975, 5.3236, 30, (4601, "Bergen", 46, "Vestland")),
    VenueFixture(6404, "Trondheim Kompetansesenter", "Munkegata 20", "7011", "Trondheim",
                 "Trøndelag", 63.4305, 10.3951, 28, (5001, "Trondheim", 50, "Trøndelag")),
    VenueFixture(6405, "Tromsø Kurs- og Konferansesenter", "Storgata 86", "9008", "Tromsø",
                 "Troms", 69.6492, 18.9553, 20, (5501, "Tromsø", 55, "Troms")),
    VenueFixture(6406, "Stavanger Forum – kursrom Ryfylke", "Gunnar Warebergs gate 13", "4021",
                 "Stavanger", "Rogaland", 58.9541, 5.7101, 40, (1103, "Stavanger", 11, "Rogaland")),
    VenueFixture(6407, "Kristiansand Næringsforum", "Markens gate 10", "4611", "Kristiansand",
                 "Agder", 58.1467, 7.9956, 18, (4204, "Kristiansand", 42, "Agder")),
    VenueFixture(6408, "Bodø Kunnskapspark", "Sjøgata 21", "8006", "Bodø", "Nordland",
                 67.2804, 14.4049, 16, (1804, "Bodø", 18, "Nordland")),
)
#: Online dates meet here; it has no address and no place.
VIRTUAL_VENUE = VenueFixture(6409, "Nettkurs (Zoom)", None, None, None, None, 0, 0, 100, None)
#: Listed by /v2/locations with is_archived, but no date is held there any more.
ARCHIVED_VENUE = VenueFixture(6410, "Gamle lokaler Sandviken", "Sandviksveien 2", "5035",
                              "Bergen", "Vestland", 60.4080, 5.3190, 12,
                              (4601, "Bergen", 46, "Vestland"))
# fmt: on

#: (first name, last name, position, company).
INSTRUCTORS: tuple[tuple[str, str, str, str], ...] = (
    ("Kari", "Nordmann", "Kursholder", "Kursleverandøren AS"),
    ("Ola", "Hansen", "Seniorrådgiver", "Kursleverandøren AS"),
    ("Åse", "Bjørnstad", "Sykepleier", "Bjørnstad Helse"),
    ("Øystein", "Lærum", "Statsautorisert revisor", "Lærum & Co"),
    ("Ingrid", "Sæther", "Prosjektleder", "Kursleverandøren AS"),
    ("Håkon", "Østby", "HMS-rådgiver", "Østby Sikkerhet AS"),
    ("Siri", "Haugen", "Språkpedagog", ""),
    ("Bjørn", "Ødegård", "Dataingeniør", "Ødegård Rådgivning"),
    ("Marte", "Kvåle", "Markedssjef", "Kursleverandøren AS"),
    ("Jonas", "Berg", "Byggingeniør", "Berg Bygg AS"),
    ("Astrid", "Dæhlie", "Advokat", "Dæhlie Advokatfirma"),
    ("Per", "Ås", "Kursholder", ""),
)
ARCHIVED_INSTRUCTOR_INDEX = 11

COURSE_GROUP = {"id": 1, "title": "Courses"}
ADDON_GROUP = {"id": 2, "title": "Addons"}
ADDONS = (("Kursmateriell", 450), ("Lunsj", 250), ("Overnatting", 1450), ("Kursbevis", 150))

# --------------------------------------------------------------------------------------------
# The realism schedule: what each course slot (index % CYCLE) carries
# --------------------------------------------------------------------------------------------

INACTIVE_SLOTS = {6, 31}
INTERNAL_SLOTS = {11}  # type "internal" and level 15
CORPORATE_LEVEL_SLOTS = {37}  # type "public" but level 15: only the level gives it away
#: slot → the slot (same cycle) whose title it repeats, so two courses share a title.
DUPLICATE_TITLE_OF = {29: 3, 46: 0}
HOSTILE_TITLE_SLOTS = {41}
ENGLISH_SLOTS = {12, 38}
NULL_REFERENCE_SLOTS = {22}
ODD_REFERENCE_SLOTS = {25}  # a reference that is no good as a URL slug
NULL_CATEGORY_SLOTS = {8, 30}
COURSE_PROPERTY_SLOTS = {2, 19, 44}
MEMBER_PRICE_SLOTS = {2, 30}
#: No booking address and no booking e-mail: sign-up happens on Kursguiden (kursguiden_url).
KURSGUIDEN_BOOKING_SLOTS = {1, 24, 35}
#: No booking path at all (no address, no e-mail, no Kursguiden page): the site's contact.
NO_BOOKING_PATH_SLOTS = {43}
#: slot → (currency, value, comment)
PRICE_OVERRIDES: dict[int, tuple[str, int, str | None]] = {
    13: ("EUR", 990, None),
    39: ("EUR", 450, "Ekskl. mva."),
    21: ("SEK", 4500, None),
    4: ("NOK", 0, "Gratis for medlemmer"),
    26: ("NOK", 0, None),
}
#: slot → (text field, hostile fragment woven into otherwise benign HTML)
HOSTILE_TEXT: dict[int, tuple[str, str]] = {
    9: ("text_description", "<script>alert(1)</script>"),
    17: ("text_prerequisites", "<img src=x onerror=alert(1)>"),
    23: ("text_audience", '<a href="javascript:alert(1)">Klikk her</a>'),
    27: ("text_description", '<iframe src="https://evil.example/"></iframe>'),
    33: ("text_description", '<p style="color:red;font-size:40px">Viktig!</p>'),
}
#: slot → [(date index, kind)]. Indexes past dates_per_course wrap around.
DATE_KINDS: dict[int, list[tuple[int, str]]] = {
    0: [(0, "past")],
    1: [(2, "canceled")],
    2: [(3, "postponed")],
    3: [(2, "sub")],
    5: [(4, "deleted")],
    7: [(0, "deadline_passed_visible")],
    10: [(0, "deadline_passed_hidden")],
    14: [(2, "invisible")],
    15: [(1, "full")],
    16: [(2, "unknown_capacity")],
    18: [(1, "location_null"), (3, "no_place")],
    20: [(0, "virtual"), (2, "timezone_null")],
    24: [(1, "no_time"), (3, "free_string")],
    28: [(1, "to_be_defined"), (2, "custom_properties")],
    32: [(0, "past"), (1, "canceled"), (3, "full")],
    34: [(2, "sub"), (4, "deleted")],
    36: [(1, "invisible"), (2, "unknown_capacity"), (3, "free_string")],
    40: [(0, "deadline_passed_visible"), (2, "postponed")],
    42: [(1, "location_null"), (3, "full")],
    43: [(0, "past"), (4, "custom_properties")],
    45: [(1, "virtual"), (2, "deadline_passed_hidden")],
    47: [(0, "past"), (2, "timezone_null")],
}


# --------------------------------------------------------------------------------------------
# The catalog and its mutation helpers
# --------------------------------------------------------------------------------------------


@dataclass
class SampleCatalog:
    """API-shaped raw records, keyed by id, that an emulator serves and tests mutate.

    Course dates keep their owning course in a flat ``course_id`` (the emulator drops it, or
    keeps it, per endpoint). Readers and the mutation helpers hold ``lock``.
    """

    today: date
    seed: int
    courses: dict[int, Record] = field(default_factory=dict)
    coursedates: dict[int, Record] = field(default_factory=dict)
    locations: dict[int, Record] = field(default_factory=dict)
    instructors: dict[int, Record] = field(default_factory=dict)
    products: dict[int, Record] = field(default_factory=dict)
    #: The next free id per kind; ids of removed records are never handed out again.
    next_ids: dict[str, int] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=oslo_now, compare=False, repr=False)
    lock: threading.RLock = field(default_factory=threading.RLock, compare=False, repr=False)

    def dates_of(self, course_id: int) -> list[Record]:
        """The dates of one course, by coursedate_id."""
        with self.lock:
            return [d for _, d in sorted(self.coursedates.items()) if d["course_id"] == course_id]

    def change_course(self, course_id: int, **fields: Any) -> None:
        """Edit a course as a provider would in the Frontcore app: ``updated_at`` moves."""
        with self.lock:
            course = self.courses[course_id]
            course.update(fields)
            course["updated_at"] = self._now_stamp()

    def set_free_seats(self, coursedate_id: int, free: int) -> None:
        """Simulate bookings: seat counts change, ``updated_at`` does not (as in Frontcore)."""
        with self.lock:
            seats = self.coursedates[coursedate_id]["seats"]
            capacity = seats["allocated_capacity"]["num"]
            if capacity > 0:
                booking = seats["booking_status"]
                booked = max(capacity - free, 0)
                unconfirmed = min(booking["num_unconfirmed"], booked)
                booking.update(
                    num=booked, num_confirmed=booked - unconfirmed, num_unconfirmed=unconfirmed
                )
            # Keep the quirk of this date: a count that came as a string stays a string.
            was_string = isinstance(seats["free"]["num"], str)
            seats["free"]["num"] = str(free) if was_string else free
            self.coursedates[coursedate_id]["seats_status"] = (
                "fully_booked" if capacity > 0 and free <= 0 else "open"
            )

    def remove_course(self, course_id: int) -> None:
        """Delete a course outright, with its dates and its course products."""
        with self.lock:
            del self.courses[course_id]
            for did in [i for i, d in self.coursedates.items() if d["course_id"] == course_id]:
                del self.coursedates[did]
            for pid in [
                i
                for i, p in self.products.items()
                if p["id_type"] == 2 and p["id_relation"] == course_id
            ]:
                del self.products[pid]

    def add_course(self, title: str, *, dates: int = 2) -> int:
        """Add an active public course with ``dates`` upcoming dates; returns its id."""
        with self.lock:
            now = self._now()
            stamp = _stamp(now)
            builder = _Builder(
                random.Random(self.seed * 1_000_003 + self.next_ids["course"]),
                max(self.today, now.astimezone(OSLO).date()),
                self,
            )
            course = builder.course(CYCLE - 1, title=title, plain=True)
            course["created_at"] = course["updated_at"] = stamp
            new_dates = builder.dates(course, dates, kinds={}, allow_past=False)
            for record in new_dates:
                record["created_at"] = record["updated_at"] = stamp
                for gathering in record["gatherings"]:
                    gathering["created_at"] = gathering["updated_at"] = stamp
            for product in builder.products(course, member_price=False):
                product["created_at"] = product["updated_at"] = stamp
            course_id: int = course["id"]  # the builder's own _next_id("course")
            return course_id

    def delete_date(self, coursedate_id: int) -> None:
        """Soft-delete a date: it stays listed, with ``deleted_at`` set and a new ``updated_at``."""
        with self.lock:
            record = self.coursedates[coursedate_id]
            record["deleted_at"] = record["updated_at"] = self._now_stamp()

    def set_status(self, coursedate_id: int, status_id: int) -> None:
        """Change a date's status (2 scheduled, 3 canceled, 4 postponed): ``updated_at`` moves."""
        with self.lock:
            record = self.coursedates[coursedate_id]
            record["status"] = {"id": status_id, "idType": 2, "title": STATUSES[status_id]}
            record["updated_at"] = self._now_stamp()

    def a_night_later(self) -> None:
        """What a night in Frontcore may bring, the same every time (``--demo-change``): a new
        course, a date canceled, one fully booked, a price raised, a course deleted."""
        with self.lock:
            ids = sorted(self.courses)
            self.add_course("Nyhet: Kunstig intelligens i arbeidslivet", dates=2)
            soonest = {cid: self._upcoming(cid) for cid in ids}
            open_dates = [cid for cid in ids if soonest[cid]]
            self.set_status(soonest[open_dates[1]][0], 3)
            self.set_free_seats(soonest[open_dates[2]][-1], 0)
            price = self.courses[open_dates[3]].get("price")
            if isinstance(price, dict) and isinstance(price.get("value"), int | float):
                self.change_course(open_dates[3], price={**price, "value": price["value"] + 500})
            self.remove_course(ids[-1])

    def _upcoming(self, course_id: int) -> list[int]:
        """The scheduled dates of a course that have not started, soonest first."""
        return [
            d["coursedate_id"]
            for d in self.dates_of(course_id)
            if not d.get("deleted_at") and not d.get("parent_id")
            and (d.get("status") or {}).get("id") == 2
            and str(d.get("start_at", "")) > self._now().date().isoformat()
        ]  # fmt: skip

    def _now(self) -> datetime:
        now = self.clock()
        return now.replace(tzinfo=OSLO) if now.tzinfo is None else now

    def _now_stamp(self) -> str:
        return _stamp(self._now())


def generate_catalog(
    courses: int = 48,
    *,
    seed: int = 2026,
    today: date | None = None,
    dates_per_course: int = 5,
) -> SampleCatalog:
    """A deterministic catalog of ``courses`` courses with ``dates_per_course`` dates each.

    Same arguments, same data: nothing here reads the clock except the default ``today``.
    """
    if today is None:
        today = oslo_now().date()
    rng = random.Random(seed)
    catalog = SampleCatalog(
        today=today,
        seed=seed,
        next_ids={
            "course": FIRST_COURSE_ID,
            "coursedate": FIRST_COURSEDATE_ID,
            "gathering": FIRST_GATHERING_ID,
            "product": FIRST_PRODUCT_ID,
        },
    )
    builder = _Builder(rng, today, catalog)
    builder.venues()
    builder.instructor_records()
    titles: list[str] = []
    for index in range(courses):
        slot = index % CYCLE
        title = _title(index)
        if slot in DUPLICATE_TITLE_OF:
            title = titles[index - slot + DUPLICATE_TITLE_OF[slot]]
        titles.append(title)
        course = builder.course(slot, title=title, category=TITLES[index % len(TITLES)][1])
        kinds: dict[int, set[str]] = {}
        for position, kind in DATE_KINDS.get(slot, []):
            if kind == "sub" and dates_per_course < 2:
                continue
            target = position % dates_per_course if dates_per_course else 0
            if kind == "sub" and target == 0:
                target = 1
            kinds.setdefault(target, set()).add(kind)
        builder.dates(course, dates_per_course, kinds=kinds, allow_past=True)
        builder.products(course, member_price=slot in MEMBER_PRICE_SLOTS)
    builder.addon_products()
    return catalog


def _title(index: int) -> str:
    slot = index % CYCLE
    if slot in HOSTILE_TITLE_SLOTS:
        return HOSTILE_TITLE
    base, _ = TITLES[index % len(TITLES)]
    round_ = index // len(TITLES)
    if round_ == 0:
        return base
    variant = TITLE_VARIANTS[(round_ - 1) % len(TITLE_VARIANTS)]
    edition = (round_ - 1) // len(TITLE_VARIANTS)
    return f"{base} {variant}" + (f" ({edition + 1})" if edition else "")


# --------------------------------------------------------------------------------------------
# Building records
# --------------------------------------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    """ISO 8601 in Oslo local time with its offset, as Frontcore writes timestamps."""
    return moment.astimezone(OSLO).isoformat(timespec="seconds")


def _slug(text: str) -> str:
    """Kursguiden-style URL segment: words joined by '-', Norwegian letters kept."""
    words = re.findall(r"[^\W_]+", text)
    return "-".join(words)


def _ascii(text: str) -> str:
    table = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "Æ": "Ae", "Ø": "O", "Å": "A"})
    return text.translate(table)


class _CourseHints(TypedDict):
    """What the dates of a course need to know that the course record does not show."""

    online: bool
    evening: bool
    days: int
    venue: Record


class _Builder:
    """Creates records into a catalog from one random stream, in a fixed order."""

    def __init__(self, rng: random.Random, today: date, catalog: SampleCatalog):
        self.rng = rng
        self.today = today
        self.catalog = catalog
        # Every generated timestamp lies before today, so a run "today" sees them as past.
        self.horizon = datetime.combine(today - timedelta(days=1), time(21, 30), OSLO).astimezone(
            UTC
        )

    @property
    def _active_instructors(self) -> list[int]:
        return [i for i, r in self.catalog.instructors.items() if r["archived_at"] is None]

    def _next_id(self, kind: str) -> int:
        value = self.catalog.next_ids[kind]
        self.catalog.next_ids[kind] = value + 1
        return value

    def _created_updated(
        self, oldest_days: int, not_after: datetime | None = None
    ) -> tuple[datetime, datetime]:
        """(created, updated) in UTC: a random age, then an edit somewhere since."""
        latest = min(self.horizon, not_after) if not_after else self.horizon
        created = latest - timedelta(
            days=self.rng.randint(1, oldest_days), seconds=self.rng.randint(0, 9 * 3600)
        )
        span = (latest - created).total_seconds()
        updated = created + timedelta(seconds=int(span * self.rng.random() ** 2))
        return created, updated

    # -- reference data ------------------------------------------------------------------------

    def venues(self) -> None:
        for fixture in (*VENUES, VIRTUAL_VENUE, ARCHIVED_VENUE):
            self.catalog.locations[fixture.id] = self._venue(fixture)
        virtual = self.catalog.locations[VIRTUAL_VENUE.id]
        virtual.update(is_virtual=True, country=None, country_code="", idCountry=None)
        self.catalog.locations[ARCHIVED_VENUE.id]["is_archived"] = True
        # The published list example has nulls where booleans belong; keep one such venue.
        self.catalog.locations[6406].update(is_archived=None, is_virtual=None)

    def _venue(self, fixture: VenueFixture) -> Record:
        vid, title, address, zipcode, city, state, lat, lng, capacity, _ = fixture
        full = ", ".join(p for p in (address, f"{zipcode} {city}" if city else None) if p)
        return {
            "id": vid,
            "title": title,
            "custom_title": None,
            "address": address,
            "address2": None,
            "address3": None,
            "zipcode": zipcode,
            "city": city,
            "state": state,
            "county": city,
            "idCountry": 159 if city else None,
            "country": "Norway" if city else None,
            "country_code": "NO" if city else "",
            "idPlace": 0,
            "lat": lat,
            "lng": lng,
            "timezone": "Europe/Oslo" if city else None,
            "long_text": None,
            "short_text": None,
            "short_text_2": None,
            "capacity_min": 4,
            "capacity_max": capacity,
            "capacity_overbook": 2,
            "capacity_budget": None,
            "capacity_wait": 5,
            "idInstructor": None,
            "email_booking": None,
            "email_moreinfo": None,
            "is_default": vid == 6401,
            "is_archived": False,
            "is_virtual": False,
            "cancellation_days": 14,
            "notification_days": None,
            "notification_role": None,
            "is_notification_enabled": False,
            "full_address": full or None,
            "filtered_places": [],
        }

    def instructor_records(self) -> None:
        for index, (first, last, position, company) in enumerate(INSTRUCTORS):
            iid = 2201 + index
            created, _ = self._created_updated(1500)
            local = created.astimezone(OSLO)
            email_name = _ascii(f"{first}.{last}").lower().replace(" ", "")
            self.catalog.instructors[iid] = {
                "id": iid,
                "firstname": first,
                "lastname": last,
                "phone_prefix": "47",
                "phone": f"9{self.rng.randint(1000000, 9999999)}",
                "email": f"{email_name}@kursleverandoren.example",
                "position": position,
                "company": company,
                "description": f"{first} {last} har lang erfaring som {position.lower()}.",
                "idUser": None if index % 3 else 5100 + index,
                "archived_at": (
                    (local + timedelta(days=200)).strftime("%Y-%m-%d %H:%M:%S")
                    if index == ARCHIVED_INSTRUCTOR_INDEX
                    else None
                ),
                "created_at": local.strftime("%Y-%m-%d %H:%M:%S"),
            }

    def _embedded_instructor(self, iid: int) -> Record:
        """The short instructor form used inside gatherings (§5.6)."""
        record = self.catalog.instructors[iid]
        name = f"{record['firstname']} {record['lastname']}"
        return {
            "id": iid,
            "title": name,
            "name": name,
            "fullname": name,
            "phone": record["phone"],
            "company": record["company"],
            "position": record["position"],
            "email": record["email"],
            "is_archived": record["archived_at"] is not None,
        }

    # -- courses --------------------------------------------------------------------------------

    def course(
        self, slot: int, *, title: str, category: int | None = None, plain: bool = False
    ) -> Record:
        """One course; ``plain`` switches the realism schedule off (for added courses)."""
        rng = self.rng
        cid = self._next_id("course")

        def has(slots: Container[int]) -> bool:
            return not plain and slot in slots

        category = category if category is not None else rng.choice(list(CATEGORIES))
        currency, value, comment = ("NOK", rng.choice(PRICES), rng.choice(PRICE_COMMENTS))
        if not plain and slot in PRICE_OVERRIDES:
            currency, value, comment = PRICE_OVERRIDES[slot]
        online = rng.random() < 0.15
        evening = not online and rng.random() < 0.2
        venue = self.catalog.locations[rng.choice(VENUES).id]
        chosen: list[Record] = [{"id": category, "title": CATEGORIES[category]}]
        if rng.random() < 0.3:
            extra = rng.choice([c for c in CATEGORIES if c != category])
            chosen.append({"id": extra, "title": CATEGORIES[extra]})
        categories = None if has(NULL_CATEGORY_SLOTS) else chosen
        reference: str | None = f"{_initials(title)}-{cid - FIRST_COURSE_ID + 1001}"
        if has(NULL_REFERENCE_SLOTS):
            reference = None
        elif has(ODD_REFERENCE_SLOTS):
            reference = f"ØKO {cid % 1000}/B"
        internal = has(INTERNAL_SLOTS)
        level = LEVEL_COURSES
        if internal or has(CORPORATE_LEVEL_SLOTS):
            level = LEVEL_CORPORATE
        elif rng.random() < 0.1:
            level = LEVEL_CERTIFICATION
        language = ENGLISH if has(ENGLISH_SLOTS) else NORWEGIAN
        texts = _texts(title, rng)
        if has(HOSTILE_TEXT):
            field_name, fragment = HOSTILE_TEXT[slot]
            texts[field_name] = texts[field_name] + fragment
        custom: list[object] | dict[str, object] = []  # Frontcore's [] for "none"
        if has(COURSE_PROPERTY_SLOTS):
            custom = {"special_note": rng.choice(SPECIAL_NOTES)}
        category_slug = _slug(CATEGORIES[categories[0]["id"]] if categories else "Kurs")
        days = rng.choice((1, 1, 1, 2, 2, 3))
        created, updated = self._created_updated(900)
        course = {
            "id": cid,
            "title": title,
            "reference": reference,
            "is_active": not has(INACTIVE_SLOTS),
            "type": "internal" if internal else "public",
            "kursguiden_url": f"https://www.kursguiden.no/kurs/{category_slug}/{_slug(title)}/",
            "is_full_time": not evening,
            "is_part_time": evening,
            "lessons_hours": None if rng.random() < 0.5 else days * 7,
            "level": dict(level),
            "form_of_teaching": dict(ONLINE if online else rng.choice((CLASSROOM, BLENDED))),
            "teaching_language": dict(language),
            "time_of_day": dict(EVENING if evening else DAYTIME) if rng.random() < 0.7 else None,
            "duration": (
                None if rng.random() < 0.3 else {"value": days, "unit": {"id": 1, "title": "day"}}
            ),
            "price": {"value": value, "currency": currency, "comment": comment},
            "categories": categories,
            "tags": [],
            "visit_address": "" if online else venue["address"],
            "visit_address2": "",
            "visit_zipcode": "" if online else venue["zipcode"],
            "visit_city": "" if online else venue["city"],
            "custom_properties": custom,
            "description_languages": ["no", "en"] if language is ENGLISH else ["no"],
            **texts,
            "email_booking": "kurs@kursleverandoren.example",
            "external_booking_url": (
                f"https://booking.kursleverandoren.example/kurs/{cid}" if rng.random() < 0.2 else ""
            ),
            # Not from rng: the sample's other values must not move when this one is added.
            "external_more_info_url": (
                f"https://kursleverandoren.example/kurs/{cid}" if cid % 5 == 0 else ""
            ),
            "created_at": _stamp(created),
            "updated_at": _stamp(updated),
        }
        if has(KURSGUIDEN_BOOKING_SLOTS | NO_BOOKING_PATH_SLOTS):
            # Set after the record is made: the sample's other values must not move.
            course.update(email_booking=None, external_booking_url="")
        if has(NO_BOOKING_PATH_SLOTS):
            course["kursguiden_url"] = None
        # What the dates of this course need to know but the course record does not show.
        self._course_hints: _CourseHints = {
            "online": online,
            "evening": evening,
            "days": days,
            "venue": venue,
        }
        self.catalog.courses[cid] = course
        return course

    # -- dates ----------------------------------------------------------------------------------

    def dates(
        self, course: Record, count: int, *, kinds: dict[int, set[str]], allow_past: bool
    ) -> list[Record]:
        rng, today = self.rng, self.today
        hints = self._course_hints
        cursor = today + timedelta(days=rng.randint(5, 40))
        random_past = allow_past and rng.random() < 0.35
        made: list[Record] = []
        for index in range(count):
            wanted = kinds.get(index, set())
            parent = made[index - 1] if "sub" in wanted and index > 0 else None
            deadline_passed = wanted & {"deadline_passed_visible", "deadline_passed_hidden"}
            if parent is not None:
                start = date.fromisoformat(parent["start_at"]) + timedelta(days=1)
                days = 1
            elif "past" in wanted or (index == 0 and random_past and not wanted):
                start = today - timedelta(days=rng.randint(14, 240))
                days = hints["days"]
            elif deadline_passed:
                start = today + timedelta(days=rng.randint(2, 6))
                days = hints["days"]
            else:
                start = cursor
                cursor += timedelta(days=rng.randint(21, 70))
                days = hints["days"]
            made.append(self._date(course, index, start, days, wanted, parent))
        return made

    def _date(
        self,
        course: Record,
        index: int,
        start: date,
        days: int,
        wanted: set[str],
        parent: Record | None,
    ) -> Record:
        rng, today, hints = self.rng, self.today, self._course_hints
        did = self._next_id("coursedate")
        virtual = "virtual" in wanted or (hints["online"] and rng.random() < 0.8)
        if parent is not None:
            venue_id = parent["gatherings"][0]["idLocation"]
        elif virtual:
            venue_id = VIRTUAL_VENUE.id
        else:
            venue_id = rng.choice((hints["venue"]["id"], rng.choice(VENUES).id))
        venue = self.catalog.locations[venue_id]

        if hints["evening"] and parent is None:
            sessions = rng.randint(3, 6)
            session_days = [start + timedelta(weeks=w) for w in range(sessions)]
            start_time, end_time = "18:00", "21:00"
        else:
            session_days = [start + timedelta(days=d) for d in range(days)]
            start_time, end_time = rng.choice(
                (("09:00", "15:30"), ("08:30", "16:00"), ("09:00", "12:00"))
            )
        end = session_days[-1]
        if "deadline_passed_visible" in wanted or "deadline_passed_hidden" in wanted:
            deadline: date | None = today - timedelta(days=rng.randint(1, 3))
        elif rng.random() < 0.05:
            deadline = None
        else:
            deadline = start - timedelta(days=rng.randint(3, 14))
        visible_after_deadline = rng.random() < 0.8
        if "deadline_passed_visible" in wanted:
            visible_after_deadline = True
        elif "deadline_passed_hidden" in wanted:
            visible_after_deadline = False

        start_moment = datetime.combine(start, time(21, 30), OSLO).astimezone(UTC)
        created, updated = self._created_updated(400, not_after=start_moment - timedelta(days=7))
        stamp_created, stamp_updated = _stamp(created), _stamp(updated)

        teachers = [
            self._embedded_instructor(i)
            for i in rng.sample(self._active_instructors, rng.choice((1, 1, 2)))
        ]
        gatherings = []
        for day in session_days:
            gid = self._next_id("gathering")
            gatherings.append(
                {
                    "id": gid,
                    "idInstance": did,
                    "gathering_at": f"{day.isoformat()} {start_time}",
                    "gathering_end_at": f"{day.isoformat()} {end_time}",
                    "idLocation": venue_id,
                    "description": None,
                    "theme": None,
                    "event_url": "https://zoom.example/j/84120" + str(gid) if virtual else None,
                    "created_at": stamp_created,
                    "updated_at": stamp_updated,
                    "is_future": day >= today,
                    "instructors": [dict(t) for t in teachers],
                    "location": venue,
                }
            )

        status = 2
        for kind, status_id in (("to_be_defined", 1), ("canceled", 3), ("postponed", 4)):
            if kind in wanted:
                status = status_id
        if not wanted and rng.random() < 0.03:
            status = rng.choice((1, 3))

        place: dict[str, object] = {"title_additional_info": None}
        venue_fixture = next((v for v in VENUES if v.id == venue_id), None)
        place_fixture = venue_fixture.place if venue_fixture is not None else None
        if place_fixture is not None and "no_place" not in wanted:
            pid, ptitle, parent_place, parent_title = place_fixture
            place = {
                "id": pid,
                "title": ptitle,
                "title_additional_info": "Inngang fra bakgården" if rng.random() < 0.1 else None,
                "parent_id": parent_place,
                "parent_title": parent_title,
            }
        location_null = "location_null" in wanted or (not wanted and rng.random() < 0.08)
        no_time = "no_time" in wanted
        custom: list[object] | dict[str, object] = []  # Frontcore's [] for "none"
        if "custom_properties" in wanted:
            custom = {"partner": "NAV", "rom": "Auditorium 2", "kampanje": None}
        record = {
            "coursedate_id": did,
            "title": course["title"],
            "start_at": start.isoformat(),
            "start_time_at": None if no_time else f"{start_time}:00",
            "end_at": end.isoformat(),
            "end_time_at": None if no_time else f"{end_time}:00",
            "timezone": (
                None
                if "timezone_null" in wanted or (not wanted and rng.random() < 0.1)
                else "Europe/Oslo"
            ),
            "deadline_at": deadline.isoformat() if deadline else None,
            "place": place,
            "event_url": gatherings[0]["event_url"] or "",
            "location": None if location_null else venue,
            "is_virtual": virtual,
            "is_visible": "invisible" not in wanted,
            "teaching_language": dict(course["teaching_language"]),
            "kursguiden_url": course["kursguiden_url"],
            "visible_when_passed_deadline": visible_after_deadline,
            "reference": (
                f"{course['reference']}-{index + 1:02d}"
                if course["reference"] and rng.random() < 0.6
                else None
            ),
            "parent_id": parent["coursedate_id"] if parent is not None else None,
            "trigger_value": None,
            "seats_status": "open",
            "seats": self._seats(venue, wanted),
            "gatherings": gatherings,
            "custom_properties": custom,
            "status": {"id": status, "idType": 2, "title": STATUSES[status]},
            "created_at": stamp_created,
            "updated_at": stamp_updated,
            "deleted_at": stamp_updated if "deleted" in wanted else None,
            "contacts": [],
            "course_id": course["id"],
        }
        seats = record["seats"]
        if seats["allocated_capacity"]["num"] > 0 and int(seats["free"]["num"]) <= 0:
            record["seats_status"] = "fully_booked"
        self.catalog.coursedates[did] = record
        return record

    def _seats(self, venue: Record, wanted: set[str]) -> Record:
        """§5.7 with Frontcore's mix of integer and string counts."""
        rng = self.rng
        capacity = venue["capacity_max"] or 20
        waiting_capacity = rng.choice((0, 0, 5))
        if "unknown_capacity" in wanted:
            capacity, booked = 0, rng.randint(0, 4)
        elif "full" in wanted or rng.random() < 0.07:
            booked = capacity
        else:
            booked = rng.randint(0, capacity - 1)
        unconfirmed = rng.randint(0, min(2, booked))
        waiting = rng.randint(0, waiting_capacity) if capacity and booked >= capacity else 0
        free = max(capacity - booked, 0)
        string_free = "free_string" in wanted or rng.random() < 0.05
        return {
            "allocated_capacity": {
                "num": capacity,
                "num_overbooked": rng.choice(("0", "0", "2")),
                "num_waiting": str(waiting_capacity),
            },
            "free": {
                "num": str(free) if string_free else free,
                "num_waiting": waiting_capacity - waiting,
            },
            "booking_status": {
                "num": booked,
                "num_confirmed": booked - unconfirmed,
                "num_unconfirmed": unconfirmed,
                "num_waiting": waiting,
            },
        }

    # -- products -------------------------------------------------------------------------------

    def products(self, course: Record, *, member_price: bool) -> list[Record]:
        price = course["price"]
        made = [
            self._product(
                course["title"],
                2,
                course["id"],
                price["value"],
                price["currency"],
                main=True,
                stamps=(course["created_at"], course["updated_at"]),
            )
        ]
        if member_price:
            made.append(
                self._product(
                    course["title"],
                    2,
                    course["id"],
                    int(price["value"] * 0.8),
                    price["currency"],
                    main=False,
                    stamps=(course["created_at"], course["updated_at"]),
                    label="Medlemspris",
                )
            )
        return made

    def addon_products(self) -> None:
        for index, (title, price) in enumerate(ADDONS):
            created, updated = self._created_updated(1200)
            product = self._product(
                title, 1, 0, price, "NOK", main=False, stamps=(_stamp(created), _stamp(updated))
            )
            # One retired addon of each kind, so the flags are exercised.
            product["is_archived"] = index == 2
            product["is_deleted"] = index == 3

    def _product(
        self,
        title: str,
        id_type: int,
        relation: int,
        price: int,
        currency: str,
        *,
        main: bool,
        stamps: tuple[str, str],
        label: str | None = None,
    ) -> Record:
        pid = self._next_id("product")
        product = {
            "id": pid,
            "title": title,
            "title_label": label,
            "type": None,
            "id_type": id_type,
            "id_relation": relation,
            "price": price,
            "currency": dict(CURRENCIES[currency]),
            "vat": {"id": 1, "vat": 0, "name": "0.00%"},
            "group": dict(COURSE_GROUP if id_type == 2 else ADDON_GROUP),
            "is_main_price": main,
            "is_member_price": label == "Medlemspris",
            "id_product_regular_price": 0,
            "is_archived": False,
            "is_deleted": False,
            "item_number": str(pid),
            "account_number": None,
            "cost_unit": None,
            "id_external_system": None,
            "co_products": [],
            "created_at": stamps[0],
            "updated_at": stamps[1],
        }
        self.catalog.products[pid] = product
        return product


PRICES = (1490, 2900, 3500, 4900, 6500, 8900, 12500, 14900, 24900)
PRICE_COMMENTS = (None, None, None, "Inkl. lunsj og kursmateriell", "Ekskl. mva.")
SPECIAL_NOTES = ("Ta med egen PC", "Kurset gir 7 timer etterutdanning", "Krever politiattest")


def _initials(title: str) -> str:
    words = re.findall(r"[^\W\d_]+", _ascii(title))
    letters = "".join(w[0] for w in words[:4]).upper()
    return letters or "KURS"


def _texts(title: str, rng: random.Random) -> dict[str, str]:
    """Lead (plain text) and the HTML description fields, benign Norwegian prose."""
    topic = title[0].lower() + title[1:]
    lead = f"Et praktisk kurs i {topic} for deg som vil bli tryggere i jobben. " + rng.choice(
        LEAD_ENDINGS
    )
    link = rng.choice(LINKS)
    description = (
        f"<p>Kurset gir deg en grundig innføring i <strong>{topic}</strong>, med øvelser "
        "fra hverdagen og god tid til spørsmål.</p>"
        "<ul><li>Teori og gjeldende regelverk</li><li>Praktiske øvelser i små grupper</li>"
        "<li>Kursbevis etter fullført kurs</li></ul>"
        f'<p>Les mer hos <a href="{link[0]}">{link[1]}</a>.</p>'
    )
    prerequisites = rng.choice(
        (
            "",
            "<p>Ingen forkunnskaper kreves.</p>",
            "<p>Du bør ha grunnleggende kjennskap til faget &amp; ta med egen PC.</p>",
        )
    )
    audience = rng.choice(
        (
            "<p>Ledere, verneombud og ansatte i små og store virksomheter.</p>",
            "<p>Alle som ønsker å lære mer – både nybegynnere og erfarne.</p>",
            "<ul><li>Nyansatte</li><li>Mellomledere</li><li>Tillitsvalgte</li></ul>",
        )
    )
    return {
        "text_lead": lead,
        "text_description": description,
        "text_prerequisites": prerequisites,
        "text_audience": audience,
    }


LEAD_ENDINGS = (
    "Du får kursbevis etter fullført kurs.",
    "Kurset holdes av erfarne instruktører.",
    "Undervisningen veksler mellom teori og praktiske øvelser.",
    "Passer like godt for nybegynnere som for erfarne.",
)
LINKS = (
    ("https://www.arbeidstilsynet.no/", "Arbeidstilsynet"),
    ("https://www.skatteetaten.no/bedrift-og-organisasjon/", "Skatteetaten"),
    ("https://www.regjeringen.no/no/tema/arbeidsliv/id1258/", "regjeringen.no"),
    ("https://www.sprakradet.no/Klarsprak/", "Språkrådet"),
)
