"""The built demo site in a real browser: Debian's chromium driven by Playwright.

The site is served read-only on 127.0.0.1 by a plain static server (as any host would serve
it); every request to another host is aborted, so the canonical addresses on kurs.example.com
are never fetched. What a visitor does is what is tested: search, filter, download a calendar
file, read every kind of page without a console error, and pass an axe-core accessibility scan
(the engine's script comes from the npm package that .ci/run installs).

Locally, the tests skip when chromium or axe-core is missing; under CI=1 they fail instead.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import icalendar
import pytest

from tests.sitecheck import parse
from tests.test_serve import CHROMIUM, CHROMIUM_ARGS
from tests.test_site import build_demo

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / ".ci" / "tools" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "tests" / "artifacts"
BASE = "https://kurs.example.com/"


def need(path: Path, what: str) -> None:
    if not path.exists():
        message = f"{path} not found: {what}"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


class QuietHandler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".ics": "text/calendar",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".pagefind": "application/octet-stream",
    }

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[Path, str]]:
    """The demo site, served on 127.0.0.1 like any static host would."""
    folder = tmp_path_factory.mktemp("browser")
    build_demo(folder)
    handler = functools.partial(QuietHandler, directory=str(folder / "site"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder / "site", f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


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
    """A page in a fresh context that records console errors and failed local requests."""

    def __init__(self, browser, base: str, **options):
        self.base = base
        self.context = browser.new_context(accept_downloads=True, **options)
        self.context.route(
            re.compile(r"^(?!http://127\.0\.0\.1[:/]).*"), lambda route: route.abort()
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("response", self._response)

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _response(self, response) -> None:
        if response.url.startswith(self.base) and response.status >= 400:
            self.errors.append(f"{response.status}: {response.url}")

    def go(self, path: str):
        self.page.goto(self.base + path)
        self.page.wait_for_load_state("load")
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


def course_with_description(site_dir: Path) -> tuple[str, str]:
    """A course page and the word of its description that the fewest other courses use (and
    that its title does not contain): a search for it must find this course among the first."""
    texts = {}
    for page in sorted(site_dir.glob("kurs/*/index.html")):
        soup = parse(page)
        prose = soup.select_one("#about + .prose")
        if prose is not None:
            address = page.relative_to(site_dir).parent.as_posix() + "/"
            texts[address] = (soup.h1.get_text().casefold(), prose.get_text())
    best = None
    for address, (title, text) in texts.items():
        for word in set(re.findall(r"[A-Za-zÆØÅæøå]{7,}", text)):
            if word.casefold() in title:
                continue
            users = sum(word.casefold() in t.casefold() for _, t in texts.values())
            if best is None or users < best[0]:
                best = (users, address, word)
    assert best is not None, "no course with a description"
    return best[1], best[2]


def page_types(site_dir: Path) -> dict[str, str]:
    """One address of every kind of page the site has."""
    first = lambda pattern: next(site_dir.glob(pattern)).relative_to(site_dir).parent.as_posix()  # noqa: E731
    return {
        "home": "",
        "home page 2": "side/2/",
        "course": first("kurs/*/index.html") + "/",
        "categories": "kategori/",
        "category": first("kategori/*/index.html") + "/",
        "venues": "sted/",
        "venue": first("sted/*/index.html") + "/",
        "city": first("by/*/index.html") + "/",
        "month": first("maned/*/index.html") + "/",
        "language": first("sprak/*/index.html") + "/",
        "form": first("form/*/index.html") + "/",
        "calendar": "kalender/",
        "search": "sok/",
        "not found": "404.html",
    }


# -- search --------------------------------------------------------------------------------


def search(page, word: str) -> list[str]:
    """Type into the visible search field (by its label) and read every result's link."""
    page.get_by_label(page.inner_text("label.search-label")).fill(word)
    page.wait_for_selector(".pagefind-ui__result-link", timeout=10_000)
    more = page.locator("button.pagefind-ui__button")
    while more.count():
        shown = page.locator(".pagefind-ui__result-link").count()
        more.first.click()
        page.wait_for_function(
            f"document.querySelectorAll('.pagefind-ui__result-link').length > {shown}"
        )
    return page.eval_on_selector_all(".pagefind-ui__result-link", "els => els.map(e => e.href)")


def test_search_finds_a_course_by_a_word_from_its_description(visit, site):
    site_dir, base = site
    course, word = course_with_description(site_dir)
    v = visit()
    page = v.go("sok/")
    links = search(page, word)
    assert base + course in links, (word, links)
    assert v.errors == []


# -- filters -------------------------------------------------------------------------------


def course_count(page) -> int:
    return int(page.inner_text("main p.intro").split()[0])


def card_links(page) -> list[str]:
    return page.eval_on_selector_all(".course-card h2 a", "els => els.map(e => e.href)")


def test_a_filter_narrows_the_list_in_place_and_back_restores_it(visit, site):
    site_dir, base = site
    v = visit()
    page = v.go("")
    everything = course_count(page)
    page.evaluate("window.__marker = 1")
    page.click("details.filter-city summary")
    link = page.locator("details.filter-city a[data-filter]").first
    city_path = link.get_attribute("href")
    link.click()
    page.wait_for_url(base + city_path)
    page.wait_for_function("document.querySelector('h1')?.textContent.startsWith('Kurs i')")
    assert page.evaluate("window.__marker") == 1  # swapped in place: no page load
    narrowed = course_count(page)
    assert 0 < narrowed < everything
    expected = [
        a["href"] for a in parse(site_dir / city_path / "index.html").select(".course-card h2 a")
    ]
    assert card_links(page) == [base + posix_join(city_path, ref) for ref in expected]
    assert page.evaluate("document.activeElement.tagName") == "H1"  # focus follows

    page.go_back()
    page.wait_for_url(base)
    page.wait_for_function(
        f"document.querySelector('main p.intro').textContent.startsWith('{everything} ')"
    )
    assert page.evaluate("window.__marker") == 1

    page.go_forward()  # and the header still leads where it did after a swap
    page.wait_for_function("document.querySelector('h1')?.textContent.startsWith('Kurs i')")
    page.click("header a[href$='/kalender/']")
    page.wait_for_url(base + "kalender/")
    assert v.errors == []


def test_without_javascript_a_filter_is_a_plain_link(visit, site):
    _, base = site
    v = visit(java_script_enabled=False)
    page = v.go("")
    everything = course_count(page)
    page.click("details.filter-month summary")
    link = page.locator("details.filter-month a[data-filter]").first
    target = link.get_attribute("href")
    link.click()
    page.wait_for_url(base + target)
    assert 0 < course_count(page) < everything
    assert page.locator("nav.filters a[aria-current=page]").get_attribute("href") == "./"


def posix_join(folder: str, ref: str) -> str:
    import posixpath

    return posixpath.normpath(posixpath.join(folder, ref)) + ("/" if ref.endswith("/") else "")


# -- calendar files ------------------------------------------------------------------------


def test_the_calendar_link_downloads_a_valid_ics_file(visit, site):
    site_dir, _ = site
    v = visit()
    course = page_types(site_dir)["course"]
    page = v.go(course)
    row = page.locator("table.dates tbody tr.date-row").first
    day = row.locator("time[datetime]").first.get_attribute("datetime")
    date_id = row.get_attribute("id").removeprefix("date-")
    with page.expect_download() as download:
        row.locator("a.ics").click()
    data = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename.endswith(f"-{date_id}.ics")
    calendar = icalendar.Calendar.from_ical(data)
    events = calendar.walk("VEVENT")
    assert events
    title = page.inner_text("h1")
    start = events[0]["DTSTART"].dt
    assert str(events[0]["SUMMARY"]) == title
    assert start.isoformat()[:10] == day
    if hasattr(start, "tzinfo"):
        assert str(start.tzinfo) == "Europe/Oslo"
    assert str(events[0]["URL"]) == f"{BASE}{course}#date-{date_id}"
    assert v.errors == []


# -- every page: console, accessibility, mobile ----------------------------------------------


def test_no_console_errors_on_any_kind_of_page(visit, site):
    site_dir, _ = site
    v = visit()
    seen = {}
    for kind, path in page_types(site_dir).items():
        page = v.go(path)
        if kind == "search":
            search(page, "kurs")
        seen[kind] = list(v.errors)
        v.errors.clear()
    assert {kind: errors for kind, errors in seen.items() if errors} == {}


def axe_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
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
            search(page, "kurs")
        if kind == "home":
            page.click("details.filter-category summary")  # the open state too
        violations = axe_violations(page)
        if violations:
            found[kind] = violations
    assert found == {}, json.dumps(found, indent=1, ensure_ascii=False)


def test_mobile_screenshots_and_no_sideways_scrolling(visit, site):
    site_dir, _ = site
    v = visit(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    for name, path in (("home", ""), ("course", page_types(site_dir)["course"])):
        page = v.go(path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name}: {overflow}px wider than the screen"
        page.screenshot(path=str(ARTIFACTS / f"{name}-mobile.png"), full_page=True)
        assert (ARTIFACTS / f"{name}-mobile.png").stat().st_size > 10_000
    assert v.errors == []
