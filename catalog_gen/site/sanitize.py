"""Provider HTML → HTML we are willing to publish.

Course texts come from the API and are typed by course providers into a rich-text editor, or
pasted from Word, or (once) by someone testing what happens with ``<script>``. They are cleaned
with an allow-list (nh3, the Rust ``ammonia`` sanitiser): tags and attributes not listed below
are dropped, ``script``/``style``/``iframe`` lose their content too, links keep only http(s) and
mailto targets and get ``rel="noopener noreferrer nofollow"``. Anything else is escaped text.

One ``nh3.Cleaner`` serves the whole process; a text seen twice is cleaned once.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

import nh3

#: The markup a course description may keep: structure and emphasis, no presentation.
ALLOWED_TAGS = frozenset(
    {
        "p", "br", "strong", "b", "em", "i", "u", "s", "sub", "sup",
        "ul", "ol", "li", "dl", "dt", "dd",
        "a", "h2", "h3", "h4", "blockquote",
        "table", "thead", "tbody", "tr", "th", "td", "caption",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"scope"}, "td": {"colspan", "rowspan"}}
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
#: Removed together with everything inside them.
DROP_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "noscript", "template"}
)

_BLOCK = re.compile(r"<\s*(p|br|ul|ol|li|h[1-6]|div|table|blockquote)\b", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n\s*\n")

_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    url_schemes=set(ALLOWED_SCHEMES),
    clean_content_tags=set(DROP_WITH_CONTENT),
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


@lru_cache(maxsize=16384)
def sanitize_html(text: str | None) -> str:
    """Safe HTML for a provider text; "" for None or a text that cleans to nothing.

    Plain text with line breaks (some providers type no markup at all) becomes paragraphs, so
    it reads as the provider wrote it rather than as one run-on line.
    """
    if not text or not text.strip():
        return ""
    text = text.replace("\r\n", "\n")
    if not _BLOCK.search(text):
        text = _paragraphs(text)
    return _CLEANER.clean(text).strip()


def plain_text(text: str | None, limit: int | None = None) -> str:
    """The words of a provider text without markup: for leads, meta descriptions, list cards.

    With ``limit``, the text is cut at a word boundary and ends in "…".
    """
    if not text:
        return ""
    cleaned = _CLEANER.clean(text)
    words = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", cleaned))).strip()
    if limit is None or len(words) <= limit:
        return words
    cut = words[: limit - 1]
    if words[limit - 1] != " " and " " in cut:  # mid-word: back to the last whole word
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:–-") + "…"


def _paragraphs(text: str) -> str:
    """Line breaks typed as plain text → <p> and <br>; the text itself stays as it is."""
    blocks = [b.strip() for b in _BLANK_LINES.split(text) if b.strip()]
    return "".join("<p>" + "<br>".join(b.splitlines()) + "</p>" for b in blocks)
