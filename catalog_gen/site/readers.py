"""Tolerant readers: a value from the API as the model can use it, or a fallback and a note.

The API sends numbers as strings, ``[]`` for an empty object, ``null`` for an empty list, and,
now and then, a value of a shape it should not have. Each reader here accepts the forms the
API is known to send and turns anything else into a safe fallback, noted in ``anomalies``
with the record, the field and the value (the kinds it reports are declared beside it). Dates
and times are the provider's wall-clock values in the date's own zone: nothing here converts
them through the build machine's zone. Addresses are read through addresses.py's one check.

A reader takes a record (or an object inside one) as ``Mapping[str, object]``: read-only, its
values unchecked until the reader narrows them; a ``Record`` as parsed is one.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from catalog_gen.anomalies import Anomalies, kind
from catalog_gen.dates import parse_clock, parse_day, parse_moment
from catalog_gen.site.addresses import mail_address, web_address
from catalog_gen.site.slugs import usable_id
from catalog_gen.snapshot import Record

# --- the odd data this module turns into fallbacks (anomalies.py) ---------------------------

WRONG_TYPE = kind(
    "value.wrong_type",
    "value of the wrong type (text, a list or an object expected); treated as missing",
)


FLAG_UNREADABLE = kind(
    "value.flag_unreadable",
    "yes/no value that is neither; read as no (for is_active and is_visible: not published)",
)


EMAIL = kind(
    "address.email_unusable",
    "e-mail that is not exactly one plain address (no query, comma, line break or "
    "percent-escape); no e-mail link",
)


URL = kind(
    "address.url_unusable",
    "web address that is not a plain absolute http(s) URL with a host; no link",
)


DAY_UNREADABLE = kind(
    "date.day_unreadable", "end day, deadline or change stamp that cannot be read; left out"
)


TIME_UNREADABLE = kind(
    "date.time_unreadable",
    "time of day that cannot be read (e.g. '25:99'); start shown as '{time_tba}', end left out",
)


ZONE = kind("date.timezone_unknown", "time zone that is not an IANA zone name; read in 'timezone'")


# --- addresses: values, never markup (addresses.py) ------------------------------------------


def read_mail_address(record: Mapping[str, object], key: str, found: Anomalies, name: str) -> str:
    """One plain address for a ``mailto:`` link (addresses.py); "" with an anomaly for
    anything else (two addresses, a query, a header injection)."""
    raw = record.get(key)
    if is_empty(raw):
        return ""
    address = mail_address(raw)
    if not address:
        found.add(EMAIL, name, key, raw)
    return address


def read_web_address(record: Mapping[str, object], key: str, found: Anomalies, name: str) -> str:
    """An absolute http(s) address to link to (addresses.py); "" with an anomaly else."""
    raw = record.get(key)
    if is_empty(raw):
        return ""
    url = web_address(raw)
    if not url:
        found.add(URL, name, key, raw)
    return url


# --- tolerant readers -------------------------------------------------------------------------


def read_int(value: object) -> int | None:
    """Ints arrive as ints or strings ("12"); anything else (12.5, "12 kurs") is unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def read_id(value: object) -> int | None:
    """A record id that can be part of an address, as a number or numeric text; else None."""
    rid = read_int(value)
    return rid if rid is not None and usable_id(rid) else None


def read_whole(value: object) -> int | None:
    """A whole number: 12, 12.0, "12", "12.0"; not 12.5, not "12 seats"."""
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except (InvalidOperation, ValueError):
            return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    if isinstance(value, float | Decimal) and (not math.isfinite(value) or value != int(value)):
        return None
    return int(value)


_YES, _NO = frozenset({"1", "true", "yes"}), frozenset({"0", "false", "no"})


def read_flag(
    record: Mapping[str, object], key: str, default: bool, found: Anomalies, name: str
) -> bool:
    """A yes/no field: true/false, 1/0, "1"/"0", "true"/"false", "yes"/"no"; ``default`` when
    missing; no (with an anomaly) for anything else."""
    value = record.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _YES or text in _NO:
        return text in _YES
    found.add(FLAG_UNREADABLE, name, key, value)
    return False


def is_empty(value: object) -> bool:
    """Nothing, in any of the ways a PHP API says it: null, "", [], {}."""
    return value is None or value == "" or (isinstance(value, list | dict) and not value)


def read_object(
    record: Mapping[str, object], key: str, found: Anomalies, name: str
) -> Record | None:
    """An object field; None when empty (null, [] or {}), or of another type (an anomaly)."""
    value = record.get(key)
    if isinstance(value, dict):
        return value or None
    if not is_empty(value) and value is not False:
        found.add(WRONG_TYPE, name, key, value)
    return None


def read_list(record: Mapping[str, object], key: str, found: Anomalies, name: str) -> list[object]:
    """A list field; [] when empty (null, {}), or of another type (an anomaly)."""
    value = record.get(key)
    if isinstance(value, list):
        return value
    if not is_empty(value) and value is not False:
        found.add(WRONG_TYPE, name, key, value)
    return []


def scalar_of(value: object) -> object:
    return value if isinstance(value, str | int | float) and not isinstance(value, bool) else None


def read_zone(record: Mapping[str, object], default: str, found: Anomalies, name: str) -> str:
    value = record.get("timezone")
    if is_empty(value):
        return default
    text = value.strip() if isinstance(value, str) else ""
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        found.add(ZONE, name, "timezone", value)
        return default
    return text


def read_day(
    record: Mapping[str, object], key: str, zone: ZoneInfo, found: Anomalies, name: str
) -> date | None:
    """A calendar day; None when missing, or unreadable (then an anomaly, except for
    ``start_at``, whose absence the caller reports as the date's own loss)."""
    value = record.get(key)
    if is_empty(value):
        return None
    day = parse_day(value, zone) if isinstance(value, str) else None
    if day is None and key != "start_at":
        found.add(DAY_UNREADABLE, name, key, value)
    return day


def read_moment(
    record: Mapping[str, object], key: str, zone: ZoneInfo, found: Anomalies, name: str
) -> datetime | None:
    value = record.get(key)
    if is_empty(value):
        return None
    moment = parse_moment(scalar_of(value), zone)
    if moment is None:
        found.add(DAY_UNREADABLE, name, key, value)
    return moment


def read_clock(record: Mapping[str, object], key: str, found: Anomalies, name: str) -> time | None:
    value = record.get(key)
    if is_empty(value):
        return None
    clock = parse_clock(value) if isinstance(value, str) else None
    if clock is None:
        found.add(TIME_UNREADABLE, name, key, value)
    return clock


def title_of(value: object) -> str:
    return clean_line(value.get("title")) if isinstance(value, dict) else ""


#: Characters that may not appear in an HTML document (control characters, noncharacters,
#: lone surrogates): removed from every text before it reaches a template.
_UNWRITABLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(17))
    + "]"
)


def clean_line(value: object) -> str:
    """One line of provider text, as shown: unwritable characters gone, white space one
    space. Numbers read as their text; anything else as ""."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    text = str(value)
    if text.isprintable() and "  " not in text and text == text.strip():
        return text  # the common case, at C speed: nothing to remove or collapse
    return " ".join(_UNWRITABLE.sub("", text).split())


def read_plain(record: Mapping[str, object], key: str, found: Anomalies, name: str) -> str:
    value = record.get(key)
    if not is_empty(value) and value is not False and not isinstance(value, str | int | float):
        found.add(WRONG_TYPE, name, key, value)
    return clean_line(value)


def read_rich(record: Mapping[str, object], key: str, found: Anomalies, name: str) -> str | None:
    """A provider text (HTML or plain) with the characters HTML cannot hold removed; vertical
    tabs and form feeds (Word's line breaks) become line breaks."""
    value = record.get(key)
    if not isinstance(value, str):
        if not is_empty(value) and value is not False:
            found.add(WRONG_TYPE, name, key, value)
        return None
    return _UNWRITABLE.sub("", value.replace("\x0b", "\n").replace("\x0c", "\n"))


def has_words(text: str) -> bool:
    """Whether a text has something to read: a letter, digit, punctuation mark or symbol
    (not only spaces, invisible format characters or lone accents)."""
    if text[:1].isalnum():
        return True  # nearly every name: a letter or digit first
    return any(unicodedata.category(char)[0] in "LNPS" for char in text)
