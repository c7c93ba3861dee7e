"""Snapshots on disk: canonical bytes in shards, atomic save, unchanged files linked, a fetch
that finds nothing changed writing nothing, retention, damage detection, the old layout, diff,
lock."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from tests.conftest import Project, run_cli
from tests.sitecheck import lstat_tree

T0 = datetime(2026, 11, 23, 3, 15, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]
#: A snapshot written by catalog-gen's schema 1 writer (one file per kind), kept as it was.
FIXTURE = Path(__file__).parent / "fixtures" / "snapshots-v1"
V1_NAME = "000001-20261123T031500Z"


def make_snapshot(courses=None, dates=None, at=T0, reference=None, seen=None) -> Snapshot:
    """A small snapshot fetched ``at``, its dates first seen ``seen`` (default: then too) and
    unchanged since then."""
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
        reference=reference
        or {"locations": {5: {"id": 5, "title": "Sem"}}, "instructors": {}, "products": {}},
        reference_fetched_at={"locations": T0, "instructors": T0, "products": T0},
        course_sources={cid: record_digest(c) for cid, c in courses.items()},
        first_seen=dict.fromkeys(dates, seen or at),
        unchanged_since=dict.fromkeys(dates, seen or at),
    )


def edited(i: int, at=T0) -> Snapshot:
    """make_snapshot with data of its own for each ``i``."""
    courses = {1: {"id": 1, "title": f"Førstehjelp {i}"}, 2: {"id": 2, "title": "Brannvern"}}
    return make_snapshot(courses=courses, at=at, seen=T0)


def v1_snapshot() -> Snapshot:
    """The data of the schema 1 fixture, as the code that wrote it was given it."""
    url = "https://x.test/a/b"
    courses = {
        22001: {"id": 22001, "title": "Førstehjelp", "url": url, "is_active": True},
        22002: {"id": 22002, "title": "Grunnkurs i økonomi", "is_active": True},
        22103: {"id": 22103, "title": "Kurs i årsoppgjør", "is_active": True},
    }
    dates = {
        900001: {"coursedate_id": 900001, "course_id": 22001,
                 "start_at": "2026-12-01T09:00:00+01:00", "seats": {"free": {"num": 4}}},
        900002: {"coursedate_id": 900002, "course_id": 22002,
                 "start_at": "2026-10-01T09:00:00+02:00", "seats": {"free": {"num": "2"}}},
        900003: {"coursedate_id": 900003, "course_id": 22001,
                 "start_at": "2027-01-12T09:00:00+01:00", "seats": {"free": {"num": 0}}},
        900004: {"coursedate_id": 900004, "course_id": 22103,
                 "start_at": "2027-02-02T09:00:00+01:00", "title": "Kurs i årsoppgjør"},
    }  # fmt: skip
    earlier = T0 - timedelta(days=2)
    return Snapshot(
        fetched_at=T0,
        api_base="https://api.frontcore.com/v2",
        courses=courses,
        coursedates=dates,
        reference={
            "locations": {5: {"id": 5, "title": "Sem"}},
            "instructors": {7: {"id": 7, "name": "Kari"}},
            "products": {},
        },
        reference_fetched_at={"locations": earlier, "instructors": earlier, "products": T0},
        course_sources={cid: record_digest({**c, "list": True}) for cid, c in courses.items()},
        first_seen={
            900001: T0 - timedelta(days=9),
            900002: T0 - timedelta(days=9),
            900003: T0,
            900004: T0,
        },
        # Written before unchanged_since existed: nothing older than its own fetch.
        unchanged_since=dict.fromkeys(dates, T0),
    )


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by its path relative to it."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def clean_save(snapshot: Snapshot) -> dict[str, bytes]:
    """The files of ``snapshot`` saved into an empty snapshot folder."""
    with tempfile.TemporaryDirectory() as empty:
        store = SnapshotStore(Path(empty))
        return folder_bytes(Path(empty) / store.save(snapshot).name)


def stamps(folder: Path) -> dict[Path, tuple[bytes, int]]:
    """Every file and folder under ``folder``: bytes (files) and mtime."""
    return {
        p: (p.read_bytes() if p.is_file() else b"", p.stat().st_mtime_ns)
        for p in [folder, *folder.rglob("*")]
    }


def inodes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_ino for p in folder.rglob("*.json")}


# -- canonical files ------------------------------------------------------------------------------


def test_files_are_canonical_and_stable():
    courses = {
        101: {"id": 101, "title": "Grunnkurs i økonomi", "is_active": True},
        1: {"id": 1, "title": "Førstehjelp", "url": "https://x.test/a/b"},
        2: {"id": 2, "title": "Brannvern"},
    }
    files = snapshot_files(make_snapshot(courses))
    shuffled = make_snapshot(
        courses={
            2: {"title": "Brannvern", "id": 2},
            1: {"url": "https://x.test/a/b", "title": "Førstehjelp", "id": 1},
            101: {"is_active": True, "id": 101, "title": "Grunnkurs i økonomi"},
        },
    )
    assert snapshot_files(shuffled) == files  # key order and insertion order do not matter
    # Sharded by the course id's last two digits; dates go with their course.
    assert [name for name in files if "/" in name] == [
        "courses/01.json", "courses/02.json", "coursedates/01.json", "coursedates/02.json",
        "index/01.json", "index/02.json",
    ]  # fmt: skip
    shard = files["courses/01.json"].decode("utf-8")
    assert shard.splitlines()[1].startswith('{"id":1,')  # ordered by id, keys sorted
    assert shard.splitlines()[2].startswith('{"id":101,')  # by id as a number
    assert "økonomi" in shard and "\\u" not in shard  # UTF-8, not escapes
    assert "https://x.test/a/b" in shard  # slashes unescaped
    assert shard.endswith("\n")
    assert [c["id"] for c in json.loads(shard)] == [1, 101]
    assert json.loads(files["coursedates/02.json"])[0]["coursedate_id"] == 900001


def test_manifest_has_provenance_counts_and_the_digest_of_every_file():
    snapshot = make_snapshot()
    files = snapshot_files(snapshot)
    manifest = json.loads(files["manifest.json"])
    assert manifest["schema_version"] == 2
    assert manifest["fetched_at"] == "2026-11-23T03:15:00Z"
    assert manifest["api_base"] == "https://api.frontcore.com/v2"
    assert manifest["counts"] == {
        "courses": 2,
        "coursedates": 2,
        "locations": 1,
        "instructors": 0,
        "products": 0,
    }
    assert manifest["files"] == {
        name: hashlib.sha256(data).hexdigest()
        for name, data in files.items()
        if name != "manifest.json"
    }
    # Per record, in the shard's index: its digest, a course's list-item digest ("source"),
    # when a date was first seen and since when its record is unchanged.
    course, course_date = snapshot.courses[1], snapshot.coursedates[900002]
    assert json.loads(files["index/01.json"]) == [
        {"course_id": 1, "digest": record_digest(course), "source": record_digest(course)},
        {"coursedate_id": 900002, "digest": record_digest(course_date),
         "first_seen": "2026-11-23T03:15:00Z", "unchanged_since": "2026-11-23T03:15:00Z"},
    ]  # fmt: skip


# -- saving, naming, pruning ----------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    store = SnapshotStore(tmp_path / "snaps")
    original = make_snapshot()
    saved = store.save(original)
    assert (saved.name, saved.new, saved.files_linked) == ("000001-20261123T031500Z", True, 0)
    loaded = store.latest()
    assert loaded == original
    assert loaded.name == saved.name
    # Saving the loaded snapshot again gives the same bytes.
    assert snapshot_files(loaded) == snapshot_files(original)


def test_names_sequence_and_resolve(tmp_path):
    store = SnapshotStore(tmp_path)
    names = [store.save(edited(i, at=T0 + timedelta(days=i))).name for i in range(3)]
    assert store.names() == names
    assert store.resolve("2") == names[1]
    assert store.resolve("-1") == names[2]
    assert store.resolve(names[0]) == names[0]
    with pytest.raises(SnapshotError, match="no snapshot '9'"):
        store.resolve("9")


def test_prune_keeps_the_newest_and_what_they_link_to(tmp_path):
    store = SnapshotStore(tmp_path)
    snapshots = [edited(i, at=T0 + timedelta(hours=i)) for i in range(7)]
    names = [store.save(snapshot).name for snapshot in snapshots]
    assert store.prune(5) == names[:2]
    assert store.names() == names[2:]
    # Files the pruned snapshots shared with the kept ones (hard links) are still there.
    for name, snapshot in zip(names[2:], snapshots[2:], strict=True):
        assert store.load(name) == snapshot


def test_a_failed_save_leaves_no_trace(tmp_path, monkeypatch):
    store = SnapshotStore(tmp_path)
    first = store.save(make_snapshot()).name
    before = folder_bytes(tmp_path)

    def broken_rename(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", broken_rename)
    with pytest.raises(OSError):
        store.save(edited(1, at=T0 + timedelta(days=1)))
    assert folder_bytes(tmp_path) == before
    assert store.names() == [first]
    assert all(p.stat().st_nlink == 1 for p in (tmp_path / first).rglob("*.json"))


def test_leftover_incoming_folders_and_files_are_ignored_then_cleaned(tmp_path):
    store = SnapshotStore(tmp_path)
    store.save(make_snapshot())
    (tmp_path / ".incoming-abc").mkdir()
    (tmp_path / ".incoming-abc" / "courses").mkdir()
    (tmp_path / ".incoming-abc" / "courses" / "01.json").write_text("[")
    (tmp_path / ".incoming-checked").write_text("{")  # a checked.json that was never swapped in
    assert len(store.names()) == 1
    store.clean_incoming()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_damaged_snapshots_are_named_errors(tmp_path):
    store = SnapshotStore(tmp_path)
    name = store.save(make_snapshot()).name
    folder = tmp_path / name
    courses = folder / "courses" / "02.json"
    original = courses.read_bytes()
    courses.write_bytes(original.replace(b"Grunnkurs", b"Grunnkors"))
    with pytest.raises(SnapshotError, match=r"02\.json: does not match its manifest"):
        store.load(name)
    courses.unlink()
    with pytest.raises(SnapshotError, match=r"02\.json: missing"):
        store.load(name)
    courses.write_bytes(original)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["counts"]["courses"] = 3  # a shard left out of the manifest
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match="incomplete snapshot"):
        store.load(name)
    manifest["files"]["../../elsewhere.json"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match=r"unexpected file '\.\./\.\./elsewhere\.json'"):
        store.load(name)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(SnapshotError, match="malformed JSON"):
        store.load(name)


def test_a_snapshot_from_another_schema_says_what_to_do(tmp_path):
    store = SnapshotStore(tmp_path)
    name = store.save(make_snapshot()).name
    manifest = tmp_path / name / "manifest.json"
    data = json.loads(manifest.read_text())
    data["schema_version"] = 99
    manifest.write_text(json.dumps(data))
    with pytest.raises(SnapshotError, match="fetch --full"):
        store.load(name)


# -- a night costs what changed -------------------------------------------------------------------


def test_a_fetch_that_finds_nothing_changed_writes_no_snapshot(tmp_path):
    store = SnapshotStore(tmp_path)
    first = store.save(make_snapshot()).name
    before = stamps(tmp_path / first)
    night = T0 + timedelta(days=1, minutes=3)
    saved = store.save(make_snapshot(at=night, seen=T0))
    assert (saved.name, saved.new, saved.files_written, saved.bytes_written) == (first, False, 0, 0)
    assert store.names() == [first]
    assert stamps(tmp_path / first) == before  # immutable: not one byte or mtime moved
    assert json.loads((tmp_path / "checked.json").read_text()) == {
        "checked_at": "2026-11-24T03:18:00Z",
        "snapshot": first,
    }
    assert store.last_checked(first) == night  # the honest age of the data
    assert store.fetched_at(first) == T0 and store.latest().fetched_at == T0


def test_last_checked_counts_only_for_the_snapshot_it_names(tmp_path):
    store = SnapshotStore(tmp_path)
    first = store.save(edited(1)).name
    store.save(edited(1, at=T0 + timedelta(days=1)))  # unchanged: checked a day later
    assert store.last_checked(first) == T0 + timedelta(days=1)
    second = store.save(edited(2, at=T0 + timedelta(days=2))).name
    assert store.last_checked(second) == store.fetched_at(second) == T0 + timedelta(days=2)
    assert store.last_checked(first) == T0  # checked.json now names the new snapshot
    wrong_time = json.dumps({"snapshot": second, "checked_at": "yesterday"})
    for damage in ("{not json", wrong_time, "[]"):
        (tmp_path / "checked.json").write_text(damage)
        assert store.last_checked(second) == store.fetched_at(second)  # older, never newer


def test_a_check_that_cannot_be_recorded_is_a_warning(tmp_path, monkeypatch, caplog):
    store = SnapshotStore(tmp_path)
    first = store.save(edited(1)).name

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    saved = store.save(edited(1, at=T0 + timedelta(days=1)))
    assert (saved.name, saved.new) == (first, False)
    assert "could not record the time of this check" in caplog.text
    assert "No space left on device" in caplog.text
    assert store.last_checked(first) == T0  # the data only looks older
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([first, "checked.json"])  # no temporary file left behind


def test_unchanged_files_are_hard_links_into_the_previous_snapshot(tmp_path):
    courses = {cid: {"id": cid, "title": f"Kurs {cid}"} for cid in range(1000, 1030)}
    dates = {
        900000 + cid: {"coursedate_id": 900000 + cid, "course_id": cid, "seats": 5}
        for cid in courses
    }
    store = SnapshotStore(tmp_path)
    first = store.save(make_snapshot(courses, dates)).name
    dates[901007] = {**dates[901007], "seats": 4}  # one booking
    night = make_snapshot(courses, dates, at=T0 + timedelta(days=1), seen=T0)
    saved = store.save(night)
    assert saved.new and saved.files_written == 3  # the date's shard, its index, the manifest
    old, new = inodes(tmp_path / first), inodes(tmp_path / saved.name)
    assert {name for name in new if new[name] != old.get(name)} == {
        "coursedates/07.json",
        "index/07.json",
        "manifest.json",
    }
    assert saved.files_linked == len(new) - 3
    assert folder_bytes(tmp_path / saved.name) == clean_save(night)  # byte for byte
    assert store.load(saved.name) == night


KINDS_OF_EDIT = ("seats", "title", "add course", "remove course", "add date", "remove date",
                 "reference", "nothing")  # fmt: skip
EDITS = st.lists(
    st.tuples(st.sampled_from(KINDS_OF_EDIT), st.integers(0, 10**6)), min_size=1, max_size=5
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nights=EDITS)
def test_any_night_saves_exactly_what_a_clean_save_writes(nights):
    """Night after night of edits: each snapshot saved by linking what did not change is,
    byte for byte, the snapshot a save into an empty folder writes, and loads as the data."""
    courses = {cid: {"id": cid, "title": f"Kurs {cid}"} for cid in range(2000, 2040, 3)}
    dates = {
        900000 + cid * 2 + k: {"coursedate_id": 900000 + cid * 2 + k, "course_id": cid, "seats": k}
        for cid in courses
        for k in range(2)
    }
    reference = {"locations": {5: {"id": 5, "title": "Sem"}}, "instructors": {}, "products": {}}
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: None)  # durability is not what is tested here
        store = SnapshotStore(Path(folder))
        store.save(make_snapshot(dict(courses), dict(dates), reference=reference))
        for night, (edit, pick) in enumerate(nights, start=1):
            apply_edit(edit, pick, courses, dates, reference)
            at = T0 + timedelta(days=night)
            snapshot = make_snapshot(
                dict(courses), dict(dates), at=at, reference=reference, seen=T0
            )
            before = store.latest()
            saved = store.save(snapshot)
            unchanged = dataclass_replace(snapshot, fetched_at=before.fetched_at) == before
            assert saved.new is not unchanged
            if saved.new:
                assert folder_bytes(Path(folder) / saved.name) == clean_save(snapshot)
                assert store.load(saved.name) == snapshot
            else:
                assert saved.name == before.name and store.last_checked(saved.name) == at


def apply_edit(edit, pick, courses, dates, reference) -> None:
    """One night's change to the catalog (in place)."""
    ids = sorted(courses)
    date_ids = sorted(dates)
    if edit == "seats" and date_ids:
        did = date_ids[pick % len(date_ids)]
        dates[did] = {**dates[did], "seats": pick % 7 + 10}
    elif edit == "title" and ids:
        cid = ids[pick % len(ids)]
        courses[cid] = {**courses[cid], "title": f"Kurs {cid} ({pick})"}
    elif edit == "add course":
        cid = 3000 + pick % 500
        courses[cid] = {"id": cid, "title": "Nytt"}
        dates[800000 + pick % 500] = {"coursedate_id": 800000 + pick % 500, "course_id": cid}
    elif edit == "remove course" and ids:
        cid = ids[pick % len(ids)]
        del courses[cid]
        for did in [d for d, r in dates.items() if r["course_id"] == cid]:
            del dates[did]
    elif edit == "add date" and ids:
        dates[700000 + pick % 999] = {
            "coursedate_id": 700000 + pick % 999,
            "course_id": ids[pick % len(ids)],
        }
    elif edit == "remove date" and date_ids:
        del dates[date_ids[pick % len(date_ids)]]
    elif edit == "reference":
        reference["locations"] = {**reference["locations"], 6: {"id": 6, "title": f"Sted {pick}"}}


def test_without_hard_links_unchanged_files_are_copied(tmp_path, monkeypatch):
    store = SnapshotStore(tmp_path)
    first = store.save(edited(1)).name

    def no_links(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    night = edited(2, at=T0 + timedelta(days=1))
    saved = store.save(night)
    assert saved.new and saved.files_linked == 0
    assert folder_bytes(tmp_path / saved.name) == clean_save(night)
    assert not set(inodes(tmp_path / first).values()) & set(inodes(tmp_path / saved.name).values())


def test_a_damaged_file_is_never_linked_into_the_next_snapshot(tmp_path):
    store = SnapshotStore(tmp_path)
    first = store.save(make_snapshot()).name
    shard = tmp_path / first / "coursedates" / "01.json"
    shard.write_bytes(shard.read_bytes().replace(b"2026-12-01", b"2026-12-09"))  # bit rot
    night = make_snapshot(at=T0 + timedelta(days=1), seen=T0)
    saved = store.save(night)  # the same data: but the old snapshot no longer holds it
    assert saved.new and saved.files_written == 2  # that shard and the manifest
    assert folder_bytes(tmp_path / saved.name) == clean_save(night)
    assert store.load(saved.name) == night


@pytest.mark.parametrize("where", ["link", "fsync", "rename"])
def test_a_killed_save_leaves_the_old_snapshots_intact(tmp_path, where):
    """kill -9 while linking, while writing, or just before the rename: the old snapshots keep
    every byte (and lose the links the dead run made, once its folder is cleaned)."""
    store = SnapshotStore(tmp_path)
    store.save(edited(1))
    second = store.save(edited(2, at=T0 + timedelta(days=1))).name
    before = folder_bytes(tmp_path)
    code = (
        "import os, pathlib\n"
        "from datetime import timedelta\n"
        "from catalog_gen.source.store import SnapshotStore\n"
        "from tests.test_snapshot import T0, edited\n"
        f"real, calls = os.{where}, []\n"
        "def dying(*args, **kwargs):\n"
        "    calls.append(1)\n"
        "    if len(calls) == 2 or os.rename is dying:\n"
        "        os.kill(os.getpid(), 9)\n"
        "    return real(*args, **kwargs)\n"
        f"os.{where} = dying\n"
        f"SnapshotStore(pathlib.Path({str(tmp_path)!r})).save(edited(3, T0 + timedelta(days=2)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True)
    assert result.returncode == -9, result.stderr.decode()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".incoming-")]  # it died
    assert store.names()[-1] == second and store.latest() == edited(2, T0 + timedelta(days=1))
    store.clean_incoming()
    assert folder_bytes(tmp_path) == before
    assert max(p.stat().st_nlink for p in (tmp_path / second).rglob("*.json")) <= 2
    night = edited(3, at=T0 + timedelta(days=2))
    saved = store.save(night)
    assert folder_bytes(tmp_path / saved.name) == clean_save(night)


# -- links in the snapshot folder are never followed ----------------------------------------------

DAY = "2026-11-23T04:00:00+01:00"


def fetch_after_a_change(project: Project, sample, title: str):
    sample.change_course(sorted(sample.courses)[0], title=title)
    return project.run("fetch", "--now", DAY)


@pytest.mark.slow
def test_an_old_snapshot_replaced_by_a_link_is_pruned_as_the_link_never_through_it(
    project, sample, tmp_path
):
    """The snapshot folder itself may be a link (kept on another disk, say); inside it, an old
    snapshot moved elsewhere and linked back, and a link left as an ``.incoming-*`` folder,
    are names: the fetch that prunes removes each as a link, and what they point at keeps
    every file, byte and inode."""
    (tmp_path / "catalog.toml").write_text("keep_snapshots = 2\n[frontcore]\nrate_limit = 5\n")
    (tmp_path / "disk").mkdir()
    (tmp_path / "snapshots").symlink_to(tmp_path / "disk", target_is_directory=True)
    assert project.run("fetch", "--now", DAY).returncode == 0
    assert fetch_after_a_change(project, sample, "Ny tittel 1").returncode == 0
    store = SnapshotStore(tmp_path / "snapshots")
    oldest, newest = store.names()
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "snapshots" / oldest).rename(outside / oldest)
    (outside / oldest / "notes.txt").write_text("kept by the operator\n")
    (tmp_path / "snapshots" / oldest).symlink_to(outside / oldest, target_is_directory=True)
    (outside / "leftover").mkdir()
    (outside / "leftover" / "data.json").write_text("[]\n")
    (tmp_path / "snapshots" / ".incoming-x").symlink_to(outside / "leftover")
    before = lstat_tree(outside)

    pruning = fetch_after_a_change(project, sample, "Ny tittel 2")
    assert pruning.returncode == 0, pruning.stderr
    assert "internal error" not in pruning.stderr
    assert lstat_tree(outside) == before
    assert not os.path.lexists(tmp_path / "snapshots" / oldest)
    assert not os.path.lexists(tmp_path / "snapshots" / ".incoming-x")
    assert store.names()[0] == newest and len(store.names()) == 2
    assert (tmp_path / "snapshots").is_symlink()  # the operator's link to the folder stays


@pytest.mark.slow
def test_the_newest_snapshot_as_a_link_is_refused_in_one_line_and_never_linked_from(
    project, sample, tmp_path
):
    """A link where the newest snapshot should be is not read (a one-line error naming it,
    for fetch and diff); ``fetch --full``, which the error suggests, sets it aside with a
    warning and writes every file anew, linking nothing from behind the link."""
    assert project.run("fetch", "--now", DAY).returncode == 0
    assert fetch_after_a_change(project, sample, "Ny tittel 1").returncode == 0
    newest = SnapshotStore(tmp_path / "snapshots").names()[-1]
    outside = tmp_path / "outside"
    (tmp_path / "snapshots" / newest).rename(outside)
    (tmp_path / "snapshots" / newest).symlink_to(outside, target_is_directory=True)
    before = lstat_tree(outside)

    for refused in (fetch_after_a_change(project, sample, "Ny tittel 2"), project.run("diff")):
        assert refused.returncode == 1
        (line,) = refused.stderr.splitlines()
        assert line.startswith("error: ") and newest in line and "symbolic link" in line
    full = project.run("fetch", "--full", "--now", DAY)
    assert full.returncode == 0, full.stderr
    assert "warning: " in full.stderr and newest in full.stderr
    assert lstat_tree(outside) == before
    linked_out = {info[2] for info in before.values()}
    saved = tmp_path / "snapshots" / SnapshotStore(tmp_path / "snapshots").names()[-1]
    assert not {p.lstat().st_ino for p in saved.rglob("*")} & linked_out


def test_a_file_of_a_snapshot_that_is_a_link_is_neither_read_nor_linked(tmp_path):
    store = SnapshotStore(tmp_path / "snapshots")
    first = store.save(make_snapshot()).name
    shard = tmp_path / "snapshots" / first / "coursedates" / "01.json"
    outside = tmp_path / "outside.json"
    outside.write_bytes(shard.read_bytes())  # the very bytes: only the link is wrong
    shard.unlink()
    shard.symlink_to(outside)
    with pytest.raises(SnapshotError, match=r"01\.json is a symbolic link"):
        store.load(first)
    night = make_snapshot(at=T0 + timedelta(days=1), seen=T0)
    saved = store.save(night)
    copied = tmp_path / "snapshots" / saved.name / "coursedates" / "01.json"
    assert not copied.is_symlink() and copied.stat().st_ino != outside.stat().st_ino
    assert outside.stat().st_nlink == 1
    assert store.load(saved.name) == night


def test_a_link_at_the_lock_is_refused_and_nothing_is_written_through_it(tmp_path):
    folder = tmp_path / "snapshots"
    folder.mkdir()
    notes = tmp_path / "notes.txt"
    notes.write_text("the operator's notes\n")
    (folder / ".lock").symlink_to(notes)
    with pytest.raises(SnapshotError, match=r"\.lock is a symbolic link"):
        RunLock(folder).__enter__()
    assert notes.read_text() == "the operator's notes\n"
    (folder / ".lock").unlink()
    (folder / ".lock").symlink_to(tmp_path / "nowhere")  # dangling: nothing is made there
    with pytest.raises(SnapshotError, match=r"\.lock is a symbolic link"):
        RunLock(folder).__enter__()
    assert not os.path.lexists(tmp_path / "nowhere")


# -- snapshots written before sharding ------------------------------------------------------------


def test_a_snapshot_in_the_schema_1_layout_is_read(tmp_path):
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    store = SnapshotStore(tmp_path)
    assert store.latest() == v1_snapshot()
    assert sorted(p.name for p in (tmp_path / V1_NAME).iterdir()) == [
        "coursedates.json", "courses.json", "instructors.json", "locations.json",
        "manifest.json", "products.json",
    ]  # fmt: skip
    # The next fetch writes the sharded layout; the same data compares equal across layouts.
    night = dataclass_replace(v1_snapshot(), fetched_at=T0 + timedelta(days=1))
    saved = store.save(night)
    assert saved.new and (tmp_path / saved.name / "coursedates" / "01.json").is_file()
    assert saved.files_linked == 3  # the reference lists kept their files and their bytes
    assert folder_bytes(tmp_path / saved.name) == clean_save(night)
    assert not diff_snapshots(store.load(V1_NAME), store.load(saved.name))


def test_snapshots_without_first_seen_load_as_seen_at_their_fetch(tmp_path):
    """Schema 1 snapshots written before first_seen existed: that fetch saw every date."""
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    manifest_path = tmp_path / V1_NAME / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["first_seen"]
    manifest_path.write_text(json.dumps(manifest))
    loaded = SnapshotStore(tmp_path).load(V1_NAME)
    assert loaded.first_seen == dict.fromkeys(v1_snapshot().coursedates, T0)


def test_diff_and_git_diff_read_across_layouts(tmp_path):
    snapshots = tmp_path / "snapshots"
    shutil.copytree(FIXTURE, snapshots)
    (tmp_path / "catalog.toml").write_text("")
    data = v1_snapshot()
    dates = dict(data.coursedates)
    dates[900003] = {**dates[900003], "seats": {"free": {"num": 3}}}
    courses = {**data.courses, 22002: {**data.courses[22002], "title": "Økonomi for ledere"}}
    night = dataclass_replace(
        data, courses=courses, coursedates=dates, fetched_at=T0 + timedelta(days=1)
    )
    new = SnapshotStore(snapshots).save(night).name
    result = run_cli(tmp_path, "diff", "--json")
    assert result.returncode == 0, result.stderr
    differences = json.loads(result.stdout)
    assert differences.pop("changes")["new"] == differences["new"]  # the change report
    assert differences == {
        "old": V1_NAME, "new": new, "differ": True,
        "courses": {"added": [], "changed": {"22002": ["title"]}, "removed": []},
        "coursedates": {"added": [], "changed": {"900003": ["seats.free.num"]}, "removed": []},
    }  # fmt: skip
    # Between two sharded snapshots, git diff shows the changed records' lines, nothing else.
    later = dict(dates)
    later[900001] = {**later[900001], "seats": {"free": {"num": 1}}}
    newer = SnapshotStore(snapshots).save(
        dataclass_replace(night, coursedates=later, fetched_at=T0 + timedelta(days=2))
    )
    git = subprocess.run(
        ["git", "diff", "--no-index", "--stat=200", "--", new, newer.name],
        cwd=snapshots, capture_output=True, text=True,
    )  # fmt: skip
    changed = sorted(line.split("|")[0].strip() for line in git.stdout.splitlines() if "|" in line)
    assert changed == [
        f"{new} => {newer.name}/coursedates/01.json",
        f"{new} => {newer.name}/index/01.json",
        f"{new} => {newer.name}/manifest.json",
    ] or all(p.endswith(("coursedates/01.json", "index/01.json", "manifest.json")) for p in changed)
    patch = subprocess.run(
        ["git", "diff", "--no-index", "-U0", "--", f"{new}/coursedates/01.json",
         f"{newer.name}/coursedates/01.json"],
        cwd=snapshots, capture_output=True, text=True,
    ).stdout  # fmt: skip
    removed = [line for line in patch.splitlines() if line.startswith("-{")]
    added = [line for line in patch.splitlines() if line.startswith("+{")]
    assert len(removed) == len(added) == 1 and '"coursedate_id":900001' in added[0]


def dataclass_replace(snapshot: Snapshot, **changes) -> Snapshot:
    from dataclasses import replace

    return replace(snapshot, **changes)


# -- diff and lock --------------------------------------------------------------------------------


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


def test_a_killed_run_leaves_neither_its_forked_workers_nor_its_lock(tmp_path):
    """A run killed (kill -9, out of memory) while its forked workers wait for work: they
    end with it, so the next night's run takes the lock (a pool's worker would otherwise wait
    for ever, sharing the lock's open file)."""
    code = (
        "import multiprocessing, os, sys, pathlib, time\n"
        "from catalog_gen.site import forked\n"
        "from catalog_gen.source.lock import RunLock\n"
        f"RunLock(pathlib.Path({str(tmp_path)!r})).__enter__()\n"
        "pool = forked.pool(2)\n"
        "pool.submit(time.sleep, 60)\n"
        "time.sleep(0.5)\n"
        "print(*(p.pid for p in multiprocessing.active_children()), flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    workers = [int(pid) for pid in result.stdout.split()]
    assert result.returncode == -9 and len(workers) == 2, result.stderr
    deadline = time.monotonic() + 10
    while any(map(_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_running, workers))
    with RunLock(tmp_path):
        pass


def test_a_forked_process_holds_no_copy_of_the_runs_lock(tmp_path):
    """A process forked while a run holds its lock closes its copy of the lock's file at
    once (the run still holds the lock): it cannot keep the lock past the run."""
    with RunLock(tmp_path) as lock:
        assert lock._fd is not None
        child = os.fork()
        if child == 0:  # pragma: no cover (the child)
            try:
                os.fstat(lock._fd)
                os._exit(1)  # still open
            except OSError:
                os._exit(0)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        os.fstat(lock._fd)  # the run's own, open
        with pytest.raises(GuardRefused):  # and held
            RunLock(tmp_path).__enter__()


def _running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie has)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


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
            snapshot_module._read_records(tmp_path, path.name, digest)
        return
    if text.startswith("[\n{") and "\r" not in text and "  " not in text:
        monkeypatch.setattr(snapshot_module, "_decode_records", None)  # must not be needed
    assert snapshot_module._read_records(tmp_path, path.name, digest) == whole
    with pytest.raises(SnapshotError, match="does not match its manifest digest"):
        snapshot_module._read_records(tmp_path, path.name, "0" * 64)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES)
def test_the_one_canonical_json_is_jsons_spelling_whoever_writes_it(value):
    """One canonical JSON (snapshot.canonical_bytes) serves the snapshot's lines, record
    digests and the model's values: orjson writes it when its bytes are json's, json when a
    float or a huge integer would make them differ."""
    from catalog_gen.snapshot import canonical_bytes

    try:
        expected = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        expected_bytes = expected.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: refused at the API boundary
        return
    assert canonical_bytes(value) == expected_bytes
