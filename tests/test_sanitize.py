"""Provider HTML is cleaned with an allow-list: hostile markup never survives, ordinary markup does.

Results are parsed with the standard library's HTML parser, so the assertions are about the
elements and attributes a browser would see, not about substrings.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog_gen.site.sanitize import ALLOWED_TAGS, plain_text, sanitize_html


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text, as a browser would parse them."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.open: list[str] = []  # the elements the parser is inside
        self.nested_links = 0  # <a> start tags met inside an open <a>
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.nested_links += tag == "a" and "a" in self.open
        self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in self.open:
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag) :]

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


HOSTILE = [
    "<script>alert(1)</script>Hei",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    '<p onclick="alert(1)" onmouseover=alert(2)>tekst</p>',
    '<a href="javascript:alert(1)">Klikk</a>',
    '<a href="  JaVaScRiPt:alert(1)">Klikk</a>',
    '<a href="&#106;avascript:alert(1)">Klikk</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<iframe src="https://evil.example"></iframe>',
    '<object data="x.swf"></object><embed src="x.swf">',
    '<p style="background:url(javascript:alert(1))">stil</p>',
    '<span style="position:fixed;top:0">overlay</span>',
    "<style>body{display:none}</style>",
    '<svg onload="alert(1)"><script>alert(2)</script></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<form action="https://evil.example"><input name="pw"></form>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<base href="https://evil.example/">',
    "<!-- <script>alert(1)</script> -->",
    '<div><p>nested <b onclick="x">bold</b></p></div>',
    "<scr<script>ipt>alert(1)</script>",
    '"><script>alert(1)</script>',
]

FORBIDDEN_TAGS = {
    "script", "iframe", "object", "embed", "style", "svg", "math", "form", "input", "meta",
    "base", "img", "link",
}  # fmt: skip


@pytest.mark.parametrize("markup", HOSTILE)
def test_hostile_markup_is_neutralised(markup):
    cleaned = Elements(sanitize_html(markup))
    for tag, attrs in cleaned.tags:
        assert tag in ALLOWED_TAGS, tag
        assert tag not in FORBIDDEN_TAGS
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name != "style"
            if name == "href":
                assert value is not None
                assert value.split(":", 1)[0].lower() in {"http", "https", "mailto"}, value


def test_script_and_style_lose_their_content_too():
    assert sanitize_html("<script>alert(1)</script>Hei") == "<p>Hei</p>"
    assert "display" not in sanitize_html("<style>body{display:none}</style><p>x</p>")


def test_ordinary_markup_survives():
    markup = (
        "<h2>Innhold</h2><p>Lær <strong>Excel</strong> og <em>Word</em>.</p>"
        '<ul><li>Én</li><li>To</li></ul><p><a href="https://example.no/info">Mer</a></p>'
    )
    cleaned = Elements(sanitize_html(markup))
    assert [t for t, _ in cleaned.tags] == ["h2", "p", "strong", "em", "ul", "li", "li", "p", "a"]
    link = dict(cleaned.tags)["a"]
    assert link["href"] == "https://example.no/info"
    assert set(link["rel"].split()) == {"noopener", "noreferrer", "nofollow"}


def test_mailto_links_are_kept():
    cleaned = Elements(sanitize_html('<a href="mailto:kurs@example.no">Skriv</a>'))
    assert dict(cleaned.tags)["a"]["href"] == "mailto:kurs@example.no"


@pytest.mark.parametrize(
    "target",
    [
        "mailto:kurs@x.no?bcc=spy@evil.example",
        "mailto:kurs@x.no?cc=spy@evil.example",
        "mailto:kurs@x.no?subject=Hei&bcc=spy@evil.example",
        "mailto:kurs@x.no,spy@evil.example",
        "mailto:kurs@x.no%0D%0ABcc:spy@evil.example",
        "mailto:kurs@x.no?to=spy@evil.example",
        "mailto:?to=spy@evil.example",
        "mailto:not an address",
    ],
)
def test_a_mailto_link_that_adds_recipients_is_unwrapped_to_its_text(target):
    """Issue 18: a link in provider HTML must not send a visitor's e-mail to anyone else."""
    cleaned = sanitize_html(f'<p>Skriv til <a href="{target}">oss</a>.</p>')
    assert cleaned == "<p>Skriv til oss.</p>"


def test_a_mailto_link_to_one_address_may_carry_a_subject_and_a_body():
    for target in ("mailto:kurs@x.no", "mailto:kurs@x.no?subject=P%C3%A5melding&body=Hei"):
        cleaned = sanitize_html(f'<p><a href="{target}">oss</a></p>')
        assert f'href="{target.replace("&", "&amp;")}"' in cleaned


def test_plain_text_with_line_breaks_becomes_paragraphs_and_is_escaped():
    result = sanitize_html("Første linje\nandre linje\n\nNytt avsnitt: 3 < 4 & 5 > 2")
    assert result == (
        "<p>Første linje<br>andre linje</p><p>Nytt avsnitt: 3 &lt; 4 &amp; 5 &gt; 2</p>"
    )


@pytest.mark.parametrize("empty", [None, "", "   ", "\n\n"])
def test_empty_texts_give_nothing(empty):
    assert sanitize_html(empty) == ""


def test_plain_text_strips_markup_and_unescapes():
    text = plain_text("<p>Hei &amp; <b>velkommen</b></p>\n<p>til   kurset</p><script>x()</script>")
    assert text == "Hei & velkommen til kurset"


def test_plain_text_cuts_at_a_word_with_an_ellipsis():
    text = plain_text("Ett to tre fire fem seks sju åtte ni ti", limit=20)
    assert text == "Ett to tre fire fem…"
    assert len(text) <= 20
    assert plain_text("Kort tekst", limit=20) == "Kort tekst"
    assert plain_text(None) == ""


# -- links that lead nowhere ---------------------------------------------------------------

UNSAFE_TARGETS = [
    "javascript:alert(1)",
    "  JaVaScRiPt:alert(1)",
    "&#106;avascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "vbscript:msgbox(1)",
    "ftp://example.no/fil",
]


@pytest.mark.parametrize("target", UNSAFE_TARGETS)
def test_a_link_to_a_forbidden_target_is_unwrapped_to_its_text(target):
    cleaned = sanitize_html(f'<p>Les <a href="{target}" title="Mer">dette &amp; mer</a>.</p>')
    assert cleaned == "<p>Les dette &amp; mer.</p>"


def test_an_anchor_without_href_is_unwrapped_and_links_beside_it_keep_theirs():
    cleaned = sanitize_html(
        '<p><a name="topp">Topp</a> og <a href="https://example.no/" title="a > b">lenke</a></p>'
    )
    elements = Elements(cleaned)
    assert [tag for tag, _ in elements.tags] == ["p", "a"]
    link = elements.tags[1][1]
    assert link["href"] == "https://example.no/" and link["title"] == "a > b"
    assert set(link["rel"].split()) == {"noopener", "noreferrer", "nofollow"}
    assert "".join(elements.text) == "Topp og lenke"


def test_a_link_inside_a_link_is_never_left():
    # A table lets the HTML parser keep an <a> inside another; browsers then nest them. A
    # link holds no table once restructured (its content model), so the inner one stands.
    markup = '<a href="https://a.example/"><table><tr><td><a href="https://b.example/">b</a>'
    elements = Elements(sanitize_html(markup))
    assert [attrs.get("href") for tag, attrs in elements.tags if tag == "a"] == [
        "https://b.example/"
    ]
    assert elements.nested_links == 0 and "".join(elements.text) == "b"
    nested = '<a href="https://a.example/">ytre <b><a href="https://b.example/">indre</a></b></a>'
    assert Elements(sanitize_html(nested)).nested_links == 0


TAGS = ["p", "b", "em", "a", "a", "a", "ul", "li", "table", "td", "h2", "div", "span", "script"]
HREFS = [None, "https://example.no/x", "mailto:kurs@example.no", "/lokal", "#a", *UNSAFE_TARGETS]
#: Text with the characters markup is made of (no "<": random tags are the element strategy's).
WORDS = st.text(alphabet="abc æøå &;#\"'>=\n", max_size=8)


def _element(children):
    def markup(tag: str, href: str | None, inner: list[str]) -> str:
        attribute = "" if href is None else f' href="{href}"'
        return f"<{tag}{attribute}>{''.join(inner)}</{tag}>"

    return st.builds(markup, st.sampled_from(TAGS), st.sampled_from(HREFS), st.lists(children))


PROVIDER_HTML = st.recursive(WORDS, _element, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(PROVIDER_HTML)
def test_every_link_left_leads_somewhere_and_no_word_is_lost(markup):
    cleaned = sanitize_html(markup)
    elements = Elements(cleaned)
    for tag, attrs in elements.tags:
        if tag == "a":
            assert attrs.get("href") is not None, cleaned
            assert not re.match(r"\s*(javascript|data|vbscript|ftp|&)", attrs["href"], re.I)
            assert set(attrs["rel"].split()) == {"noopener", "noreferrer", "nofollow"}
    assert elements.nested_links == 0, cleaned
    # plain_text is nh3's text without any unwrapping: the words are the same, only the
    # white space that turning plain lines into paragraphs spends may differ.
    assert re.sub(r"\s+", "", "".join(elements.text)) == re.sub(r"\s+", "", plain_text(markup))


# -- one URL policy: targets read as a browser reads them ----------------------------------------

#: What the WHATWG URL parser strips from both ends, and removes anywhere, before it parses.
C0_AND_SPACE = "".join(map(chr, range(0x21)))


def as_a_browser_reads(href: str) -> str:
    """An independent reading of an attribute's URL, as browsers (and the WHATWG URL spec)
    read it: trim C0 controls and spaces, drop tabs and newlines, lower-case the scheme."""
    read = re.sub(r"[\t\n\r]", "", href.strip(C0_AND_SPACE))
    scheme, colon, rest = read.partition(":")
    if colon and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        return scheme.lower() + ":" + rest
    return read


def extra_recipients(mailto: str) -> bool:
    """Whether a mailto: URL, as a mail program reads it, writes to more than one address."""
    from urllib.parse import parse_qsl, unquote

    target, _, query = mailto[len("mailto:") :].partition("?")
    fields = {name.lower() for name, _ in parse_qsl(query, keep_blank_values=True)}
    return "," in unquote(target) or bool(fields - {"subject", "body"}) or not target


BROWSER_LINKS = [
    " mailto:kurs@x.no?bcc=spy@evil.example",
    "&#32;mailto:kurs@x.no?bcc=spy@evil.example",
    "ma&#9;ilto:kurs@x.no?cc=spy@evil.example",
    "mailto&#10;:kurs@x.no?cc=spy@evil.example",
    "&#0;mailto:kurs@x.no,spy@evil.example",
    "MAILTO:kurs@x.no?%62cc=spy@evil.example",
    "java&#9;script:alert(1)",
    "&#x1F;javascript:alert(1)",
    "jav&#x0A;ascript:alert(1)",
    " data:text/html,<b>x</b>",
    "VbScRiPt:msgbox(1)",
    "https://kurs@bank.no@evil.example/",
]


@pytest.mark.parametrize("target", BROWSER_LINKS)
def test_a_target_is_judged_as_the_browser_will_read_it(target):
    """Finding 1: a literal 'mailto:' check let leading spaces, entities and tabs through,
    and those links added recipients on the page."""
    cleaned = sanitize_html(f'<p><a href="{target}">Skriv til oss</a></p>')
    hrefs = [attrs.get("href") for tag, attrs in Elements(cleaned).tags if tag == "a"]
    assert hrefs == [], cleaned
    assert "Skriv til oss" in cleaned


def test_a_good_target_is_kept_as_the_browser_reads_it():
    cleaned = sanitize_html('<p><a href="  https://kurs.example.no/p&#9;åmelding ">Meld på</a>')
    ((_, attrs),) = [t for t in Elements(cleaned).tags if t[0] == "a"]
    assert attrs["href"] == "https://kurs.example.no/påmelding"


@st.composite
def disguised_targets(draw) -> str:
    """A dangerous target as an attribute value, disguised as browsers forgive: C0 controls
    and spaces around it, tabs and newlines inside it (raw or as character references),
    any letter case, characters as references."""
    target = draw(
        st.sampled_from(
            ["javascript:alert(1)", "data:text/html,x", "vbscript:x", "mailto:a@x.no?bcc=b@y.no",
             "mailto:a@x.no,b@y.no", "mailto:?to=a@x.no", "mailto:a@x.no?cc=b@y.no&subject=x"]
        )
    )  # fmt: skip
    out = []
    for char in target:
        if draw(st.booleans()):
            char = char.swapcase()
        piece = draw(st.sampled_from(["plain", "decimal", "hex"]))
        out.append(char if piece == "plain" else f"&#{ord(char)};" if piece == "decimal"
                   else f"&#x{ord(char):x};")  # fmt: skip
        if draw(st.integers(0, 5)) == 0:
            out.append(draw(st.sampled_from(["\t", "\n", "\r", "&#9;", "&#10;", "&#13;"])))
    around = st.text(alphabet=[chr(c) for c in range(0x21) if chr(c) not in "\x00"], max_size=3)
    return draw(around).replace("\r", "&#13;") + "".join(out) + draw(around)


@settings(max_examples=300, deadline=None)
@given(disguised_targets())
def test_no_disguised_target_ever_reaches_a_link(target):
    """Any string a browser would read as javascript:, data:, vbscript: or a mailto with more
    recipients than one never reaches an href: read independently, as a browser would."""
    cleaned = sanitize_html(f'<p><a href="{target}">x</a></p>')
    for _tag, attrs in Elements(cleaned).tags:
        href = attrs.get("href")
        if href is None:
            continue
        read = as_a_browser_reads(href)
        assert read.split(":", 1)[0] in ("http", "https", "mailto") or ":" not in read, read
        if read.startswith("mailto:"):
            assert not extra_recipients(read), read


# -- valid by content model ------------------------------------------------------------------------

BROKEN = [
    "<p><b>Fet start<ul><li>punkt <table><tr><td>celle</td></tr></table> slutt</li></ul>mer</b>",
    "<li>løst punkt</li><li>ett til</li>",
    "<ul>tekst rett i lista<li>a</li><p>et avsnitt</p></ul>",
    "<dd>en beskrivelse uten liste</dd><dt>et begrep</dt>",
    "<dl><dd>beskrivelse først</dd><dt>begrep sist</dt></dl>",
    "<h2>Tittel<ul><li>liste i overskrift</li></ul></h2>",
    '<a href="https://kurs.example.no/"><strong>Lenke<blockquote>sitat</blockquote></strong></a>',
    "<em><h3>overskrift i kursiv</h3></em><i><p>avsnitt i kursiv</p></i>",
    "<table><tr><td><b>celle<ul><li>liste</li></ul></b></td></tr></table>",
]


def content_model_errors(markup: str) -> list[str]:
    """Where sanitised HTML breaks HTML's content models, read by a real HTML5 parser:
    blocks inside phrasing, list items outside lists, lists holding other things, dt/dd
    outside a dl."""
    from bs4 import BeautifulSoup

    phrasing = {"a", "b", "strong", "em", "i", "u", "s", "sub", "sup", "p", "h2", "h3", "h4"}
    blocks = {"p", "ul", "ol", "li", "dl", "dt", "dd", "h2", "h3", "h4", "blockquote", "table"}
    soup = BeautifulSoup(f"<div>{markup}</div>", "html5lib")
    errors = []
    for element in soup.div.find_all(True):
        parents = [p.name for p in element.parents]
        if element.name in blocks and any(p in phrasing for p in parents[: parents.index("div")]):
            errors.append(f"<{element.name}> inside phrasing")
        if element.name == "li" and element.parent.name not in ("ul", "ol"):
            errors.append("<li> outside a list")
        if element.name in ("ul", "ol"):
            for child in element.children:
                if getattr(child, "name", None) not in ("li", None) or (
                    child.name is None and str(child).strip()
                ):
                    errors.append(f"<{element.name}> holds {child!r}")
        if element.name in ("dt", "dd") and element.parent.name != "dl":
            errors.append(f"<{element.name}> outside a dl")
    return errors


@pytest.mark.parametrize("markup", BROKEN)
def test_broken_provider_html_is_restructured_to_valid_markup_and_keeps_every_word(markup):
    cleaned = sanitize_html(markup)
    assert content_model_errors(cleaned) == [], cleaned
    words = lambda text: re.findall(r"\w+", plain_text(text))  # noqa: E731
    assert words(cleaned) == words(markup)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["<b>", "</b>", "<em>", "<p>", "</p>", "<ul>", "</ul>", "<ol>", "<li>", "</li>",
             "<table><tr><td>", "</td></tr></table>", "<h2>", "</h2>", "<dl>", "<dt>", "<dd>",
             "</dl>", "<blockquote>", "</blockquote>", '<a href="https://x.no/">', "</a>",
             "ord ", "tekst ", "<br>"]
        ),
        max_size=30,
    )
)  # fmt: skip
def test_any_tag_soup_is_sanitised_to_valid_content_models(parts):
    cleaned = sanitize_html("".join(parts))
    assert content_model_errors(cleaned) == [], cleaned
