"""Unattended runs (cron, CI): time as an input, stale-if-error, guards, exit codes, reports.

Everything runs the real console script against the emulator on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from catalog_gen.source.store import SnapshotStore
from tests.conftest import API_KEY, interruptible
from tests.sitecheck import site_bytes, site_tree

#: The long matrices and whole-tool runs: `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

DAY1 = "2026-11-23T04:00:00+01:00"
UNREACHABLE = "http://127.0.0.1:9/v2"  # the discard port: nothing listens


def build(project, *args: str, env: dict | None = None, now: str = DAY1):
    """``catalog-gen build --json --now …`` in the project; returns (result, report or None)."""
    result = subprocess.run(
        [sys.executable, "-m", "catalog_gen", "build", "--json", "--now", now, *args],
        cwd=project.root,
        env={**project.env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout) if result.returncode == 0 and result.stdout else None
    return result, report


def fast_failing(project) -> None:
    """Fail fast on an unreachable API: no retries to wait for."""
    (project.root / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\nmax_retries = 0\n")


def only_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line]
    assert len(lines) == 1, stderr
    return lines[0]


# -- exit codes, one by one -------------------------------------------------------------------


def test_exit_0_and_silence_with_quiet(project):
    result = project.run("build", "--quiet", "--now", DAY1)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_exit_1_when_the_api_fails_and_nothing_is_published(project):
    assert build(project)[0].returncode == 0
    fast_failing(project)
    site, snapshots = site_tree(project.root / "site"), project.snapshot_bytes()
    result, _ = build(project, env={"FRONTCORE_API_URL": UNREACHABLE}, now="2026-11-24T04:00")
    assert result.returncode == 1
    line = only_line(result.stderr)
    assert line.startswith("error: ") and "nothing was published" in line
    assert "is 24.0 h old" in line  # how old the last good snapshot is
    assert site_tree(project.root / "site") == site and project.snapshot_bytes() == snapshots


def test_exit_1_for_a_wrong_key_keeps_everything(project):
    assert build(project)[0].returncode == 0
    site = site_tree(project.root / "site")
    result, _ = build(project, env={"FRONTCORE_API_KEY": "wrong-key-123"})
    assert result.returncode == 1 and "nothing was published" in only_line(result.stderr)
    assert site_tree(project.root / "site") == site


def test_exit_2_for_a_usage_or_config_error(project):
    (project.root / "catalog.toml").write_text("[site]\nper_page = 0\n")
    assert build(project)[0].returncode == 2
    assert build(project, "--max-age", "-1")[0].returncode == 2


def test_exit_3_when_a_guard_refuses(project, sample):
    assert build(project)[0].returncode == 0
    for course_id in sorted(sample.courses)[:20]:
        sample.remove_course(course_id)
    site = site_tree(project.root / "site")
    result, _ = build(project)
    assert result.returncode == 3 and "allow-shrink" in only_line(result.stderr)
    assert site_tree(project.root / "site") == site


# -- stale-if-error and --max-age -------------------------------------------------------------


def test_offline_on_error_renders_the_last_good_snapshot_for_the_new_day(project):
    assert build(project)[0].returncode == 0
    fast_failing(project)
    day1 = site_bytes(project.root / "site")
    result, report = build(
        project, "--offline-on-error", env={"FRONTCORE_API_URL": UNREACHABLE}, now="2026-11-30"
    )
    assert result.returncode == 0, result.stderr
    assert only_line(result.stderr).startswith("warning: ")
    assert "rendered the last good snapshot" in result.stderr
    assert report["warnings"] and report["snapshot_age_hours"] > 160
    assert report["data_changed"] is False and report["fetch"] is None
    assert site_bytes(project.root / "site") != day1  # a week later: dates have passed


def test_max_age_refuses_an_old_snapshot(project):
    assert build(project)[0].returncode == 0
    site = site_tree(project.root / "site")
    result, _ = build(project, "--offline", "--max-age", "24", now="2026-11-24T16:00")
    assert result.returncode == 3
    assert "36.0 h old, more than --max-age 24 h" in only_line(result.stderr)
    assert site_tree(project.root / "site") == site
    result, _ = build(project, "--offline", "--max-age", "48", now="2026-11-24T16:00")
    assert result.returncode == 0


def test_the_age_of_the_data_counts_from_the_last_fetch_that_confirmed_it(project):
    """A night that finds nothing changed writes no snapshot but confirms the data: the age in
    the report, --max-age and the stale-if-error message count from that check."""
    assert build(project)[0].returncode == 0
    snapshots = project.snapshot_bytes()
    result, night2 = build(project, now="2026-11-24T04:00:00+01:00")
    assert result.returncode == 0, result.stderr
    assert night2["fetch"]["saved"] is False and night2["fetch"]["bytes_written"] == 0
    assert night2["fetch"]["checked_at"] == "2026-11-24T03:00:00Z"
    assert night2["snapshot_age_hours"] == 0  # fetched a day ago, confirmed just now
    assert project.snapshot_bytes() == snapshots
    name = night2["snapshot"]

    result, _ = build(project, "--offline", "--max-age", "30", now="2026-11-25T04:00:00+01:00")
    assert result.returncode == 0, result.stderr  # 24 h since the check, 48 h since the fetch
    result, _ = build(project, "--offline", "--max-age", "20", now="2026-11-25T04:00:00+01:00")
    assert result.returncode == 3
    assert (
        f"the last good snapshot ({name}, unchanged when checked at 2026-11-24T03:00:00Z) "
        "is 24.0 h old, more than --max-age 20 h" in only_line(result.stderr)
    )
    fast_failing(project)
    result, _ = build(
        project, env={"FRONTCORE_API_URL": UNREACHABLE}, now="2026-11-25T04:00:00+01:00"
    )
    assert result.returncode == 1
    assert (
        f"the last good snapshot ({name}, unchanged when checked at 2026-11-24T03:00:00Z) "
        "is 24.0 h old" in only_line(result.stderr)
    )


# -- timeout and a lock left by a killed run ----------------------------------------------------


def test_timeout_stops_the_whole_run_cleanly(project):
    assert build(project)[0].returncode == 0
    site, snapshots = site_tree(project.root / "site"), project.snapshot_bytes()
    project.emulator.inject("slow", path="/batch/coursedates", delay=30)
    started = time.monotonic()
    result, _ = build(project, "--timeout", "2")
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert "stopped after --timeout 2 s" in only_line(result.stderr)
    assert site_tree(project.root / "site") == site and project.snapshot_bytes() == snapshots
    assert not [p for p in (project.root / "snapshots").iterdir() if p.name.startswith(".inc")]


def test_on_a_terminal_retries_against_an_unreachable_api_are_shown_as_they_happen(project):
    """A person at a terminal sees each retry when it happens, not half a minute of silence;
    cron (no terminal) and --quiet see only the final error line."""
    assert build(project)[0].returncode == 0
    (project.root / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\nmax_retries = 2\n")
    env = {**project.env(), "FRONTCORE_API_URL": UNREACHABLE}
    command = [sys.executable, "-m", "catalog_gen", "build", "--now", DAY1]
    main, terminal = pty.openpty()
    child = subprocess.Popen(
        command, cwd=project.root, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=terminal, close_fds=True,
    )  # fmt: skip
    os.close(terminal)
    seen, first_retry = b"", None
    started = time.monotonic()
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if first_retry is None and b"retrying in" in seen:
            first_retry = time.monotonic() - started
    os.close(main)
    assert child.wait(timeout=60) == 1
    text = seen.decode()
    assert text.count("retrying in") == 2 and "connection failed" in text
    assert first_retry is not None and first_retry < 10  # shown at once, not with the error
    assert "error: " in text and "gave up after 2 retries" in text
    quiet = subprocess.run(
        [*command, "--quiet"], cwd=project.root, env=env, capture_output=True, text=True
    )
    assert quiet.returncode == 1 and "retrying" not in quiet.stderr
    assert only_line(quiet.stderr).startswith("error: ")


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_warning(project):
    assert build(project)[0].returncode == 0
    project.emulator.clear_log()
    project.emulator.inject("slow", path="/batch/coursedates", delay=30)
    victim = subprocess.Popen(
        [sys.executable, "-m", "catalog_gen", "build", "--now", DAY1],
        cwd=project.root, env=project.env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, preexec_fn=interruptible,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not any("batch" in r.path for r in project.emulator.requests):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert "pid" in (project.root / "snapshots" / ".lock").read_text()  # left behind

    result = project.run("build", "--quiet", "--now", DAY1)  # said even with --quiet (cron)
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("warning: took over the lock of a run that did not finish")
    assert f"pid {victim.pid}" in line


# -- machine-readable result --------------------------------------------------------------------


def test_json_report_and_github_step_outputs(project, tmp_path, sample):
    outputs = tmp_path / "github_output"
    result, report = build(project, env={"GITHUB_OUTPUT": str(outputs)})
    assert result.returncode == 0
    keys = ("data_changed", "written", "unchanged", "removed", "requests", "rate_limited",
            "retries", "seconds", "snapshot_age_hours", "pages", "files", "warnings")  # fmt: skip
    for key in keys:
        assert key in report, key
    assert report["data_changed"] is True and report["requests"] > 0
    assert report["snapshot_age_hours"] == 0
    lines = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert lines["data_changed"] == "true" and lines["written"] == str(report["written"])
    assert json.loads(lines["report"]) == report
    assert API_KEY not in outputs.read_text()

    outputs.unlink()
    _, again = build(project, env={"GITHUB_OUTPUT": str(outputs)})
    lines = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert (again["data_changed"], lines["data_changed"], lines["written"]) == (False, "false", "0")


# -- time is an input ------------------------------------------------------------------------------


def course_page(site: Path, course_id: int) -> str | None:
    found = list(site.glob(f"kurs/*-{course_id}/index.html"))
    return found[0].relative_to(site).as_posix() if found else None


def test_a_day_later_exactly_the_pages_showing_passed_dates_are_rewritten(project):
    assert build(project)[0].returncode == 0
    site = project.root / "site"
    snapshot = SnapshotStore(project.root / "snapshots").latest()
    # The first day after the fetch on which some published date starts or closes.
    days = sorted(
        date.fromisoformat(str(record[field])[:10])
        for record in snapshot.coursedates.values()
        for field in ("start_at", "deadline_at")
        if record.get(field) and str(record[field])[:10] >= "2026-11-23"
        if course_page(site, record["course_id"])
    )
    day1 = days[0]
    day2 = day1 + timedelta(days=1)
    assert build(project, "--offline", now=f"{day1}T04:00")[0].returncode == 0
    before = site_tree(site)
    result, report = build(project, "--offline", now=f"{day2}T04:00")
    assert result.returncode == 0
    after = site_tree(site)
    rewritten = {n for n in after if n not in before or after[n] != before[n]}
    rewritten |= set(before) - set(after)

    passed = {
        record["course_id"]
        for record in snapshot.coursedates.values()
        if day1.isoformat() in (str(record.get(f))[:10] for f in ("start_at", "deadline_at"))
    }
    affected_pages = {course_page(site, cid) for cid in passed} - {None}
    assert affected_pages, "the chosen day has no date that passes"
    course_files = {n for n in rewritten if n.startswith("kurs/")}
    # No other course's page or calendar files were touched.
    assert {folder(n) for n in course_files} <= {folder(n) for n in affected_pages}
    assert course_files & affected_pages  # a course page changes when a row vanishes or closes
    slugs = {name.split("/")[1] for name in affected_pages}
    for name in rewritten - course_files:
        if name.startswith(("kalender/", "pagefind/", "404", "static/")) or name in DATED_FILES:
            assert not name.startswith(("404", "static/")), name
            # The calendar lists dates by position (one gone shifts the rest); the search
            # index, the site calendar, the feed and the sitemap cover every page.
            continue
        old = before.get(name, (b"",))[0] + after.get(name, (b"",))[0]
        assert any(slug.encode() in old for slug in slugs), f"{name} changed without a reason"
    assert report["written"] == len([n for n in rewritten if n in after])


#: Files about every date of the site: any passing date changes them.
DATED_FILES = {"kalender.ics", "feed.xml", "sitemap.xml"}


def folder(name: str) -> str:
    """A course's folder (its page and its calendar files)."""
    return name.rsplit("/", 1)[0]


# -- three nights against the emulator ----------------------------------------------------------


def event_days(sample) -> dict[date, set[int]]:
    """Course ids by the day one of their dates starts or its booking closes."""
    days: dict[date, set[int]] = {}
    for record in sample.coursedates.values():
        for field in ("start_at", "deadline_at"):
            if record.get(field):
                day = date.fromisoformat(str(record[field])[:10])
                days.setdefault(day, set()).add(record["course_id"])
    return days


def test_three_nights(project, sample):
    """Night 1 full build; night 2 nothing changed; night 3 one course changed, one date passed."""
    events = event_days(sample)
    night1 = next(
        day
        for day in (date(2026, 11, 23) + timedelta(days=n) for n in range(60))
        if day not in events and day + timedelta(days=1) in events
    )
    nights = [f"{night1 + timedelta(days=n)}T03:15" for n in range(3)]
    site = project.root / "site"

    project.emulator.clear_log()
    result, first = build(project, now=nights[0])
    assert result.returncode == 0, result.stderr
    assert first["fetch"]["mode"] == "full" and first["data_changed"] is True
    assert first["requests"] == len(project.emulator.requests)
    assert first["written"] == first["files"] and first["removed"] == 0
    print(f"\nnight 1: {first['requests']} requests, {first['written']} files written")

    project.emulator.clear_log()
    before = site_tree(site)
    result, second = build(project, now=nights[1])
    assert result.returncode == 0, result.stderr
    asked = {r.path.split("?")[0] for r in project.emulator.requests}
    assert second["data_changed"] is False and second["requests"] < first["requests"]
    assert asked <= {"/v2/courses", "/v2/batch/coursedates"}  # no details, no reference data
    assert (second["written"], second["removed"]) == (0, 0)
    assert site_tree(site) == before  # not one mtime moved
    assert second["fetch"]["saved"] is False  # and no new snapshot: the data was confirmed
    assert second["snapshot"] == first["snapshot"] and second["snapshot_age_hours"] == 0
    print(f"night 2: {second['requests']} requests, 0 files written")

    passing = events[night1 + timedelta(days=1)]
    pages = {cid: course_page(site, cid) for cid in sample.courses}
    changed = next(cid for cid in sorted(sample.courses) if pages[cid] and cid not in passing)
    sample.change_course(changed, title="Helt nytt kurs")
    project.emulator.clear_log()
    before = site_tree(site)
    result, third = build(project, now=nights[2])
    assert result.returncode == 0, result.stderr
    assert third["data_changed"] is True and third["fetch"]["courses_changed"] == 1
    after = site_tree(site)
    rewritten = {n for n in after if before.get(n) != after[n]} | (set(before) - set(after))
    assert pages[changed] in rewritten and pages[changed] not in after  # its address moved
    assert course_page(site, changed).startswith("kurs/helt-nytt-kurs-")
    expected_courses = {pages[cid] for cid in passing | {changed}} - {None}
    expected_courses.add(course_page(site, changed))
    rewritten_courses = {n for n in rewritten if n.startswith("kurs/")}
    assert {folder(n) for n in rewritten_courses} <= {folder(n) for n in expected_courses}
    assert rewritten_courses & {pages[cid] for cid in passing}
    print(f"night 3: {third['requests']} requests, {third['written']} files written")


# -- what one answer may cost ---------------------------------------------------------------------

#: Runs a command and writes its peak resident memory (kB) to a file: the kernel's figure for
#: the one child this wrapper waited for, so it is that command's own (a pytest-xdist worker's
#: RUSAGE_CHILDREN would cover every child the worker ever had). Address space is capped at
#: 3 GiB, so a regression fails with MemoryError instead of taking the machine's memory.
PEAK_RSS = """
import resource, subprocess, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def fetch_measured(project, tmp_path) -> tuple[subprocess.CompletedProcess, float]:
    """``catalog-gen fetch`` as a process of its own; its result and its peak RSS in MB."""
    figure = tmp_path / "peak-rss-kb"
    command = [sys.executable, "-c", PEAK_RSS, str(figure), sys.executable, "-m", "catalog_gen"]
    result = subprocess.run(
        [*command, "fetch"], cwd=project.root, env=project.env(), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    return result, int(figure.read_text()) / 1024


HOSTILE = {
    "bomb": r"the answer unpacks \(0\.\d MB received\) to more than frontcore.max_decoded_mb"
    " = 128 MB",
    "huge": r"the answer announces 300\.0 MB, more than frontcore.max_answer_mb = 64 MB",
    "endless": r"the answer sends more than frontcore.max_answer_mb = 64 MB",
}


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_answer_fails_the_fetch_in_bounded_memory(project, tmp_path, hostile):
    """A 0.5 MB gzip body holding 500 MB, a 300 MB plain body, an endless chunked one: each
    is refused at its cap (the defaults), without a retry, in well under 400 MB."""
    assert project.run("fetch").returncode == 0
    before = project.snapshot_bytes()
    project.emulator.inject(hostile, times=10, path="/courses")
    project.emulator.clear_log()

    result, peak_mb = fetch_measured(project, tmp_path)
    print(f"\n{hostile}: peak RSS of the fetch {peak_mb:.0f} MB")
    assert result.returncode == 1, result.stderr
    expected = f"error: GET /courses: {HOSTILE[hostile]}; refused, not retried"
    assert re.fullmatch(expected, only_line(result.stderr))
    assert [r.path for r in project.emulator.requests] == ["/v2/courses"]  # not retried
    assert peak_mb < 400
    assert project.snapshot_bytes() == before


def test_a_trickling_server_cannot_hold_the_run_or_the_lock(project):
    """One byte every second never trips the 30 s read timeout; the answer's deadline ends
    the run, which leaves everything as it was and frees the lock for the next one."""
    settings = "[frontcore]\nrate_limit = 5\nanswer_deadline_seconds = 3\n"
    (project.root / "catalog.toml").write_text(settings)
    assert build(project)[0].returncode == 0
    site, snapshots = site_tree(project.root / "site"), project.snapshot_bytes()
    project.emulator.inject("trickle", times=2, path="/batch/coursedates", delay=1)

    started = time.monotonic()
    result, _ = build(project)
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    line = only_line(result.stderr)
    assert line.startswith("error: GET /batch/coursedates: the answer was not complete within ")
    assert "frontcore.answer_deadline_seconds = 3 s; refused, not retried" in line
    assert "nothing was published" in line
    assert site_tree(project.root / "site") == site and project.snapshot_bytes() == snapshots

    result, report = build(project, "--offline-on-error")
    assert result.returncode == 0, result.stderr
    assert "answer_deadline_seconds = 3 s" in only_line(result.stderr)
    assert "rendered the last good snapshot instead" in result.stderr
    assert report["fetch"] is None

    assert project.run("fetch").returncode == 0  # the lock is free: not exit 3


def test_a_course_with_thousands_of_dates_is_published_with_the_soonest_and_a_warning(
    project, sample
):
    """One course's runaway recurrence costs a page and a calendar file per date; it is cut
    to ``sync.max_dates_per_course`` at the fetch, and the rest of the catalog is published."""
    (project.root / "catalog.toml").write_text(
        "[frontcore]\nrate_limit = 5\n[sync]\nmax_dates_per_course = 20\n"
    )
    crowded = sample.add_course("Drop-in yoga", dates=400)
    result, report = build(project)
    assert result.returncode == 0, result.stderr
    assert only_line(result.stderr).startswith("warning: 1 × course with more current and ")
    assert f"[course.dates_over_limit]: course {crowded} coursedates=400" in result.stderr
    page = course_page(project.root / "site", crowded)
    assert page is not None
    calendars = list((project.root / "site" / folder(page)).glob("*.ics"))
    assert len(calendars) == 20 + 1  # one per date kept, and the course's own
    assert report["files"] < 1000
