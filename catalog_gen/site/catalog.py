"""The published catalog at a moment: drafts put together, part by part.

``build_catalog`` makes the catalog from a whole snapshot; the model cache (modelcache.py)
makes the same catalog from what earlier builds kept of each part (a shard of the snapshot):
``summarize`` tells what a part offers the others (its venues, categories, the courses its
dates name), ``Tables`` are those gathered, ``PartAt`` applies the clock to a part's drafts
(a date that started or closed for booking: "today" is the run's ``now`` seen in each date's
own zone) and ``PartOutput`` is what it gave, with the days it holds for; ``combine`` puts the
parts' outputs into one ``Catalog``. What a visitor may see is decided by the rules
(rules.py) on the drafts (drafts.py); cities are merged by cities.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from catalog_gen.anomalies import Anomalies, Anomaly, kind
from catalog_gen.config import PublishSettings
from catalog_gen.dates import parse_day
from catalog_gen.site.cities import CityMerge, merge_cities
from catalog_gen.site.drafts import (
    NO_SLUG,
    PLAUSIBLE,
    DateDraft,
    DraftRules,
    Drafts,
    LocationDraft,
    VenueRef,
    draft_records,
    keep_newest,
)
from catalog_gen.site.model import (
    FACETS,
    Catalog,
    Category,
    City,
    Course,
    CourseDate,
    FacetValue,
    Session,
    Venue,
)
from catalog_gen.site.rules import (
    NO_CONTACT,
    ONLINE_ONLY,
    BookingTerms,
    DateTerms,
    date_booking,
)
from catalog_gen.site.slugs import slug_with_id, slugify
from catalog_gen.snapshot import Snapshot

DATE_COURSE = kind("date.course_missing", "course date whose course is not in the data; left out")


DATE_PARENT = kind(
    "date.parent_unusable",
    "sub-date whose parent_id names no date of its own in the data; left out",
)


DATE_START = kind(
    "date.start_unreadable",
    "course date without a readable start day (or one more than 10 years ahead); left out",
)


SESSION = kind(
    "date.session_unreadable",
    "sub-date or gathering without a readable start (or more than 10 years away); left out "
    "of the date's sessions",
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

    #: The ids of its course and top date records, as the snapshot keys them (any value: a
    #: record with an unusable id is drafted too, and named by it).
    course_ids: frozenset[object]
    published: frozenset[int]
    top_ids: frozenset[object]
    #: Category id → (lowest course id naming it, that course's title for it).
    titles: Mapping[int, tuple[int, str]]
    #: Category id → (lowest course id with a title for it that makes no address, that title).
    unaddressable: Mapping[int, tuple[int, str]]
    locations: Mapping[int, tuple[int, LocationDraft]]
    places: Mapping[int, tuple[int, Venue]]
    #: Course ids its dates name and parent ids its sub-dates name that are not its own.
    foreign_courses: frozenset[int]
    foreign_parents: frozenset[int]

    @property
    def linked(self) -> bool:
        """Whether it names records of other parts (then it is always assembled again)."""
        return bool(self.foreign_courses or self.foreign_parents)


def summarize(drafts: Drafts) -> Summary:
    # A published course's id is its record's (``draft_course``), a usable one.
    published = sorted(d.course.id for d in drafts.courses.values() if d.course is not None)
    titles: dict[int, tuple[int, str]] = {}
    unaddressable: dict[int, tuple[int, str]] = {}
    for cid in published:
        for category_id, title in drafts.courses[cid].categories:
            titles.setdefault(category_id, (cid, title))
            if not slugify(title):
                unaddressable.setdefault(category_id, (cid, title))
    top_ids = frozenset(did for did, d in drafts.dates.items() if d.top)
    foreign_courses: set[int] = set()
    foreign_parents: set[int] = set()
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
    course_ids: Container[object]
    top_ids: Container[object]
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
            keep_newest(locations, summary.locations)
            keep_newest(places, summary.places)
            for category_id, named in summary.titles.items():
                if category_id not in titles or named[0] < titles[category_id][0]:
                    titles[category_id] = named
        categories = {
            category_id: Category(category_id, title, slug_with_id(title, category_id, "kategori"))
            for category_id, (_, title) in titles.items()
        }
        course_ids: set[object] = set()
        top_ids: set[object] = set()
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
            away: set[object] = set()  # its tops whose course is in another part
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

    def anomalies(
        self, summaries: Iterable[Summary], used_locations: Iterable[int]
    ) -> list[Anomaly]:
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
        old_dates: dict[object, CourseDate] = {
            d.id: d for c in (before or {}).values() for d in c.dates
        }
        merged: dict[int, Venue] = {}
        courses = []
        for draft in self.drafts.courses.values():
            if draft.course is None:
                continue
            cid = draft.course.id  # its record's id (``draft_course``), a usable one
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
        for course_draft in drafts.courses.values():
            found.extend(course_draft.anomalies)
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
        for course_key in drafts.courses:
            tops.extend(tables.dates_for.get(course_key, ()))
        result: dict[int, list[Pending]] = defaultdict(list)
        for draft in tops:
            cid = draft.course_id
            if cid not in drafts.courses:
                if cid is None or cid not in tables.course_ids:
                    found.add(DATE_COURSE, draft.name, "course_id", draft.course_raw)
                continue  # else: the date of a course in another part, which assembles it
            course = drafts.courses[cid].course
            if course is None:
                continue  # the course is not published, and so neither are its dates
            found.extend(draft.zone_anomalies)
            subs = [*children.get(draft.id, ()), *tables.children_for.get(draft.id, ())]
            # A listed draft's id passed ``usable_id`` (``draft_date``): a whole number.
            published = self._at(draft, sorted(subs, key=lambda c: cast(int, c.id)))
            if published is not None:
                result[course.id].append(published)  # ``cid``, as a published course's id
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
                field = f"gatherings[{gathering.position}].gathering_at"
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
        and made.booking == date_booking(terms, made.status, passed, made.seats, made.start_date)
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
    # A published draft is listed, so ``draft_date`` gave it a usable id and its seats, and
    # ``_at`` publishes none without a start day.
    assert isinstance(draft.id, int) and draft.start is not None and draft.seats is not None
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
        booking=date_booking(terms, draft.status, deadline_passed, draft.seats, draft.start),
        sessions=sessions,
        instructors=draft.instructors,
        updated_at=draft.updated_at,
        first_seen=draft.first_seen,
        seats_as_of=draft.seats_as_of,
        online_url=online_url,
        custom_properties=draft.custom_properties,
        extra=draft.extra,
    )


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
    return make_catalog(courses, tables.categories, merge.city_of, now, fetched_at)


def make_catalog(
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
