"""The snapshot folder: canonical JSON files saved atomically, unchanged files linked, last N kept.

Layout of the snapshot folder (``snapshot_dir``, default ``snapshots/``)::

    snapshots/
      000007-20261123T031500Z/     one complete snapshot, never modified once it exists
        manifest.json              fetched_at, api_base, counts, schema, the digest of every file
        courses/34.json            the courses whose id ends in 34 (course id % 100)
        coursedates/34.json        the dates of those courses
        index/34.json              per record: its digest; a course's list-item digest ("source"),
                                   a date's first_seen and unchanged_since
        locations.json  instructors.json  products.json
      000008-20261124T031500Z/     the next change: files it shares with 000007 are hard links
      checked.json                 the last fetch: the snapshot it found current, and when
      .lock                        held by a running fetch (see lock.py)

**A night costs what changed.** A fetch that finds the same data as the newest snapshot writes
no snapshot at all; it only records in ``checked.json`` when it confirmed it, which is the
honest age of the data (``last_checked``). A fetch that finds changes writes a new snapshot in
which every file whose bytes did not change is a hard link to the previous snapshot's file (a
copy where the file system cannot link), so a few changed dates rewrite a few shards of about
1 % of the dates each, not the whole catalog. Records are sharded by course id because that is
how changes arrive: a course edited, the seat counts of its dates.

A snapshot is written into a hidden ``.incoming-*`` folder beside the others and renamed into
place only when every file is written and flushed: the rename is the commit. A run killed at any
moment leaves either the old set of snapshots or the old set plus one complete new one, never a
half-written one, and it never touches an existing snapshot (a hard link adds a name to a file,
it never changes its bytes). The newest is the one with the highest sequence number; there is no
pointer file to get out of step (``checked.json`` only dates the snapshot it names).

**Links are names, never followed.** The snapshot folder itself may be a link (the operator's:
another disk), but inside it catalog-gen follows none: the snapshots are listed with ``lstat``,
and one that is a link (or holds one on the way to a file) is not read, a one-line
``SnapshotError`` naming the link; nothing is hard-linked from behind a link (that file is
written anew); a link due for pruning, or left as an ``.incoming-*`` folder, is removed as
the link, whatever it points at.

Canonical means stable bytes for the same data: records ordered by id, keys sorted, UTF-8, one
record per line (so ``git diff`` of two snapshots reads well), a trailing newline. Schema 1
snapshots (one ``courses.json`` and one ``coursedates.json``, per-record digests in the
manifest) are still read.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias

import orjson

from catalog_gen.errors import SnapshotError
from catalog_gen.snapshot import (
    REFERENCE_KINDS,
    SCHEMA_VERSION,
    Record,
    Snapshot,
    SnapshotPart,
    StoredSnapshot,
    canonical_json,
    digest_of_canonical,
)

log = logging.getLogger(__name__)

#: A manifest as parsed: a JSON object whose values each reader checks as it reads them (a
#: missing or wrong one is a SnapshotError, never a crash).
_Manifest: TypeAlias = dict[str, Any]

_NAME = re.compile(r"^(\d{6})-(\d{8}T\d{6}Z)$")
_INCOMING_PREFIX = ".incoming-"
MANIFEST = "manifest.json"
CHECKED = "checked.json"
#: Records are split by course id modulo this, named by the id's last two digits.
SHARDS = 100
#: The files a schema-2 snapshot may hold besides its manifest.
_FILE = re.compile(
    r"^(?:(?P<folder>courses|coursedates|index)/\d{2}|(?P<reference>"
    + "|".join(REFERENCE_KINDS)
    + r"))\.json$"
)


# --- the files of a snapshot ------------------------------------------------------------------


def _records_file(lines: list[str]) -> bytes:
    """A list of canonical records, one per line: ``[``, records with commas, ``]``."""
    body = "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"
    return body.encode("utf-8")


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_timestamp(text: Any, where: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        raise SnapshotError(f"{where}: bad timestamp {text!r}") from None


def shard(course_id: Any) -> str:
    """The shard of a course and its dates: the course id's last two digits (``"07"``)."""
    if isinstance(course_id, int) and not isinstance(course_id, bool):
        return f"{course_id % SHARDS:02d}"
    # The client makes every id an int; anything else still gets a stable shard.
    text = canonical_json(course_id).encode("utf-8")
    return f"{int(hashlib.sha256(text).hexdigest(), 16) % SHARDS:02d}"


def snapshot_files(snapshot: Snapshot) -> dict[str, bytes]:
    """Every file of a snapshot, as the exact bytes that go to disk (manifest last)."""
    courses: dict[str, list[str]] = defaultdict(list)
    dates: dict[str, list[str]] = defaultdict(list)
    index: dict[str, list[str]] = defaultdict(list)
    index_dates: dict[str, list[str]] = defaultdict(list)
    for cid in sorted(snapshot.courses):
        line = canonical_json(snapshot.courses[cid])
        part = shard(cid)
        courses[part].append(line)
        entry = {
            "course_id": cid,
            "digest": digest_of_canonical(line),
            "source": snapshot.course_sources.get(cid),
        }
        index[part].append(canonical_json(entry))
    for did in sorted(snapshot.coursedates):
        record = snapshot.coursedates[did]
        line = canonical_json(record)
        part = shard(record.get("course_id"))
        dates[part].append(line)
        seen = snapshot.first_seen.get(did, snapshot.fetched_at)
        since = snapshot.unchanged_since.get(did, snapshot.fetched_at)
        entry = {
            "coursedate_id": did,
            "digest": digest_of_canonical(line),
            "first_seen": _timestamp(seen),
            "unchanged_since": _timestamp(since),
        }
        index_dates[part].append(canonical_json(entry))
    files: dict[str, bytes] = {}
    for folder, parts in (("courses", courses), ("coursedates", dates)):
        for part in sorted(parts):
            files[f"{folder}/{part}.json"] = _records_file(parts[part])
    for part in sorted(index.keys() | index_dates.keys()):
        files[f"index/{part}.json"] = _records_file(index[part] + index_dates[part])
    for kind in REFERENCE_KINDS:
        records = snapshot.reference.get(kind, {})
        files[f"{kind}.json"] = _records_file([canonical_json(records[k]) for k in sorted(records)])
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "fetched_at": _timestamp(snapshot.fetched_at),
        "api_base": snapshot.api_base,
        "counts": {
            "courses": len(snapshot.courses),
            "coursedates": len(snapshot.coursedates),
            **{kind: len(snapshot.reference.get(kind, {})) for kind in REFERENCE_KINDS},
        },
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
        "reference_fetched_at": {
            kind: _timestamp(at) for kind, at in sorted(snapshot.reference_fetched_at.items())
        },
    }
    files[MANIFEST] = (
        json.dumps(manifest, sort_keys=True, ensure_ascii=False, indent=1) + "\n"
    ).encode("utf-8")
    return files


# --- the folder ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Saved:
    """What ``SnapshotStore.save`` did: which snapshot holds the data, and what it cost."""

    #: The snapshot that holds the data: the new one, or the newest when nothing changed.
    name: str
    #: False when the newest snapshot already held exactly this data (nothing was written).
    new: bool
    files_written: int = 0
    files_linked: int = 0
    #: Bytes of the files written (hard links cost none), the manifest included.
    bytes_written: int = 0


class SnapshotStore:
    """The snapshot folder: list, load, save (linking what did not change), prune."""

    def __init__(self, root: Path):
        self.root = root

    def names(self) -> list[str]:
        """Names of the complete snapshots, oldest first: the folders named like one, and
        links named like one, which are never followed (reading one is refused, pruning
        removes the link), but keep their sequence number taken."""
        try:
            with os.scandir(self.root) as entries:
                return sorted(
                    entry.name
                    for entry in entries
                    if _NAME.match(entry.name)
                    and (entry.is_dir(follow_symlinks=False) or entry.is_symlink())
                )
        except (FileNotFoundError, NotADirectoryError):
            return []

    def latest(self) -> Snapshot | None:
        names = self.names()
        return self.load(names[-1]) if names else None

    def latest_name(self) -> str | None:
        names = self.names()
        return names[-1] if names else None

    def fetched_at(self, name: str) -> datetime:
        """When the snapshot was fetched, read from its name (no need to load it)."""
        match = _NAME.match(name)
        if match is None:
            raise SnapshotError(f"{self.root / name}: not a snapshot name")
        return datetime.strptime(match.group(2), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)

    def last_checked(self, name: str) -> datetime:
        """When a fetch last confirmed the data of ``name``: its own fetch, or a later one that
        found nothing changed (``checked.json``). This is the age of the data a site shows.

        A missing or unreadable ``checked.json`` only makes the data look older, never newer.
        """
        fetched = self.fetched_at(name)
        try:
            with open(self.root / CHECKED, "rb", opener=_no_link) as handle:
                raw = orjson.loads(handle.read())
            if not isinstance(raw, dict) or raw.get("snapshot") != name:
                return fetched
            return max(fetched, _parse_timestamp(raw.get("checked_at"), CHECKED))
        except (OSError, ValueError, SnapshotError):
            return fetched

    def manifest_digest(self, name: str) -> str:
        """SHA-256 of the manifest, which holds the digest of every file of the snapshot."""
        folder = self.root / name
        try:
            with _open_in(folder, MANIFEST) as handle:
                return hashlib.sha256(handle.read()).hexdigest()
        except OSError as exc:
            raise _unreadable(folder, MANIFEST, exc) from None

    def resolve(self, ref: str) -> str:
        """A snapshot name from a full name, its sequence number (``7``) or ``-1``-style index."""
        names = self.names()
        if ref in names:
            return ref
        if re.fullmatch(r"-\d+", ref) and 0 < -int(ref) <= len(names):
            return names[int(ref)]
        if ref.isdigit():
            for name in names:
                if int(name[:6]) == int(ref):
                    return name
        shown = ", ".join(names[-5:]) or "none yet"
        raise SnapshotError(f"no snapshot '{ref}' in {self.root} (recent: {shown})")

    def load(self, name: str) -> Snapshot:
        folder = self.root / name
        manifest = _read_json(folder, MANIFEST)
        schema = manifest.get("schema_version") if isinstance(manifest, dict) else None
        readers = {1: _load_schema_1, 2: _load_schema_2}
        if schema not in readers:
            raise SnapshotError(
                f"{folder}: snapshot schema {schema!r} is not one this catalog-gen reads "
                f"(1 to {SCHEMA_VERSION}); run 'catalog-gen fetch --full' to make a new one"
            )
        try:
            return readers[schema](folder, manifest, name)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SnapshotError(
                f"{folder}: incomplete snapshot ({exc!r} missing or wrong)"
            ) from None

    def stored(self, name: str) -> StoredSnapshot:
        """The snapshot ``name`` as parts to read one at a time: its shards (course id % 100;
        a schema 1 snapshot is one part). Nothing but the manifest is read here."""
        folder = self.root / name
        manifest = _read_json(folder, MANIFEST)
        where = str(folder / MANIFEST)
        try:
            schema = manifest.get("schema_version")
            fetched_at = _parse_timestamp(manifest["fetched_at"], where)
            files = dict(manifest["files"])
        except (AttributeError, KeyError, TypeError, ValueError):
            raise SnapshotError(f"{folder}: incomplete snapshot (its manifest)") from None
        if schema != 2:
            # One part: the whole snapshot, named by its manifest's digest.
            whole = hashlib.sha256(canonical_json(manifest).encode("utf-8")).hexdigest()

            def read_whole(part: str) -> SnapshotPart:
                return self.load(name).part()

            return StoredSnapshot(name, fetched_at, {"all": whole}, read_whole)
        parts: dict[str, list[str]] = defaultdict(list)
        for filename, expected in sorted(files.items()):
            match = _FILE.match(filename)
            if match and match["folder"]:
                parts[filename.split("/")[1][:-5]].append(f"{filename}={expected}")
        digests = {
            part: hashlib.sha256("\n".join(entries).encode()).hexdigest()[:32]
            for part, entries in sorted(parts.items())
        }
        return StoredSnapshot(
            name,
            fetched_at,
            digests,
            lambda part: _read_part(folder, files, part, where, fetched_at),
        )

    def save(self, snapshot: Snapshot) -> Saved:
        """Keep a fetch's result: a new snapshot, swapped in with one rename, whose unchanged
        files are hard links to the newest one's; or, when the newest snapshot already holds
        exactly this data, nothing but the time of this check in ``checked.json``.

        A file is linked only when the bytes on disk are the bytes it must have (read and
        compared, not trusted from the manifest), so a damaged file is never carried over,
        and only when it is a file of the newest snapshot, not reached through a link.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        files = snapshot_files(snapshot)
        names = self.names()
        latest = self.root / names[-1] if names else None
        same = _same_files(latest, files) if latest else set()
        if latest and same >= files.keys() - {MANIFEST} and _same_but_time(latest, files):
            self._record_check(latest.name, snapshot.fetched_at)
            return Saved(latest.name, new=False)

        sequence = int(names[-1][:6]) + 1 if names else 1
        name = f"{sequence:06d}-{snapshot.fetched_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        incoming = Path(tempfile.mkdtemp(prefix=_INCOMING_PREFIX, dir=self.root))
        written = linked = size = 0
        try:
            folders = {incoming}
            for filename, data in files.items():
                target = incoming / filename
                if target.parent not in folders:
                    target.parent.mkdir()
                    folders.add(target.parent)
                if latest and filename in same and _link(latest / filename, target):
                    linked += 1
                    continue
                with open(target, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                written += 1
                size += len(data)
            for folder in folders:
                os.chmod(folder, 0o755)
                _fsync_dir(folder)
            os.rename(incoming, self.root / name)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(incoming, ignore_errors=True)
            raise
        self._record_check(name, snapshot.fetched_at)
        return Saved(name, new=True, files_written=written, files_linked=linked, bytes_written=size)

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` snapshots; returns what was removed.

        A file linked into a newer snapshot lives on there: removing a folder removes names.
        A snapshot that is a symbolic link is removed as the link; what it points at stays.
        One that cannot be removed is a warning: the new snapshot is saved, and the next
        fetch tries again.
        """
        removed = []
        for name in self.names()[:-keep] if keep > 0 else []:
            path = self.root / name
            try:
                if path.is_symlink():
                    path.unlink()
                else:
                    shutil.rmtree(path)  # never follows a link inside, even one made meanwhile
            except OSError as exc:
                log.warning("could not remove the old snapshot %s (%s)", path, exc.strerror or exc)
                continue
            removed.append(name)
        return removed

    def clean_incoming(self) -> None:
        """Remove half-written snapshots left by a killed run (call while holding the lock)."""
        if self.root.is_dir():
            for path in self.root.glob(_INCOMING_PREFIX + "*"):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    def disk_usage(self) -> int:
        """Bytes the snapshot folder takes on disk (allocated blocks), each hard-linked file
        counted once, as ``du`` counts them."""
        seen: set[tuple[int, int]] = set()
        total = 0
        for folder, _, filenames in os.walk(self.root):
            for entry in (folder, *(os.path.join(folder, f) for f in filenames)):
                stat = os.lstat(entry)
                if (stat.st_dev, stat.st_ino) not in seen:
                    seen.add((stat.st_dev, stat.st_ino))
                    total += stat.st_blocks * 512
        return total

    def _record_check(self, name: str, at: datetime) -> None:
        """Write ``checked.json`` atomically: ``name`` held the API's data at ``at``.

        Failing to write it loses nothing (the data is safe; it only looks as old as its
        snapshot's fetch), so it is a warning, not a failed run.
        """
        body = {"checked_at": _timestamp(at), "snapshot": name}
        data = (json.dumps(body, sort_keys=True, indent=1) + "\n").encode("utf-8")
        temporary = None
        try:
            handle, temporary = tempfile.mkstemp(prefix=_INCOMING_PREFIX, dir=self.root)
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o644)
            os.replace(temporary, self.root / CHECKED)
            _fsync_dir(self.root)
        except OSError as exc:
            log.warning(
                "could not record the time of this check in %s (%s); the data's age counts "
                "from %s's fetch",
                self.root / CHECKED,
                exc.strerror or exc,
                name,
            )
        finally:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)


def _same_files(folder: Path, files: Mapping[str, bytes]) -> set[str]:
    """The names in ``files`` whose bytes ``folder`` already holds, byte for byte (in files
    of its own: a link on the way holds nothing)."""
    same = set()
    for filename, data in files.items():
        try:
            with _open_in(folder, filename) as handle:
                if os.fstat(handle.fileno()).st_size == len(data) and handle.read() == data:
                    same.add(filename)
        except OSError:
            continue
    return same


def _same_but_time(folder: Path, files: Mapping[str, bytes]) -> bool:
    """Whether ``folder``'s manifest is the new one but for the time of the fetch."""
    try:
        with _open_in(folder, MANIFEST) as handle:
            old = orjson.loads(handle.read())
    except (OSError, ValueError):
        return False
    new: _Manifest = orjson.loads(files[MANIFEST])  # ours, just made: snapshot_files
    if not isinstance(old, dict):
        return False
    old.pop("fetched_at", None)
    new.pop("fetched_at", None)
    return old == new


def _link(source: Path, target: Path) -> bool:
    """Hard-link ``target`` to ``source`` (the file itself, never what a link there points
    at); False where the file system cannot (then copy)."""
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        return False
    return True


# --- reading ----------------------------------------------------------------------------------


def _load_schema_2(folder: Path, manifest: _Manifest, name: str) -> Snapshot:
    """A snapshot in the sharded layout (see the module docstring)."""
    where = str(folder / MANIFEST)
    courses: dict[int, Record] = {}
    dates: dict[int, Record] = {}
    reference: dict[str, dict[int, Record]] = {kind: {} for kind in REFERENCE_KINDS}
    sources: dict[int, str | None] = {}
    seen: dict[int, datetime] = {}
    since: dict[int, datetime] = {}
    fetched_at = _parse_timestamp(manifest["fetched_at"], where)
    for filename, expected in manifest["files"].items():
        match = _FILE.match(filename)
        if match is None:
            raise SnapshotError(f"{where}: unexpected file {filename!r}")
        records = _read_records(folder, filename, expected)
        if match["reference"]:
            reference[match["reference"]] = {r["id"]: r for r in records}
        elif match["folder"] == "courses":
            courses.update((r["id"], r) for r in records)
        elif match["folder"] == "coursedates":
            dates.update((r["coursedate_id"], r) for r in records)
        else:
            for entry in records:
                if "course_id" in entry:
                    sources[entry["course_id"]] = entry["source"]
                else:
                    seen[entry["coursedate_id"]] = _parse_timestamp(entry["first_seen"], where)
                    since[entry["coursedate_id"]] = _since(entry, fetched_at, where)
    counts = manifest["counts"]
    found = {"courses": len(courses), "coursedates": len(dates)}
    found |= {kind: len(reference[kind]) for kind in REFERENCE_KINDS}
    if found != counts or sources.keys() != courses.keys() or seen.keys() != dates.keys():
        raise SnapshotError(f"{folder}: incomplete snapshot (its files do not add up to {counts})")
    return _snapshot(manifest, where, name, courses, dates, reference, sources, seen, since)


def _since(entry: Record, fetched_at: datetime, where: str) -> datetime:
    """A date's ``unchanged_since``; a snapshot written before it existed says nothing older
    than its own fetch, which read the record as it is."""
    value = entry.get("unchanged_since")
    return fetched_at if value is None else _parse_timestamp(value, where)


def _read_part(
    folder: Path, files: Mapping[str, str], part: str, where: str, fetched_at: datetime
) -> SnapshotPart:
    """One shard's courses, dates, first_seen and unchanged_since (schema 2), each file
    checked against its manifest digest."""
    records: dict[str, list[Record]] = {}
    for kind in ("courses", "coursedates", "index"):
        filename = f"{kind}/{part}.json"
        records[kind] = (
            _read_records(folder, filename, files[filename]) if filename in files else []
        )
    try:
        courses = {r["id"]: r for r in records["courses"]}
        dates = {r["coursedate_id"]: r for r in records["coursedates"]}
        seen = {
            entry["coursedate_id"]: _parse_timestamp(entry["first_seen"], where)
            for entry in records["index"]
            if "coursedate_id" in entry
        }
        since = {
            entry["coursedate_id"]: _since(entry, fetched_at, where)
            for entry in records["index"]
            if "coursedate_id" in entry
        }
        sources = {entry["course_id"] for entry in records["index"] if "course_id" in entry}
    except (KeyError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"{folder}: incomplete snapshot ({exc!r} missing or wrong)") from None
    if sources != courses.keys() or seen.keys() != dates.keys():
        raise SnapshotError(f"{folder}: incomplete snapshot (shard {part} does not add up)")
    return SnapshotPart(courses, dates, seen, since)


def _load_schema_1(folder: Path, manifest: _Manifest, name: str) -> Snapshot:
    """A snapshot written before sharding: one file per kind, per-record data in the manifest."""
    where = str(folder / MANIFEST)
    records = {
        filename: _read_records(folder, filename, expected)
        for filename, expected in manifest.get("files", {}).items()
    }
    courses = {r["id"]: r for r in records["courses.json"]}
    dates = {r["coursedate_id"]: r for r in records["coursedates.json"]}
    reference = {k: {r["id"]: r for r in records[f"{k}.json"]} for k in REFERENCE_KINDS}
    sources = {int(k): v["source"] for k, v in manifest["courses"].items()}
    # Snapshots written before first_seen existed: the fetch that made them saw all.
    fetched_at = _parse_timestamp(manifest["fetched_at"], where)
    seen = {int(k): _parse_timestamp(v, where) for k, v in manifest.get("first_seen", {}).items()}
    seen = {did: seen.get(did, fetched_at) for did in dates}
    since = dict.fromkeys(dates, fetched_at)
    return _snapshot(manifest, where, name, courses, dates, reference, sources, seen, since)


def _snapshot(
    manifest: _Manifest,
    where: str,
    name: str,
    courses: dict[int, Record],
    dates: dict[int, Record],
    reference: dict[str, dict[int, Record]],
    sources: dict[int, str | None],
    seen: dict[int, datetime],
    since: dict[int, datetime],
) -> Snapshot:
    """A snapshot from its records and its manifest's stamps, whichever layout held them."""
    return Snapshot(
        fetched_at=_parse_timestamp(manifest["fetched_at"], where),
        api_base=manifest["api_base"],
        courses=courses,
        coursedates=dates,
        reference=reference,
        reference_fetched_at={
            k: _parse_timestamp(v, where) for k, v in manifest["reference_fetched_at"].items()
        },
        course_sources=sources,
        first_seen=seen,
        name=name,
        unchanged_since=since,
    )


def _no_link(path: str, flags: int) -> int:
    """An ``opener`` that refuses a link at the file's own name (ELOOP)."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)


def _open_in(folder: Path, filename: str) -> BinaryIO:
    """``filename`` (``courses/07.json``) of the snapshot ``folder``, opened without following
    a link: not the snapshot folder, nor a folder on the way, nor the file (ELOOP). The
    folder that holds the snapshots (the operator's ``snapshot_dir``) may be a link."""
    parts = [folder.name, *filename.split("/")]
    if any(part in ("", ".", "..") for part in parts):
        raise FileNotFoundError(errno.ENOENT, "not a name inside the snapshot", filename)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(folder.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            inner = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.fdopen(os.open(parts[-1], flags, dir_fd=fd), "rb")
    finally:
        os.close(fd)


def _unreadable(folder: Path, filename: str, exc: OSError) -> SnapshotError:
    """The one-line error for a file of a snapshot that could not be opened or read."""
    path = folder / filename
    parts = filename.split("/")
    on_the_way = [folder, *(folder.joinpath(*parts[:n]) for n in range(1, len(parts) + 1))]
    link = next((here for here in on_the_way if here.is_symlink()), None)
    if link is not None:
        return SnapshotError(
            f"{link} is a symbolic link; catalog-gen follows no link inside the snapshot "
            "folder (remove it, or put the folder or file itself in its place)"
        )
    if isinstance(exc, FileNotFoundError):
        return SnapshotError(f"{path}: missing")
    return SnapshotError(f"{path}: cannot read ({exc.strerror})")


def _read_json(folder: Path, filename: str) -> Any:
    try:
        with _open_in(folder, filename) as handle:
            data = handle.read()
    except OSError as exc:
        raise _unreadable(folder, filename, exc) from None
    try:
        return orjson.loads(data)
    except ValueError as exc:
        raise SnapshotError(f"{folder / filename}: malformed JSON ({exc})") from None


def _read_records(folder: Path, filename: str, expected: str) -> list[Record]:
    """A records file, checked against its manifest digest.

    Files in the canonical layout (``[``, one record per line with a comma after all but the
    last, ``]``) are read and parsed a line at a time, so a 235 MB file of course dates never
    sits in memory as bytes beside its records. Any other file is parsed whole, after the
    digest check, as before.
    """
    path = folder / filename
    hasher = hashlib.sha256()
    records: list[Record] = []
    canonical, closed, comma = True, False, True
    try:
        with _open_in(folder, filename) as handle:
            for number, line in enumerate(handle):
                hasher.update(line)
                if not canonical:
                    continue
                if number == 0:
                    canonical = line in (b"[\n", b"[]\n")
                    closed = line == b"[]\n"
                elif closed:
                    canonical = False
                elif line == b"]\n":
                    closed = True
                    canonical = not (comma and records)  # a comma before "]" is not JSON
                elif not comma:
                    canonical = False  # two records without a comma between them
                else:
                    comma = line.endswith(b",\n")
                    try:
                        records.append(orjson.loads(line[: -2 if comma else -1]))
                    except ValueError:
                        canonical = False
            if hasher.hexdigest() != expected:
                raise SnapshotError(f"{path}: does not match its manifest digest (damaged?)")
            if canonical and closed:
                return records
            records.clear()  # not kept beside the whole file's records
            handle.seek(0)
            return _decode_records(handle.read(), path)
    except OSError as exc:
        raise _unreadable(folder, filename, exc) from None


def _decode_records(data: bytes, path: Path) -> list[Record]:
    try:
        records = orjson.loads(data)
    except ValueError as exc:
        raise SnapshotError(f"{path}: malformed JSON ({exc})") from None
    if not isinstance(records, list):
        raise SnapshotError(f"{path}: expected a list of records")
    return records


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
