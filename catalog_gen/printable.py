"""Text from outside (the API) made safe to show a person: the one home of that question.

A title, an error body, a field name is untrusted text; printed as it is, an ``ESC`` in it
would drive the terminal (clear the screen, set the window title, hide lines), a CR or LF
would fake a line of output (``error: …``), and a bidi control would show the characters
after it in another order than they are. :func:`printable` shows each such character as a
visible escape in Python's spelling (``\\x1b``, ``\\r``, ``\\u202e``); every other
character, Norwegian letters and emoji included, is left as it is.

It is applied where API text is formatted into a line for a person (``diff``, the warning and
odd-data lines, error messages that repeat the server, progress lines), never to a whole
stream: the progress bar redraws itself with control sequences of its own.

``--json`` output is JSON for programs: ``json.dumps`` already escapes C0 controls, and
:func:`printable_json` escapes the rest that :func:`printable` does as ``\\uXXXX``, which a
JSON reader turns back into the very same string, so a person reading the JSON in a terminal
is safe too and nothing is lost.

A backslash is not escaped: a title holding the text ``\\x1b`` shows as that text, which can
look like an escape but can drive nothing.
"""

from __future__ import annotations

import re

#: What a terminal or a text viewer would act on rather than show: the C0 controls (ESC, CR,
#: LF, BEL, TAB …), DEL, the C1 controls (0x9b is a CSI to some terminals), and Unicode's
#: bidi controls (the Bidi_Control property: marks, embeddings, overrides, isolates).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control and bidi character shown as a visible escape."""
    return UNSAFE.sub(_escaped, text)


def printable_json(text: str) -> str:
    """JSON text with the characters :func:`printable` escapes written as ``\\uXXXX``: the
    same value for any JSON reader, and nothing a terminal acts on. Outside strings, JSON
    text holds none of them, so every one is inside a string."""
    return UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


#: What Markdown reads as inline markup (a line written with this starts with "- ", "### " or
#: a word, so what is markup only at the start of a line cannot be).
_MARKUP = re.compile(r"([\\`*_\[\]()<>#|~!])")


def markdown_text(text: str) -> str:
    """``text`` as Markdown that shows exactly that text on one line: no markup, no HTML, and
    control and direction characters as visible escapes (``printable``). For the step
    summary and the change report."""
    return _MARKUP.sub(r"\\\1", printable(text).replace("&", "&amp;"))
