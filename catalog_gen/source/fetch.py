"""One ``catalog-gen fetch`` run, top to bottom.

    lock the project → load the last snapshot → sync (fetch what changed) → shrink guards
    (courses, dates) → save the new snapshot atomically (or, when nothing changed, only when
    it was checked) → prune old ones → report

Everything here is callable from Python; the CLI only parses options and prints the report.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from catalog_gen.anomalies import report_lines
from catalog_gen.config import ApiAccess, Config
from catalog_gen.errors import GuardRefused, SnapshotError
from catalog_gen.progress import Progress
from catalog_gen.snapshot import Snapshot, diff_snapshots
from catalog_gen.source.client import FrontcoreClient
from catalog_gen.source.lock import RunLock
from catalog_gen.source.store import SnapshotStore
from catalog_gen.source.sync import ends_before, sync_catalog
from catalog_gen.source.transport import MB, Transport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchReport:
    """What a fetch did and cost: printed as one line, or as JSON with --json."""

    snapshot: str
    mode: str
    requests: int
    retries: int
    rate_limited: int
    details_fetched: int
    reference_refreshed: tuple[str, ...]
    courses: int
    courses_added: int
    courses_changed: int
    courses_removed: int
    coursedates: int
    coursedates_added: int
    coursedates_changed: int
    coursedates_removed: int
    data_changed: bool
    seconds: float
    #: What the operator should know although the fetch succeeded: optional lists left out,
    #: and the anomalies cleaned at the API boundary, one line per kind (printed on stderr).
    warnings: tuple[str, ...] = ()
    #: Whether a new snapshot was written; false when the last one already held this data
    #: (then ``snapshot`` names that one, and only ``checked_at`` was recorded).
    saved: bool = True
    #: When this fetch confirmed the data (UTC, ISO 8601).
    checked_at: str = ""
    #: Bytes of new files in the snapshot folder (files that did not change are hard links).
    bytes_written: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary_line(self) -> str:
        return (
            f"{self.mode} fetch: {self.courses} courses "
            f"(+{self.courses_added} ~{self.courses_changed} -{self.courses_removed}), "
            f"{self.coursedates} dates "
            f"(+{self.coursedates_added} ~{self.coursedates_changed} -{self.coursedates_removed}) "
            f"in {self.requests} requests ({self.retries} retries, {self.rate_limited} × 429), "
            f"{self.seconds:.1f} s → {self._outcome()}"
        )

    def _outcome(self) -> str:
        if not self.saved:
            return f"unchanged since {self.snapshot}, checked at {self.checked_at}"
        return f"{self.snapshot} ({_size(self.bytes_written)} written)"


def _size(count: int) -> str:
    if count < 1_000_000:
        return f"{count / 1000:.0f} kB"
    return f"{count / 1_000_000:.1f} MB"


def run_fetch(
    config: Config,
    access: ApiAccess,
    *,
    now: datetime,
    full: bool = False,
    allow_shrink: bool = False,
    progress: Progress | None = None,
    locked: bool = False,
) -> FetchReport:
    """Fetch the catalog into a new snapshot; the last good snapshot survives any failure.

    ``locked`` says the caller (a build) already holds the project's run lock.
    """
    started = time.monotonic()
    store = SnapshotStore(config.snapshot_path)
    settings = config.frontcore
    lock = None if locked else RunLock(store.root)
    with lock or contextlib.nullcontext():
        store.clean_incoming()
        previous = _last_snapshot(store, full)
        with Transport(
            access.base_url,
            access.api_key,
            rate_limit=settings.rate_limit,
            timeout=settings.timeout_seconds,
            max_retries=settings.max_retries,
            max_retry_after=settings.max_retry_after_seconds,
            max_answer_bytes=settings.max_answer_mb * MB,
            max_decoded_bytes=settings.max_decoded_mb * MB,
            answer_deadline=settings.answer_deadline_seconds,
        ) as transport:
            client = FrontcoreClient(transport, limits=config.sync)
            outcome = sync_catalog(
                client,
                previous,
                now=now,
                api_base=access.public_base,
                settings=config.sync,
                full=full,
                progress=progress,
            )
        if not allow_shrink:
            check_shrink(previous, outcome.snapshot, config.sync.max_shrink_percent)
            check_dates_shrink(
                previous,
                outcome.snapshot,
                config.sync.max_dates_shrink_percent,
                left_out=outcome.left_out,
            )
        saved = store.save(outcome.snapshot)
        store.prune(config.keep_snapshots)

    diff = diff_snapshots(previous, outcome.snapshot)
    return FetchReport(
        snapshot=saved.name,
        mode=outcome.mode,
        requests=transport.stats.requests,
        retries=transport.stats.retries,
        rate_limited=transport.stats.rate_limited,
        details_fetched=outcome.details_fetched,
        reference_refreshed=outcome.reference_refreshed,
        courses=len(outcome.snapshot.courses),
        courses_added=len(diff.courses.added),
        courses_changed=len(diff.courses.changed),
        courses_removed=len(diff.courses.removed),
        coursedates=len(outcome.snapshot.coursedates),
        coursedates_added=len(diff.coursedates.added),
        coursedates_changed=len(diff.coursedates.changed),
        coursedates_removed=len(diff.coursedates.removed),
        data_changed=bool(diff),
        seconds=round(time.monotonic() - started, 3),
        warnings=(
            *(lock.warnings() if lock else ()),
            *outcome.warnings,
            *report_lines(client.anomalies),
        ),
        saved=saved.new,
        checked_at=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        bytes_written=saved.bytes_written,
    )


def _last_snapshot(store: SnapshotStore, full: bool) -> Snapshot | None:
    """The newest snapshot, to fetch what changed since. With --full, one that cannot be read
    (damaged, or from another schema) is set aside with a warning: --full is what the error
    tells the user to run, so it must not fail on the same snapshot."""
    try:
        return store.latest()
    except SnapshotError as exc:
        if not full:
            raise
        log.warning("%s; fetching everything without it", exc)
        return None


def check_shrink(previous: Snapshot | None, new: Snapshot, max_percent: float) -> None:
    """Refuse a catalog that lost too many courses at once: an API glitch must not empty it."""
    if previous is None or not previous.courses:
        return
    before, after = len(previous.courses), len(new.courses)
    lost = 100.0 * (before - after) / before
    if lost > max_percent:
        raise GuardRefused(
            f"the API returned {after} courses, {lost:.0f}% fewer than the last snapshot's "
            f"{before} (limit {max_percent:g}%); nothing was saved. If the catalog really "
            "shrank, run again with --allow-shrink"
        )


def check_dates_shrink(
    previous: Snapshot | None,
    new: Snapshot,
    max_percent: float,
    *,
    left_out: Collection[int] = (),
) -> None:
    """Refuse a snapshot that lost most current and upcoming dates of the courses it kept.

    A batch answer that comes back empty (or short) would otherwise publish a catalog of
    courses without dates. Only dates that have not ended count (past ones are kept from the
    last snapshot and would hide the loss), and only those of courses in both snapshots (a
    removed course is the course guard's business). Dates this fetch ``left_out`` on purpose
    (``sync.max_dates_per_course``) were not lost by the API and do not count.
    """
    if previous is None:
        return
    today = new.fetched_at.date()
    before = {
        did
        for did, record in previous.coursedates.items()
        if record.get("course_id") in new.courses and not ends_before(record, today)
    }
    if not before:
        return
    lost = 100.0 * len(before - new.coursedates.keys() - set(left_out)) / len(before)
    if lost > max_percent:
        raise GuardRefused(
            f"the API left out {lost:.0f}% of the {len(before)} current and upcoming dates "
            f"the last snapshot had for the same courses (limit {max_percent:g}%, "
            "sync.max_dates_shrink_percent); nothing was saved. If they really went, run "
            "again with --allow-shrink"
        )
