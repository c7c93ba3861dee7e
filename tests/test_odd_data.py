"""A record never stops the catalog: odd values get a safe fallback and a warning naming them.

Each case here is a value real catalogs hold and the samples never did (issue 15), or an
address that would have become markup (issue 18): the catalog is built, the fallback is what a
visitor sees, and the anomaly names the record, the field and the value.
"""

from __future__ import annotations

import json
import re
from datetime import date, time
from decimal import Decimal

import pytest
from bs4 import BeautifulSoup

from catalog_gen.anomalies import Anomalies, report_lines
from catalog_gen.config import Config, PublishSettings, SiteSettings, Table
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.cities import city_key
from catalog_gen.site.generate import render_files
from tests.conftest import API_KEY, snapshot_of
from tests.sitecheck import parse
from tests.test_catalog import NOW, RULES, cdate, course
from tests.test_unattended import DAY1, build

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def catalog_with(courses, dates, rules=RULES, language="nb"):
    snapshot = snapshot_of(courses, dates)
    found = Anomalies()
    catalog = build_catalog(
        snapshot, rules, now=NOW, timezone="Europe/Oslo", language=language, anomalies=found
    )
    return catalog, found


def named(found: Anomalies) -> set[tuple[str, str, str]]:
    return {(a.kind, a.record, a.field) for a in found}


def at(location_id, title="Sted", city="Oslo", **fields):
    return {"id": location_id, "title": title, "address": "Gate 1", "zipcode": "0150",
            "city": city, **fields}  # fmt: skip


# --- names in any script, or none -------------------------------------------------------------

NAMES = {
    "cyrillic": "Москва: курсы русского языка",
    "greek": "Αθήνα – Ελληνικά για αρχάριους",
    "cjk": "北京 计算机课程",
    "arabic": "القاهرة دورة اللغة العربية",
    "emoji": "🎉🎓✨",
    "punctuation": "!!! ... ???",
    "whitespace": " \t\u00a0\u2003 ",
}


@pytest.mark.parametrize("script", NAMES)
def test_course_category_venue_and_city_names_in_any_script(script):
    name = NAMES[script]
    catalog, found = catalog_with(
        [course(22002, title=name, categories=[{"id": 11, "title": name}])],
        [cdate(9, 22002, location=at(6402, title=name, city=name), place=None)],
    )
    (c,) = catalog.courses
    (venue,) = catalog.venues
    for slug in (
        c.slug,
        venue.slug,
        *(x.slug for x in c.categories),
        *(x.slug for x in catalog.cities),
    ):
        assert SLUG.match(slug) and len(slug) <= 80, slug
    assert c.slug.endswith("-22002") and venue.slug.endswith("-6402")
    if script in ("cyrillic", "greek", "cjk", "arabic"):  # transliterated, readable
        assert len(c.slug) > len("kurs-22002") and not c.slug.startswith("kurs-")
        assert c.title == name and venue.title == name and venue.city == name
        assert [city.name for city in catalog.cities] == [name]
        assert catalog.courses_in_city(catalog.cities[0]) == (c,)
        assert not found
    elif script == "whitespace":  # nothing to show: the fallbacks, and a warning for each
        assert (c.title, c.slug) == ("Kurs 22002", "kurs-22002")
        assert (venue.title, venue.slug) == ("Kurssted 6402", "sted-6402")
        assert c.categories == () and catalog.cities == () and venue.city == ""
        assert {
            ("course.title_blank", "course 22002", "title"),
            ("course.category_unusable", "course 22002", "categories[0]"),
            ("venue.title_blank", "venue 6402", "title"),
        } <= named(found)
    else:  # emoji or punctuation: shown as typed, but the address is made of the id
        assert c.title == name and c.slug == "kurs-22002" and venue.slug == "sted-6402"
        assert c.categories[0].slug == "kategori-11"
        assert catalog.cities == () and venue.city == ""  # no city page …
        assert catalog.venues == (venue,)  # … but the venue is still listed
        assert {
            ("value.no_slug", "course 22002", "title"),
            ("value.no_slug", "venue 6402", "title"),
            ("value.no_slug", "category 11", "title"),
            ("venue.city_unusable", "venue 6402", "city"),
        } <= named(found)


def test_slugs_of_latin_titles_have_not_moved():
    """What the demo and every Norwegian catalog had before transliteration came in."""
    catalog, found = catalog_with(
        [
            course(22001, title="Førstehjelp for ansatte"),
            course(22003, title="Ærlig talt: Åpen dør på Østlandet"),
            course(22004, title="Crème brûlée – kurs i Trondheim"),
            course(22005, title="Excel 365: Pivot & tabeller (nivå 2)"),
        ],
        [],
    )
    assert sorted(c.slug for c in catalog.courses) == [
        "aerlig-talt-apen-dor-pa-ostlandet-22003",
        "creme-brulee-kurs-i-trondheim-22004",
        "excel-365-pivot-tabeller-niva-2-22005",
        "forstehjelp-for-ansatte-22001",
    ]
    assert not found


def test_a_very_long_title_is_shown_in_full_with_a_capped_slug():
    title = "Prosjektledelse i praksis for erfarne ledere i offentlig sektor " * 6
    catalog, found = catalog_with([course(9_999_999_999_999_999, title=title)], [])
    (c,) = catalog.courses
    assert c.title == title.strip()
    assert len(c.slug) <= 80 and c.slug.endswith("-9999999999999999") and SLUG.match(c.slug)
    assert not found


@pytest.mark.parametrize("bad_id", [0, -5, 10**16, 10**40])
def test_an_id_that_cannot_be_an_address_leaves_the_record_out_with_a_warning(bad_id):
    catalog, found = catalog_with([course(bad_id), course(1)], [cdate(bad_id, 1)])
    assert [c.id for c in catalog.courses] == [1] and catalog.dates == ()
    assert {
        ("course.id_unusable", f"course {bad_id}", "id"),
        ("date.id_unusable", f"course date {bad_id}", "coursedate_id"),
    } <= named(found)


@pytest.mark.parametrize("title", [None, "", "   ", "\u200b\u200b", [], {"no": "bokmål"}])
def test_a_blank_or_missing_title_gets_a_fallback_title_and_a_warning(title):
    record = course(22002, title=title)
    if title is None:
        del record["title"]
    catalog, found = catalog_with([record], [])
    assert catalog.courses[0].title == "Kurs 22002" and catalog.courses[0].slug == "kurs-22002"
    assert ("course.title_blank", "course 22002", "title") in named(found)
    english, _ = catalog_with([record], [], language="en")
    assert english.courses[0].title == "Course 22002"


# --- one city, however it is spelled --------------------------------------------------------


def test_spellings_of_one_city_are_one_city_with_all_its_courses():
    spellings = {1: "Tromsø", 2: "TROMSØ", 3: " tromsø  ", 4: "Tromso", 5: "Tromsø"}
    catalog, found = catalog_with(
        [course(cid) for cid in spellings],
        [
            cdate(10 + cid, cid, location=at(100 + cid, title=f"Sted {cid}", city=city))
            for cid, city in spellings.items()
        ],
    )
    (tromso,) = catalog.cities
    assert (tromso.name, tromso.slug) == ("Tromsø", "tromso")  # the most frequent spelling
    assert [c.id for c in catalog.courses_in_city(tromso)] == [1, 2, 3, 4, 5]
    assert {v.city for v in catalog.venues} == {"Tromsø"}  # addresses use it too
    assert {a.record for a in found if a.kind == "city.spelled_differently"} == {
        "venue 102",
        "venue 103",
        "venue 104",
    }


def test_the_shown_spelling_does_not_depend_on_order():
    dates = [
        cdate(1, 1, location=at(7, city="OSLO")),
        cdate(2, 1, "2026-12-02", location=at(8, city="oslo")),
        cdate(3, 1, "2026-12-03", location=at(9, city="Oslo")),
    ]
    one, _ = catalog_with([course(1)], dates)
    two, _ = catalog_with([course(1)], list(reversed(dates)))
    assert one.cities == two.cities and one.cities[0].name == "Oslo"  # a tie: not all caps


def test_city_keys_fold_case_accents_and_spaces_but_not_other_scripts_letters():
    assert city_key("  Ålesund ") == city_key("ALESUND") == "alesund"
    assert city_key("Bærum") == city_key("Baerum") and city_key("St. Olav") == "st olav"
    assert city_key("Αθήνα") == city_key("ΑΘΗΝΑ")
    assert city_key("Москва") != city_key("Моссква")
    assert city_key("北京") != city_key("背景")
    assert city_key("!!!") == city_key("🎉") == city_key(" ") == ""


def test_two_cities_whose_romanisations_coincide_get_two_pages():
    catalog, _ = catalog_with(
        [course(1)],
        [
            cdate(1, 1, location=at(7, city="北京")),
            cdate(2, 1, "2026-12-02", location=at(8, city="背景")),
        ],
    )
    slugs = [c.slug for c in catalog.cities]
    assert len(set(slugs)) == 2 and all(s.startswith("bei-jing-") for s in slugs)


# --- unknown values of enumerations ---------------------------------------------------------


def test_an_unknown_date_status_is_listed_but_never_bookable_until_mapped():
    dates = [cdate(1, 1, status={"id": 7, "title": "Venteliste"}), cdate(2, 1, status=None)]
    catalog, found = catalog_with([course(1)], dates)
    assert [(d.status, d.bookable) for d in catalog.dates] == [
        ("unknown", False),
        ("unknown", False),
    ]
    assert {("date.status_unknown", "course date 1", "status.id")} <= named(found)
    assert ("date.status_unknown", "course date 2", "status.id") in named(found)

    mapped = PublishSettings(date_status=Table({7: "scheduled"}))
    catalog, found = catalog_with([course(1)], dates[:1], rules=mapped)
    assert (catalog.dates[0].status, catalog.dates[0].bookable) == ("scheduled", True)
    assert not found


def test_unknown_course_type_level_form_and_language_are_shown_conservatively():
    catalog, found = catalog_with(
        [
            course(1, type="partner"),
            course(2, level={"id": "sertifisering"}),
            course(3, form_of_teaching={"id": 9, "title": "—"}),
            course(4, teaching_language={"id": "xx", "title": "Klingon"}),
            course(5, type=["internal"]),
        ],
        [],
    )
    by_id = {c.id: c for c in catalog.courses}
    assert set(by_id) == {1, 2, 3, 4, 5}  # published: the rules that hide cannot apply …
    assert by_id[3].form_of_teaching == "" and catalog.facet("form") == ()  # … nothing odd shown
    assert by_id[4].language == "" and catalog.facet("language") == ()
    assert {
        ("course.type_unknown", "course 1", "type"),
        ("course.level_unreadable", "course 2", "level.id"),
        ("course.form_unusable", "course 3", "form_of_teaching"),
        ("course.language_unknown", "course 4", "teaching_language"),
        ("course.type_unknown", "course 5", "type"),
    } == named(found)


@pytest.mark.parametrize(
    ("field", "value"), [("is_active", "kanskje"), ("is_active", 2), ("is_visible", "ja")]
)
def test_an_unreadable_flag_reads_as_no_with_a_warning(field, value):
    record = course(1, **({field: value} if field == "is_active" else {}))
    dates = [cdate(1, 1, **({field: value} if field == "is_visible" else {}))]
    catalog, found = catalog_with([record], dates)
    assert catalog.dates == ()
    name = "course 1" if field == "is_active" else "course date 1"
    assert ("value.flag_unreadable", name, field) in named(found)


# --- impossible or unreadable dates and times ----------------------------------------------


def test_impossible_dates_and_times_keep_the_sound_part():
    catalog, found = catalog_with(
        [course(1)],
        [
            cdate(1, 1, "2026-12-03", end_at="2026-12-01"),
            cdate(2, 1, "2026-12-04", start_time_at="25:99", end_time_at="16:00:00"),
            cdate(3, 1, "2026-12-05", start_time_at="16:00:00", end_time_at="08:00:00"),
            cdate(4, 1, "2026-12-06", timezone="Mars/Olympus_Mons"),
            cdate(5, 1, "2026-12-07", deadline_at="2026-02-30"),
            cdate(6, 1, "yesterday-ish"),
            cdate(7, 404, "2026-12-08"),  # its course is not in the data
            cdate(8, 1, "2026-12-09", parent_id=999),  # a sub-date of nothing
        ],
    )
    by_id = {d.id: d for d in catalog.dates}
    assert set(by_id) == {1, 2, 3, 4, 5}
    assert by_id[1].end_date is None
    assert (by_id[2].start_time, by_id[2].end_time) == (None, time(16, 0))
    assert (by_id[3].start_time, by_id[3].end_time) == (time(16, 0), None)
    assert by_id[4].timezone == "Europe/Oslo" and by_id[4].start_date == date(2026, 12, 6)
    assert by_id[5].deadline is None and by_id[5].bookable
    assert named(found) == {
        ("date.end_before_start", "course date 1", "end_at"),
        ("date.time_unreadable", "course date 2", "start_time_at"),
        ("date.end_before_start", "course date 3", "end_time_at"),
        ("date.timezone_unknown", "course date 4", "timezone"),
        ("date.day_unreadable", "course date 5", "deadline_at"),
        ("date.start_unreadable", "course date 6", "start_at"),
        ("date.course_missing", "course date 7", "course_id"),
        ("date.parent_unusable", "course date 8", "parent_id"),
    }


def test_dates_at_the_edge_of_the_calendar_are_read_or_left_out(tmp_path):
    courses = [course(1)]
    dates = [
        cdate(1, 1, "0001-01-01T00:30:00"),
        cdate(2, 1, 10**400),
        cdate(3, 1, "2026-12-01", updated_at="9999-12-31T23:59:59-23:59"),
        cdate(4, 1, "9999-12-31", end_at="9999-12-31"),  # no calendar can hold the day after
        cdate(5, 1, "2026-12-02", gatherings=[{"gathering_at": "9999-12-31 23:00"}]),
    ]
    catalog, found = catalog_with(courses, dates)
    assert [d.id for d in catalog.dates] == [3, 5] and catalog.dates[0].updated_at is None
    assert catalog.dates[1].sessions == ()
    assert {
        ("date.day_unreadable", "course date 3", "updated_at"),
        ("date.start_unreadable", "course date 2", "start_at"),
        ("date.start_unreadable", "course date 4", "start_at"),
        ("date.session_unreadable", "course date 5", "gatherings[0].gathering_at"),
    } <= named(found)
    config = Config(site=SiteSettings(search=False, base_url="https://x.example/"), root=tmp_path)
    assert "kalender.ics" in render_files(config, snapshot_of(courses, dates), now=NOW).files


def test_sub_dates_and_gatherings_without_a_start_are_left_out_of_the_sessions():
    catalog, found = catalog_with(
        [course(1)],
        [
            cdate(1, 1, gatherings=[{"gathering_at": "i morgen"}, "x"]),
            cdate(2, 1, "2026-12-01", parent_id=1, start_at=None),
        ],
    )
    assert catalog.dates[0].sessions == ()
    assert {
        ("date.session_unreadable", "course date 1", "gatherings[0].gathering_at"),
        ("date.session_unreadable", "course date 2", "start_at"),
    } <= named(found)


# --- numbers, and null or [] where a list or object belongs --------------------------------


@pytest.mark.parametrize(
    ("capacity", "free", "state", "kind"),
    [
        ("20", "12.0", "available", None),  # numbers as text
        (20, -2, "full", None),  # overbooked
        (-20, 5, "unknown", "date.seats_unusable"),  # negative capacity
        (20, 10**9, "unknown", "date.seats_unusable"),  # absurd
        (20, 25, "unknown", "date.seats_unusable"),  # more free than there are
        (20, "mange", "unknown", "date.seats_unusable"),  # not a number
    ],
)
def test_seat_counts_that_cannot_be_true_show_no_count(capacity, free, state, kind):
    seats = {"allocated_capacity": {"num": capacity}, "free": {"num": free}}
    catalog, found = catalog_with([course(1)], [cdate(1, 1, seats=seats)])
    assert catalog.dates[0].seats.state == state
    assert {a.kind for a in found} == ({kind} if kind else set())


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("4 900,50", "NOK", Decimal("4900.50")),
        ("4.900,50", "NOK", Decimal("4900.50")),
        ("1499,5", "EUR", Decimal("1499.5")),
        ("1499.50", "EUR", Decimal("1499.50")),
        (4900, "nok", Decimal(4900)),
    ],
)
def test_prices_with_a_decimal_comma_are_read(value, currency, expected):
    catalog, found = catalog_with([course(1, price={"value": value, "currency": currency})], [])
    assert catalog.courses[0].price.value == expected and not found


@pytest.mark.parametrize(
    ("price", "field"),
    [
        ({"value": "gratis?", "currency": "NOK"}, "price.value"),
        ({"value": -100, "currency": "NOK"}, "price.value"),
        ({"value": "1e400", "currency": "NOK"}, "price.value"),
        ({"value": 4900, "currency": "KRONER"}, "price.currency"),
        ({"value": 4900, "currency": None}, "price.currency"),
        ("4900", "price"),
    ],
)
def test_a_price_that_cannot_be_read_is_on_request_with_a_warning(price, field):
    catalog, found = catalog_with([course(1, price=price)], [])
    assert catalog.courses[0].price is None
    assert {(a.kind, a.field) for a in found} == {
        ("value.wrong_type" if field == "price" else "course.price_unusable", field)
    }


def test_null_where_a_list_or_object_belongs_and_empty_php_arrays_are_quietly_nothing():
    catalog, found = catalog_with(
        [course(1, categories=None, price=[], duration={}, form_of_teaching=[])],
        [cdate(1, 1, location=[], place=[], seats=[], status=[], status_id=2, gatherings=None)],
    )
    (c,) = catalog.courses
    assert c.categories == () and c.price is None and c.duration is None
    assert catalog.dates[0].venue is None and catalog.dates[0].seats.state == "unknown"
    assert catalog.dates[0].status == "scheduled"
    assert not found


def test_a_list_or_text_where_an_object_belongs_is_missing_with_a_warning():
    catalog, found = catalog_with(
        [course(1, categories="HMS", text_description=["<p>x</p>"], duration="2 dager")],
        [cdate(1, 1, location="Helsfyr", seats=[1, 2], gatherings={"a": 1})],
    )
    (c,) = catalog.courses
    assert c.categories == () and c.description_html == "" and c.duration is None
    assert named(found) >= {
        ("value.wrong_type", "course 1", "categories"),
        ("value.wrong_type", "course 1", "text_description"),
        ("value.wrong_type", "course 1", "duration"),
        ("value.wrong_type", "course date 1", "location"),
        ("value.wrong_type", "course date 1", "seats"),
        ("value.wrong_type", "course date 1", "gatherings"),
    }


def test_text_keeps_no_character_html_cannot_hold():
    catalog, _ = catalog_with(
        [course(1, title="Kurs\x00 i\x0b\x1f HMS\ufffe", text_lead="Linje\x0cto\x07")], []
    )
    assert catalog.courses[0].title == "Kurs i HMS"
    assert catalog.courses[0].lead == "Linje to"


# --- addresses are values, not markup (issue 18) -----------------------------------------

BAD_EMAILS = [
    "kurs@x.no?bcc=spy@evil.example",
    "kurs?bcc=spy@evil.example",
    "kurs@x.no%0D%0ABcc:spy@evil.example",
    "kurs%0d%0abcc:spy@x.no",
    "kurs@x.no\r\nBcc: spy@evil.example",
    "kurs@x.no,spy@evil.example",
    "kurs@x.no spy@evil.example",
    "kurs@x.no#frag",
    "kurs&cc=spy@x.no",
    "Kurs <kurs@x.no>",
    "kurs@localhost",
    "kurs@example.test",
    "@x.no",
    42,
]


@pytest.mark.parametrize("address", BAD_EMAILS)
def test_a_booking_email_must_be_exactly_one_plain_address(address):
    catalog, found = catalog_with([course(1, email_booking=address)], [cdate(1, 1)])
    d = catalog.dates[0]
    assert d.booking_email == "" and d.booking is not None and d.booking.kind == "none"
    assert "mailto:" not in d.booking.url  # no path by e-mail: no link at all here
    assert named(found) == {("address.email_unusable", "course 1", "email_booking")}


def test_a_plain_booking_email_is_kept_with_its_domain_in_ascii():
    catalog, found = catalog_with(
        [course(1, email_booking=" Kurs.Pamelding+vaar@Bølgen.NO ")], [cdate(1, 1)]
    )
    assert catalog.dates[0].booking_email == "Kurs.Pamelding+vaar@xn--blgen-vua.no"
    assert not found


BAD_URLS = [
    "javascript:alert(1)",
    "ftp://files.example.com/kurs",
    "//booking.example.com/kurs",
    "https://user:secret@booking.example.com/",
    "https://booking.example.com@evil.example/",
    "https://book ing.example.com/",
    "https://booking.example.com/\x00kurs",
    "https://booking.example.com/kurs\nSet-Cookie: x",
    "https://booking.example.com:99999/",
    "https://exa\u202emple.com/",
    'https://booking.example.com/"onmouseover="x',
    "http:///kurs",
    "https://localhost/kurs",
    "https://-bad-.example.com/",
    ["https://booking.example.com/"],
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_booking_more_info_and_online_addresses_are_plain_absolute_http_urls(url):
    online = {"location": None, "place": None, "is_virtual": True, "event_url": url}
    catalog, found = catalog_with(
        [course(1, external_booking_url=url, external_more_info_url=url)],
        [cdate(1, 1, **online)],
    )
    (d,) = catalog.dates
    assert d.booking_url == "" and d.online_url == "" and catalog.courses[0].more_info_url == ""
    assert named(found) == {
        ("address.url_unusable", "course 1", "external_booking_url"),
        ("address.url_unusable", "course 1", "external_more_info_url"),
        ("address.url_unusable", "course date 1", "event_url"),
    }


def test_real_booking_and_online_urls_are_kept_as_given():
    url = "https://booking.kursleverandøren.example/kurs?id=22001&dato=2026-12-01#skjema"
    online = {"location": None, "place": None, "is_virtual": True}
    catalog, found = catalog_with(
        [course(1, external_booking_url=url)],
        [cdate(1, 1, event_url="http://[2001:db8::1]:8443/møte", **online)],
    )
    assert catalog.dates[0].booking_url == url
    assert catalog.dates[0].online_url == "http://[2001:db8::1]:8443/møte"
    assert not found
    catalog, found = catalog_with([course(1, external_more_info_url=url)], [cdate(1, 1)])
    assert catalog.courses[0].more_info_url == url and not found


def test_credentials_in_a_url_are_masked_in_every_report_and_never_linked():
    """Finding 10: ``address.url_unusable`` echoed ``https://user:secret@…`` into stderr and
    CI logs. The password is masked wherever the value is shown; the URL gets no link."""
    secret = "https://ola:hemmelig-passord@booking.example.no/kurs"
    catalog, found = catalog_with(
        [course(1, external_booking_url=secret, external_more_info_url=secret)], [cdate(1, 1)]
    )
    assert catalog.dates[0].booking_url == "" and catalog.courses[0].more_info_url == ""
    lines = report_lines(found)
    assert lines and all("hemmelig" not in line and "ola" not in line for line in lines)
    assert any("https://***@booking.example.no/kurs" in line for line in lines)


# --- what a visitor sees -----------------------------------------------------------------


def test_the_pages_show_the_fallbacks(tmp_path):
    site = render_files(
        Config(site=SiteSettings(search=False), root=tmp_path),
        snapshot_of(
            [course(1, title=" ", email_booking="kurs@x.no?bcc=spy@evil.example")],
            [
                cdate(1, 1, status={"id": 7, "title": "Venteliste"}),
                cdate(2, 1, "2026-12-02", location=at(8, title="Loftet", city="—")),
            ],
        ),
        now=NOW,
    )
    page = BeautifulSoup(site.files["kurs/kurs-1/index.html"], "html5lib")
    assert page.h1.get_text(strip=True) == "Kurs 1"
    row = page.find(id="date-1")
    assert row.find(class_="status-unknown").get_text(strip=True) == "Ikke bekreftet"
    assert not page.select('a[href^="mailto:"]')  # neither the odd address nor any other
    venues = BeautifulSoup(site.files["sted/index.html"], "html5lib")
    elsewhere = venues.find(id="venues-elsewhere").find_parent("section")
    assert [a.get_text() for a in elsewhere.find_all("a")] == ["Loftet"]
    assert [path for path in site.files if path.startswith("by/")] == ["by/oslo/index.html"]


# --- the build report ------------------------------------------------------------------------


def warnings_of(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


@pytest.mark.slow
def test_odd_data_is_reported_grouped_and_quiet_runs_report_only_what_is_new(project, sample):
    first, second = sorted(sample.courses)[:2]
    sample.change_course(first, title="   ")
    result, report = build(project)
    assert result.returncode == 0, result.stderr
    assert warnings_of(result) == [
        f"warning: 1 × {KIND_TITLE} [course.title_blank]: course {first} title='   '"
    ]
    assert report["anomalies"] == 1 and report["new_anomalies"] == 1
    assert report["warnings"] == [warnings_of(result)[0].removeprefix("warning: ")]

    # Nothing new: a quiet run is silent (the build stops early), a loud one still says it.
    quiet = project.run("build", "--quiet", "--now", DAY1)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    loud, report = build(project)
    assert len(warnings_of(loud)) == 1 and report["anomalies"] == 1
    assert report["new_anomalies"] == 0

    # A new kind of odd data: --quiet mails that line only.
    sample.change_course(second, email_booking="kurs@x.no?bcc=spy@evil.example")
    quiet = project.run("build", "--quiet", "--now", DAY1)
    assert quiet.returncode == 0 and quiet.stdout == ""
    (line,) = warnings_of(quiet)
    assert "[address.email_unusable]" in line and f"course {second} email_booking=" in line
    assert API_KEY not in quiet.stderr

    # … and the visitor's page offers no link that would copy their booking to a third party.
    site = project.root / "site"
    (page,) = site.glob(f"kurs/*-{second}/index.html")
    hrefs = [a.get("href", "") for a in parse(page).find_all("a")]
    assert not [h for h in hrefs if "evil" in h or "bcc" in h.lower()]
    state = json.loads((project.root / ".site.build-state.json").read_text())
    assert ["course.title_blank", f"course {first}", "title"] in state["anomalies"]


KIND_TITLE = "course without a title; shown as 'Kurs <id>'"
