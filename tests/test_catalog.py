"""Publishing rules: what a visitor may see of a snapshot, decided in one place."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import jinja2
import pytest

from catalog_gen.anomalies import Anomalies
from catalog_gen.config import PublishSettings
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.drafts import COURSE_TYPED_FIELDS, DATE_TYPED_FIELDS, PERSONAL_FIELDS
from catalog_gen.site.model import BLANK, Fields
from catalog_gen.site.render import TemplateEnvironment
from tests.conftest import snapshot_of

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=OSLO)
RULES = PublishSettings()


def course(cid, **fields):
    record = {
        "id": cid,
        "title": f"Kurs {cid}",
        "is_active": True,
        "type": "public",
        "level": {"id": 6, "title": "Courses"},
        "price": {"value": 4900, "currency": "NOK", "comment": None},
        "categories": [{"id": 11, "title": "Helse, miljø og sikkerhet"}],
        "text_lead": "Kort om kurset.",
        "text_description": "<p>Hei</p><script>alert(1)</script>",
        "email_booking": "kurs@example.com",
        "updated_at": "2026-11-02T13:29:04+01:00",
    }
    record.update(fields)
    return record


def cdate(did, cid, start="2026-12-01", **fields):
    record = {
        "coursedate_id": did,
        "course_id": cid,
        "start_at": start,
        "start_time_at": "08:30:00",
        "end_at": start,
        "end_time_at": "16:00:00",
        "timezone": "Europe/Oslo",
        "deadline_at": None,
        "is_visible": True,
        "visible_when_passed_deadline": False,
        "parent_id": None,
        "seats_status": "open",
        "seats": {"allocated_capacity": {"num": 20}, "free": {"num": 12}},
        "status": {"id": 2, "idType": 2, "title": "Will run"},
        "location": {
            "id": 6402,
            "title": "Helsfyr",
            "address": "Innspurten 15",
            "zipcode": "0663",
            "city": "Oslo",
        },
        "place": {"id": 301, "title": "Oslo"},
        "deleted_at": None,
    }
    record.update(fields)
    return record


def catalog_of(courses, dates, rules=RULES, now=NOW, anomalies=None):
    return build_catalog(
        snapshot_of(courses, dates), rules, now=now, timezone="Europe/Oslo", anomalies=anomalies
    )


def test_inactive_internal_and_corporate_courses_are_hidden_with_their_dates():
    catalog = catalog_of(
        [
            course(1),
            course(2, is_active=False),
            course(3, type="internal"),
            course(4, level={"id": 15, "title": "Corporate training"}),
            course(5, is_active="0"),
        ],
        [cdate(10 + i, i) for i in range(1, 6)],
    )
    assert [c.id for c in catalog.courses] == [1]
    assert [d.id for d in catalog.dates] == [11]
    assert [v.title for v in catalog.venues] == ["Helsfyr"]


def test_hidden_deleted_past_and_sub_dates():
    catalog = catalog_of(
        [course(1)],
        [
            cdate(100, 1, "2026-12-01"),
            cdate(101, 1, "2026-12-02", is_visible=False),
            cdate(102, 1, "2026-12-03", deleted_at="2026-11-20T10:00:00+01:00"),
            cdate(103, 1, "2026-11-22"),  # yesterday in Oslo
            cdate(104, 1, "2026-12-01", parent_id=100, start_time_at="12:00:00"),
            cdate(105, 1, "2026-11-23"),  # today counts as upcoming
        ],
    )
    (only,) = catalog.courses
    assert [d.id for d in only.dates] == [105, 100]
    parent = only.dates[1]
    assert [(s.start_date, s.start_time) for s in parent.sessions] == [
        (date(2026, 12, 1), time(12, 0))
    ]


def test_today_is_the_catalogs_day_not_the_build_machines():
    # 23:30 UTC on the 22nd is already the 23rd in Oslo: a date on the 22nd has passed.
    late_utc = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    catalog = catalog_of(
        [course(1)], [cdate(1, 1, "2026-11-22"), cdate(2, 1, "2026-11-23")], now=late_utc
    )
    assert [d.id for d in catalog.dates] == [2]
    assert catalog.dates[0].start_time == time(8, 30)  # wall clock as the provider wrote it


def test_passed_deadline_is_shown_only_when_asked_and_then_closed():
    catalog = catalog_of(
        [course(1)],
        [
            cdate(1, 1, "2026-12-01", deadline_at="2026-11-20"),
            cdate(2, 1, "2026-12-02", deadline_at="2026-11-20", visible_when_passed_deadline=True),
            cdate(3, 1, "2026-12-03", deadline_at="2026-11-30"),
        ],
    )
    by_id = {d.id: d for d in catalog.dates}
    assert set(by_id) == {2, 3}
    assert by_id[2].deadline_passed and not by_id[2].bookable
    assert not by_id[3].deadline_passed and by_id[3].bookable


@pytest.mark.parametrize(
    ("status_id", "expected", "bookable"),
    [(1, "tbd", True), (2, "scheduled", True), (3, "canceled", False), (4, "postponed", False)],
)
def test_canceled_and_postponed_stay_listed_and_marked(status_id, expected, bookable):
    catalog = catalog_of([course(1)], [cdate(1, 1, status={"id": status_id, "title": "x"})])
    (d,) = catalog.dates
    assert d.status == expected
    assert d.bookable is bookable


def test_flat_status_id_is_accepted():
    catalog = catalog_of([course(1)], [cdate(1, 1, status=None, status_id="3")])
    assert catalog.dates[0].status == "canceled"


@pytest.mark.parametrize(
    ("seats_status", "capacity", "free", "state", "shown"),
    [
        ("open", 20, 12, "available", 12),
        ("open", "20", "12", "available", 12),  # counts as strings
        ("open", 20, 3, "few", 3),
        ("open", 20, 0, "full", None),
        ("open", 20, -2, "full", None),
        ("fully_booked", 20, 5, "full", None),  # the status wins
        ("open", 0, 0, "unknown", None),  # no capacity set: unknown, not "full"
        ("open", None, None, "unknown", None),
    ],
)
def test_seats_have_three_states_and_unknown(seats_status, capacity, free, state, shown):
    seats = {"allocated_capacity": {"num": capacity}, "free": {"num": free}}
    catalog = catalog_of([course(1)], [cdate(1, 1, seats_status=seats_status, seats=seats)])
    result = catalog.dates[0].seats
    assert (result.state, result.free) == (state, shown)
    assert catalog.dates[0].bookable is (state != "full")


def test_seat_counts_can_be_hidden():
    rules = PublishSettings(show_seat_counts=False)
    catalog = catalog_of([course(1)], [cdate(1, 1)], rules=rules)
    assert catalog.dates[0].seats.state == "available"
    assert catalog.dates[0].seats.free is None


def test_prices_keep_their_currency_and_zero_is_on_request():
    catalog = catalog_of(
        [
            course(1, price={"value": 12500, "currency": "sek"}),
            course(2, price={"value": 0, "currency": "NOK"}),
            course(3, price=None),
            course(4, price={"value": "1499.50", "currency": "EUR", "comment": "inkl. mva"}),
        ],
        [],
    )
    prices = {c.id: c.price for c in catalog.courses}
    assert (prices[1].value, prices[1].currency) == (Decimal(12500), "SEK")
    assert prices[2] is None and prices[3] is None
    assert (prices[4].value, prices[4].comment) == (Decimal("1499.50"), "inkl. mva")


def test_texts_are_sanitised_and_leads_are_plain():
    catalog = catalog_of([course(1, text_lead="<b>Fet</b> &amp; fin")], [])
    (c,) = catalog.courses
    assert "<script" not in c.description_html and "Hei" in c.description_html
    assert c.lead == "Fet & fin"


def test_venue_falls_back_to_the_place_and_never_invents_a_town():
    catalog = catalog_of(
        [course(1)],
        [
            cdate(1, 1, location=None),
            cdate(2, 1, "2026-12-02", location=None, place=None),
            cdate(3, 1, "2026-12-03", location=None, place=None, is_virtual=True),
        ],
    )
    by_id = {d.id: d for d in catalog.dates}
    assert by_id[1].venue.title == "Oslo" and by_id[1].city == "Oslo"
    assert by_id[2].venue is None and by_id[2].city == ""
    assert by_id[3].venue.is_online


def test_slugs_are_stable_when_a_namesake_appears_or_goes():
    one = catalog_of([course(1, title="Førstehjelp")], [])
    two = catalog_of([course(2, title="Førstehjelp"), course(1, title="Førstehjelp")], [])
    assert one.course(1).slug == two.course(1).slug
    assert len({c.slug for c in two.courses}) == 2
    assert one.course(1).slug.startswith("forstehjelp")


def test_groupings_by_category_venue_and_city():
    catalog = catalog_of(
        [course(1), course(2, categories=[{"id": 12, "title": "Økonomi"}])],
        [cdate(1, 1), cdate(2, 2, location={"id": 7, "title": "Bryggen", "city": "Bergen"})],
    )
    assert [c.title for c in catalog.categories] == ["Helse, miljø og sikkerhet", "Økonomi"]
    assert [c.name for c in catalog.cities] == ["Bergen", "Oslo"]
    bergen = catalog.cities[0]
    assert [c.id for c in catalog.courses_in_city(bergen)] == [2]
    assert [c.id for c in catalog.courses_in(catalog.categories[0])] == [1]


def test_same_input_same_catalog():
    dates = [cdate(i, 1, f"2026-12-{i:02d}") for i in range(1, 9)]
    assert catalog_of([course(1)], dates) == catalog_of([course(1)], list(reversed(dates)))


def test_placeholder_and_backwards_end_dates_are_no_end_dates():
    """'9999-12-31' means "open-ended", not a date: it must not reach calendars (year 10000)."""
    catalog = catalog_of(
        [course(1)],
        [
            cdate(11, 1, end_at="9999-12-31"),
            cdate(12, 1, start="2026-12-03", end_at="2026-12-01"),
            cdate(13, 1, start="2026-12-05", end_at="2026-12-07"),
        ],
    )
    ends = {d.id: d.end_date for d in catalog.dates}
    assert ends == {11: None, 12: None, 13: date(2026, 12, 7)}


# --- custom properties and the other fields ---------------------------------------------------


@pytest.mark.parametrize("none", [None, [], {}])
def test_no_custom_properties_read_as_an_empty_mapping(none):
    found = Anomalies()
    catalog = catalog_of(
        [course(1, custom_properties=none)], [cdate(1, 1, custom_properties=none)], anomalies=found
    )
    assert catalog.courses[0].custom_properties == {} == catalog.dates[0].custom_properties
    assert not found


def test_custom_properties_are_text_by_name_and_null_means_deleted():
    properties = {
        "partner": "NAV",
        "kampanje": None,  # deleted
        "plasser": 3,
        "pris": 1.5,
        "intern": False,
        "tom": "",
        "liste": ["a"],
        "objekt": {"a": 1},
    }
    found = Anomalies()
    catalog = catalog_of(
        [course(1, custom_properties=properties)],
        [
            cdate(7, 1, custom_properties={"rom": "Auditorium 2"}),
            cdate(8, 1, custom_properties="x"),
        ],
        anomalies=found,
    )
    c = catalog.courses[0]
    assert dict(c.custom_properties) == {
        "intern": "false", "partner": "NAV", "plasser": "3", "pris": "1.5", "tom": ""
    }  # fmt: skip
    assert list(c.custom_properties) == sorted(c.custom_properties)
    assert {d.id: dict(d.custom_properties) for d in c.dates} == {7: {"rom": "Auditorium 2"}, 8: {}}
    assert sorted((a.kind, a.record, a.field) for a in found) == [
        ("custom_properties.nested_value", "course 1", "custom_properties.liste"),
        ("custom_properties.nested_value", "course 1", "custom_properties.objekt"),
        ("custom_properties.not_an_object", "course date 8", "custom_properties"),
    ]


def test_extra_holds_every_field_the_model_does_not_type_and_no_contact_details():
    person = {"fullname": "Kari Lærer", "email": "kari@example.test", "phone": "+47 900 00 000"}
    catalog = catalog_of(
        [
            course(
                1,
                kursguiden_url="https://www.kursguiden.no/kurs/x/",
                text_place="<p>Inngang fra <b>gården</b></p>",
                lessons_hours=None,
                tags=[],
            )
        ],
        [
            cdate(
                1,
                1,
                kursguiden_url="https://www.kursguiden.no/kurs/x/",
                reference="HMS-01",
                instructors=[person],
                contacts=[person],
                event_url="https://meet.example.test/secret",
                gatherings=[{"gathering_at": "2026-12-01 08:30", "instructors": [person]}],
            )
        ],
    )
    c, d = catalog.courses[0], catalog.dates[0]
    assert set(c.extra) == {"is_active", "type", "level", "text_place", "lessons_hours", "tags"}
    assert c.kursguiden_url == "https://www.kursguiden.no/kurs/x/"  # typed: a booking path
    assert c.extra["level"] == {"id": 6, "title": "Courses"} and c.extra["level"]["id"] == 6
    assert c.extra["tags"] == () and c.extra["lessons_hours"] is BLANK  # a null reads as blank
    assert set(d.extra) == {
        "reference", "kursguiden_url", "location", "place", "is_visible",
        "visible_when_passed_deadline", "deleted_at",
    }  # fmt: skip
    assert d.extra["location"]["city"] == "Oslo"
    assert d.instructors == ("Kari Lærer",)
    everything = repr(catalog)
    assert "kari@example.test" not in everything and "900 00 000" not in everything
    assert "meet.example.test" not in everything  # not a virtual date: no meeting link


def test_the_typed_field_lists_are_the_fields_the_readers_read():
    """A field build_catalog reads is typed (so not in ``extra``), or read for a publishing
    rule or in part and kept in ``extra`` as it came. A reader of a new field must add it to
    COURSE_TYPED_FIELDS or DATE_TYPED_FIELDS, or ``extra`` would hold it twice."""
    read: dict[str, set[str]] = {"course": set(), "date": set()}

    class Recorded(dict):
        def __init__(self, kind, record):
            super().__init__(record)
            self.kind = kind

        def get(self, key, default=None):
            read[self.kind].add(key)
            return super().get(key, default)

        def __getitem__(self, key):
            read[self.kind].add(key)
            return super().__getitem__(key)

    courses = [Recorded("course", course(1, external_booking_url="https://b.example.test/"))]
    dates = [
        Recorded("date", cdate(1, 1, gatherings=[], event_url="", is_virtual=True)),
        Recorded("date", cdate(2, 1, parent_id=1, status=None, status_id=2)),
        Recorded("date", cdate(3, 1, deadline_at="2026-11-20", visible_when_passed_deadline=1)),
    ]
    catalog_of(courses, dates)
    assert read["course"] - COURSE_TYPED_FIELDS == {"is_active", "type", "level"}
    assert read["date"] - DATE_TYPED_FIELDS == {
        "is_visible", "deleted_at", "visible_when_passed_deadline", "location", "place"
    }  # fmt: skip
    assert not PERSONAL_FIELDS & (COURSE_TYPED_FIELDS | DATE_TYPED_FIELDS)


def test_fields_are_read_only_hashable_and_read_as_empty_in_templates_when_absent():
    fields = Fields({"partner": "NAV", "sted": {"lat": 59.9, "rom": ["A", "B"]}, "items": "x"})
    assert not hasattr(fields, "__setitem__") and not hasattr(fields["sted"], "update")
    assert fields["sted"]["rom"] == ("A", "B")
    same = Fields({"items": "x", "sted": {"rom": ["A", "B"], "lat": 59.9}, "partner": "NAV"})
    assert hash(fields) == hash(same) and fields == same
    assert fields == {"partner": "NAV", "sted": {"lat": 59.9, "rom": ["A", "B"]}, "items": "x"}
    assert fields != Fields({"partner": "NAV"})
    source = {"a": {"b": 1}}
    copied = Fields(source)
    source["a"]["b"] = 2  # the model keeps its own copy
    assert copied["a"]["b"] == 1
    with pytest.raises(KeyError):
        fields["missing"]
    assert fields.get("missing") is None and "missing" not in fields
    environment = TemplateEnvironment(undefined=jinja2.StrictUndefined)
    template = environment.from_string(
        "{{ f.partner }}|{{ f['partner'] }}|{{ f.missing }}|{{ f['missing'] }}|"
        "{{ f.sted.rom[1] }}|{{ f['items'] }}|{% if f.missing %}set{% else %}unset{% endif %}|"
        "{% for name, value in f.items() %}{{ name }};{% endfor %}"
    )
    assert template.render(f=fields) == "NAV|NAV|||B|x|unset|items;partner;sted;"
    with pytest.raises(jinja2.UndefinedError):  # only a Fields reads absent names as ""
        environment.from_string("{{ f.sted.rom.missing }}").render(f=fields)
