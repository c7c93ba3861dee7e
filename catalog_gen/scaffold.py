"""Files ``catalog-gen init`` writes for unattended runs: GitHub Actions workflows, cron, systemd.

They are generated, not copied, so they name this project's folders and this version, and the
tests can validate exactly what a user gets (actionlint, zizmor, systemd-analyze).

The workflows follow what a careful maintainer would do by hand: actions pinned to full commit
SHAs (with the version as a comment), no token permissions by default and only what each job
needs, no persisted checkout credentials, the API key only in the one step that fetches,
``snapshots/`` and ``site/`` kept between runs with ``actions/cache`` so nightly runs fetch only
what changed and write only what changed, and the deploy skipped when no file changed.

Every schedule runs nightly and re-reads everything once a week (``--full``, Sunday night): the
nightly runs are incremental and keep past dates from the last snapshot, and the weekly full
fetch is what corrects anything an incremental run cannot see.

Many accounts (an agency with one catalog per Frontcore account) get one workflow with a
matrix job per project folder: each folder has its own key (a repository secret named after
it), its own cache and its own concurrency group, and the folders run side by side, since each
account has its own rate-limit budget. Scaling out is the CI's job; catalog-gen stays one
catalog per run.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from catalog_gen import __version__

WORKFLOW_PATH = ".github/workflows/catalog.yml"
SYSTEMD_DIR = "systemd"
API_KEY_SECRET = "FRONTCORE_API_KEY"

#: GitHub Actions runs on UTC: 02:15 UTC is 03:15 in Oslo in winter, 04:15 in summer.
NIGHTLY_CRON = "15 2 * * 1-6"
#: Sunday night instead of the nightly run: the weekly full fetch.
WEEKLY_FULL_CRON = "15 2 * * 0"

#: A project folder of a matrix workflow: one plain folder name, so it is safe as a path, a
#: YAML value, a cache key part and an artifact name alike.
PROJECT_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

#: Pinned actions: full commit SHAs; the tag is a comment for humans and Dependabot.
ACTIONS = {
    "checkout": ("actions/checkout", "11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "setup-python": ("actions/setup-python", "0b93645e9fea7318ecaed2b359559ac225c90a2b", "v5.3.0"),
    "cache": ("actions/cache", "1bd1e32a3bdc45362d1e726936510720a7c30a57", "v4.2.0"),
    "upload-artifact": (
        "actions/upload-artifact",
        "ea165f8d65b6e75b540449e92b4886f43607fa02",
        "v4.6.2",
    ),
    "upload-pages-artifact": (
        "actions/upload-pages-artifact",
        "56afc609e74202658d3ffba0e8f6dda462b719fa",
        "v3.0.1",
    ),
    "deploy-pages": ("actions/deploy-pages", "d6db90164ac5ed86f2b6aed7e0febac5b3c0c03e", "v4.0.5"),
}


def _uses(name: str) -> str:
    repo, sha, tag = ACTIONS[name]
    return f"{repo}@{sha} # {tag}"


def project_secret(folder: str) -> str:
    """The repository secret holding ``folder``'s API key: ``FRONTCORE_API_KEY_<FOLDER>``.

    GitHub secret names allow only A–Z, 0–9 and _, so the folder name is upper-cased and every
    other character becomes _ (``kurs-nord`` → ``FRONTCORE_API_KEY_KURS_NORD``).
    """
    return f"{API_KEY_SECRET}_{re.sub(r'[^A-Z0-9]', '_', folder.upper())}"


def check_projects(folders: Sequence[str]) -> list[str]:
    """The project folders of a matrix workflow, in the order given, each once.

    Raises ValueError naming the folder that is not a plain folder name, or the two folders
    whose secret names would be the same.
    """
    projects = list(dict.fromkeys(folders))
    secrets: dict[str, str] = {}
    for folder in projects:
        if not PROJECT_FOLDER.fullmatch(folder):
            raise ValueError(
                f"'{folder}' must be a folder directly inside the repository, named with "
                "letters, digits, '.', '_' and '-' (starting with a letter or digit)"
            )
        secret = project_secret(folder)
        if secret in secrets:
            raise ValueError(
                f"'{secrets[secret]}' and '{folder}' would share the secret {secret}; "
                "rename one of the folders"
            )
        secrets[secret] = folder
    return projects


def _header(command: str) -> str:
    return f"# Written by '{command}' (catalog-gen {__version__}).\n"


_TRIGGERS = f"""\
on:
  schedule:  # UTC: 03:15 in Oslo in winter, 04:15 in summer
    - cron: "{NIGHTLY_CRON}"  # Monday to Saturday: fetch what changed
    - cron: "{WEEKLY_FULL_CRON}"  # Sunday: a full fetch (--full) that re-reads everything
  workflow_dispatch:
  push:
    branches: [main]

permissions: {{}}
"""

_SETUP_STEPS = f"""\
      - uses: {_uses("checkout")}
        with:
          persist-credentials: false
      - uses: {_uses("setup-python")}
        with:
          python-version: "3.12"
          cache: pip
          cache-dependency-path: .github/workflows/catalog.yml  # the pinned version is here
      - name: Install catalog-gen
        run: python -m pip install "catalog-gen=={__version__}"
"""

#: The build command; FULL is set on the weekly schedule only. ${FULL:+--full} is the word
#: --full when FULL is non-empty and nothing at all otherwise.
_BUILD_RUN = "catalog-gen build --json --quiet --timeout 1200 ${FULL:+--full}"
_FULL_ENV = f"FULL: ${{{{ github.event.schedule == '{WEEKLY_FULL_CRON}' && 'yes' || '' }}}}"
_CHANGED = "steps.build.outputs.written != '0' || steps.build.outputs.removed != '0'"


def github_workflow() -> str:
    """The nightly + manual + on-push workflow that builds and deploys to GitHub Pages."""
    return (
        _header("catalog-gen init --ci github")
        + f"""\
# Nightly, on demand and on push: fetch what changed from Frontcore, render the site, and deploy
# it to GitHub Pages only when a file changed; on Sunday nights, fetch everything (--full).
# Set the repository secret {API_KEY_SECRET} and choose "GitHub Actions" as the Pages source
# (Settings > Pages).
name: catalog

{_TRIGGERS}
concurrency:
  group: catalog
  cancel-in-progress: false

jobs:
  build:
    name: Fetch and build
    runs-on: ubuntu-latest
    timeout-minutes: 30
    permissions:
      contents: read  # to check out the templates, content and catalog.toml
    outputs:
      changed: ${{{{ {_CHANGED} }}}}
    steps:
{_SETUP_STEPS}\
      - name: Restore the last snapshots and site
        uses: {_uses("cache")}
        with:
          path: |
            snapshots
            site
          key: catalog-${{{{ github.run_id }}}}
          restore-keys: catalog-
      - name: Build
        id: build
        run: {_BUILD_RUN}
        env:
          {_FULL_ENV}
          {API_KEY_SECRET}: ${{{{ secrets.{API_KEY_SECRET} }}}}
      - name: Upload the site
        if: {_CHANGED}
        uses: {_uses("upload-pages-artifact")}
        with:
          path: site

  deploy:
    name: Deploy
    needs: build
    if: needs.build.outputs.changed == 'true'
    runs-on: ubuntu-latest
    timeout-minutes: 10
    permissions:
      pages: write  # to publish the uploaded site
      id-token: write  # to prove to Pages that this workflow is the deployer
    environment:
      name: github-pages
      url: ${{{{ steps.deployment.outputs.page_url }}}}
    steps:
      - name: Deploy to GitHub Pages
        id: deployment
        uses: {_uses("deploy-pages")}
"""
    )


def github_matrix_workflow(projects: Sequence[str]) -> str:
    """The same schedule for several catalogs, one folder and one Frontcore account each.

    A matrix job per folder, with the folder's own secret (``project_secret``), its own cache
    of snapshots and site, and its own concurrency group. GitHub Pages serves one site per
    repository, so each changed site is uploaded as an artifact (``site-<folder>``) for the
    deploy step the user adds for their host.
    """
    projects = check_projects(projects)
    command = "catalog-gen init --ci github" + "".join(f" --project {p}" for p in projects)
    secrets = "\n".join(f"#   {p}: {project_secret(p)}" for p in projects)
    matrix = "\n".join(f"          - {p}" for p in projects)
    # A job is handed only the secrets its steps name, and a matrix shares its steps: select
    # each folder's secret by literal name (no secrets[...] lookup, which hands over them all).
    key_choices = "\n".join(
        f"            matrix.project == '{p}' && secrets.{project_secret(p)} ||" for p in projects
    )
    return (
        _header(command)
        + f"""\
# One catalog per folder, each its own Frontcore account with its own key and its own budget of
# 5 requests per second: a matrix job per folder fetches what changed and renders that folder's
# site/ (nightly, on demand, on push; on Sunday nights a full fetch, --full). Set one repository
# secret per folder (Settings > Secrets and variables > Actions):
{secrets}
# GitHub Pages serves one site per repository, so each folder's site, when a file changed, is
# uploaded as the artifact site-<folder>: add your host's deploy step after that upload.
name: catalog

{_TRIGGERS}
jobs:
  build:
    name: Fetch and build ${{{{ matrix.project }}}}
    runs-on: ubuntu-latest
    timeout-minutes: 30
    permissions:
      contents: read  # to check out each folder's templates, content and catalog.toml
    strategy:
      fail-fast: false  # one account failing (a revoked key, say) must not stop the others
      matrix:
        project:
{matrix}
    concurrency:
      group: catalog-${{{{ matrix.project }}}}  # one run per folder at a time
      cancel-in-progress: false
    defaults:
      run:
        working-directory: ${{{{ matrix.project }}}}
    steps:
{_SETUP_STEPS}\
      - name: Restore this folder's last snapshots and site
        uses: {_uses("cache")}
        with:
          path: |
            ${{{{ matrix.project }}}}/snapshots
            ${{{{ matrix.project }}}}/site
          key: catalog/${{{{ matrix.project }}}}/${{{{ github.run_id }}}}
          restore-keys: catalog/${{{{ matrix.project }}}}/
      - name: Build
        id: build
        run: {_BUILD_RUN}
        env:
          {_FULL_ENV}
          {API_KEY_SECRET}: >-
            ${{{{
{key_choices}
            '' }}}}
      - name: Upload the site
        if: {_CHANGED}
        uses: {_uses("upload-artifact")}
        with:
          name: site-${{{{ matrix.project }}}}
          path: ${{{{ matrix.project }}}}/site
          retention-days: 7
      # Add your host's deploy step here, with the upload's `if:` so it runs only when this
      # folder's site changed, and the host's credentials in a secret per folder, like the key.
"""
    )


def crontab_lines(project: Path, command: list[str]) -> list[str]:
    """Crontab entries: nightly (Monday to Saturday) and a weekly full fetch on Sunday.

    The two never start together; if a run overlaps another anyway, catalog-gen's own lock
    makes the second exit 3 without touching anything.
    """
    run = f"cd {shlex.quote(str(project))} && {shlex.join(command)} build"
    return [
        f"15 3 * * 1-6  {run} --quiet --timeout 1800",
        f"15 3 * * 0    {run} --full --quiet --timeout 1800",
    ]


def systemd_units(project: Path, command: list[str]) -> dict[str, str]:
    """Services and timers for a nightly build and a weekly full fetch under systemd.

    ``command`` starts with an absolute path: systemd does not search PATH.
    """
    executable = shlex.join(command)

    def service(description: str, options: str, extra: str = "") -> str:
        return f"""\
# Written by 'catalog-gen init --cron' (catalog-gen {__version__}).
# Install: copy the files in this folder to /etc/systemd/system/, put FRONTCORE_API_KEY=... in
# /etc/catalog-gen/env (mode 600), then: systemctl daemon-reload &&
# systemctl enable --now catalog-gen.timer catalog-gen-full.timer
[Unit]
Description={description}
Wants=network-online.target
After=network-online.target
{extra}
[Service]
Type=oneshot
WorkingDirectory={project}
EnvironmentFile=/etc/catalog-gen/env
ExecStart={executable} build {options}--quiet --timeout 1800
# catalog-gen holds its own lock: a second start while one runs exits 3 and changes nothing.
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=full
"""

    def timer(description: str, calendar: str) -> str:
        return f"""\
# Written by 'catalog-gen init --cron' (catalog-gen {__version__}).
[Unit]
Description={description}

[Timer]
OnCalendar={calendar} 03:15:00 Europe/Oslo
RandomizedDelaySec=10min
Persistent=true

[Install]
WantedBy=timers.target
"""

    return {
        "catalog-gen.service": service(
            "Build the course catalog from Frontcore (catalog-gen)",
            "",
            # After a week switched off, both timers fire at boot: run one after the other.
            "After=catalog-gen-full.service\n",
        ),
        "catalog-gen.timer": timer("Nightly catalog-gen build", "Mon..Sat *-*-*"),
        "catalog-gen-full.service": service(
            "Build the course catalog from a full Frontcore fetch (catalog-gen --full)", "--full "
        ),
        "catalog-gen-full.timer": timer("Weekly full catalog-gen build", "Sun *-*-*"),
    }
