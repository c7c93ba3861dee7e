"""Reading a built site the way a browser and a link checker would (html5lib via BeautifulSoup)."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from urllib.parse import unquote, urlsplit

import html5lib
from bs4 import BeautifulSoup


def parse(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_bytes(), "html5lib")


def html5_errors(path: Path) -> list:
    """Parse errors a conforming HTML5 parser reports for the file (empty: well-formed)."""
    parser = html5lib.HTMLParser()
    parser.parse(path.read_bytes())
    return parser.errors


def site_tree(site: Path) -> dict[str, tuple[bytes, int]]:
    """Every file (bytes, mtime_ns) by relative path."""
    return {
        p.relative_to(site).as_posix(): (p.read_bytes(), os.stat(p).st_mtime_ns)
        for p in sorted(site.rglob("*"))
        if p.is_file()
    }


def lstat_tree(folder: Path) -> dict[str, tuple[bytes | None, int, int]]:
    """Everything under ``folder`` (links not followed): bytes, mtime and inode of each."""
    found: dict[str, tuple[bytes | None, int, int]] = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        found[path.relative_to(folder).as_posix()] = (data, info.st_mtime_ns, info.st_ino)
    return found


def site_bytes(site: Path) -> dict[str, bytes]:
    return {name: data for name, (data, _) in site_tree(site).items()}


def pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def internal_targets(site: Path, page: Path) -> list[tuple[str, str, str]]:
    """(reference as written, file it resolves to relative to the site, fragment) per link/asset.

    External links (http, https, mailto, tel) are left out; a folder link means its index.html.
    """
    soup = parse(page)
    found = []
    page_dir = posixpath.dirname(page.relative_to(site).as_posix())
    for tag, attribute in (("a", "href"), ("link", "href"), ("script", "src"), ("img", "src")):
        for element in soup.find_all(tag):
            ref = element.get(attribute)
            if ref is None:
                continue
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc:
                continue
            path = unquote(parts.path)
            if not path:  # "#fragment": this page
                target = page.relative_to(site).as_posix()
            else:
                joined = path if path.startswith("/") else posixpath.join("/" + page_dir, path)
                target = posixpath.normpath(joined)
                if path.endswith("/") or path in (".", ".."):
                    target = posixpath.join(target, "index.html")
                target = target.lstrip("/")
            found.append((ref, target, parts.fragment))
    return found
