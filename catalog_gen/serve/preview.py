"""A preview of one project: it builds, watches the project's sources, and serves.

A watcher thread (watchfiles) on the project's source folders (templates, theme, content,
static files, catalog.toml, and a new snapshot in the snapshot folder) triggers the live site
(serve/live.py) after a save; the output folder is not watched, so a build never triggers
itself. The HTTP server (serve/http.py) serves what the live site and ``site/`` hold, and
tells the open tabs what changed.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

import watchfiles

from catalog_gen.config import Config
from catalog_gen.serve.http import TabNews, _Handler, _Server
from catalog_gen.serve.live import LiveSite

#: Milliseconds of changes the watcher reports at once, at most: a save is seen this soon
#: even while a build writes files in the project folder (their events are dropped).
WATCH_BATCH_MS = 100

#: One batch of changes as watchfiles reports it: (what happened, which path).
Changes: TypeAlias = set[tuple[watchfiles.Change, str]]


class Preview:
    """Builds, watches and serves one project until ``stop()``.

    ``snapshots`` is the snapshot folder: a new snapshot there is shown at once.
    """

    def __init__(
        self,
        *,
        site: LiveSite,
        site_dir: Path,
        watch: list[Path],
        sources: list[Path],
        ignore: list[Path],
        snapshots: Path | None = None,
        port: int = 8000,
        log: Callable[[str], None] = print,
    ):
        self.site = site
        self.site_dir = site_dir
        self._watch = watch
        self._sources = [p.resolve() for p in sources]
        self._ignore = [p.resolve() for p in ignore]
        self._snapshots = snapshots.resolve() if snapshots is not None else None
        self._log = log
        self.state = TabNews()
        site.tell = self.state.record
        self._open: Counter[str] = Counter()
        self._open_lock = threading.Lock()
        self.stopping = threading.Event()
        self.server = _Server(("127.0.0.1", port), _Handler)
        self.server.preview = self
        self._threads: list[threading.Thread] = []
        self._default_filter = watchfiles.DefaultFilter()
        # The site and what builds keep beside it (.site.staging-*, .site.spare, the build
        # cache): a build there makes an event per file, thousands of them, each told apart
        # by its name alone, before anything slower.
        folders = {str(site_dir), os.path.realpath(site_dir)}
        self._output = folders
        self._output_inside = tuple(
            prefix
            for folder in folders
            for prefix in (
                folder + os.sep,
                f"{os.path.dirname(folder)}{os.sep}.{os.path.basename(folder)}.",
            )
        )
        self._ready = threading.Event()
        self._built_from: frozenset[tuple[str, int, int]] = frozenset()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def rebuild(self, *, fatal: tuple[type[Exception], ...] = ()) -> None:
        """Show the project as it is now: the open pages at once, the rest behind them (see
        serve/live.py); errors become the error page, unless of a ``fatal`` kind (raised)."""
        self._built_from = self.fingerprint()
        self.site.refresh(self.open_pages(), fatal=fatal)

    # -- the pages open in tabs ---------------------------------------------------------------

    def opened(self, page: str) -> None:
        """A tab's event stream names its page."""
        with self._open_lock:
            self._open[page] += 1

    def closed(self, page: str) -> None:
        """That tab's stream ended (closed, reloaded, or dropped)."""
        with self._open_lock:
            self._open[page] -= 1
            if self._open[page] <= 0:
                del self._open[page]

    def open_pages(self) -> list[str]:
        """The pages open in tabs now, each once."""
        with self._open_lock:
            return sorted(self._open)

    def start(self, ready_within: float = 10.0) -> Preview:
        """Serve and watch; returns once the watcher runs, so no early edit is missed."""
        for target in (self.server.serve_forever, self._watch_loop):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._ready.wait(ready_within)
        return self

    def stop(self) -> None:
        self.stopping.set()
        with self.state.changed:
            self.state.changed.notify_all()  # release the event streams
        self.server.shutdown()
        self.server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.site.stop()

    def _watch_loop(self) -> None:
        """Watch until stopped; each batch of changes to sources shows the project anew.

        Two watchers: the source folders (and the snapshot folder) with everything in them,
        and only the top of the folders that hold catalog.toml or a source folder not made
        yet. Never the project folder as a whole: the site and what builds keep beside it
        would take an inotify watch per folder (tens of thousands at 10,000 courses), and a
        build's events would overflow the kernel's queue, losing a save made just after it.
        When a missing source folder appears, the watchers start again with it."""
        batches: queue.Queue[tuple[str, Changes]] = queue.Queue()
        while not self.stopping.is_set():
            folders, tops, missing = self._watch_plan()
            restart = threading.Event()
            stop = _Either(self.stopping, restart)
            plan = {"folders": (folders, True), "tops": (tops, False)}
            feeds = [
                threading.Thread(
                    target=self._feed, args=(name, paths, recursive, stop, batches), daemon=True
                )
                for name, (paths, recursive) in plan.items()
                if paths
            ]
            for feed in feeds:
                feed.start()
            expected = {name for name, (paths, _) in plan.items() if paths}
            running: set[str] = set()
            while not stop.is_set():
                try:
                    name, changes = batches.get(timeout=0.25)
                except queue.Empty:
                    name, changes = "", set()
                if expected - running:
                    running.add(name)
                    if running >= expected:
                        self._started()
                if changes:
                    self._changed(changes)
                if any(folder.exists() for folder in missing):
                    restart.set()  # and the new folder's files were shown by _changed or next
            for feed in feeds:
                feed.join(timeout=5)

    def _watch_plan(self) -> tuple[list[Path], list[Path], list[Path]]:
        """(folders watched with all they hold, folders watched at their top only, source
        folders not made yet)."""
        folders = [p for p in self._sources if p.is_dir()]
        missing = [p for p in self._sources if not p.exists()]
        if self._snapshots is not None:
            self._snapshots.mkdir(parents=True, exist_ok=True)
            folders.append(self._snapshots)
        parents = {p.parent for p in self._sources if not p.is_dir()}
        tops = [p for p in sorted(parents) if p.is_dir()]
        return folders, tops, missing

    def _feed(
        self,
        name: str,
        paths: list[Path],
        recursive: bool,
        stop: _Either,
        batches: queue.Queue[tuple[str, Changes]],
    ) -> None:
        for changes in watchfiles.watch(
            *paths,
            watch_filter=self._relevant,
            stop_event=stop,
            step=30,
            debounce=WATCH_BATCH_MS,
            rust_timeout=250,
            yield_on_timeout=True,  # the first (empty) yield says the watcher is running
            raise_interrupt=False,
            recursive=recursive,
        ):
            batches.put((name, changes))

    def _started(self) -> None:
        """The watchers run: an edit made before they did (or, after a restart, in the new
        folder) has no event, so compare the source files with what the last save saw."""
        if self.fingerprint() != self._built_from:
            self._log("changed while starting")
            self.rebuild()
        self._ready.set()

    def _changed(self, changes: Changes) -> None:
        names = sorted({Path(p).name for _, p in changes if not self._in_snapshots(p)})
        if names:
            self._log(f"changed: {', '.join(names[:5])}{' …' if len(names) > 5 else ''}")
        elif self.site.snapshot_changed():
            self._log("new snapshot")
        else:
            return  # a fetch that found nothing new, the lock file
        self.rebuild()

    def fingerprint(self) -> frozenset[tuple[str, int, int]]:
        """(path, mtime, size) of every source file the watcher would report."""
        found: set[tuple[str, int, int]] = set()
        for source in self._sources:
            files = [source] if source.is_file() else source.rglob("*") if source.is_dir() else []
            for path in files:
                if path.is_file() and self._relevant(watchfiles.Change.modified, str(path)):
                    stat = path.stat()
                    found.add((str(path), stat.st_mtime_ns, stat.st_size))
        return frozenset(found)

    def _in_snapshots(self, path: str) -> bool:
        folder = self._snapshots
        resolved = Path(path).resolve()
        return folder is not None and (resolved == folder or folder in resolved.parents)

    def _relevant(self, change: watchfiles.Change, path: str) -> bool:
        """Source files only: not the output, editor droppings or hidden folders; of the
        snapshot folder, what appears at its top (a new snapshot is renamed into place)."""
        if path.startswith(self._output_inside) or path in self._output:
            return False
        resolved = Path(path).resolve()
        if self._snapshots is not None and self._in_snapshots(path):
            inside = resolved.relative_to(self._snapshots).parts
            return len(inside) == 1 and not inside[0].startswith(".")
        if not any(resolved == p or p in resolved.parents for p in self._sources):
            return False  # logs, notes, editors' files elsewhere in the project
        if any(resolved == p or p in resolved.parents for p in self._ignore):
            return False
        for root in self._watch:
            # Hidden files and folders under a watched folder, among them site/'s staging
            # folders (.site.staging-*), whose files move during every build.
            if root.resolve() in resolved.parents:
                inside = resolved.relative_to(root.resolve()).parts
                if any(part.startswith(".") for part in inside):
                    return False
        return self._default_filter(change, path)


class _Either:
    """Set when either event is: stops a watcher on Ctrl-C or for a restart."""

    def __init__(self, first: threading.Event, second: threading.Event) -> None:
        self.first, self.second = first, second

    def is_set(self) -> bool:
        return self.first.is_set() or self.second.is_set()


def source_paths(config: Config, theme: Path) -> list[Path]:
    """What a build reads besides the snapshot: the files whose edits trigger a rebuild."""
    root = config.root
    folders = (config.site.templates_dir, config.site.content_dir, "static", "themes")
    return [config.source or root / "catalog.toml", theme, *(root / f for f in folders)]


def watched_paths(project_root: Path, theme: Path) -> list[Path]:
    """The project folder, and the theme's when it lives elsewhere (a bundled theme)."""
    paths = [project_root]
    if project_root.resolve() not in theme.resolve().parents:
        paths.append(theme)
    return paths
