"""Being found: meta and Open Graph tags, JSON-LD, sitemap, robots, feeds, calendars, search.

Built once from the demo (the real console script, the bundled emulator) and read back the way
crawlers, feed readers and calendar apps read it: XML and iCalendar parsers, not string checks.
"""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import icalendar
import pytest

from catalog_gen.cli import DEMO_DESCRIPTION
from catalog_gen.config import Config, PublishSettings
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.feeds import FEED_ENTRIES, FeedSite, atom_feed, new_dates
from catalog_gen.site.search import MANIFEST
from catalog_gen.source.store import SnapshotStore
from tests.conftest import NOW, run_cli
from tests.sitecheck import pages, parse
from tests.test_site import PINNED, build_demo

BASE = "https://kurs.example.com/"
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
ATOM = "{http://www.w3.org/2005/Atom}"
ISO_DURATION = re.compile(r"^P(\d+D|T\d+H(\d+M)?)$")
OFFSET_MOMENT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("discovery")
    report = build_demo(folder)
    return folder, report


@pytest.fixture(scope="module")
def catalog(demo):
    folder, _ = demo
    snapshot = SnapshotStore(folder / "snapshots" / "demo").latest()
    return build_catalog(snapshot, PublishSettings(), now=datetime.fromisoformat(PINNED))


def address(site: Path, page: Path) -> str:
    path = page.relative_to(site).as_posix()
    return BASE + (path[: -len("index.html")] if path.endswith("index.html") else path)


def json_ld(soup) -> list[dict]:
    return [json.loads(s.string) for s in soup.find_all("script", type="application/ld+json")]


def course_pages(site: Path) -> list[Path]:
    return sorted(site.glob("kurs/*/index.html"))


# -- meta tags -----------------------------------------------------------------------------


@pytest.mark.slow
def test_every_page_has_a_title_canonical_address_and_open_graph_tags(demo):
    folder, _ = demo
    site = folder / "site"
    for page in pages(site):
        soup = parse(page)
        name = page.relative_to(site).as_posix()
        meta = {m.get("property") or m.get("name"): m.get("content") for m in soup.find_all("meta")}
        canonical = soup.find("link", rel="canonical")
        assert soup.title.get_text().strip(), name
        assert meta["og:title"] == soup.title.get_text(), name
        assert meta["og:site_name"] == "Kurskatalog" and meta["og:locale"] == "nb_NO"
        if name in ("404.html", "sok/index.html"):
            assert meta["robots"] == "noindex", name
        if name == "404.html":  # served at any address: no address of its own
            assert canonical is None and "og:url" not in meta
            continue
        assert canonical["href"] == address(site, page) == meta["og:url"], name
        alternate = soup.find("link", rel="alternate", type="application/atom+xml")
        assert (site / posixpath_join(name, alternate["href"])).is_file()


def posixpath_join(page: str, ref: str) -> str:
    import posixpath

    return posixpath.normpath(posixpath.join(posixpath.dirname(page), ref))


@pytest.mark.slow
def test_the_demo_sets_a_site_description_for_pages_without_their_own(demo):
    folder, _ = demo
    site = folder / "site"
    for page in pages(site):
        described = parse(page).find_all("meta", attrs={"name": "description"})
        assert len(described) == 1 and described[0]["content"].strip(), page
    home = parse(site / "index.html").find("meta", attrs={"name": "description"})
    assert home["content"] == DEMO_DESCRIPTION["nb"]


def test_a_course_page_is_described_by_its_lead_text(demo):
    folder, _ = demo
    for page in course_pages(folder / "site"):
        soup = parse(page)
        lead = soup.select_one("article .lead")
        description = soup.find("meta", attrs={"name": "description"})
        og = soup.find("meta", property="og:description")
        if lead is not None:
            assert description["content"] == lead.get_text() == og["content"]


# -- structured data -----------------------------------------------------------------------


def test_course_pages_carry_what_googles_course_rich_results_require(demo):
    """Course: name, description, provider, offers with category; every date a CourseInstance
    with courseMode, a workload, start (with offset when it has a time), location for onsite
    courses, the event status, and offers with price and currency."""
    folder, _ = demo
    site = folder / "site"
    statuses = set()
    for page in course_pages(site):
        soup = parse(page)
        (script,) = soup.find_all("script", type="application/ld+json")
        assert "<" not in script.string and ">" not in script.string  # nothing to close a tag
        (course,) = json_ld(soup)
        assert course["@context"] == "https://schema.org" and course["@type"] == "Course"
        assert course["name"] == soup.h1.get_text()
        assert course["description"] and not re.search(r"<[a-zA-Z/]", course["description"])
        assert course["provider"] == {
            "@type": "Organization",
            "name": "Kurskatalog",
            "sameAs": BASE,
        }
        assert course["url"] == address(site, page)
        assert all(offer["category"] for offer in course["offers"])
        rows = soup.select("table.dates tbody tr.date-row")
        instances = course["hasCourseInstance"]
        assert len(instances) == len(rows)
        for row, instance in zip(rows, instances, strict=True):
            assert instance["@type"] == "CourseInstance"
            assert instance["courseMode"] in ("Online", "Onsite", "Blended")
            assert ISO_DURATION.match(instance["courseWorkload"]), instance["courseWorkload"]
            day = row.select_one("time[datetime]")["datetime"]
            assert instance["startDate"][:10] == day
            if "T" in instance["startDate"]:
                assert OFFSET_MOMENT.match(instance["startDate"]), instance["startDate"]
            if instance["courseMode"] != "Online":
                assert instance["location"]["name"]
            status = row.select_one(".status")
            expected = "https://schema.org/EventScheduled"
            if status is not None and "status-canceled" in status["class"]:
                expected = "https://schema.org/EventCancelled"
            elif status is not None and "status-postponed" in status["class"]:
                expected = "https://schema.org/EventPostponed"
            assert instance["eventStatus"] == expected
            statuses.add(expected.rsplit("/", 1)[1])
            offer = instance["offers"]
            assert offer["category"] == "Paid"
            if "price" in offer:
                assert isinstance(offer["price"], int | float) and len(offer["priceCurrency"]) == 3
            if "Pris på forespørsel" not in row.get_text():
                assert "price" in offer
            texts = [v for v in _strings(instance) if not v.startswith("http")]
            assert not any(re.search(r"<[a-zA-Z/]", v) for v in texts)
    assert {"EventScheduled", "EventCancelled", "EventPostponed"} <= statuses


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_online_dates_are_virtual_locations_and_addresses_are_postal(demo):
    folder, _ = demo
    kinds = set()
    for page in course_pages(folder / "site"):
        (course,) = json_ld(parse(page))
        for instance in course["hasCourseInstance"]:
            location = instance["location"]
            kinds.add(location["@type"])
            if location["@type"] == "VirtualLocation":
                assert instance["eventAttendanceMode"].endswith("OnlineEventAttendanceMode")
            elif "address" in location:
                assert location["address"]["@type"] == "PostalAddress"
                assert location["address"]["addressLocality"]
    assert kinds == {"Place", "VirtualLocation"}


def test_list_pages_number_their_courses_in_an_item_list(demo):
    folder, _ = demo
    site = folder / "site"
    first, second = parse(site / "index.html"), parse(site / "side" / "2" / "index.html")
    for soup, start in ((first, 1), (second, 25)):
        (item_list,) = json_ld(soup)
        items = item_list["itemListElement"]
        links = [a["href"] for a in soup.select(".course-card h2 a")]
        assert [i["position"] for i in items] == list(range(start, start + len(links)))
        assert [i["url"].removeprefix(BASE) for i in items] == [
            posixpath_join("side/2/index.html" if start > 1 else "index.html", link) + "/"
            for link in links
        ]


# -- sitemap, robots, feed -----------------------------------------------------------------


def test_the_sitemap_lists_every_indexable_page_with_lastmod_from_the_data(demo, catalog):
    folder, _ = demo
    site = folder / "site"
    root = ET.parse(site / "sitemap.xml").getroot()
    entries = {u.findtext(f"{SITEMAP}loc"): u.findtext(f"{SITEMAP}lastmod") for u in root}
    expected = {
        address(site, p)
        for p in pages(site)
        if p.relative_to(site).as_posix() not in ("404.html", "sok/index.html")
    }
    assert set(entries) == expected
    for course in catalog.courses:
        stamp = entries[f"{BASE}kurs/{course.slug}/"]
        assert datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) == (
            course.last_modified.astimezone(UTC)
        )
    robots = (site / "robots.txt").read_text().splitlines()
    assert "User-agent: *" in robots and f"Sitemap: {BASE}sitemap.xml" in robots


def test_the_atom_feed_carries_the_newest_dates_with_links_to_their_rows(demo, catalog):
    folder, _ = demo
    site = folder / "site"
    feed = ET.parse(site / "feed.xml").getroot()
    assert feed.tag == f"{ATOM}feed"
    assert feed.find(f"{ATOM}link[@rel='self']").get("href") == f"{BASE}feed.xml"
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == min(FEED_ENTRIES, len(catalog.dates))
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(set(ids)) == len(ids) and all(i.startswith("tag:kurs.example.com,") for i in ids)
    expected = [d.id for d in new_dates(catalog)]
    assert [int(i.rsplit("-", 1)[1]) for i in ids] == expected
    for entry in entries:
        link = entry.find(f"{ATOM}link").get("href").removeprefix(BASE)
        path, fragment = link.split("#")
        soup = parse(site / path / "index.html")
        assert soup.find(id=fragment) is not None
        assert soup.h1.get_text() in entry.findtext(f"{ATOM}title")


def test_new_dates_are_the_ones_a_fetch_saw_last(catalog):
    """The feed's order comes from first_seen: a date seen later comes first."""
    later = NOW + timedelta(days=1)
    newest = catalog.dates[-1]  # the last date to start, seen last
    dates = tuple(
        d if d is not newest else type(d)(**{**d.__dict__, "first_seen": later})
        for d in catalog.dates
    )
    changed = type(catalog)(**{**catalog.__dict__, "dates": dates})
    assert new_dates(changed)[0].id == newest.id
    assert newest.id not in [d.id for d in new_dates(catalog)[:1]]


# -- calendars -----------------------------------------------------------------------------


def test_every_date_has_a_calendar_file_and_the_site_calendar_has_them_all(demo, catalog):
    folder, _ = demo
    site = folder / "site"
    for course in catalog.courses:
        if not course.dates:
            assert not (site / "kurs" / course.slug / f"{course.slug}.ics").exists()
            continue
        whole = icalendar.Calendar.from_ical(
            (site / "kurs" / course.slug / f"{course.slug}.ics").read_bytes()
        )
        assert whole["X-WR-CALNAME"] == course.title
        for d in course.dates:
            data = (site / "kurs" / course.slug / f"{course.slug}-{d.id}.ics").read_bytes()
            events = icalendar.Calendar.from_ical(data).walk("VEVENT")
            assert events and all(str(e["SUMMARY"]) == course.title for e in events)
            assert str(events[0]["URL"]) == f"{BASE}kurs/{course.slug}/#date-{d.id}"
            expected = "CANCELLED" if d.status == "canceled" else None
            if expected:
                assert {str(e["STATUS"]) for e in events} == {expected}
    feed = icalendar.Calendar.from_ical((site / "kalender.ics").read_bytes())
    uids = {str(e["UID"]).split("@")[0].split("-")[1] for e in feed.walk("VEVENT")}
    assert uids == {str(d.id) for d in catalog.dates}
    assert str(feed["REFRESH-INTERVAL"].to_ical(), "ascii") == "PT12H"


def test_pages_link_to_the_calendars_and_the_feed(demo):
    folder, _ = demo
    site = folder / "site"
    calendar = parse(site / "kalender" / "index.html")
    subscribe = calendar.select_one("section.subscribe")
    hrefs = [a["href"] for a in subscribe.find_all("a")]
    assert "webcal://kurs.example.com/kalender.ics" in hrefs
    assert "../kalender.ics" in hrefs and "../feed.xml" in hrefs
    course = parse(course_pages(site)[0])
    rows = course.select("table.dates tbody tr.date-row")
    assert all(row.select_one("a.ics[download]") for row in rows)


# -- search and the switches ---------------------------------------------------------------


def test_the_search_index_is_built_into_the_site(demo):
    folder, report = demo
    site = folder / "site"
    assert (site / "pagefind" / "pagefind-ui.js").is_file()
    shards = json.loads((site / "pagefind" / MANIFEST).read_text())["shards"]
    assert len(shards) > 1  # the demo's courses fill several shards: the page merges them
    indexed = 0
    for shard in shards:
        entry = json.loads((site / "pagefind" / shard / "pagefind-entry.json").read_text())
        (language,) = entry["languages"].values()
        indexed += language["page_count"]
    assert indexed == len(course_pages(site))  # only course pages are indexed, each once
    assert report["index_seconds"] > 0
    search = parse(site / "sok" / "index.html")
    assert search.select_one("#search") is not None and search.noscript is not None


@pytest.mark.slow
def test_search_off_leaves_out_the_page_the_index_and_the_link(tmp_path):
    build_demo(tmp_path)
    assert (tmp_path / "site" / "pagefind").is_dir()
    (tmp_path / "catalog.toml").write_text("[site]\nsearch = false\n")
    report = build_demo(tmp_path)
    site = tmp_path / "site"
    assert not (site / "pagefind").exists() and not (site / "sok").exists()
    assert report["removed"] > 0 and report["index_seconds"] == 0
    assert "sok/" not in (site / "index.html").read_text()


@pytest.mark.slow
def test_without_base_url_there_are_no_absolute_addresses_and_the_build_says_why(tmp_path):
    result = run_cli(tmp_path, "build", "--demo", "--now", PINNED)
    assert result.returncode == 0, result.stderr
    # The demo publishes at an example address; a project without base_url does not.
    offline = Config(root=tmp_path)
    assert offline.site_url == ""
    (tmp_path / "catalog.toml").write_text('snapshot_dir = "snapshots/demo"\n')
    result = run_cli(tmp_path, "build", "--offline", "--now", PINNED)
    assert result.returncode == 0, result.stderr
    assert "note: site.base_url is not set" in result.stderr
    site = tmp_path / "site"
    assert not (site / "sitemap.xml").exists() and not (site / "feed.xml").exists()
    assert "Sitemap:" not in (site / "robots.txt").read_text()
    home = parse(site / "index.html")
    assert home.find("link", rel="canonical") is None
    assert home.find("meta", property="og:url") is None
    assert json_ld(home) == []  # an ItemList needs absolute addresses
    quiet = run_cli(tmp_path, "build", "--offline", "--now", PINNED, "-q")
    assert quiet.returncode == 0 and quiet.stderr == ""


# -- filters without JavaScript ------------------------------------------------------------


def test_filters_are_links_to_lists_that_hold_exactly_the_matching_courses(demo, catalog):
    folder, _ = demo
    site = folder / "site"
    home = parse(site / "index.html")
    groups = {d["class"][1].removeprefix("filter-"): d for d in home.select("nav.filters details")}
    assert set(groups) == {"category", "city", "month", "language", "form"}
    for kind, group in groups.items():
        for link in group.find_all("a", attrs={"data-filter": True}):
            target = site / link["href"] / "index.html"
            listed = {a["href"].split("/")[-2] for a in parse(target).select(".course-card h2 a")}
            assert listed, (kind, link["href"])
    month = catalog.facet("month")[0]
    soup = parse(site / "maned" / month.key / "index.html")
    assert soup.h1.get_text().startswith("Kurs som starter i")
    current = soup.select("nav.filters a[aria-current=page]")
    assert [a.get_text(strip=True) for a in current] == [soup.h1.get_text().split(" i ", 1)[1]]
    cards = [a["href"].split("/")[-2] for a in soup.select(".course-card h2 a")]
    assert cards == [c.slug for c in catalog.courses_with(month)[:24]]
    for course in catalog.courses_with(month):
        assert any(f"{d.start_date:%Y-%m}" == month.key for d in course.dates)
    languages = {v.key for v in catalog.facet("language")}
    assert languages == {"no", "en"}
    assert parse(site / "sprak" / "en" / "index.html").h1.get_text() == "Kurs på Engelsk"


def test_a_control_character_in_a_title_does_not_spoil_the_feed(catalog):
    course = catalog.courses[0]
    spoiled = dataclasses.replace(course, title="Kurs\x01 med\x0b feil", lead="Lead\x1f")
    site = FeedSite(
        title="Feed\x02",
        author="Kurs",
        site_url=BASE,
        feed_path="feed.xml",
        language="nb",
        page_url=lambda c: BASE + c.slug + "/",
        entry_title=lambda c, d: spoiled.title,
    )
    feed = ET.fromstring(atom_feed(catalog, site))  # raises on characters XML cannot carry
    assert feed.findtext(f"{ATOM}title") == "Feed "
    assert {e.findtext(f"{ATOM}title") for e in feed.findall(f"{ATOM}entry")} == {"Kurs  med  feil"}
