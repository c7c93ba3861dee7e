"""End to end: ``catalog-gen build --demo`` as a user runs it, and what a visitor then sees.

The demo build is the real path (the console script, the emulator on 127.0.0.1, a snapshot on
disk, the bundled theme, the atomic publish). The pages are parsed with html5lib, the parser
browsers' algorithm is specified by, and every internal link and asset is followed.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from catalog_gen.demo.sample import HOSTILE_TITLE
from catalog_gen.source.store import SnapshotStore
from tests.conftest import TODAY, run_cli
from tests.sitecheck import html5_errors, internal_targets, pages, parse, site_bytes, site_tree

PINNED = "2026-11-23T04:00:00+01:00"


def build_demo(folder: Path, *args: str, env: dict | None = None) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    result = run_cli(folder, "build", "--demo", "--now", PINNED, "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("demo")
    report = build_demo(folder)
    return folder / "site", report


@pytest.mark.slow
def test_the_demo_builds_a_whole_site(demo):
    site, report = demo
    assert report["pages"] > 60
    assert report["written"] == report["files"] == len(site_tree(site)) - 1  # minus the marker
    assert report["unchanged"] == 0 and report["removed"] == 0
    for expected in ("index.html", "404.html", "kalender/index.html", "kategori/index.html"):
        assert (site / expected).is_file(), expected
    assert len(list((site / "kurs").iterdir())) > 30


def test_every_internal_link_and_asset_resolves(demo):
    site, _ = demo
    checked = 0
    ids: dict[str, set[str]] = {}
    for page in pages(site):
        for ref, target, fragment in internal_targets(site, page):
            assert (site / target).is_file(), f"{page.relative_to(site)}: {ref} → {target}"
            if fragment:
                if target not in ids:
                    ids[target] = {e["id"] for e in parse(site / target).find_all(id=True)}
                assert fragment in ids[target], f"{page.relative_to(site)}: {ref}"
            checked += 1
    assert checked > 1000


def test_pages_are_well_formed_html5(demo):
    site, _ = demo
    for page in pages(site):
        assert html5_errors(page) == [], page.relative_to(site)


def test_pages_have_landmarks_one_h1_and_headings_in_order(demo):
    site, _ = demo
    for page in pages(site):
        soup = parse(page)
        name = page.relative_to(site)
        assert soup.html["lang"] == "nb"
        assert soup.find("title").get_text(strip=True), name
        assert len(soup.find_all("main")) == 1, name
        assert soup.find("header") and soup.find("footer"), name
        for nav in soup.find_all("nav"):
            assert nav.get("aria-label"), name
        assert len(soup.find_all("h1")) == 1, name
        levels = [int(h.name[1]) for h in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6"])]
        for before, after in itertools.pairwise(levels):
            assert after <= before + 1, f"{name}: h{before} followed by h{after}"
        for th in soup.select("thead th"):
            assert th.get("scope") == "col", name
        for img in soup.find_all("img"):
            assert img.has_attr("alt"), name


def test_scripts_are_our_own_files_or_data_and_nothing_comes_from_other_hosts(demo):
    """No inline code anywhere (a strict CSP can forbid it): a script is one of the site's own
    files, or JSON-LD data that parses as JSON."""
    site, _ = demo
    for page in pages(site):
        soup = parse(page)
        name = page.relative_to(site)
        assert soup.find_all(["iframe", "object", "embed", "style"]) == [], name
        for script in soup.find_all("script"):
            if script.get("type") == "application/ld+json":
                json.loads(script.string)
                continue
            source = script.get("src", "")
            assert source and not script.string, (name, str(script)[:80])
            assert "//" not in source, (name, source)
            assert not source.startswith("/") or name.name == "404.html", (name, source)
            path = source.lstrip("/").split("/")
            assert "static" in path or "pagefind" in path, (name, source)
        for element in soup.find_all(True):
            for attribute, value in element.attrs.items():
                assert not attribute.startswith("on"), (name, element.name, attribute)
                assert attribute != "style", (name, element.name)
                if attribute in ("href", "src"):
                    assert not str(value).strip().lower().startswith(("javascript:", "data:"))
        for element in soup.find_all(["link", "img", "source"]):
            if {"canonical", "alternate"} & set(element.get("rel", [])):
                continue  # the page's own public address and its feed: not fetched
            ref = element.get("href") or element.get("src") or ""
            assert "//" not in ref, (name, ref)


def test_the_hostile_title_is_shown_as_text_everywhere(demo):
    site, _ = demo
    seen = Counter()
    for page in pages(site):
        soup = parse(page)
        for prose in soup.select(".prose"):  # the provider's (sanitised) HTML may use <b>
            prose.decompose()
        for element in soup.find_all(string=lambda s: s and "XSS" in s):
            assert element.parent.name != "b", page.relative_to(site)
            seen[page.relative_to(site).parts[0]] += 1
    course = next(site.glob("kurs/sikker-koding-*/index.html"))
    soup = parse(course)
    assert soup.h1.get_text() == HOSTILE_TITLE
    assert soup.title.get_text().startswith(HOSTILE_TITLE)
    assert seen["kurs"] >= 1 and seen["kategori"] >= 1  # its page and the lists showing it


def test_hostile_course_texts_never_reach_a_page(demo):
    site, _ = demo
    raw = b"".join(data for name, data in site_bytes(site).items() if name.endswith(".html"))
    assert b"<script>" not in raw and b"alert(" not in raw
    assert b"onerror" not in raw
    assert b"javascript:" not in raw
    # The harmless words around the hostile markup are still there.
    assert b"Klikk her" in raw


def expected_row(record: dict, course: dict) -> dict:
    """What a date's row must say, read from the raw records as the API sent them (the
    publishing rules of docs/site.md, not the model the site was built from)."""
    status_id = int((record.get("status") or {}).get("id") or record.get("status_id") or 2)
    deadline = record.get("deadline_at")
    closed = bool(deadline) and deadline < TODAY.isoformat()
    if status_id == 3:
        status = "Avlyst"
    elif status_id == 4:
        status = "Utsatt"
    elif closed:
        status = "Påmeldingen er stengt"
    elif status_id == 1:
        status = "Dato kommer"
    else:
        status = "Påmeldingsfrist " if deadline else ""
    free = int(record["seats"]["free"]["num"])
    capacity = int(record["seats"]["allocated_capacity"]["num"])
    if record["seats_status"] == "fully_booked" or (capacity and free <= 0):
        seats = "Fullt"
    elif free <= 0:
        seats = ""  # no capacity set: unknown, nothing shown
    elif free <= 3:
        seats = f"Få plasser igjen ({free})"
    else:
        seats = "1 ledig plass" if free == 1 else f"{free} ledige plasser"
    price = course["price"]["value"]
    bookable = status_id in (1, 2) and not closed and seats != "Fullt"
    # publish.booking's default order: the booking address, the e-mail, Kursguiden; without
    # any (and no contact set, as in the demo), words without a link.
    if course.get("external_booking_url"):
        booking = ("Meld deg på", course["external_booking_url"])
    elif course.get("email_booking"):
        booking = ("Meld deg på per e-post", f"mailto:{course['email_booking']}?subject=")
    elif course.get("kursguiden_url"):
        booking = ("Meld deg på hos Kursguiden", course["kursguiden_url"])
    else:
        booking = ("Kontakt kursleverandøren for påmelding", None)
    return {
        "start": record["start_at"],
        "status": status,
        "seats": seats,
        "price": str(price) if price else "Pris på forespørsel",
        "booking": booking if bookable else None,
    }


def seat_kind(shown: str) -> str:
    if shown == "Fullt":
        return "full"
    if shown.startswith("Få"):
        return "few"
    return "counted" if shown else "unknown"


def test_each_date_row_shows_its_own_status_seats_price_and_booking(demo):
    """Every row of every dates table against its own record: status, seats, price and the
    booking link (or e-mail, or none) of that date and no other."""
    site, _ = demo
    store = SnapshotStore(site.parent / "snapshots" / "demo")
    snapshot = store.load(store.latest_name())
    kinds: Counter = Counter()
    rows = 0
    for page in site.glob("kurs/*/index.html"):
        for row in parse(page).select("table.dates tbody tr"):
            did = int(row["id"].removeprefix("date-"))
            record = snapshot.coursedates[did]
            course = snapshot.courses[record["course_id"]]
            assert page.parent.name.endswith(f"-{course['id']}"), (page, did)
            cells = {td["data-label"]: td for td in row.find_all("td")}
            assert list(cells) == [
                "Dato", "Tid", "Sted", "By", "Status", "Plasser", "Pris", "Påmelding",
            ]  # fmt: skip
            text = {label: cell.get_text(" ", strip=True) for label, cell in cells.items()}
            expected = expected_row(record, course)
            where = f"{page.relative_to(site)} date {did}"
            assert cells["Dato"].find("time")["datetime"] == expected["start"], where
            if expected["status"].endswith(" "):
                assert text["Status"].startswith(expected["status"]), where
            else:
                assert text["Status"] == expected["status"], where
            assert text["Plasser"] == expected["seats"], where
            if expected["price"][0].isdigit():
                assert re.sub(r"\D", "", text["Pris"]) == expected["price"], where
            else:
                assert text["Pris"] == expected["price"], where
            buttons = row.select("a.button")
            asking = row.select("p.booking-ask")
            if expected["booking"] is None:
                assert buttons == [] and asking == [], where
            elif expected["booking"][1] is None:
                assert buttons == [], where
                assert [p.get_text(" ", strip=True) for p in asking] == [expected["booking"][0]]
                kinds["ask"] += 1
            else:
                words, target = expected["booking"]
                ((button,),) = (buttons,)
                assert button["href"].startswith(target), where
                hidden = button.select_one(".visually-hidden").extract().get_text()
                assert button.get_text() == words, where
                assert hidden.startswith(": "), where  # the course and the day, for screen readers
                kinds["mailto" if target.startswith("mailto:") else words] += 1
            kinds[expected["status"].strip() or "no status"] += 1
            kinds[seat_kind(expected["seats"])] += 1
            kinds["sub-dates"] += bool(row.select("details.sessions"))
            rows += 1
    # The demo holds every kind of row, so each rule above was put to the test.
    assert {
        "Avlyst", "Utsatt", "Påmeldingen er stengt", "Dato kommer", "Påmeldingsfrist",
        "full", "few", "counted", "unknown", "sub-dates", "mailto", "Meld deg på",
        "Meld deg på hos Kursguiden", "ask",
    } <= set(+kinds), kinds  # fmt: skip
    assert rows > 60


def test_home_lists_courses_with_their_next_date(demo):
    site, _ = demo
    soup = parse(site / "index.html")
    links = [a["href"] for a in soup.select("main a[href^='kurs/']")]
    assert len(set(links)) >= 20
    assert soup.find(string=lambda s: s and "Neste kurs" in s)


def test_the_calendar_groups_upcoming_dates_by_month(demo):
    site, _ = demo
    soup = parse(site / "kalender" / "index.html")
    months = [h.get_text(strip=True) for h in soup.select("main section[aria-labelledby^=m-] h2")]
    assert months[0] == "November 2026" or months[0] == "Desember 2026"
    assert all(m.split()[-1].isdigit() for m in months)
    for time_element in soup.select("main time[datetime]"):
        assert time_element["datetime"] >= "2026-11-23"


def test_long_lists_paginate_with_working_links(demo):
    site, _ = demo
    second = site / "kalender" / "side" / "2" / "index.html"
    assert second.is_file()
    soup = parse(second)
    pager = soup.find("nav", attrs={"aria-label": "Sider"})
    assert pager is not None
    assert pager.find(string=lambda s: s and "Side 2 av" in s)


def test_rebuilding_the_same_snapshot_writes_nothing(demo):
    site, _ = demo
    before = site_tree(site)
    report = build_demo(site.parent, "--offline")
    assert (report["written"], report["removed"]) == (0, 0)
    assert report["unchanged"] == report["files"]
    assert site_tree(site) == before  # same bytes and same mtimes


@pytest.mark.slow
def test_the_same_snapshot_gives_the_same_bytes_whatever_the_machines_zone(demo, tmp_path):
    site, _ = demo
    for zone in ("America/Los_Angeles", "Asia/Tokyo"):
        build_demo(tmp_path / zone.replace("/", "-"), env={"TZ": zone})
        other = tmp_path / zone.replace("/", "-") / "site"
        assert site_bytes(other) == site_bytes(site), zone


@pytest.mark.slow
def test_an_english_site(tmp_path):
    (tmp_path / "catalog.toml").write_text('[site]\nlanguage = "en"\ntitle = "Courses"\n')
    build_demo(tmp_path)
    site = tmp_path / "site"
    home = parse(site / "index.html")
    assert home.html["lang"] == "en"
    assert home.find(string=lambda s: s and "Next date" in s)
    course = parse(next(site.glob("courses/*/index.html")))
    headers = [th.get_text(strip=True) for th in course.select("table.dates thead th")]
    assert headers == [
        "Date",
        "Time",
        "Venue",
        "City",
        "Status",
        "Seats",
        "Price",
        "Booking",
    ]
    assert (site / "calendar" / "index.html").is_file()
    months = [h.get_text(strip=True) for h in parse(site / "calendar/index.html").select("main h2")]
    assert months[0] in ("November 2026", "December 2026")


def test_offline_without_a_snapshot_says_what_to_run(tmp_path):
    result = run_cli(tmp_path, "build", "--offline")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no snapshot" in lines[0] and "catalog-gen build" in lines[0]
    assert not (tmp_path / "site").exists()


@pytest.mark.slow
def test_a_template_error_is_one_line_exit_1_and_the_site_stays(tmp_path):
    build_demo(tmp_path)
    before = site_tree(tmp_path / "site")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "home.html").write_text(
        "{% extends '!theme/home.html' %}\n{% block main %}{{ 1 // 0 }}{% endblock %}\n"
    )
    result = run_cli(tmp_path, "build", "--demo", "--offline", "--now", PINNED)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # The phases finished before the error report their time (not a terminal: plain lines).
    *phases, line = result.stderr.strip().splitlines()
    assert all(re.fullmatch(r"[a-z ]+: \d+ \(\d+\.\d s\)", phase) for phase in phases), phases
    assert line.startswith("error: ")
    assert "templates/home.html:2" in line and "ZeroDivisionError" in line
    quiet = run_cli(tmp_path, "build", "--demo", "--offline", "--now", PINNED, "-q")
    assert quiet.returncode == 1 and quiet.stderr.strip() == line
    assert site_tree(tmp_path / "site") == before


def test_a_bad_site_setting_is_a_usage_error(tmp_path):
    (tmp_path / "catalog.toml").write_text('[site]\nlanguage = "de"\n')
    result = run_cli(tmp_path, "build", "--demo")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "site.language" in line and "Traceback" not in result.stderr


def test_a_course_page_links_to_the_providers_own_page_when_there_is_one(demo):
    site, _ = demo
    store = SnapshotStore(site.parent / "snapshots" / "demo")
    snapshot = store.load(store.latest_name())
    linked = 0
    for page in site.glob("kurs/*/index.html"):
        record = snapshot.courses[int(page.parent.name.rsplit("-", 1)[1])]
        links = [a["href"] for a in parse(page).select("p.more-info a")]
        expected = record.get("external_more_info_url") or ""
        assert links == ([expected] if expected else []), page
        linked += bool(expected)
    assert linked >= 3


def test_every_page_that_shows_seats_says_how_old_they_are_and_no_other_does(demo):
    """Wherever seats or "full" are shown (course pages, course lists, the calendar), one line
    says when a fetch read them, from the snapshot (the demo's fetch: 04:00 in Oslo)."""
    site, _ = demo
    shown = 0
    for path in pages(site):
        soup = parse(path)
        seats = soup.select("main .seats")
        stamps = [p.get_text(strip=True) for p in soup.select("main .seats-as-of")]
        assert stamps == (["Ledige plasser per 23. nov. kl. 04:00"] if seats else []), path
        shown += bool(seats)
    assert shown > 40
