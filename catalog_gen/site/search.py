"""Full-text search without a server: Pagefind indexes the built pages into static files.

Pagefind reads the HTML of the staged site (before it is swapped in, so a failed index never
publishes a site without search) and writes its index and UI into ``pagefind/``. Only course
pages are indexed: they mark their content with ``data-pagefind-body``, which tells Pagefind
to leave every other page out, so a search finds courses rather than list pages. Pagefind is
also given their glob, so it does not parse the list pages only to leave them out: the same
index in half the time (13 s instead of 24 s at 10,000 courses).

The indexer is the ``pagefind_bin`` wheel's binary, run through ``python -m pagefind`` so the
interpreter that runs catalog-gen finds the one installed beside it. Its output is
deterministic: equal pages give equal index files, which output.py then keeps untouched.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from catalog_gen.errors import BuildError
from catalog_gen.site.pages import SEARCH_INDEX

#: A big site's index takes seconds; a hung indexer must not hang a nightly run.
INDEX_TIMEOUT_SECONDS = 600


def index_site(folder: Path, *, language: str, pages: str = "**/*.html") -> None:
    """Write Pagefind's index of the HTML in ``folder`` into ``folder/pagefind/``, reading
    the pages that match the glob ``pages``, or every page when none does (a catalog with no
    published course: Pagefind fails on an empty index, and the search page needs one)."""
    if not any(folder.glob(pages)):
        pages = "**/*.html"
    command = [
        sys.executable,
        "-m",
        "pagefind",
        "--site",
        str(folder),
        "--glob",
        pages,
        "--output-subdir",
        SEARCH_INDEX,
        "--force-language",
        language,
        "--silent",
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=INDEX_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise BuildError(
            f"search indexing (pagefind) took more than {INDEX_TIMEOUT_SECONDS} s; nothing was "
            "published"
        ) from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit code {result.returncode}"
        hint = ""
        if "No module named pagefind" in (result.stderr or ""):
            hint = "; install it with pip install 'pagefind[bin]' or set site.search = false"
        raise BuildError(f"search indexing (pagefind) failed: {reason}{hint}")
