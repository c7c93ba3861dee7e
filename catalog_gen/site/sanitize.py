"""Provider HTML → HTML we are willing to publish.

Course texts come from the API and are typed by course providers into a rich-text editor, or
pasted from Word, or (once) by someone testing what happens with ``<script>``. They are cleaned
with an allow-list (nh3, the Rust ``ammonia`` sanitiser): tags and attributes not listed below
are dropped, ``script``/``style``/``iframe`` lose their content too, links keep only targets
that pass the one URL policy (addresses.link_target: http(s) with a real host, one plain
``mailto:``, or a reference within the site, each read as a browser reads it) and get
``rel="noopener noreferrer nofollow"``. Anything else is escaped text. A
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
from typing import TypeGuard

import nh3

from catalog_gen.site.addresses import link_target

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

_BLOCK = re.compile(r"<\s*(p|br|ul|ol|li|dl|dt|dd|h[1-6]|div|table|blockquote)\b", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n\s*\n")
#: A link's start or end tag, and an attribute, in nh3's output: there "<", ">" and '"' in
#: text and attribute values are always escaped, so these see tags and attributes only.
_LINK_TAG = re.compile(r"<(/?)a(?=[\s>])([^>]*)>")
_ATTRIBUTE = re.compile(r'([^\s="]+)="[^"]*"')


def _checked_link(tag: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: a link's target passes the one URL policy
    (addresses.link_target: read as a browser reads it, then one web page, one plain
    ``mailto:`` or a reference within the site) and is kept as the browser will read it;
    anything else loses its ``href``, and the link is then unwrapped to its text."""
    if tag == "a" and attribute == "href":
        return link_target(value, relative=True) or None
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
    if _breaks_content_model(cleaned):
        cleaned = _Tree.parse(cleaned).restructured()
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


# --- content models: what may stand inside what ------------------------------------------------

#: Elements whose content is phrasing only: no paragraph, list, table or heading inside.
_PHRASING_ONLY = frozenset(
    {"a", "b", "strong", "em", "i", "u", "s", "sub", "sup", "p", "h2", "h3", "h4"}
)
#: Elements that are not phrasing content: they may not stand inside those above.
_FLOW_ONLY = frozenset(
    {"p", "ul", "ol", "li", "dl", "dt", "dd", "h2", "h3", "h4", "blockquote", "table"}
)
_LISTS = frozenset({"ul", "ol"})
_VOID = frozenset({"br"})
#: A tag in nh3's output: there "<" and ">" in text and attribute values are always escaped.
_ANY_TAG = re.compile(r"<(/?)([a-z0-9]+)([^>]*)>")


def _breaks_content_model(markup: str) -> bool:
    """Whether nh3's output (a parsed tree, serialised) has an element where HTML's content
    models forbid it: a list, table, paragraph or heading inside phrasing (``<b>`` …), a list
    item outside a list, a list holding anything but items, a ``dt``/``dd`` outside a ``dl``.
    Browsers accept all of these; validators do not. A scan of the tags alone, so that the
    usual text, which breaks nothing, costs no tree."""
    stack: list[str] = []
    for match in _ANY_TAG.finditer(markup):
        closing, name = match.group(1), match.group(2)
        if name in _VOID:
            if stack and stack[-1] in ("ul", "ol", "dl"):
                return True
            continue
        if closing:
            if stack and stack[-1] == name:
                stack.pop()
            continue
        parent = stack[-1] if stack else ""
        if name in _FLOW_ONLY and any(open_ in _PHRASING_ONLY for open_ in stack):
            return True
        if (name == "li") != (parent in _LISTS) and (name == "li" or parent in _LISTS):
            return True
        if (name in ("dt", "dd")) != (parent == "dl"):
            return True
        stack.append(name)
    return bool(_LOOSE_IN_A_LIST.search(markup))


#: Text straight inside a list, a ``dl`` that does not start with a term or ends with one.
_LOOSE_IN_A_LIST = re.compile(r"<(ul|ol|dl)\b[^>]*>\s*[^<\s]|<dl\b[^>]*>\s*(?!<dt\b)|</dt>\s*</dl>")


class _Tree:
    """nh3's output as a tree, to restructure what breaks a content model the way an author
    would have written it, keeping every word and link:

    - phrasing that holds a block (``<b>Fet <ul>…</ul> slutt</b>``) is split around it:
      ``<b>Fet </b><ul>…</ul><b> slutt</b>`` (the block keeps its own markup);
    - list items outside a list get one (``<ul>``); what a list holds besides items goes into
      an item of its own; a ``dt`` or ``dd`` outside a ``dl`` becomes a paragraph, and a
      ``dl`` that is not terms and descriptions gives its content back as paragraphs.
    """

    def __init__(self, name: str, attributes: str = "") -> None:
        self.name, self.attributes = name, attributes
        self.children: list[_Tree | str] = []

    @classmethod
    def parse(cls, markup: str) -> _Tree:
        root = cls("")
        stack = [root]
        at = 0
        for match in _ANY_TAG.finditer(markup):
            if match.start() > at:
                stack[-1].children.append(markup[at : match.start()])
            at = match.end()
            closing, name, attributes = match.groups()
            if name in _VOID:
                stack[-1].children.append(match.group(0))
            elif closing:
                if len(stack) > 1 and stack[-1].name == name:
                    stack.pop()
            else:
                node = cls(name, attributes)
                stack[-1].children.append(node)
                stack.append(node)
        if at < len(markup):
            stack[-1].children.append(markup[at:])
        return root

    def restructured(self) -> str:
        """The markup again, valid by content model (empty paragraphs left by the split out)."""
        (root,) = self._fixed("")  # the root has no name: it is fixed as the flow it holds
        assert isinstance(root, _Tree)  # an element that is no list item nor phrasing: itself
        return "".join(map(_html, root.children)).replace("<p></p>", "")

    def _fixed(self, parent: str) -> list[_Tree | str]:
        """This node as the nodes that replace it under ``parent``, each valid there."""
        name = self.name
        if name in ("dt", "dd") and parent != "dl":
            name = "p"
        children: list[_Tree | str] = []
        for child in self.children:
            for part in child._fixed(name) if isinstance(child, _Tree) else [child]:
                last = children[-1] if children else None
                if _is_wrapper(part) and _is_wrapper(last):  # stray items: one list
                    last.children += part.children
                else:
                    children.append(part)
        if name == "dl" and not _terms_and_descriptions(children):
            return [n for c in children for n in _as_paragraphs(c)]
        if name in _LISTS:
            children = _items_only(children)
        made = _Tree(name, self.attributes)
        made.children = children
        if name == "li" and parent not in _LISTS:
            wrapper = _Tree("ul", _WRAPPER)
            wrapper.children = [made]
            return [wrapper]
        if name in _PHRASING_ONLY and any(_is_flow(c) for c in children):
            return _split(made)
        return [made]


#: The attributes text of a list made for items found outside one (never in nh3's output,
#: which writes every attribute with a value; written out as no attributes at all).
_WRAPPER = " "


def _is_wrapper(node: _Tree | str | None) -> TypeGuard[_Tree]:
    return isinstance(node, _Tree) and node.attributes is _WRAPPER


def _is_flow(node: _Tree | str) -> bool:
    return isinstance(node, _Tree) and node.name in _FLOW_ONLY


def _split(node: _Tree) -> list[_Tree | str]:
    """A phrasing element holding blocks, as runs of itself around them (empty runs left out)."""
    parts: list[_Tree | str] = []
    run: list[_Tree | str] = []

    def close_run() -> None:
        if any(not isinstance(p, str) or p.strip() for p in run):
            copy = _Tree(node.name, node.attributes)
            copy.children = list(run)
            parts.append(copy)
        elif run:
            parts.extend(run)  # white space between blocks stays as it was
        run.clear()

    for child in node.children:
        if _is_flow(child):
            close_run()
            parts.append(child)
        else:
            run.append(child)
    close_run()
    return parts


def _items_only(children: list[_Tree | str]) -> list[_Tree | str]:
    """A list's content: its items, and anything else gathered into items of its own."""
    fixed: list[_Tree | str] = []
    stray: list[_Tree | str] = []

    def gather() -> None:
        if any(not isinstance(p, str) or p.strip() for p in stray):
            item = _Tree("li")
            item.children = list(stray)
            fixed.append(item)
        else:
            fixed.extend(stray)
        stray.clear()

    for child in children:
        if isinstance(child, _Tree) and child.name == "li":
            gather()
            fixed.append(child)
        else:
            stray.append(child)
    gather()
    return fixed


def _terms_and_descriptions(children: list[_Tree | str]) -> bool:
    """Whether a ``dl`` holds groups of terms, each followed by descriptions, and nothing else."""
    names = [c.name if isinstance(c, _Tree) else "text" for c in children
             if isinstance(c, _Tree) or c.strip()]  # fmt: skip
    if not names or names[0] != "dt" or names[-1] != "dd":
        return False
    return all(name in ("dt", "dd") for name in names)


def _as_paragraphs(node: _Tree | str) -> list[_Tree | str]:
    if isinstance(node, _Tree) and node.name in ("dt", "dd"):
        paragraph = _Tree("p")
        paragraph.children = node.children
        return paragraph._fixed("")
    return [node]


def _html(node: _Tree | str) -> str:
    if isinstance(node, str):
        return node
    inner = "".join(_html(child) for child in node.children)
    attributes = "" if node.attributes is _WRAPPER else node.attributes
    return f"<{node.name}{attributes}>{inner}</{node.name}>"


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
