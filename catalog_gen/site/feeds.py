"""Files for machines: sitemap.xml, robots.txt and the Atom feed of new course dates.

They are written with the standard library's XML tools, never by string templates, so a
course title can never break the markup. Every address in them is absolute (sitemaps and
feeds are read out of context), so they need ``site.base_url``; without it the build leaves
the sitemap and the feed out and says so.

"New" course dates come from the snapshots: each date carries the time a fetch first saw it
(``first_seen``), so the feed keeps a date for as long as it is among the newest, not just
the night it appeared.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast
from urllib.parse import urlsplit

from catalog_gen.site.model import Catalog, Course, CourseDate
from catalog_gen.site.pages import Page, absolute

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
ATOM_NS = "http://www.w3.org/2005/Atom"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: How many of the newest course dates the feed carries.
FEED_ENTRIES = 50
#: Sitemaps are limited to 50,000 addresses per file (sitemaps.org).
SITEMAP_LIMIT = 50_000


def sitemap_xml(pages: Sequence[Page], site_url: str) -> bytes:
    """Every indexable page with its ``lastmod`` (the newest change to the data it shows)."""
    ET.register_namespace("", SITEMAP_NS)
    root = ET.Element(f"{{{SITEMAP_NS}}}urlset")
    listed = [p for p in pages if p.indexable]
    for page in listed[:SITEMAP_LIMIT]:
        entry = ET.SubElement(root, f"{{{SITEMAP_NS}}}url")
        ET.SubElement(entry, f"{{{SITEMAP_NS}}}loc").text = absolute(site_url, page.path)
        if page.lastmod is not None:
            ET.SubElement(entry, f"{{{SITEMAP_NS}}}lastmod").text = _w3c(page.lastmod)
    return _xml(root)


def robots_txt(site_url: str, sitemap: str | None) -> bytes:
    """Everything may be crawled; the sitemap says what there is."""
    lines = ["User-agent: *", "Allow: /"]
    if site_url and sitemap:
        lines.append(f"Sitemap: {absolute(site_url, sitemap)}")
    return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True)
class FeedSite:
    """What the feed says about the site, in the site's words."""

    title: str
    author: str
    site_url: str
    feed_path: str
    language: str
    page_url: Callable[[Course], str]
    entry_title: Callable[[Course, CourseDate], str]


def new_dates(catalog: Catalog, limit: int = FEED_ENTRIES) -> list[CourseDate]:
    """The published dates a fetch saw most recently first (ties: soonest start first)."""
    return [d for _, d in _seen_dates(catalog, limit)]


def _seen_dates(catalog: Catalog, limit: int) -> list[tuple[datetime, CourseDate]]:
    """``new_dates``, each with its ``first_seen``: the dates without one are left out, so
    the moment is there for certain (the feed writes it)."""
    seen = [(d.first_seen, d) for d in catalog.dates if d.first_seen is not None]
    seen.sort(key=lambda pair: pair[1].sort_key)
    seen.sort(key=lambda pair: pair[0], reverse=True)  # stable: keeps start order in ties
    return seen[:limit]


def atom_feed(catalog: Catalog, site: FeedSite) -> bytes:
    """RFC 4287 feed of newly published course dates; ids stay put when a course is renamed."""
    ET.register_namespace("", ATOM_NS)
    host = urlsplit(site.site_url).hostname or "catalog-gen.invalid"
    dates = _seen_dates(catalog, FEED_ENTRIES)
    feed = ET.Element(f"{{{ATOM_NS}}}feed", {XML_LANG: site.language})
    _text(feed, "title", site.title)
    _text(feed, "id", absolute(site.site_url, site.feed_path))
    newest = max((seen for seen, _ in dates), default=catalog.fetched_at or catalog.now)
    _text(feed, "updated", _w3c(newest))
    ET.SubElement(
        feed, f"{{{ATOM_NS}}}link", rel="self", href=absolute(site.site_url, site.feed_path)
    )
    ET.SubElement(feed, f"{{{ATOM_NS}}}link", rel="alternate", href=site.site_url)
    author = ET.SubElement(feed, f"{{{ATOM_NS}}}author")
    _text(author, "name", site.author)
    _text(feed, "generator", "catalog-gen")
    for seen, d in dates:
        course = catalog.course(d.course_id)
        link = f"{site.page_url(course)}#date-{d.id}"
        entry = ET.SubElement(feed, f"{{{ATOM_NS}}}entry")
        _text(entry, "title", site.entry_title(course, d))
        # A tag URI (RFC 4151) keyed by the date's id: stable when the course's title changes.
        _text(entry, "id", f"tag:{host},{seen:%Y-%m-%d}:coursedate-{d.id}")
        _text(entry, "published", _w3c(seen))
        _text(entry, "updated", _w3c(max(seen, d.updated_at or seen)))
        ET.SubElement(entry, f"{{{ATOM_NS}}}link", rel="alternate", href=link)
        if course.lead:
            _text(entry, "summary", course.lead)
    return _xml(feed)


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}")
    element.text = _CONTROL.sub(" ", text)  # XML 1.0 cannot carry them: one would spoil the feed
    return element


def _w3c(moment: datetime) -> str:
    """``2026-11-23T03:15:00Z``: UTC, so equal moments read the same on every machine."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _xml(root: ET.Element) -> bytes:
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return cast(bytes, data) + b"\n"  # bytes for any encoding but "unicode" (typeshed: Any)
