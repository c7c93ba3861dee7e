"""The generated parts of the docs: the key table of docs/configuration.md and the template
reference of docs/templates.md, each made from the code it documents.

A development tool, not shipped in the package::

    python -m tools.reference            # rewrite both
    python -m tools.reference --check    # exit 1 naming each file that is out of date

The key table lists every key declared in catalog_gen/config.py with its default and its doc
line. The template reference is generated from the code templates run with:

Everything a template sees is listed from the code itself: the globals and filters of the
renderer's Jinja environment, the variables of each page (from a page plan), and every
attribute of every object among them (model fields with their ``#:`` comments, properties and
methods with their docstrings). So the reference cannot leave out a field the model gains::

each is the part of its file between two markers; the prose around it is kept. The docs
tests run these functions and fail when a committed file is not what they make.
"""

from __future__ import annotations

import ast
import functools
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import jinja2.defaults
import jinja2.filters

from catalog_gen.config import PublishSettings, documented_keys, toml_value
from catalog_gen.site import model
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.content import ContentPage
from catalog_gen.site.drafts import COURSE_TYPED_FIELDS, DATE_TYPED_FIELDS, PERSONAL_FIELDS
from catalog_gen.site.i18n import Locale, get_locale
from catalog_gen.site.pages import Page, Pagination, Urls, plan_pages
from catalog_gen.site.render import Renderer, SiteInfo, find_theme
from catalog_gen.snapshot import Snapshot

BEGIN = "<!-- begin reference: made by `python -m tools.reference`; edit the code -->"
END = "<!-- end reference -->"

#: The objects templates see, in the order the reference lists them.
OBJECTS: tuple[type, ...] = (
    SiteInfo,
    model.Catalog,
    model.Course,
    model.CourseDate,
    model.BookingPath,
    model.Venue,
    model.Category,
    model.City,
    model.Price,
    model.Seats,
    model.Session,
    model.FacetValue,
    model.Fields,
    Pagination,
    ContentPage,
    Urls,
    Locale,
)


@dataclass(frozen=True)
class Attribute:
    """One attribute of an object a template sees."""

    name: str
    #: How a template writes it: ``title``, ``courses_in(category)``.
    usage: str
    #: Its type as the code declares it ("" when it does not).
    type: str
    doc: str


def attributes(cls: type) -> list[Attribute]:
    """The public fields, properties and methods of ``cls``, in the order of its source;
    a field's description is the ``#:`` comment above it."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    found = []
    for node in body.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
            if not name.startswith("_"):
                declared = ast.unparse(node.annotation)
                found.append(Attribute(name, name, declared, _comment(lines, node.lineno - 1)))
        elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            found.append(_member(cls, node.name))
    return found


def _comment(lines: list[str], index: int) -> str:
    """The ``#:`` comment lines right above line ``index``, joined."""
    above = []
    while index > 0 and lines[index - 1].strip().startswith("#:"):
        index -= 1
        above.insert(0, lines[index].strip()[2:].strip())
    return " ".join(above)


def _member(cls: type, name: str) -> Attribute:
    member = inspect.getattr_static(cls, name)
    if isinstance(member, (property, functools.cached_property)):
        function = member.fget if isinstance(member, property) else member.func
        usage = name
    else:
        function = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
        usage = f"{name}({_parameters(function)})"
    returns = inspect.signature(function).return_annotation
    declared = "" if returns is inspect.Signature.empty else str(returns)
    return Attribute(name, usage, declared, _summary(function))


def _parameters(function: Callable, skip: int = 1) -> str:
    """Parameters as a template passes them: ``style='medium'``, ``**params``."""
    shown = []
    for parameter in list(inspect.signature(function).parameters.values())[skip:]:
        if parameter.kind is parameter.VAR_KEYWORD:
            shown.append(f"**{parameter.name}")
        elif parameter.default is not parameter.empty:
            shown.append(f"{parameter.name}={parameter.default!r}")
        else:
            shown.append(parameter.name)
    return ", ".join(shown)


def _summary(thing: object) -> str:
    """The first paragraph of a docstring, on one line."""
    doc = inspect.getdoc(thing) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())


# --- an example site: the globals, filters and page variables as the build makes them --------


def example_renderer() -> tuple[Renderer, list[Page]]:
    """A renderer and a page plan for a one-course catalog with a content page and search:
    every kind of page, with the globals and filters of a real build."""
    catalog = build_catalog(_example_snapshot(), PublishSettings(), now=_EXAMPLE_NOW)
    content = [ContentPage("om-oss", "Om oss", "", "<p>Hei</p>", 10, "content/om-oss.md")]
    urls = Urls("nb")
    pages = plan_pages(catalog, content, urls, per_page=24, search=True)
    theme = find_theme("default", Path(__file__).parent)  # the bundled theme
    renderer = Renderer(
        theme=theme,
        overrides=Path("templates"),
        locale=get_locale("nb"),
        urls=urls,
        site=SiteInfo("Kurs", "nb", menu=tuple(content), search=True),
        catalog=catalog,
        assets={},
    )
    return renderer, pages


_EXAMPLE_NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _example_snapshot() -> Snapshot:
    course = {
        "id": 1,
        "title": "Førstehjelp",
        "categories": [{"id": 11, "title": "Helse"}],
        "teaching_language": {"id": "no", "title": "Norwegian"},
        "form_of_teaching": {"id": 1, "title": "Klasserom"},
        "price": {"value": 4900, "currency": "NOK"},
        "email_booking": "kurs@example.test",
    }
    date = {
        "coursedate_id": 2,
        "course_id": 1,
        "start_at": "2026-12-01",
        "location": {"id": 3, "title": "Kurssenteret", "city": "Oslo"},
        "seats": {"allocated_capacity": {"num": 10}, "free": {"num": 4}},
    }
    return Snapshot(_EXAMPLE_NOW, "", {1: course}, {2: date}, {}, {}, {})


# --- the reference ------------------------------------------------------------------------------


def reference() -> str:
    """The generated part of docs/templates.md (Markdown, between the markers)."""
    renderer, pages = example_renderer()
    lines = [BEGIN, ""]
    lines += _globals_section(renderer)
    lines += _filters_section(renderer)
    lines += _pages_section(pages)
    lines += _objects_section()
    lines += _extra_section()
    lines.append(END)
    return "\n".join(lines)


def _globals_section(renderer: Renderer) -> list[str]:
    builtin = set(jinja2.defaults.DEFAULT_NAMESPACE)
    rows = []
    for name, value in sorted(renderer.env.globals.items()):
        if name in builtin:
            continue
        if callable(value) and not isinstance(value, type):
            rows.append((f"`{name}({_parameters(value, skip=0)})`", _summary(value)))
        else:
            cls = type(value)
            rows.append((f"`{name}`", f"{_link(cls)}: {_summary(cls)}"))
    lines = ["### Globals", "", "Every template sees these names.", ""]
    return [*lines, *_table(("Name", "What it is"), rows), ""]


def _filters_section(renderer: Renderer) -> list[str]:
    builtin = set(jinja2.filters.FILTERS)
    rows = []
    for name, function in sorted(renderer.env.filters.items()):
        if name in builtin:
            continue
        arguments = _parameters(function)
        usage = f"value|{name}({arguments})" if arguments else f"value|{name}"
        rows.append((f"`{usage}`", _summary(function)))
    lines = [
        "### Filters",
        "",
        "Besides [Jinja's own](https://jinja.palletsprojects.com/en/stable/templates/"
        "#list-of-builtin-filters):",
        "",
    ]
    return [*lines, *_table(("Filter", "What it does"), rows), ""]


def _pages_section(pages: Iterable[Page]) -> list[str]:
    variables: dict[str, dict[str, str]] = {}
    for page in pages:
        found = variables.setdefault(page.template, {})
        for name, value in page.context.items():
            found.setdefault(name, _describe(value))
    rows = []
    for template, found in sorted(variables.items()):
        shown = ", ".join(f"`{name}` ({kind})" for name, kind in found.items()) or "none"
        rows.append((f"`{template}`", shown))
    lines = [
        "### Pages",
        "",
        "Each page is drawn by one template and sees these variables besides the globals "
        "(and `page_path`, the page's own path in the site).",
        "",
    ]
    return [*lines, *_table(("Template", "Variables"), rows), ""]


def _describe(value: Any) -> str:
    """A page variable's type, from its value: ``Pagination of Course``."""
    if isinstance(value, Pagination):
        return f"{_link(Pagination)} of {_describe(value.items[0]) if value.items else '…'}"
    if isinstance(value, dict):
        first = next(iter(value.values()), None)
        return f"dict of {_describe(first)} by id"
    if isinstance(value, list):
        return f"list of {_describe(value[0]) if value else '…'}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_describe(item) for item in value) + ")"
    cls = type(value)
    return _link(cls) if cls in OBJECTS else cls.__name__


def _objects_section() -> list[str]:
    lines = [
        "### Objects",
        "",
        "Every attribute of every object a template sees. Types are as the code declares "
        "them; `X | None` may be None, `tuple[X, ...]` is a sequence to loop over.",
        "",
    ]
    for cls in OBJECTS:
        lines += [f"#### {cls.__name__}", "", _summary(cls), ""]
        rows = []
        if issubclass(cls, Mapping):
            rows += [
                ("`name`, `[name]`", "", 'The value of ``name`` ("" when there is none).'),
                ("`name in …`", "`bool`", "Whether there is a value of ``name``."),
                ("`get(name, default=None)`", "", "The value, else ``default``."),
                ("`items()`, `keys()`, `values()`", "", "Every name and value, by name."),
            ]
        for attribute in attributes(cls):
            declared = f"`{attribute.type}`" if attribute.type else ""
            rows.append((f"`{attribute.usage}`", declared, attribute.doc))
        lines += _table(("Attribute", "Type", "What it is"), rows)
        lines.append("")
    return lines


def _extra_section() -> list[str]:
    def names(fields: Iterable[str]) -> str:
        return ", ".join(f"`{name}`" for name in sorted(fields))

    return [
        "### What `extra` leaves out",
        "",
        f"- Course fields the model types: {names(COURSE_TYPED_FIELDS)}.",
        f"- Course-date fields the model types: {names(DATE_TYPED_FIELDS)}.",
        f"- Never published, on either: {names(PERSONAL_FIELDS)}.",
        "",
    ]


def _link(cls: type) -> str:
    return f"[{cls.__name__}](#{cls.__name__.lower()})"


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return lines


def updated(document: str) -> str:
    """``document`` with the part between the markers replaced by the current reference."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers are missing: {BEGIN!r} … {END!r}")
    return document[:start] + reference() + document[end + len(END) :]


# --- docs/configuration.md: the key table ---------------------------------------------------

REFERENCE_BEGIN = (
    "<!-- begin keys: made by `python -m tools.reference`; edit catalog_gen/config.py -->"
)
REFERENCE_END = "<!-- end keys -->"


def reference_table() -> str:
    """The key table of docs/configuration.md: every key with its default and its doc line,
    as declared above (so the table cannot miss a key, or show a stale default)."""
    lines = [REFERENCE_BEGIN, "", "| Key | Default | Meaning |", "|---|---|---|"]
    for name, default, doc in documented_keys():
        cells = (f"`{name}`", f"`{toml_value(default)}`", doc)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines += ["", REFERENCE_END]
    return "\n".join(lines)


def updated_reference(document: str) -> str:
    """``document`` with the part between the markers replaced by the current key table."""
    start, end = document.find(REFERENCE_BEGIN), document.find(REFERENCE_END)
    if start < 0 or end < start:
        raise ValueError(f"the markers are missing: {REFERENCE_BEGIN!r} … {REFERENCE_END!r}")
    return document[:start] + reference_table() + document[end + len(REFERENCE_END) :]


# --- both ------------------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"
GENERATED = {"configuration.md": updated_reference, "templates.md": updated}


def main(argv: list[str]) -> int:
    """Rewrite the generated parts of the docs (``--check``: only say which are stale)."""
    check = argv == ["--check"]
    if argv and not check:
        print("usage: python -m tools.reference [--check]", file=sys.stderr)
        return 2
    stale = []
    for name, update in GENERATED.items():
        path = DOCS / name
        text = path.read_text(encoding="utf-8")
        made = update(text)
        if made != text:
            stale.append(name)
            if not check:
                path.write_text(made, encoding="utf-8")
    if check and stale:
        print("out of date: " + ", ".join(f"docs/{n}" for n in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
