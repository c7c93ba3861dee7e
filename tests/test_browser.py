"""The built demo site in a real browser: Debian's chromium driven by Playwright.

The site is served on 127.0.0.1 by a plain static server that, like the usual static hosts,
answers a missing address with the site's own 404.html. Every request to another host is
aborted (and counted as an error), so the canonical addresses on kurs.example.com are never
fetched. What a visitor does is what is tested: search, filter, download a calendar file, read
every kind of page without a console error, pass an axe-core accessibility scan (the engine's
script comes from the npm package that .ci/run installs), and read it all on a phone.

Locally, the tests skip when chromium or axe-core is missing; under CI=1 they fail instead.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import posixpath
import re
import shutil
import struct
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import icalendar
import pytest

from catalog_gen.site.pages import SEARCH_INDEX, Urls
from catalog_gen.site.search import MANIFEST, index_site, shard_of
from tests.sitecheck import parse
from tests.test_serve import CHROMIUM, CHROMIUM_ARGS
from tests.test_site import build_demo

#: The long matrices and whole-tool runs: `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / ".ci" / "tools" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "tests" / "artifacts"
BASE = "https://kurs.example.com/"
PHONE = {"width": 390, "height": 844}
FAILED_LOAD = "Failed to load resource"


def need(path: Path, what: str) -> None:
    if not path.exists():
        message = f"{path} not found: {what}"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


class StaticHost(SimpleHTTPRequestHandler):
    """A quiet static server; a missing file gets the site's 404.html, as hosts do."""

    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".ics": "text/calendar",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".pagefind": "application/octet-stream",
    }

    def send_error(self, code, message=None, explain=None) -> None:
        page = Path(self.directory) / "404.html"
        if code != 404 or not page.is_file():
            return super().send_error(code, message, explain)
        body = page.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """``folder`` served on 127.0.0.1 like any static host would: its address."""
    handler = functools.partial(StaticHost, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[Path, str]]:
    """The demo site, built once, served on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("browser")
    build_demo(folder)
    with serve(folder / "site") as base:
        yield folder / "site", base


@pytest.fixture(scope="module")
def one_index_site(site, tmp_path_factory) -> Iterator[tuple[Path, str]]:
    """The demo site with its course pages in one Pagefind index instead of shards."""
    copy = tmp_path_factory.mktemp("one-index") / "site"
    shutil.copytree(site[0], copy, ignore=shutil.ignore_patterns(SEARCH_INDEX))
    index_site(copy, language="nb", pages=Urls("nb").course_pages(), shards=1)
    with serve(copy) as base:
        yield copy, base


@pytest.fixture(scope="module")
def browser():
    need(Path(CHROMIUM), "install Debian's chromium (apt install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Visit:
    """A page in a fresh context that records console errors, page errors, failed local
    requests and any attempt to reach another host (which is aborted)."""

    def __init__(self, browser, base: str, **options):
        self.base = base
        self.context = browser.new_context(accept_downloads=True, **options)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.failing_document: str | None = None  # a page expected to answer 404
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("response", self._response)
        self.page.on("requestfailed", self._failed)

    def _local(self, url: str) -> bool:
        return url.startswith(self.base)

    def _route(self, route) -> None:
        if self._local(route.request.url) or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.errors.append(f"request to another host: {route.request.url}")
            route.abort()

    def _console(self, message) -> None:
        if message.type != "error":
            return
        if message.text.startswith(FAILED_LOAD) and message.location.get("url") == (
            self.failing_document
        ):
            return  # the 404 page's own status, asserted by go()
        self.errors.append(f"console: {message.text} ({message.location.get('url')})")

    def _response(self, response) -> None:
        if response.request.is_navigation_request() and response.url == self.failing_document:
            return
        if self._local(response.url) and response.status >= 400:
            self.errors.append(f"{response.status}: {response.url}")

    def _failed(self, request) -> None:
        # ERR_ABORTED: the page was left before a request (say, the favicon) finished.
        if self._local(request.url) and request.failure != "net::ERR_ABORTED":
            self.errors.append(f"request failed ({request.failure}): {request.url}")

    def go(self, path: str, status: int = 200):
        url = self.base + path
        self.failing_document = url if status >= 400 else None
        response = self.page.goto(url, wait_until="load")
        assert response is not None and response.status == status, (path, response)
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser, site):
    visits = []

    def make(**options) -> Visit:
        visits.append(Visit(browser, site[1], **options))
        return visits[-1]

    yield make
    for v in visits:
        v.close()


def first(site_dir: Path, pattern: str) -> str:
    """The address of the first (by name) page matching ``pattern``/index.html."""
    found = sorted(site_dir.glob(f"{pattern}/index.html"))
    assert found, f"the demo has no {pattern} page"
    return found[0].relative_to(site_dir).parent.as_posix() + "/"


def page_types(site_dir: Path) -> dict[str, str]:
    """One address of every kind of page the site has."""
    return {
        "home": "",
        "home page 2": "side/2/",
        "course": first(site_dir, "kurs/*"),
        "categories": "kategori/",
        "category": first(site_dir, "kategori/*"),
        "venues": "sted/",
        "venue": first(site_dir, "sted/*"),
        "city": first(site_dir, "by/*"),
        "month": first(site_dir, "maned/*"),
        "language": first(site_dir, "sprak/*"),
        "form": first(site_dir, "form/*"),
        "calendar": "kalender/",
        "search": "sok/",
        "not found": "404.html",
    }


def resolve(folder: str, ref: str) -> str:
    """A relative link on the page at ``folder`` as an address relative to the site root."""
    joined = posixpath.normpath(posixpath.join(folder, ref))
    return "" if joined == "." else joined + ("/" if ref.endswith("/") else "")


# -- search --------------------------------------------------------------------------------


def course_with_description(site_dir: Path) -> tuple[str, str]:
    """A course page and the word of its "Om kurset" text that the fewest other courses use
    (and that its title does not contain): a search for it must find this course."""
    texts = {}
    for page in sorted(site_dir.glob("kurs/*/index.html")):
        soup = parse(page)
        prose = soup.select_one("#about + .prose")
        if prose is not None:
            address = page.relative_to(site_dir).parent.as_posix() + "/"
            texts[address] = (soup.h1.get_text().casefold(), prose.get_text())
    best = None
    for address, (title, text) in texts.items():
        for word in sorted(set(re.findall(r"[A-Za-zÆØÅæøå]{7,}", text))):
            if word.casefold() in title:
                continue
            users = sum(word.casefold() in t.casefold() for _, t in texts.values())
            if best is None or users < best[0]:
                best = (users, address, word)
    assert best is not None, "no course with a description"
    return best[1], best[2]


#: Pagefind lists its results at once and fills each in as its fragment arrives (a skeleton
#: with .pagefind-ui__loading until then): done when every listed result has its link.
RESULTS_LOADED = """shown => {
    const results = document.querySelectorAll('.pagefind-ui__results > .pagefind-ui__result');
    return results.length > shown
        && !document.querySelector('.pagefind-ui__results .pagefind-ui__loading')
        && document.querySelectorAll('.pagefind-ui__result-link').length === results.length;
}"""


def search(page, word: str) -> list[str]:
    """Type into the search field (found by its visible label) and read every result's link."""
    page.get_by_label(page.inner_text("label.search-label")).fill(word)
    page.wait_for_function(RESULTS_LOADED, arg=0, timeout=10_000)
    more = page.locator("button.pagefind-ui__button")
    while more.count():
        shown = page.locator(".pagefind-ui__result-link").count()
        more.first.click()
        page.wait_for_function(RESULTS_LOADED, arg=shown)
    return page.eval_on_selector_all(".pagefind-ui__result-link", "els => els.map(e => e.href)")


def test_search_finds_a_course_by_a_word_from_its_description(visit, site):
    site_dir, base = site
    course, word = course_with_description(site_dir)
    v = visit()
    page = v.go("sok/")
    links = search(page, word)
    assert base + course in links, (word, links)
    assert v.errors == []


def words_of_course_pages(site_dir: Path) -> tuple[int, dict[str, int]]:
    """How many course pages there are, and how many of them each word of 7 letters or more
    of their indexed text (``data-pagefind-body`` but ``data-pagefind-ignore``) is on."""
    users: dict[str, int] = {}
    pages = sorted(site_dir.glob("kurs/*/index.html"))
    for page in pages:
        body = parse(page).select_one("[data-pagefind-body]")
        for ignored in body.select("[data-pagefind-ignore]"):  # what Pagefind does not read
            ignored.decompose()
        text = body.get_text(" ").casefold()
        for word in set(re.findall(r"[a-zæøå]{7,}", text)):
            users[word] = users.get(word, 0) + 1
    return len(pages), users


def results_by_word(browser, address: str, words: list[str]) -> dict[str, list[str]]:
    """Every result the search page lists for each word (following "load more" to the end),
    in its order, as addresses relative to the site; checked against the number the page says
    it found."""
    v = Visit(browser, address)
    found = {}
    try:
        for word in words:
            page = v.go("sok/")  # a fresh page: the last word's results are not this one's
            links = search(page, word)
            stated = page.inner_text(".pagefind-ui__message")
            assert len(links) == len(set(links)) == int(stated.split()[0]), (stated, links)
            found[word] = [link.removeprefix(address) for link in links]
        assert v.errors == []
    finally:
        v.close()
    return found


def test_the_shards_find_what_one_index_finds_and_load_more_shows_it_all(
    browser, site, one_index_site
):
    """The search page merges every shard (pagefind/shards.json) with Pagefind's mergeIndex.
    A word on every course page lists every course page, as one index does, all of them once
    "load more" has been followed to the end. A word only some shards have lists everything
    one index lists; in the shards without it Pagefind can add pages with the longest word
    it has that the query begins with ("språk" for "språkrådet": what Pagefind does in any
    index for a word it does not know), so a sharded search may list a few more, never fewer.
    The results of several shards are ranked together (by Pagefind's score), not listed one
    shard after the other.
    """
    site_dir = site[0]
    shards = json.loads((site_dir / SEARCH_INDEX / MANIFEST).read_text())["shards"]
    assert len(shards) > 1
    pages, users = words_of_course_pages(site_dir)
    everywhere = min(w for w, n in users.items() if n == pages)
    somewhere = max(sorted(users), key=lambda w: (users[w] < pages, users[w]))
    assert pages > 10 and 5 < users[somewhere] < pages  # "load more" is needed
    merged = results_by_word(browser, site[1], [everywhere, somewhere])
    single = results_by_word(browser, one_index_site[1], [everywhere, somewhere])
    every_course = sorted(
        p.parent.relative_to(site_dir).as_posix() + "/" for p in site_dir.glob("kurs/*/index.html")
    )
    assert sorted(merged[everywhere]) == sorted(single[everywhere]) == every_course, everywhere
    assert len(single[somewhere]) >= users[somewhere], somewhere
    assert set(single[somewhere]) <= set(merged[somewhere]), somewhere
    in_order = [shard_of(link + "index.html") for link in merged[somewhere]]
    runs = [s for n, s in enumerate(in_order) if n == 0 or in_order[n - 1] != s]
    assert len(runs) > len(set(in_order)) > 1, in_order  # shards interleaved: one ranking


# -- filters -------------------------------------------------------------------------------


def course_count(page) -> int:
    """The number the intro states ("44 kurs")."""
    return int(page.inner_text("main p.intro").split()[0])


def card_links(page) -> list[str]:
    return page.eval_on_selector_all(
        "ul.course-list > li.course-card h2 a", "els => els.map(e => e.href)"
    )


def built_list(site_dir: Path, address: str, base: str) -> list[str]:
    """The course links of a pre-built list page, as absolute addresses on ``base``."""
    soup = parse(site_dir / address / "index.html")
    cards = soup.select("ul.course-list > li.course-card h2 a")
    return [base + resolve(address, a["href"]) for a in cards]


def cities_of(site_dir: Path, course_address: str) -> set[str]:
    """The cities in the course page's dates table (its "By" column)."""
    soup = parse(site_dir / course_address / "index.html")
    return {td.get_text(strip=True) for td in soup.select("table.dates td[data-label=By]")}


def assert_lists_only_that_city(site_dir: Path, base: str, links: list[str], city: str):
    assert links
    elsewhere = {
        link: cities
        for link in links
        if city not in (cities := cities_of(site_dir, link.removeprefix(base)))
    }
    assert elsewhere == {}, f"listed under {city} without a date there"


def test_a_filter_narrows_the_list_in_place_and_back_restores_it(visit, site):
    site_dir, base = site
    v = visit()
    page = v.go("")
    everything, home_cards = course_count(page), card_links(page)
    page.evaluate("window.__marker = 1")
    page.click("nav.filters details.filter-city summary")
    link = page.locator("nav.filters details.filter-city a[data-filter]").first
    city, city_path = link.inner_text().strip(), link.get_attribute("href")
    heading = parse(site_dir / city_path / "index.html").h1.get_text(strip=True)
    link.click()
    page.wait_for_url(base + city_path)
    page.wait_for_function("h => document.querySelector('main h1')?.textContent === h", arg=heading)
    assert page.evaluate("window.__marker") == 1  # swapped in place: no page load
    narrowed = course_count(page)
    assert 0 < narrowed < everything
    cards = card_links(page)
    assert len(cards) == narrowed
    assert cards == built_list(site_dir, city_path, base)
    assert_lists_only_that_city(site_dir, base, cards, city)
    current = page.locator("nav.filters a[aria-current=page]")
    assert current.count() == 1 and current.inner_text().strip() == city
    assert page.evaluate("document.activeElement.tagName") == "H1"  # focus follows
    section = page.locator("header nav a[aria-current=page]")  # as a page load would mark it
    assert section.count() == 1 and section.get_attribute("href").endswith("/sted/")

    page.go_back()
    page.wait_for_url(base)
    page.wait_for_function(
        "n => document.querySelector('main p.intro')?.textContent.startsWith(n + ' ')",
        arg=everything,
    )
    assert card_links(page) == home_cards
    assert page.evaluate("window.__marker") == 1

    page.go_forward()  # and the header still leads where it did after a swap
    page.wait_for_url(base + city_path)
    page.wait_for_function("h => document.querySelector('main h1')?.textContent === h", arg=heading)
    page.click("header a[href$='/kalender/']")
    page.wait_for_url(base + "kalender/")
    assert page.evaluate("window.__marker") is None  # a real page load, as it should be
    assert v.errors == []


def test_without_javascript_a_filter_is_a_plain_link(visit, site):
    site_dir, base = site
    v = visit(java_script_enabled=False)
    page = v.go("")
    everything = course_count(page)
    page.click("nav.filters details.filter-city summary")
    link = page.locator("nav.filters details.filter-city a[data-filter]").first
    city, city_path = link.inner_text().strip(), link.get_attribute("href")
    link.click()
    page.wait_for_url(base + city_path)  # a page load: nothing else could change the address
    narrowed = course_count(page)
    assert 0 < narrowed < everything
    cards = card_links(page)
    assert len(cards) == narrowed
    assert_lists_only_that_city(site_dir, base, cards, city)
    assert page.locator("nav.filters a[aria-current=page]").inner_text().strip() == city
    assert v.errors == []


# -- calendar files ------------------------------------------------------------------------


def course_instances(page) -> dict[str, datetime]:
    """Each date's start from the page's JSON-LD, by the date's fragment (``date-<id>``)."""
    scripts = page.eval_on_selector_all(
        "script[type='application/ld+json']", "els => els.map(e => e.textContent)"
    )
    (course,) = [d for d in map(json.loads, scripts) if d.get("@type") == "Course"]
    return {
        instance["offers"]["url"].rsplit("#", 1)[1]: datetime.fromisoformat(instance["startDate"])
        for instance in course["hasCourseInstance"]
    }


def test_the_calendar_link_downloads_a_valid_ics_file(visit, site):
    site_dir, _ = site
    v = visit()
    course = page_types(site_dir)["course"]
    slug = course.strip("/").rsplit("/", 1)[1]
    page = v.go(course)
    title = page.inner_text("h1").strip()
    row = page.locator("table.dates tbody tr.date-row").first
    day = row.locator("time[datetime]").first.get_attribute("datetime")
    date_id = row.get_attribute("id").removeprefix("date-")
    with page.expect_download() as download:
        row.locator("a.ics").click()
    assert download.value.suggested_filename == f"{slug}-{date_id}.ics"
    calendar = icalendar.Calendar.from_ical(Path(download.value.path()).read_bytes())
    events = [e for e in calendar.walk("VEVENT") if str(e["DTSTART"].dt)[:10] == day[:10]]
    assert events, f"no VEVENT starts on {day}: {calendar.to_ical().decode()[:2000]}"
    event = events[0]
    start = event["DTSTART"].dt
    if isinstance(start, datetime):  # an all-day date has no time zone to carry
        assert str(start.tzinfo) == "Europe/Oslo", start.tzinfo
        assert start == course_instances(page)[f"date-{date_id}"]  # same instant as the page
        assert event["DTEND"].dt > start
    assert str(event["SUMMARY"]) == title
    assert str(event["URL"]) == f"{BASE}{course}#date-{date_id}"
    assert v.errors == []


# -- every page: console, accessibility, mobile ----------------------------------------------


def test_no_console_errors_on_any_kind_of_page(visit, site):
    site_dir, _ = site
    v = visit()
    seen = {}
    kinds = {**page_types(site_dir), "not found, served for a missing address": "kurs/finnes/"}
    for kind, path in kinds.items():
        page = v.go(path, status=404 if kind.startswith("not found,") else 200)
        if kind == "search":
            assert search(page, "kurs")
        seen[kind] = list(v.errors)
        v.errors.clear()
    assert {kind: errors for kind, errors in seen.items() if errors} == {}


def axe_violations(page) -> list[dict]:
    """Serious and critical violations axe-core finds on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
            "message": v["nodes"][0]["failureSummary"] if v["nodes"] else "",
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_axe_finds_no_serious_or_critical_violations(visit, site):
    need(AXE, "run .ci/run, or npm install --prefix .ci/tools axe-core")
    site_dir, _ = site
    types = page_types(site_dir)
    v = visit()
    found = {}
    for kind in ("home", "course", "category", "calendar", "month", "search", "not found"):
        page = v.go(types[kind])
        if kind == "search":
            assert search(page, "kurs")
        if kind == "home":
            page.click("details.filter-category summary")  # the open state too
        violations = axe_violations(page)
        if violations:
            found[kind] = violations
    assert found == {}, json.dumps(found, indent=1, ensure_ascii=False)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def test_mobile_screenshots_and_no_sideways_scrolling(visit, site):
    site_dir, _ = site
    v = visit(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    ARTIFACTS.mkdir(exist_ok=True)
    for name, path in (("home", ""), ("course", page_types(site_dir)["course"])):
        page = v.go(path)
        # A phone widens the layout to fit content that overflows (innerWidth follows
        # scrollWidth), so the width to hold is the device's, not window.innerWidth.
        widths = page.evaluate(
            "({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
        )
        assert widths == {"scroll": PHONE["width"], "inner": PHONE["width"]}, name
        shot = ARTIFACTS / f"{name}-mobile.png"
        page.screenshot(path=str(shot), full_page=True)
        width, height = png_size(shot)
        assert width == 2 * PHONE["width"] and height >= 2 * PHONE["height"], (name, width)
    assert v.errors == []
