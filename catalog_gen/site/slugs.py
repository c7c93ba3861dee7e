"""URL slugs: readable, ASCII, and stable for as long as the record lives.

A slug is the title made URL-safe (Norwegian letters transliterated the way Norwegians write
them without the keyboard: æ→ae, ø→o, å→a) followed by the record's id. The id makes it unique
and, more importantly, *stable*: deduplicating by counter ("excel-2") would move a course to
another address the night a second "Excel" course appears or the first one goes, breaking
bookmarks, search results and links in newsletters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

MAX_LENGTH = 60

#: Letters NFKD does not decompose into a base letter + accent.
_TRANSLITERATE = str.maketrans(
    {
        "æ": "ae", "Æ": "ae", "ø": "o", "Ø": "o", "å": "a", "Å": "a",
        "ß": "ss", "đ": "d", "Đ": "d", "ł": "l", "Ł": "l", "þ": "th", "Þ": "th",
        "œ": "oe", "Œ": "oe",
    }
)  # fmt: skip
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text: str | None) -> str:
    """``"Førstehjelp & HMS – kurs"`` → ``"forstehjelp-og-hms-kurs"``; "" when nothing is left."""
    if not text:
        return ""
    ascii_text = (
        unicodedata.normalize("NFKD", str(text).translate(_TRANSLITERATE))
        .encode("ascii", "ignore")
        .decode("ascii")
        .lower()
    )
    slug = _NOT_WORD.sub("-", ascii_text).strip("-")
    if len(slug) > MAX_LENGTH:
        slug = (
            slug[:MAX_LENGTH].rsplit("-", 1)[0] if "-" in slug[:MAX_LENGTH] else slug[:MAX_LENGTH]
        )
    return slug.strip("-")


def assign_slugs(titles: Mapping[int, str | None], *, fallback: str = "item") -> dict[int, str]:
    """Slug per id: ``<slugified title>-<id>``, or ``<fallback>-<id>`` for an empty title.

    Each slug depends on its own record only, so no other record's arrival or removal can
    change it, and two records can never share one (ids are unique).
    """
    return {rid: f"{slugify(title) or fallback}-{rid}" for rid, title in titles.items()}
