"""One city, however it is spelled: "Oslo", "OSLO" and " oslo" are one city with one page.

Venues name their city as the provider typed it. ``merge_cities`` groups the spellings by a
key (``city_key``: case, accents and spaces folded) and gives each group the spelling most of
its venues use, with one address; a city without letters or digits gets no page.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace

from anyascii import anyascii

from catalog_gen.anomalies import Anomalies, Anomaly, kind
from catalog_gen.site.model import (
    City,
    Venue,
)
from catalog_gen.site.slugs import keyed_slug

CITY = kind(
    "venue.city_unusable",
    "city name without letters or digits; no city page (the venue is listed under "
    "'{other_venues}')",
)


CITY_VARIANTS = kind(
    "city.spelled_differently",
    "one city written in several ways (case, accents, spaces); one city page, under the "
    "most frequent spelling",
)


@dataclass(frozen=True)
class CityMerge:
    """One city per spelling group (see ``city_key``): the venues whose city is spelled
    otherwise, renamed; each venue's city; the odd city names found."""

    renamed: Mapping[int, Venue]
    city_of: Mapping[int, City]
    anomalies: tuple[Anomaly, ...]


def merge_cities(venues: Mapping[int, Venue]) -> CityMerge:
    """A city has no id, so its spellings are merged by a key: one page per city under its
    most frequent spelling, with a slug made from the key so it stays put."""
    found = Anomalies()
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    key_of: dict[int, str] = {}
    for vid in sorted(venues):
        venue = venues[vid]
        key = city_key(venue.city)
        if key:
            spellings[key][venue.city] += 1
            key_of[vid] = key
        elif venue.city:
            found.add(CITY, venue_name(venue), "city", venue.city)
    cities = {}
    for key, counts in spellings.items():
        # The most frequent spelling; between equals, one that is not all capitals or
        # all small letters, then the first in code-point order: stable for equal data.
        shown = min(counts, key=lambda s: (-counts[s], s.isupper() or s.islower(), s))
        cities[key] = City(shown, keyed_slug(shown, key, "by"))
    renamed = {}
    for vid, venue in venues.items():
        group = key_of.get(vid)
        city = cities[group].name if group else ""
        if group and venue.city != city:
            found.add(CITY_VARIANTS, venue_name(venue), "city", venue.city)
        if venue.city != city:
            renamed[vid] = replace(venue, city=city)
    city_of = {vid: cities[key] for vid, key in key_of.items()}
    return CityMerge(renamed, city_of, tuple(found))


def venue_name(venue: Venue) -> str:
    return f"place {-venue.id}" if venue.id < 0 else f"venue {venue.id}"


def city_key(name: str) -> str:
    """What makes two spellings one city: case, accents on Latin and Greek letters, Latin
    letters without an accent to strip (ø/o, æ/ae, ß/ss), spaces and punctuation do not count.
    "" for a name without letters or digits."""
    folded = []
    latin_or_greek = False
    for char in unicodedata.normalize("NFKD", name.casefold()):
        if unicodedata.combining(char):
            if not latin_or_greek:
                folded.append(char)
            continue
        char_name = unicodedata.name(char, "")
        latin_or_greek = char_name.startswith(("LATIN", "GREEK"))
        if char_name.startswith("LATIN") and not char.isascii():
            folded.append(anyascii(char).lower())
        elif char.isalnum():
            folded.append(char)
        else:
            folded.append(" ")
    return " ".join(unicodedata.normalize("NFC", "".join(folded)).split())
