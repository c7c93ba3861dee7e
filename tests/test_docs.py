"""The README is part of the interface: it must name every command, option and config key."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from catalog_gen.cli import cli
from catalog_gen.config import documented_keys, toml_value

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


def test_every_kind_of_odd_data_is_documented():
    import catalog_gen.build  # noqa: F401  (its modules declare the kinds they report)
    from catalog_gen.anomalies import KINDS

    missing = [k for k in KINDS if not k.startswith("test.") and f"`{k}`" not in README]
    assert KINDS and missing == []
