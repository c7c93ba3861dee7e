"""The README is part of the interface: it must name every command, option and config key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click
import pytest

from catalog_gen.cli import cli
from catalog_gen.config import documented_keys, toml_value
from catalog_gen.site.reference import BEGIN, END, OBJECTS, attributes, updated
from catalog_gen.source.store import SnapshotStore
from tests.conftest import run_cli
from tests.sitecheck import parse
from tests.test_site import PINNED

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _options(command: click.Command) -> list[str]:
    return [
        name
        for param in command.params
        if isinstance(param, click.Option)
        for name in param.opts
        if name.startswith("--") and name != "--help"
    ]


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_is_documented(name):
    assert f"catalog-gen {name}" in README


@pytest.mark.parametrize(
    ("command", "option"),
    [(name, opt) for name, cmd in sorted(cli.commands.items()) for opt in _options(cmd)]
    + [("(global)", opt) for opt in _options(cli)],
)
def test_every_option_is_documented(command, option):
    assert f"`{option}" in README or f"/{option}`" in README, f"{command} {option}"


@pytest.mark.parametrize(("key", "default"), [(k, d) for k, d, _ in documented_keys()])
def test_every_config_key_is_documented_with_its_default(key, default):
    row = re.search(rf"^\| `{re.escape(key)}` \| `([^`]*)` \|", README, re.MULTILINE)
    assert row, f"{key} has no row in the README's configuration table"
    shown = row.group(1)
    assert shown == toml_value(default)


def test_ci_runs_the_readme_test_command():
    quick_start = README.split("## Quick start", 1)[1]
    test_line = next(line for line in quick_start.splitlines() if "pytest" in line)
    command = test_line.split("#", 1)[0].strip()
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


# --- docs/templates.md: the template reference ---------------------------------------------

TEMPLATES_DOC = ROOT / "docs" / "templates.md"


def test_the_template_reference_is_generated_from_the_code_and_up_to_date():
    text = TEMPLATES_DOC.read_text(encoding="utf-8")
    assert updated(text) == text, "run: python -m catalog_gen.site.reference docs/templates.md"
    assert "docs/templates.md" in README


def test_the_template_reference_says_what_everything_is():
    """Every global, filter and attribute a template sees has a description (a field's is
    its #: comment), and every field of every object is listed."""
    text = TEMPLATES_DOC.read_text(encoding="utf-8")
    reference = text[text.index(BEGIN) : text.index(END)]
    rows = [line for line in reference.splitlines() if line.startswith("| `")]
    assert len(rows) > 150
    for row in rows:
        assert row.rstrip(" |").rsplit("|", 1)[1].strip(), f"no description: {row}"
    for cls in OBJECTS:
        section = reference.split(f"#### {cls.__name__}\n", 1)[1].split("\n#### ", 1)[0]
        names = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
        for name in names:
            assert name.startswith("_") or f"| `{name}` |" in section, f"{cls.__name__}.{name}"
        assert [a for a in attributes(cls) if not a.doc] == [], cls.__name__


def test_the_custom_property_example_builds_with_the_real_cli(tmp_path):
    """The override in docs/templates.md, built with ``catalog-gen build --demo``: each
    course's and date's custom properties show on its own page, and nowhere else."""
    text = TEMPLATES_DOC.read_text(encoding="utf-8")
    example = text.split("<!-- example: templates/course.html -->\n```jinja\n", 1)[1]
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "course.html").write_text(example.split("```", 1)[0])
    result = run_cli(tmp_path, "build", "--demo", "--now", PINNED)
    assert result.returncode == 0, result.stderr
    store = SnapshotStore(tmp_path / "snapshots" / "demo")
    snapshot = store.load(store.latest_name())
    notes = rooms = 0
    for page in (tmp_path / "site").glob("kurs/*/index.html"):
        soup = parse(page)
        course = snapshot.courses[int(page.parent.name.rsplit("-", 1)[1])]
        note = (course["custom_properties"] or {}).get("special_note")
        shown = [aside.get_text(strip=True) for aside in soup.select("aside.note")]
        assert shown == ([note] if note else []), page
        notes += bool(note)
        for row in soup.select("table.dates tbody tr"):
            did = row["id"].removeprefix("date-")
            properties = snapshot.coursedates[int(did)]["custom_properties"] or {}
            line = soup.select_one(f"p.date-note[data-date='{did}']")
            if properties.get("rom"):
                expected = f"{properties['rom']} ({properties['partner']})"
                assert line.get_text(" ", strip=True).endswith(expected), page
                rooms += 1
            else:
                assert line is None, page
    assert notes >= 2 and rooms >= 1


def test_every_kind_of_odd_data_is_documented():
    import catalog_gen.build  # noqa: F401  (its modules declare the kinds they report)
    from catalog_gen.anomalies import KINDS

    missing = [k for k in KINDS if not k.startswith("test.") and f"`{k}`" not in README]
    assert KINDS and missing == []
