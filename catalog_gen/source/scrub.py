"""Text from the API made safe to keep: lone surrogates and echoes of the API key removed.

JSON may carry a lone surrogate (``"\\ud800"`` is a valid escape) that no UTF-8 file can hold:
left in a record it ends the fetch with a UnicodeEncodeError when the snapshot is written. And
a record may echo the API key (a provider pasting it into a course text, a misconfigured
proxy): it must never reach a snapshot, a page or a report. One walk over every string of a
record (dictionary keys included) fixes both: a lone surrogate becomes U+FFFD, the key in any
of its spellings (``redact.secret_pattern``: either case, escaped in whole or in part,
encoded) becomes the redaction mask, and each finding names the record's field for the fetch's
warnings, never the key. So no snapshot, cache file or page holds it, and API data never
fails a build through the site check.

Most answers hold nothing to clean, and walking every string of 5,000 course dates in Python
costs about a second; so a page is first written with orjson (a tenth of that), which refuses
lone surrogates and writes every string with fixed escapes, and searched for the key in any
spelling (``redact.contains_secret``, which reads JSON's escapes too). Only a page that fails
this test is walked, record by record.

The walk is iterative and bounded: a record nested deeper than ``MAX_DEPTH`` is refused as an
API error, so no later recursive step (the diff, the JSON encoders) can overflow the stack;
orjson, which reads snapshots back, handles no more than about 250 levels either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from catalog_gen.anomalies import kind
from catalog_gen.errors import ApiError
from catalog_gen.redact import MASK, contains_secret, secret_pattern
from catalog_gen.snapshot import Record

LONE_SURROGATE = kind("text.lone_surrogate", "replaced each lone surrogate with U+FFFD")
API_KEY_ECHO = kind("text.api_key", f"replaced the API key with {MASK}; nothing stored it")

#: Far deeper than any Frontcore record (a course date's gathering's venue is four levels
#: down), and within what orjson writes and reads (254 levels, a page's list included).
MAX_DEPTH = 250
#: A key form shorter than this would mask ordinary words; real keys are far longer.
MIN_SECRET_LENGTH = 8

_SURROGATE = "[\ud800-\udfff]"


def replace_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (for messages built from answers)."""
    return re.sub(_SURROGATE, "\ufffd", text)


@dataclass(frozen=True)
class Finding:
    """One field of a record that the walk changed."""

    kind: str
    #: Dotted path inside the record: "text_description", "gatherings.0.location.title".
    field: str
    #: The field's value after cleaning (never the key).
    value: str


class Scrubber:
    """Cleans the strings of API records; built once per run with the key it must not keep."""

    def __init__(self, secret: str | None = None):
        self._secret = secret if secret and len(secret) >= MIN_SECRET_LENGTH else None
        self._key = secret_pattern(self._secret) if self._secret else None
        alternatives = [_SURROGATE, *([self._key.pattern] if self._key else [])]
        self._suspect = re.compile("|".join(alternatives), re.DOTALL)

    def suspects(self, records: list[Record]) -> bool:
        """False when none of ``records`` can hold a lone surrogate or the key (no walk needed).

        Exact, not a heuristic: orjson refuses any string with a lone surrogate (and anything
        nested beyond its limit), and escapes a character of a string only as JSON must;
        undone (``_strings_of``), the page holds every string as it is, so a spelling of the
        key inside a string is one inside the page.
        """
        try:
            written = orjson.dumps(records)
        except TypeError:  # orjson.JSONEncodeError: a lone surrogate, or nested too deep
            return True
        return self._secret is not None and contains_secret(_strings_of(written), self._secret)

    def text(self, value: str) -> tuple[str, tuple[str, ...]]:
        """``value`` cleaned, and the kinds of what was found in it (none: the same string)."""
        if not self._suspect.search(value):
            return value, ()
        kinds = []
        if self._key is not None:
            value, count = self._key.subn(MASK, value)
            if count:
                kinds.append(API_KEY_ECHO)
        cleaned = replace_surrogates(value)
        if cleaned != value:
            kinds.append(LONE_SURROGATE)
        return cleaned, tuple(kinds)

    def clean_text(self, value: str) -> str:
        """``value`` cleaned (``text`` without what was found)."""
        return self.text(value)[0]

    def record(self, record: Record, where: str) -> list[Finding]:
        """Clean ``record`` in place (it is freshly decoded and ours); what was changed.

        ``where`` names the answer in the error for a record nested deeper than MAX_DEPTH.
        """
        findings: list[Finding] = []
        search = self._suspect.search
        stack: list[tuple[Any, tuple[str, ...]]] = [(record, ())]
        while stack:
            node, path = stack.pop()
            if len(path) >= MAX_DEPTH:
                raise ApiError(f"{where}: a record is nested more than {MAX_DEPTH} levels deep")
            if type(node) is dict:
                for key in [k for k in node if search(k)]:
                    clean_key, kinds = self.text(key)
                    node[clean_key] = node.pop(key)
                    findings += [Finding(k, _dotted(*path, clean_key), clean_key) for k in kinds]
                entries: Any = node.items()
            else:
                entries = enumerate(node)
            for name, value in entries:  # values replaced in place: sizes never change
                if type(value) is str:
                    if search(value):
                        clean, kinds = self.text(value)
                        node[name] = clean
                        findings += [Finding(k, _dotted(*path, name), clean) for k in kinds]
                elif type(value) is dict or type(value) is list:
                    stack.append((value, (*path, str(name))))
        return findings


#: The escapes orjson writes inside a string: a quote, a backslash, a control character.
_JSON_ESCAPE = re.compile(rb'\\(["\\/bfnrt]|u[0-9a-f]{4})')
_CONTROLS = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t"}


def _strings_of(written: bytes) -> bytes:
    """orjson's output with its own escapes undone: each string's characters as they are
    (not JSON any more; a text to search)."""
    if b"\\" not in written:
        return written

    def undo(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code[:1] == b"u":
            return chr(int(code[1:], 16)).encode("utf-8", "surrogatepass")
        return _CONTROLS.get(code, code)

    return _JSON_ESCAPE.sub(undo, written)


def _dotted(*names: object) -> str:
    return ".".join(map(str, names))
