"""Pages to bytes: the Jinja environment, the theme loader chain, filters and hashed assets.

Template lookup, first match wins::

    <project>/templates/        the provider's overrides, file by file
    <theme>/templates/          the theme picked by site.theme
    "!theme/<name>"             always the theme's own file, so an override can extend it:
                                {% extends "!theme/base.html" %}

A theme is ``themes/<name>/`` beside catalog.toml, else one bundled with catalog-gen. Its
``static/`` files (and the project's ``static/``, which wins file by file) are published under
``static/`` with a content hash in the name, so a CDN or browser never serves stale CSS.

Templates run with autoescaping and StrictUndefined: a misspelt variable is an error naming the
template file and line, not an empty string on the live site.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import marshal
import posixpath
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import CodeType
from typing import Any

import jinja2
import jinja2.meta
from markupsafe import Markup

from catalog_gen.errors import BuildError, TemplateError
from catalog_gen.site.addresses import link_target
from catalog_gen.site.content import ContentPage
from catalog_gen.site.i18n import Locale
from catalog_gen.site.jsonld import Provider, course_data, course_list_data, script_json
from catalog_gen.site.model import (
    BLANK,
    FACETS,
    Blank,
    Catalog,
    Course,
    FacetValue,
    Fields,
    json_default,
    seats_as_of,
)
from catalog_gen.site.pages import NOT_FOUND, Page, Pagination, Urls, absolute
from catalog_gen.site.sanitize import sanitize_html

THEME_PREFIX = "!theme"
#: The template ``course_card(course)`` draws: one course on a list page.
CARD_TEMPLATE = "partials/course_card.html"
#: How many cards of one course a build keeps (one per kind of page it reads alike from:
#: about three); a card that prints the page's own address is drawn for every page and kept
#: for none past these.
CARD_VARIANTS = 8
#: Templates that a global draws itself: a template naming the global uses the file (its
#: digest covers it) as if it included it.
DRAWN_BY_GLOBALS = {"course_card": CARD_TEMPLATE}


@dataclass(frozen=True)
class SiteInfo:
    """Site-wide facts every template can read as ``site``."""

    #: The site's name (site.title).
    title: str
    #: The site's language: ``nb`` or ``en`` (site.language).
    language: str
    #: The content pages in the main menu, in menu order.
    menu: tuple[ContentPage, ...] = ()
    #: site.base_url with one trailing slash, "" when unknown (then no absolute links).
    url: str = ""
    #: The site's description, for pages without their own (site.description).
    description: str = ""
    #: The provider's name (site.organization; "" when not set).
    organization: str = ""
    #: Whether the site has a search page (site.search).
    search: bool = False

    @property
    def provider(self) -> str:
        """Who offers the courses: ``organization``, else the site's title."""
        return self.organization or self.title


def find_theme(name: str, project_root: Path) -> Path:
    """The theme folder: the project's own ``themes/<name>``, else a bundled one."""
    candidates = [project_root / "themes" / name]
    bundled = importlib.resources.files("catalog_gen") / "themes" / name
    candidates.append(Path(str(bundled)))
    # A source checkout or editable install keeps the themes at the repository root.
    candidates.append(Path(__file__).resolve().parents[2] / "themes" / name)
    for folder in candidates:
        if (folder / "templates").is_dir():
            return folder
    raise BuildError(
        f"theme '{name}' not found (looked in {project_root / 'themes' / name} and the "
        "bundled themes); check site.theme in catalog.toml"
    )


def static_assets(folders: Iterable[Path]) -> dict[str, tuple[str, bytes]]:
    """Static files by logical name (``style.css``) → (hashed output path, bytes).

    Later folders win, so pass the theme's folder first and the project's last.
    """
    sources: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                sources[path.relative_to(folder).as_posix()] = path
    assets = {}
    for name, path in sorted(sources.items()):
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()[:10]
        stem, dot, suffix = name.rpartition(".")
        hashed = f"{stem}.{digest}.{suffix}" if dot and stem else f"{name}.{digest}"
        assets[name] = (f"static/{hashed}", data)
    return assets


class TemplateEnvironment(jinja2.Environment):
    """Jinja as catalog-gen runs it: a name a ``Fields`` lacks (a custom property, a field
    of ``extra``) reads as ``BLANK`` rather than as an undefined error, as Frontcore reads an
    absent property as an empty one, and so does every attribute or item of ``BLANK`` (a
    ``null``, or a field not sent): ``d.extra.location.lat`` is "" whatever the record's
    shape. Every other undefined name is still an error."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is Blank:
            return BLANK  # even the names of str's methods: a blank has fields, not methods
        if type(obj) is Fields and attribute not in obj and not hasattr(Fields, attribute):
            return BLANK  # items, get … stay methods, as for any mapping
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if type(obj) is Blank:
            return BLANK
        if type(obj) is Fields and isinstance(argument, str) and argument not in obj:
            return BLANK
        return super().getitem(obj, argument)


class CompiledTemplates(jinja2.BytecodeCache):
    """Compiled templates, by template file and source (Jinja checks the source's checksum):
    a renderer that meets a template compiled before compiles only those that changed. The
    preview keeps one in memory between saves; a build keeps what it compiled in the build
    cache for the next (``saved``, then ``CompiledTemplates(saved)``): 0.1 s a build.

    Compiled code may hold what a filter made of a literal (Jinja folds constants, the
    locale's ``date`` or ``price`` among them): it holds for the site's language, which the
    build cache's key includes (``DraftRules``), and for the same versions of Jinja and
    catalog-gen, which it includes too."""

    def __init__(self, saved: object = None) -> None:
        self._code: dict[str, tuple[str, CodeType]] = {}
        #: Whether a template was compiled since (``saved`` has something new).
        self.changed = False
        if isinstance(saved, dict):
            for key, found in saved.items():
                try:
                    checksum, data = found
                    code = marshal.loads(data)
                except (TypeError, ValueError, EOFError):
                    continue  # not what ``saved`` gives: compiled again
                if isinstance(code, CodeType):
                    self._code[str(key)] = (str(checksum), code)

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        found = self._code.get(bucket.key)
        if found is not None and found[0] == bucket.checksum:
            bucket.code = found[1]

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if bucket.code is not None:
            self._code[bucket.key] = (bucket.checksum, bucket.code)
            self.changed = True

    def clear(self) -> None:
        self._code.clear()

    def saved(self) -> dict[str, tuple[str, bytes]]:
        """What to keep in the build cache (Python's own format for code: ``marshal``, of
        this Python only, which the build cache's key includes); unchanged from here on."""
        self.changed = False
        code = list(self._code.items())  # at once: the preview's page threads compile too
        return {key: (sum_, marshal.dumps(compiled)) for key, (sum_, compiled) in code}


class Renderer:
    """Renders planned pages with one Jinja environment; one instance per build."""

    def __init__(
        self,
        *,
        theme: Path,
        overrides: Path,
        locale: Locale,
        urls: Urls,
        site: SiteInfo,
        catalog: Catalog,
        assets: Mapping[str, tuple[str, bytes]],
    ):
        theme_loader = jinja2.FileSystemLoader(str(theme / "templates"))
        self.roots = [overrides, theme / "templates"]
        #: Template paths in messages are shown relative to these (project, theme's parent).
        self._bases = [overrides.parent, theme.parent.parent]
        #: The environment's loader, kept here too: Environment.loader may be None, ours not.
        self._loader = jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(str(overrides)),
                theme_loader,
                jinja2.PrefixLoader({THEME_PREFIX: theme_loader}, delimiter="/"),
            ]
        )
        self.env = TemplateEnvironment(
            loader=self._loader,
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.assets = assets
        self._page_path = ""
        #: Each course's cards drawn so far, by (id of the course, heading level as printed).
        self._cards: dict[tuple[int, str], list[_Card]] = {}
        #: The calls of url(), asset() and canonical_url() made while each card being drawn
        #: (innermost last) is: what its bytes depend on of the page.
        self._recording: list[list[_PageCall]] = []
        self._dependencies: dict[str, frozenset[str] | None] = {}
        self._template_digests: dict[str, str] = {}
        self._globals_used: dict[str, frozenset[str] | None] = {}
        self._catalog_attributes: dict[str, frozenset[str] | None] = {}
        #: Parsed template files for the analyses above, each parsed once per build.
        self._trees: dict[str, jinja2.nodes.Template | Exception] = {}
        self.site = site
        self.urls = urls
        self.locale = locale
        self._provider = Provider(
            name=site.provider,
            url=site.url,
            language=locale.code,
            unknown_venue=locale.t("venue_tba"),
        )
        self.env.globals.update(
            site=site,
            catalog=catalog,
            urls=urls,
            t=locale.t,
            locale=locale,
            url=self._url,
            asset=self._asset,
            absolute_url=self._absolute_url,
            canonical_url=self._canonical_url,
            course_json_ld=self._course_json_ld,
            list_json_ld=self._list_json_ld,
            facet_title=self._facet_title,
            filter_groups=self.filter_groups,
            describe_list=self._describe_list,
            describe_course=self._describe_course,
            course_card=self._course_card,
        )
        self._catalog = catalog
        self._filters: list[tuple[str, list[tuple[str, str]]]] | None = None
        self.env.filters.update(
            date=locale.date,
            time=locale.time,
            moment=locale.moment,
            seats_as_of=seats_as_of,
            month=locale.month,
            price=locale.price,
            number=locale.number,
            sanitize=sanitized,
            safe_url=safe_url,
        )
        # tojson: the model's mappings (custom properties, extra) and dates as JSON.
        self.env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": json_default}

    def dependencies(self, name: str) -> frozenset[str] | None:
        """Every template ``name`` uses (itself, what it extends, includes or imports), by name.

        ``!theme/x`` counts as ``x``: an override and the theme file it extends share a name.
        None when a template picks another by a run-time expression (then anything may matter).
        """
        if name not in self._dependencies:
            found: set[str] = set()
            visited: set[str] = set()  # "x.html" and "!theme/x.html" are different files
            pending = [name]
            while pending:
                current = pending.pop()
                if current in visited:
                    continue
                visited.add(current)
                found.add(current.removeprefix(THEME_PREFIX + "/"))
                try:
                    referenced = list(jinja2.meta.find_referenced_templates(self._tree(current)))
                except jinja2.TemplateError:
                    continue  # render() reports it with file and line
                known = [used for used in referenced if used is not None]
                if len(known) < len(referenced):  # None: a name picked at run time
                    self._dependencies[name] = None
                    return None
                pending.extend(known)
                pending.extend(_drawn_by_globals(self._tree(current)))
            self._dependencies[name] = frozenset(found)
        return self._dependencies[name]

    def template_digest(self, name: str) -> str:
        """A digest of every template file ``name`` uses (the override and the theme's own
        file where both exist); of all templates when it picks one at run time."""
        if name not in self._template_digests:
            uses = self.dependencies(name)
            names = sorted(uses) if uses is not None else self.env.list_templates()
            hasher = hashlib.sha256()
            for used in names:
                for candidate in (used, f"{THEME_PREFIX}/{used}"):
                    try:
                        source = self._loader.get_source(self.env, candidate)[0]
                    except jinja2.TemplateNotFound:
                        source = "\x00missing"
                    hasher.update(f"{candidate}\x00{source}\x1f".encode("utf-8", "replace"))
            self._template_digests[name] = hasher.hexdigest()[:32]
        return self._template_digests[name]

    def globals_used(self, name: str) -> frozenset[str] | None:
        """Which template globals ``name`` and the templates it uses refer to (None: unknown).

        A page that reads ``catalog`` may show anything in it, so its digest must cover the
        whole catalog; one that does not is covered by its own page data.
        """
        if name not in self._globals_used:
            uses = self.dependencies(name)
            found: set[str] = set()
            unknown = False  # a file that does not parse: it may read any name
            for used in sorted(uses) if uses is not None else ():
                for candidate in (used, f"{THEME_PREFIX}/{used}"):
                    try:
                        tree = self._tree(candidate)
                    except jinja2.TemplateNotFound:
                        continue
                    except jinja2.TemplateError:
                        unknown = True
                        break
                    # Every name the file reads, wherever (even one it also sets itself):
                    # more than it may need, never less, and no compiling to find out.
                    found |= {
                        node.name for node in tree.find_all(jinja2.nodes.Name) if node.ctx == "load"
                    }
                if unknown:
                    break
            self._globals_used[name] = (
                frozenset(found & set(self.env.globals)) if not unknown and uses else None
            )
        return self._globals_used[name]

    def catalog_attributes(self, name: str) -> frozenset[str] | None:
        """Which attributes of the ``catalog`` global ``name`` and the templates it uses read
        (``now``, ``courses`` …); None when they use it whole (pass it on, keep it in a
        variable, subscript it) or cannot be analysed. Empty when they do not read it.

        The build's moment (``catalog.now``) changes on every build; only a page that may
        show it depends on it.
        """
        if name not in self._catalog_attributes:
            uses = self.dependencies(name)
            found: set[str] = set()
            unknown = uses is None  # then, or once a file uses it whole: it may read anything
            for used in sorted(uses or ()):
                for candidate in (used, f"{THEME_PREFIX}/{used}"):
                    try:
                        attributes = attributes_read(self._tree(candidate), "catalog")
                    except jinja2.TemplateNotFound:
                        continue
                    except jinja2.TemplateError:
                        attributes = None
                    if attributes is None:
                        unknown = True
                        break
                    found |= attributes
                if unknown:
                    break
            self._catalog_attributes[name] = frozenset(found) if not unknown else None
        return self._catalog_attributes[name]

    def _tree(self, name: str) -> jinja2.nodes.Template:
        """The parsed template file ``name``, parsed once per build; its TemplateNotFound or
        TemplateSyntaxError again on every call."""
        if name not in self._trees:
            try:
                source = self._loader.get_source(self.env, name)[0]
                self._trees[name] = self.env.parse(source)
            except jinja2.TemplateError as exc:
                self._trees[name] = exc
        tree = self._trees[name]
        if isinstance(tree, Exception):
            raise tree.with_traceback(None)  # not one more traceback layer on every call
        return tree

    def render(self, page: Page) -> bytes:
        """One page's bytes; template problems become a TemplateError naming file and line."""
        self._page_path = page.path
        try:
            template = self.env.get_template(page.template)
            text = template.render(page.context, page_path=page.path)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"{self._where(exc.filename or exc.name, exc.lineno)}: {exc.message}"
            ) from None
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"template '{exc.name}' not found (needed for {page.path}); looked in "
                + ", ".join(str(r) for r in self.roots)
            ) from None
        except Exception as exc:  # a template bug at run time: name the template line
            filename, line = _template_frame(sys.exc_info()[2])
            where = self._where(filename, line) if filename else page.template
            raise TemplateError(
                f"{where}: {type(exc).__name__}: {exc} (rendering {page.path})"
            ) from None
        return text.encode("utf-8")

    def _where(self, filename: str | None, line: int | None) -> str:
        shown = filename or "?"
        for base in self._bases:
            try:
                shown = str(Path(shown).resolve().relative_to(base.resolve()))
                break
            except ValueError:
                continue
        return f"{shown}:{line}" if line else shown

    # url() and asset() read the page being rendered from the renderer, not from the template
    # context, so they also work inside imported macros (which do not see the page's context).
    def _url(self, target: str) -> str:
        """A link from the page being rendered to ``target`` (a planned path)."""
        return self._for_page(relative_url, target)

    def _for_page(self, how: Callable[[str, str], str], argument: str) -> str:
        """``how(page, argument)`` for the page being rendered, noted for each card being
        drawn: a card is the same on another page where every such call gives the same."""
        result = how(self._page_path, argument)
        for calls in self._recording:
            calls.append((how, argument, result))
        return result

    def _course_card(self, course: Course, heading_level: int = 2) -> Markup:
        """One course on a list page (``partials/course_card.html``, which sees ``course``
        and ``heading_level``), drawn once per build and reused on every page whose links
        from it read the same."""
        # By what the template prints: 2, 2.0 and True are equal keys but different cards.
        drawn = self._cards.setdefault((id(course), repr(heading_level)), [])
        page = self._page_path
        for card in drawn:
            if card.course is course and card.fits(page):
                for outer in self._recording:  # a card drawn inside one: it read these too
                    outer.extend(card.calls)
                return card.html
        calls: list[_PageCall] = []
        self._recording.append(calls)
        try:
            template = self.env.get_template(CARD_TEMPLATE)
            html = Markup(template.render(course=course, heading_level=heading_level))
        finally:
            self._recording.pop()
        if len(drawn) < CARD_VARIANTS:
            drawn.append(_Card(course, tuple(calls), html))
        return html

    def _absolute_url(self, target: str) -> str:
        """The public address of ``target``, or "" when site.base_url is not set."""
        return absolute(self.site.url, target) if self.site.url else ""

    def _canonical_url(self) -> str:
        """The public address of the page being rendered ("" without site.base_url, and for
        the 404 page, which is served at any address)."""
        return self._for_page(self._canonical_of, "")

    def _canonical_of(self, page: str, _: str) -> str:
        return "" if page == NOT_FOUND else self._absolute_url(page)

    def _course_json_ld(self, course: Course) -> Markup:
        """The schema.org ``Course`` of a course page, as a JSON-LD script element."""
        page = self._absolute_url(self.urls.course(course)) or None
        return _json_ld(course_data(course, self._provider, page))

    def _list_json_ld(self, part: Pagination[Course]) -> Markup:
        """The schema.org ``ItemList`` of a page of courses, as a JSON-LD script element."""
        data = course_list_data(
            part.items, lambda c: self._absolute_url(self.urls.course(c)) or None, part.first
        )
        return _json_ld(data) if data else Markup("")

    def filter_groups(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """The course-list filters as (kind, [(title, first page)]), made once per build:
        every list page shows the same ones."""
        if self._filters is None:
            catalog, urls = self._catalog, self.urls
            groups = [
                ("category", [(c.title, urls.category(c)) for c in catalog.categories]),
                ("city", [(c.name, urls.city(c)) for c in catalog.cities]),
            ]
            for kind in FACETS:
                values = catalog.facet(kind)
                groups.append((kind, [(self._facet_title(v), urls.facet(v)) for v in values]))
            self._filters = groups
        return self._filters

    def _facet_title(self, value: FacetValue) -> str:
        """A filter value in the site's words: "Desember 2026", "Norsk", "Klasserom"."""
        if value.kind == "month":
            year, month = value.key.split("-")
            return self.locale.month(int(year), int(month))
        if value.kind == "language":
            return self.locale.language_name(value.key)
        return value.title

    # Generated meta descriptions, for a site without site.description: every page gets one
    # (search results show it; validators ask for it), said from what the page shows.
    def _describe_list(self, heading: str, count: int, *, dates: bool = False) -> str:
        """A list page's description: what it lists and how many (courses, or dates)."""
        t, site = self.locale.t, self.site.title
        if dates:
            return t(
                "describe_dates", heading=heading, dates=t("date_count", count=count), site=site
            )
        return t(
            "describe_list", heading=heading, courses=t("course_count", count=count), site=site
        )

    def _describe_course(self, course: Course) -> str:
        """A course page's description: its title, and where and when it next runs (the first
        date that is going ahead, not a canceled or postponed one)."""
        t, site = self.locale.t, self.site.title
        going_ahead = (d for d in course.dates if d.status not in ("canceled", "postponed"))
        upcoming = next(going_ahead, None)
        if upcoming is None:
            return t("describe_course_undated", title=course.title, site=site)
        when = self.locale.date(upcoming.start_date)
        if upcoming.city:
            when = f"{when}, {upcoming.city}"
        return t("describe_course", title=course.title, site=site, when=when)

    def _asset(self, name: str) -> str:
        """A link from the page being rendered to a static file by its name (``style.css``),
        with the content hash in the published name; an error for a file that is not there."""
        if name not in self.assets:
            raise KeyError(f"no static file '{name}' in the theme or the project")
        return self._for_page(relative_url, self.assets[name][0])


#: One page-dependent call a card made: (how, argument, result); see ``Renderer._for_page``.
_PageCall = tuple[Callable[[str, str], str], str, str]


@dataclass(frozen=True)
class _Card:
    """A card as drawn for one page, and what it read of that page."""

    #: Held, so that no other object takes its id while the card is kept.
    course: Course
    calls: tuple[_PageCall, ...]
    html: Markup

    def fits(self, page: str) -> bool:
        """Whether the card drawn for ``page`` would be these very bytes: each call it made
        gives the same there (the rest of what it reads is the same on every page)."""
        return all(how(page, argument) == result for how, argument, result in self.calls)


def _drawn_by_globals(tree: jinja2.nodes.Template) -> list[str]:
    """The templates drawn by the globals that ``tree`` names (``DRAWN_BY_GLOBALS``)."""
    named = {node.name for node in tree.find_all(jinja2.nodes.Name)}
    return [DRAWN_BY_GLOBALS[name] for name in sorted(named & DRAWN_BY_GLOBALS.keys())]


def attributes_read(tree: jinja2.nodes.Template, name: str) -> set[str] | None:
    """The attributes of variable ``name`` that a parsed template reads (``name.attr``);
    None when it uses ``name`` in any other way (then it may read anything of it)."""
    attributes: set[str] = set()
    through_attribute: set[int] = set()
    for node in tree.find_all(jinja2.nodes.Getattr):
        inner = node.node
        if isinstance(inner, jinja2.nodes.Name) and inner.name == name and inner.ctx == "load":
            attributes.add(node.attr)
            through_attribute.add(id(inner))
    for variable in tree.find_all(jinja2.nodes.Name):
        if (
            variable.name == name
            and variable.ctx == "load"
            and id(variable) not in through_attribute
        ):
            return None
    return attributes


def reads_catalog_now(sources: Iterable[str]) -> bool:
    """Whether any of these template sources may read ``catalog.now`` (the build's moment):
    then a build within the same quarter hour is not the same build (buildstate.py)."""
    environment = jinja2.Environment()
    for source in sources:
        if "catalog" not in source:
            continue
        try:
            attributes = attributes_read(environment.parse(source), "catalog")
        except jinja2.TemplateError:
            return True  # the build reports it; until then, assume the worst
        if attributes is None or "now" in attributes:
            return True
    return False


def sanitized(text: object) -> Markup:
    """Provider HTML made safe with the allow-list course texts get (``|sanitize``): for
    the HTML fields in ``extra`` (``course.extra.text_place|sanitize``); "" for none."""
    return Markup(sanitize_html(text if isinstance(text, str) else None))


def safe_url(value: object) -> str:
    """A link target from the API made safe for an ``href`` (``|safe_url``): the one URL
    policy the sanitiser and the booking links use (addresses.link_target: read as a browser
    reads it, then one http(s) page with a real host and no credentials, or one plain
    ``mailto:``); "" for anything else (``javascript:``, ``data:``, a second recipient, a
    ``null``). ``{% if d.extra.kursguiden_url|safe_url %}<a href="{{
    d.extra.kursguiden_url|safe_url }}">…</a>{% endif %}``."""
    return link_target(value)


def _json_ld(data: object) -> Markup:
    return Markup(f'<script type="application/ld+json">{script_json(data)}</script>')


def relative_url(source: str, target: str) -> str:
    """The link from page ``source`` to file ``target``; folders end in ``/``.

    The 404 page is served at any depth, so its links are absolute from the site root.
    """
    directory, name = posixpath.split(target)
    tail = "" if name == "index.html" else name
    if source == NOT_FOUND:
        return "/" + (f"{directory}/" if directory else "") + tail
    relative = _relative_dir(posixpath.dirname(source), directory)
    if tail:
        return tail if relative == "." else f"{relative}/{tail}"
    return "./" if relative == "." else f"{relative}/"


@lru_cache(maxsize=65536)
def _relative_dir(start: str, directory: str) -> str:
    """posixpath.relpath for site-relative folders, without its getcwd() per call (hot path)."""
    here = start.split("/") if start else []
    there = directory.split("/") if directory else []
    common = 0
    while common < min(len(here), len(there)) and here[common] == there[common]:
        common += 1
    return "/".join([".."] * (len(here) - common) + there[common:]) or "."


def _template_frame(tb: Any) -> tuple[str | None, int | None]:
    """The innermost traceback frame that belongs to a template file."""
    found: tuple[str | None, int | None] = (None, None)
    for frame, line in traceback.walk_tb(tb):
        filename = frame.f_code.co_filename
        if filename.endswith((".html", ".xml", ".txt", ".j2")):
            found = (filename, line)
    return found
