"""Provider HTML → HTML we are willing to publish.

Course texts come from the API and are typed by course providers into a rich-text editor, or
pasted from Word, or (once) by someone testing what happens with ``<script>``. They are cleaned
with an allow-list (nh3, the Rust ``ammonia`` sanitiser): tags and attributes not listed below
are dropped, ``script``/``style``/``iframe`` lose their content too, links keep only http(s) and
mailto targets and get ``rel="noopener noreferrer nofollow"``. Anything else is escaped text. A
link whose target was not allowed (``javascript:``, ``data:``) is left by nh3 as an ``<a>``
without ``href``, which HTML validators reject and screen readers announce as nothing; such a
link, and one nested inside another link, is unwrapped to its text. So is a ``mailto:`` link
that does not write to exactly one plain address (a ``bcc=`` or a second recipient would send
a visitor's message, in secret, to someone else: see addresses.py).

One ``nh3.Cleaner`` serves the whole process; a text seen twice is cleaned once.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from html.parser import HTMLParser

import nh3

from catalog_gen.site.addresses import safe_mailto

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
#: A link's start or end tag, and an attribute, in nh3's output: there "<", ">" and '"' in
#: text and attribute values are always escaped, so these see tags and attributes only.
_LINK_TAG = re.compile(r"<(/?)a(?=[\s>])([^>]*)>")
_ATTRIBUTE = re.compile(r'([^\s="]+)="[^"]*"')


def _checked_link(tag: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: a ``mailto:`` target that is not one plain address loses its
    ``href`` (and the link is then unwrapped); every other value is nh3's to judge."""
    if tag == "a" and attribute == "href" and value[:7].lower() == "mailto:":
        return value if safe_mailto(value) else None
    return value


_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    url_schemes=set(ALLOWED_SCHEMES),
    clean_content_tags=set(DROP_WITH_CONTENT),
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
    attribute_filter=_checked_link,
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
    cleaned = _CLEANER.clean(text)
    if not _links_lead_somewhere(cleaned):
        cleaned = _LinkUnwrapper.unwrap(cleaned)
    return cleaned.strip()


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


def _links_lead_somewhere(markup: str) -> bool:
    """Whether every link in nh3's output has an href and none is inside another: the usual
    case, told without parsing (parsing every text again would triple the sanitising time)."""
    depth = 0
    for tag in _LINK_TAG.finditer(markup):
        if tag.group(1):
            depth -= 1
            continue
        depth += 1
        if depth > 1 or "href" not in _ATTRIBUTE.findall(tag.group(2)):
            return False
    return True


class _LinkUnwrapper(HTMLParser):
    """nh3's output again, without the ``<a>`` tags that lead nowhere: those without ``href``
    and those inside another link (a link in a link is invalid HTML). Their text stays.

    The input is nh3's serialisation of a parsed tree, so tags are balanced and text and
    attribute values are escaped: every other tag and every character of text is copied as
    it was written.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.links: list[bool] = []  # for each open <a>: whether it is kept

    @classmethod
    def unwrap(cls, markup: str) -> str:
        parser = cls()
        parser.feed(markup)
        parser.close()
        return "".join(parser.out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            keep = not any(self.links) and any(name == "href" for name, _ in attrs)
            self.links.append(keep)
            if not keep:
                return
        self.out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.links and not self.links.pop():
            return
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.out.append(f"&#{name};")
