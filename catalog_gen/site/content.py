"""Content pages: the provider's own Markdown files (about us, terms, contact) in ``content/``.

Each ``content/<name>.md`` may start with YAML front matter between ``---`` lines::

    ---
    title: Om oss
    description: Hvem vi er og hvordan kursene våre er bygd opp.
    menu: 10          # optional: show in the main menu, ordered by this number
    slug: om          # optional: the page address (default: the file name, slugified)
    ---
    Markdown text ...

These files are written by the site's owner, so their HTML is trusted (unlike course texts from
the API, which are sanitised where they are read, drafts.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import markdown
import yaml

from catalog_gen.errors import BuildError
from catalog_gen.site.slugs import slugify

MARKDOWN_EXTENSIONS = ("extra", "sane_lists", "smarty")


@dataclass(frozen=True)
class ContentPage:
    """A page of the provider's own, from ``content/<name>.md``."""

    #: Its address segment (front matter ``slug``, else the file name).
    slug: str
    #: Its title (front matter ``title``).
    title: str
    #: Its meta description (front matter ``description``; "" when none).
    description: str
    #: The Markdown as HTML (the provider's own file: trusted; print it with ``|safe``).
    html: str
    #: Its place in the main menu (front matter ``menu``; None: not in the menu).
    menu: int | None
    #: The file it was read from, for messages.
    source: str


def load_content(folder: Path) -> list[ContentPage]:
    """Every ``*.md`` in ``folder`` (none if it does not exist), ordered by slug."""
    if not folder.is_dir():
        return []
    pages = [read_page(path) for path in sorted(folder.glob("*.md"))]
    seen: dict[str, str] = {}
    for page in pages:
        if page.slug in seen:
            raise BuildError(f"{page.source} and {seen[page.slug]} both want '{page.slug}/'")
        seen[page.slug] = page.source
    return sorted(pages, key=lambda p: p.slug)


def main_menu(pages: Iterable[ContentPage]) -> tuple[ContentPage, ...]:
    """The pages in the main menu, ordered by their ``menu`` number (ties: as given)."""
    placed = [(page.menu, page) for page in pages if page.menu is not None]
    return tuple(page for _, page in sorted(placed, key=lambda entry: entry[0]))


def read_page(path: Path) -> ContentPage:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"{path}: cannot read ({exc})") from None
    meta, body = split_front_matter(text, path)
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise BuildError(f"{path}: front matter needs a 'title'")
    menu = meta.get("menu")
    if menu is not None and (not isinstance(menu, int) or isinstance(menu, bool)):
        raise BuildError(f"{path}: 'menu' must be a whole number, not {menu!r}")
    slug = slugify(str(meta.get("slug") or path.stem))
    if not slug:
        raise BuildError(f"{path}: cannot make a page address from its name; set 'slug'")
    html = markdown.markdown(body, extensions=list(MARKDOWN_EXTENSIONS), output_format="html")
    return ContentPage(
        slug=slug,
        title=title.strip(),
        description=str(meta.get("description") or "").strip(),
        html=html,
        menu=menu,
        source=str(path),
    )


def split_front_matter(text: str, path: Path) -> tuple[Mapping[object, object], str]:
    """YAML front matter between leading ``---`` lines, and the Markdown after it."""
    text = text.lstrip("\ufeff")
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines(keepends=True)
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            try:
                meta = yaml.safe_load("".join(lines[1:index])) or {}
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f"{path}:{mark.line + 2}" if mark else str(path)
                raise BuildError(f"{where}: front matter is not valid YAML") from None
            if not isinstance(meta, dict):
                raise BuildError(f"{path}: front matter must be 'key: value' lines")
            return meta, "".join(lines[index + 1 :])
    raise BuildError(f"{path}: front matter starts with '---' but never ends")
