"""Full-text search without a server: Pagefind's index of the course pages, in shards.

Pagefind reads the HTML of the staged site (before it is swapped in, so a failed index never
publishes a site without search) and writes static index files that its UI, on the search
page, fetches as a visitor types. Only course pages are indexed: they mark their content with
``data-pagefind-body``, and Pagefind is given only them to read, so a search finds courses
rather than list pages.

One index over every course page would have to be made again whole whenever one page
changed (7 s at 10,000 courses). So the pages are split into ``SHARDS`` shards by a stable
hash of their record's id (the number a page's folder ends with: a course page is
``kurs/<title>-<id>/``, so a course keeps its shard when its title changes), each shard a
Pagefind index of its own, and a build indexes again only the shards that hold a course page
it wrote or removed; the others are carried over as they were (same bytes, same mtime).
The search page loads Pagefind once, opens the first shard and merges the others with
Pagefind's own ``mergeIndex``, which searches every index and ranks their results together
(each shard scores with its own word counts; the hash makes the shards alike, so the ranking
is the one index's in all but close calls). The shard count is a trade measured in
docs/speed.md: more shards make one change cheaper and the search page dearer.

The folder the site serves (``pagefind/``)::

    pagefind/              Pagefind's scripts and UI (pagefind.js, pagefind-ui.js, ...), once
    pagefind/shards.json   the shards the search page merges, and what they were made with
    pagefind/00/ …         one shard each: Pagefind's output for its pages but the scripts:
                           the index (pagefind-entry.json, *.pf_meta, index/, fragment/) and
                           the engine (wasm.*.pagefind, pagefind-worker.js), which Pagefind
                           loads from the shard it opens first

Each shard is indexed by the ``pagefind_bin`` wheel's binary, run on a folder of hard links to
the shard's pages (so its result addresses are the pages' own), as many at once as there are
CPUs. Pagefind's output is deterministic: equal pages give equal index files, so an
incremental build gives the index a clean build gives, byte for byte.

The old index is trusted only as far as ``shards.json`` vouches for it: the settings it was
made with (Pagefind's version, the language, the pages read, how pages are sharded, the count)
and a digest of every file of the index (name and size; Pagefind names its index files by
their content). Any difference (a file missing or added, another Pagefind) makes the index
again whole.

Not through Pagefind's Python API (``pagefind.index.PagefindIndex``), though it takes pages
from memory: its client reads one answer from the indexer every 0.1 s, so adding 50 pages one
by one takes 5 s where the command line indexes 600 in one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path, PurePosixPath

from catalog_gen.config import child_environment
from catalog_gen.errors import BuildError
from catalog_gen.site.pages import SEARCH_INDEX

#: Shards of the course pages. Chosen by measurement (docs/speed.md).
SHARDS = 16
#: Names the shards and vouches for the index; read by the search page (search.js).
MANIFEST = "shards.json"
#: A big site's index takes seconds; a hung indexer must not hang a nightly run.
INDEX_TIMEOUT_SECONDS = 600
#: Every page, when no page matches the course glob (a catalog with no published course: the
#: search page still needs an index to open).
EVERY_PAGE = "**/*.html"
#: How a page's shard is computed (shard_of), recorded in the manifest: an index whose
#: pages were placed otherwise is made again whole rather than merged with new shards.
SHARDING = "blake2b-64 of the folder's trailing id (else the path), modulo count"
#: What a shard keeps of Pagefind's output; the rest (pagefind.js, the UIs and their styles)
#: is the same for every shard and is kept once, in ``pagefind/``.
SHARD_FILES = ("index", "fragment", "filter", "pagefind-entry.json", "pagefind-worker.js")
SHARD_SUFFIXES = (".pf_meta", ".pagefind")


def index_site(
    folder: Path,
    changed: Collection[str] | None = None,
    files: Collection[str] | None = None,
    index: Mapping[str, int] | None = None,
    *,
    language: str,
    pages: str = EVERY_PAGE,
    shards: int = SHARDS,
    launched: Callable[[], None] | None = None,
) -> None:
    """Bring ``folder/pagefind/`` up to date with the pages in ``folder`` that match the glob
    ``pages`` (every page when none does).

    ``changed`` names the pages (relative POSIX paths) written or removed since the index in
    ``folder/pagefind/`` was made; only their shards are indexed again. None, or an index
    that ``shards.json`` does not vouch for, makes every shard again. Files are replaced,
    never written into (the old ones may be hard links to the live site's).

    ``files`` names the files of the site and ``index`` those of the old index (inside
    ``pagefind/``) with their sizes, when the caller knows them (the publisher does), so
    that neither is looked for on disk: on a thread beside a busy build, a walk of 10,000
    folders took most of the second and a half the index needed for one changed course.
    ``launched`` is called once the Pagefind processes of the first shards run (or when
    none need to): what is left is mostly waiting for them.
    """
    started = time.monotonic()
    binary = _pagefind_binary()
    members = _members(folder, pages, shards, files)
    if not members:
        pages = EVERY_PAGE
        members = _members(folder, pages, shards)
    out = folder / SEARCH_INDEX
    settings = {
        "pagefind": _version(binary),
        "language": language,
        "pages": pages,
        "sharding": SHARDING,
        "count": shards,
    }
    listing = dict(index) if index is not None else _files(out)
    listing.pop(MANIFEST, None)
    if changed is None or not _vouched_for(out, settings, listing):
        shutil.rmtree(out, ignore_errors=True)
        stale, listing = set(range(shards)), {}
    else:
        stale = {shard_of(name, shards) for name in changed if matches(name, pages)}
    for shard in stale:
        shutil.rmtree(out / shard_name(shard, shards), ignore_errors=True)
    built = {shard: members[shard] for shard in sorted(stale) if shard in members}
    _run_pagefind(binary, folder, out, built, shards, language, started, launched)
    for shard in built:
        _keep_shared_once(out, out / shard_name(shard, shards))
    # The listing again, reading only what may have changed: the shards made again, and
    # what is outside every shard (the files they share).
    untouched = {shard_name(shard, shards) for shard in range(shards) if shard not in stale}
    inside = tuple(f"{name}/" for name in untouched)
    listing = {name: size for name, size in listing.items() if name.startswith(inside)}
    listing.update(_files(out, skip=untouched))
    names = [shard_name(shard, shards) + "/" for shard in sorted(members)]
    manifest = {**settings, "shards": names, "files": _listing_digest(listing)}
    new = out / f".{MANIFEST}.new"
    new.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    os.replace(new, out / MANIFEST)


#: One token of a page for ``searchable``: a script or style element whole (its text is no
#: markup, and Pagefind reads none of it), a comment, or a tag with its name, attributes and
#: whether it closes itself.
_TOKEN = re.compile(
    rb"<(?P<raw>script|style)\b[^>]*>.*?</(?P=raw)\s*>"
    rb"|<!--.*?-->"
    rb"|<(?P<end>/?)(?P<name>[A-Za-z][A-Za-z0-9-]*)(?P<attrs>(?:\s[^<>]*?)?)(?P<self>/?)>",
    re.S | re.I,
)
#: One attribute of a tag: its name, and its value if it has one.
_ATTRIBUTE = re.compile(rb"""\s*([^\s=/>"']+)(\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?""")
#: What Pagefind still reads inside an element ignored for its text only.
_STILL_READ = re.compile(rb"data-pagefind-(?:default-)?(?:filter|meta|sort)\b", re.I)
_VOID = frozenset(b"area base br col embed hr img input link meta param source track wbr".split())


def searchable(page: bytes) -> bytes | None:
    """What Pagefind reads of a page, as far as a cheap look can tell: the page without the
    elements marked ``data-pagefind-ignore`` (each with everything in it), without scripts
    and styles (the structured data among them) and without class attributes. Two pages with
    the same ``searchable`` give the same index, so a page whose status, seats or booking
    changed (the parts the theme marks) asks nothing of the search index: a night of
    bookings indexes nothing again.

    More than Pagefind reads is kept (all the rest of the page, the outside of its
    ``data-pagefind-body`` too), never less: an element ignored only for its text (not
    ``data-pagefind-ignore="all"``) that holds a filter, meta or sort of Pagefind's is kept
    whole, for Pagefind still reads those. None when the markup cannot be followed (an
    ignored element that is never closed): then the page counts as changed."""
    kept = bytearray()
    at = 0
    ignoring: bytes | None = None  # the name of the ignored element we are inside
    depth = 0
    opened = 0  # where the ignored element's opening tag starts
    text_only = False  # whether it is ignored for its text only (filters still read)
    for token in _TOKEN.finditer(page):
        name = (token.group("name") or b"").lower()
        if token.group("raw") and ignoring is None:  # Pagefind reads no script or style
            kept += page[at : token.start()]
            at = token.end()
            continue
        if ignoring is not None:
            if name == ignoring and not token.group("self"):
                depth += -1 if token.group("end") else 1
                if depth == 0:
                    if text_only and _STILL_READ.search(page, at, token.start()):
                        kept += page[opened : token.end()]
                    ignoring, at = None, token.end()
            continue
        if not name or token.group("end"):
            continue  # kept as it is: text, a comment, a closing tag
        attributes = _ATTRIBUTE.findall(token.group("attrs"))
        values = {attribute.lower(): value for attribute, value in attributes}
        kept += page[at : token.start()]
        at = token.end()
        if b"data-pagefind-ignore" in values:
            if name not in _VOID and not token.group("self"):
                ignoring, depth, opened = name, 1, token.start()
                how = values[b"data-pagefind-ignore"].strip(b"= \t\r\n\"'").lower()
                text_only = how != b"all"
            continue
        kept += b"<" + token.group("name")
        kept += b"".join(b" " + n + v for n, v in attributes if n.lower() != b"class")
        kept += token.group("self") + b">"
    if ignoring is not None:
        return None
    kept += page[at:]
    return bytes(kept)


def reader(pages: str = EVERY_PAGE) -> Callable[[str, bytes], bytes | None]:
    """``searchable`` for the pages the index reads (those matching the glob ``pages``), None
    for the others: what a publisher compares to tell a page that asks nothing of the index."""

    def reads(name: str, page: bytes) -> bytes | None:
        return searchable(page) if matches(name, pages) else None

    return reads


def shard_of(page: str, shards: int = SHARDS) -> int:
    """The shard of a page (its relative path): a stable hash of the id its folder's name
    ends with (``kurs/excel-grunnkurs-1234/index.html``: ``1234``; slugs.py), else of the
    path. A course whose title changes moves to a new page in the same shard, so one shard
    is indexed again, not two. The same on every machine."""
    folder = page.rpartition("/")[0].rpartition("/")[2]
    _, dash, tail = folder.rpartition("-")
    key = tail if dash and tail.isascii() and tail.isdigit() else page
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_name(shard: int, shards: int = SHARDS) -> str:
    """The folder of a shard in ``pagefind/``: its number, zero-padded (``00``, ``07``)."""
    return str(shard).zfill(len(str(shards - 1)))


def _members(
    folder: Path, pages: str, shards: int, files: Collection[str] | None = None
) -> dict[int, list[str]]:
    """The pages matching the glob ``pages``, by shard: of ``files`` when given (every
    page of the glob is in place when the index runs), else found in ``folder`` (for the
    glob of every page, whose other pages may still be on their way: those in place)."""
    if files is not None and pages != EVERY_PAGE:
        found = sorted(name for name in files if matches(name, pages))
    else:
        skip = len(str(folder)) + 1
        found = sorted(str(p)[skip:] for p in folder.glob(pages))
    members: dict[int, list[str]] = {}
    for page in found:
        if page.split("/", 1)[0] != SEARCH_INDEX:
            members.setdefault(shard_of(page, shards), []).append(page)
    return members


def matches(page: str, pages: str) -> bool:
    """Whether the relative path ``page`` is one that ``Path.glob(pages)`` finds in the
    site's folder: as many parts as the glob, each matching its part (``*`` and ``?`` stay
    within one), or any page for the glob of every page."""
    if pages == EVERY_PAGE:
        return page.endswith(".html")
    return _glob(pages)(page)


@functools.lru_cache(maxsize=8)
def _glob(pages: str) -> Callable[[str], bool]:
    """A test for the glob ``pages``: a compiled pattern (a site has 74,000 files to try),
    or Path.match for a glob with a character class."""
    if "[" in pages:
        pattern = PurePosixPath(pages)
        return lambda page: (
            len(PurePosixPath(page).parts) == len(pattern.parts)
            and (PurePosixPath(page).match(pages))
        )
    wild = {"*": "[^/]*", "?": "[^/]"}
    compiled = re.compile("".join(wild.get(char) or re.escape(char) for char in pages))
    return lambda page: compiled.fullmatch(page) is not None


def _vouched_for(out: Path, settings: Mapping[str, object], listing: Mapping[str, int]) -> bool:
    """Whether the index in ``out``, whose files are ``listing``, is the one its manifest
    describes, made with ``settings``."""
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(manifest, dict)
        and all(manifest.get(key) == value for key, value in settings.items())
        and manifest.get("files") == _listing_digest(listing)
    )


def _files(out: Path, skip: Collection[str] = ()) -> dict[str, int]:
    """Each file of the index in ``out`` but its manifest, by relative name, with its size;
    none in the folders ``skip`` names (shards known not to have changed)."""
    found: dict[str, int] = {}
    cut = len(str(out)) + 1
    for root, folders, names in os.walk(out):
        if root == str(out):
            folders[:] = [name for name in folders if name not in skip]
        for name in names:
            path = f"{root}/{name}"
            found[path[cut:]] = os.stat(path, follow_symlinks=False).st_size
    found.pop(MANIFEST, None)
    return found


def _listing_digest(listing: Mapping[str, int]) -> str:
    """A digest of every file of the index but the manifest: its name and size."""
    digest = hashlib.blake2b(digest_size=16)
    for name, size in sorted(listing.items()):
        digest.update(f"{name}\0{size}\n".encode())
    return digest.hexdigest()


def _keep_shared_once(out: Path, shard: Path) -> None:
    """Move what every shard's output has alike (Pagefind's scripts, UIs and styles) out of
    ``shard`` into ``out``, where the first shard made after a whole rebuild puts it."""
    for entry in sorted(shard.iterdir()):
        if entry.name in SHARD_FILES or entry.name.endswith(SHARD_SUFFIXES):
            continue
        if entry.is_dir():  # none in Pagefind 1.x; a later one's is kept like its files
            if not (out / entry.name).exists():
                shutil.copytree(entry, out / entry.name)
            shutil.rmtree(entry)
        elif (out / entry.name).exists():
            entry.unlink()
        else:
            entry.rename(out / entry.name)


def _run_pagefind(
    binary: str,
    folder: Path,
    out: Path,
    shards: dict[int, list[str]],
    count: int,
    language: str,
    started: float,
    launched: Callable[[], None] | None = None,
) -> None:
    """Index each shard's pages into ``out/<shard>/``, as many Pagefind processes at once as
    there are CPUs. Each reads a folder of hard links to its pages (inside ``folder``, so a
    killed build leaves them in the staging folder the next build removes). ``launched``:
    called once the first processes run."""
    if not shards:
        if launched is not None:
            launched()
        return
    links = Path(tempfile.mkdtemp(prefix=".search-pages-", dir=folder))
    waiting = sorted(shards.items())
    running: list[tuple[str, subprocess.Popen[str]]] = []
    try:
        while waiting or running:
            while waiting and len(running) < (os.cpu_count() or 1):
                shard, pages = waiting.pop(0)
                name = shard_name(shard, count)
                _link_pages(folder, links / name, pages)
                command = [binary, "--site", str(links / name), "--output-path", str(out / name)]
                command += ["--force-language", language, "--silent"]
                running.append((name, _start(command)))
            if launched is not None:
                launched()
                launched = None
            name, process = running.pop(0)
            _finish(process, name, started)
    finally:
        for _, process in running:
            process.kill()
            process.wait()
        shutil.rmtree(links, ignore_errors=True)


def _link_pages(folder: Path, site: Path, pages: Iterable[str]) -> None:
    """The shard's pages as hard links in ``site``: only regular files. A page that is a
    symbolic link (one ``site.keep`` carries over) is left out, for Pagefind would read
    whatever it points to, maybe outside the site."""
    made = set()
    for page in pages:
        if not stat.S_ISREG(os.lstat(f"{folder}/{page}").st_mode):
            continue
        parent = page.rpartition("/")[0]
        if parent not in made:
            os.makedirs(f"{site}/{parent}", exist_ok=True)
            made.add(parent)
        try:
            os.link(f"{folder}/{page}", f"{site}/{page}", follow_symlinks=False)
        except OSError:  # a file system without hard links
            shutil.copyfile(f"{folder}/{page}", f"{site}/{page}", follow_symlinks=False)


def _start(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_environment(),  # Pagefind needs no key: it gets none
    )


def _finish(process: subprocess.Popen[str], shard: str, started: float) -> None:
    """Wait for one shard's Pagefind; a failure or the overall timeout fails the build."""
    left = INDEX_TIMEOUT_SECONDS - (time.monotonic() - started)
    try:
        output, _ = process.communicate(timeout=max(left, 0.1))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise BuildError(
            f"search indexing (pagefind) took more than {INDEX_TIMEOUT_SECONDS} s; nothing was "
            "published"
        ) from None
    if process.returncode != 0:
        detail = (output or "").strip().splitlines()
        reason = detail[-1] if detail else f"exit code {process.returncode}"
        raise BuildError(f"search indexing (pagefind, shard {shard}) failed: {reason}")


def _pagefind_binary() -> str:
    """The Pagefind binary installed beside catalog-gen (the ``pagefind_bin`` wheel)."""
    try:
        from pagefind.service import get_executable
    except ImportError:
        binary = None
    else:
        binary = get_executable()
    if binary is None:
        raise BuildError(
            "search indexing needs Pagefind; install it with pip install 'pagefind[bin]' or "
            "set site.search = false"
        )
    return str(binary)


def _version(binary: str) -> str:
    """Pagefind's version ("pagefind 1.5.2"): an index made by another is made again whole."""
    try:
        result = subprocess.run(
            [binary, "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=child_environment(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"search indexing (pagefind) could not start: {exc}") from None
    if result.returncode != 0:
        raise BuildError(f"search indexing (pagefind --version) failed: {result.stdout.strip()}")
    return result.stdout.strip()
