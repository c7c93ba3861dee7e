"""What does the search index cost, in one index or in shards: to build, to keep up to date,
and on the search page?

    python bench/bench_search.py /tmp/catalog-10k            # index and search page, 1 and 16
    python bench/bench_search.py /tmp/catalog-10k --shards 1 4 8 16 32 --measure index
    python bench/bench_search.py /tmp/catalog-10k --measure builds --runs 3
    python bench/bench_search.py /tmp/catalog-1k --courses 1000 --latency-ms 0 50

The project (a folder ``bench_build.py --keep`` made, or made here with its ``make_project``
when the folder has no catalog.toml: ``--courses``, 5 dates each) is built as it is (``--now``
the benchmark's day) and a day later, once each, into ``<project>/site`` and
``<project>-day/site``, unless they are there already. Then, for each shard count, on
hard-linked copies of those sites:

1. from scratch: every shard indexed (``index_site`` with nothing to start from);
2. one course changed: that course's page edited (its title), its shard indexed again;
3. a day later: the day-0 index brought up to date with the day-1 site (every course page
   that differs between the two counts as written), checked byte for byte against an index
   of the day-1 site made from scratch;
4. the search page (``--measure page``): chromium (Debian's, through Playwright)
   opens the search page on 127.0.0.1 with a cold cache, types a query (``--query``), and
   waits for the first results to be drawn; printed are the bytes it fetched from
   ``pagefind/``, its requests, and the time from typing to results (Pagefind's UI waits
   300 ms after the last key before searching; that wait is in the figure) and from opening
   the page to results;
5. whole builds (``--measure builds``, not by default): ``catalog-gen build --offline``
   processes in the project itself, bench_build.py's cases "1 course changed" and "a day
   later", with the index in that many shards: the build's seconds and the indexer's.

Seconds are wall time (median of ``--runs``) and the CPU seconds of the Pagefind processes.
Not part of the test suite: figures depend on the machine (docs/speed.md quotes them).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import NOW, make_project

from catalog_gen.site.pages import SEARCH_INDEX, Urls
from catalog_gen.site.search import index_site

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic"]
#: Results drawn: at least one result, none still loading, every one with its link.
RESULTS_DRAWN = """() => {
    const results = document.querySelectorAll('.pagefind-ui__results > .pagefind-ui__result');
    return results.length > 0
        && !document.querySelector('.pagefind-ui__results .pagefind-ui__loading')
        && document.querySelectorAll('.pagefind-ui__result-link').length === results.length;
}"""


def build(project: Path, day: int) -> None:
    now = NOW + timedelta(days=day)
    command = ["catalog-gen", "build", "--offline", "--now", now.isoformat()]
    subprocess.run(command, cwd=project, check=True, stdout=subprocess.DEVNULL)


def sites(project: Path) -> tuple[Path, Path]:
    """The project's site as built on the benchmark's day and a day later (built if missing)."""
    if not (project / "site").is_dir():
        build(project, 0)
    later = project.with_name(project.name + "-day")
    if not (later / "site").is_dir():
        shutil.copytree(project, later, copy_function=os.link, dirs_exist_ok=True)
        build(later, 1)
    return project / "site", later / "site"


def pages_of(site: Path, glob: str) -> dict[str, Path]:
    skip = len(str(site)) + 1
    return {str(p)[skip:]: p for p in site.glob(glob)}


def differing(before: Path, after: Path, glob: str) -> set[str]:
    """The course pages written or removed from ``before`` to ``after``."""
    old, new = pages_of(before, glob), pages_of(after, glob)
    changed = set(old) ^ set(new)
    for name in set(old) & set(new):
        if old[name].read_bytes() != new[name].read_bytes():
            changed.add(name)
    return changed


def link_copy(site: Path, into: Path, *, index_from: Path | None = None) -> Path:
    """A hard-linked copy of ``site`` without its index (with ``index_from``'s, if given, as
    publish carries the old index into the staging folder)."""
    shutil.rmtree(into, ignore_errors=True)
    ignore = shutil.ignore_patterns(SEARCH_INDEX)
    shutil.copytree(site, into, copy_function=os.link, ignore=ignore)
    if index_from is not None:
        shutil.copytree(index_from / SEARCH_INDEX, into / SEARCH_INDEX, copy_function=os.link)
    return into


def timed(action) -> tuple[float, float]:
    """Wall seconds and the CPU seconds of the child processes (Pagefind) of ``action()``."""
    before, started = os.times(), time.perf_counter()
    action()
    after = os.times()
    cpu = after.children_user - before.children_user
    cpu += after.children_system - before.children_system
    return time.perf_counter() - started, cpu


def index_files(site: Path) -> dict[str, bytes]:
    root = site / SEARCH_INDEX
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def median(rows: list[tuple[float, float]]) -> tuple[float, float]:
    ordered = sorted(rows)
    return ordered[len(ordered) // 2]


def index_costs(day0: Path, day1: Path, work: Path, shards: int, runs: int, glob: str) -> dict:
    """Seconds (wall, cpu) for: from scratch, one course changed, a day later."""
    index = functools.partial(index_site, language="nb", pages=glob, shards=shards)
    scratch = link_copy(day0, work / "scratch")
    figures = {"scratch": median([timed(lambda: index(scratch)) for _ in range(runs)])}

    course = sorted(pages_of(scratch, glob))[len(pages_of(scratch, glob)) // 2]
    one = []
    for run in range(runs):
        edited = link_copy(day0, work / "one", index_from=scratch)
        html = (edited / course).read_text(encoding="utf-8")
        (edited / course).unlink()  # a new file, as publish writes it (not the linked one)
        (edited / course).write_text(html.replace("</h1>", f" (ny {run})</h1>", 1), "utf-8")
        one.append(timed(lambda: index(edited, {course})))  # noqa: B023
    figures["one course"] = median(one)

    changed = differing(day0, day1, glob)
    later = []
    for _ in range(runs):
        updated = link_copy(day1, work / "later", index_from=scratch)
        later.append(timed(lambda: index(updated, changed)))  # noqa: B023
    figures["a day later"] = median(later)
    clean = link_copy(day1, work / "clean")
    index(clean)
    figures["identical"] = index_files(clean) == index_files(updated)
    figures["changed pages"] = len(changed)
    figures["files"] = len(index_files(clean))
    figures["bytes"] = sum(map(len, index_files(clean).values()))
    return figures


class CountingHost(SimpleHTTPRequestHandler):
    """A static server that notes every file it sends: (seconds, path, bytes). The count is
    taken here because Pagefind fetches from a web worker, whose requests the page's own
    network events do not show."""

    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".pagefind": "application/octet-stream",
    }
    sent: ClassVar[list[tuple[float, str, int]]] = []
    #: Seconds each answer waits: a visitor far from the server (its round trip).
    latency: ClassVar[float] = 0.0

    def send_head(self):
        time.sleep(self.latency)
        body = super().send_head()
        if body is not None and hasattr(body, "fileno"):
            size = os.fstat(body.fileno()).st_size
            self.sent.append((time.perf_counter(), self.path.split("?")[0], size))
        return body

    def log_message(self, *args) -> None:
        pass


def search_page_cost(site: Path, query: str, runs: int) -> dict:
    """Cold-cache loads of the search page on 127.0.0.1: bytes, requests and milliseconds."""
    from playwright.sync_api import sync_playwright

    handler = functools.partial(CountingHost, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    rows = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(runs):
                rows.append(one_search(browser, base, query))
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    by_time = sorted(rows, key=lambda r: r["typed to results ms"])
    return by_time[len(by_time) // 2]


def one_search(browser, base: str, query: str) -> dict:
    context = browser.new_context()  # a new profile: nothing cached
    page = context.new_page()
    CountingHost.sent.clear()
    opened = time.perf_counter()
    page.goto(base + Urls("nb").search().removesuffix("index.html"), wait_until="load")
    field = page.locator(".pagefind-ui__search-input")
    field.wait_for()
    typed = time.perf_counter()
    field.fill(query)
    page.wait_for_function(RESULTS_DRAWN, timeout=60_000)
    done = time.perf_counter()
    results = page.locator(".pagefind-ui__result").count()
    context.close()
    index = [(at, size) for at, path, size in CountingHost.sent if f"/{SEARCH_INDEX}/" in path]
    later = [size for at, size in index if at >= typed]
    return {
        "typed to results ms": (done - typed) * 1000,
        "opened to results ms": (done - opened) * 1000,
        "index requests": len(index),
        "index kB": sum(size for _, size in index) / 1000,
        "requests after typing": len(later),
        "kB after typing": sum(later) / 1000,
        "results shown": results,
    }


#: Prepended to bench_build's wrapper of a build process: the shard count from BENCH_SHARDS.
SHARDS_PATCH = """
import os
from catalog_gen.site import search
search.index_site.__kwdefaults__["shards"] = int(os.environ["BENCH_SHARDS"])
"""


def build_costs(project: Path, shards: int, runs: int) -> dict[str, dict]:
    """Whole ``catalog-gen build --offline`` processes (bench_build.py's cases) with the index
    in ``shards`` shards: one course changed, a day later. Their reports (median run)."""
    import bench_build

    if not bench_build.PEAK_WRAPPER.startswith(SHARDS_PATCH):
        bench_build.PEAK_WRAPPER = SHARDS_PATCH + bench_build.PEAK_WRAPPER
    os.environ["BENCH_SHARDS"] = str(shards)
    bench_build.timed_build(project)  # untimed: the index made again in this shard count
    cases = ("1 course changed", "a day later")
    return {case: bench_build.median_report(bench_build.run_case(project, case, runs)[0])
            for case in cases}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", type=Path, help="a project folder (made if need be)")
    parser.add_argument("--courses", type=int, default=10_000, help="when making the project")
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--measure",
        nargs="+",
        choices=("index", "page", "builds"),
        default=["index", "page"],
        help="the index's costs, the search page's, whole builds' (default: index page)",
    )
    parser.add_argument("--query", default="excel")
    parser.add_argument(
        "--latency-ms", type=float, nargs="+", default=[0.0], help="each answer waits this long"
    )
    args = parser.parse_args()
    glob = Urls("nb").course_pages()
    project = args.project.resolve()
    if not (project / "catalog.toml").is_file():
        project.mkdir(parents=True, exist_ok=True)
        make_project(project, args.courses, 5)
    day0, day1 = sites(project)
    print(f"machine: {os.cpu_count()} CPUs; {len(pages_of(day0, glob)):,} course pages")
    work = Path(tempfile.mkdtemp(prefix="bench-search-", dir=day0.parent))
    try:
        for shards in args.shards:
            print(f"-- {shards} shard(s)")
            if "index" in args.measure:
                f = index_costs(day0, day1, work, shards, args.runs, glob)
                for case in ("scratch", "one course", "a day later"):
                    print(f"index, {case}: {f[case][0]:.2f} s (Pagefind CPU {f[case][1]:.2f} s)")
                print(
                    f"index: {f['changed pages']:,} course pages differ a day later; equal to a"
                    f" clean index: {f['identical']}; {f['files']:,} files, "
                    f"{f['bytes'] / 1e6:.1f} MB"
                )
            elif "page" in args.measure:
                index_site(
                    link_copy(day1, work / "clean"), language="nb", pages=glob, shards=shards
                )
            for latency in args.latency_ms if "page" in args.measure else []:
                CountingHost.latency = latency / 1000
                cost = search_page_cost(work / "clean", args.query, args.runs)
                figures = (f"{k} {v:,.0f}" for k, v in cost.items())
                print(f"search page, {latency:g} ms a request: " + ", ".join(figures))
            if "builds" in args.measure:
                for case, r in build_costs(day0.parent, shards, args.runs).items():
                    print(
                        f"build, {case}: {r['wall']:.2f} s, of which search index "
                        f"{r['index_seconds']:.2f} s; {r['written']:,} files written"
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
