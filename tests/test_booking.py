"""A booking path for every bookable date: the rule (site/rules.py), the page and the data.

A bookable date (scheduled or to be decided, its deadline not passed, not fully booked) takes
the first path of ``publish.booking`` its course has: the booking address, the booking e-mail,
the course's page on Kursguiden. Without one it says how to get in touch (``site.contact_*``),
and without a contact it says so in words, and the build notes it. Every address passes the
one URL policy in its reader, so an unusable one falls through to the next path, reported as
odd data. The theme's button and the structured data read the same ``BookingPath``.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from catalog_gen.anomalies import Anomalies
from catalog_gen.build import run_build
from catalog_gen.config import BOOKING_PATHS, PublishSettings, SiteSettings, load_config
from catalog_gen.errors import ConfigError
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.generate import catalog_notes, render_files
from catalog_gen.site.rules import NO_CONTACT, contact_terms
from catalog_gen.source.store import SnapshotStore
from tests.conftest import snapshot_of
from tests.test_catalog import NOW, cdate, course

EXTERNAL = "https://booking.example.no/kurs/1"
EMAIL = "kurs@example.no"
KURSGUIDEN = "https://www.kursguiden.no/kurs/Økologisk-matkurs/Learn-REST-API/"
#: A course's fields for each path it has; the others are left empty, as the API sends them.
HAS = {
    "external": {"external_booking_url": EXTERNAL},
    "email": {"email_booking": EMAIL},
    "kursguiden": {"kursguiden_url": KURSGUIDEN},
}
#: The record field of each path.
PATHS = {
    "external": "external_booking_url",
    "email": "email_booking",
    "kursguiden": "kursguiden_url",
}
NOTHING = {"external_booking_url": "", "email_booking": None, "kursguiden_url": None}
WORDS = {
    "external": "book",
    "email": "book_by_email",
    "kursguiden": "book_on_kursguiden",
    "none": "book_ask",
}


def course_with(paths, cid=1, **fields):
    record = course(cid, **NOTHING)
    for name in paths:
        record.update(HAS[name])
    record.update(fields)
    return record


def catalog_of(courses, dates, *, order=BOOKING_PATHS, site=None, anomalies=None):
    rules = replace(PublishSettings(), booking=tuple(order))
    contact = contact_terms(site) if site is not None else None
    return build_catalog(
        snapshot_of(courses, dates), rules, now=NOW, contact=contact, anomalies=anomalies
    )


def subsets(names):
    return [set(c) for n in range(len(names) + 1) for c in itertools.combinations(names, n)]


ORDERS = [
    ("external", "email", "kursguiden"),
    ("kursguiden", "email", "external"),
    ("email", "kursguiden"),
    ("kursguiden",),
    (),
]


# --- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: "-".join(o) or "none")
@pytest.mark.parametrize("has", subsets(BOOKING_PATHS), ids=lambda h: "+".join(sorted(h)) or "no")
def test_a_bookable_date_takes_the_first_path_of_publish_booking_its_course_has(has, order):
    """Every combination of paths a course has, in several orders: the first listed one it
    has wins; none listed that it has: words that say to contact the provider, no link."""
    catalog = catalog_of([course_with(has)], [cdate(7, 1)], order=order)
    booking = catalog.dates[0].booking
    expected = next((name for name in order if name in has), "none")
    assert (booking.kind, booking.words, booking.contact) == (expected, WORDS[expected], "")
    assert catalog.dates[0].bookable
    if expected == "external":
        assert booking.url == booking.web_page == EXTERNAL
    elif expected == "kursguiden":
        assert booking.url == booking.web_page == KURSGUIDEN
    elif expected == "email":  # the subject names the course and the day
        assert booking.url == f"mailto:{EMAIL}?subject=Kurs%201%202026-12-01"
        assert booking.web_page == ""
    else:
        assert booking.url == booking.web_page == ""


@pytest.mark.parametrize(
    ("site", "kind", "url", "words", "contact"),
    [
        (
            SiteSettings(
                contact_url="https://kurs.example.no/kontakt",
                contact_email="post@example.no",
                contact_phone="+47 22 00 00 00",
            ),
            "contact",
            "https://kurs.example.no/kontakt",
            "book_contact",
            "",
        ),
        (
            SiteSettings(contact_email="post@example.no", contact_phone="+47 22 00 00 00"),
            "contact",
            "mailto:post@example.no?subject=Kurs%201%202026-12-01",
            "book_contact_email",
            "post@example.no",
        ),
        (
            SiteSettings(contact_phone="+47 22 00 00 00"),
            "contact",
            "tel:+4722000000",
            "book_contact_phone",
            "+47 22 00 00 00",
        ),
        (SiteSettings(), "none", "", "book_ask", ""),
    ],
    ids=["page", "email", "phone", "none"],
)
def test_a_date_without_a_path_says_how_to_get_in_touch(site, kind, url, words, contact):
    """The contact page first, then the e-mail, then the phone; with none, words only."""
    catalog = catalog_of([course_with(())], [cdate(7, 1)], site=site)
    booking = catalog.dates[0].booking
    assert (booking.kind, booking.url, booking.words, booking.contact) == (
        kind,
        url,
        words,
        contact,
    )


def test_a_contact_does_not_take_the_place_of_a_path_the_course_has():
    site = SiteSettings(contact_email="post@example.no")
    catalog = catalog_of([course_with({"kursguiden"})], [cdate(7, 1)], site=site)
    assert catalog.dates[0].booking.kind == "kursguiden"


UNUSABLE = {
    "external_booking_url": ["javascript:alert(1)", "https://user:pw@evil.example/", "/kurs/1"],
    "email_booking": ["kurs@x.no?bcc=spy@evil.example", "kurs@x.no,spy@evil.example"],
    "kursguiden_url": ["data:text/html,hi", "https://www.kursguiden.no/kurs/<x>/", "ftp://x.no/"],
}


@pytest.mark.parametrize(
    ("bad", "value"), [(k, v) for k, values in UNUSABLE.items() for v in values]
)
def test_an_unusable_address_falls_back_to_the_next_path_with_its_anomaly(bad, value):
    """The reader refuses the address (the one URL policy), reports it, and the date takes
    the next path of the order as if the course had no such path."""
    found = Anomalies()
    record = course_with(BOOKING_PATHS, **{bad: value})
    catalog = catalog_of([record], [cdate(7, 1)], anomalies=found)
    kind_of_address = "address.email_unusable" if bad == "email_booking" else "address.url_unusable"
    assert (kind_of_address, "course 1", bad) in {(a.kind, a.record, a.field) for a in found}
    left = [name for name in BOOKING_PATHS if PATHS[name] != bad]
    assert catalog.dates[0].booking.kind == left[0]
    assert value not in catalog.dates[0].booking.url


def test_every_address_unusable_leaves_words_and_three_anomalies():
    found = Anomalies()
    record = course_with(
        (),
        external_booking_url="javascript:alert(1)",
        email_booking="a@b.no?bcc=c@d.no",
        kursguiden_url=" java\nscript:alert(2)",
    )
    catalog = catalog_of([record], [cdate(7, 1)], anomalies=found)
    assert catalog.dates[0].booking.kind == "none"
    assert catalog.courses[0].kursguiden_url == ""
    assert {a.field for a in found if a.kind.startswith("address.")} == set(PATHS.values())


def test_a_kursguiden_page_is_a_typed_field_read_like_every_address():
    catalog = catalog_of([course_with((), kursguiden_url=f"  {KURSGUIDEN}  ")], [])
    assert catalog.courses[0].kursguiden_url == KURSGUIDEN
    assert "kursguiden_url" not in catalog.courses[0].extra


@pytest.mark.parametrize(
    ("fields", "bookable"),
    [
        ({}, True),
        ({"status": {"id": 1}}, True),  # to be decided: still bookable
        ({"status": {"id": 3}}, False),  # canceled
        ({"status": {"id": 4}}, False),  # postponed
        ({"status": {"id": 9}}, False),  # unknown
        ({"seats_status": "fully_booked"}, False),
        ({"deadline_at": "2026-11-20", "visible_when_passed_deadline": True}, False),
    ],
    ids=["scheduled", "tbd", "canceled", "postponed", "unknown", "full", "deadline-passed"],
)
def test_only_a_bookable_date_has_a_path(fields, bookable):
    catalog = catalog_of([course_with(())], [cdate(7, 1, **fields)])
    d = catalog.dates[0]
    assert d.bookable is bookable and (d.booking is not None) is bookable


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[publish]\nbooking = ["email", "email"]\n', "must name each at most once"),
        ('[publish]\nbooking = ["phone"]\n', "must be one of 'external', 'email', 'kursguiden'"),
        ('[publish]\nbooking = "email"\n', "must be a list"),
        ('[site]\ncontact_email = "a@b.no?bcc=c@d.no"\n', "'site.contact_email' must be one"),
        ('[site]\ncontact_email = "a@b.no, c@d.no"\n', "'site.contact_email' must be one"),
        ('[site]\ncontact_phone = "ring oss"\n', "'site.contact_phone' must be a phone"),
        ('[site]\ncontact_url = "javascript:alert(1)"\n', "'site.contact_url' must be an"),
        ('[site]\ncontact_url = "https://a:b@x.no/"\n', "'site.contact_url' must be an"),
    ],
)
def test_the_booking_settings_are_checked_when_the_config_is_read(tmp_path, toml, message):
    (tmp_path / "catalog.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "catalog.toml")


def test_an_empty_order_is_allowed_and_a_contact_the_url_policy_refuses_is_a_config_error():
    assert catalog_of([course_with(BOOKING_PATHS)], [cdate(7, 1)], order=()).dates[0].booking
    with pytest.raises(ConfigError, match=r"'site\.contact_url' is not a usable web address"):
        contact_terms(SiteSettings(contact_url="https://exa mple/"))
    assert contact_terms(SiteSettings()) == NO_CONTACT


# --- the page and its structured data ---------------------------------------------------------

#: One course per way to book, and one that cannot be booked (canceled).
PAGE_COURSES = {
    1: ("external", {"external"}),
    2: ("email", {"email", "kursguiden"}),
    3: ("kursguiden", {"kursguiden"}),
    4: ("none", set()),
}


def render_site(tmp_path: Path, toml: str) -> dict[str, BeautifulSoup]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "catalog.toml").write_text(toml, encoding="utf-8")
    config = load_config(tmp_path / "catalog.toml")
    courses = [course_with(has, cid) for cid, (_, has) in PAGE_COURSES.items()]
    dates = [cdate(cid * 10, cid) for cid in PAGE_COURSES]
    dates.append(cdate(11, 1, start="2026-12-08", status={"id": 3}))
    site = render_files(config, snapshot_of(courses, dates), now=NOW)
    return {
        cid: BeautifulSoup(data, "html5lib")
        for name, data in site.files.items()
        for cid in PAGE_COURSES
        if name.endswith(f"-{cid}/index.html")
    }


def row_booking(page: BeautifulSoup, date_id: int) -> tuple[str, str, str]:
    """(the button's words or the sentence, its link, its class) of a date's row."""
    cell = page.select_one(f"tr#date-{date_id} td:last-child")
    button = cell.select_one("a.button")
    if button is None:
        ask = cell.select_one("p.booking-ask")
        return (ask.get_text(strip=True) if ask else "", "", "")
    hidden = button.select_one(".visually-hidden").extract()
    assert hidden.get_text().startswith(": Kurs ")  # the course and the day, read aloud
    return button.get_text(), button["href"], " ".join(button["class"])


def offers(page: BeautifulSoup) -> list[str]:
    script = page.find("script", type="application/ld+json")
    return [i["offers"].get("url", "") for i in json.loads(script.string)["hasCourseInstance"]]


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (
            "nb",
            {
                "external": "Meld deg på",
                "email": "Meld deg på per e-post",
                "kursguiden": "Meld deg på hos Kursguiden",
                "none": "Kontakt kursleverandøren for påmelding",
                "phone": "Ring +47 22 00 00 00 for påmelding",
            },
        ),
        (
            "en",
            {
                "external": "Book",
                "email": "Book by e-mail",
                "kursguiden": "Book on Kursguiden",
                "none": "Contact the course provider to book",
                "phone": "Call +47 22 00 00 00 to book",
            },
        ),
    ],
)
def test_the_button_says_where_it_leads_and_the_structured_data_offers_the_same(
    tmp_path, language, words
):
    base = f'[site]\nlanguage = "{language}"\nbase_url = "https://kurs.example.no/"\n'
    pages = render_site(tmp_path / "plain", base)
    assert row_booking(pages[1], 10) == (words["external"], EXTERNAL, "button booking-external")
    text, href, _ = row_booking(pages[2], 20)
    assert text == words["email"] and href == f"mailto:{EMAIL}?subject=Kurs%202%202026-12-01"
    assert row_booking(pages[3], 30) == (
        words["kursguiden"],
        KURSGUIDEN,
        "button booking-kursguiden",
    )
    assert row_booking(pages[4], 40) == (words["none"], "", "")
    assert row_booking(pages[1], 11) == ("", "", "")  # canceled: no way to book
    # The structured data offers the booking path's web page, else the date's own row.
    row = "https://kurs.example.no/{}/kurs-{}-{}/#date-{}"
    segment = "kurs" if language == "nb" else "courses"
    assert offers(pages[1]) == [EXTERNAL, row.format(segment, 1, 1, 11)]
    assert offers(pages[2]) == [row.format(segment, 2, 2, 20)]
    assert offers(pages[3]) == [KURSGUIDEN]
    assert offers(pages[4]) == [row.format(segment, 4, 4, 40)]

    phone = render_site(tmp_path / "phone", base + 'contact_phone = "+47 22 00 00 00"\n')
    assert row_booking(phone[4], 40) == (
        words["phone"],
        "tel:+4722000000",
        "button booking-contact",
    )
    assert row_booking(phone[3], 30)[1] == KURSGUIDEN  # a course's own path still wins


def test_a_build_notes_dates_that_can_only_say_contact_the_provider(tmp_path):
    courses = [course_with((), 1), course_with({"kursguiden"}, 2)]
    dates = [cdate(10, 1), cdate(20, 2)]
    catalog = build_catalog(snapshot_of(courses, dates), PublishSettings(), now=NOW)
    (note,) = catalog_notes(catalog)
    assert note.startswith("1 bookable date has no booking path (publish.booking)")
    assert "course date 10" in note and "site.contact_email" in note
    contact = contact_terms(SiteSettings(contact_phone="22 00 00 00"))
    with_contact = build_catalog(
        snapshot_of(courses, dates), PublishSettings(), now=NOW, contact=contact
    )
    assert catalog_notes(with_contact) == ()

    # The build report carries it (and a build that sets a contact does not).
    snapshots = SnapshotStore(tmp_path / "snapshots")
    snapshots.save(snapshot_of(courses, dates))
    (tmp_path / "catalog.toml").write_text("[site]\nsearch = false\n", encoding="utf-8")
    report = run_build(load_config(tmp_path / "catalog.toml"), None, now=NOW)
    assert note in report.notes
    (tmp_path / "catalog.toml").write_text(
        '[site]\nsearch = false\ncontact_phone = "22 00 00 00"\n', encoding="utf-8"
    )
    report = run_build(load_config(tmp_path / "catalog.toml"), None, now=NOW)
    assert not [n for n in report.notes if "booking path" in n]
