"""Publishing a set of files the way a build does (build.staging, SiteBuilder.files, build.publish),
without the rest of the build: for the tests of site/publish.py and the search index.

The publisher is the one production uses, configured as ``build.staging`` configures it but
for the build state: there is none (``record``: a first build, or one whose state is gone),
so the guarantees are proven on the path that trusts nothing. The record's path is proven
by whole builds (tests/test_incremental.py, tests/test_nightly.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from catalog_gen.site.publish import WRITTEN, Indexer, OutputReport, Publisher, SiteRecord


def publish(
    site: Path,
    files: Mapping[str, bytes],
    *,
    kept: Collection[str] = (),
    keep: Sequence[str] = (),
    protect: Path | None = None,
    indexer: Indexer | None = None,
    record: SiteRecord | None = None,
) -> OutputReport:
    """Make ``site`` hold ``files`` (path → bytes) and the ``kept`` files of the current site
    as they are: planned, put in file by file, indexed once the pages are in, swapped in;
    aborted on any error, as ``build.run_build`` does."""
    publisher = Publisher(site, keep=keep, protect=protect, record=record, indexer=indexer)
    try:
        publisher.plan([*files, *kept], kept=kept)
        written = [name for name in files if publisher.put(name, files[name]) == WRITTEN]
        pages = {name for name in (*written, *publisher.removed) if name.endswith(".html")}
        publisher.course_pages_done(pages)
        return publisher.commit()
    except BaseException:
        publisher.abort()
        raise
