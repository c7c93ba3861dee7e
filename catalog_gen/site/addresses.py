"""Addresses are values, not markup: the one check of every e-mail and web address we link to.

An address from the API becomes the target of a link on a public page, and a link is an
instruction to the visitor's browser or mail program. ``kurs@x.no?bcc=spy@evil.example``
is one "address" that sends every booking e-mail, in secret, to a third party as well; a
URL with credentials in it (``https://bank.no@evil.example/``) shows one host and goes to
another. So an address is accepted only when it is exactly one plain address:

- an e-mail address passes email-validator (syntax only: no DNS at build time) and holds
  none of the characters a ``mailto:`` link reads as a query or header (``? # % &``);
- a web address is an absolute http(s) URL with a real host (an IP address, or a name that
  IDNA accepts, with a dot), no credentials, no white space, control or format characters,
  and nothing a browser or HTML would read otherwise (backslashes, quotes, angle brackets).

Anything else gets no link; the readers (readers.py) report it, naming the record, and the
sanitiser unwraps such a link in provider HTML to its text.

**One URL policy** (``link_target``) for everything from the API that can become an ``href``:
provider HTML's links, the booking, more-info and online addresses, and whatever a template
links to with ``|safe_url`` (``extra``, custom properties). A value is first read the way a
browser reads an attribute before it parses the URL (WHATWG URL: leading and trailing C0
controls and spaces stripped, tabs and newlines removed anywhere; character references are
resolved by the HTML parser before that), so ``" mailto:…?bcc="``, ``"ma\tilto:…"`` and
``"java\nscript:"`` are judged as the browser will follow them. Then it is judged by scheme:
http(s) passes ``web_address``, mailto ``safe_mailto``; nothing else (``javascript:``,
``data:``, ``vbscript:``, ``file:``…) is ever a link.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

import idna
from email_validator import EmailNotValidError, validate_email

#: Characters a ``mailto:`` link reads as the start of a query, a fragment or an escape.
_MAILTO_SPECIAL = frozenset("?#%&")
#: Never in a URL we link to: white space, controls, and what HTML or a browser would read
#: otherwise (a backslash is a slash to a browser, quotes and angle brackets end attributes).
_NOT_IN_URL = re.compile(r"[\s\x00-\x1f\x7f-\x9f\\\"<>`{}|^]")
#: The only ``mailto:`` query fields a link in provider HTML may carry: what a visitor sees
#: in the message they are about to send, never another recipient.
_MAILTO_FIELDS = frozenset({"subject", "body"})
#: What a browser strips from both ends of a URL (C0 controls and space), and removes
#: anywhere in it (ASCII tab and newline), before it parses it.
_C0_AND_SPACE = "".join(map(chr, range(0x21)))
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
#: A URL's scheme, as the WHATWG parser finds it: a letter, then letters, digits, + - .
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


#: A reference within the site: a path, a query or a fragment, without a host (``//``) and
#: without a colon in its first segment (which another reader might take for a scheme).
_RELATIVE = re.compile(r"(?!//)(?:[/?#]|[^:/?#]+(?:[/?#]|$)).*", re.DOTALL)


def browser_reading(value: str) -> str:
    """``value`` as a browser reads a URL attribute before parsing it (WHATWG URL parser:
    leading and trailing C0 controls and spaces stripped, tabs and newlines removed)."""
    return _TAB_OR_NEWLINE.sub("", value.strip(_C0_AND_SPACE))


def link_target(value: object, *, relative: bool = False) -> str:
    """The one URL policy: ``value`` as a link may carry it (as the browser will read it), or
    "" when it is not exactly one web page (``web_address``) or one plain ``mailto:``
    (``safe_mailto``). With ``relative``, a reference without a scheme (``/kontakt``,
    ``#dates``, ``om-oss/``) passes too, but not one to another host (``//host/…``)."""
    if not isinstance(value, str):
        return ""
    read = browser_reading(value)
    scheme = _SCHEME.match(read)
    if scheme is None:
        if relative and _RELATIVE.fullmatch(read) and not _NOT_IN_URL.search(read):
            return read
        return ""
    name = scheme.group(1).lower()
    if name in ("http", "https"):
        return web_address(read)
    if name == "mailto":
        return read if safe_mailto(read) else ""
    return ""


def mail_address(value: object) -> str:
    """The address in its ASCII form when ``value`` is exactly one plain e-mail address;
    "" for anything else (two addresses, a query, a header injection, not text)."""
    return _checked_mail(value.strip()) if isinstance(value, str) else ""


@lru_cache(maxsize=4096)
def _checked_mail(value: str) -> str:
    """mail_address for text, remembered: most courses of a provider share one address."""
    if not value or _MAILTO_SPECIAL & set(value):
        return ""
    try:
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return ""
    return checked.ascii_email or ""


def web_address(value: object) -> str:
    """``value`` as given when it is an absolute http(s) URL with a real host and no
    credentials; "" for anything else."""
    if not isinstance(value, str):
        return ""
    text = value.strip()
    if _NOT_IN_URL.search(text) or any(unicodedata.category(c) == "Cf" for c in text):
        return ""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError for a port that is no port)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    if "@" in parts.netloc:  # user or password: phishing's favourite disguise
        return ""
    return text if _is_host(parts.hostname) else ""


@lru_cache(maxsize=4096)
def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    try:
        idna.encode(host, uts46=True)
    except (idna.IDNAError, UnicodeError, ValueError):
        return False
    return "." in host.strip(".")


def safe_mailto(href: str) -> bool:
    """Whether a ``mailto:`` link from provider HTML writes to exactly one plain address,
    with at most a subject and a body: no second recipient, no cc or bcc, no other header."""
    href = browser_reading(href)
    target = href[len("mailto:") :] if href[:7].lower() == "mailto:" else ""
    address, _, query = target.partition("?")
    if not mail_address(address):
        return False
    try:
        fields = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        return False
    return all(name.lower() in _MAILTO_FIELDS for name, _ in fields)
