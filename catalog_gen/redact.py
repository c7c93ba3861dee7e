"""Keep the API key out of everything catalog-gen prints or logs.

The key only ever travels in the ``X-API-Key`` header, so in normal operation it cannot reach a
message. This is the second line of defence for the abnormal ones (a library error echoing a
request, a traceback in --debug): every line the CLI prints passes through :func:`redact`, which
also catches the key URL-encoded, JSON-escaped or cut short.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"
#: A prefix this long of a truncated key is still treated as the key.
_MIN_FRAGMENT = 8

_secrets: set[str] = set()


def register_secret(secret: str) -> None:
    """Remember a secret so that :func:`redact` scrubs it from now on (process-wide)."""
    if len(secret) >= 4:
        _secrets.add(secret)


def redact(text: str) -> str:
    """Replace every known secret, and its escaped or truncated forms, with a mask."""
    for secret in _secrets:
        for form in _forms(secret):
            if form in text:
                text = text.replace(form, MASK)
    return text


def secret_forms(secret: str) -> set[str]:
    """The ways a secret can appear written out in full: as is, URL-encoded, HTML-escaped,
    JSON-escaped (PHP style too) and base64 (standard and URL-safe, at any alignment inside a
    longer encoded text: the part of the encoding that only the secret's bytes decide; only
    when that part is long enough not to match by chance)."""
    escaped = json.dumps(secret)[1:-1]
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        html.escape(secret),
        html.escape(secret, quote=False),
        escaped,
        escaped.replace("/", "\\/"),
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
    raw = secret.encode("utf-8")
    for shift in range(3):  # where the secret starts within a 3-byte group
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        core = encoded[-(-shift * 8 // 6) : (shift + len(raw)) * 8 // 6]
        if len(core) >= _MIN_FRAGMENT:
            forms.update({core, core.replace("+", "-").replace("/", "_")})
    return {form for form in forms if form}


def _forms(secret: str) -> list[str]:
    forms = secret_forms(secret)
    # Truncated forms ("abcd1234…" in a log line cut at a width): any long-enough prefix.
    forms.update(secret[:n] for n in range(_MIN_FRAGMENT, len(secret)))
    # Longest first, so a prefix never leaves the tail of a longer match behind.
    return sorted(forms, key=len, reverse=True)


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the final message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
