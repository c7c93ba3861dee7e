"""Rendering with themes and overrides, template errors, assets, content pages, and removals.

Every test builds a real site from a real snapshot (fetched once from the emulator on loopback)
and reads the result with an HTML5 parser.
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from hypothesis import given
from hypothesis import strategies as st

from catalog_gen.build import run_build
from catalog_gen.config import ApiAccess, PublishSettings, load_config
from catalog_gen.demo.emulator import Emulator
from catalog_gen.demo.sample import generate_catalog
from catalog_gen.errors import BuildError, ConfigError, TemplateError
from catalog_gen.site.buildstate import state_path
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.generate import SiteBuilder
from catalog_gen.site.i18n import get_locale
from catalog_gen.site.pages import PAGER_REACH, Pagination, Urls
from catalog_gen.site.publish import MARKER
from catalog_gen.site.render import CARD_TEMPLATE, Renderer, SiteInfo, find_theme, relative_url
from catalog_gen.source.fetch import run_fetch
from catalog_gen.source.store import SnapshotStore
from tests.conftest import API_KEY, NOW, TODAY
from tests.sitecheck import internal_targets, pages, parse, site_bytes, site_tree

THEME = Path(__file__).resolve().parent.parent / "themes" / "default"


@pytest.fixture(scope="module")
def fetched(tmp_path_factory) -> Path:
    """A snapshots folder with one fetch of the 48-course sample."""
    root = tmp_path_factory.mktemp("fetched")
    (root / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\n")
    with Emulator(generate_catalog(48, today=TODAY), api_key=API_KEY) as emulator:
        access = ApiAccess(base_url=emulator.base_url, api_key=API_KEY)
        run_fetch(load_config(root / "catalog.toml"), access, now=NOW)
    return root / "snapshots"


@pytest.fixture
def site_project(tmp_path, fetched):
    """A project folder with the snapshot in place; ``build()`` renders it offline."""
    shutil.copytree(fetched, tmp_path / "snapshots")

    class SiteProject:
        root = tmp_path
        site = tmp_path / "site"

        def write(self, name: str, text: str) -> Path:
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return path

        def build(self, toml: str = ""):
            self.write("catalog.toml", toml)
            return run_build(load_config(tmp_path / "catalog.toml"), None, now=NOW)

    return SiteProject()


def test_a_project_template_overrides_the_theme_file_by_file(site_project):
    site_project.write(
        "templates/course.html",
        '{% extends "!theme/course.html" %}\n'
        "{% block title %}Kurs: {{ course.title }}{% endblock %}\n",
    )
    site_project.build()
    course = parse(next(site_project.site.glob("kurs/*/index.html")))
    assert course.title.get_text().startswith("Kurs: ")
    assert course.select("table.dates")  # the rest of the theme's template still renders
    home = parse(site_project.site / "index.html")
    assert home.title.get_text() == "Kurskatalog"  # other templates untouched


def test_the_theme_key_picks_a_theme_folder(site_project):
    shutil.copytree(THEME, site_project.root / "themes" / "mine")
    base = site_project.root / "themes" / "mine" / "templates" / "base.html"
    base.write_text(base.read_text().replace("<body>", '<body class="mine">'))
    site_project.build('[site]\ntheme = "mine"\n')
    assert parse(site_project.site / "index.html").body["class"] == ["mine"]


def test_an_unknown_theme_is_a_clear_error(site_project):
    with pytest.raises(BuildError, match="theme 'nope' not found"):
        site_project.build('[site]\ntheme = "nope"\n')
    assert not site_project.site.exists()


@pytest.mark.slow
def test_static_files_get_content_hashed_names(site_project):
    site_project.build()
    static = site_project.site / "static"
    (css,) = static.glob("style.*.css")
    assert css.read_bytes() == (THEME / "static" / "style.css").read_bytes()
    assert (static / "favicon.svg").exists() is False and list(static.glob("favicon.*.svg"))
    first_name = css.name

    site_project.write("static/style.css", "body { color: black }\n")  # the project's wins
    report = site_project.build()
    (css,) = static.glob("style.*.css")
    assert css.name != first_name and css.read_text() == "body { color: black }\n"
    assert report.removed >= 1  # the old stylesheet is gone
    assert not list(static.glob(first_name))
    for page in pages(site_project.site):
        links = [t for _, t, _ in internal_targets(site_project.site, page) if "style." in t]
        assert links == [f"static/{css.name}"], page


def test_a_template_error_names_file_and_line_and_keeps_the_old_site(site_project):
    site_project.build()
    before = site_tree(site_project.site)
    site_project.write(
        "templates/course.html",
        '{% extends "!theme/course.html" %}\n{% block title %}\n{{ course.no_such_field }}\n'
        "{% endblock %}\n",
    )
    with pytest.raises(TemplateError, match=r"templates/course\.html:3: .*no_such_field"):
        site_project.build()
    assert site_tree(site_project.site) == before
    assert [p.name for p in site_project.root.iterdir() if ".staging-" in p.name] == []


def test_a_template_syntax_error_names_file_and_line(site_project):
    site_project.write("templates/home.html", "{% extends 'base.html' %}\n\n{% block main %}\n")
    with pytest.raises(TemplateError, match=r"templates/home\.html:\d+: "):
        site_project.build()
    assert not site_project.site.exists()


def test_content_pages_from_markdown_with_front_matter(site_project):
    site_project.write(
        "content/om-oss.md",
        "---\ntitle: Om oss & kursene\ndescription: Hvem vi er.\nmenu: 1\n---\n"
        "# Velkommen\n\nVi holder **kurs** i hele landet.\n",
    )
    site_project.build()
    page = parse(site_project.site / "om-oss" / "index.html")
    assert page.h1.get_text() == "Om oss & kursene"
    assert page.find("strong").get_text() == "kurs"
    assert page.find("meta", attrs={"name": "description"})["content"] == "Hvem vi er."
    menu = [a.get_text() for a in parse(site_project.site / "index.html").select("nav .menu a")]
    assert "Om oss & kursene" in menu


def test_bad_front_matter_names_the_file(site_project):
    site_project.write("content/feil.md", "---\ntitle: [uavsluttet\n---\nTekst\n")
    with pytest.raises(BuildError, match=r"content/feil\.md"):
        site_project.build()


def test_a_content_page_cannot_take_a_catalog_address(site_project):
    site_project.write("content/kurs.md", "---\ntitle: Kurs\n---\nTekst\n")
    with pytest.raises(BuildError, match="kurs/"):
        site_project.build()


def test_lists_paginate_by_site_per_page(site_project):
    site_project.build("[site]\nper_page = 10\n")
    site = site_project.site
    homes = [site / "index.html", *sorted(site.glob("side/*/index.html"))]
    assert len(homes) >= 4
    courses = set()
    for home in homes:
        links = {a["href"].split("/")[-2] for a in parse(home).select("main h2 a, main h3 a")}
        assert 0 < len(links) <= 10
        courses |= links
    assert len(courses) == len(list(site.glob("kurs/*/index.html")))


@pytest.mark.slow
def test_a_removed_course_loses_its_page_and_nothing_else_changes_needlessly(project):
    config = project.config
    first = run_build(config, project.access(), now=NOW)
    site = config.output_path
    before = site_tree(site)
    gone = next(p for p in site.glob("kurs/*/index.html"))
    course_id = int(gone.parent.name.rsplit("-", 1)[1])
    project.emulator.catalog.remove_course(course_id)

    second = run_build(config, project.access(), now=NOW)
    after = site_tree(site)
    assert not gone.exists()
    assert f"kurs/{gone.parent.name}/index.html" not in after
    assert second.removed >= 1 and second.written >= 1
    unchanged = [n for n in after if n in before and after[n] == before[n] and n != MARKER]
    assert len(unchanged) == second.unchanged  # same bytes and same mtime: not rewritten
    assert second.written + second.unchanged == second.files < first.files


@pytest.mark.parametrize("output_dir", [".", "..", "../elsewhere", "/tmp/site"])
def test_output_dir_must_be_a_folder_inside_the_project(site_project, output_dir):
    with pytest.raises(ConfigError, match="output_dir' must be a folder inside the project"):
        site_project.build(f'[site]\noutput_dir = "{output_dir}"\n')


def test_a_folder_not_made_by_catalog_gen_is_not_wiped(site_project):
    site_project.write("site/precious.txt", "do not delete")
    with pytest.raises(BuildError, match="not made by catalog-gen"):
        site_project.build()
    assert (site_project.site / "precious.txt").read_text() == "do not delete"


def test_same_snapshot_same_bytes(site_project, tmp_path_factory, fetched):
    site_project.build()
    other = tmp_path_factory.mktemp("again")
    shutil.copytree(fetched, other / "snapshots")
    (other / "catalog.toml").write_text("")
    run_build(load_config(other / "catalog.toml"), None, now=NOW)
    assert site_bytes(other / "site") == site_bytes(site_project.site)


@pytest.mark.parametrize(
    ("source", "target", "link"),
    [
        ("index.html", "kurs/excel-1/index.html", "kurs/excel-1/"),
        ("kurs/excel-1/index.html", "index.html", "../../"),
        ("kurs/excel-1/index.html", "kurs/word-2/index.html", "../word-2/"),
        ("kurs/excel-1/index.html", "kurs/excel-1/index.html", "./"),
        ("side/2/index.html", "static/style.abc.css", "../../static/style.abc.css"),
        ("404.html", "kurs/excel-1/index.html", "/kurs/excel-1/"),
        ("404.html", "index.html", "/"),
    ],
)
def test_relative_urls(source, target, link):
    assert relative_url(source, target) == link


def test_config_replace_keeps_render_inputs_explicit(site_project):
    """The page plan reads only the config it is given (no hidden globals)."""
    site_project.build()
    config = load_config(site_project.root / "catalog.toml")
    english = replace(config, site=replace(config.site, language="en", output_dir="site-en"))
    run_build(english, None, now=NOW)
    assert parse(site_project.root / "site-en" / "index.html").html["lang"] == "en"
    assert parse(site_project.site / "index.html").html["lang"] == "nb"


@given(st.integers(1, 400).flatmap(lambda count: st.tuples(st.just(count), st.integers(1, count))))
def test_a_pager_offers_the_ends_and_the_neighbourhood_with_gaps_marked(case):
    count, number = case
    part = Pagination((), number, count, count, lambda n: f"p/{n}/index.html")
    shown = part.nearby
    numbers = [entry[0] for entry in shown if entry is not None]
    wanted = {1, count} | set(range(number - PAGER_REACH, number + PAGER_REACH + 1))
    wanted &= set(range(1, count + 1))
    wanted |= {n for n in range(2, count) if {n - 1, n + 1} <= wanted}  # no gap of one page
    assert numbers == sorted(wanted)
    assert all(entry[1] == f"p/{entry[0]}/index.html" for entry in shown if entry is not None)
    assert shown[0] is not None and shown[-1] is not None
    for before, after in itertools.pairwise(shown):
        if before is None or after is None:
            assert before is not after  # never two gaps in a row
        else:  # neighbours unless a gap stands between them
            assert after[0] == before[0] + 1
    for before, gap, after in zip(shown, shown[1:], shown[2:], strict=False):
        if gap is None:  # a gap only where two pages or more are left out
            assert after[0] > before[0] + 2
    assert len(shown) <= 2 * PAGER_REACH + 5


def test_a_long_list_links_its_neighbourhood_and_next_reaches_every_page(site_project):
    site_project.build("[site]\nper_page = 2\n")
    site = site_project.site
    homes = [site / "index.html", *site.glob("side/*/index.html")]
    assert len(homes) >= 20
    tenth = parse(site / "side" / "10" / "index.html").select_one("nav.pagination")
    links = [a.get_text() for a in tenth.select("a")]
    last = str(len(homes))
    assert links == ["Forrige side", "1", "8", "9", "10", "11", "12", last, "Neste side"]
    assert len(tenth.select("li.gap")) == 2
    assert tenth.select_one("a[aria-current=page]").get_text() == "10"
    seen, page = [], site / "index.html"
    while page is not None:  # every page is one "next" from the one before it
        seen.append(page.resolve())
        following = parse(page).select_one("nav.pagination a[rel=next]")
        page = page.parent / following["href"] / "index.html" if following else None
    assert sorted(seen) == sorted(p.resolve() for p in homes)


#: A card that links to categories (some list pages share their folder) and a static file: what
#: it reads of the page must be read again for each page it is reused on.
CARD = """{% from "partials/seats.html" import price %}
<li class="course-card"[PAGE]>
  <h{{ heading_level }}><a href="{{ url(urls.course(course)) }}">{{ course.title }}</a></h{{
    heading_level }}>
  {% for c in course.categories %}<a href="{{ url(urls.category(c)) }}">{{ c.title }}</a>
  {% endfor %}
  <img src="{{ asset('style.css') }}" alt=""> {{ price(course.price) }}
</li>
"""


#: A card that reads nothing of the page itself but draws another course's card, which does:
#: reusing the outer card must go by what the inner one read, even where that was reused too.
NESTED = """{% if heading_level == 2 %}<li class="course-card">{{ course.title }}
{% for other in catalog.courses[:1] %}{{ course_card(other, 3) }}{% endfor %}</li>
{% else %}<a href="{{ url(urls.course(course)) }}">{{ course.title }}</a>{% endif %}
"""


@pytest.mark.parametrize(
    ("card", "drawn_for"),
    [
        (CARD.replace("[PAGE]", ""), "few pages"),
        (CARD.replace("[PAGE]", ' data-page="{{ canonical_url() }}"'), "every page"),
        (NESTED, None),
    ],
    ids=["links", "links-and-page-address", "a-card-in-a-card"],
)
def test_a_course_card_is_drawn_once_and_reads_as_if_drawn_for_each_page(
    site_project, card, drawn_for
):
    site_project.write("templates/partials/course_card.html", card)
    toml = '[site]\nper_page = 5\nbase_url = "https://kurs.example/"\n'
    config = load_config(site_project.write("catalog.toml", toml))
    snapshot = SnapshotStore(config.snapshot_path).latest()

    def builder() -> SiteBuilder:
        made = SiteBuilder(config, cache=None)
        made.prepare(snapshot, now=NOW)
        return made

    together = builder()
    lists = [p for p in together.pages if p.template.removesuffix(".html") in LIST_TEMPLATES]
    assert {p.template for p in lists} == {f"{name}.html" for name in LIST_TEMPLATES}
    drawn: list[str] = []
    get_template = together.renderer.env.get_template

    def counting(name, *args, **kwargs):
        drawn.append(name)
        return get_template(name, *args, **kwargs)

    together.renderer.env.get_template = counting
    pages = {page.path: together.page(page.path) for page in lists}
    cards = sum(len(page.context["pagination"].items) for page in lists)
    if drawn_for == "every page":  # it prints the page's own address
        assert drawn.count(CARD_TEMPLATE) == cards
    elif drawn_for == "few pages":  # most were drawn for another page
        assert 0 < drawn.count(CARD_TEMPLATE) < cards / 3
    alone = builder()
    for page in lists:  # as a renderer draws them that has drawn no card yet
        alone.renderer._cards.clear()
        assert alone.page(page.path) == pages[page.path], page.path
    if drawn_for is not None:
        shown = BeautifulSoup(pages["index.html"], "html5lib").select_one("li.course-card")
        assert shown.select_one("img")["src"].startswith("static/style.")
        address = "https://kurs.example/" if drawn_for == "every page" else None
        assert shown.get("data-page") == address


LIST_TEMPLATES = ("home", "category", "venue", "city", "facet")


@pytest.mark.parametrize(
    ("partial", "mark", "lists"),
    [
        ("pagination.html", "<nav", ("index.html", "kalender/index.html")),
        ("course_card.html", "<li", ("index.html", "kategori/")),  # drawn by course_card()
    ],
)
def test_after_a_template_edit_only_pages_using_it_are_rendered_and_bytes_match_a_full_build(
    site_project, monkeypatch, partial, mark, lists
):
    site_project.build()
    source = (THEME / "templates/partials" / partial).read_text()
    assert mark in source
    site_project.write(f"templates/partials/{partial}", source.replace(mark, f"{mark} data-x", 1))
    rendered: list[str] = []
    original = Renderer.render
    monkeypatch.setattr(
        Renderer, "render", lambda self, page: rendered.append(page.path) or original(self, page)
    )
    config = load_config(site_project.root / "catalog.toml")
    report = run_build(config, None, now=NOW)
    assert all(any(p.startswith(prefix) for p in rendered) for prefix in lists)
    assert not [p for p in rendered if p.startswith("kurs/") or p == "404.html"]
    assert report.written >= 1 and report.rendered == len(rendered)
    selective = site_bytes(site_project.site)

    shutil.rmtree(site_project.site)  # a clean build of the same state gives the same bytes
    state_path(site_project.site).unlink()
    site_project.build()
    assert site_bytes(site_project.site) == selective


def test_template_dependencies_follow_extends_include_import_and_the_theme_prefix(site_project):
    site_project.write("templates/course.html", '{% extends "!theme/course.html" %}\n')
    site_project.build()
    config = load_config(site_project.root / "catalog.toml")
    theme = find_theme("default", site_project.root)
    renderer = Renderer(
        theme=theme,
        overrides=site_project.root / config.site.templates_dir,
        locale=get_locale("nb"),
        urls=Urls("nb"),
        site=SiteInfo("x", "nb"),
        catalog=None,
        assets={},
    )
    uses = renderer.dependencies("course.html")
    assert {"course.html", "base.html", "partials/seats.html"} <= uses
    assert "home.html" not in uses
    assert "partials/seats.html" not in renderer.dependencies("404.html")
    # course_card() draws a template of its own: the list pages that call it use it.
    assert CARD_TEMPLATE in renderer.dependencies("home.html")
    assert CARD_TEMPLATE not in uses
    # What page digests rest on: which globals each page's templates read (None = unknown,
    # which would make every page depend on the whole catalog).
    globals_of = {name: renderer.globals_used(name) for name in THEME_PAGES}
    assert None not in globals_of.values()
    assert {name for name, used in globals_of.items() if "catalog" in used} == {
        "categories.html",
        "venues.html",
    }
    assert "filter_groups" in globals_of["home.html"] and "url" in globals_of["course.html"]
    assert "filter_groups" not in globals_of["course.html"]


def meta_description(soup) -> str:
    (described,) = soup.find_all("meta", attrs={"name": "description"})  # exactly one
    assert soup.find("meta", property="og:description")["content"] == described["content"]
    return described["content"]


@pytest.mark.slow
def test_without_site_description_every_page_is_described_by_what_it_shows(site_project):
    site_project.write("content/om-oss.md", "---\ntitle: Om oss\n---\nVi holder kurs.\n")
    site_project.build()
    site = site_project.site
    for page in pages(site):
        assert meta_description(parse(page)).strip(), page
    tail = "hos Kurskatalog, med datoer, steder og ledige plasser."
    home = parse(site / "index.html")
    count = home.select_one("main p.intro").get_text()  # "48 kurs"
    assert meta_description(home) == f"Alle kurs: {count} {tail}"
    for kind in ("by", "kategori", "sted", "maned"):
        listing = parse(sorted(site.glob(f"{kind}/*/index.html"))[0])
        heading, count = listing.h1.get_text(), listing.select_one("main p.intro").get_text()
        assert meta_description(listing) == f"{heading}: {count} {tail}", kind
    calendar = parse(site / "kalender" / "index.html")
    dates = calendar.select_one("main p.intro").get_text()
    assert meta_description(calendar) == (
        f"Kurskalender: {dates} hos Kurskatalog, med steder og ledige plasser."
    )
    assert meta_description(parse(site / "om-oss" / "index.html")) == (
        "Kurskatalog: kurs med datoer, steder og ledige plasser."
    )
    for page in site.glob("kurs/*/index.html"):  # a course with a lead is described by it
        soup = parse(page)
        assert meta_description(soup) == soup.select_one("article .lead").get_text()


def test_site_description_describes_the_pages_without_their_own(site_project):
    site_project.write(
        "content/om-oss.md", "---\ntitle: Om oss\ndescription: Hvem vi er.\n---\nx\n"
    )
    site_project.build('[site]\ndescription = "Kurs for alle & enhver."\n')
    site = site_project.site
    for name in ("index.html", "kalender/index.html", "kategori/index.html", "404.html"):
        assert meta_description(parse(site / name)) == "Kurs for alle & enhver.", name
    assert meta_description(parse(site / "om-oss" / "index.html")) == "Hvem vi er."
    course = parse(next(site.glob("kurs/*/index.html")))
    assert meta_description(course) == course.select_one("article .lead").get_text()


@pytest.mark.parametrize(
    ("language", "going_ahead", "undated"),
    [
        ("nb", "Kurs X hos Katalog. Neste kurs: {date}, {city}.", "Kurs X hos Katalog. Ingen "
         "planlagte datoer ennå."),
        ("en", "Kurs X at Katalog. Next date: {date}, {city}.", "Kurs X at Katalog. No dates "
         "scheduled yet."),
    ],
)  # fmt: skip
def test_a_course_without_lead_is_described_by_its_title_and_next_date_going_ahead(
    fetched, language, going_ahead, undated
):
    snapshot = SnapshotStore(fetched).latest()
    catalog = build_catalog(snapshot, PublishSettings(), now=NOW)
    # A course whose first two dates are in different cities, so the sentence shows which
    # one it names once the first is canceled.
    course = next(
        c for c in catalog.courses if len(c.dates) >= 2 and "" != c.dates[0].city != c.dates[1].city
    )
    canceled = replace(course.dates[0], status="canceled")
    course = replace(course, title="Kurs X", lead="", dates=(canceled, *course.dates[1:]))
    locale = get_locale(language)
    renderer = Renderer(
        theme=find_theme("default", fetched),
        overrides=fetched / "templates",
        locale=locale,
        urls=Urls(language),
        site=SiteInfo("Katalog", language),
        catalog=catalog,
        assets={},
    )
    describe = renderer.env.globals["describe_course"]
    upcoming = course.dates[1]
    assert describe(course) == going_ahead.format(
        date=locale.date(upcoming.start_date), city=upcoming.city
    )
    assert describe(replace(course, dates=(canceled,))) == undated
    assert describe(replace(course, dates=())) == undated


THEME_PAGES = [
    "home.html", "course.html", "category.html", "categories.html", "venue.html",
    "venues.html", "city.html", "facet.html", "calendar.html", "content.html", "search.html",
    "404.html",
]  # fmt: skip
