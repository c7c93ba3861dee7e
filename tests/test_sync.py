"""The diff-check against a real emulator: what each run fetches, counted from its request log."""

from __future__ import annotations

import math
import re
import time
from datetime import date, timedelta

import pytest

from catalog_gen.config import SyncSettings
from catalog_gen.demo.sample import generate_catalog
from catalog_gen.errors import ApiError, AuthError, GuardRefused, SnapshotError
from catalog_gen.source.client import FrontcoreClient
from catalog_gen.source.fetch import run_fetch
from catalog_gen.source.lock import RunLock
from catalog_gen.source.store import SnapshotStore
from catalog_gen.source.sync import sync_catalog
from catalog_gen.source.transport import RateLimiter, Transport
from tests.conftest import API_KEY, NOW, TODAY, max_requests_in_any_second

DETAIL = re.compile(r"^(/api)?/v2/courses/\d+$")


def paths(emulator, pattern: str) -> list:
    return [r for r in emulator.requests if re.search(pattern, r.path)]


def details(emulator) -> list:
    return [r for r in emulator.requests if DETAIL.match(r.path)]


def latest(project):
    return SnapshotStore(project.config.snapshot_path).latest()


@pytest.fixture
def sent(monkeypatch) -> list[float]:
    """When each request left the client: the moments the rate limiter let it go.

    The limit is judged on these, not on the emulator's arrival log: the emulator runs in this
    process and shares its GIL, so a thread serialising a 1 MB page can hold one request's
    arrival back by a few hundred milliseconds and make the next ones look bunched. The server
    side is judged by its own limiter: not a single 429.
    """
    moments: list[float] = []
    real_acquire = RateLimiter.acquire

    def acquire(self):
        real_acquire(self)
        moments.append(time.monotonic())

    monkeypatch.setattr(RateLimiter, "acquire", acquire)
    return moments


@pytest.mark.slow
def test_a_thousand_courses_cost_pages_not_requests_per_course(emulator_for, tmp_path, sent):
    from tests.conftest import Project

    catalog = generate_catalog(1000, today=TODAY)
    emulator = emulator_for(catalog)
    (tmp_path / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\n")
    project = Project(tmp_path, emulator)
    total_dates = len(catalog.coursedates)

    # Night 1: full pass.
    report = run_fetch(project.config, project.access(), now=NOW)
    first = list(emulator.requests)
    lists = paths(emulator, r"/v2/courses$")
    batches = paths(emulator, r"/v2/batch/coursedates$")
    assert report.mode == "full"
    assert report.courses == 1000 and report.coursedates == total_dates
    assert len(lists) == math.ceil(1000 / 250) + 1  # 1000 is a multiple of 250: one empty page
    assert details(emulator) == []  # complete list items need no detail requests
    chunks = math.ceil(1000 / 100)
    pages_per_chunk = math.ceil((total_dates / chunks + 1) / 250)
    assert len(batches) <= chunks * (pages_per_chunk + 1)
    assert len(first) == report.requests < 60  # grows with courses/250, not with courses
    assert all(r.status == 200 for r in first)  # polite: not a single 429
    assert len(sent) == len(first) and max_requests_in_any_second(sent) <= 5
    print(f"\nfull pass: {report.requests} requests, {total_dates} dates, {report.seconds:.1f} s")

    # Night 2: nothing changed.
    emulator.clear_log()
    sent.clear()
    report = run_fetch(project.config, project.access(), now=NOW + timedelta(days=1))
    assert report.mode == "incremental"
    assert details(emulator) == []
    assert paths(emulator, "locations|instructors|products") == []  # reference TTL not expired
    upcoming = paths(emulator, r"/batch/coursedates$")
    assert upcoming and all(r.params.get("end_date_at_min") for r in upcoming)
    assert report.courses_changed == report.courses_added == report.courses_removed == 0
    assert all(r.status == 200 for r in emulator.requests)
    assert max_requests_in_any_second(sent) <= 5
    print(f"no change: {report.requests} requests, {report.seconds:.1f} s")

    # Night 3: three courses changed.
    changed = sorted(catalog.courses)[10:13]
    for cid in changed:
        catalog.change_course(cid, title=catalog.courses[cid]["title"] + " (oppdatert)")
    emulator.clear_log()
    sent.clear()
    report = run_fetch(project.config, project.access(), now=NOW + timedelta(days=2))
    assert len(details(emulator)) <= 3
    assert report.courses_changed == 3
    assert report.requests == len(emulator.requests) == len(sent)
    assert all(r.status == 200 for r in emulator.requests)
    assert max_requests_in_any_second(sent) <= 5
    print(f"3 changed: {report.requests} requests, {report.seconds:.1f} s")


@pytest.mark.slow
def test_summary_list_items_are_completed_only_when_new_or_changed(emulator_for, tmp_path):
    from tests.conftest import Project

    catalog = generate_catalog(20, today=TODAY)
    emulator = emulator_for(catalog, course_list="summary")
    (tmp_path / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\n")
    project = Project(tmp_path, emulator)

    report = run_fetch(project.config, project.access(), now=NOW)
    assert len(details(emulator)) == report.details_fetched == 20
    stored = latest(project).courses
    assert all("text_description" in c for c in stored.values())

    emulator.clear_log()
    run_fetch(project.config, project.access(), now=NOW)
    assert details(emulator) == []

    changed = sorted(catalog.courses)[:3]
    for cid in changed:
        catalog.change_course(cid, text_description="<p>Ny beskrivelse</p>")
    new_id = catalog.add_course("Helt nytt kurs", dates=2)
    emulator.clear_log()
    report = run_fetch(project.config, project.access(), now=NOW)
    assert sorted(int(r.path.rsplit("/", 1)[1]) for r in details(emulator)) == sorted(
        [*changed, new_id]
    )
    snapshot = latest(project)
    assert snapshot.courses[changed[0]]["text_description"] == "<p>Ny beskrivelse</p>"
    assert report.courses_added == 1 and report.courses_changed == 3


@pytest.mark.slow
def test_incremental_refreshes_seats_keeps_past_dates_and_sees_removals(project, sample):
    run_fetch(project.config, project.access(), now=NOW)
    before = latest(project)
    today = TODAY.isoformat()
    upcoming = [
        d
        for d in before.coursedates.values()
        if d["start_at"] >= today and d.get("deleted_at") is None
    ]
    past = [d for d in before.coursedates.values() if d["start_at"] < today]
    assert upcoming and past

    seat_date = upcoming[0]["coursedate_id"]
    sample.set_free_seats(seat_date, 1)
    doomed_course = next(cid for cid in sorted(sample.courses) if cid != upcoming[0]["course_id"])
    sample.remove_course(doomed_course)
    deleted_date = next(d["coursedate_id"] for d in upcoming[1:] if d["course_id"] != doomed_course)
    sample.delete_date(deleted_date)
    new_course = sample.add_course("Kurs i årsoppgjør", dates=2)

    project.emulator.clear_log()
    report = run_fetch(project.config, project.access(), now=NOW)
    after = latest(project)

    assert int(after.coursedates[seat_date]["seats"]["free"]["num"]) == 1
    assert doomed_course not in after.courses
    assert all(d["course_id"] != doomed_course for d in after.coursedates.values())
    assert after.coursedates[deleted_date]["deleted_at"]
    assert new_course in after.courses
    assert sum(d["course_id"] == new_course for d in after.coursedates.values()) == 2
    # Dates past the recent window come from the snapshot: only new courses are asked for
    # dates without an end filter.
    for request in paths(project.emulator, r"/batch/coursedates$"):
        if "end_date_at_min" not in request.params:
            assert request.params["course_ids[]"] == [str(new_course)]
    for d in past:
        if d["course_id"] != doomed_course:
            assert after.coursedates[d["coursedate_id"]] == d
    assert report.courses_removed == 1 and report.courses_added == 1
    assert report.coursedates_changed >= 2


@pytest.mark.slow
def test_reference_data_waits_for_its_ttl(project):
    run_fetch(project.config, project.access(), now=NOW)
    assert len(paths(project.emulator, "locations|instructors|products")) == 3
    project.emulator.clear_log()
    run_fetch(project.config, project.access(), now=NOW + timedelta(days=6))
    assert paths(project.emulator, "locations|instructors|products") == []
    project.emulator.clear_log()
    report = run_fetch(project.config, project.access(), now=NOW + timedelta(days=7, hours=1))
    assert len(paths(project.emulator, "locations|instructors|products")) == 3
    assert report.reference_refreshed == ("locations", "instructors", "products")
    products = paths(project.emulator, "products")[0]
    assert products.params["id_type"] == ["2"]


@pytest.mark.slow
def test_a_night_costs_what_changed_on_disk(emulator_for, tmp_path):
    """Nothing changed: no snapshot, the folder grows by the check's few bytes. A handful of
    changes: a new snapshot whose unchanged files are hard links, at most a quarter of one
    snapshot's size on disk (each hard-linked file counted once)."""
    from tests.conftest import Project

    catalog = generate_catalog(300, today=TODAY)
    emulator = emulator_for(catalog)
    (tmp_path / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\n")
    project = Project(tmp_path, emulator)
    store = SnapshotStore(project.config.snapshot_path)
    first = run_fetch(project.config, project.access(), now=NOW)
    one_snapshot = store.disk_usage()

    before = store.disk_usage()
    quiet = run_fetch(project.config, project.access(), now=NOW + timedelta(days=1))
    assert (quiet.saved, quiet.snapshot, quiet.bytes_written) == (False, first.snapshot, 0)
    assert store.names() == [first.snapshot]
    assert store.disk_usage() - before <= 0.01 * one_snapshot

    courses = sorted(catalog.courses)
    for cid in courses[10:13]:
        catalog.change_course(cid, title=catalog.courses[cid]["title"] + " (oppdatert)")
    bookable = [
        did
        for did, record in sorted(catalog.coursedates.items())
        if record["start_at"][:10] > "2026-12-01" and record["seats"]["allocated_capacity"]["num"]
    ]
    for did in bookable[-2:]:
        catalog.set_free_seats(did, 0)
    before = store.disk_usage()
    busy = run_fetch(project.config, project.access(), now=NOW + timedelta(days=2))
    assert busy.saved and busy.courses_changed == 3 and busy.coursedates_changed >= 2
    growth = store.disk_usage() - before
    print(f"\n300 courses: one snapshot {one_snapshot:,} B on disk; no change +0 B; "
          f"a handful of changes +{growth:,} B ({100 * growth / one_snapshot:.1f} %)")  # fmt: skip
    assert growth <= 0.25 * one_snapshot
    assert busy.bytes_written <= growth
    assert store.load(busy.snapshot).courses[courses[10]]["title"].endswith("(oppdatert)")


@pytest.mark.slow
def test_reference_lists_refreshed_unchanged_cost_only_a_manifest(project):
    """After the reference TTL the lists are fetched again; when they did not change, the new
    snapshot (it records the new fetch time) links every data file of the last one."""
    first = run_fetch(project.config, project.access(), now=NOW)
    later = run_fetch(project.config, project.access(), now=NOW + timedelta(days=7, hours=1))
    assert later.reference_refreshed and not later.data_changed
    assert later.saved and later.snapshot != first.snapshot
    manifest = project.config.snapshot_path / later.snapshot / "manifest.json"
    assert later.bytes_written == manifest.stat().st_size
    reloaded = latest(project)
    assert reloaded.reference_fetched_at["locations"] == NOW + timedelta(days=7, hours=1)


@pytest.mark.slow
def test_full_flag_ignores_the_last_snapshot(project):
    run_fetch(project.config, project.access(), now=NOW)
    project.emulator.clear_log()
    report = run_fetch(project.config, project.access(), now=NOW, full=True)
    assert report.mode == "full"
    assert len(paths(project.emulator, "locations|instructors|products")) == 3
    assert not report.data_changed


@pytest.mark.slow
def test_full_sets_aside_a_snapshot_it_cannot_read(project):
    """The error for a damaged snapshot (or one from another schema) says to run
    'fetch --full'; that must work, and make a good snapshot again."""
    first = run_fetch(project.config, project.access(), now=NOW)
    shard = next((project.config.snapshot_path / first.snapshot / "coursedates").iterdir())
    shard.write_bytes(shard.read_bytes().replace(b"{", b"{ ", 1))
    with pytest.raises(SnapshotError, match="does not match its manifest"):
        run_fetch(project.config, project.access(), now=NOW + timedelta(days=1))
    report = run_fetch(project.config, project.access(), now=NOW + timedelta(days=1), full=True)
    assert report.saved and report.mode == "full" and report.snapshot != first.snapshot
    assert latest(project).name == report.snapshot


@pytest.mark.slow
def test_new_dates_are_stamped_with_the_fetch_that_first_saw_them(project, sample):
    """first_seen survives incremental and --full fetches; only new dates get the new time."""
    run_fetch(project.config, project.access(), now=NOW)
    first = latest(project)
    assert set(first.first_seen.values()) == {NOW}
    new_course = sample.add_course("Kurs i årsoppgjør", dates=2)
    later = NOW + timedelta(days=1)
    run_fetch(project.config, project.access(), now=later, full=True)
    second = latest(project)
    new_dates = {d for d, r in second.coursedates.items() if r["course_id"] == new_course}
    assert len(new_dates) == 2
    assert {second.first_seen[d] for d in new_dates} == {later}
    assert all(second.first_seen[d] == NOW for d in first.coursedates if d in second.coursedates)


@pytest.mark.slow
def test_shrink_guard_refuses_and_keeps_the_last_snapshot(project, sample):
    run_fetch(project.config, project.access(), now=NOW)
    before = project.snapshot_bytes()
    for cid in sorted(sample.courses)[: len(sample.courses) // 3]:
        sample.remove_course(cid)
    with pytest.raises(GuardRefused, match="--allow-shrink") as caught:
        run_fetch(project.config, project.access(), now=NOW)
    assert caught.value.exit_code == 3
    assert project.snapshot_bytes() == before
    report = run_fetch(project.config, project.access(), now=NOW, allow_shrink=True)
    assert report.courses_removed == 16


def test_a_second_run_on_the_same_folder_is_refused(project):
    with RunLock(project.config.snapshot_path), pytest.raises(GuardRefused, match="holds"):
        run_fetch(project.config, project.access(), now=NOW)
    assert project.emulator.requests == []


def test_a_wrong_key_fails_at_once_with_one_request(project):
    with pytest.raises(AuthError) as caught:
        run_fetch(project.config, project.access("wrong-key-0000000000"), now=NOW)
    assert len(project.emulator.requests) == 1
    assert "wrong-key" not in str(caught.value)
    assert (
        not (project.config.snapshot_path).exists()
        or SnapshotStore(project.config.snapshot_path).names() == []
    )


def test_wrong_key_reported_with_status_200_is_still_an_auth_error(emulator_for, sample, tmp_path):
    from tests.conftest import Project

    emulator = emulator_for(sample, auth_error_status=200)
    project = Project(tmp_path, emulator)
    (tmp_path / "catalog.toml").write_text("")
    with pytest.raises(AuthError):
        run_fetch(project.config, project.access("nope-nope-nope"), now=NOW)
    assert len(emulator.requests) == 1


@pytest.mark.slow
def test_faults_are_retried_and_the_snapshot_is_still_exact(project, sample):
    run_fetch(project.config, project.access(), now=NOW, full=True)
    reference = latest(project)
    emulator = project.emulator
    emulator.inject("500", path="/courses")
    emulator.inject("drop", path="/batch/coursedates")
    emulator.inject("truncate", path="/batch/coursedates")
    emulator.inject("error200", path="/locations")
    emulator.inject("429", path="/instructors")
    emulator.inject("gzip", path="/batch/coursedates")  # a damaged compressed body
    emulator.inject("charset", path="/orders/products")  # UTF-16: not JSON's UTF-8
    emulator.clear_log()
    report = run_fetch(project.config, project.access(), now=NOW, full=True)
    assert report.retries == 7
    assert report.rate_limited == 1
    snapshot = latest(project)
    assert snapshot.courses == reference.courses
    assert snapshot.coursedates == reference.coursedates
    assert snapshot.reference == reference.reference


@pytest.mark.slow
def test_persistent_failure_is_an_api_error_and_nothing_is_saved(project):
    run_fetch(project.config, project.access(), now=NOW)
    before = project.snapshot_bytes()
    project.emulator.inject("503", times=50, path="/batch/coursedates")
    config = project.config
    from dataclasses import replace

    config = replace(config, frontcore=replace(config.frontcore, max_retries=1))
    with pytest.raises(ApiError, match=r"HTTP 503 \(gave up after 1 retry\)"):
        run_fetch(config, project.access(), now=NOW)
    assert project.snapshot_bytes() == before


# --- fetch fidelity ---------------------------------------------------------------------------


def sync_small_pages(emulator, previous=None, page_size: int = 10):
    """One sync against ``emulator`` with pages of ``page_size`` courses (48 courses: 5 pages)."""
    transport = Transport(emulator.base_url, API_KEY, rate_limit=50)
    client = FrontcoreClient(transport, page_size=page_size)
    with transport:
        outcome = sync_catalog(
            client, previous, now=NOW, api_base=emulator.base_url, settings=SyncSettings()
        )
    return outcome.snapshot, client


def move_a_course_between_pages(emulator, catalog) -> int:
    """When page 2 of the course list is asked for, the course updated longest ago is updated:
    listed most recently updated first, it jumps from the last page to page 1, already read."""
    moved = min(catalog.courses, key=lambda cid: catalog.courses[cid]["updated_at"])
    done = []

    def hook(path, params):
        if path.endswith("/courses") and params.get("page") == ["2"] and not done:
            done.append(True)
            catalog.change_course(moved, title="Oppdatert mens lista ble lest")

    emulator.on_request = hook
    return moved


@pytest.mark.slow
@pytest.mark.parametrize("ordering", ["honoured", "ignored"])
def test_a_course_updated_between_two_pages_is_not_skipped(emulator_for, sample, ordering):
    emulator = emulator_for(
        sample, rate_limit=0, course_order="updated", course_ordering=ordering == "honoured"
    )
    moved = move_a_course_between_pages(emulator, sample)
    snapshot, client = sync_small_pages(emulator)
    assert sorted(snapshot.courses) == sorted(sample.courses)
    assert snapshot.courses[moved]["title"] == "Oppdatert mens lista ble lest"
    assert {d["course_id"] for d in snapshot.coursedates.values()} >= {moved}
    lists = [r for r in emulator.requests if r.path.endswith("/courses")]
    assert all(r.params["order_by"] == ["id"] for r in lists)
    # In id order nothing moves; a server that ignores the order is read until two reads agree.
    assert client.course_list_reads == (1 if ordering == "honoured" else 3)


@pytest.mark.slow
def test_a_course_missing_from_the_list_is_confirmed_before_it_is_dropped(emulator_for, sample):
    emulator = emulator_for(sample, rate_limit=0)
    first, _ = sync_small_pages(emulator)
    gone = sorted(sample.courses)[3]
    sample.remove_course(gone)
    emulator.clear_log()
    second, client = sync_small_pages(emulator, previous=first)
    assert gone not in second.courses
    assert client.course_list_reads == 2  # one read more, only because a course went


@pytest.mark.slow
def test_details_are_fetched_when_a_field_the_site_reads_is_missing(emulator_for, sample, tmp_path):
    from tests.conftest import Project

    # Texts are in the list items, the booking e-mail is not: it comes from the detail GET.
    emulator = emulator_for(sample, list_omits=("email_booking",))
    (tmp_path / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\n")
    project = Project(tmp_path, emulator)
    report = run_fetch(project.config, project.access(), now=NOW)
    assert report.details_fetched == len(sample.courses) == len(details(emulator))
    stored = latest(project).courses
    assert all(
        stored[cid]["email_booking"] == c["email_booking"] for cid, c in sample.courses.items()
    )


def cancel(catalog, coursedate_id: int) -> None:
    with catalog.lock:
        record = catalog.coursedates[coursedate_id]
        record["status"] = {"id": 3, "idType": 2, "title": "Canceled"}


@pytest.mark.slow
def test_dates_that_ended_recently_are_read_again_and_older_ones_with_full(project, sample):
    run_fetch(project.config, project.access(), now=NOW)
    ended = {
        did: (TODAY - date.fromisoformat(d["end_at"])).days for did, d in sample.coursedates.items()
    }
    recent = next(did for did, days in ended.items() if 0 < days <= 30)
    old = next(did for did, days in ended.items() if days > 31)
    cancel(sample, recent)
    cancel(sample, old)

    project.emulator.clear_log()
    run_fetch(project.config, project.access(), now=NOW)
    snapshot = latest(project)
    assert snapshot.coursedates[recent]["status"]["id"] == 3  # ended in the last 30 days
    assert snapshot.coursedates[old]["status"]["id"] == 2  # older: kept from the snapshot
    window = (TODAY - timedelta(days=30)).isoformat()
    batches = paths(project.emulator, r"/batch/coursedates$")
    assert {r.params["end_date_at_min"][0] for r in batches} == {window}

    run_fetch(project.config, project.access(), now=NOW, full=True)
    assert latest(project).coursedates[old]["status"]["id"] == 3


def test_sync_past_days_sets_the_window(emulator_for, sample, tmp_path):
    from tests.conftest import Project

    (tmp_path / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\n[sync]\npast_days = 0\n")
    project = Project(tmp_path, emulator_for(sample))
    run_fetch(project.config, project.access(), now=NOW)
    project.emulator.clear_log()
    run_fetch(project.config, project.access(), now=NOW)
    batches = paths(project.emulator, r"/batch/coursedates$")
    assert {r.params["end_date_at_min"][0] for r in batches} == {TODAY.isoformat()}


def test_dates_shrink_guard_refuses_an_answer_that_lost_most_dates(project, sample):
    run_fetch(project.config, project.access(), now=NOW)
    before = project.snapshot_bytes()
    current = [did for did, d in sample.coursedates.items() if d["end_at"] >= TODAY.isoformat()]
    with sample.lock:  # as if the batch answers came back short: most current dates missing
        for did in current[: len(current) * 2 // 3]:
            del sample.coursedates[did]
    with pytest.raises(GuardRefused, match=r"max_dates_shrink_percent.*--allow-shrink") as caught:
        run_fetch(project.config, project.access(), now=NOW)
    assert caught.value.exit_code == 3
    assert project.snapshot_bytes() == before
    report = run_fetch(project.config, project.access(), now=NOW, allow_shrink=True)
    assert report.coursedates_removed == len(current) * 2 // 3 and report.courses_removed == 0


@pytest.mark.parametrize("status", ["403", "404"])
def test_an_optional_list_refused_or_missing_is_a_warning(project, status):
    project.emulator.inject(status, path="/instructors")
    project.emulator.inject(status, path="/orders/products")
    report = run_fetch(project.config, project.access(), now=NOW)
    assert report.courses == 48 and report.reference_refreshed == (
        "locations",
        "instructors",
        "products",
    )
    reason = "not allowed for this API key" if status == "403" else "not available"
    assert report.warnings == (
        f"/instructors is {reason} (HTTP {status}); instructors left out (the site uses the "
        "copies in courses and course dates)",
        f"/orders/products is {reason} (HTTP {status}); products left out (the site uses the "
        "copies in courses and course dates)",
    )
    snapshot = latest(project)
    assert snapshot.reference["instructors"] == {} and snapshot.reference["locations"]


def test_a_403_on_the_course_list_is_still_a_refused_key(project):
    project.emulator.inject("403", path="/courses")
    with pytest.raises(AuthError, match="refused the API key"):
        run_fetch(project.config, project.access(), now=NOW)


def test_dates_shrink_guard_counts_current_dates_of_kept_courses_only():
    from catalog_gen.snapshot import Snapshot
    from catalog_gen.source.fetch import check_dates_shrink

    def snapshot(courses, dates):
        return Snapshot(
            fetched_at=NOW,
            api_base="x",
            courses={cid: {"id": cid} for cid in courses},
            coursedates={
                did: {"coursedate_id": did, "course_id": cid, "start_at": day, "end_at": day}
                for did, (cid, day) in dates.items()
            },
            reference={},
            reference_fetched_at={},
            course_sources={},
        )

    past, upcoming = "2026-01-05", "2026-12-05"
    history = {n: (1, past) for n in range(100)}  # many past dates, kept whatever happens
    before = snapshot(
        [1, 2], {**history, 200: (1, upcoming), 201: (1, upcoming), 300: (2, upcoming)}
    )
    # Course 2 went with its date (the course guard's business); course 1 lost its two.
    after = snapshot([1], history)
    with pytest.raises(GuardRefused, match="100% of the 2 current and upcoming dates"):
        check_dates_shrink(before, after, 50)
    # One of two current dates gone is 50%: not more than the limit.
    check_dates_shrink(before, snapshot([1], {**history, 200: (1, upcoming)}), 50)
    check_dates_shrink(None, after, 50)
    # Dates left out on purpose (sync.max_dates_per_course) were not lost by the API.
    check_dates_shrink(before, after, 50, left_out={200, 201})


def current_dates_per_course(sample) -> dict[int, int]:
    counts: dict[int, int] = {}
    for record in sample.coursedates.values():
        if record["end_at"] >= TODAY.isoformat():
            counts[record["course_id"]] = counts.get(record["course_id"], 0) + 1
    return counts


@pytest.mark.slow
def test_a_course_with_more_dates_than_the_limit_keeps_the_soonest_with_a_warning(
    emulator_for, sample, tmp_path
):
    from tests.conftest import Project

    limit = max(current_dates_per_course(sample).values())  # no sample course is over it
    (tmp_path / "catalog.toml").write_text(
        f"[frontcore]\nrate_limit = 5\n[sync]\nmax_dates_per_course = {limit}\n"
    )
    project = Project(tmp_path, emulator_for(sample))
    crowded = sample.add_course("Drop-in yoga", dates=limit + 30)
    report = run_fetch(project.config, project.access(), now=NOW)

    soonest = sorted(sample.dates_of(crowded), key=lambda d: (d["start_at"], d["coursedate_id"]))
    snapshot = latest(project)
    kept = {did for did, d in snapshot.coursedates.items() if d["course_id"] == crowded}
    assert kept == {d["coursedate_id"] for d in soonest[:limit]}
    assert len(snapshot.coursedates) == len(sample.coursedates) - 30  # no other course cut
    assert report.warnings == (
        "1 × course with more current and upcoming dates than sync.max_dates_per_course; the "
        "soonest kept, the rest left out of the snapshot [course.dates_over_limit]: "
        f"course {crowded} coursedates={limit + 30}",
    )

    # The next night the same dates are kept; a lower limit is not a loss the guard refuses.
    assert run_fetch(project.config, project.access(), now=NOW).data_changed is False
    strict = "max_dates_per_course = 1\nmax_dates_shrink_percent = 0\n"
    (tmp_path / "catalog.toml").write_text(f"[frontcore]\nrate_limit = 5\n[sync]\n{strict}")
    report = run_fetch(project.config, project.access(), now=NOW)
    assert report.coursedates_removed > 0 and "course.dates_over_limit" in report.warnings[0]


@pytest.mark.slow
def test_each_date_knows_since_when_its_record_and_seats_are_what_they_are(project, sample):
    """A date's ``unchanged_since`` is the fetch that first read it as it is: a booking moves
    it to that night's fetch, a night that changes nothing elsewhere keeps it, and it survives
    the store (the site's "seats as of" reads it)."""
    store = SnapshotStore(project.config.snapshot_path)
    run_fetch(project.config, project.access(), now=NOW)
    booked, other = sorted(
        did for did, d in sample.coursedates.items() if d["seats"]["allocated_capacity"]["num"]
    )[-2:]
    assert set(store.latest().unchanged_since.values()) == {
        first_fetch := store.latest().fetched_at
    }

    quiet = run_fetch(project.config, project.access(), now=NOW + timedelta(hours=1))
    assert not quiet.saved  # a check that found nothing new: the times stay as they were

    sample.set_free_seats(booked, 0)
    night = NOW + timedelta(days=1)
    busy = run_fetch(project.config, project.access(), now=night)
    assert busy.saved
    since = store.latest().unchanged_since
    assert since[booked] == night and since[other] == first_fetch
    assert {did for did, at in since.items() if at != first_fetch} == {booked}

    sample.change_course(sample.coursedates[other]["course_id"], title="Nytt navn")
    later = NOW + timedelta(days=2)
    run_fetch(project.config, project.access(), now=later)
    again = store.latest().unchanged_since  # the course changed, its dates did not
    assert again[booked] == night and again[other] == first_fetch
    run_fetch(project.config, project.access(), now=later + timedelta(days=1), full=True)
    assert store.latest().unchanged_since == again  # a full fetch read the same: carried over
