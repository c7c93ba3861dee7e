"""Snapshots on disk: canonical bytes, atomic save, retention, damage detection, diff, lock."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from catalog_gen.errors import GuardRefused, SnapshotError
from catalog_gen.snapshot import (
    Snapshot,
    changed_fields,
    diff_snapshots,
    first_seen,
    record_digest,
)
from catalog_gen.source import store as snapshot_module
from catalog_gen.source.lock import RunLock
from catalog_gen.source.store import SnapshotStore, snapshot_files

T0 = datetime(2026, 11, 23, 3, 15, tzinfo=UTC)


def make_snapshot(courses=None, dates=None, at=T0) -> Snapshot:
    courses = (
        courses
        if courses is not None
        else {
            2: {"id": 2, "title": "Grunnkurs i økonomi", "is_active": True},
            1: {"id": 1, "title": "Førstehjelp", "url": "https://x.test/a/b"},
        }
    )
    dates = (
        dates
        if dates is not None
        else {
            900002: {"coursedate_id": 900002, "course_id": 1, "start_at": "2026-12-01"},
            900001: {"coursedate_id": 900001, "course_id": 2, "start_at": "2026-10-01"},
        }
    )
    return Snapshot(
        fetched_at=at,
        api_base="https://api.frontcore.com/v2",
        courses=courses,
        coursedates=dates,
        reference={"locations": {5: {"id": 5, "title": "Sem"}}, "instructors": {}, "products": {}},
        reference_fetched_at={"locations": at, "instructors": at, "products": at},
        course_sources={cid: record_digest(c) for cid, c in courses.items()},
        first_seen={did: at for did in dates},
    )


def test_files_are_canonical_and_stable():
    files = snapshot_files(make_snapshot())
    shuffled = make_snapshot(
        courses={
            1: {"url": "https://x.test/a/b", "title": "Førstehjelp", "id": 1},
            2: {"is_active": True, "id": 2, "title": "Grunnkurs i økonomi"},
        },
    )
    assert snapshot_files(shuffled) == files  # key order and insertion order do not matter
    courses = files["courses.json"].decode("utf-8")
    assert courses.splitlines()[1].startswith('{"id":1,')  # ordered by id, keys sorted
    assert "økonomi" in courses and "\\u" not in courses  # UTF-8, not escapes
    assert "https://x.test/a/b" in courses  # slashes unescaped
    assert courses.endswith("\n")
    assert json.loads(courses)[1]["id"] == 2


def test_manifest_has_provenance_counts_and_digests():
    manifest = json.loads(snapshot_files(make_snapshot())["manifest.json"])
    assert manifest["schema_version"] == 1
    assert manifest["fetched_at"] == "2026-11-23T03:15:00Z"
    assert manifest["api_base"] == "https://api.frontcore.com/v2"
    assert manifest["counts"] == {
        "courses": 2,
        "coursedates": 2,
        "locations": 1,
        "instructors": 0,
        "products": 0,
    }
    assert set(manifest["courses"]) == {"1", "2"}
    assert len(manifest["courses"]["1"]["digest"]) == 32
    assert set(manifest["coursedates"]) == {"900001", "900002"}


def test_save_and_load_round_trip(tmp_path):
    store = SnapshotStore(tmp_path / "snaps")
    original = make_snapshot()
    name = store.save(original)
    assert name == "000001-20261123T031500Z"
    loaded = store.latest()
    assert loaded == original
    assert loaded.name == name
    # Saving the loaded snapshot again gives the same bytes.
    assert snapshot_files(loaded) == snapshot_files(original)


def test_names_sequence_and_resolve(tmp_path):
    store = SnapshotStore(tmp_path)
    names = [store.save(make_snapshot(at=T0 + timedelta(days=i))) for i in range(3)]
    assert store.names() == names
    assert store.resolve("2") == names[1]
    assert store.resolve("-1") == names[2]
    assert store.resolve(names[0]) == names[0]
    with pytest.raises(SnapshotError, match="no snapshot '9'"):
        store.resolve("9")


def test_prune_keeps_the_newest(tmp_path):
    store = SnapshotStore(tmp_path)
    names = [store.save(make_snapshot(at=T0 + timedelta(hours=i))) for i in range(7)]
    assert store.prune(5) == names[:2]
    assert store.names() == names[2:]


def test_a_failed_save_leaves_no_trace(tmp_path, monkeypatch):
    store = SnapshotStore(tmp_path)
    first = store.save(make_snapshot())
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def broken_rename(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", broken_rename)
    with pytest.raises(OSError):
        store.save(make_snapshot(at=T0 + timedelta(days=1)))
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
    assert store.names() == [first]


def test_leftover_incoming_folders_are_ignored_then_cleaned(tmp_path):
    store = SnapshotStore(tmp_path)
    store.save(make_snapshot())
    (tmp_path / ".incoming-abc").mkdir()
    (tmp_path / ".incoming-abc" / "courses.json").write_text("[")
    assert len(store.names()) == 1
    store.clean_incoming()
    assert not (tmp_path / ".incoming-abc").exists()


def test_damaged_snapshots_are_named_errors(tmp_path):
    store = SnapshotStore(tmp_path)
    name = store.save(make_snapshot())
    courses = tmp_path / name / "courses.json"
    courses.write_bytes(courses.read_bytes().replace(b"Grunnkurs", b"Grunnkors"))
    with pytest.raises(SnapshotError, match="does not match its manifest"):
        store.load(name)
    (tmp_path / name / "manifest.json").write_text("{not json")
    with pytest.raises(SnapshotError, match="malformed JSON"):
        store.load(name)


def test_a_snapshot_from_another_schema_says_what_to_do(tmp_path):
    store = SnapshotStore(tmp_path)
    name = store.save(make_snapshot())
    manifest = tmp_path / name / "manifest.json"
    data = json.loads(manifest.read_text())
    data["schema_version"] = 99
    manifest.write_text(json.dumps(data))
    with pytest.raises(SnapshotError, match="fetch --full"):
        store.load(name)


def test_diff_reports_added_changed_with_fields_and_removed():
    old = make_snapshot()
    new_courses = {
        1: {"id": 1, "title": "Førstehjelp (ny)", "url": "https://x.test/a/b"},
        3: {"id": 3, "title": "Nytt kurs"},
    }
    new_dates = {
        900002: {
            "coursedate_id": 900002,
            "course_id": 1,
            "start_at": "2026-12-02",
            "seats": {"free": {"num": 3}},
        },
    }
    changes = diff_snapshots(old, make_snapshot(new_courses, new_dates))
    assert changes.courses.added == (3,)
    assert changes.courses.removed == (2,)
    assert changes.courses.changed == {1: ("title",)}
    assert changes.coursedates.changed == {900002: ("seats", "start_at")}
    assert changes.coursedates.removed == (900001,)
    assert changes
    assert not diff_snapshots(old, make_snapshot())


def test_changed_fields_descend_into_objects():
    old = {"seats": {"free": {"num": 3}, "allocated_capacity": {"num": 10}}, "title": "A"}
    new = {"seats": {"free": {"num": "2"}, "allocated_capacity": {"num": 10}}, "title": "A"}
    assert changed_fields(old, new) == ["seats.free.num"]
    assert changed_fields({"a": None}, {}) == ["a"]


def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    with RunLock(tmp_path), pytest.raises(GuardRefused, match=f"pid {os.getpid()}"):
        RunLock(tmp_path).__enter__()
    with RunLock(tmp_path):  # released: free again
        pass


def test_lock_of_a_killed_process_is_released_by_the_kernel(tmp_path):
    code = (
        "import os, sys, pathlib\n"
        "from catalog_gen.source.lock import RunLock\n"
        f"RunLock(pathlib.Path({str(tmp_path)!r})).__enter__()\n"
        "print('locked', flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == -9 and "locked" in result.stdout
    with RunLock(tmp_path):  # not blocked by the dead process's lock file
        pass


def test_snapshots_without_first_seen_load_as_seen_at_their_fetch(tmp_path):
    """Snapshots written before first_seen existed: every date was seen by that fetch."""
    store = SnapshotStore(tmp_path)
    name = store.save(make_snapshot())
    manifest_path = tmp_path / name / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["first_seen"]
    manifest_path.write_text(json.dumps(manifest))
    loaded = store.load(name)
    assert loaded.first_seen == {900001: T0, 900002: T0}


def test_first_seen_carries_over_and_stamps_new_dates():
    earlier = make_snapshot(at=T0 - timedelta(days=3))
    dates = dict(earlier.coursedates)
    dates[900003] = {"coursedate_id": 900003, "course_id": 1, "start_at": "2027-01-05"}
    del dates[900001]
    seen = first_seen(earlier, dates, T0)
    assert seen == {900002: T0 - timedelta(days=3), 900003: T0}
    assert first_seen(None, dates, T0) == dict.fromkeys(dates, T0)


@pytest.mark.parametrize(
    "text",
    [
        '[\n{"id":1},\n{"id":2,"t":"a,\\nb"}\n]\n',  # canonical: read a line at a time
        "[]\n",
        "[\n]\n",
        '[{"id":1},{"id":2}]',  # not canonical: parsed whole, same records
        '[\n  {"id": 1},\n  {"id": 2}\n]\n',
        '[\n{"id":1},\r\n{"id":2}\r\n]\r\n',
        '[\n{"id":1},\n{"id":2},\n]\n',  # a trailing comma: not JSON
        '[\n{"id":1}\n{"id":2}\n]\n',  # a missing comma: not JSON
        '[\n{"id":1},\n{"id":2}\n]\n[]\n',  # something after the list
        '[\n{"id":1},\n{"id":2',  # cut off
        '{"id":1}\n',
    ],
)
def test_records_files_read_as_json_reads_them(tmp_path, monkeypatch, text):
    """Canonical files are parsed a line at a time (to save memory): whatever the layout,
    the records, or the error, must be those of parsing the whole file."""
    path = tmp_path / "courses.json"
    path.write_bytes(text.encode())
    digest = hashlib.sha256(text.encode()).hexdigest()
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if whole is None or not isinstance(whole, list):
        with pytest.raises(SnapshotError, match=r"malformed JSON|expected a list"):
            snapshot_module._read_records(path, digest)
        return
    if text.startswith("[\n{") and "\r" not in text and "  " not in text:
        monkeypatch.setattr(snapshot_module, "_decode_records", None)  # must not be needed
    assert snapshot_module._read_records(path, digest) == whole
    with pytest.raises(SnapshotError, match="does not match its manifest digest"):
        snapshot_module._read_records(path, "0" * 64)
