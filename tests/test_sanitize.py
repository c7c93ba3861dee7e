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


def test_a_link_inside_a_link_is_unwrapped():
    # A table lets the HTML parser keep an <a> inside another; browsers then nest them.
    markup = '<a href="https://a.example/"><table><tr><td><a href="https://b.example/">b</a>'
    elements = Elements(sanitize_html(markup))
    assert [attrs.get("href") for tag, attrs in elements.tags if tag == "a"] == [
        "https://a.example/"
    ]
    assert elements.nested_links == 0 and "".join(elements.text) == "b"


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
