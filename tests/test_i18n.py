"""UI strings and Babel formats for both site languages, and the theme's use of them."""

from __future__ import annotations

import re
import string
from datetime import date, time
from decimal import Decimal
from pathlib import Path

import pytest

from catalog_gen.site.i18n import LANGUAGES, STRINGS, get_locale

THEMES = Path(__file__).resolve().parent.parent / "themes"


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_language_has_the_same_keys_and_placeholders():
    reference = STRINGS["nb"]
    for code in LANGUAGES:
        assert STRINGS[code].keys() == reference.keys(), code
        for key, text in STRINGS[code].items():
            assert placeholders(text) == placeholders(reference[key]), (code, key)


def test_every_key_the_themes_use_exists_with_the_parameters_they_pass():
    calls = re.compile(r"\bt\('([a-z_0-9]+)'((?:,\s*[a-z_]+=)[^)]*)?\)")
    found = 0
    for template in THEMES.glob("*/templates/**/*.html"):
        for key, args in calls.findall(template.read_text(encoding="utf-8")):
            found += 1
            assert key in STRINGS["nb"], f"{template.name}: unknown text key '{key}'"
            passed = set(re.findall(r"([a-z_]+)=", args or ""))
            assert passed == placeholders(STRINGS["nb"][key]), (template.name, key)
    assert found > 40  # the pattern still matches how templates call t()


def test_unknown_keys_and_languages_are_errors():
    with pytest.raises(KeyError, match="no_such_key"):
        get_locale("nb").t("no_such_key")
    with pytest.raises(ValueError, match="unknown language 'de'"):
        get_locale("de")


@pytest.mark.parametrize(
    ("code", "medium", "long", "weekday", "month"),
    [
        ("nb", "3. mars 2027", "3. mars 2027", "onsdag 3. mars 2027", "Mars 2027"),
        ("en", "3 Mar 2027", "3 March 2027", "Wednesday, 3 March 2027", "March 2027"),
    ],
)
def test_dates_and_months(code, medium, long, weekday, month):
    locale = get_locale(code)
    day = date(2027, 3, 3)
    assert locale.date(day) == medium
    assert locale.date(day, "long") == long
    assert locale.date(day, "weekday") == weekday
    assert locale.month(2027, 3) == month
    assert locale.time(time(9, 5)) == "09:05"


@pytest.mark.parametrize(
    ("code", "amount", "currency", "shown"),
    [
        ("nb", Decimal("24900"), "NOK", "24\xa0900\xa0kr"),
        ("nb", Decimal("1499.50"), "NOK", "1\xa0499,50\xa0kr"),
        ("nb", Decimal("300"), "EUR", "300\xa0€"),
        ("en", Decimal("24900"), "NOK", "NOK24,900"),
        ("en", Decimal("99.5"), "EUR", "€99.50"),
    ],
)
def test_prices_use_the_records_currency_and_the_sites_locale(code, amount, currency, shown):
    assert get_locale(code).price(amount, currency) == shown


def test_counts_fill_placeholders():
    assert get_locale("nb").t("seats_left", count=4) == "4 ledige plasser"
    assert get_locale("en").t("page_of", page=2, pages=5) == "Page 2 of 5"


@pytest.mark.parametrize(
    ("code", "count", "expected"),
    [
        ("en", 1, "1 course"),
        ("en", 0, "0 courses"),
        ("en", 21, "21 courses"),
        ("nb", 1, "1 kurs"),
        ("nb", 2, "2 kurs"),
    ],
)
def test_counts_take_the_languages_plural_form(code, count, expected):
    assert get_locale(code).t("course_count", count=count) == expected


def test_the_singular_is_the_languages_own_word():
    assert get_locale("nb").t("seats_left", count=1) == "1 ledig plass"
    assert get_locale("en").t("seats_left", count=1) == "1 seat left"
    assert get_locale("nb").t("date_count", count=1) == "1 kursdato"
    assert get_locale("nb").t("date_count", count=3) == "3 kursdatoer"
