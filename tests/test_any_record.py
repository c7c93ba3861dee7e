"""Any record, any value: snapshot → catalog → rendered site never fails, and says what it left out.

Hypothesis generates courses and course dates whose every field the model reads holds either a
plausible value or any JSON value at all (with any Unicode in every text), and drives them
through the real pipeline: ``build_catalog`` and ``render_files`` with the default theme.
Asserted, for every example: no exception; every HTML page parses without a single HTML5
parse error; the XML files parse; every calendar file parses; and every record that is not
on the site was either hidden by a publishing rule (read here from well-formed values only)
or named by an anomaly.
"""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ElementTree
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import html5lib
import icalendar
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from catalog_gen.anomalies import Anomalies
from catalog_gen.config import Config, PublishSettings, SiteSettings
from catalog_gen.dates import parse_day
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.generate import render_files
from catalog_gen.snapshot import Snapshot
from tests.test_catalog import NOW

TODAY = NOW.date()
RULES = PublishSettings()

# --- values -------------------------------------------------------------------------------

#: Names in the scripts real catalogs hold, spelled the ways they are typed, or none at all.
NAMES = ["Oslo", "OSLO", " oslo ", "Tromsø", "Tromso", "Москва", "Αθήνα", "ΑΘΗΝΑ", "北京",
         "背景", "القاهرة", "🎉", "!!!", "   ", "", "Kurs i HMS", "Førstehjelp"]  # fmt: skip
#: Any text, in any script (Hypothesis draws from all of Unicode but lone surrogates, which no
#: JSON parser hands over), or one of the names.
texts = st.one_of(st.sampled_from(NAMES), st.text(max_size=40))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=5,
)


def often(plausible, rarely):
    """``plausible`` nine times in ten. (Hypothesis draws the ends of a range more often than
    its middle, so the rare branch is a value in the middle.)"""
    return st.integers(0, 9).flatmap(lambda n: rarely if n == 5 else plausible)


def either(plausible):
    """Inside an object: a plausible value, now and then any JSON value."""
    return often(plausible, json_values)


def days(low: int, high: int):
    return st.integers(low, high).map(lambda n: (TODAY + timedelta(days=n)).isoformat())


#: Mostly ahead, sometimes long past (±2 days around today are left out: whether a date in
#: another zone has started is a rule of its own, tested in test_catalog).
day_values = often(days(2, 800), days(-4000, -2) | st.sampled_from(["9999-12-31", "0001-01-01"]))
clock_values = st.times().map(lambda t: t.isoformat(timespec="seconds")) | st.sampled_from(
    ["25:99", None]
)
flags = st.sampled_from([True, False, 1, 0, "1", "0", "true", "false", "yes", None])
#: For the flags that hide a record: mostly the value that shows it.
showing = often(st.sampled_from([True, 1, "1", "true", None]), st.sampled_from([False, "0"]))
ids = st.integers(1, 3)
emails = st.sampled_from(
    ["kurs@example.com", "kurs@x.no?bcc=spy@evil.example", "a@b.no%0D%0ABcc:c@d.no"]
) | st.emails().map(str)
urls = st.sampled_from(
    ["https://booking.example.com/k?1", "javascript:alert(1)", "https://u:p@x.example/"]
) | st.builds(lambda path: f"https://booking.example.com/{path}", texts)
titled = st.fixed_dictionaries({"id": either(ids), "title": either(texts)})
locations = st.fixed_dictionaries(
    {
        "id": either(ids),
        "title": either(texts),
        "custom_title": either(st.none() | texts),
        "address": either(texts),
        "zipcode": either(texts),
        "city": either(texts),
        "is_virtual": either(st.sampled_from([False, False, None, True])),
    }
)
seat_counts = either(st.integers(-5, 40) | st.integers(-5, 40).map(str) | st.none())
instructor = st.fixed_dictionaries({"fullname": either(texts), "email": either(emails)})
gatherings = st.lists(
    st.fixed_dictionaries(
        {
            "gathering_at": either(days(2, 60).map(lambda d: f"{d} 09:00") | texts),
            "gathering_end_at": either(days(2, 60).map(lambda d: f"{d} 15:00")),
            "location": either(locations),
            "instructors": either(st.lists(either(instructor), max_size=2)),
        }
    ),
    max_size=2,
)

COURSE = {
    "title": texts,
    "reference": texts,
    "is_active": showing,
    "type": often(st.just("public"), st.sampled_from(["internal", "partner", None])),
    "level": often(st.just({"id": 6}), st.sampled_from([{"id": 15}, {"id": "8"}, None])),
    "price": st.fixed_dictionaries(
        {
            "value": either(st.integers(-10, 50_000) | st.sampled_from(["4 900,50", "x"])),
            "currency": either(st.sampled_from(["NOK", "eur", "XYZ", ""])),
            "comment": either(texts),
        }
    ),
    "categories": st.lists(either(titled), max_size=3),
    "text_lead": texts,
    "text_description": texts | st.just("<p>Hei <b>du</b></p><script>x</script>"),
    "text_prerequisites": texts,
    "text_audience": texts,
    "updated_at": days(-30, -1).map(lambda d: f"{d}T10:00:00+01:00") | texts,
    "duration": st.fixed_dictionaries({"value": either(ids), "unit": either(titled)}),
    "form_of_teaching": titled,
    "teaching_language": st.fixed_dictionaries(
        {"id": either(st.sampled_from(["no", "en", "xx", "-"]))}
    ),
    "external_booking_url": urls,
    "email_booking": emails,
}
DATE = {
    "course_id": ids,
    "start_at": day_values,
    "end_at": day_values,
    "start_time_at": clock_values,
    "end_time_at": clock_values,
    "deadline_at": often(st.none(), days(-4000, -2) | days(2, 800)),
    "timezone": st.sampled_from(["Europe/Oslo", "Asia/Tokyo", "Mars/Olympus", None]),
    "is_visible": showing,
    "visible_when_passed_deadline": flags,
    "is_virtual": often(st.just(False), flags),
    "deleted_at": often(st.none(), st.just("2026-11-20T10:00:00+01:00")),
    "parent_id": often(st.none(), st.integers(1, 8)),
    "status": st.fixed_dictionaries({"id": either(st.integers(0, 9))}),
    "status_id": often(st.none(), st.integers(0, 9) | st.integers(0, 9).map(str)),
    "seats_status": st.sampled_from(["open", "fully_booked"]),
    "seats": st.fixed_dictionaries(
        {
            "allocated_capacity": st.fixed_dictionaries({"num": seat_counts}),
            "free": st.fixed_dictionaries({"num": seat_counts}),
        }
    ),
    "location": often(locations, st.none()),
    "place": st.fixed_dictionaries({"id": either(ids), "title": either(texts)}),
    "event_url": urls,
    "gatherings": gatherings,
    "updated_at": days(-30, -1).map(lambda d: f"{d}T10:00:00+01:00"),
}


def records(fields: dict):
    """A plausible record with up to three of its fields holding any JSON value instead (or
    left out): over many examples, every field the model reads meets every kind of value."""
    odd = st.dictionaries(
        st.sampled_from(sorted(fields)), json_values | st.just(MISSING), max_size=3
    )
    return st.builds(
        lambda plausible, odd: {
            key: value for key, value in {**plausible, **odd}.items() if value is not MISSING
        },
        st.fixed_dictionaries(fields),
        odd,
    )


MISSING = object()
record_ids = often(st.integers(1, 8), st.sampled_from([0, -3, 10**17]))
snapshots = st.builds(
    lambda course_records, date_records: Snapshot(
        fetched_at=datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
        api_base="http://127.0.0.1/v2",
        courses=course_records,
        coursedates=date_records,
        reference={},
        reference_fetched_at={},
        course_sources={},
    ),
    st.fixed_dictionaries({1: records(COURSE), 2: records(COURSE)}, optional={3: records(COURSE)})
    | st.dictionaries(often(ids, st.sampled_from([0, -3, 10**17])), records(COURSE), max_size=3),
    st.dictionaries(record_ids, records(DATE), min_size=1, max_size=6),
)

# --- what a rule may hide (read from well-formed values only) ------------------------------


def flag(value: object, default: bool) -> bool | None:
    """A yes/no value in a form the API is known to send; None for anything else."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if value in (0, 1) and isinstance(value, int):
        return bool(value)
    words = ("1", "0", "true", "false", "yes", "no")
    if isinstance(value, str) and value.strip().lower() in words:
        return value.strip().lower() in ("1", "true", "yes")
    return None


def whole(value: object) -> int | None:
    """An id as the API sends it: a whole number, or one written as text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    return None


def hidden_course(record: dict) -> bool:
    level = record.get("level")
    kind = record.get("type")
    return (
        flag(record.get("is_active"), True) is False
        or (isinstance(kind, str) and kind.strip() in RULES.hidden_course_types)
        or whole(level.get("id") if isinstance(level, dict) else level) in RULES.hidden_level_ids
    )


def day(value: object) -> date | None:
    """A day the way every date field is read (tested in test_dates)."""
    return parse_day(value, ZoneInfo("Europe/Oslo")) if isinstance(value, str) else None


def hidden_date(record: dict, snapshot: Snapshot) -> bool:
    course = snapshot.courses.get(whole(record.get("course_id")))  # type: ignore[arg-type]
    start, deadline = day(record.get("start_at")), day(record.get("deadline_at"))
    return (
        flag(record.get("is_visible"), True) is False
        or bool(record.get("deleted_at"))
        or isinstance(record.get("parent_id"), int)  # shown under its parent, if at all
        or (isinstance(course, dict) and hidden_course(course))
        or (start is not None and start < TODAY)
        or (
            deadline is not None
            and deadline < TODAY
            and flag(record.get("visible_when_passed_deadline"), False) is False
        )
    )


# --- the property ----------------------------------------------------------------------------

_SITE = Path(tempfile.mkdtemp(prefix="catalog-gen-any-record-"))
CONFIG = Config(
    site=SiteSettings(base_url="https://kurs.example.com/", search=False),
    root=_SITE,
)


@pytest.mark.slow
@pytest.mark.timeout(900)  # about a minute here; a loaded CI machine may take several
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(snapshots)
def test_any_record_is_published_safely_or_reported(snapshot):
    found = Anomalies()
    catalog = build_catalog(snapshot, RULES, now=NOW, timezone="Europe/Oslo", anomalies=found)
    reported = {a.record for a in found}

    shown_courses = {c.id for c in catalog.courses}
    for cid, record in snapshot.courses.items():
        if cid not in shown_courses and not hidden_course(record):
            assert f"course {cid}" in reported, (cid, record)
    shown_dates = {d.id for d in catalog.dates}
    for did, record in snapshot.coursedates.items():
        if did in shown_dates or hidden_date(record, snapshot):
            continue
        owner = whole(record.get("course_id"))
        owner_reported = owner not in shown_courses and f"course {owner}" in reported
        assert f"course date {did}" in reported or owner_reported, (did, record)
    for d in catalog.dates:
        if d.status == "unknown":
            assert not d.bookable
    event(
        f"courses shown: {min(len(catalog.courses), 2)}, dates shown: {min(len(catalog.dates), 2)}"
    )
    event(f"anomalies: {min(len(found), 3)}")

    site = render_files(CONFIG, snapshot, now=NOW, anomalies=Anomalies())
    for path, data in site.files.items():
        if path.endswith(".html"):
            parser = html5lib.HTMLParser()
            parser.parse(data)
            assert parser.errors == [], (path, parser.errors[:3])
        elif path.endswith(".xml"):
            ElementTree.fromstring(data)
        elif path.endswith(".ics"):
            icalendar.Calendar.from_ical(data)
    assert any(path.endswith("index.html") for path in site.files)
