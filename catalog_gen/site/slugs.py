"""URL slugs: readable, ASCII, never empty, at most 80 characters, stable for the record's life.

A slug is the title made URL-safe followed by the record's id. Letters of any script are
transliterated with anyascii (a maintained table of every code point, ISC licence): Norwegian
letters come out the way Norwegians write them without the keyboard (æ→ae, ø→o, å→a),
Cyrillic, Greek, Arabic and CJK as their common romanisation (Москва → moskva, 北京 → bei-jing).
Symbols and emoji are dropped; a title with nothing left gets the fallback word instead
(``kurs-22002``).

The id makes the slug unique and, more importantly, *stable*: deduplicating by counter
("excel-2") would move a course to another address the night a second "Excel" course appears
or the first one goes, breaking bookmarks, search results and links in newsletters.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

from anyascii import anyascii

#: The title part of a slug; with a separator and an id of at most MAX_ID_DIGITS digits the
#: whole slug stays within SLUG_LIMIT.
MAX_LENGTH = 60
SLUG_LIMIT = 80
#: Record ids that can go into an address: positive, at most this many digits.
MAX_ID_DIGITS = 16
MAX_ID = 10**MAX_ID_DIGITS - 1
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_NOT_ASCII = re.compile(r"[^\x00-\x7f]")


def slugify(text: str | None) -> str:
    """``"Førstehjelp & HMS – kurs"`` → ``"forstehjelp-hms-kurs"``; "" when nothing is left.

    Decomposed accents go (é → e, å → a); letters and digits that have no ASCII form then are
    transliterated; anything else that is not ASCII (symbols, emoji) is dropped, as it always
    was, so slugs of Latin-script titles are what they were before transliteration came in.
    """
    if not text:
        return ""
    return _slugify(str(text))


@lru_cache(maxsize=65536)
def _slugify(text: str) -> str:
    """slugify, remembered: venue, category and city names recur on thousands of dates."""
    ascii_text = _NOT_ASCII.sub(_ascii, unicodedata.normalize("NFKD", text))
    slug = _NOT_WORD.sub("-", ascii_text.lower()).strip("-")
    if len(slug) > MAX_LENGTH:
        cut = slug[:MAX_LENGTH]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else cut
    return slug.strip("-")


def _ascii(match: re.Match[str]) -> str:
    char = match.group()
    if char.isspace():
        return " "
    if unicodedata.category(char)[0] in "LN":  # a letter or digit of any script
        # A Han character is a syllable and Chinese writes no spaces: kept apart, the
        # syllables stay readable (北京 → bei-jing) instead of running into one long word.
        return f" {anyascii(char)} " if _is_han(char) else anyascii(char)
    return ""  # accents (already split off by NFKD), symbols, emoji, punctuation


def _is_han(char: str) -> bool:
    return unicodedata.name(char, "").startswith("CJK ")


def slug_with_id(title: str | None, rid: int, fallback: str) -> str:
    """``<slugified title>-<id>``, or ``<fallback>-<id>`` when the title gives no slug."""
    return f"{slugify(title) or fallback}-{rid}"


def assign_slugs(titles: Mapping[int, str | None], *, fallback: str = "item") -> dict[int, str]:
    """Slug per id: ``<slugified title>-<id>``, or ``<fallback>-<id>`` for an empty title.

    Each slug depends on its own record only, so no other record's arrival or removal can
    change it, and two records can never share one (ids are unique).
    """
    return {rid: slug_with_id(title, rid, fallback) for rid, title in titles.items()}


def usable_id(value: object) -> bool:
    """Whether a record id can be part of an address (and of an HTML id)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def keyed_slug(name: str, key: str, fallback: str) -> str:
    """A slug for a record without an id (a city), unique because it is made from the
    record's key: the plain slug when the key is short ASCII (it cannot then collide with
    another key's), else the slug plus a short digest of the key (two romanisations can
    coincide: 北京 and 背景 are both "bei-jing")."""
    plain = slugify(name)
    if plain and key.isascii() and plain == _NOT_WORD.sub("-", key).strip("-"):
        return plain
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{plain or fallback}-{digest}"
