"""The words and formats of the published site, in Norwegian Bokmål and English.

Templates ask for text by key (``t('seats_left', count=3)``) so a theme works in every language,
and format dates, times, months and money through Babel with the site's locale, so "23. nov.
2026" and "1 500 kr" come out the way a Norwegian reader expects (and "23 Nov 2026", "NOK1,500"
for an English one). Formatters are looked up once per process.

Adding a language: add its strings below (the same keys and placeholders: a test checks) and its
Babel locale to ``BABEL_LOCALES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache, lru_cache

import babel
from babel.dates import format_date, format_skeleton, format_time
from babel.numbers import format_currency, format_decimal

LANGUAGES = ("nb", "en")
BABEL_LOCALES = {"nb": "nb_NO", "en": "en_GB"}
DATE_STYLES = {"medium": "medium", "long": "long", "weekday": "full"}

STRINGS: dict[str, dict[str, str]] = {
    "nb": {
        "skip_to_content": "Gå til innholdet",
        "main_nav_label": "Hovedmeny",
        "nav_courses": "Kurs",
        "nav_calendar": "Kalender",
        "nav_categories": "Kategorier",
        "nav_venues": "Kurssteder",
        "footer_note": "Kurs, datoer og ledige plasser oppdateres jevnlig.",
        "filter_label": "Filtrer kursene",
        "filter_category": "Kategori",
        "filter_city": "Sted",
        "filter_month": "Måned",
        "filter_language": "Språk",
        "filter_form": "Undervisningsform",
        "filter_all": "Alle kurs",
        "heading_month": "Kurs som starter i {name}",
        "heading_language": "Kurs på {name}",
        "heading_form": "Kurs: {name}",
        "add_to_calendar": "Legg i kalender",
        "course_calendar": "Alle datoene i kalenderen din (.ics)",
        "subscribe_heading": "Følg kursdatoene",
        "subscribe_calendar": "Abonner på kurskalenderen",
        "download_calendar": "Last ned kalenderen (.ics)",
        "atom_feed": "Nye kursdatoer som nyhetsstrøm (Atom)",
        "feed_title": "{site}: nye kursdatoer",
        "feed_entry": "{course}, {date}",
        "nav_search": "Søk",
        "search_title": "Søk i kursene",
        "search_label": "Søk etter kurs",
        "search_noscript": (
            "Søket trenger JavaScript. Du finner kursene også under kategorier og steder."
        ),
        "home_title": "Alle kurs",
        "course_count": "{count} kurs",
        "course_count_one": "1 kurs",
        "date_count": "{count} kursdatoer",
        "date_count_one": "1 kursdato",
        "next_date": "Neste kurs",
        "no_upcoming_dates": "Ingen planlagte datoer ennå",
        "more_dates": "+ {count} flere datoer",
        "more_dates_one": "+ 1 dato til",
        "dates_heading": "Datoer og påmelding",
        "col_date": "Dato",
        "col_time": "Tid",
        "col_venue": "Sted",
        "col_city": "By",
        "col_status": "Status",
        "col_seats": "Plasser",
        "col_price": "Pris",
        "col_booking": "Påmelding",
        "seats_left": "{count} ledige plasser",
        "seats_left_one": "1 ledig plass",
        "few_seats_left": "Få plasser igjen",
        "fully_booked": "Fullt",
        "seats_as_of": "Ledige plasser per {when}",
        "moment": "{date} kl. {time}",
        "status_canceled": "Avlyst",
        "status_postponed": "Utsatt",
        "status_closed": "Påmeldingen er stengt",
        "status_tbd": "Dato kommer",
        "status_unknown": "Ikke bekreftet",
        "deadline": "Påmeldingsfrist {date}",
        "book": "Meld deg på",
        "book_by_email": "Meld deg på per e-post",
        "book_on_kursguiden": "Meld deg på hos Kursguiden",
        "book_contact": "Kontakt oss for påmelding",
        "book_contact_email": "Skriv til {contact} for påmelding",
        "book_contact_phone": "Ring {contact} for påmelding",
        "book_ask": "Kontakt kursleverandøren for påmelding",
        "price_on_request": "Pris på forespørsel",
        "time_tba": "Tid kommer",
        "online": "Nettkurs",
        "venue_tba": "Sted kommer",
        "about_course": "Om kurset",
        "audience": "Hvem passer kurset for",
        "prerequisites": "Forkunnskaper",
        "instructors": "Kursholdere",
        "duration": "Varighet",
        "categories_title": "Kategorier",
        "venues_title": "Kurssteder",
        "other_venues": "Andre kurssteder",
        "courses_in": "Kurs i {name}",
        "courses_at": "Kurs på {name}",
        "calendar_title": "Kurskalender",
        "page_of": "Side {page} av {pages}",
        "previous_page": "Forrige side",
        "next_page": "Neste side",
        "pagination_label": "Sider",
        "breadcrumb_label": "Du er her",
        "sub_dates": "Samlinger",
        "not_found_title": "Fant ikke siden",
        "not_found_text": "Siden finnes ikke, eller kurset er ikke lenger i katalogen.",
        "back_home": "Til alle kurs",
        "more_info": "Mer om {course} hos kursleverandøren",
        # Meta descriptions of pages without their own text and a site without site.description.
        "describe_site": "{site}: kurs med datoer, steder og ledige plasser.",
        "describe_list": "{heading}: {courses} hos {site}, med datoer, steder og ledige plasser.",
        "describe_dates": "{heading}: {dates} hos {site}, med steder og ledige plasser.",
        "describe_course": "{title} hos {site}. Neste kurs: {when}.",
        "describe_course_undated": "{title} hos {site}. Ingen planlagte datoer ennå.",
        "untitled_course": "Kurs {id}",
        "untitled_venue": "Kurssted {id}",
    },
    "en": {
        "skip_to_content": "Skip to content",
        "main_nav_label": "Main menu",
        "nav_courses": "Courses",
        "nav_calendar": "Calendar",
        "nav_categories": "Categories",
        "nav_venues": "Venues",
        "footer_note": "Courses, dates and free seats are updated regularly.",
        "filter_label": "Filter the courses",
        "filter_category": "Category",
        "filter_city": "City",
        "filter_month": "Month",
        "filter_language": "Language",
        "filter_form": "Form of teaching",
        "filter_all": "All courses",
        "heading_month": "Courses starting in {name}",
        "heading_language": "Courses in {name}",
        "heading_form": "Courses: {name}",
        "add_to_calendar": "Add to calendar",
        "course_calendar": "All dates in your calendar (.ics)",
        "subscribe_heading": "Follow the course dates",
        "subscribe_calendar": "Subscribe to the course calendar",
        "download_calendar": "Download the calendar (.ics)",
        "atom_feed": "New course dates as a feed (Atom)",
        "feed_title": "{site}: new course dates",
        "feed_entry": "{course}, {date}",
        "nav_search": "Search",
        "search_title": "Search the courses",
        "search_label": "Search for courses",
        "search_noscript": (
            "Search needs JavaScript. You can also find the courses by category and venue."
        ),
        "home_title": "All courses",
        "course_count": "{count} courses",
        "course_count_one": "1 course",
        "date_count": "{count} course dates",
        "date_count_one": "1 course date",
        "next_date": "Next date",
        "no_upcoming_dates": "No dates scheduled yet",
        "more_dates": "+ {count} more dates",
        "more_dates_one": "+ 1 more date",
        "dates_heading": "Dates and booking",
        "col_date": "Date",
        "col_time": "Time",
        "col_venue": "Venue",
        "col_city": "City",
        "col_status": "Status",
        "col_seats": "Seats",
        "col_price": "Price",
        "col_booking": "Booking",
        "seats_left": "{count} seats left",
        "seats_left_one": "1 seat left",
        "few_seats_left": "Few seats left",
        "fully_booked": "Fully booked",
        "seats_as_of": "Seats as of {when}",
        "moment": "{date}, {time}",
        "status_canceled": "Canceled",
        "status_postponed": "Postponed",
        "status_closed": "Closed for booking",
        "status_tbd": "Date to be announced",
        "status_unknown": "Not confirmed",
        "deadline": "Book by {date}",
        "book": "Book",
        "book_by_email": "Book by e-mail",
        "book_on_kursguiden": "Book on Kursguiden",
        "book_contact": "Contact us to book",
        "book_contact_email": "Write to {contact} to book",
        "book_contact_phone": "Call {contact} to book",
        "book_ask": "Contact the course provider to book",
        "price_on_request": "Price on request",
        "time_tba": "Time to be announced",
        "online": "Online",
        "venue_tba": "Venue to be announced",
        "about_course": "About the course",
        "audience": "Who it is for",
        "prerequisites": "Prerequisites",
        "instructors": "Instructors",
        "duration": "Duration",
        "categories_title": "Categories",
        "venues_title": "Venues",
        "other_venues": "Other venues",
        "courses_in": "Courses in {name}",
        "courses_at": "Courses at {name}",
        "calendar_title": "Course calendar",
        "page_of": "Page {page} of {pages}",
        "previous_page": "Previous page",
        "next_page": "Next page",
        "pagination_label": "Pages",
        "breadcrumb_label": "You are here",
        "sub_dates": "Sessions",
        "not_found_title": "Page not found",
        "not_found_text": "This page does not exist, or the course is no longer in the catalog.",
        "back_home": "See all courses",
        "more_info": "More about {course} from the course provider",
        "describe_site": "{site}: courses with dates, venues and free seats.",
        "describe_list": "{heading}: {courses} at {site}, with dates, venues and free seats.",
        "describe_dates": "{heading}: {dates} at {site}, with venues and free seats.",
        "describe_course": "{title} at {site}. Next date: {when}.",
        "describe_course_undated": "{title} at {site}. No dates scheduled yet.",
        "untitled_course": "Course {id}",
        "untitled_venue": "Venue {id}",
    },
}


@dataclass(frozen=True)
class Locale:
    """Text and formats for one site language; templates see it as ``locale`` and ``t``."""

    #: The site's language: ``nb`` or ``en``.
    code: str
    _babel: babel.Locale = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.code not in LANGUAGES:
            raise ValueError(
                f"unknown language '{self.code}' (choose one of {', '.join(LANGUAGES)})"
            )
        object.__setattr__(self, "_babel", babel.Locale.parse(BABEL_LOCALES[self.code]))

    def t(self, key: str, **params: object) -> str:
        """The UI string ``key`` with its ``{placeholders}`` filled; unknown keys are errors.

        With a whole-number ``count``, the language's plural form of it (CLDR: ``one`` or
        ``other`` for nb and en) picks ``<key>_<form>`` when there is one: "1 course", not
        "1 courses".
        """
        texts = STRINGS[self.code]
        count = params.get("count")
        if isinstance(count, int) and not isinstance(count, bool):
            key = _plural_key(texts, key, self._babel.plural_form(count))
        try:
            text = texts[key]
        except KeyError:
            raise KeyError(f"no text '{key}' for language '{self.code}'") from None
        return text.format(**params) if params else text

    def date(self, value: date, style: str = "medium") -> str:
        """``23. nov. 2026`` (medium), ``23. november 2026`` (long), ``mandag 23. …`` (weekday)."""
        return _format_date(value, DATE_STYLES[style], self._babel)

    def time(self, value: time) -> str:
        """``09:00``: the wall-clock time at the venue, never converted."""
        return _format_time(value, self._babel)

    def moment(self, value: datetime) -> str:
        """``4. des. kl. 03:15`` / ``4 Dec, 03:15``: a day and a time of day, in the zone of
        ``value`` (the model gives stamps in the catalog's zone)."""
        day = _format_skeleton("MMMd", value.date(), self._babel)
        return self.t("moment", date=day, time=self.time(value.time()))

    def month(self, year: int, month: int) -> str:
        """``November 2026``, capitalised for use as a heading."""
        text = format_date(date(year, month, 1), "LLLL y", locale=self._babel)
        return text[:1].upper() + text[1:]

    def price(self, value: Decimal | int | float, currency: str) -> str:
        """``1 500 kr``: whole amounts without decimals, others with the currency's digits."""
        return _format_price(Decimal(str(value)), currency, self._babel)

    def number(self, value: int | float | Decimal) -> str:
        """``1 500``: a number with the language's separators."""
        return format_decimal(value, locale=self._babel)

    def language_name(self, code: str) -> str:
        """``Norsk`` for ``no``: a teaching language named in the site's language."""
        name = self._babel.languages.get(code) or self._babel.languages.get(code.split("-")[0])
        return (name[:1].upper() + name[1:]) if name else code

    def knows_language(self, code: str) -> bool:
        """Whether ``language_name`` has a name for a teaching-language code (``no``,
        ``en-GB``), rather than showing the code itself."""
        names = self._babel.languages
        return code in names or code.split("-")[0] in names

    @property
    def tag(self) -> str:
        """The locale as Open Graph and feeds write it: ``nb_NO``, ``en_GB``."""
        return BABEL_LOCALES[self.code]


# A big catalog formats the same few hundred dates, times and prices tens of thousands of
# times; Babel re-parses its patterns on every call, so the results are kept.
@lru_cache(maxsize=8192)
def _format_date(value: date, style: str, locale: babel.Locale) -> str:
    return format_date(value, style, locale=locale)


@lru_cache(maxsize=512)
def _format_skeleton(skeleton: str, value: date, locale: babel.Locale) -> str:
    return format_skeleton(skeleton, value, locale=locale)


@lru_cache(maxsize=2048)
def _format_time(value: time, locale: babel.Locale) -> str:
    return format_time(value, "short", locale=locale)


@lru_cache(maxsize=8192)
def _format_price(amount: Decimal, currency: str, locale: babel.Locale) -> str:
    if amount == amount.to_integral_value():
        pattern = locale.currency_formats["standard"].pattern
        return format_currency(
            amount,
            currency,
            format=pattern.replace(".00", ""),
            locale=locale,
            currency_digits=False,
        )
    return format_currency(amount, currency, locale=locale)


@cache
def get_locale(code: str) -> Locale:
    """The shared Locale for a language code (``nb`` or ``en``); ValueError for others."""
    return Locale(code)


def _plural_key(texts: dict[str, str], key: str, form: str) -> str:
    """``key``'s text for a plural form, when the language has one for it."""
    plural = f"{key}_{form}"
    return plural if plural in texts else key
