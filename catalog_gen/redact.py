"""Keep the API key out of everything catalog-gen prints, logs or publishes.

The key only ever travels in the ``X-API-Key`` header, so in normal operation it cannot reach a
message. This is the second line of defence for the abnormal ones (an API error echoing the
request, a traceback in --debug): everything the CLI writes passes through :func:`redact`, and
the build refuses to publish a site that holds the key (build.verify uses :func:`encoded_forms`).

A leaked key is rarely the plain key: it comes back URL-encoded from an echoed request,
HTML-escaped from a page, JSON-escaped or in a Python repr from an error message, base64-encoded
from an echoed header, cut short at a line width, upper-cased (many keys are hex, and a server
or a slug changes their case), or with only some characters escaped. One module knows them:

- :func:`secret_pattern`: the key written character by character in any mix of plain (either
  case), percent-encoded (either case of hex), HTML character references and ``\\u``/``\\x``
  escapes, or in one of its whole encoded forms (:func:`encoded_forms`: base64 and the rest);
  what :func:`redact` masks in everything printed, and the fetch boundary in API data;
- :func:`contains_secret`: the same question for a whole file, answered fast enough to ask it
  of every file a build publishes (lower-cased, escapes decoded, then one search).
"""

from __future__ import annotations

import base64
import functools
import html
import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import TextIO
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"
#: A prefix this long of a truncated key is still treated as the key; an encoded form shorter
#: than this (of a very short key) is not searched for, lest it mask ordinary text.
_MIN_FRAGMENT = 8

_secrets: set[str] = set()


def register_secret(secret: str) -> None:
    """Remember a secret so that :func:`redact` scrubs it from now on (process-wide)."""
    if len(secret) >= 4:
        _secrets.add(secret)


def known_secrets() -> frozenset[str]:
    """The secrets registered so far."""
    return frozenset(_secrets)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """Replace every known secret (or those given), in each of its spellings and cut short
    to any prefix of 8 characters or more, with a mask."""
    for secret in _secrets if secrets is None else secrets:
        text = secret_pattern(secret, prefixes=True).sub(MASK, text)
    return text


#: How a character may be written where a key leaks: besides itself (either case), these.
_NAMED = {"&": ("&amp;",), "<": ("&lt;",), ">": ("&gt;",), '"': ("&quot;", '\\"'),
          "'": ("&apos;", "\\'"), "/": ("\\/",), "\\": ("\\\\",)}  # fmt: skip


def _spellings(char: str) -> str:
    """A regex for one character of a key in any of its spellings (under IGNORECASE)."""
    code = ord(char)
    spelled = [
        re.escape(char),
        f"%{code:02x}",
        f"&\\#x0*{code:x};",
        f"&\\#0*{code};",
        f"\\\\u{code:04x}",
        f"\\\\x{code:02x}",
        *(re.escape(form) for form in _NAMED.get(char, ())),
    ]
    return "(?:" + "|".join(spelled) + ")"


@functools.cache
def secret_pattern(secret: str, *, prefixes: bool = False) -> re.Pattern[str]:
    """Every spelling of ``secret`` (see the module's docstring), as one regex; with
    ``prefixes``, also the key cut short after 8 characters or more."""
    chars = [_spellings(char) for char in secret]
    if prefixes and len(secret) > _MIN_FRAGMENT:
        tail = ""
        for spelled in reversed(chars[_MIN_FRAGMENT:]):
            tail = f"(?:{spelled}{tail})?"
        mixed = "".join(chars[:_MIN_FRAGMENT]) + tail
    else:
        mixed = "".join(chars)
    whole = sorted(encoded_forms(secret), key=len, reverse=True)  # base64 and the rest
    return re.compile("|".join([*(re.escape(form) for form in whole), f"(?i:{mixed})"]), re.DOTALL)


#: An escaped character in a file, read lower-cased: what contains_secret decodes.
_ESCAPED = re.compile(
    rb"%([0-9a-f]{2})|&#x([0-9a-f]{1,6});|&#([0-9]{1,7});|\\u([0-9a-f]{4})|\\x([0-9a-f]{2})"
    rb"|&(amp|lt|gt|quot|apos);|\\([\"'/\\])"
)
_ENTITIES = {b"amp": "&", b"lt": "<", b"gt": ">", b"quot": '"', b"apos": "'"}


def _decoded(match: re.Match[bytes]) -> bytes:
    hexa, hex_ref, decimal, unicode, byte, named, escaped = match.groups()
    if named is not None:
        return _ENTITIES[named].encode()
    if escaped is not None:
        return escaped
    code = int(hexa or hex_ref or unicode or byte or b"0", 16) if not decimal else int(decimal)
    try:
        return chr(code).lower().encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return match.group(0)


def contains_secret(data: bytes, secret: str) -> bool:
    """Whether ``data`` holds ``secret`` in any spelling ``secret_pattern`` knows: the file
    lower-cased with its escapes decoded holds the key lower-cased, or the file holds one of
    its whole encoded forms. Fast: two passes in C (and a third over a file with escapes)."""
    key = secret.lower().encode("utf-8")
    lowered = data.lower()
    if key in lowered or any(form in data for form in _whole_forms(secret)):
        return True
    if b"%" not in lowered and b"&" not in lowered and b"\\" not in lowered:
        return False
    return key in _ESCAPED.sub(_decoded, lowered)


@functools.cache
def _whole_forms(secret: str) -> tuple[bytes, ...]:
    """The encoded forms that are not the key character by character (base64)."""
    return tuple(form.encode() for form in _base64_forms(secret.encode()) if len(form) >= 8)


@functools.cache
def encoded_forms(secret: str) -> tuple[str, ...]:
    """The shapes ``secret`` takes when something encodes it, the secret itself first.

    URL-encoded (path, query and form style), JSON-escaped (also PHP's ``\\/`` and the
    HTML-safe ``\\u0026`` of JSON-LD), a Python repr's escapes, HTML- and XML-escaped in the
    spellings of html.escape, markupsafe (Jinja) and XML, and base64 (standard and URL-safe,
    alone or at any offset inside a longer base64 text).
    """
    json_text = json.dumps(secret)[1:-1]
    escaped = html.escape(secret, quote=False)
    forms = [
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json_text,
        json_text.replace("/", "\\/"),
        _json_html_safe(json_text),
        secret.replace("\\", "\\\\"),  # repr() with double quotes: only backslashes escaped
        secret.replace("\\", "\\\\").replace("'", "\\'"),  # repr() with single quotes
        escaped,
        html.escape(secret),  # &quot; &#x27;
        escaped.replace('"', "&#34;").replace("'", "&#39;"),  # markupsafe, as Jinja escapes
        escaped.replace('"', "&quot;").replace("'", "&apos;"),  # XML
        *_base64_forms(secret.encode()),
    ]
    found = dict.fromkeys(form for form in forms if form == secret or len(form) >= _MIN_FRAGMENT)
    return tuple(found)


def _json_html_safe(json_text: str) -> str:
    return (
        json_text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("'", "\\u0027")
    )


def _base64_forms(data: bytes) -> list[str]:
    """The secret base64-encoded on its own (padded or not), and the part of its encoding that
    stays the same wherever it starts inside a longer base64 text (offsets 0, 1 and 2)."""
    forms = []
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(data).decode()
        forms += [whole, whole.rstrip("=")]
        for offset in range(3):
            # Skip the first group (it holds bytes before the secret) and a last group cut
            # short: what is left encodes only bytes of the secret.
            text = encode(b"\0" * offset + data).decode()
            complete = (offset + len(data)) // 3 * 4
            forms.append(text[4 if offset else 0 : complete])
    return forms


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the final message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class RedactingStream:
    """A text stream that masks secrets in everything written through it.

    The CLI installs one over stdout and one over stderr, so that whatever writes there
    (click.echo, print, logging, a traceback, a thread's uncaught exception) passes the same
    gate. Text is passed on a line at a time (a carriage return also ends one, for progress
    bars), so a key written in pieces is masked whole; ``flush`` passes on a partial line.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # no bytes past the gate (click probes with b"")
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self._pending += text
            end = max(self._pending.rfind("\n"), self._pending.rfind("\r")) + 1
            if end:
                lines, self._pending = self._pending[:end], self._pending[end:]
                self.stream.write(redact(lines))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self.stream.write(redact(self._pending))
                self._pending = ""
        self.stream.flush()

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self.stream.closed

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:
        return getattr(self.stream, "errors", None)
