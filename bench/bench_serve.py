"""How soon does ``catalog-gen serve`` show a template save in the open tab?

    python bench/bench_serve.py                   # 10,000 courses, about 50,000 dates
    python bench/bench_serve.py --courses 1000    # a quick run

Steps:

1. Generate a catalog and snapshot it (``make_project`` from bench_build.py), then build it
   once, untimed, with ``catalog-gen build --offline``: the site, build state and build cache
   a preview starts from after a night's build.
2. Start ``catalog-gen serve --port 0`` as a separate process, as a user runs it (the timings
   include its watcher noticing the save, as they would for a user), and wait for its first
   build to end.
3. Open a course page's event stream as its tab does (the reload script names the page in the
   stream's URL, so the server renders it first after a save).
4. Save ``templates/course.html`` (a new ``<title>`` each time) and time, from just before the
   write: **save → page**, until the stream names the page and a GET of it (what the
   browser's reload fetches) returns the new title; and **save → build done**, until the
   next message (the build behind the save has published site/, search index included).
   One untimed save first (it creates the override); then three timed saves, each after the
   last one's build ended; the median is printed beside the target, and every run.
5. The server's peak RSS (VmHWM), its terminal lines for the last save, and a check that
   site/ then holds the last save.

``--project DIR`` keeps the project there (a second run reuses it); ``BENCH_DEBUG=1`` prints
each save's two moments (the stream naming the page, the page served) and serve's lines.

Not part of the test suite: figures depend on the machine. docs/speed.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_build import NOW, make_project

#: The issue's target: a template save shows in the open course page within half a second.
TARGET_SECONDS = 0.5
OVERRIDE = (
    '{{% extends "!theme/course.html" %}}\n'
    "{{% block title %}}{marker} {{{{ course.title }}}}{{% endblock %}}\n"
)


class Server:
    """``catalog-gen serve`` in a process of its own; its stderr lines are collected."""

    def __init__(self, root: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "catalog_gen", "serve", "--port", "0", "--now", NOW.isoformat()],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.process.stdout.readline()
        match = re.match(r"serving (http://127\.0\.0\.1:\d+/)", line)
        if not match:
            raise SystemExit(f"serve did not start: {line}{self.process.stderr.read()}")
        self.url = match.group(1)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.put(line.rstrip("\n"))
            if os.environ.get("BENCH_DEBUG"):
                print(f"  serve: {line.rstrip()[:160]}", flush=True)

    def wait_line(self, prefix: str, timeout: float = 1800) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line.startswith(prefix):
                return line
            if line.startswith("error:"):
                raise SystemExit(f"serve: {line}")

    def drain(self) -> list[str]:
        lines = []
        while not self.lines.empty():
            lines.append(self.lines.get())
        return lines

    def peak_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


class Tab:
    """A tab's event stream, naming its page as the reload script does."""

    def __init__(self, url: str, page: str) -> None:
        self.messages: queue.Queue[dict] = queue.Queue()
        events = f"{url}__catalog-gen/events?page={quote(page)}"
        threading.Thread(target=self._read, args=(events,), daemon=True).start()
        self.messages.get(timeout=30)  # connected: the state it joined in

    def _read(self, events: str) -> None:
        with httpx.stream("GET", events, timeout=None) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    self.messages.put(json.loads(line[6:]))

    def next(self, timeout: float = 1800) -> dict:
        return self.messages.get(timeout=timeout)


#: One client for every page fetched, as a browser is one (made once: it costs more than a
#: page from 127.0.0.1).
BROWSER = httpx.Client(timeout=60)


def title(html: str) -> str:
    found = re.search(r"<title>(.*?)</title>", html, re.DOTALL)
    return found.group(1) if found else ""


def one_save(root: Path, server: Server, tab: Tab, page: str, marker: str) -> tuple[float, float]:
    """Save the override with ``marker``; (save → new page served, save → build done)."""
    override = root / "templates" / "course.html"
    temporary = override.with_name(".course.html.saving")
    temporary.write_text(OVERRIDE.format(marker=marker), encoding="utf-8")
    started = time.perf_counter()
    os.replace(temporary, override)  # saved at once, as editors save
    while True:  # the reload: the stream names the page (or says why not)
        message = tab.next()
        if message["error"]:
            raise SystemExit(f"serve: {message['error']}")
        if page in message["written"]:
            break
    told = time.perf_counter() - started
    response = BROWSER.get(server.url + page.removesuffix("index.html"))
    shown = time.perf_counter() - started
    if os.environ.get("BENCH_DEBUG"):
        print(f"  told {told:.3f} s, served {shown:.3f} s")
    if not title(response.text).startswith(marker):
        raise SystemExit(f"the reloaded page shows {title(response.text)!r}, not {marker!r}")
    message = tab.next()  # the build behind the save has published it
    built = time.perf_counter() - started
    if message["error"]:
        raise SystemExit(f"serve: {message['error']}")
    return shown, built


def prepare(root: Path, courses: int, dates_per_course: int) -> None:
    """A project with a snapshot of a generated catalog, built once (untimed)."""
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    courses, dates = make_project(root, courses, dates_per_course)
    print(f"{courses:,} courses, {dates:,} dates ({time.perf_counter() - started:.0f} s)")
    started = time.perf_counter()
    build = subprocess.run(
        [sys.executable, "-m", "catalog_gen", "build", "--offline", "-q", "--now", NOW.isoformat()],
        cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    if build.returncode != 0:
        raise SystemExit(f"build failed: {build.stderr}")
    print(f"first build (untimed): {time.perf_counter() - started:.0f} s")
    (root / "templates").mkdir(exist_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, default=10_000)
    parser.add_argument("--dates-per-course", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--project",
        type=Path,
        help="Keep the project in this folder (made there if it has no site/ yet; reused if "
        "it has, for a second run without generating and building again).",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        root = args.project or Path(folder)
        if not (root / "site").is_dir():
            prepare(root, args.courses, args.dates_per_course)
        (root / "templates" / "course.html").unlink(missing_ok=True)
        courses = len(list((root / "site").glob("kurs/*/index.html")))

        started = time.perf_counter()
        server = Server(root)
        try:
            serving = time.perf_counter() - started
            server.wait_line("built site/")
            ready = time.perf_counter() - started
            print(f"serve: serving after {serving:.1f} s, its first build done after {ready:.1f} s")
            site = root / "site"
            page = sorted(p.relative_to(site).as_posix() for p in site.glob("kurs/*/index.html"))[
                len(list(site.glob("kurs/*/index.html"))) // 2
            ]
            tab = Tab(server.url, page)
            one_save(root, server, tab, page, "Warm-up:")
            shown, built = [], []
            for run in range(1, args.runs + 1):
                seconds = one_save(root, server, tab, page, f"Run {run}:")
                shown.append(seconds[0])
                built.append(seconds[1])
            time.sleep(0.5)  # the build's line follows its message
            lines = server.drain()
            peak = server.peak_mb()
            on_disk = title((site / page).read_text(encoding="utf-8"))
        finally:
            server.stop()

    if not on_disk.startswith(f"Run {args.runs}:"):
        raise SystemExit(f"site/ holds {on_disk!r} after the last build, not the last save")
    runs = lambda values: ", ".join(f"{v:.2f}" for v in values)  # noqa: E731
    print(f"\ntemplates/course.html saved, {courses:,} course pages, median of {args.runs}:")
    print(
        f"  save → open page served:  {statistics.median(shown):6.2f} s  "
        f"(target ≤ {TARGET_SECONDS} s)  runs: {runs(shown)}"
    )
    print(f"  save → build done:        {statistics.median(built):6.2f} s  runs: {runs(built)}")
    print(f"  serve's peak RSS: {peak:,.0f} MB")
    print("  serve's lines for the last save:")
    for line in lines[-3:]:
        print(f"    {line}")


if __name__ == "__main__":
    main()
