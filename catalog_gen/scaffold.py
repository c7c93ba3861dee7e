"""Files ``catalog-gen init`` writes for unattended runs: a GitHub Actions workflow, systemd units.

They are generated, not copied, so they name this project's folder and this version, and the
tests can validate exactly what a user gets (actionlint, zizmor).

The workflow follows what a careful maintainer would do by hand: actions pinned to full commit
SHAs (with the version as a comment), no token permissions by default and only what each job
needs, no persisted checkout credentials, the API key only in the one step that fetches,
``snapshots/`` and ``site/`` kept between runs with ``actions/cache`` so nightly runs fetch only
what changed and write only what changed, and the deploy skipped when no file changed.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from catalog_gen import __version__

WORKFLOW_PATH = ".github/workflows/catalog.yml"
SYSTEMD_DIR = "systemd"

#: Pinned actions: full commit SHAs; the tag is a comment for humans and Dependabot.
ACTIONS = {
    "checkout": ("actions/checkout", "11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "setup-python": ("actions/setup-python", "0b93645e9fea7318ecaed2b359559ac225c90a2b", "v5.3.0"),
    "cache": ("actions/cache", "1bd1e32a3bdc45362d1e726936510720a7c30a57", "v4.2.0"),
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


def github_workflow() -> str:
    """The nightly + manual + on-push workflow that builds and deploys to GitHub Pages."""
    return f"""\
# Written by 'catalog-gen init --ci github' (catalog-gen {__version__}).
# Nightly, on demand and on push: fetch what changed from Frontcore, render the site, and deploy
# it to GitHub Pages only when a file changed. Set the repository secret FRONTCORE_API_KEY and
# choose "GitHub Actions" as the Pages source (Settings > Pages).
name: catalog

on:
  schedule:
    - cron: "15 2 * * *"  # 03:15 in Oslo in winter, 04:15 in summer (Actions runs on UTC)
  workflow_dispatch:
  push:
    branches: [main]

permissions: {{}}

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
      changed: ${{{{ steps.build.outputs.written != '0' || steps.build.outputs.removed != '0' }}}}
    steps:
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
        run: catalog-gen build --json --quiet --timeout 1200
        env:
          FRONTCORE_API_KEY: ${{{{ secrets.FRONTCORE_API_KEY }}}}
      - name: Upload the site
        if: steps.build.outputs.written != '0' || steps.build.outputs.removed != '0'
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


def crontab_line(project: Path, command: list[str]) -> str:
    """A nightly crontab entry; catalog-gen's own lock stops overlapping runs."""
    return (
        f"15 3 * * *  cd {shlex.quote(str(project))} && "
        f"{shlex.join(command)} build --quiet --timeout 1800"
    )


def systemd_units(project: Path, command: list[str]) -> dict[str, str]:
    """``catalog-gen.service`` and ``catalog-gen.timer`` for a nightly build under systemd.

    ``command`` starts with an absolute path: systemd does not search PATH.
    """
    executable = shlex.join(command)
    service = f"""\
# Written by 'catalog-gen init --cron' (catalog-gen {__version__}).
# Install: copy both files to /etc/systemd/system/, put FRONTCORE_API_KEY=... in
# /etc/catalog-gen/env (mode 600), then: systemctl daemon-reload &&
# systemctl enable --now catalog-gen.timer
[Unit]
Description=Build the course catalog from Frontcore (catalog-gen)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
WorkingDirectory={project}
EnvironmentFile=/etc/catalog-gen/env
ExecStart={executable} build --quiet --timeout 1800
# catalog-gen holds its own lock: a second start while one runs exits 3 and changes nothing.
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=full
"""
    timer = f"""\
# Written by 'catalog-gen init --cron' (catalog-gen {__version__}).
[Unit]
Description=Nightly catalog-gen build

[Timer]
OnCalendar=*-*-* 03:15:00 Europe/Oslo
RandomizedDelaySec=10min
Persistent=true

[Install]
WantedBy=timers.target
"""
    return {"catalog-gen.service": service, "catalog-gen.timer": timer}
