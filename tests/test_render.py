"""Rendering with themes and overrides, template errors, assets, content pages, and removals.

Every test builds a real site from a real snapshot (fetched once from the emulator on loopback)
and reads the result with an HTML5 parser.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from catalog_gen.build import run_build
from catalog_gen.config import ApiAccess, PublishSettings, load_config
from catalog_gen.demo.emulator import Emulator
from catalog_gen.demo.sample import generate_catalog
from catalog_gen.errors import BuildError, ConfigError, TemplateError
from catalog_gen.site.buildstate import state_path
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.i18n import get_locale
from catalog_gen.site.pages import Urls
from catalog_gen.site.publish import MARKER
from catalog_gen.site.render import Renderer, SiteInfo, find_theme, relative_url
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


def test_after_a_template_edit_only_pages_using_it_are_rendered_and_bytes_match_a_full_build(
    site_project, monkeypatch
):
    site_project.build()
    pager = (THEME / "templates/partials/pagination.html").read_text()
    site_project.write("templates/partials/pagination.html", pager.replace("<nav", "<nav data-x"))
    rendered: list[str] = []
    original = Renderer.render
    monkeypatch.setattr(
        Renderer, "render", lambda self, page: rendered.append(page.path) or original(self, page)
    )
    config = load_config(site_project.root / "catalog.toml")
    report = run_build(config, None, now=NOW)
    assert "index.html" in rendered and "kalender/index.html" in rendered  # lists use the pager
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
