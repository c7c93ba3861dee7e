"""What changed between two snapshots, as staff would say it (catalog_gen/site/changes.py).

Real snapshots written by the store from the sample catalog, changed the way a provider
changes Frontcore: each kind of change lands in its section and nowhere else; the Markdown is
read back by a Markdown parser; the JSON is checked against the schema docs/ publish.
"""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import markdown
import pytest
from bs4 import BeautifulSoup

from catalog_gen.anomalies import Anomaly
from catalog_gen.config import PublishSettings
from catalog_gen.demo.sample import generate_catalog
from catalog_gen.site.changes import SECTIONS, as_json, as_markdown, as_text, compare
from catalog_gen.site.drafts import DraftRules
from catalog_gen.snapshot import Snapshot, SnapshotPart, first_seen
from catalog_gen.source.store import SnapshotStore

OSLO = ZoneInfo("Europe/Oslo")
TODAY = date(2026, 11, 23)
SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "change-report.schema.json"
RULES = DraftRules(PublishSettings())


def save(store: SnapshotStore, sample, moment: datetime) -> str:
    dates = copy.deepcopy(sample.coursedates)
    seen = first_seen(store.latest(), dates, moment)
    snapshot = Snapshot(moment, "test", copy.deepcopy(sample.courses), dates, {}, {}, {},
                        first_seen=seen)  # fmt: skip
    return store.save(snapshot).name


def upcoming(sample, course_id: int, *, full: bool | None = None) -> list[int]:
    return [
        d["coursedate_id"]
        for d in sample.dates_of(course_id)
        if str(d["start_at"]) > "2026-12-10" and not d.get("deleted_at")
        and (d.get("status") or {}).get("id") == 2 and not d.get("parent_id")
        and (full is None or (d.get("seats_status") == "fully_booked") == full)
    ]  # fmt: skip


@pytest.fixture
def night(tmp_path):
    """Two snapshots a night apart with one change of each kind; their report."""
    sample = generate_catalog(48, today=TODAY)
    moment = datetime(2026, 11, 23, 3, 15, tzinfo=OSLO)
    sample.clock = lambda: moment
    store = SnapshotStore(tmp_path / "snapshots")
    first = save(store, sample, moment)
    from catalog_gen.site.drafts import draft_records

    drafts = draft_records(SnapshotPart(sample.courses, sample.coursedates, {}, {}), RULES)
    published = {cid for cid, draft in drafts.courses.items() if draft.course is not None}
    ids = [cid for cid in sorted(published) if upcoming(sample, cid)]
    changed: dict[str, object] = {}
    changed["new_courses"] = sample.add_course("Akvarell for viderekomne", dates=2)
    source = sample.coursedates[upcoming(sample, ids[0])[0]]
    added = copy.deepcopy(source)
    added["coursedate_id"] = added["id"] = 990001
    added["start_at"] = added["end_at"] = "2027-02-01"
    sample.coursedates[990001] = added
    changed["new_dates"] = 990001
    for key, status, course in (("canceled_dates", 3, ids[1]), ("postponed_dates", 4, ids[2])):
        did = upcoming(sample, course)[0]
        sample.coursedates[did]["status"] = {"id": status, "idType": 2, "title": key}
        changed[key] = did
    did = upcoming(sample, ids[3], full=False)[0]
    sample.set_free_seats(did, 0)
    changed["full_dates"] = did
    full = next(d for cid in ids[4:] for d in upcoming(sample, cid, full=True))
    sample.set_free_seats(full, 4)
    changed["reopened_dates"] = full
    price = sample.courses[ids[5]]["price"]
    price["value"] = float(price["value"] or 0) + 500 if price.get("value") else 4900
    sample.change_course(ids[5], price=price)
    changed["price_changes"] = ids[5]
    sample.remove_course(ids[6])
    sample.change_course(ids[7], is_active=False)
    changed["removed_courses"] = {ids[6], ids[7]}
    second = save(store, sample, moment + timedelta(days=1))
    odd = [Anomaly("course.title_blank", "course 22011", "title", "'   '")]
    pages = {cid: f"https://kurs.example.no/kurs/k-{cid}/" for cid in sample.courses}
    report = compare(
        store.stored(first), store.stored(second), RULES, today=TODAY,
        page_of=lambda cid: pages.get(cid, ""), odd_data=odd,
    )  # fmt: skip
    return report, changed


def records(report, key: str) -> set[str]:
    return {change.record for change in report.sections.get(key, ())}


def test_each_kind_of_change_is_in_its_section_and_nowhere_else(night):
    report, changed = night
    assert records(report, "new_courses") == {f"course {changed['new_courses']}"}
    assert f"course date {changed['new_dates']}" in records(report, "new_dates")
    for key in ("canceled_dates", "postponed_dates", "full_dates", "reopened_dates"):
        assert records(report, key) == {f"course date {changed[key]}"}, key
    assert records(report, "price_changes") == {f"course {changed['price_changes']}"}
    assert records(report, "removed_courses") == {f"course {c}" for c in changed["removed_courses"]}
    (odd,) = report.sections["odd_data"]
    assert odd.record == "course 22011" and "[course.title_blank]" in odd.title
    (price,) = report.sections["price_changes"]
    assert "→" in price.detail and price.url.endswith(f"-{changed['price_changes']}/")
    (canceled,) = report.sections["canceled_dates"]
    assert canceled.url.endswith(f"#date-{changed['canceled_dates']}")
    (removed,) = report.sections["removed_courses"][:1]
    assert removed.url == ""  # a removed course has no page


def test_the_markdown_reads_as_counts_then_a_section_per_kind(night):
    report, changed = night
    html = markdown.markdown(as_markdown(report, shown=1))
    soup = BeautifulSoup(html, "html5lib")
    headings = [h.get_text() for h in soup.find_all("h4")]
    assert headings == [f"{SECTIONS[key]} ({len(report.sections[key])})" for key in report.sections]
    counts = soup.find("p").get_text()
    assert "1 × new courses" in counts and "2 × courses no longer on the site" in counts
    links = {a["href"] for a in soup.find_all("a")}
    assert any(link.endswith(f"-{changed['new_courses']}/") for link in links)
    assert "… and 1 more" in soup.get_text()  # two removed courses, one shown


def test_a_hostile_title_shows_as_text_in_markdown_and_on_a_terminal(tmp_path):
    sample = generate_catalog(4, today=TODAY)
    moment = datetime(2026, 11, 23, 3, 15, tzinfo=OSLO)
    sample.clock = lambda: moment
    store = SnapshotStore(tmp_path / "snapshots")
    first = save(store, sample, moment)
    title = "**Fet** <script>alert(1)</script> [lenke](javascript:x) \x1b[2J\r\nerror: falsk"
    new = sample.add_course(title, dates=1)
    second = save(store, sample, moment + timedelta(days=1))
    report = compare(store.stored(first), store.stored(second), RULES, today=TODAY)
    soup = BeautifulSoup(markdown.markdown(as_markdown(report)), "html5lib")
    assert not soup.find_all(["script", "strong", "a"]) and "**Fet**" in soup.get_text()
    text = as_text(report, safe=lambda t: t.encode("unicode_escape").decode())
    assert "\x1b" not in text and "\r" not in text and f"course {new}" in text


def test_the_json_follows_the_schema_in_the_docs(night):
    report, _ = night
    data = as_json(report)
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    assert data["differ"] is True and list(data["counts"]) == list(SECTIONS)
    assert sum(data["counts"].values()) == sum(len(v) for v in data["sections"].values())


def test_a_night_with_nothing_changed_says_so_in_one_line(tmp_path):
    sample = generate_catalog(4, today=TODAY)
    store = SnapshotStore(tmp_path / "snapshots")
    moment = datetime(2026, 11, 23, 3, 15, tzinfo=OSLO)
    name = save(store, sample, moment)
    report = compare(store.stored(name), store.stored(name), RULES, today=TODAY)
    assert not report
    assert (
        as_markdown(report).strip().splitlines()[-1]
        == f"Nothing changed in the catalog since {name}"
    )
    jsonschema.validate(as_json(report), json.loads(SCHEMA.read_text()))
