"""catalog.toml, declared once: types, defaults and documentation in one place.

The dataclasses below are the schema. Loading validates every key up front (MkDocs style) so a
typo fails in one line naming the key and the file, instead of deep inside a run. The same
declarations generate the commented ``catalog.toml`` that ``catalog-gen init`` writes and the key
table of docs/configuration.md (``python -m tools.reference``, a development tool beside the
package; a test fails when the committed table is not what this makes).

Secrets and endpoints never live here: the API key comes from ``FRONTCORE_API_KEY`` (or a file
named by ``frontcore.api_key_file``) and the API base from ``FRONTCORE_API_URL``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tomllib
import typing
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from catalog_gen.errors import ConfigError

log = logging.getLogger(__name__)

CONFIG_FILENAME = "catalog.toml"
DEFAULT_API_URL = "https://api.frontcore.com/v2"
OLD_API_HOST = "www.kursguiden.no"
API_KEY_ENV = "FRONTCORE_API_KEY"
#: A file holding the key (a mounted secret, a systemd credential, a file only the cron user
#: can read): the key reaches the process without passing through a command line.
API_KEY_FILE_ENV = "FRONTCORE_API_KEY_FILE"
API_URL_ENV = "FRONTCORE_API_URL"
#: Pins a run's clock, as ``--now`` does (a replay of a generated recipe sets it).
NOW_ENV = "CATALOG_GEN_NOW"
#: Frontcore's documented ceiling, shared by every client of the account.
MAX_RATE_LIMIT = 5.0


_T = TypeVar("_T")
_K = TypeVar("_K")
_V = TypeVar("_V")


def setting(
    default: _T,
    doc: str,
    *,
    check: Callable[[object], str | None] | None = None,
    check_list: Callable[[tuple[object, ...]], str | None] | None = None,
) -> _T:
    """Declare one config key: its default, one line of documentation, an optional check (of
    each item, for a list) and, for a list, an optional check of the list as a whole."""
    return field(default=default, metadata={"doc": doc, "check": check, "check_list": check_list})


class Table(dict[_K, _V]):
    """A TOML table as a setting's value (``date_status = { 7 = "scheduled" }``): read-only
    and hashable like every other setting, so a Config stays a frozen value."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def _read_only(self, *args: object, **kwargs: object) -> None:
        raise TypeError("settings cannot be changed")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only  # type: ignore[assignment]


def _between(low: float, high: float) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        # Only numbers get here: _checked tests a value's type before its check.
        assert isinstance(value, int | float)
        return None if low <= value <= high else f"must be between {low:g} and {high:g}"

    return check


def _timezone(value: object) -> str | None:
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "must be an IANA time zone name such as Europe/Oslo"
    return None


@dataclass(frozen=True)
class FrontcoreSettings:
    """How catalog-gen talks to the Frontcore API."""

    rate_limit: float = setting(
        4.0,
        "Requests per second, counted over any sliding second, retries included. "
        "Frontcore allows 5 per account, shared by all its clients; at most 5.",
        check=_between(0.1, MAX_RATE_LIMIT),
    )
    timeout_seconds: float = setting(
        30.0,
        "Seconds to wait for the connection, and then for each piece of an answer, before "
        "retrying.",
        check=_between(1, 600),
    )
    max_retries: int = setting(
        5,
        "Retries of one request (429, 5xx, timeouts, bad JSON) before the run fails.",
        check=_between(0, 20),
    )
    max_retry_after_seconds: float = setting(
        120.0,
        "A 429 asking to wait longer than this fails the run instead of stalling it.",
        check=_between(1, 3600),
    )
    max_answer_mb: int = setting(
        64,
        "Megabytes one answer may send (as received, compressed or not); a larger one fails "
        "the run, unretried. A page of 250 courses is a few MB.",
        check=_between(1, 4096),
    )
    max_decoded_mb: int = setting(
        128,
        "Megabytes one answer may hold once decompressed (a gzip bomb of 0.5 MB can hold "
        "500); a larger one fails the run, unretried. A fetch's peak memory grows with it.",
        check=_between(1, 4096),
    )
    answer_deadline_seconds: float = setting(
        300.0,
        "Seconds one answer may take from request to last byte, however steadily it "
        "trickles (`frontcore.timeout_seconds` bounds only the wait for each piece); a slower "
        "one fails the run, unretried.",
        check=_between(1, 3600),
    )
    api_key_file: str = setting(
        "",
        "Optional file holding the API key (e.g. a mounted secret); `FRONTCORE_API_KEY` wins. "
        "Never put the key itself in `catalog.toml`.",
    )


@dataclass(frozen=True)
class SyncSettings:
    """What a fetch downloads and when it refuses to publish."""

    batch_size: int = setting(
        100,
        "Course ids per `/batch/coursedates` request (keeps URLs short).",
        check=_between(1, 250),
    )
    reference_ttl_days: float = setting(
        7.0,
        "Days before venues, instructors and products are fetched again.",
        check=_between(0, 365),
    )
    max_shrink_percent: float = setting(
        20.0,
        "Refuse a new snapshot with this many percent fewer courses than the last one "
        "(override once with `--allow-shrink`).",
        check=_between(0, 100),
    )
    max_dates_shrink_percent: float = setting(
        50.0,
        "Refuse a new snapshot that lost this many percent of the current and upcoming dates "
        "of courses it still has (override once with `--allow-shrink`).",
        check=_between(0, 100),
    )
    past_days: int = setting(
        30,
        "Dates that ended within this many days are fetched again every run; older ones are "
        "kept from the last snapshot (and fetched again with `--full`).",
        check=_between(0, 3650),
    )
    max_courses: int = setting(
        50_000,
        "Courses the course list may hold; a longer list fails the run (an API gone wrong, not "
        "a catalog) and nothing is saved.",
        check=_between(1, 10_000_000),
    )
    max_dates: int = setting(
        500_000,
        "Course dates one fetch may receive; more fails the run and nothing is saved.",
        check=_between(1, 100_000_000),
    )
    max_reference_records: int = setting(
        200_000,
        "Venues, instructors or products one list may hold; a longer list fails the run and "
        "nothing is saved.",
        check=_between(1, 100_000_000),
    )
    max_dates_per_course: int = setting(
        1000,
        "Current and upcoming dates kept for one course: the ones starting soonest; the rest "
        "are left out of the snapshot with a warning (`course.dates_over_limit`).",
        check=_between(1, 1_000_000),
    )


def _one_of(*choices: str) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        return None if value in choices else "must be one of " + ", ".join(map(repr, choices))

    return check


def _no_repeats(values: tuple[object, ...]) -> str | None:
    repeated = sorted({v for v in values if values.count(v) > 1}, key=str)
    if not repeated:
        return None
    return "must name each at most once (" + ", ".join(map(repr, repeated)) + " more than once)"


#: What catalog-gen can send a visitor to for a date's sign-up (``publish.booking``): the
#: course's ``external_booking_url``, its ``email_booking``, its page on Kursguiden
#: (``kursguiden_url``). site/rules.py decides a date's path from them.
BOOKING_PATHS = ("external", "email", "kursguiden")

#: A shape check of the operator's contact address; site/addresses.py, the one URL policy,
#: judges it again where it becomes a link (site/rules.py: a refusal is a ConfigError).
_NOT_IN_EMAIL = r"[^@\s?#%&,;:<>\"'()\[\]\\/]"
_EMAIL_SHAPE = re.compile(rf"{_NOT_IN_EMAIL}+@{_NOT_IN_EMAIL}+\.{_NOT_IN_EMAIL}+")
_PHONE_SHAPE = re.compile(r"\+?[0-9][0-9 ()\-.]{2,30}[0-9]")


def _contact_email(value: object) -> str | None:
    if value == "" or _EMAIL_SHAPE.fullmatch(str(value)):
        return None
    return "must be one plain e-mail address such as kurs@example.no"


def _contact_phone(value: object) -> str | None:
    text = str(value)
    if text == "" or (_PHONE_SHAPE.fullmatch(text) and sum(c.isdigit() for c in text) >= 4):
        return None
    return 'must be a phone number of digits, spaces and + - ( ), such as "+47 22 00 00 00"'


def _contact_url(value: object) -> str | None:
    if value == "":
        return None
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return "must be an absolute http(s) URL such as https://kurs.example.no/kontakt"
    if re.search(r"\s", str(value)):
        return "must not contain white space"
    return None


def _folder_name(value: object) -> str | None:
    text = str(value)
    if not text or text in (".", "..") or Path(text).is_absolute() or ".." in Path(text).parts:
        return "must be a folder inside the project (a relative path without '..')"
    return None


def _kept_path(value: object) -> str | None:
    text = str(value).removesuffix("/")  # ".well-known/" names the folder too
    parts = text.split("/")
    if text.startswith("/") or "\\" in text or any(p in ("", ".", "..") for p in parts):
        return 'must list paths inside the site folder, such as "CNAME" or ".well-known"'
    return None


def _base_url(value: object) -> str | None:
    if value == "":
        return None
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an absolute http(s) URL such as https://kurs.example.no/"
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    return None


@dataclass(frozen=True)
class SiteSettings:
    """What the built website looks like and where it goes."""

    title: str = setting("Kurskatalog", "The site's name, shown in the header and page titles.")
    base_url: str = setting(
        "",
        "Where the site is published (`https://kurs.example.no/`). Needed for canonical "
        "links, `sitemap.xml`, the Atom feed and calendar links; without it they are left out "
        "(the build says so in a note).",
        check=_base_url,
    )
    description: str = setting(
        "",
        "One sentence about the catalog: the meta description of pages without their own "
        "(without it, each page gets one made from what it shows).",
    )
    organization: str = setting(
        "", "The course provider's name in structured data (schema.org); default: `site.title`."
    )
    search: bool = setting(
        True, "Build a full-text search (Pagefind) into the site; `false` leaves it out."
    )
    language: str = setting(
        "nb",
        'Language of the site\'s texts, dates and prices: `"nb"` (Bokmål) or `"en"` (English).',
        check=_one_of("nb", "en"),
    )
    theme: str = setting(
        "default",
        "Theme folder: `themes/<name>/` beside `catalog.toml`, else a bundled theme.",
    )
    output_dir: str = setting(
        "site",
        "Folder the site is built into (replaced as a whole when a build completes).",
        check=_folder_name,
    )
    keep: tuple[str, ...] = setting(
        (),
        "Files in the site folder that the build does not make but must keep, each a path "
        "relative to the folder or a pattern (`*` and `?` within one name; a folder keeps "
        'all it holds), e.g. `["CNAME", ".well-known", "google*.html"]`. Anything else in '
        "the folder that the build did not make is removed when it publishes.",
        check=_kept_path,
    )
    templates_dir: str = setting(
        "templates", "Templates here override the theme's, file by file.", check=_folder_name
    )
    content_dir: str = setting(
        "content",
        "Markdown pages (`*.md` with front matter) published as content pages.",
        check=_folder_name,
    )
    contact_email: str = setting(
        "",
        "The provider's e-mail for sign-ups: a bookable date with none of the paths of "
        "`publish.booking` asks visitors to write here (the first of `contact_url`, "
        "`contact_email`, `contact_phone` that is set; with none, it says to contact the "
        "provider, and the build notes it).",
        check=_contact_email,
    )
    contact_phone: str = setting(
        "",
        'The provider\'s phone for sign-ups (`"+47 22 00 00 00"`), for a bookable date with no '
        "booking path when neither `contact_url` nor `contact_email` is set.",
        check=_contact_phone,
    )
    contact_url: str = setting(
        "",
        "The provider's contact page (`https://kurs.example.no/kontakt`), the first choice for "
        "a bookable date with no booking path.",
        check=_contact_url,
    )
    per_page: int = setting(
        24,
        "Courses per list page before a list is split into pages (the calendar shows twice as "
        "many dates).",
        check=_between(1, 1000),
    )


@dataclass(frozen=True)
class PublishSettings:
    """Which courses and dates reach the public site, and how seats are shown."""

    hidden_course_types: tuple[str, ...] = setting(
        ("internal",), "Courses of these types are never published."
    )
    hidden_level_ids: tuple[int, ...] = setting(
        (15,), "Courses at these levels are never published (15 = corporate training)."
    )
    few_seats_threshold: int = setting(
        3, "At most this many free seats reads as 'few seats left'.", check=_between(0, 1000)
    )
    show_seat_counts: bool = setting(
        True, "Show 'n seats left'; `false` shows only 'few seats left' and 'fully booked'."
    )
    booking: tuple[str, ...] = setting(
        BOOKING_PATHS,
        "Where a bookable date's sign-up button leads: the first of these paths its course "
        'has, in this order. `"external"`: the course\'s `external_booking_url`; `"email"`: '
        'its `email_booking`; `"kursguiden"`: its page on Kursguiden (`kursguiden_url`), '
        "where sign-up happens. An address that is not usable is skipped (odd data). A date "
        "with none of them says how to get in touch (`site.contact_*`); `[]` makes every "
        "date do so.",
        check=_one_of(*BOOKING_PATHS),
        check_list=_no_repeats,
    )
    date_status: Mapping[int, str] = setting(
        Table(),
        "Course-date status ids beyond Frontcore's 1-4 and what they mean, e.g. "
        '`{ 7 = "scheduled" }`: `"scheduled"`, `"tbd"`, `"canceled"` or '
        '`"postponed"`. A date with an '
        "unmapped id is listed as 'not confirmed' and cannot be booked; mapping 1-4 overrides "
        "Frontcore's meaning.",
        check=_one_of("scheduled", "tbd", "canceled", "postponed"),
    )


@dataclass(frozen=True)
class Config:
    """The validated contents of catalog.toml, with paths resolved against its folder."""

    timezone: str = setting(
        "Europe/Oslo",
        "The catalog's time zone: 'today' and dates without a zone are read in it.",
        check=_timezone,
    )
    snapshot_dir: str = setting(
        "snapshots", "Folder for the JSON snapshots, relative to `catalog.toml`."
    )
    keep_snapshots: int = setting(
        5,
        "How many snapshots to keep for `catalog-gen diff` (a fetch that finds nothing new "
        "writes none).",
        check=_between(1, 1000),
    )
    frontcore: FrontcoreSettings = field(default_factory=FrontcoreSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    site: SiteSettings = field(default_factory=SiteSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    #: Where the settings came from; not a key. None means built-in defaults.
    source: Path | None = field(default=None, compare=False, metadata={"internal": True})
    root: Path = field(default_factory=Path.cwd, compare=False, metadata={"internal": True})

    @property
    def site_url(self) -> str:
        """site.base_url ending in one slash, or "" when the site's address is unknown."""
        url = self.site.base_url
        return url.rstrip("/") + "/" if url else ""

    @property
    def snapshot_path(self) -> Path:
        return self.root / self.snapshot_dir

    @property
    def output_path(self) -> Path:
        return self.root / self.site.output_dir

    @property
    def site_paths(self) -> SitePaths:
        return SitePaths(self.output_path)

    @property
    def build_state_path(self) -> Path:
        return self.site_paths.state

    @property
    def build_cache_path(self) -> Path:
        return self.site_paths.cache

    @property
    def spare_path(self) -> Path:
        return self.site_paths.spare

    def kept_between_runs(self) -> list[str]:
        """What an unattended run must find again the next night, relative to the project:
        the snapshots, the site, and what a build keeps beside the site to work in
        proportion to the change (its state and model cache). The spare is left out: it is
        a second copy of the site, made again when missing. A CI cache holds these."""
        return [
            _relative(path, self.root)
            for path in (self.snapshot_path, self.output_path, *self.site_paths.kept_beside)
        ]

    def ignore_lines(self) -> list[str]:
        """The .gitignore lines of a project: what runs write (the site and what a build
        keeps beside it, the run lock and what a fetch keeps about its snapshots), never the
        snapshots themselves, which may be committed (git diff reads them)."""
        paths = self.site_paths
        written = [
            (paths.site, "/"),
            (paths.state, ""),
            (paths.cache, "/"),
            (paths.spare, "/"),
            *((self.snapshot_path / name, "") for name in SNAPSHOT_RUN_FILES),
        ]
        return [
            f"/{_relative(path, self.root)}{end}"
            for path, end in written
            if path.is_relative_to(self.root)
        ]


#: What a fetch keeps in the snapshot folder about its own runs (source/lock.py,
#: source/store.py): not data, never committed.
SNAPSHOT_RUN_FILES = (".lock", ".incoming-*", "checked.json")


@dataclass(frozen=True)
class SitePaths:
    """The site folder and what a build keeps beside it, each named once.

    Beside, not inside: the site folder is replaced whole by every publish and uploaded as
    it is, so what only the next build needs lives next to it, named after it
    (``.site.build-state.json`` for ``site/``).
    """

    site: Path

    def _beside(self, suffix: str) -> Path:
        return self.site.parent / f".{self.site.name}.{suffix}"

    @property
    def state(self) -> Path:
        """What each published file is made of (site/buildstate.py)."""
        return self._beside("build-state.json")

    @property
    def cache(self) -> Path:
        """What the model is made of (site/modelcache.py)."""
        return self._beside("build-cache")

    @property
    def spare(self) -> Path:
        """The site before the last publish, which the next starts from (site/publish.py)."""
        return self._beside("spare")

    @property
    def kept_beside(self) -> tuple[Path, Path]:
        """What a later build needs beside the site to work in proportion to the change."""
        return self.state, self.cache

    def scratch_prefix(self, kind: str) -> str:
        """The name prefix of a folder a publish makes beside the site for a while
        (``staging``, ``old``, ``index``); a killed run leaves it for the next to clean."""
        return f".{self.site.name}.{kind}-"


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to the project, as a POSIX path (it lies inside: config checks)."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


SECTIONS: dict[str, type] = {
    "frontcore": FrontcoreSettings,
    "sync": SyncSettings,
    "site": SiteSettings,
    "publish": PublishSettings,
}


def documented_keys() -> list[tuple[str, object, str]]:
    """Every config key as (dotted name, default, doc), in declaration order."""
    keys = []
    for name, f in _settings(Config).items():
        keys.append((name, f.default, f.metadata["doc"]))
    for section, cls in SECTIONS.items():
        for name, f in _settings(cls).items():
            keys.append((f"{section}.{name}", f.default, f.metadata["doc"]))
    return keys


def _settings(cls: type) -> dict[str, dataclasses.Field[object]]:
    return {f.name: f for f in dataclasses.fields(cls) if "doc" in f.metadata}


def find_config(explicit: Path | None, cwd: Path | None = None) -> Path | None:
    """The catalog.toml to use: --config if given (must exist), else one in the working folder."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"{explicit}: no such config file")
        return explicit
    candidate = (cwd or Path.cwd()) / CONFIG_FILENAME
    return candidate if candidate.is_file() else None


def load_config(path: Path | None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate catalog.toml; None gives the defaults rooted in the working folder."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None

    key = (environ if environ is not None else os.environ).get(API_KEY_ENV, "").strip()
    if key and key in text:
        raise ConfigError(
            f"{path}: contains the API key; remove it and keep the key in {API_KEY_ENV} "
            "or in the file named by frontcore.api_key_file"
        )

    top = _validated(Config, raw, path, prefix="")
    sections = {
        name: cls(**_validated(cls, _table(raw.get(name, {}), name, path), path, prefix=f"{name}."))
        for name, cls in SECTIONS.items()
    }
    config = Config(
        # Each value was checked against its field's declared type (_checked), which mypy
        # cannot follow through a dict keyed by name.
        **top,  # type: ignore[arg-type]
        **sections,
        source=path,
        root=path.parent.resolve(),
    )
    _check_folders_apart(config, path)
    return config


def _table(value: object, name: str, path: Path) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    return value


def _validated(cls: type, raw: dict[str, object], path: Path, *, prefix: str) -> dict[str, object]:
    declared = _settings(cls)
    hints = typing.get_type_hints(cls)
    allowed_tables = SECTIONS.keys() if cls is Config else ()
    values = {}
    for key, value in raw.items():
        if key in allowed_tables:
            continue
        if key not in declared:
            raise ConfigError(f"{path}: unknown key '{prefix}{key}'")
        values[key] = _checked(f"{prefix}{key}", value, hints[key], declared[key], path)
    return values


def _checked(
    name: str, value: object, expected: type, f: dataclasses.Field[object], path: Path
) -> object:
    if typing.get_origin(expected) is Mapping:  # Mapping[K, V]: a TOML table
        return _checked_table(name, value, typing.get_args(expected), f, path)
    if typing.get_origin(expected) is tuple:  # tuple[X, ...]: a TOML array of X
        item_type = typing.get_args(expected)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{path}: '{name}' must be a list, not {_type_name(type(value))}")
        for item in value:
            if not isinstance(item, item_type) or isinstance(item, bool):
                raise ConfigError(
                    f"{path}: '{name}' must be a list of {_type_name(item_type)[2:]}s, "
                    f"not contain {_type_name(type(item))}"
                )
            problem = f.metadata["check"](item) if f.metadata.get("check") else None
            if problem:
                raise ConfigError(f"{path}: '{name}' {problem} (got {item!r})")
        whole = f.metadata.get("check_list")
        problem = whole(tuple(value)) if whole else None
        if problem:
            raise ConfigError(f"{path}: '{name}' {problem} (got {value!r})")
        return tuple(value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(
            f"{path}: '{name}' must be {_type_name(expected)}, not {_type_name(type(value))}"
        )
    check = f.metadata.get("check")
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{path}: '{name}' {problem} (got {value!r})")
    return value


def _check_folders_apart(config: Config, path: Path) -> None:
    """The places a build writes (the snapshots, the site, its build state and cache, the
    spare site) must not contain, or lie in, one another or the project's sources:
    publishing replaces the site folder whole, so snapshots or templates inside it would be
    eaten, and a site inside the snapshots or the templates would be read back as data or as
    templates."""
    root = config.root
    written = {
        "'snapshot_dir'": config.snapshot_path,
        "'site.output_dir'": config.output_path,
        f"the build state ({config.build_state_path.name})": config.build_state_path,
        f"the build cache ({config.build_cache_path.name})": config.build_cache_path,
        f"the spare site ({config.spare_path.name})": config.spare_path,
    }
    sources = {
        "'site.templates_dir'": root / config.site.templates_dir,
        "'site.content_dir'": root / config.site.content_dir,
        "the static/ folder": root / "static",
        "the themes/ folder": root / "themes",
    }
    places = {name: where.resolve() for name, where in {**written, **sources}.items()}
    for name in written:
        for other, there in places.items():
            here = places[name]
            if other == name:
                continue
            if here == there:
                relation = "is the same as"
            elif there in here.parents:
                relation = "is inside"
            elif here in there.parents:
                relation = "contains"
            else:
                continue
            raise ConfigError(
                f"{path}: {name} ({_shown(here, root)}) {relation} {other} "
                f"({_shown(there, root)}); a build replaces the site and the snapshot folder, "
                "so these must not contain one another"
            )


def _shown(where: Path, root: Path) -> str:
    return str(where.relative_to(root)) if where.is_relative_to(root) else str(where)


def _checked_table(
    name: str, value: object, types: tuple[type, type], f: dataclasses.Field[object], path: Path
) -> Table[object, object]:
    """A table whose keys are ``key_type`` (TOML keys are text: an integer key is written
    ``7 = ...``) and whose values are ``value_type``, each passing the setting's check."""
    key_type, value_type = types
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: '{name}' must be a table, not {_type_name(type(value))}")
    check = f.metadata.get("check")
    table = {}
    for raw_key, item in value.items():
        key: object = raw_key
        if key_type is int:
            try:
                key = int(raw_key)
            except ValueError:
                raise ConfigError(
                    f"{path}: '{name}' has the key {raw_key!r}; its keys must be whole numbers"
                ) from None
        if not isinstance(item, value_type):
            raise ConfigError(
                f"{path}: '{name}.{raw_key}' must be {_type_name(value_type)}, "
                f"not {_type_name(type(item))}"
            )
        problem = check(item) if check else None
        if problem:
            raise ConfigError(f"{path}: '{name}.{raw_key}' {problem} (got {item!r})")
        table[key] = item
    return Table(table)


def _type_name(t: type) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    return names.get(t, "a list" if t is list else f"a {t.__name__}")


@dataclass(frozen=True)
class ApiAccess:
    """Where and as whom to call Frontcore. The key's repr is masked."""

    base_url: str
    api_key: str = field(repr=False)
    #: The API base a snapshot records as its source; default: ``base_url`` without
    #: credentials. The demo's emulator listens on a new port each run, so it names itself.
    source: str = ""

    @property
    def public_base(self) -> str:
        return self.source or public_base_url(self.base_url)


def api_access(config: Config, *, environ: Mapping[str, str] | None = None) -> ApiAccess:
    """The API base and key from the environment (or api_key_file), or how to set them."""
    env = environ if environ is not None else os.environ
    base_url = normalise_base_url(env.get(API_URL_ENV, "").strip() or DEFAULT_API_URL)
    key = configured_api_key(config, environ=env, strict=True)
    if not key:
        raise ConfigError(
            f"no API key: set {API_KEY_ENV} (Frontcore app > Settings > API), "
            "e.g. export FRONTCORE_API_KEY=..., or try 'catalog-gen fetch --demo'"
        )
    where = API_KEY_ENV if env.get(API_KEY_ENV, "").strip() else "the key file"
    check_api_key(key, where)
    return ApiAccess(base_url=base_url, api_key=key)


def configured_api_key(
    config: Config, *, environ: Mapping[str, str] | None = None, strict: bool = False
) -> str:
    """The API key from FRONTCORE_API_KEY, else from the file FRONTCORE_API_KEY_FILE or
    frontcore.api_key_file names (relative to the project); "" when none.

    Runs that never call the API (``build --offline``, ``serve``) still ask for it, to keep
    it out of what they print and publish; for them (not ``strict``) an unreadable key file
    means no key rather than an error.
    """
    env = environ if environ is not None else os.environ
    key = env.get(API_KEY_ENV, "").strip()
    named = env.get(API_KEY_FILE_ENV, "").strip()
    if key or not (named or config.frontcore.api_key_file):
        return key
    key_path = config.root / (named or config.frontcore.api_key_file)
    try:
        return key_path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        if not strict:
            return ""
        where = API_KEY_FILE_ENV if named else f"{config.source}: frontcore.api_key_file"
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{where} {key_path} cannot be read ({reason})") from None


def child_environment() -> dict[str, str]:
    """The environment of a program catalog-gen starts (Pagefind): this process's, without
    the key or the name of the file that holds it. A program that needs no key gets none."""
    return {k: v for k, v in os.environ.items() if k not in (API_KEY_ENV, API_KEY_FILE_ENV)}


def check_api_key(key: str, where: str) -> None:
    """Refuse a key no HTTP header can carry (a control character, a non-ASCII letter: a
    stray newline from a file, a key pasted from a rich-text mail) as a config error naming
    where it came from, never the key: it would otherwise fail every request, and be
    retried as if the network were at fault."""
    for char in key:
        if not (" " < char < "\x7f"):
            kind = (
                "a control character or space"
                if char <= " " or char == "\x7f"
                else ("a character that is not ASCII")
            )
            raise ConfigError(
                f"the API key in {where} contains {kind}; copy it again from the Frontcore "
                "app (Settings > API)"
            )


def normalise_base_url(url: str) -> str:
    """Validate FRONTCORE_API_URL; warn once for the old Kursguiden host, which still works."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{API_URL_ENV}: not an http(s) URL")
    if parts.hostname == OLD_API_HOST:
        log.warning(
            "%s points at the old %s address; Frontcore asks integrations to move to %s",
            API_URL_ENV,
            OLD_API_HOST,
            DEFAULT_API_URL,
        )
    return url.rstrip("/")


def public_base_url(url: str) -> str:
    """The API base without credentials, query or fragment: safe to store in a manifest."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def config_template() -> str:
    """The commented catalog.toml that ``catalog-gen init`` writes: every key at its default."""
    lines = [
        "# catalog-gen configuration. Every key is optional; the values shown are the defaults.",
        f"# The API key is NOT set here: export {API_KEY_ENV}=... (or use frontcore.api_key_file).",
        f"# {API_URL_ENV} overrides the API base (default {DEFAULT_API_URL}).",
        "",
    ]
    section = None
    for name, default, doc in documented_keys():
        head, _, key = name.rpartition(".")
        if head != (section or ""):
            section = head
            lines += ["", f"[{section}]"]
        lines.append(f"# {doc.replace('`', '')}")  # the docs' code spans, as plain text
        lines.append(f"{key} = {toml_value(default)}")
    return "\n".join(lines) + "\n"


def toml_value(value: object) -> str:
    """A default as it is written in catalog.toml (and in docs/configuration.md's table)."""
    if isinstance(value, tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in sorted(value.items())) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
