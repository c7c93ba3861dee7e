"""Frontcore's read endpoints, with its quirks absorbed: pagination, id shapes, wrappers.

Liberal in what it accepts (bare arrays or an ``{items, pagination}`` wrapper, ids as strings,
the course of a date as ``course_id`` or an embedded ``course``), strict in what it returns:
records with integer ids, course dates with a ``course_id`` and without the embedded course
(the snapshot stores courses once, not once per date), every string cleaned of lone surrogates
and of the API key (see scrub.py), each cleaning noted as an anomaly naming the record.

Paging by ``page`` is paging by offset: if the list moves between two requests (a course
updated and re-sorted, or one removed), a course can slip from one page to an earlier one
unread. The course list is therefore asked for in ascending id order, and a read that shows it
moved anyway (ids out of order or repeated) or that lacks a course the caller knew is read
again, until two reads agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import date
from typing import Any, NamedTuple

from catalog_gen.anomalies import Anomalies, kind, shown
from catalog_gen.config import SyncSettings
from catalog_gen.errors import ApiError, LimitExceeded
from catalog_gen.snapshot import Record
from catalog_gen.source.scrub import Finding
from catalog_gen.source.transport import Transport

log = logging.getLogger(__name__)

PAGE_SIZE = 250  # Frontcore's documented maximum
#: No real catalog comes near this; reaching it means the server ignores ``page``. We fail
#: rather than publish a silently truncated catalog.
MAX_PAGES = 10_000
#: Reads of the course list before giving up on two of them agreeing.
MAX_LIST_READS = 3
#: The one order the course list is asked for: stable while courses are edited, and new
#: courses (higher ids) land on the last page, behind everything already read.
COURSE_ORDER = {"order_by": "id", "order_direction": "asc"}

#: Reference lists: (snapshot name, path, extra query parameters).
REFERENCE_LISTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("locations", "locations", {}),
    ("instructors", "instructors", {}),
    ("products", "orders/products", {"id_type": 2}),
)
#: How an anomaly names a record of each reference list.
REFERENCE_LABELS = {
    "locations": "location",
    "instructors": "instructor",
    "orders/products": "product",
}
#: How an anomaly names a record of each list.
LABELS = {"courses": "course", "batch/coursedates": "course date", **REFERENCE_LABELS}

# A record never stops the catalog: a list entry the client cannot file under an id is left
# out and named (by its place in the answer), and the rest of the list is read as usual.
NOT_A_RECORD = kind("record.not_an_object", "list entry that is not an object; left out")
NO_ID = kind("record.id_unusable", "record without a usable id; left out")
REPEATED = kind("record.id_repeated", "record listed twice in one list; one copy kept")
NO_COURSE = kind("date.course_unnamed", "course date that names no usable course; left out")


class _Item(NamedTuple):
    """A record as received, already cleaned (see scrub.py), and what the cleaning changed."""

    raw: Record
    findings: list[Finding]


class _Tally:
    """The entries one list has sent, against the setting that bounds it: a list longer than
    any catalog is an API gone wrong (a server ignoring ``page``, a loop), refused before it
    is all read, kept in memory and saved."""

    def __init__(self, limit: int, setting: str):
        self.limit, self.setting, self.count = limit, setting, 0

    def add(self, path: str, entries: int) -> None:
        self.count += entries
        if self.count > self.limit:
            raise LimitExceeded(
                f"GET /{path}: the list holds more than sync.{self.setting} = {self.limit} "
                "records; refused",
                path=f"/{path}",
            )


class FrontcoreClient:
    """The catalog-relevant GET endpoints of Frontcore v2, for one fetch."""

    def __init__(
        self,
        transport: Transport,
        *,
        page_size: int = PAGE_SIZE,
        anomalies: Anomalies | None = None,
        limits: SyncSettings | None = None,
    ):
        self.transport = transport
        self.page_size = page_size
        #: What the boundary cleaned (see scrub.py), for the fetch's warnings.
        self.anomalies = anomalies if anomalies is not None else Anomalies()
        #: How long a list may be: ``max_courses`` for each read of the course list,
        #: ``max_reference_records`` for each reference list, ``max_dates`` for all the
        #: dates this client fetches.
        self.limits = limits or SyncSettings()
        #: Reads of the course list by the last ``list_courses`` (1 when the first was whole).
        self.course_list_reads = 0
        self._repeated_courses: list[int] = []
        self._dates = _Tally(self.limits.max_dates, "max_dates")

    def list_courses(self, *, expected: Collection[int] = ()) -> list[Record]:
        """Every course the account has (active or not), as the list endpoint returns them.

        ``expected``: ids the caller knew to exist. A read that lacks one of them, or whose ids
        are out of order or repeated (the list moved while it was paged), is confirmed by
        reading again: the read is taken once two reads agree on the set of ids.
        """
        agreed: set[int] | None = None
        for reads in range(1, MAX_LIST_READS + 1):
            items, in_order = self._read_courses()
            ids = set(items)
            self.course_list_reads = reads
            if (in_order and not set(expected) - ids) or ids == agreed:
                break
            agreed = ids
        else:
            raise ApiError(
                f"GET /courses: the course list changed while it was read, {MAX_LIST_READS} "
                "times in a row; nothing was saved (try again later)"
            )
        if reads > 1:
            log.info("/courses read %d times before two reads agreed", reads)
        for rid in self._repeated_courses:
            self.anomalies.add(REPEATED, f"course {rid}", "id", rid)
        return [
            self._record(item, "courses", normalise_course, "course") for item in items.values()
        ]

    def _read_courses(self) -> tuple[dict[int, _Item], bool]:
        """One read of the course list: items by id, and whether ids rose strictly throughout.

        A repeated id keeps its later copy (the fresher one) and marks the read as moved; one
        that is still there when two reads agree is noted.
        """
        items: dict[int, _Item] = {}
        in_order, last = True, None
        repeated: list[int] = []
        tally = _Tally(self.limits.max_courses, "max_courses")
        for page in self._pages("courses", COURSE_ORDER, id_key="id", tally=tally):
            for rid, item in page:
                if last is not None and rid <= last:
                    in_order = False
                if rid in items:
                    repeated.append(rid)
                last = rid
                items[rid] = item
        self._repeated_courses = repeated
        return items, in_order

    def get_course(self, course_id: int) -> Record:
        """One course in full (texts included), for list items that lack fields."""
        path = f"courses/{course_id}"
        payload = self.transport.get_json(path)
        if isinstance(payload, list) and len(payload) == 1:  # orders come wrapped; be ready
            payload = payload[0]
        if not isinstance(payload, dict):
            raise ApiError(f"GET /{path}: expected a course object")
        [item] = self._clean([payload], path)
        return self._record(item, path, normalise_course, "course")

    def batch_coursedates(
        self,
        course_ids: Sequence[int],
        *,
        chunk_size: int,
        end_date_min: date | None = None,
        on_chunk: Callable[[int], None] | None = None,
    ) -> list[Record]:
        """The dates of many courses through ``/batch/coursedates``, ``chunk_size`` ids a call.

        ``end_date_min`` limits the answer to dates ending on or after that day (in the
        catalog's zone): the cheap way to refresh current and recent dates only.
        """
        path = "batch/coursedates"
        dates: list[Record] = []
        for chunk in _chunks(sorted(course_ids), chunk_size):
            params: dict[str, Any] = {
                "course_ids[]": chunk,
                "order_by": "id",
                "order_direction": "asc",
            }
            if end_date_min is not None:
                params["end_date_at_min"] = end_date_min.isoformat()
            for item in self._items(path, params, id_key="coursedate_id", tally=self._dates):
                owner = _course_of(item.raw)
                if owner is None:
                    did = _id_of(item.raw, "coursedate_id")
                    shown_owner = item.raw.get("course_id", item.raw.get("course"))
                    self.anomalies.add(NO_COURSE, f"course date {did}", "course_id", shown_owner)
                    continue
                dates.append(
                    self._record(item, path, lambda r: normalise_coursedate(r, path), "course date")
                )
            if on_chunk:
                on_chunk(len(chunk))
        return dates

    def list_reference(self, path: str, params: dict[str, Any] | None = None) -> list[Record]:
        """A reference list (venues, instructors, products): records with integer ids."""
        label = REFERENCE_LABELS.get(path, "record")
        tally = _Tally(self.limits.max_reference_records, "max_reference_records")
        return [
            self._record(item, path, lambda r: {**r, "id": record_id(r, "id", path)}, label)
            for item in self._items(path, params or {}, id_key="id", tally=tally)
        ]

    def _clean(self, records: list[Record], path: str) -> list[_Item]:
        """The boundary: every string of an answer's records cleaned before anything reads it."""
        scrubber = self.transport.scrubber
        if not scrubber.suspects(records):
            return [_Item(raw, []) for raw in records]
        return [_Item(raw, scrubber.record(raw, f"GET /{path}")) for raw in records]

    def _record(
        self, item: _Item, path: str, normalise: Callable[[Record], Record], label: str
    ) -> Record:
        """A cleaned record normalised; what the cleaning changed is noted as anomalies."""
        record = normalise(item.raw)
        if item.findings:
            name = f"{label} {record.get('coursedate_id', record.get('id'))}"
            dropped = item.raw.keys() - record.keys()  # e.g. a date's embedded course
            for finding in item.findings:
                if not any(
                    finding.field == d or finding.field.startswith(d + ".") for d in dropped
                ):
                    self.anomalies.add(finding.kind, name, finding.field, finding.value)
        return record

    def _items(
        self, path: str, params: dict[str, Any], *, id_key: str, tally: _Tally
    ) -> Iterator[_Item]:
        """Every item of a list, each id once (the first copy; a repeat is noted)."""
        seen: set[int] = set()
        label = LABELS.get(path, "record")
        for page in self._pages(path, params, id_key=id_key, tally=tally):
            for rid, item in page:
                if rid in seen:
                    self.anomalies.add(REPEATED, f"{label} {rid}", id_key, rid)
                    continue
                seen.add(rid)
                yield item

    def _pages(
        self, path: str, params: dict[str, Any], *, id_key: str, tally: _Tally
    ) -> Iterator[list[tuple[int, _Item]]]:
        """Each page's items by id, cleaned, until a short page, ``next_page: null`` or a page
        of ids all seen already (a server ignoring ``page``). An entry that is not an object,
        or has no usable id, is left out and noted: it cannot stop the list. Every entry
        counts against ``tally``: a list longer than its limit stops the fetch."""
        seen: set[int] = set()
        label = LABELS.get(path, "record")
        for page in range(1, MAX_PAGES + 1):
            payload = self.transport.get_json(
                path, {**params, "limit": self.page_size, "page": page}
            )
            entries, has_next = _page_items(payload, path)
            tally.add(path, len(entries))
            raw_items: list[Record] = []
            for index, raw in enumerate(entries, start=1):
                where = f"{label} #{index} on page {page} of /{path}"
                # Noted before the boundary cleans the records: the value as shown is cleaned.
                clean = self.transport.scrubber.clean_text
                if not isinstance(raw, dict):
                    self.anomalies.add(NOT_A_RECORD, where, "(entry)", raw, clean=clean)
                elif _id_of(raw, id_key) is None:
                    self.anomalies.add(NO_ID, where, id_key, raw.get(id_key), clean=clean)
                else:
                    raw_items.append(raw)
            # Every entry kept has a usable id (checked above, before the cleaning).
            items = [
                (record_id(item.raw, id_key, path), item) for item in self._clean(raw_items, path)
            ]
            ids = {rid for rid, _ in items}
            if items and ids <= seen:
                log.warning(
                    "/%s page %d repeats ids already seen; stopping there (the server may be "
                    "ignoring 'page')",
                    path,
                    page,
                )
                return
            seen |= ids
            if items:
                yield items
            if has_next is None:
                has_next = len(entries) >= self.page_size
            if not has_next:
                return
        raise ApiError(f"GET /{path}: more than {MAX_PAGES} pages; refusing to truncate")


def _page_items(payload: Any, path: str) -> tuple[list[object], bool | None]:
    """(items, has_next) of one page; has_next is None when only a short page can tell."""
    if isinstance(payload, list):
        items, has_next = payload, None
    elif isinstance(payload, dict) and isinstance(payload.get("items"), list):
        items = payload["items"]
        pagination = payload.get("pagination")
        has_next = (
            pagination.get("next_page") not in (None, "", 0, False)
            if isinstance(pagination, dict) and "next_page" in pagination
            else None
        )
    else:
        raise ApiError(f"GET /{path}: expected a list, got {type(payload).__name__}")
    return items, has_next


def _id_of(raw: Record, key: str) -> int | None:
    """An id as an int, whether Frontcore sent 42 or "42"; None when there is no usable one."""
    value = raw.get(key)
    if value is None and key == "coursedate_id":
        value = raw.get("id")
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def record_id(raw: Record, key: str, path: str) -> int:
    """An id as an int, or an ApiError for an answer that is one record (a course's details)."""
    rid = _id_of(raw, key)
    if rid is None:
        raise ApiError(f"GET /{path}: a record has no usable '{key}' ({shown(raw.get(key))})")
    return rid


def _course_of(raw: Record) -> int | None:
    """The id of a date's course, from ``course_id`` or an embedded ``course``."""
    owner = raw.get("course_id")
    if owner is None and isinstance(raw.get("course"), dict):
        owner = raw["course"].get("id")
    return _id_of({"id": owner}, "id")


def normalise_course(raw: Record) -> Record:
    return {**raw, "id": record_id(raw, "id", "courses")}


def normalise_coursedate(raw: Record, path: str) -> Record:
    """A date with int ``coursedate_id`` and ``course_id``; the embedded course is dropped."""
    date_id = record_id(raw, "coursedate_id", path)
    owner = _course_of(raw)
    if owner is None:
        raise ApiError(f"GET /{path}: course date {date_id} names no course")
    record = {k: v for k, v in raw.items() if k not in ("course", "id")}
    record["coursedate_id"] = date_id
    record["course_id"] = owner
    return record


def _chunks(values: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
