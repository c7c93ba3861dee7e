"""Keep the API key out of everything catalog-gen prints, logs or publishes.

The key only ever travels in the ``X-API-Key`` header, so in normal operation it cannot reach a
message. This is the second line of defence for the abnormal ones (an API error echoing the
request, a traceback in --debug): everything the CLI writes passes through :func:`redact`, and
the build refuses to publish a site that holds the key (build.verify uses :func:`encoded_forms`).

A leaked key is rarely the plain key: it comes back URL-encoded from an echoed request,
HTML-escaped from a page, JSON-escaped or in a Python repr from an error message, base64-encoded
from an echoed header, or cut short at a line width. :func:`encoded_forms` lists those shapes;
it is the one place they are defined.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import logging
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
    """Replace every known secret (or those given), in each of its forms, with a mask."""
    for secret in _secrets if secrets is None else secrets:
        for form in _forms(secret):
            if form in text:
                text = text.replace(form, MASK)
    return text


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


@functools.cache
def _forms(secret: str) -> list[str]:
    """Every form :func:`redact` masks: the encoded forms and truncated prefixes of the key."""
    forms = set(encoded_forms(secret))
    # Truncated forms ("abcd1234…" in a log line cut at a width): any long-enough prefix.
    forms.update(secret[:n] for n in range(_MIN_FRAGMENT, len(secret)))
    # Longest first, so a prefix never leaves the tail of a longer match behind.
    return sorted(forms, key=lambda form: (-len(form), form))


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
