"""The repository root is a working catalog project: the demo builds it, override and page too.

The root's catalog.toml, templates/ and content/ are copied into a temporary folder and built
there with the real command, as ``catalog-gen build --demo`` builds them in a clone (the suite
never writes into the checkout).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
#: What the root project is made of (the README shows the same tree).
PROJECT_FILES = ("catalog.toml", "templates/course.html", "content/om-oss.md")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    project = tmp_path_factory.mktemp("root-project")
    shutil.copy(ROOT / "catalog.toml", project)
    for folder in ("templates", "content"):
        shutil.copytree(ROOT / folder, project / folder)
    result = run_cli(project, "build", "--demo", "-q", "--now", "2026-11-23T04:00:00+01:00")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no warning, no note: every setting suits the demo
    return project


def page(site: Path, path: str) -> BeautifulSoup:
    return BeautifulSoup((site / path).read_bytes(), "html5lib")


def test_the_root_is_laid_out_as_the_readme_shows():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tree = readme.split("The repository root is itself a catalog project", 1)[1].split("```")[1]
    for name in PROJECT_FILES:
        assert (ROOT / name).is_file()
        assert re.search(rf"^{re.escape(name)}\s", tree, re.MULTILINE), name
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "/site/" in ignored and "/snapshots/" in ignored  # the demo's output stays out of git


@pytest.mark.slow
def test_the_demo_uses_the_root_settings(built):
    home = page(built / "site", "index.html")
    assert home.title.string == "Kursleverandøren"
    description = home.find("meta", attrs={"name": "description"})["content"]
    assert description.startswith("Kurs i HMS") and description.endswith(".")
    assert home.find("link", rel="canonical")["href"] == "https://kurs.example.com/"
    assert (built / "snapshots" / "demo").is_dir() and not list(built.glob("snapshots/0*"))


def test_the_example_override_changes_every_course_page_and_keeps_the_theme(built):
    theme_course = (ROOT / "themes" / "default" / "templates" / "course.html").read_text()
    assert "course-contact" not in theme_course  # so the box below can only come from templates/
    courses = sorted((built / "site" / "kurs").glob("*/index.html"))
    assert len(courses) > 10
    for path in courses:
        soup = BeautifulSoup(path.read_bytes(), "html5lib")
        box = soup.select_one("main > section.course-contact")
        title = soup.select_one("article.course h1").get_text()
        assert box is not None and box.h2.get_text() == "Spørsmål om kurset?", path
        assert box.a["href"].startswith("mailto:kurs@kursleverandoren.example?subject=")
        assert soup.select_one("article.course") is box.find_previous_sibling("article")
        assert title  # the theme's page is all still there, above the box
    one = BeautifulSoup(courses[0].read_bytes(), "html5lib")
    assert one.select("table.dates tr.date-row")  # the theme's dates table, via super()


def test_the_content_page_is_published_and_in_the_menu(built):
    about = page(built / "site", "om-oss/index.html")
    assert about.h1.get_text() == "Om oss"
    assert "content/om-oss.md" in about.main.get_text()
    # The page's own description, once (not the site's beside it), and the same for sharing.
    descriptions = [m["content"] for m in about.find_all("meta", attrs={"name": "description"})]
    assert descriptions == ["Hvem Kursleverandøren er, og hvordan kursene våre er bygd opp."]
    assert about.find("meta", property="og:description")["content"] == descriptions[0]
    home = page(built / "site", "index.html")
    menu = [a.get_text() for a in home.select("header nav a")]
    assert "Om oss" in menu
