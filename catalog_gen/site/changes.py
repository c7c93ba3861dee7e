"""What changed in the catalog between two snapshots, as the staff who keep it would say it.

The snapshot diff (snapshot.py) says which records changed and in which fields; the people who
keep the catalog in Frontcore want to know what a visitor sees differently: a new course, a
date canceled, a date that filled up or opened again, a new price, a course gone. So the
records of the parts (shards) whose digest changed are read on both sides the way the site
reads them (``draft_records``: the same publishing rules, the same odd-data fallbacks), and the
drafts are compared. Only what is published counts: a course becoming inactive is a course
removed from the site, one becoming active a new one.

A night's report (``build`` after a fetch) adds the odd data the build found for the first
time, each with its record and what it holds, and links each line to its page on the site
when the site has one. ``as_text``, ``as_markdown`` and ``as_json`` write it; long sections are
cut, with a count of what was left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from catalog_gen.anomalies import Anomaly, described
from catalog_gen.printable import markdown_text, printable
from catalog_gen.site.drafts import CourseDraft, DateDraft, DraftRules, draft_records
from catalog_gen.site.i18n import get_locale
from catalog_gen.site.model import Course, Price
from catalog_gen.snapshot import StoredSnapshot

#: The report's sections, in the order it tells them: key → heading.
SECTIONS = {
    "new_courses": "New courses",
    "new_dates": "New dates",
    "canceled_dates": "Canceled dates",
    "postponed_dates": "Postponed dates",
    "full_dates": "Dates now fully booked",
    "reopened_dates": "Dates open for booking again",
    "price_changes": "Price changes",
    "removed_courses": "Courses no longer on the site",
    "odd_data": "Odd data new tonight",
}
#: How many lines a section shows before it says how many more there are.
SHOWN = 20


@dataclass(frozen=True)
class Change:
    """One line of the report: what changed, about which record, and where it shows."""

    #: The record as it is found in Frontcore: "course 22001", "course date 900017".
    record: str
    #: The course's title (a date's course's), as the site shows it.
    title: str
    #: What changed or what the line is about: "2026-12-03", "NOK 4500 → NOK 4900".
    detail: str = ""
    #: The page on the site ("" when the site has none: a removed course, a date not shown).
    url: str = ""


@dataclass(frozen=True)
class ChangeReport:
    """What changed from snapshot ``old`` to ``new``, by section (see ``SECTIONS``)."""

    old: str
    new: str
    sections: Mapping[str, tuple[Change, ...]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {key: len(self.sections.get(key, ())) for key in SECTIONS}

    def __bool__(self) -> bool:
        return any(self.sections.values())


def compare(
    before: StoredSnapshot | None,
    after: StoredSnapshot,
    rules: DraftRules,
    *,
    today: date,
    page_of: Callable[[int], str] | None = None,
    odd_data: Iterable[Anomaly] = (),
) -> ChangeReport:
    """The report from ``before`` (None: no earlier snapshot) to ``after``. ``today`` (in the
    catalog's zone) leaves out dates that are over; ``page_of`` gives a course's page ("" for
    none); ``odd_data`` are the anomalies to tell as new."""
    page_of = page_of or (lambda course_id: "")
    sections: dict[str, list[Change]] = {key: [] for key in SECTIONS}
    old_parts = before.parts if before is not None else {}
    for name, digest in after.parts.items():
        if digest and old_parts.get(name) == digest:
            continue  # the same records: nothing changed here
        old = _drafts(before, name, rules) if name in old_parts else ({}, {})
        _compare_part(old, _drafts(after, name, rules), today, page_of, sections)
    for name in set(old_parts) - set(after.parts):
        _compare_part(_drafts(before, name, rules), ({}, {}), today, page_of, sections)
    locale = get_locale(rules.language)
    for anomaly in sorted(odd_data):
        kind = described(anomaly.kind, lambda key: locale.t(key, id="<id>"))
        what = f"{anomaly.field}={anomaly.value}: {kind}"
        sections["odd_data"].append(Change(anomaly.record, f"[{anomaly.kind}]", what))
    before_name = before.name if before is not None else ""
    return ChangeReport(
        before_name, after.name, {key: tuple(lines) for key, lines in sections.items() if lines}
    )


Drafted = tuple[Mapping[object, CourseDraft], Mapping[object, DateDraft]]


def _drafts(snapshot: StoredSnapshot | None, part: str, rules: DraftRules) -> Drafted:
    if snapshot is None:
        return {}, {}
    drafts = draft_records(snapshot.read(part), rules)
    return drafts.courses, drafts.dates


def _compare_part(
    old: Drafted,
    new: Drafted,
    today: date,
    page_of: Callable[[int], str],
    sections: dict[str, list[Change]],
) -> None:
    old_courses, old_dates = old
    new_courses, new_dates = new
    for cid in sorted(set(old_courses) | set(new_courses), key=str):
        was, now = _published(old_courses.get(cid)), _published(new_courses.get(cid))
        if now is not None and was is None:
            sections["new_courses"].append(Change(f"course {cid}", now.title, url=page_of(now.id)))
        elif was is not None and now is None:
            sections["removed_courses"].append(Change(f"course {cid}", was.title))
        elif was is not None and now is not None and was.price != now.price:
            detail = f"{_price(was.price)} → {_price(now.price)}"
            sections["price_changes"].append(
                Change(f"course {cid}", now.title, detail, page_of(now.id))
            )
    for did in sorted(set(old_dates) | set(new_dates), key=str):
        was_date, now_date = old_dates.get(did), new_dates.get(did)
        course = _published(new_courses.get(now_date.course_id)) if now_date else None
        if now_date is None or course is None or not _shown(now_date, today):
            continue
        url = page_of(course.id)
        line = Change(
            f"course date {did}",
            course.title,
            now_date.start.isoformat() if now_date.start else "",
            f"{url}#date-{did}" if url else "",
        )
        if was_date is None or not _shown(was_date, today):
            sections["new_dates"].append(line)
            continue
        if now_date.status != was_date.status and now_date.status in ("canceled", "postponed"):
            sections[f"{now_date.status}_dates"].append(line)
        full_now, full_before = _full(now_date), _full(was_date)
        if full_now and not full_before:
            sections["full_dates"].append(line)
        elif full_before and not full_now and _seats_known(now_date):
            sections["reopened_dates"].append(line)


def _published(draft: CourseDraft | None) -> Course | None:
    return draft.course if draft is not None else None


def _shown(draft: DateDraft, today: date) -> bool:
    """A date the site lists as a date of its own that is not over."""
    last = draft.end_date or draft.start
    return draft.listed and draft.top and last is not None and last >= today


def _full(draft: DateDraft) -> bool:
    return draft.seats is not None and draft.seats.state == "full"


def _seats_known(draft: DateDraft) -> bool:
    return draft.seats is not None and draft.seats.state != "unknown"


def _price(price: Price | None) -> str:
    if price is None:
        return "price on request"
    return f"{price.currency} {price.value.normalize():f}"


# --- writing it --------------------------------------------------------------------------------


def counts_line(report: ChangeReport) -> str:
    """The counts, one line: "2 new courses, 5 new dates, 1 canceled date …"."""
    if not report:
        return f"nothing changed in the catalog since {report.old or 'the first snapshot'}"
    parts = [
        f"{count} × {SECTIONS[key].lower()}" for key, count in report.counts().items() if count
    ]
    return ", ".join(parts)


def as_text(
    report: ChangeReport, *, shown: int = SHOWN, safe: Callable[[str], str] = printable
) -> str:
    """For a terminal or a mail: the counts, then each section, one line per change.
    ``safe`` makes text from the API safe to show (control characters escaped)."""
    lines = [f"{report.old or '(none)'} → {report.new}: {counts_line(report)}"]
    for key, changes in report.sections.items():
        lines.append(f"{SECTIONS[key]} ({len(changes)}):")
        for change in changes[:shown]:
            detail = f" {change.detail}" if change.detail else ""
            where = f" <{change.url}>" if change.url else ""
            lines.append(f"  {safe(change.record)}: {safe(change.title)}{safe(detail)}{where}")
        if len(changes) > shown:
            lines.append(f"  … and {len(changes) - shown} more")
    return "\n".join(lines)


def as_markdown(report: ChangeReport, *, shown: int = SHOWN) -> str:
    """For a step summary: a heading, the counts, then a section per kind of change. Text
    from the API is escaped so it shows as text, never as markup."""
    md = markdown_text
    old = md(report.old or "first snapshot")
    lines = [
        f"### What changed in the catalog ({old} → {md(report.new)})",
        "",
        md(_sentence(counts_line(report))),
    ]
    for key, changes in report.sections.items():
        lines += ["", f"#### {SECTIONS[key]} ({len(changes)})", ""]
        for change in changes[:shown]:
            title = f"[{md(change.title)}]({change.url})" if change.url else md(change.title)
            detail = f": {md(change.detail)}" if change.detail else ""
            lines.append(f"- {title} ({md(change.record)}){detail}")
        if len(changes) > shown:
            lines.append(f"- … and {len(changes) - shown} more")
    return "\n".join(lines) + "\n"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def as_json(report: ChangeReport) -> dict[str, object]:
    """The whole report as JSON data (every change: nothing is cut); docs/cli.md has its
    schema."""
    return {
        "old": report.old or None,
        "new": report.new,
        "differ": bool(report),
        "counts": report.counts(),
        "sections": {
            key: [
                {"record": c.record, "title": c.title, "detail": c.detail, "url": c.url or None}
                for c in report.sections.get(key, ())
            ]
            for key in SECTIONS
        },
    }
