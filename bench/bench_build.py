"""How long does ``catalog-gen build`` take on a big catalog, and what does a no-change night cost?

    python bench/bench_build.py                   # 10,000 courses, about 50,000 dates
    python bench/bench_build.py --courses 1000    # a quick run

Steps:

1. Generate a deterministic sample catalog (``catalog_gen.frontcore.sample``) and fetch it from
   the emulator on 127.0.0.1 through the real client and sync into a snapshot in a temporary
   project. The emulator and client run unthrottled here, only to make the snapshot quickly:
   what a fetch costs at Frontcore's 5 requests/second is measured in tests/test_sync.py.
2. Time ``catalog-gen build --offline`` as separate processes, as a user runs it:
   a cold build into an empty ``site/``, then a rebuild of the same snapshot (target: no file
   written, mtimes untouched), then a rebuild after one course's title changed.
3. Print seconds, pages, files written/unchanged/removed, pages per second and the peak RSS of
   each build process (from wait4's rusage), and the site's size.

Not part of the test suite: figures depend on the machine. The README quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from catalog_gen.config import load_config
from catalog_gen.frontcore.client import FrontcoreClient
from catalog_gen.frontcore.emulator import Emulator
from catalog_gen.frontcore.sample import generate_catalog
from catalog_gen.frontcore.transport import Transport
from catalog_gen.snapshot import SnapshotStore
from catalog_gen.sync import sync_catalog

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=ZoneInfo("Europe/Oslo"))
UNTHROTTLED = 10_000.0
KEY = "bench-key"


def make_project(root: Path, courses: int, dates_per_course: int) -> tuple[int, int]:
    """A project folder with one snapshot of a generated catalog; returns (courses, dates)."""
    (root / "catalog.toml").write_text("", encoding="utf-8")
    config = load_config(root / "catalog.toml")
    catalog = generate_catalog(courses, today=TODAY, dates_per_course=dates_per_course)
    with Emulator(catalog, api_key=KEY, rate_limit=UNTHROTTLED) as emulator:
        transport = Transport(emulator.base_url, KEY, rate_limit=UNTHROTTLED)
        try:
            outcome = sync_catalog(
                FrontcoreClient(transport),
                None,
                now=NOW,
                api_base=emulator.base_url,
                settings=config.sync,
            )
        finally:
            transport.close()
    SnapshotStore(config.snapshot_path).save(outcome.snapshot)
    return len(outcome.snapshot.courses), len(outcome.snapshot.coursedates)


def timed_build(root: Path) -> dict:
    """One ``catalog-gen build --offline --json`` process: its report, seconds and peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "catalog_gen", "build", "--offline", "--json",
             "--now", NOW.isoformat()],
            cwd=root, stdout=out, stderr=err,
        )  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not all children's
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"build failed: {err.read().decode()}")
        report = json.loads(out.read())
    report["wall"] = seconds
    report["rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return report


def mtimes(site: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()}


def change_one_course(root: Path) -> None:
    """Edit one course's title in a copy of the newest snapshot, as the next fetch would."""
    config = load_config(root / "catalog.toml")
    store = SnapshotStore(config.snapshot_path)
    snapshot = store.latest()
    course_id = sorted(snapshot.courses)[len(snapshot.courses) // 2]
    snapshot.courses[course_id]["title"] += " (ny)"
    store.save(snapshot)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, default=10_000)
    parser.add_argument("--dates-per-course", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        courses, dates = make_project(root, args.courses, args.dates_per_course)
        print(
            f"catalog: {courses:,} courses, {dates:,} dates "
            f"(generated and snapshotted in {time.perf_counter() - started:.1f} s)"
        )
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
        site = root / "site"

        rows = [("cold build", timed_build(root))]
        before = mtimes(site)
        rows.append(("no-change rebuild", timed_build(root)))
        untouched = mtimes(site) == before
        change_one_course(root)
        rows.append(("1 course changed", timed_build(root)))

        size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file()) / 1e6
        print(f"site: {rows[0][1]['pages']:,} pages, {rows[0][1]['files']:,} files, {size:.0f} MB")
        print()
        header = f"{'case':<20}{'seconds':>9}{'written':>9}{'unchanged':>11}{'removed':>9}"
        print(header + f"{'pages/s':>9}{'peak RSS':>10}")
        for name, r in rows:
            rate = r["pages"] / r["wall"]
            print(
                f"{name:<20}{r['wall']:>9.2f}{r['written']:>9,}{r['unchanged']:>11,}"
                f"{r['removed']:>9,}{rate:>9,.0f}{r['rss_mb']:>8.0f} MB"
            )
        print()
        print(f"no-change rebuild left every file's mtime as it was: {untouched}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
