"""The page plan: which pages a catalog has, where each lives, and what each one shows.

Deciding pages is separate from drawing them (render.py) and from writing them (output.py), so
the URL scheme is one small table and the plan can be tested without templates. Paths are
relative file paths (``kurs/forstehjelp-22001/index.html``); links between pages are made
relative by the renderer, so a site works from a domain root, a sub-folder or a file:// preview.

URLs are keyed by id (see slugs.py): a course keeps its address whatever other courses do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Generic, TypeVar

from catalog_gen.errors import BuildError
from catalog_gen.site.content import ContentPage
from catalog_gen.site.model import (
    FACETS,
    Catalog,
    Category,
    City,
    Course,
    CourseDate,
    FacetValue,
    Venue,
    derived,
)

#: Folder names per site language: visitors read URLs too.
SEGMENTS = {
    "nb": {
        "course": "kurs",
        "category": "kategori",
        "venue": "sted",
        "city": "by",
        "calendar": "kalender",
        "page": "side",
        "month": "maned",
        "language": "sprak",
        "form": "form",
        "search": "sok",
    },
    "en": {
        "course": "courses",
        "category": "category",
        "venue": "venue",
        "city": "city",
        "calendar": "calendar",
        "page": "page",
        "month": "month",
        "language": "language",
        "form": "format",
        "search": "search",
    },
}
NOT_FOUND = "404.html"
#: Pagefind's folder in the site (see search.py).
SEARCH_INDEX = "pagefind"
SITEMAP = "sitemap.xml"
ROBOTS = "robots.txt"
FEED = "feed.xml"


def absolute(site_url: str, path: str) -> str:
    """The public address of a planned file under ``site_url``; ``index.html`` reads as its
    folder, as web servers serve it."""
    if path == "index.html":
        path = ""
    elif path.endswith("/index.html"):
        path = path[: -len("index.html")]
    return site_url + path


@dataclass(frozen=True)
class Urls:
    """The one place that knows where each kind of page lives.

    Its methods give a planned path (``kurs/forstehjelp-22017/index.html``); a template links
    to it with ``url()``: ``<a href="{{ url(urls.course(course)) }}">``.
    """

    #: The site's language, which names the folders (``kurs/`` or ``courses/``).
    language: str = "nb"

    def _seg(self, kind: str) -> str:
        return SEGMENTS[self.language][kind]

    def paged(self, folder: str, number: int) -> str:
        """Page 1 of a list lives at the folder; page n under ``side/n/``."""
        prefix = f"{folder}/" if folder else ""
        if number <= 1:
            return f"{prefix}index.html"
        return f"{prefix}{self._seg('page')}/{number}/index.html"

    def home(self, number: int = 1) -> str:
        """The home page (page ``number`` of the course list)."""
        return self.paged("", number)

    def course(self, course: Course) -> str:
        """A course's page."""
        return f"{self._seg('course')}/{course.slug}/index.html"

    def course_pages(self) -> str:
        """A glob of every course page (what the search index reads)."""
        return f"{self._seg('course')}/*/index.html"

    def categories(self) -> str:
        """The list of categories."""
        return f"{self._seg('category')}/index.html"

    def category(self, category: Category, number: int = 1) -> str:
        """A category's courses (page ``number``)."""
        return self.paged(f"{self._seg('category')}/{category.slug}", number)

    def venues(self) -> str:
        """The list of venues, by town."""
        return f"{self._seg('venue')}/index.html"

    def venue(self, venue: Venue, number: int = 1) -> str:
        """A venue's courses (page ``number``)."""
        return self.paged(f"{self._seg('venue')}/{venue.slug}", number)

    def city(self, city: City, number: int = 1) -> str:
        """A town's courses (page ``number``)."""
        return self.paged(f"{self._seg('city')}/{city.slug}", number)

    def calendar(self, number: int = 1) -> str:
        """The calendar of upcoming dates (page ``number``)."""
        return self.paged(self._seg("calendar"), number)

    def facet(self, value: FacetValue, number: int = 1) -> str:
        """A course list filtered by month, teaching language or form of teaching."""
        return self.paged(f"{self._seg(value.kind)}/{value.slug}", number)

    def search(self) -> str:
        """The search page."""
        return f"{self._seg('search')}/index.html"

    def content(self, page: ContentPage) -> str:
        """A content page."""
        return f"{page.slug}/index.html"

    # Calendar files: beside the course page, named so a download says what it is.
    def course_calendar(self, course: Course) -> str:
        """A course's calendar file (all its dates)."""
        return f"{self._seg('course')}/{course.slug}/{course.slug}.ics"

    def date_calendar(self, course: Course, course_date: CourseDate) -> str:
        """One date's calendar file."""
        return f"{self._seg('course')}/{course.slug}/{course.slug}-{course_date.id}.ics"

    def site_calendar(self) -> str:
        """The calendar file of every upcoming date (to subscribe to)."""
        return f"{self._seg('calendar')}.ics"

    def feed(self) -> str:
        """The Atom feed of new dates."""
        return FEED

    def reserved(self) -> set[str]:
        """The folder names the catalog uses (a content page may not take one)."""
        return set(SEGMENTS[self.language].values()) | {"static", SEARCH_INDEX}


#: How many pages either side of its own a list page's pager links to (``Pagination.nearby``).
PAGER_REACH = 2
#: What a list holds (courses, or dates on the calendar).
T = TypeVar("T")
#: What a list is of (a category, a venue, a town).
R = TypeVar("R")


@dataclass(frozen=True)
class Pagination(Generic[T]):
    """One page of a long list, with the paths of its neighbours (give them to ``url()``)."""

    #: This page's share of the list (courses, or dates on the calendar).
    items: tuple[T, ...]
    #: This page's number, from 1.
    number: int
    #: How many pages the list has.
    count: int
    #: How many items the whole list has.
    total: int
    #: The path of page n of the list: the list's address, which the page's own path shows.
    path_of: Callable[[int], str] = field(
        repr=False, compare=False, metadata=derived("the page's path")
    )
    #: The position of this page's first item in the whole list, from 1.
    first: int = 1

    @property
    def previous(self) -> str | None:
        """The previous page's path (None on the first)."""
        return self.path_of(self.number - 1) if self.number > 1 else None

    @property
    def next(self) -> str | None:
        """The next page's path (None on the last)."""
        return self.path_of(self.number + 1) if self.number < self.count else None

    @property
    def pages(self) -> list[tuple[int, str]]:
        """Every page of the list as (number, path)."""
        return [(n, self.path_of(n)) for n in range(1, self.count + 1)]

    @property
    def nearby(self) -> list[tuple[int, str] | None]:
        """The pages a pager offers, as (number, path): the first, the last, and those up to
        ``PAGER_REACH`` either side of this one, with None where pages are left out (never
        for one page alone: that page is shown instead). A pager of every page would grow
        with the list on each of its pages (a list of 300 pages would link 300 times from
        each)."""
        shown = {1, self.count} | set(
            range(max(1, self.number - PAGER_REACH), min(self.count, self.number + PAGER_REACH) + 1)
        )
        nearby: list[tuple[int, str] | None] = []
        for n in sorted(shown):
            last = nearby[-1] if nearby else None
            if last is not None and n - last[0] == 2:
                nearby.append((n - 1, self.path_of(n - 1)))
            elif last is not None and n - last[0] > 2:
                nearby.append(None)
            nearby.append((n, self.path_of(n)))
        return nearby


@dataclass(frozen=True)
class Shows:
    """What a page's context holds, in terms a build compares without walking it
    (buildstate.PageInputs): the courses it shows by id (a course's fingerprint stands for
    it and its dates), and the rest (a list's own record, the pager's numbers, a calendar
    page's dates by id, a content page). Made by ``plan_pages`` from the very values it puts
    in the context; two pages with equal ``Shows`` whose courses did not change have equal
    contexts."""

    courses: tuple[int, ...] = ()
    rest: tuple[object, ...] = ()


@dataclass(frozen=True)
class Page:
    """One file of the site: where it goes, which template draws it, and with what.

    ``lastmod`` is the newest change to the data the page shows (sitemap.xml); pages that
    search engines should not list (404, the search page) are not ``indexable``. ``shows``
    says what ``context`` is made of (None: only the context itself tells).
    """

    path: str
    template: str
    context: dict[str, Any]
    lastmod: datetime | None = None
    indexable: bool = True
    shows: Shows | None = None


def paginate(
    items: Sequence[T], per_page: int, path_of: Callable[[int], str]
) -> list[Pagination[T]]:
    """Split a list into pages; an empty list still gets its first page."""
    count = max(1, math.ceil(len(items) / per_page))
    return [
        Pagination(
            tuple(items[(n - 1) * per_page : n * per_page]),
            n,
            count,
            len(items),
            path_of,
            (n - 1) * per_page + 1,
        )
        for n in range(1, count + 1)
    ]


def plan_pages(
    catalog: Catalog,
    content: Sequence[ContentPage],
    urls: Urls,
    per_page: int,
    *,
    search: bool = False,
) -> list[Page]:
    """Every page of the site, in a stable order."""
    _check_content_slugs(content, urls)
    pages: list[Page] = []
    everything = _newest(c.last_modified for c in catalog.courses)

    for part in paginate(catalog.courses, per_page, urls.home):
        pages.append(_list_page(urls.home(part.number), "home.html", part))

    for course in catalog.courses:
        pages.append(
            Page(
                urls.course(course),
                "course.html",
                {"course": course},
                course.last_modified,
                shows=Shows((course.id,)),
            )
        )

    pages.append(Page(urls.categories(), "categories.html", {}, everything, shows=Shows()))
    for category in catalog.categories:
        pages += _listing(
            "category", category, catalog.courses_in(category), urls.category, per_page
        )
    pages.append(Page(urls.venues(), "venues.html", {}, everything, shows=Shows()))
    for venue in catalog.venues:
        pages += _listing("venue", venue, catalog.courses_at(venue), urls.venue, per_page)
    for city in catalog.cities:
        pages += _listing("city", city, catalog.courses_in_city(city), urls.city, per_page)
    for kind in FACETS:
        for value in catalog.facet(kind):
            pages += [
                _list_page(urls.facet(value, part.number), "facet.html", part, "facet", value)
                for part in paginate(
                    catalog.courses_with(value), per_page, partial(urls.facet, value)
                )
            ]

    for dated in paginate(catalog.dates, per_page * 2, urls.calendar):
        courses = {d.course_id: catalog.course(d.course_id) for d in dated.items}
        pages.append(
            Page(
                urls.calendar(dated.number),
                "calendar.html",
                {"pagination": dated, "months": group_by_month(dated.items), "courses": courses},
                _newest(d.updated_at for d in dated.items),
                # A date is part of its course (and its fingerprint); the months are its dates'.
                shows=Shows(tuple(courses), (tuple(d.id for d in dated.items), *_numbers(dated))),
            )
        )

    for page in content:
        shows = Shows(rest=(page,))
        pages.append(Page(urls.content(page), "content.html", {"page": page}, shows=shows))

    if search:
        pages.append(Page(urls.search(), "search.html", {}, indexable=False, shows=Shows()))
    pages.append(Page(NOT_FOUND, "404.html", {}, indexable=False, shows=Shows()))
    return pages


def _newest(stamps: Iterable[datetime | None]) -> datetime | None:
    return max((s for s in stamps if s is not None), default=None)


def _lastmod(courses: Iterable[Course]) -> datetime | None:
    return _newest(c.last_modified for c in courses)


def _listing(
    kind: str, record: R, courses: Sequence[Course], url_of: Callable[[R, int], str], per_page: int
) -> list[Page]:
    """The pages listing one category's, venue's or city's courses (``<kind>.html``)."""
    return [
        _list_page(url_of(record, part.number), f"{kind}.html", part, kind, record)
        for part in paginate(courses, per_page, lambda n: url_of(record, n))
    ]


def _list_page(
    path: str, template: str, part: Pagination[Course], kind: str = "", record: object = None
) -> Page:
    """One page of a list of courses: the page of ``part``, and the list's own ``record``
    (a category, a venue, a town, a filter value) as ``kind`` when it has one."""
    context: dict[str, Any] = {kind: record} if kind else {}
    context["pagination"] = part
    shows = Shows(tuple(c.id for c in part.items), (kind, record, *_numbers(part)))
    return Page(path, template, context, _lastmod(part.items), shows=shows)


def _numbers(part: Pagination[Any]) -> tuple[int, int, int, int]:
    """What a pagination holds besides its items (its ``path_of`` is the page's path's)."""
    return (part.number, part.count, part.total, part.first)


def group_by_month(dates: Sequence[CourseDate]) -> list[tuple[tuple[int, int], list[CourseDate]]]:
    """Consecutive dates grouped under (year, month), in order."""
    groups: list[tuple[tuple[int, int], list[CourseDate]]] = []
    for d in dates:
        key = (d.start_date.year, d.start_date.month)
        if not groups or groups[-1][0] != key:
            groups.append((key, []))
        groups[-1][1].append(d)
    return groups


def _check_content_slugs(content: Sequence[ContentPage], urls: Urls) -> None:
    reserved = urls.reserved()
    for page in content:
        if page.slug in reserved:
            raise BuildError(
                f"{page.source}: the page address '{page.slug}/' is used by the catalog; "
                "rename the file or set another 'slug' in its front matter"
            )
