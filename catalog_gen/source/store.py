"""The snapshot folder: canonical JSON files saved atomically, loaded, the last N kept.

Layout of the snapshot folder (``snapshot_dir``, default ``snapshots/``)::

    snapshots/
      000007-20261123T031500Z/     one complete snapshot, never modified once it exists
        manifest.json              fetched_at, api_base, counts, schema, digests
        courses.json  coursedates.json  locations.json  instructors.json  products.json
      000008-20261124T031500Z/
      .lock                        held by a running fetch (see lock.py)

A snapshot is written into a hidden ``.incoming-*`` folder beside the others and renamed into
place only when every file is written and flushed: the rename is the commit. A run killed at any
moment leaves either the old set of snapshots or the old set plus one complete new one, never a
half-written one, and it never touches an existing snapshot. The newest is the one with the
highest sequence number; there is no pointer file to get out of step.

Canonical means stable bytes for the same data: records ordered by id, keys sorted, UTF-8, one
record per line (so ``git diff`` of two snapshots reads well), a trailing newline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from catalog_gen.errors import SnapshotError
from catalog_gen.snapshot import REFERENCE_KINDS, SCHEMA_VERSION, Snapshot, canonical_json

_NAME = re.compile(r"^(\d{6})-(\d{8}T\d{6}Z)$")
_INCOMING_PREFIX = ".incoming-"


def _records_file(records: Iterable[dict]) -> bytes:
    lines = [canonical_json(r) for r in records]
    body = "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"
    return body.encode("utf-8")


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_timestamp(text: str, where: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        raise SnapshotError(f"{where}: bad timestamp {text!r}") from None


def snapshot_files(snapshot: Snapshot) -> dict[str, bytes]:
    """Every file of a snapshot, as the exact bytes that go to disk."""
    files = {
        "courses.json": _records_file(snapshot.courses[k] for k in sorted(snapshot.courses)),
        "coursedates.json": _records_file(
            snapshot.coursedates[k] for k in sorted(snapshot.coursedates)
        ),
    }
    for kind in REFERENCE_KINDS:
        records = snapshot.reference.get(kind, {})
        files[f"{kind}.json"] = _records_file(records[k] for k in sorted(records))
    course_digests = snapshot.course_digests()
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "fetched_at": _timestamp(snapshot.fetched_at),
        "api_base": snapshot.api_base,
        "counts": {
            "courses": len(snapshot.courses),
            "coursedates": len(snapshot.coursedates),
            **{kind: len(snapshot.reference.get(kind, {})) for kind in REFERENCE_KINDS},
        },
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "reference_fetched_at": {
            kind: _timestamp(at) for kind, at in sorted(snapshot.reference_fetched_at.items())
        },
        "courses": {
            str(cid): {"digest": course_digests[cid], "source": snapshot.course_sources.get(cid)}
            for cid in sorted(snapshot.courses)
        },
        "coursedates": {
            str(did): digest for did, digest in sorted(snapshot.coursedate_digests().items())
        },
        "first_seen": {
            str(did): _timestamp(at)
            for did, at in sorted(snapshot.first_seen.items())
            if did in snapshot.coursedates
        },
    }
    files["manifest.json"] = (
        json.dumps(manifest, sort_keys=True, ensure_ascii=False, indent=1) + "\n"
    ).encode("utf-8")
    return files


class SnapshotStore:
    """The snapshot folder: list, load, save atomically, prune."""

    def __init__(self, root: Path):
        self.root = root

    def names(self) -> list[str]:
        """Names of the complete snapshots, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if _NAME.match(p.name) and p.is_dir())

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

    def manifest_digest(self, name: str) -> str:
        """SHA-256 of the manifest, which holds the digest of every file of the snapshot."""
        try:
            return hashlib.sha256((self.root / name / "manifest.json").read_bytes()).hexdigest()
        except OSError as exc:
            raise SnapshotError(
                f"{self.root / name}: cannot read its manifest ({exc.strerror})"
            ) from None

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
        manifest = _read_json(folder / "manifest.json")
        schema = manifest.get("schema_version") if isinstance(manifest, dict) else None
        if schema != SCHEMA_VERSION:
            raise SnapshotError(
                f"{folder}: snapshot schema {schema!r} is not {SCHEMA_VERSION}; "
                "run 'catalog-gen fetch --full' to make a new one"
            )
        where = str(folder / "manifest.json")
        records = {}
        for filename, expected in manifest.get("files", {}).items():
            records[filename] = _read_records(folder / filename, expected)
        try:
            courses = {r["id"]: r for r in records["courses.json"]}
            dates = {r["coursedate_id"]: r for r in records["coursedates.json"]}
            reference = {k: {r["id"]: r for r in records[f"{k}.json"]} for k in REFERENCE_KINDS}
            sources = {int(k): v["source"] for k, v in manifest["courses"].items()}
            # Snapshots written before first_seen existed: the fetch that made them saw all.
            fetched_at = _parse_timestamp(manifest["fetched_at"], where)
            seen = {
                int(k): _parse_timestamp(v, where)
                for k, v in manifest.get("first_seen", {}).items()
            }
            return Snapshot(
                fetched_at=fetched_at,
                api_base=manifest["api_base"],
                courses=courses,
                coursedates=dates,
                reference=reference,
                reference_fetched_at={
                    k: _parse_timestamp(v, where)
                    for k, v in manifest["reference_fetched_at"].items()
                },
                course_sources=sources,
                first_seen={did: seen.get(did, fetched_at) for did in dates},
                name=name,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SnapshotError(
                f"{folder}: incomplete snapshot ({exc!r} missing or wrong)"
            ) from None

    def save(self, snapshot: Snapshot) -> str:
        """Write a snapshot beside the others and swap it in with one rename. Returns its name."""
        self.root.mkdir(parents=True, exist_ok=True)
        names = self.names()
        sequence = int(names[-1][:6]) + 1 if names else 1
        name = f"{sequence:06d}-{snapshot.fetched_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        incoming = Path(tempfile.mkdtemp(prefix=_INCOMING_PREFIX, dir=self.root))
        try:
            for filename, data in snapshot_files(snapshot).items():
                with open(incoming / filename, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            os.chmod(incoming, 0o755)
            _fsync_dir(incoming)
            os.rename(incoming, self.root / name)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(incoming, ignore_errors=True)
            raise
        return name

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` snapshots; returns what was removed."""
        doomed = self.names()[:-keep] if keep > 0 else []
        for name in doomed:
            shutil.rmtree(self.root / name)
        return doomed

    def clean_incoming(self) -> None:
        """Remove half-written snapshots left by a killed run (call while holding the lock)."""
        if self.root.is_dir():
            for path in self.root.glob(_INCOMING_PREFIX + "*"):
                shutil.rmtree(path, ignore_errors=True)


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise SnapshotError(f"{path}: missing") from None
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise SnapshotError(f"{path}: malformed JSON ({exc})") from None


def _read_records(path: Path, expected: str) -> list:
    """A records file, checked against its manifest digest.

    Files in the canonical layout (``[``, one record per line with a comma after all but the
    last, ``]``) are read and parsed a line at a time, so a 235 MB file of course dates never
    sits in memory as bytes beside its records. Any other file is parsed whole, after the
    digest check, as before.
    """
    hasher = hashlib.sha256()
    records: list = []
    canonical, closed, comma = True, False, True
    try:
        with open(path, "rb") as handle:
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
        raise SnapshotError(f"{path}: cannot read ({exc.strerror})") from None


def _decode_records(data: bytes, path: Path) -> list[dict]:
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
