"""A snapshot: one complete download of a catalog, the one thing both halves share.

The source half (``catalog_gen.source``) makes snapshots from the API and keeps them on disk;
the site half (``catalog_gen.site``) turns one into files. Neither knows the other: this module
is where they meet. It holds the record type, the canonical JSON that defines a record's
digest, and the diff of two snapshots; the folder layout on disk is ``source/store.py``'s.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

import orjson

#: A record as the API sent it: a JSON object, parsed, whose values nothing has checked yet
#: (the site half's tolerant readers narrow each one: site/readers.py).
Record: TypeAlias = dict[str, Any]

#: The layout of a snapshot on disk (source/store.py): 2 shards records by course id.
SCHEMA_VERSION = 2
REFERENCE_KINDS = ("locations", "instructors", "products")

#: The course fields the site half reads (besides ``id``): the contract between the halves.
#: The source half completes a course-list item that lacks any of them with the course's
#: detail GET; a test checks that the site half reads no course field outside this list.
COURSE_FIELDS = (
    "title",
    "reference",
    "is_active",
    "type",
    "level",
    "categories",
    "price",
    "updated_at",
    "duration",
    "form_of_teaching",
    "teaching_language",
    "text_lead",
    "text_description",
    "text_prerequisites",
    "text_audience",
    "external_booking_url",
    "email_booking",
    "external_more_info_url",
    "kursguiden_url",
    "custom_properties",
)


@dataclass(frozen=True)
class Snapshot:
    """One complete download of a catalog: raw API records keyed by id, plus provenance."""

    fetched_at: datetime
    api_base: str
    courses: Mapping[int, Record]
    coursedates: Mapping[int, Record]
    reference: Mapping[str, Mapping[int, Record]]
    #: When each reference list was last fetched (for its freshness TTL).
    reference_fetched_at: Mapping[str, datetime]
    #: Digest of each course *as the course list returned it*: the next run compares list
    #: items against these to know which courses changed without fetching their details.
    #: None (a snapshot made without them, stored and read back) matches no item: the next
    #: run fetches that course's details again.
    course_sources: Mapping[int, str | None]
    #: When a fetch first saw each course date (see ``first_seen``); feeds of new dates.
    first_seen: Mapping[int, datetime] = field(default_factory=dict)
    name: str | None = field(default=None, compare=False)
    #: Since when each course date's record has been what it is (see ``unchanged_since``):
    #: the seats the site shows were read then; a date not named reads as ``fetched_at``.
    unchanged_since: Mapping[int, datetime] = field(default_factory=dict)

    def part(self) -> SnapshotPart:
        """The whole snapshot as one part, as the site half reads it."""
        since = self.unchanged_since
        return SnapshotPart(
            self.courses,
            self.coursedates,
            self.first_seen,
            {did: since.get(did, self.fetched_at) for did in self.coursedates},
        )

    def course_digests(self) -> dict[int, str]:
        return {cid: record_digest(c) for cid, c in self.courses.items()}

    def coursedate_digests(self) -> dict[int, str]:
        return {did: record_digest(d) for did, d in self.coursedates.items()}


@dataclass(frozen=True)
class SnapshotPart:
    """The records of one part (shard) of a stored snapshot: what the site half reads."""

    courses: Mapping[int, Record]
    coursedates: Mapping[int, Record]
    first_seen: Mapping[int, datetime]
    #: Since when each date's record is unchanged (``Snapshot.unchanged_since``), every date.
    unchanged_since: Mapping[int, datetime]


@dataclass(frozen=True)
class StoredSnapshot:
    """A snapshot on disk, readable a part at a time (``source/store.py`` makes one).

    A build that keeps what it made of each part (``site/modelcache.py``) reads again only
    the parts whose digest changed: a night with three changed courses reads three parts.
    """

    name: str
    fetched_at: datetime
    #: Each part's name and the digest of its files: equal digests, equal records.
    parts: Mapping[str, str]
    #: The records of a part, checked against the snapshot's manifest (SnapshotError if not).
    read: Callable[[str], SnapshotPart] = field(repr=False, compare=False)


def canonical_json(value: Any) -> str:
    """The one serialisation used for digests: compact, sorted keys, UTF-8 characters."""
    return canonical_bytes(value).decode("utf-8", "surrogatepass")


#: A number with a fraction or an exponent standing as a JSON value (after "[", ":" or ","
#: or at the start, before "]", "}" or "," or at the end): a float orjson wrote. A string
#: that only looks so ("x:0.5,") makes json write the value too, which is never wrong.
_FLOAT = re.compile(rb"(?<![^\[:,])-?\d+(?:\.\d+(?:[eE][+-]?\d+)?|[eE][+-]?\d+)(?![^\]},])")


def canonical_bytes(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """The one canonical JSON of a value, as bytes: compact, keys sorted at every level,
    characters as UTF-8 (``default`` turns other objects into JSON values, as for json).

    json's spelling is the definition (record digests and the snapshot's lines are made of
    it). orjson writes the same bytes in a tenth of the time for every value but a float,
    some of which it spells otherwise (``0.0000435…`` for json's ``4.35…e-05``), and an
    integer beyond 64 bits, which it cannot write: a value holding either is written by json.
    """
    try:
        data = orjson.dumps(value, default=default, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError: a huge integer, a lone surrogate
        data = None
    if data is not None and not _FLOAT.search(data):
        return data
    text = json.dumps(
        value, default=default, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return text.encode("utf-8", "surrogatepass")


def record_digest(record: Any) -> str:
    """A short, stable fingerprint of a record (128 bits of SHA-256 over canonical JSON)."""
    return digest_of_canonical(canonical_json(record))


def digest_of_canonical(text: str) -> str:
    """``record_digest`` of the record whose canonical JSON is ``text``, for a caller that
    has it already (the store writes the line and its digest: one serialisation)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def first_seen(
    previous: Snapshot | None, coursedates: Mapping[int, Record], now: datetime
) -> dict[int, datetime]:
    """When each course date was first fetched: carried over from ``previous``, else ``now``.

    This is the snapshot diff kept as a date per record, so "new course dates" survive any
    number of later fetches (and ``--full`` ones) instead of meaning "new since last night".
    """
    before = previous.first_seen if previous else {}
    return {did: before.get(did, now) for did in coursedates}


def unchanged_since(
    previous: Snapshot | None, coursedates: Mapping[int, Record], now: datetime
) -> dict[int, datetime]:
    """Since when each course date's record has been exactly what it is now: carried over
    from ``previous`` while the record is the same, else ``now``.

    Every fetch reads every current date again (sync.py), and a fetch that finds a record
    unchanged keeps its time: so at that time, and at every fetch since, the API sent the
    record as it is, seats included. A page's "seats as of" is the newest of these times among
    the dates it shows (site/model.py ``seats_as_of``): at that moment a fetch read every seat
    on the page as shown, and the time moves only when something the page shows changes.
    """
    if previous is None:
        return {did: now for did in coursedates}
    before, since = previous.coursedates, previous.unchanged_since
    return {
        did: since.get(did, previous.fetched_at) if before.get(did) == record else now
        for did, record in coursedates.items()
    }


# --- diff ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordDiff:
    """How one kind of record changed between two snapshots."""

    added: tuple[int, ...] = ()
    changed: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    removed: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass(frozen=True)
class SnapshotDiff:
    courses: RecordDiff
    coursedates: RecordDiff

    def __bool__(self) -> bool:
        return bool(self.courses or self.coursedates)


def diff_records(old: Mapping[int, Record], new: Mapping[int, Record]) -> RecordDiff:
    """Added, removed and changed ids; for changed ones, the dotted paths of changed fields."""
    changed = {}
    for rid in sorted(old.keys() & new.keys()):
        if old[rid] != new[rid]:
            changed[rid] = tuple(changed_fields(old[rid], new[rid]))
    return RecordDiff(
        added=tuple(sorted(new.keys() - old.keys())),
        changed=changed,
        removed=tuple(sorted(old.keys() - new.keys())),
    )


def changed_fields(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON values differ, descending into objects (not lists)."""
    if isinstance(old, dict) and isinstance(new, dict):
        paths = []
        for key in sorted(old.keys() | new.keys(), key=str):
            if (key in old) != (key in new):
                paths.append(f"{prefix}{key}")
            elif old[key] != new[key]:
                paths += changed_fields(old[key], new[key], f"{prefix}{key}.")
        return paths
    return [prefix.rstrip(".")] if old != new else []


def diff_snapshots(old: Snapshot | None, new: Snapshot) -> SnapshotDiff:
    """Courses and course dates added, changed and removed from ``old`` to ``new``."""
    return SnapshotDiff(
        courses=diff_records(old.courses if old else {}, new.courses),
        coursedates=diff_records(old.coursedates if old else {}, new.coursedates),
    )
