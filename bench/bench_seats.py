"""What does "fresher seats" cost? An hourly ``catalog-gen build`` in opening hours, measured.

    python bench/bench_seats.py                        # 1,000 and 10,000 courses
    python bench/bench_seats.py --courses 1000         # one size
    python bench/bench_seats.py --courses 1000 --hours 10 --bookings 5

``init --hourly 8-17`` adds an hourly run of the nightly build, Monday to Friday: ten runs a
weekday. Each run is the incremental fetch (the course list, every current date again through
``/batch/coursedates``, details only for changed courses) and the build of what changed. This
measures it as cron runs it: ``catalog-gen build --json`` processes against the emulator on
127.0.0.1, which enforces Frontcore's 5 requests per second, at the default
``frontcore.rate_limit`` (4). The requests are counted from the emulator's own log.

Steps, per size:

1. Generate the deterministic sample catalog (``catalog_gen.demo.sample``, 5 dates per
   course) and run the night before: a full fetch and a cold build (untimed, printed).
2. ``--hours`` hourly runs an hour apart (default 10: 08:15 to 17:15). Before every second
   one, ``--bookings`` dates are booked (a seat fewer each, as ``set_free_seats`` does in
   Frontcore: the seat count changes, ``updated_at`` does not); the others find nothing new.
3. Print per run: requests (course list pages, batch date pages, other), seconds of the fetch
   and of the whole process, whether a snapshot was saved, and pages rendered and written:
   a run that finds nothing writes nothing, and a booking rewrites the pages that show that
   date's seats (its course page, the lists and calendar pages that show it), with their
   "seats as of" stamp, and no other.
4. Print a day's total (requests, and the share of Frontcore's 5 per second the runs took).

Not part of the test suite: figures depend on the machine. docs/unattended.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from catalog_gen.demo.emulator import Emulator
from catalog_gen.demo.sample import generate_catalog

OSLO = ZoneInfo("Europe/Oslo")
NIGHT = datetime(2026, 11, 23, 3, 15, tzinfo=OSLO)  # a Monday
FIRST_HOUR = datetime(2026, 11, 23, 8, 15, tzinfo=OSLO)
KEY = "bench-key"


def build(root: Path, now: datetime, api: dict[str, str]) -> tuple[dict, float]:
    """One ``catalog-gen build --json`` process, as cron runs it: its report and seconds."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "catalog_gen", "build", "--json", "--now", now.isoformat()],
        cwd=root, env={**os.environ, **api}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"build failed: {result.stderr}")
    return json.loads(result.stdout), seconds


def kinds(emulator: Emulator) -> Counter:
    """The requests of the last run, by what they asked for."""
    found: Counter = Counter()
    for request in emulator.requests:
        path = request.path.split("?")[0]
        found[
            "list"
            if path.endswith("/courses")
            else "dates"
            if path.endswith("/batch/coursedates")
            else "other"
        ] += 1
    return found


def bookable(catalog, count: int, hour: int) -> list[int]:
    """``count`` dates with free seats to book in hour ``hour`` (different ones each hour)."""
    found = [
        did
        for did, record in sorted(catalog.coursedates.items())
        if str(record.get("start_at", ""))[:10] > "2026-12-01"
        and int(record["seats"]["free"]["num"]) > 1
        and record["seats"]["allocated_capacity"]["num"]
    ]
    step = max(len(found) // (count * 24), 1)
    return found[hour * count * step :: step][:count]


def one_size(courses: int, hours: int, bookings: int, search: bool) -> None:
    root = Path(tempfile.mkdtemp(prefix="catalog-seats-"))
    try:
        toml = "" if search else "[site]\nsearch = false\n"
        (root / "catalog.toml").write_text(toml, encoding="utf-8")
        catalog = generate_catalog(courses, today=NIGHT.date(), dates_per_course=5)
        with Emulator(catalog, api_key=KEY) as emulator:  # Frontcore's own limit: 5 per second
            api = {"FRONTCORE_API_URL": emulator.base_url, "FRONTCORE_API_KEY": KEY}
            emulator.clear_log()
            night, seconds = build(root, NIGHT, api)
            print(
                f"\n{courses:,} courses, {len(catalog.coursedates):,} dates; the night before "
                f"(full fetch + cold build): {len(emulator.requests)} requests, "
                f"{night['fetch']['seconds']:.1f} s fetching, {seconds:.1f} s in all, "
                f"{night['pages']:,} pages"
            )
            print(
                f"{'run':<7}{'booked':>7}{'requests':>9}{'list':>6}{'dates':>6}{'other':>6}"
                f"{'fetch s':>9}{'run s':>7}{'saved':>7}{'rendered':>9}{'written':>8}"
            )
            totals: Counter = Counter()
            quiet, busy = [], []
            for hour in range(hours):
                now = FIRST_HOUR + timedelta(hours=hour)
                booked = bookable(catalog, bookings, hour) if hour % 2 else []
                for did in booked:  # one seat booked on each
                    free = int(catalog.coursedates[did]["seats"]["free"]["num"])
                    catalog.set_free_seats(did, free - 1)
                emulator.clear_log()
                report, seconds = build(root, now, api)
                asked = kinds(emulator)
                totals.update(asked)
                (busy if booked else quiet).append(len(emulator.requests))
                print(
                    f"{now:%H:%M}  {len(booked):>7}{len(emulator.requests):>9}{asked['list']:>6}"
                    f"{asked['dates']:>6}{asked['other']:>6}{report['fetch']['seconds']:>9.1f}"
                    f"{seconds:>7.1f}{'yes' if report['fetch']['saved'] else 'no':>7}"
                    f"{report['rendered']:>9,}{report['written']:>8,}"
                )
            requests = sum(totals.values())
            print(
                f"a weekday of {hours} hourly runs: {requests:,} requests "
                f"(median {statistics.median(quiet or [0]):.0f} a run with nothing new, "
                f"{statistics.median(busy or [0]):.0f} with bookings); at 4 per second that is "
                f"{requests / 4 / 60:.1f} minutes of the account's API time a day"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, action="append", help="default: 1000 and 10000")
    parser.add_argument("--hours", type=int, default=10, help="hourly runs (default 10)")
    parser.add_argument("--bookings", type=int, default=5, help="dates booked every other hour")
    parser.add_argument("--search", choices=("on", "off"), default="on")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    for courses in args.courses or [1000, 10_000]:
        one_size(courses, args.hours, args.bookings, args.search == "on")


if __name__ == "__main__":
    main()
