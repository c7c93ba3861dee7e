"""Decide what to fetch, fetch it, and assemble the next snapshot.

A **full pass** (no previous snapshot, or ``--full``):
  course list (⌈N/250⌉ requests) → details only for list items lacking a field the site reads
  (``snapshot.COURSE_FIELDS``) → all dates through ``/batch/coursedates`` in chunks of course
  ids → reference lists.

An **incremental pass** (the usual nightly run) starts from the last snapshot:
  - the course list is always read in full: it is cheap (⌈N/250⌉) and the only way to see
    removed courses (Frontcore has no deletions feed); a read that lacks a course of the last
    snapshot is confirmed by a second read (see client.list_courses);
  - a course whose list item has the same digest as last time keeps its stored record, so
    details are fetched only for new or changed courses;
  - dates that have not ended, or ended within ``sync.past_days`` (in the catalog's zone), are
    fetched again for every course, because bookings change seat counts without moving
    ``updated_at`` and a date just past may still be corrected or canceled; older dates are
    kept from the snapshot; new courses get all their dates; a date in that window that is no
    longer listed is gone;
  - venues, instructors and products are fetched only when older than their TTL.

Venues, instructors and products are optional: a list the key may not read (403) or that does
not exist (404) is a warning, and the site uses the copies embedded in course dates.

**At most ``sync.max_dates_per_course`` current and upcoming dates per course** are kept: the
ones that start soonest (sub-dates count as dates). The rest are left out with a warning
(``course.dates_over_limit``), and the dates shrink guard does not count them as lost. The
limit is applied here, where the snapshot is made, rather than in the site's catalog model:
a course with 20,000 dates costs a 32 MB page and a calendar file per date, but also 30 MB of
snapshot that every later build reads, caches and keeps; cut here, nothing downstream ever
holds more. What is kept moves forward with every fetch (a nightly run), and the snapshot
says plainly what the site can show. Too many records in a *list* is another matter: that is
the API gone wrong, and the client refuses it (``sync.max_courses`` …, an API error).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from catalog_gen.anomalies import Anomalies, kind
from catalog_gen.config import SyncSettings
from catalog_gen.errors import ApiError
from catalog_gen.progress import NoProgress, Progress
from catalog_gen.snapshot import (
    COURSE_FIELDS,
    Record,
    Snapshot,
    first_seen,
    record_digest,
    unchanged_since,
)
from catalog_gen.source.client import REFERENCE_LISTS, FrontcoreClient

log = logging.getLogger(__name__)

#: Optional lists answering these statuses are left out with a warning, not a failure.
OPTIONAL_LIST_STATUSES = {403: "not allowed for this API key", 404: "not available"}

CROWDED = kind(
    "course.dates_over_limit",
    "course with more current and upcoming dates than sync.max_dates_per_course; the "
    "soonest kept, the rest left out of the snapshot",
)


@dataclass(frozen=True)
class SyncOutcome:
    snapshot: Snapshot
    mode: str  # "full" or "incremental"
    details_fetched: int
    reference_refreshed: tuple[str, ...]
    #: What the run should tell its operator although it succeeded (an optional list left out).
    warnings: tuple[str, ...] = ()
    #: Ids of the dates ``sync.max_dates_per_course`` left out: not lost by the API.
    left_out: frozenset[int] = frozenset()


def sync_catalog(
    client: FrontcoreClient,
    previous: Snapshot | None,
    *,
    now: datetime,
    api_base: str,
    settings: SyncSettings,
    full: bool = False,
    progress: Progress | None = None,
) -> SyncOutcome:
    """Fetch what changed since ``previous`` and return the complete next snapshot."""
    progress = progress or NoProgress()
    base = None if full else previous
    progress.phase("courses")
    listed = client.list_courses(expected=previous.courses.keys() if previous else ())
    progress.advance(len(listed))

    courses, sources, details = _resolve_courses(client, listed, base, progress)
    recent = now.date() - timedelta(days=settings.past_days)
    coursedates = _sync_coursedates(client, courses, base, recent, settings.batch_size, progress)
    coursedates, left_out = soonest_per_course(
        coursedates, now.date(), settings.max_dates_per_course, client.anomalies
    )
    warnings: list[str] = []
    reference, fetched_at, refreshed = _sync_reference(
        client, base, now, timedelta(days=settings.reference_ttl_days), progress, warnings
    )
    progress.done()
    snapshot = Snapshot(
        fetched_at=now,
        api_base=api_base,
        courses=courses,
        coursedates=coursedates,
        reference=reference,
        reference_fetched_at=fetched_at,
        course_sources=sources,
        first_seen=first_seen(previous, coursedates, now),
        unchanged_since=unchanged_since(previous, coursedates, now),
    )
    return SyncOutcome(
        snapshot=snapshot,
        mode="incremental" if base else "full",
        details_fetched=details,
        reference_refreshed=refreshed,
        warnings=tuple(warnings),
        left_out=left_out,
    )


def _resolve_courses(
    client: FrontcoreClient, listed: list[Record], base: Snapshot | None, progress: Progress
) -> tuple[dict[int, Record], dict[int, str], int]:
    """Stored course records: reused when the list item is unchanged, completed when needed."""
    courses: dict[int, Record] = {}
    sources: dict[int, str] = {}
    to_complete: list[Record] = []
    for item in listed:
        cid = item["id"]
        sources[cid] = record_digest(item)
        if (
            base is not None
            and cid in base.courses
            and base.course_sources.get(cid) == sources[cid]
        ):
            courses[cid] = base.courses[cid]
        elif any(name not in item for name in COURSE_FIELDS):
            to_complete.append(item)
        else:
            courses[cid] = item
    if to_complete:
        progress.phase("details", len(to_complete))
        for item in to_complete:
            # The list's id wins: a detail answer naming another course must not move this one.
            courses[item["id"]] = {**item, **client.get_course(item["id"]), "id": item["id"]}
            progress.advance()
    return courses, sources, len(to_complete)


def _sync_coursedates(
    client: FrontcoreClient,
    courses: dict[int, Record],
    base: Snapshot | None,
    recent: date,
    chunk_size: int,
    progress: Progress,
) -> dict[int, Record]:
    """Dates ending on or after ``recent`` fetched again; older ones kept from ``base``."""
    if base is None:
        known, new = [], list(courses)
    else:
        known = [cid for cid in courses if cid in base.courses]
        new = [cid for cid in courses if cid not in base.courses]
    progress.phase("dates", len(courses))
    kept = (
        {}
        if base is None
        else {
            did: d
            for did, d in base.coursedates.items()
            if d["course_id"] in courses and ends_before(d, recent)
        }
    )
    fetched = client.batch_coursedates(
        known, chunk_size=chunk_size, end_date_min=recent, on_chunk=progress.advance
    ) + client.batch_coursedates(new, chunk_size=chunk_size, on_chunk=progress.advance)
    merged = dict(kept)
    for record in fetched:
        if record["course_id"] not in courses:
            log.warning(
                "course date %s belongs to unknown course %s; skipped",
                record["coursedate_id"],
                record["course_id"],
            )
            continue
        merged[record["coursedate_id"]] = record
    return merged


def soonest_per_course(
    coursedates: dict[int, Record], today: date, limit: int, anomalies: Anomalies
) -> tuple[dict[int, Record], frozenset[int]]:
    """At most ``limit`` dates per course of those that have not ended before ``today``: the
    ones starting soonest (then by id; a date whose start cannot be read, last). Dates that
    ended are not counted. Returns the dates kept and the ids left out, each course over the
    limit noted in ``anomalies`` with its count."""
    current: dict[int, list[Record]] = defaultdict(list)
    for record in coursedates.values():
        if not ends_before(record, today):
            current[record["course_id"]].append(record)
    left_out: set[int] = set()
    for course_id, records in sorted(current.items()):
        if len(records) > limit:
            records.sort(key=_soonest_first)
            left_out.update(r["coursedate_id"] for r in records[limit:])
            anomalies.add(CROWDED, f"course {course_id}", "coursedates", len(records))
    if not left_out:
        return coursedates, frozenset()
    kept = {did: r for did, r in coursedates.items() if did not in left_out}
    return kept, frozenset(left_out)


def _soonest_first(record: Record) -> tuple[date, int]:
    try:
        day = date.fromisoformat(record["start_at"][:10])
    except (KeyError, TypeError, ValueError):
        day = date.max
    return day, record["coursedate_id"]


def ends_before(record: Record, day: date) -> bool:
    """True for a date that ended before ``day``: by its ``end_at``, else its ``start_at``.

    A date whose days cannot be read is never "over": it is fetched (and judged) every run.
    """
    for name in ("end_at", "start_at"):
        value = record.get(name)
        if not isinstance(value, str):
            continue
        try:
            return date.fromisoformat(value[:10]) < day
        except ValueError:
            continue
    return False


def _sync_reference(
    client: FrontcoreClient,
    base: Snapshot | None,
    now: datetime,
    ttl: timedelta,
    progress: Progress,
    warnings: list[str],
) -> tuple[dict[str, dict[int, Record]], dict[str, datetime], tuple[str, ...]]:
    reference: dict[str, dict[int, Record]] = {}
    fetched_at: dict[str, datetime] = {}
    refreshed = []
    for name, path, params in REFERENCE_LISTS:
        last = base.reference_fetched_at.get(name) if base else None
        if base is not None and last is not None and now - last < ttl:
            reference[name] = dict(base.reference.get(name, {}))
            fetched_at[name] = last
            continue
        progress.phase(name)
        try:
            records = client.list_reference(path, params)
        except ApiError as exc:
            # Venues and instructors have no documented list endpoint, and a key may not be
            # allowed to read products: the copies embedded in course dates still carry what
            # the site needs. The key itself was good: the course list accepted it.
            if exc.status not in OPTIONAL_LIST_STATUSES:
                raise
            warnings.append(
                f"/{path} is {OPTIONAL_LIST_STATUSES[exc.status]} (HTTP {exc.status}); "
                f"{name} left out (the site uses the copies in courses and course dates)"
            )
            records = []
        progress.advance(len(records))
        reference[name] = {r["id"]: r for r in records}
        fetched_at[name] = now
        refreshed.append(name)
    return reference, fetched_at, tuple(refreshed)
