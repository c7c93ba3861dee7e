"""The ``catalog-gen`` command as users and cron run it: real processes, real exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import tomllib

import pytest

from tests.conftest import API_KEY, env_without_key, interruptible, run_cli


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


def assert_no_key_anywhere(project, *results) -> None:
    for result in results:
        assert API_KEY not in result.stdout + result.stderr
        assert API_KEY[:10] not in result.stdout + result.stderr
    for path in project.root.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("command", [[], ["init"], ["fetch"], ["diff"], ["build"], ["serve"]])
def test_every_command_explains_itself(command):
    result = subprocess.run(
        [sys.executable, "-m", "catalog_gen", *command, "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "Usage: catalog-gen" in result.stdout
    assert len(result.stdout.splitlines()) > 4


def test_init_writes_a_commented_config_and_the_layout(tmp_path):
    target = tmp_path / "kurs"
    result = subprocess.run(
        [sys.executable, "-m", "catalog_gen", "init", str(target)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    text = (target / "catalog.toml").read_text()
    assert tomllib.loads(text)["frontcore"]["rate_limit"] == 4.0
    assert text.count("# ") > 8
    for folder in ("templates", "content", "static", "snapshots"):
        assert (target / folder).is_dir()
    assert "/site/" in (target / ".gitignore").read_text()
    again = subprocess.run(
        [sys.executable, "-m", "catalog_gen", "init", str(target)], capture_output=True, text=True
    )
    assert again.returncode == 2
    assert "already exists" in one_error_line(again)


@pytest.mark.slow
def test_fetch_then_fetch_again_is_incremental_and_diff_sees_the_change(project, sample):
    first = project.run("fetch")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("full fetch: 48 courses (+48 ~0 -0)")
    # Not a terminal: progress comes as plain lines on stderr.
    assert "courses: 48" in first.stderr

    second = project.run("fetch", "--json")
    report = json.loads(second.stdout)
    assert report["mode"] == "incremental"
    assert report["data_changed"] is False
    assert report["details_fetched"] == 0
    assert second.stderr == ""
    # Nothing changed: no new snapshot, only the time of the check.
    assert report["saved"] is False and report["bytes_written"] == 0
    assert f"→ {report['snapshot']} (" in first.stdout  # the first fetch's snapshot
    unchanged = project.run("fetch")
    assert f"→ unchanged since {report['snapshot']}, checked at " in unchanged.stdout

    only_one = project.run("diff", "--exit-code")
    assert "has 1; a fetch writes a new one only when the data changed" in only_one.stderr

    cid = sorted(sample.courses)[0]
    sample.change_course(cid, title="Førstehjelp <ny>")
    assert project.run("fetch", "--quiet").stdout == ""
    changed = project.run("diff", "--exit-code")
    assert changed.returncode == 1
    assert f"~ {cid} Førstehjelp <ny>: title, updated_at" in changed.stdout
    as_json = json.loads(project.run("diff", "--json", "1", "-1").stdout)
    assert as_json["courses"]["changed"] == {str(cid): ["title", "updated_at"]}
    assert_no_key_anywhere(project, first, second, changed)


def test_demo_needs_no_key_and_no_config(tmp_path):
    env_without_key = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "catalog_gen", "fetch", "--demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env_without_key,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("full fetch: 48 courses")
    assert len(list((tmp_path / "snapshots" / "demo").glob("0*/manifest.json"))) == 1


def test_missing_key_says_how_to_set_it(project):
    result = project.run("fetch", key=None)
    assert result.returncode == 2
    assert "FRONTCORE_API_KEY" in one_error_line(result)


def test_wrong_key_is_one_line_exit_1_and_never_echoed(project):
    wrong = "fc-WRONG-key-abcdefghijkl"
    result = project.run("--debug", "-v", "fetch", key=wrong)
    assert result.returncode == 1
    assert "refused the API key" in one_error_line(result)
    assert wrong not in result.stdout + result.stderr
    assert wrong[:9] not in result.stderr


def test_bad_config_is_one_line_exit_2(project):
    (project.root / "catalog.toml").write_text("[frontcore]\nrate_limit = 50\n")
    result = project.run("fetch")
    assert result.returncode == 2
    line = one_error_line(result)
    assert "frontcore.rate_limit" in line and "catalog.toml" in line


def test_key_pasted_into_config_is_refused_without_echoing_it(project):
    (project.root / "catalog.toml").write_text(f"# {API_KEY}\n")
    result = project.run("fetch")
    assert result.returncode == 2
    assert "contains the API key" in one_error_line(result)
    assert API_KEY not in result.stderr


def test_bad_now_is_a_usage_error(project):
    result = project.run("fetch", "--now", "yesterday")
    assert result.returncode == 2
    assert "--now" in result.stderr


def test_diff_needs_two_snapshots(project):
    result = project.run("diff")
    assert result.returncode == 1
    assert "needs two snapshots" in one_error_line(result)


def test_serve_on_a_port_in_use_is_a_one_line_usage_error(project):
    import socket

    assert project.run("fetch").returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = project.run("serve", "--port", str(taken.getsockname()[1]))
    assert result.returncode == 2
    assert "cannot listen on 127.0.0.1" in one_error_line(result)


@pytest.mark.slow
def test_shrink_guard_exits_3(project, sample):
    assert project.run("fetch").returncode == 0
    for cid in sorted(sample.courses)[:20]:
        sample.remove_course(cid)
    refused = project.run("fetch", "--quiet")
    assert refused.returncode == 3
    assert "--allow-shrink" in one_error_line(refused)
    assert project.run("fetch", "--allow-shrink").returncode == 0


def _start_fetch_and_wait_for_batch(project, *args):
    project.emulator.clear_log()
    project.emulator.inject("slow", path="/batch/coursedates", delay=30)
    process = subprocess.Popen(
        [sys.executable, "-m", "catalog_gen", "fetch", *args],
        cwd=project.root,
        env=project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    deadline = time.monotonic() + 30
    while not any("batch" in r.path for r in project.emulator.requests):
        assert time.monotonic() < deadline, "fetch never reached the batch endpoint"
        time.sleep(0.05)
    time.sleep(0.3)  # now it is waiting for the slow answer: midway through the run
    return process


@pytest.mark.slow
def test_a_fetch_killed_midway_leaves_the_last_snapshot_byte_identical(project):
    assert project.run("fetch").returncode == 0
    before = project.snapshot_bytes()
    process = _start_fetch_and_wait_for_batch(project, "--full")
    process.kill()
    process.wait(timeout=10)
    assert project.snapshot_bytes() == before
    # The next run is not blocked by the dead run's lock and cleans up after it.
    after = project.run("fetch")
    assert after.returncode == 0, after.stderr
    assert not list((project.root / "snapshots").glob(".incoming-*"))


@pytest.mark.slow
def test_a_competing_run_is_refused_with_exit_3(project):
    assert project.run("fetch").returncode == 0
    process = _start_fetch_and_wait_for_batch(project)
    try:
        competing = project.run("fetch")
        assert competing.returncode == 3
        assert "holds" in one_error_line(competing)
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_with_one_line(project):
    assert project.run("fetch").returncode == 0
    before = project.snapshot_bytes()
    process = _start_fetch_and_wait_for_batch(project)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=10)
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == (
        "error: interrupted; the last good snapshot is unchanged"
    )
    assert project.snapshot_bytes() == before


def test_on_a_terminal_progress_is_one_rewritten_bar_line(project):
    """stderr on a real pseudo-terminal gets the bar; the summary still ends on stdout."""
    import os
    import pty

    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "catalog_gen", "fetch"],
            cwd=project.root,
            env=project.env(),
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=120,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # Linux: EIO once the other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    terminal = b"".join(chunks).decode()
    assert result.returncode == 0
    assert result.stdout.startswith("full fetch: 48 courses")
    assert "\r\x1b[K" in terminal and "█" in terminal
    assert "courses: 48 (" not in terminal  # not the plain per-phase lines


def test_snapshots_inside_the_site_are_refused_before_anything_is_written(project):
    """The site is replaced whole on every build: snapshots kept inside it would be eaten."""
    (project.root / "catalog.toml").write_text(
        'snapshot_dir = "site/snapshots"\n[frontcore]\nrate_limit = 5\n'
    )
    result = project.run("build")
    assert result.returncode == 2
    line = one_error_line(result)
    assert "'snapshot_dir'" in line and "'site.output_dir'" in line and "catalog.toml" in line
    assert not (project.root / "site").exists()


@pytest.mark.slow
def test_a_file_no_build_made_is_removed_with_a_warning_unless_site_keep_names_it(project, sample):
    now = "2026-11-23T04:00:00+01:00"
    (project.root / "catalog.toml").write_text(
        '[frontcore]\nrate_limit = 5\n[site]\nkeep = ["CNAME"]\n'
    )
    assert project.run("build", "--now", now).returncode == 0
    site = project.root / "site"
    (site / "CNAME").write_text("kurs.example.no\n")
    (site / "notes.txt").write_text("mine\n")
    gone = sorted(sample.courses)[0]
    (page,) = site.glob(f"kurs/*-{gone}/index.html")
    sample.remove_course(gone)

    result = project.run("build", "--quiet", "--now", now)

    assert result.returncode == 0, result.stderr
    assert not page.exists() and not (site / "notes.txt").exists()
    assert (site / "CNAME").read_text() == "kurs.example.no\n"
    slug = page.parent.name
    assert result.stderr.splitlines() == [
        f"warning: removed 1 page the site no longer has: kurs/{slug}/",
        "warning: removed 1 file from site/ that catalog-gen did not make: notes.txt; to keep "
        "such files, name them in site.keep",
        "warning: kept 1 file in site/ that catalog-gen did not make, as site.keep says: CNAME",
    ]
    sample.change_course(sorted(sample.courses)[1], text_lead="Ny ingress")  # a real build
    again = project.run("build", "--quiet", "--now", now)
    assert (again.returncode, again.stderr) == (0, "")  # said once
    assert (site / "CNAME").read_text() == "kurs.example.no\n"


@pytest.mark.slow
@pytest.mark.parametrize(("language", "shown"), [("nb", "Kurs <id>"), ("en", "Course <id>")])
def test_an_odd_data_warning_says_what_the_visitor_sees_in_the_sites_language(
    project, sample, language, shown
):
    (project.root / "catalog.toml").write_text(
        f'[frontcore]\nrate_limit = 5\n[site]\nlanguage = "{language}"\n'
    )
    sample.change_course(sorted(sample.courses)[0], title="  ")
    result = project.run("build", "--now", "2026-11-23T04:00:00+01:00")
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "[course.title_blank]" in line]
    assert f"course without a title; shown as '{shown}'" in line


@pytest.mark.slow
def test_every_usage_error_is_one_error_line_with_code_2(project):
    for args in (["build", "--bogus"], ["nosuch"], ["diff", "--format", "pdf"],
                 ["build", "--max-age", "-1"], ["fetch", "--demo-change"]):  # fmt: skip
        result = project.run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: "), args


@pytest.mark.slow
def test_diff_survives_a_closed_pipe_and_tells_differ_from_error(project, sample):
    """`diff | head -2` ends quietly; with --exit-code, 1 means 'they differ' and only that."""
    assert project.run("build", "--now", "2026-11-23T04:00:00+01:00").returncode == 0
    sample.change_course(sorted(sample.courses)[0], title="Nytt navn")
    for course_id in sorted(sample.courses)[1:]:
        sample.change_course(course_id, text_lead="En ny ingress som fyller linjer.")
    assert project.run("fetch", "--now", "2026-11-23T05:00:00+01:00").returncode == 0
    piped = subprocess.run(
        f"{sys.executable} -m catalog_gen diff 1 -1 | head -2", shell=True, cwd=project.root,
        env=project.env(), capture_output=True, text=True, executable="/bin/bash",
    )  # fmt: skip
    assert piped.returncode == 0 and len(piped.stdout.splitlines()) == 2
    assert "Traceback" not in piped.stderr and "internal error" not in piped.stderr
    assert project.run("diff", "--exit-code").returncode == 1  # they differ
    assert project.run("diff", "--exit-code", "-1", "-1").returncode == 0  # the same
    missing = project.run("diff", "--exit-code", "99")
    assert missing.returncode == 2 and missing.stderr.startswith("error: no snapshot '99'")
    report = project.run("diff", "--format", "json")
    data = json.loads(report.stdout)
    assert data["differ"] is True and data["changes"]["counts"]["new_courses"] == 0


@pytest.mark.slow
def test_a_build_run_with_stderr_closed_still_builds_and_exits_0(tmp_path):
    """With nowhere to say anything (``2>&-``), a build still builds and says how it went
    by its exit code (it was an internal error, unseen, exit 1)."""
    closed = subprocess.run(
        f"{sys.executable} -m catalog_gen build --demo -q --now 2026-11-23T04:00:00+01:00 2>&-",
        shell=True, cwd=tmp_path, env=env_without_key(), capture_output=False,
        stdout=subprocess.PIPE, text=True, executable="/bin/bash", timeout=120,
    )  # fmt: skip
    assert closed.returncode == 0
    assert (tmp_path / "site" / "index.html").is_file()


def test_a_command_run_with_stdout_closed_ends_with_its_own_line_and_code(tmp_path):
    """A cron line or a service may start catalog-gen with no stdout at all (``>&-``): the
    command still says its one line on stderr and exits with its own code, no traceback."""
    closed = subprocess.run(
        f"{sys.executable} -m catalog_gen diff >&-", shell=True, cwd=tmp_path,
        env=env_without_key(), capture_output=False, stderr=subprocess.PIPE, text=True,
        executable="/bin/bash", timeout=60,
    )  # fmt: skip
    assert closed.returncode == 1, closed.stderr
    assert closed.stderr.startswith("error: diff needs two snapshots")
    assert len(closed.stderr.splitlines()) == 1 and "Traceback" not in closed.stderr


@pytest.mark.slow
def test_the_demo_can_show_a_night_of_changes(tmp_path):
    now = "2026-11-23T04:00:00+01:00"
    assert run_cli(tmp_path, "build", "--demo", "-q", "--now", now).returncode == 0
    changed = run_cli(tmp_path, "build", "--demo", "--demo-change", "-q", "--report", "-",
                      "--now", "2026-11-23T05:00:00+01:00")  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert "1 × new courses" in changed.stdout and "1 × canceled dates" in changed.stdout
    markdown = run_cli(tmp_path, "diff", "--demo", "--format", "markdown")
    assert "#### Courses no longer on the site (1)" in markdown.stdout


@pytest.mark.slow
def test_the_demo_night_happens_at_the_pinned_moment_not_the_machines(tmp_path):
    """--now pins the emulator's clock too: the night's edits are stamped with it, and a
    moment far from the machine's (whose sample has no dates after the real today) works."""
    first = run_cli(tmp_path, "build", "--demo", "-q", "--now", "2025-03-11T09:00:00+01:00")
    assert first.returncode == 0, first.stderr
    changed = run_cli(tmp_path, "build", "--demo", "--demo-change", "-q",
                      "--now", "2025-03-12T04:00:00+01:00")  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    records = [
        record
        for path in tmp_path.glob("snapshots/demo/000002-*/courses/*.json")
        for record in json.loads(path.read_text(encoding="utf-8"))
        if record["title"].startswith("Nyhet: Kunstig intelligens")
    ]
    assert records, "the night's new course is in the snapshot"
    assert {r["created_at"][:10] for r in records} == {"2025-03-12"}
