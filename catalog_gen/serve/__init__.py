"""``catalog-gen serve``: the site on 127.0.0.1, rebuilt and reloaded as you edit.

Three parts, each simple on its own, and one way in (``open_preview``, which the command line
and the tests both call):

- ``live.py``, the live site: after a save it renders the pages open in tabs first, from a
  builder kept warm between saves (site/warm.py: the snapshot's catalog and page plan stay in
  memory), then runs the same ``run_build`` as ``build --offline`` behind them, so the
  published site is the one ``build`` makes, byte for byte; until that build has published
  the save, any page or static file is rendered fresh on request, never the old one from
  the disk;
- ``preview.py``, a watcher thread (watchfiles) on the project's sources (templates, theme,
  content, static files, catalog.toml, and a new snapshot in the snapshot folder) that
  triggers it; the output folder is not watched;
- ``http.py``, a threaded HTTP server that serves the site read-only and adds, to HTML
  responses only, a small script listening on a server-sent-events stream that says which
  files changed: a tab reloads only when its own page, a stylesheet, or the error state
  changed.

While the last save failed, every page answers with an error page naming the file and line;
the next good save recovers, and the open tabs reload by themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from catalog_gen.config import Config
from catalog_gen.errors import SnapshotError
from catalog_gen.serve.live import LiveSite
from catalog_gen.serve.preview import Preview, source_paths, watched_paths
from catalog_gen.site.render import find_theme

__all__ = ["Preview", "open_preview"]


def open_preview(
    config: Callable[[], Config],
    *,
    now: Callable[[Config], datetime],
    log: Callable[[str], None],
    port: int = 0,
    ignore: Sequence[Path] = (),
) -> Preview:
    """The preview of a project, built once and serving until ``stop()``.

    ``config`` reads the project's settings again (catalog.toml may change between saves),
    ``now`` is the clock a build runs at, ``log`` prints a line for the developer. Raises
    OSError when the port cannot be had, SnapshotError when there is no snapshot to build
    from (nothing is served then: the message says what to run)."""
    first = config()
    theme = find_theme(first.site.theme, first.root)
    site = LiveSite(config=config, now=now, log=log)
    try:
        preview = Preview(
            site=site,
            site_dir=first.output_path,
            watch=watched_paths(first.root, theme),
            sources=source_paths(first, theme),
            ignore=[first.output_path, first.snapshot_path, *ignore],
            snapshots=first.snapshot_path,
            port=port,
            log=log,
        )
    except OSError:
        site.stop()
        raise
    try:
        preview.rebuild(fatal=(SnapshotError,))
    except SnapshotError:
        preview.server.server_close()
        site.stop()
        raise
    return preview.start()
