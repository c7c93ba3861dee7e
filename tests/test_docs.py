"""The docs are part of the interface: they name every command, option, config key, report
field, exit code and kind of odd data, and everything they name exists.

Where the docs live: the README is a front page (at most 200 lines) linking the guides in
docs/; docs/cli.md is the command reference, docs/configuration.md holds the key table
(generated from config.py), docs/odd-data.md every kind of odd data, docs/templates.md
everything a template sees (generated from the model). Each check goes both ways: the code
against the docs, and the docs' tables and code spans against the code.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from catalog_gen import errors, scaffold
from catalog_gen.build import BuildReport
from catalog_gen.cli import BROKEN_PIPE, INTERRUPTED, cli
from catalog_gen.config import (
    API_KEY_ENV,
    API_KEY_FILE_ENV,
    API_URL_ENV,
    NOW_ENV,
    Config,
    documented_keys,
    toml_value,
)
from catalog_gen.source.fetch import FetchReport
from catalog_gen.source.store import SnapshotStore
from tests.conftest import env_without_key, run_cli
from tests.sitecheck import parse
from tests.test_site import PINNED
from tools.reference import BEGIN, END, OBJECTS, attributes, updated, updated_reference

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
#: Every page of documentation, as a reader finds it.
PAGES = sorted([README, ROOT / "SECURITY.md", ROOT / "CHANGELOG.md", *DOCS.glob("*.md")])
#: The pages that describe catalog-gen as it is (the changelog may name what no longer exists).
CURRENT = [page for page in PAGES if page.name != "CHANGELOG.md"]


def read(page: Path) -> str:
    return page.read_text(encoding="utf-8")


# --- reading Markdown ----------------------------------------------------------------------

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: An inline code span: `x`, or ``x`` (which may hold a backtick).
SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def spans(text: str) -> list[str]:
    """The inline code spans of ``text``, outside fenced blocks."""
    return [match.group(2).strip() for match in SPAN.finditer(prose(text))]


def prose(text: str) -> str:
    """The text without its fenced code blocks."""
    return FENCE.sub("", text)


def code(text: str) -> list[str]:
    """Every inline code span, and every line of every fenced block."""
    found = spans(text)
    for block in FENCE.findall(text):
        found += block.splitlines()
    return found


def section(text: str, heading: str) -> str:
    """The part of ``text`` under ``heading`` (e.g. ``## Exit codes``), up to the next
    heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    higher = re.compile(rf"#{{1,{len(level)}}} ")
    lines = text.splitlines()
    in_code = [False] * len(lines)  # a "# comment" in a shell block is not a heading
    fenced = False
    for i, line in enumerate(lines):
        fenced ^= line.startswith("```")
        in_code[i] = fenced or line.startswith("```")
    start = next(i for i, line in enumerate(lines) if line == heading and not in_code[i]) + 1
    end = next(
        (i for i in range(start, len(lines)) if higher.match(lines[i]) and not in_code[i]),
        len(lines),
    )
    return "\n".join(lines[start:end])


def first_cells(text: str) -> list[str]:
    """The first cell of every table row (header and rule rows left out)."""
    cells = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|[-|: ]+\|$", line):
            cells.append(line.split("|")[1].strip())
    return cells[1:] if cells else []  # the first is the header


def spans_before_parenthesis(cell: str) -> list[str]:
    """The code spans a cell names, before any explanation in brackets."""
    return spans(cell.split(" (", 1)[0])


# --- commands and options ------------------------------------------------------------------

CLI_DOC = DOCS / "cli.md"
HELP = {"-h", "--help"}


def option_names(command: click.Command) -> set[str]:
    """Every spelling of every option of ``command``, --help left out."""
    names = {n for p in command.params if isinstance(p, click.Option) for n in p.opts}
    names |= {n for p in command.params if isinstance(p, click.Option) for n in p.secondary_opts}
    return names - HELP


def takes_value(command: click.Command, name: str) -> bool:
    for param in command.params:
        if isinstance(param, click.Option) and name in param.opts:
            return not param.is_flag and not param.count
    return False


def documented_options(table_text: str) -> set[str]:
    """The options an option table documents: ``-q``, ``--quiet`` from "`-q`, `--quiet`"."""
    names = set()
    for cell in first_cells(table_text):
        for span in spans(cell):
            if span.startswith("-"):
                names.add(span.split()[0])
    return names


def test_the_command_reference_has_a_section_for_every_command_and_no_other():
    headings = re.findall(r"^## catalog-gen (\S+)$", prose(read(CLI_DOC)), re.MULTILINE)
    assert sorted(headings) == sorted(cli.commands)


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_option_of_a_command_is_documented_and_every_documented_one_exists(name):
    documented = documented_options(section(read(CLI_DOC), f"## catalog-gen {name}"))
    assert documented == option_names(cli.commands[name])


def test_every_global_option_is_documented_and_every_documented_one_exists():
    documented = documented_options(section(read(CLI_DOC), "## Global options"))
    assert documented - HELP == option_names(cli)


def command_lines(text: str) -> list[list[str]]:
    """The words of every ``catalog-gen`` command line in the code of ``text``, up to a shell
    operator or a comment."""
    lines = []
    for chunk in code(text):
        chunk = re.split(r"(?:^|\s)#", chunk, maxsplit=1)[0]  # a shell comment is prose
        # Not a quoted name ("catalog-gen @ git+…" is a requirement, not a command).
        for match in re.finditer(r"(?<![\w.\-\"'])catalog-gen(?=\s|$)(.*)", chunk):
            words = []
            for word in match.group(1).split():
                if word in ("&&", "||", "|", ";", ">", "2>&1") or word.startswith("#"):
                    break
                words.append(word)
            lines.append(words)
    return lines


def check_command_line(words: list[str]) -> None:
    """Global options, then a command that exists, then only that command's options."""
    rest = list(words)
    command: click.Command = cli
    while rest:
        word = rest.pop(0)
        if word.startswith("[") or word.isupper() or re.fullmatch(r"-\d+", word):
            continue  # a placeholder (COMMAND, [OPTIONS]) or a snapshot position (-1)
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            assert name in option_names(command) | HELP, f"{' '.join(words)}: no option {name}"
            if takes_value(command, name) and "=" not in word and rest:
                rest.pop(0)
        elif command is cli:
            assert word in cli.commands, f"{' '.join(words)}: no command {word!r}"
            command = cli.commands[word]


@pytest.mark.parametrize("page", CURRENT, ids=lambda p: p.name)
def test_every_command_line_in_the_docs_names_a_real_command_and_real_options(page):
    for words in command_lines(read(page)):
        check_command_line(words)


@pytest.mark.parametrize("page", CURRENT, ids=lambda p: p.name)
def test_every_option_the_docs_name_exists(page):
    """A lone option in the prose (`--allow-shrink`) is an option of some command."""
    every = option_names(cli) | HELP
    for command in cli.commands.values():
        every |= option_names(command)
    named = {span.split()[0] for span in spans(read(page)) if span}
    named = {n for n in named if re.fullmatch(r"--?[a-z][a-z-]*", n)}
    assert named - every == set()


def test_the_command_reference_is_what_the_help_says():
    """The usage line of each command's section is click's own."""
    text = read(CLI_DOC)
    for name, command in cli.commands.items():
        ctx = click.Context(command, info_name=f"catalog-gen {name}")
        usage = f"{ctx.command_path} {' '.join(command.collect_usage_pieces(ctx))}"
        assert usage in section(text, f"## catalog-gen {name}"), usage


# --- configuration -------------------------------------------------------------------------

CONFIG_DOC = DOCS / "configuration.md"
CONFIG_KEY = re.compile(r"(?:frontcore|sync|site|publish)\.[a-z_]+")


def test_the_configuration_reference_is_generated_from_the_code_and_up_to_date():
    text = read(CONFIG_DOC)
    hint = "run: python -m tools.reference"
    assert updated_reference(text) == text, hint


@pytest.mark.parametrize(("key", "default"), [(k, d) for k, d, _ in documented_keys()])
def test_every_config_key_is_documented_with_its_default(key, default):
    row = re.search(rf"^\| `{re.escape(key)}` \| `([^`]*)` \|", read(CONFIG_DOC), re.MULTILINE)
    assert row, f"{key} has no row in docs/configuration.md"
    assert row.group(1) == toml_value(default)


@pytest.mark.parametrize(
    "page", [p for p in CURRENT if p.name != "templates.md"], ids=lambda p: p.name
)
def test_every_config_key_the_docs_name_exists(page):
    """(docs/templates.md is left out: there ``site.title`` is the template's ``site``.)"""
    keys = {key for key, _, _ in documented_keys()}
    named = {span for span in spans(read(page)) if CONFIG_KEY.fullmatch(span)}
    named |= {span.split(" = ")[0] for span in named}
    assert named - keys == set()


def test_every_environment_variable_is_documented_and_every_documented_one_exists():
    table = section(read(CONFIG_DOC), "## Environment")
    variables = {API_KEY_ENV, API_KEY_FILE_ENV, API_URL_ENV, NOW_ENV}
    assert {c.strip("`") for c in first_cells(table)} == variables
    for page in CURRENT:
        for span in spans(read(page)):
            for name in re.findall(r"(?:FRONTCORE|CATALOG_GEN)_[A-Z_]+", span):
                assert name in variables or name.startswith(f"{scaffold.API_KEY_SECRET}_"), (
                    f"{page.name}: {name}"
                )


def test_the_many_accounts_secret_names_are_the_ones_init_makes():
    text = read(DOCS / "unattended.md")
    assert f"`{scaffold.project_secret('kurs-nord')}`" in text


#: The project and the installation the unattended guide shows.
EXAMPLE_PROJECT = dataclasses.replace(Config(), root=Path("/srv/my-catalog"))
EXAMPLE_INSTALL = (
    "catalog-gen @ git+https://github.com/example/catalog-gen@"
    "0123456789abcdef0123456789abcdef01234567"
)


def test_the_cron_lines_are_the_ones_init_prints():
    text = read(DOCS / "unattended.md")
    lines = scaffold.crontab_lines(EXAMPLE_PROJECT, ["/opt/catalog-gen/bin/catalog-gen"])
    block = text.split("```cron\n", 1)[1].split("```", 1)[0]
    assert block.splitlines() == lines


def test_the_fresher_seats_lines_are_the_ones_init_hourly_writes():
    text = read(DOCS / "unattended.md").split("## Fresher seats", 1)[1].split("\n## ", 1)[0]
    lines = scaffold.crontab_lines(EXAMPLE_PROJECT, ["/opt/catalog-gen/bin/catalog-gen"], (8, 17))
    block = text.split("```cron\n", 1)[1].split("```", 1)[0]
    assert block.splitlines() == lines
    schedule = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    workflow = scaffold.github_workflow(EXAMPLE_PROJECT, EXAMPLE_INSTALL, (8, 17))
    assert schedule.splitlines()[0] in workflow.splitlines()
    assert "--hourly 8-17" in text


def test_the_workflow_in_the_docs_is_the_one_init_writes():
    text = read(DOCS / "unattended.md")
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert block == scaffold.github_workflow(EXAMPLE_PROJECT, EXAMPLE_INSTALL)


# --- reports, exit codes, odd data ---------------------------------------------------------


def report_fields(heading: str) -> set[str]:
    return {c.strip("`") for c in first_cells(section(read(CLI_DOC), heading))}


def test_every_field_of_the_fetch_summary_is_documented_and_no_other():
    fields = {f.name for f in dataclasses.fields(FetchReport)}
    assert report_fields("### The fetch summary") == fields


def test_every_field_of_the_build_report_is_documented_and_no_other():
    report = BuildReport("000001", "site", 0, 0, 0, 0, 0, 0.0)
    assert report_fields("### The build report") == set(report.as_dict())


def test_every_exit_code_is_documented_and_no_other():
    def subclasses(cls: type) -> list[type]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    codes = {0, INTERRUPTED, BROKEN_PIPE} | {
        c.exit_code for c in subclasses(errors.CatalogGenError)
    }
    documented = {int(c) for c in first_cells(section(read(CLI_DOC), "## Exit codes"))}
    assert documented == codes


def test_every_kind_of_odd_data_is_documented_and_every_documented_one_exists():
    import catalog_gen.build  # noqa: F401  (its modules declare the kinds they report)
    from catalog_gen.anomalies import KINDS

    table = section(read(DOCS / "odd-data.md"), "## Every kind, and what a visitor sees")
    documented = [k for cell in first_cells(table) for k in spans_before_parenthesis(cell)]
    kinds = {k for k in KINDS if not k.startswith("test.")}
    assert len(documented) == len(set(documented)), "a kind has two rows"
    assert set(documented) == kinds


# --- the README and the links between pages ------------------------------------------------


def test_the_readme_is_a_front_page():
    assert len(read(README).splitlines()) <= 200


def test_ci_runs_the_readme_test_command():
    quick_start = read(README).split("## Quick start", 1)[1]
    test_line = next(line for line in quick_start.splitlines() if "pytest" in line)
    command = test_line.split("#", 1)[0].strip()
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_guide_is_linked_from_the_readme():
    linked = set(re.findall(r"\]\(docs/([^)#]+)", read(README)))
    assert linked == {page.name for page in DOCS.glob("*.md")}


def anchors(text: str) -> set[str]:
    """The anchors GitHub makes of a page's headings."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose(text), re.MULTILINE):
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", plain.strip().lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_between_pages_leads_somewhere(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", prose(read(page))):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        where = (page.parent / path).resolve() if path else page
        assert where.exists(), f"{page.name}: {target}"
        if anchor and where.suffix == ".md":
            assert anchor in anchors(read(where)), f"{page.name}: {target}"


# --- examples that run ---------------------------------------------------------------------


@pytest.mark.slow
def test_the_emulator_recipe_of_the_development_guide_works(tmp_path):
    """The three lines under "The emulator", as written, on a free port."""
    block = FENCE.search(read(DOCS / "development.md").split("## The emulator", 1)[1])
    assert block
    serve_line, export_line, build_line = block.group(1).splitlines()
    assert serve_line.startswith("python -m catalog_gen.demo.emulator --port ")
    env = dict(pair.split("=", 1) for pair in export_line.removeprefix("export ").split())
    assert run_cli(tmp_path, "init").returncode == 0
    server = subprocess.Popen(
        [sys.executable, "-m", "catalog_gen.demo.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_without_key(),
    )
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v2")
        env[API_URL_ENV] = url
        result = run_cli(tmp_path, *build_line.split()[1:], env=env)
    finally:
        server.terminate()
        server.communicate(timeout=10)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "index.html").is_file()


# --- docs/templates.md: the template reference ---------------------------------------------

TEMPLATES_DOC = DOCS / "templates.md"


def test_the_template_reference_is_generated_from_the_code_and_up_to_date():
    text = read(TEMPLATES_DOC)
    assert updated(text) == text, "run: python -m tools.reference"
    assert "docs/templates.md" in read(README)


def test_the_template_reference_says_what_everything_is():
    """Every global, filter and attribute a template sees has a description (a field's is
    its #: comment), and every field of every object is listed."""
    text = read(TEMPLATES_DOC)
    reference = text[text.index(BEGIN) : text.index(END)]
    rows = [line for line in reference.splitlines() if line.startswith("| `")]
    assert len(rows) > 150
    for row in rows:
        assert row.rstrip(" |").rsplit("|", 1)[1].strip(), f"no description: {row}"
    for cls in OBJECTS:
        part = reference.split(f"#### {cls.__name__}\n", 1)[1].split("\n#### ", 1)[0]
        names = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
        for name in names:
            assert name.startswith("_") or f"| `{name}` |" in part, f"{cls.__name__}.{name}"
        assert [a for a in attributes(cls) if not a.doc] == [], cls.__name__


@pytest.mark.slow
def test_the_custom_property_example_builds_with_the_real_cli(tmp_path):
    """The override in docs/templates.md, built with ``catalog-gen build --demo``: each
    course's and date's custom properties show on its own page, and nowhere else."""
    text = read(TEMPLATES_DOC)
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


def template_examples() -> list[tuple[str, str]]:
    """Every ``<!-- example: templates/NAME -->`` block of docs/templates.md: (name, text)."""
    text = read(TEMPLATES_DOC)
    found = re.findall(r"<!-- example: templates/(\S+) -->\n```jinja\n(.*?)```", text, re.DOTALL)
    assert len(found) >= 2
    return found


#: A property value that tries to end a double-quoted attribute, and one a single-quoted one.
BREAKOUT = '" onmouseover=alert(1) x="'
BREAKOUT_SINGLE = "' onfocus=alert(2) autofocus x='"


def hostile_sample():
    """A catalog full of nulls and hostile values where the examples read: ``null`` where
    objects belong (place-only dates), a ``javascript:`` link, properties that try to end
    their attribute, provider HTML with an event handler."""
    from datetime import date

    from catalog_gen.demo.sample import generate_catalog

    sample = generate_catalog(6, today=date(2026, 11, 23))
    ids = sorted(sample.courses)
    for number, course_id in enumerate(ids):
        course = sample.courses[course_id]
        if number % 2 == 0:
            course.update(
                kursguiden_url=" javascript:alert(1)", level=None, time_of_day=None,
                custom_properties={"special_note": BREAKOUT, "partner": BREAKOUT_SINGLE},
                text_place='<img src=x onerror="alert(3)"><b>Sted</b>',
            )  # fmt: skip
        else:
            course.update(
                kursguiden_url=" https://www.kursguiden.no/kurs/1 ", level={"title": None},
                time_of_day={"id": 2, "title": "Kveld"}, text_place=None,
            )  # fmt: skip
        for number_of_date, record in enumerate(sample.dates_of(course_id)):
            record["custom_properties"] = {"rom": None, "partner": BREAKOUT}
            record["kursguiden_url"] = course["kursguiden_url"]  # extra: the example links it
            if number_of_date % 2 == 0:
                record["location"] = None
                record["place"] = {"id": 1, "title": "Oslo", "title_additional_info": None}
    return sample


@pytest.mark.slow
@pytest.mark.parametrize(("name", "example"), template_examples(), ids=lambda v: v[:20])
def test_every_template_example_survives_nulls_and_hostile_values(
    name, example, tmp_path, emulator_for
):
    """Templates written as the docs show cannot be broken by API data: each example is built
    with the real command line against ``hostile_sample``; the build succeeds, no page says
    ``None``, no attribute is broken out of, no link leads to a script."""
    import json as json_module

    from tests.conftest import API_KEY
    from tests.test_sanitize import as_a_browser_reads

    sample = hostile_sample()
    emulator = emulator_for(sample)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / name).write_text(example, encoding="utf-8")
    env = {"FRONTCORE_API_URL": emulator.base_url, "FRONTCORE_API_KEY": API_KEY}
    result = run_cli(tmp_path, "build", "--now", PINNED, env=env)
    assert result.returncode == 0, result.stderr
    checked = 0
    for page in (tmp_path / "site").glob("kurs/*/index.html"):
        soup = parse(page)
        main = soup.find("main")
        assert "None" not in main.get_text(" "), page
        for element in soup.find_all(True):
            assert not [a for a in element.attrs if a.lower().startswith("on")], element
            assert "autofocus" not in element.attrs, element
            href = element.get("href")
            if href is not None:
                scheme = as_a_browser_reads(href).split(":", 1)
                assert len(scheme) == 1 or scheme[0] in ("http", "https", "mailto"), href
        course_id = int(page.parent.name.rsplit("-", 1)[1])
        for section in soup.select("section.more"):
            expected = sample.courses[course_id]["custom_properties"] or {}
            assert json_module.loads(section["data-properties"]) == expected
            checked += 1
    assert checked >= 4 or "section" not in example
    if "safe_url" in example:  # the good link is kept, as the browser reads it
        links = [a["href"] for p in (tmp_path / "site").glob("kurs/*/index.html")
                 for a in parse(p).select("section.more a")]  # fmt: skip
        assert links and set(links) == {"https://www.kursguiden.no/kurs/1"}
