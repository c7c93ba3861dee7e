"""Files ``catalog-gen init`` writes for unattended runs: GitHub Actions workflows, cron, systemd.

They are generated, not copied, so they name this project's folders, its time zone and this very
catalog-gen, and the tests can replay exactly what a user gets (tests/test_nightly.py runs the
workflow's own steps night after night, the crontab's own command lines, and checks the units
with systemd-analyze).

- **Install what wrote them.** The workflow installs catalog-gen from an immutable source (a git
  URL with a full commit, or an archive URL with its sha256) that this installation came from
  (``install_source``), never a bare name on a package index that anyone could register.
- **Keep what the next night needs.** ``snapshots/``, ``site/`` and what a build keeps beside
  the site (its state and model cache) go in the CI cache, named from the project's config
  (``Config.kept_between_runs``); nothing the site published depends on them surviving
  (site/publish.py: the new site is what the build made), only how much a night costs.
- **Least privilege.** Actions pinned to full commit SHAs (the version as a comment), no token
  permissions by default and only what each job needs, no persisted checkout credentials, the
  API key only in the one step that fetches; systemd units run as an unprivileged user with
  the key passed as a credential; cron reads the key from a file, never a command line.

Every schedule runs nightly at 03:15 in the catalog's time zone and re-reads everything once a
week (``--full``, Sunday night): the nightly runs are incremental and keep past dates from the
last snapshot, and the weekly full run is what corrects anything an incremental run cannot see,
in the data and in ``site/`` alike (it trusts nothing an earlier build kept). With ``init
--hourly 8-17`` ("fresher seats") each schedule also builds every hour in the opening hours,
Monday to Friday: the same incremental build, which fetches every current date again.

Many accounts (an agency with one catalog per Frontcore account) get one workflow with a
matrix job per project folder: each folder has its own key (a repository secret named after
it), its own cache and its own concurrency group, and the folders run side by side, since each
account has its own rate-limit budget. Scaling out is the CI's job; catalog-gen stays one
catalog per run.
"""

from __future__ import annotations

import importlib.metadata
import json
import pwd
import re
import shlex
import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from catalog_gen import __version__
from catalog_gen.config import API_KEY_FILE_ENV, Config

WORKFLOW_PATH = ".github/workflows/catalog.yml"
SYSTEMD_DIR = "systemd"
API_KEY_SECRET = "FRONTCORE_API_KEY"
DISTRIBUTION = "catalog-gen"

#: The local time of the nightly run (in the catalog's time zone).
NIGHTLY_AT = (3, 15)
#: Days of the week (cron: 0 = Sunday): the nightly run, and the weekly full one.
NIGHTLY_DAYS = (1, 2, 3, 4, 5, 6)
WEEKLY_FULL_DAY = 0
#: The hourly runs for fresher seats (``init --hourly``): Monday to Friday, at the nightly
#: run's minute past each hour of the opening hours.
HOURLY_DAYS = (1, 2, 3, 4, 5)


def opening_hours(text: str) -> tuple[int, int]:
    """``"8-17"`` as (8, 17): the first and the last hour (0-23, in the catalog's zone) of the
    hourly runs. ValueError saying what to give instead; the nightly run's hour is refused
    (two runs at once: the second would only find the lock taken)."""
    match = re.fullmatch(r"\s*(\d{1,2})\s*-\s*(\d{1,2})\s*", text)
    first, last = (int(match.group(1)), int(match.group(2))) if match else (-1, -1)
    if not 0 <= first <= last <= 23:
        raise ValueError(
            f"'{text}' is no range of hours: give the first and the last hour of the day, "
            "such as 8-17 (from 08:15 to 17:15)"
        )
    if first <= NIGHTLY_AT[0] <= last:
        raise ValueError(
            f"'{text}' includes the nightly run's hour ({NIGHTLY_AT[0]:02}:{NIGHTLY_AT[1]:02}); "
            "give opening hours after it, such as 8-17"
        )
    return first, last


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


# --- where catalog-gen is installed from --------------------------------------------------------

_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def install_source(explicit: str | None = None) -> str:
    """The pip requirement that installs exactly this catalog-gen from where it came from:
    ``catalog-gen @ git+URL@COMMIT`` or ``catalog-gen @ URL#sha256=HASH``.

    ``explicit`` (``init --install-from``) names it; otherwise it is read from how this copy
    was installed (PEP 610's ``direct_url.json``: pip records a git install's commit and an
    archive's hash), or, for an editable install of a git checkout, from the checkout's
    ``origin`` and its commit. Raises ValueError saying what to pass instead when there is
    no immutable source to name (an install from a package index by version: a version
    names no bytes until a hash does).
    """
    if explicit is not None:
        return _requirement(explicit.strip())
    try:
        found = importlib.metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        found = None
    if found:
        try:
            return _requirement(_direct_url(json.loads(found)))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    raise ValueError(
        f"cannot tell which immutable source this catalog-gen {__version__} came from; pass "
        "--install-from with a git URL and a full commit (git+https://host/owner/repo@<40 hex "
        "digits>) or an archive URL with its hash (https://…/catalog_gen-….whl#sha256=<hex>)"
    )


def _direct_url(info: dict[str, Any]) -> str:
    """The source a PEP 610 record names, as a pip URL (ValueError when it names none).

    ``info`` is the parsed ``direct_url.json``, its values unchecked: a value of the wrong
    kind raises, and the caller takes that as no source named."""
    url = str(info["url"])
    if "vcs_info" in info:
        vcs = info["vcs_info"]
        if vcs.get("vcs") != "git":
            raise ValueError("not git")
        return f"git+{url}@{vcs['commit_id']}"
    if "archive_info" in info:
        archive = info["archive_info"]
        digest = (archive.get("hashes") or {}).get("sha256") or ""
        if not digest and str(archive.get("hash", "")).startswith("sha256="):
            digest = archive["hash"].removeprefix("sha256=")
        return f"{url}#sha256={digest}"
    if "dir_info" in info and url.startswith("file://"):
        return _checkout(Path(unquote(urlsplit(url).path)))
    raise ValueError("no source")


def _checkout(folder: Path) -> str:
    """A git checkout's ``origin`` at its commit, if its tracked files are committed."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        remote = git("remote", "get-url", "origin")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        raise ValueError("not a git checkout with an origin") from None
    if changed:
        raise ValueError("the checkout has changes that are not committed")
    scp = re.fullmatch(r"([\w.-]+)@([\w.-]+):(.+)", remote)  # git@github.com:owner/repo.git
    if scp:
        remote = f"https://{scp.group(2)}/{scp.group(3)}"
    return f"git+{remote}@{commit}"


def _requirement(url: str) -> str:
    """``catalog-gen @ URL`` for a URL that names immutable bytes (ValueError otherwise)."""
    if re.search(r"\s", url):
        raise ValueError(f"'{url}' is not one URL")
    if url.startswith("git+"):
        location, _, ref = url.rpartition("@")
        if _COMMIT.fullmatch(ref) and "://" in location:
            return f"{DISTRIBUTION} @ {url}"
        raise ValueError(
            f"'{url}' must end in @ and a full commit (40 hex digits): a branch or a tag can "
            "be moved to other code"
        )
    parts = urlsplit(url)
    digest = parts.fragment.removeprefix("sha256=")
    if (
        parts.scheme in ("https", "file")
        and parts.fragment.startswith("sha256=")
        and _SHA256.fullmatch(digest)
        and parts.path.endswith((".whl", ".tar.gz"))
    ):
        return f"{DISTRIBUTION} @ {url}"
    raise ValueError(
        f"'{url}' names no immutable source: give a git URL ending in @<full commit> or a "
        ".whl/.tar.gz URL ending in #sha256=<its 64 hex digits>"
    )


# --- the schedule --------------------------------------------------------------------------------


def utc_schedule(timezone: str) -> tuple[str, str]:
    """The GitHub Actions crons (UTC only) for the nightly and the weekly full run at
    ``NIGHTLY_AT`` in ``timezone``'s standard time (an hour later in summer time), with
    the days moved when UTC is on another day then."""
    minutes = NIGHTLY_AT[0] * 60 + NIGHTLY_AT[1] - _standard_offset_minutes(timezone)
    shift, minutes = divmod(minutes, 24 * 60)
    time = f"{minutes % 60} {minutes // 60}"

    def days(local: Sequence[int]) -> str:
        moved = sorted((day + shift) % 7 for day in local)
        return _day_ranges(moved)

    return f"{time} * * {days(NIGHTLY_DAYS)}", f"{time} * * {days([WEEKLY_FULL_DAY])}"


def _standard_offset_minutes(timezone: str) -> int:
    """The zone's standard (winter) offset from UTC, in minutes."""
    zone = ZoneInfo(timezone)
    year = datetime.now().year
    offsets = [datetime(year, month, 15, tzinfo=zone).utcoffset() for month in (1, 7)]
    return int(min(o for o in offsets if o is not None).total_seconds() // 60)


def utc_hourly_schedule(timezone: str, hours: tuple[int, int]) -> list[str]:
    """The GitHub Actions crons (UTC) of the hourly runs: at the nightly run's minute past
    each hour from ``hours[0]`` to ``hours[1]`` in ``timezone``'s standard time, Monday to
    Friday there; one line per UTC day they fall on (hours that cross UTC's midnight move
    to the next or the previous day)."""
    offset = _standard_offset_minutes(timezone)
    by_shift: dict[int, list[int]] = {}
    minute = 0
    for hour in range(hours[0], hours[1] + 1):
        shift, minutes = divmod(hour * 60 + NIGHTLY_AT[1] - offset, 24 * 60)
        minute = minutes % 60
        by_shift.setdefault(shift, []).append(minutes // 60)
    return [
        f"{minute} {_hour_ranges(utc_hours)} * * "
        f"{_day_ranges(sorted((day + shift) % 7 for day in HOURLY_DAYS))}"
        for shift, utc_hours in sorted(by_shift.items())
    ]


def _hour_ranges(hours: Sequence[int]) -> str:
    """Cron's hour field: ``7-16``, ``0-2,20-23``."""
    runs: list[list[int]] = []
    for hour in hours:
        if runs and hour == runs[-1][-1] + 1:
            runs[-1].append(hour)
        else:
            runs.append([hour])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _hours_label(hours: tuple[int, int]) -> str:
    return f"{hours[0]:02}:{NIGHTLY_AT[1]:02} to {hours[1]:02}:{NIGHTLY_AT[1]:02}"


def _day_ranges(days: Sequence[int]) -> str:
    """Cron's day-of-week field: ``1-6``, ``0,2-6``."""
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


# --- GitHub Actions ------------------------------------------------------------------------------


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


def _triggers(timezone: str, hourly: tuple[int, int] | None = None) -> str:
    nightly, weekly = utc_schedule(timezone)
    at = f"{NIGHTLY_AT[0]:02}:{NIGHTLY_AT[1]:02}"
    fresher = ""
    if hourly:
        label = _hours_label(hourly)
        fresher = "".join(
            f'    - cron: "{line}"  # fresher seats: hourly, {label} Monday to Friday\n'
            for line in utc_hourly_schedule(timezone, hourly)
        )
    return f"""\
on:
  schedule:  # UTC: {at} in {timezone} (an hour later in summer time)
    - cron: "{nightly}"  # Monday to Saturday: fetch what changed
    - cron: "{weekly}"  # Sunday: a full run (--full) that re-reads and re-checks everything
{fresher}\
  workflow_dispatch:
  push:
    branches: [main]

permissions: {{}}
"""


def _setup_steps(install: str) -> str:
    return f"""\
      - uses: {_uses("checkout")}
        with:
          persist-credentials: false
      - uses: {_uses("setup-python")}
        with:
          python-version: "3.12"
          cache: pip
          cache-dependency-path: .github/workflows/catalog.yml  # the pinned source is here
      - name: Install catalog-gen
        run: python -m pip install "{install}"
"""


#: The build command; FULL is set on the weekly schedule only. ${FULL:+--full} is the word
#: --full when FULL is non-empty and nothing at all otherwise.
_BUILD_RUN = "catalog-gen build --json --quiet --timeout 1200 ${FULL:+--full}"
#: Upload and deploy when a file was written or removed, or when the run was started by hand
#: (which repairs a deploy that failed after its build job had cached the new site).
_CHANGED = (
    "steps.build.outputs.written != '0' || steps.build.outputs.removed != '0' || "
    "github.event_name == 'workflow_dispatch'"
)


def _full_env(timezone: str) -> str:
    weekly = utc_schedule(timezone)[1]
    return f"FULL: ${{{{ github.event.schedule == '{weekly}' && 'yes' || '' }}}}"


def _paths(lines: Sequence[str], indent: int) -> str:
    return "\n".join(" " * indent + line for line in lines)


def github_workflow(config: Config, install: str, hourly: tuple[int, int] | None = None) -> str:
    """The nightly + manual + on-push workflow that builds and deploys to GitHub Pages.

    ``install`` is the pip requirement of this catalog-gen (``install_source``); ``hourly``
    the opening hours of the hourly runs for fresher seats (``opening_hours``), if any."""
    site = config.site.output_dir
    kept = _paths(config.kept_between_runs(), 12)
    command = "catalog-gen init --ci github" + (
        f" --hourly {hourly[0]}-{hourly[1]}" if hourly else ""
    )
    fresher = (
        f"# For fresher seats, the same build also runs every hour from {_hours_label(hourly)}, "
        "Monday to\n# Friday.\n"
        if hourly
        else ""
    )
    return (
        _header(command)
        + f"""\
# Nightly, on demand and on push: fetch what changed from Frontcore, render the site, and deploy
# it to GitHub Pages only when a file changed; on Sunday nights, fetch and check everything
# (--full). Set the repository secret {API_KEY_SECRET} and choose "GitHub Actions" as the Pages
# source (Settings > Pages).
{fresher}name: catalog

{_triggers(config.timezone, hourly)}
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
{_setup_steps(install)}\
      # What the next night needs: the snapshots (to fetch only what changed), the site (to
      # upload only what changed) and what a build keeps beside it (to render only what
      # changed, and to tell odd data once). Losing them costs a slower night, never a
      # different site: a build publishes what it made, whatever it found.
      - name: Restore the last snapshots, site and build state
        uses: {_uses("cache")}
        with:
          path: |
{kept}
          key: catalog-${{{{ github.run_id }}}}
          restore-keys: catalog-
      - name: Build
        id: build
        run: {_BUILD_RUN}
        env:
          {_full_env(config.timezone)}
          {API_KEY_SECRET}: ${{{{ secrets.{API_KEY_SECRET} }}}}
      - name: Upload the site
        if: {_CHANGED}
        uses: {_uses("upload-pages-artifact")}
        with:
          path: {site}

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


def github_matrix_workflow(
    projects: Sequence[tuple[str, Config]], install: str, hourly: tuple[int, int] | None = None
) -> str:
    """The same schedule for several catalogs, one folder and one Frontcore account each.

    A matrix job per folder, with the folder's own secret (``project_secret``), its own cache
    of what its nights need (from its own config), and its own concurrency group. GitHub
    Pages serves one site per repository, so each changed site is uploaded as an artifact
    (``site-<folder>``) for the deploy step the user adds for their host. The schedule is
    the first folder's time zone's.
    """
    folders = check_projects([folder for folder, _ in projects])
    configs = dict(projects)
    command = "catalog-gen init --ci github" + "".join(f" --project {p}" for p in folders)
    if hourly:
        command += f" --hourly {hourly[0]}-{hourly[1]}"
    secrets = "\n".join(f"#   {p}: {project_secret(p)}" for p in folders)
    entries = []
    for folder in folders:
        config = configs[folder]
        kept = _paths([f"{folder}/{path}" for path in config.kept_between_runs()], 14)
        entries.append(
            f"          - project: {folder}\n"
            f"            site: {folder}/{config.site.output_dir}\n"
            f"            kept: |\n{kept}"
        )
    matrix = "\n".join(entries)
    # A job is handed only the secrets its steps name, and a matrix shares its steps: select
    # each folder's secret by literal name (no secrets[...] lookup, which hands over them all).
    key_choices = "\n".join(
        f"            matrix.project == '{p}' && secrets.{project_secret(p)} ||" for p in folders
    )
    timezone = configs[folders[0]].timezone
    return (
        _header(command)
        + f"""\
# One catalog per folder, each its own Frontcore account with its own key and its own budget of
# 5 requests per second: a matrix job per folder fetches what changed and renders that folder's
# site (nightly, on demand, on push; on Sunday nights a full run, --full). Set one repository
# secret per folder (Settings > Secrets and variables > Actions):
{secrets}
# GitHub Pages serves one site per repository, so each folder's site, when a file changed, is
# uploaded as the artifact site-<folder>: add your host's deploy step after that upload.
name: catalog

{_triggers(timezone, hourly)}
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
        include:
{matrix}
    concurrency:
      group: catalog-${{{{ matrix.project }}}}  # one run per folder at a time
      cancel-in-progress: false
    defaults:
      run:
        working-directory: ${{{{ matrix.project }}}}
    steps:
{_setup_steps(install)}\
      - name: Restore this folder's last snapshots, site and build state
        uses: {_uses("cache")}
        with:
          path: ${{{{ matrix.kept }}}}
          key: catalog/${{{{ matrix.project }}}}/${{{{ github.run_id }}}}
          restore-keys: catalog/${{{{ matrix.project }}}}/
      - name: Build
        id: build
        run: {_BUILD_RUN}
        env:
          {_full_env(timezone)}
          {API_KEY_SECRET}: >-
            ${{{{
{key_choices}
            '' }}}}
      - name: Upload the site
        if: {_CHANGED}
        uses: {_uses("upload-artifact")}
        with:
          name: site-${{{{ matrix.project }}}}
          path: ${{{{ matrix.site }}}}
          include-hidden-files: true  # the site's .catalog-gen marker, a kept .well-known/
          retention-days: 7
      # Add your host's deploy step here, with the upload's `if:` so it runs only when this
      # folder's site changed, and the host's credentials in a secret per folder, like the key.
"""
    )


# --- cron and systemd ---------------------------------------------------------------------------


def _key_name(config: Config) -> str:
    """A file name for the project's key outside it: the project folder's name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", config.root.name) or "catalog"


def cron_key_file(config: Config) -> str:
    """Where the crontab's command reads the key (``$HOME`` is the cron user's)."""
    return f"$HOME/.config/catalog-gen/{_key_name(config)}.key"


def systemd_key_file(config: Config) -> str:
    """The file systemd hands the units as a credential (read by systemd, as root)."""
    return f"/etc/catalog-gen/{_key_name(config)}.key"


def crontab_lines(
    config: Config, command: list[str], hourly: tuple[int, int] | None = None
) -> list[str]:
    """The crontab block: the catalog's time zone (``CRON_TZ``), then the nightly run (Monday
    to Saturday) and the weekly full run on Sunday, at ``NIGHTLY_AT``; with ``hourly``, an
    hourly run in those opening hours, Monday to Friday (fresher seats).

    The key comes from a file only the cron user can read (``FRONTCORE_API_KEY_FILE``), or from
    ``frontcore.api_key_file`` when catalog.toml names one: never from the command line, which
    any user of the machine can list. ``--report -`` prints what the night changed in the
    catalog when something did: cron mails it, and nothing on a night with nothing to say.
    The two runs never start together; if a run overlaps another anyway, catalog-gen's own
    lock makes the second exit 3 without touching anything.
    """
    key = ""
    if not config.frontcore.api_key_file:
        key = f'{API_KEY_FILE_ENV}="{cron_key_file(config)}" '
    run = f"cd {shlex.quote(str(config.root))} && {key}{shlex.join(command)} build"
    minute, hour = NIGHTLY_AT[1], NIGHTLY_AT[0]
    nightly = _day_ranges(NIGHTLY_DAYS)
    lines = [
        f"CRON_TZ={config.timezone}",
        f"{minute} {hour} * * {nightly}  {run} --quiet --report - --timeout 1800",
        f"{minute} {hour} * * {WEEKLY_FULL_DAY}    {run} --full --quiet --report - --timeout 1800",
    ]
    if hourly:
        hours = f"{hourly[0]}-{hourly[1]}" if hourly[1] > hourly[0] else str(hourly[0])
        days = _day_ranges(HOURLY_DAYS)
        # No change report: cron would mail each hour's bookings; the night's report tells
        # the day once.
        lines.append(f"{minute} {hours} * * {days}  {run} --quiet --timeout 1800")
    return lines


def service_user(config: Config) -> str:
    """The user the units run as: the owner of the project folder, unless that is root
    (then a system user named catalog-gen, which the unit's header says how to make)."""
    try:
        owner = config.root.stat().st_uid
        if owner != 0:
            return pwd.getpwuid(owner).pw_name
    except (OSError, KeyError):
        pass
    return "catalog-gen"


def systemd_units(
    config: Config, command: list[str], hourly: tuple[int, int] | None = None
) -> dict[str, str]:
    """Services and timers for a nightly build and a weekly full run under systemd; with
    ``hourly``, a third timer that starts the nightly service every hour in those opening
    hours, Monday to Friday (fresher seats).

    ``command`` starts with an absolute path: systemd does not search PATH. The services run
    as ``service_user`` (never root), may write only the project folder, and get the key as
    a credential (``LoadCredential``), which systemd reads as root and hands over in a folder
    only the service can read.
    """
    executable = shlex.join(command)
    project = config.root
    user = service_user(config)
    key = systemd_key_file(config)
    writable = {project}
    site = config.output_path.resolve()
    if not site.is_relative_to(project):  # a site folder linked elsewhere (a web root)
        writable.add(site.parent)
    make_user = (
        f"# useradd --system --home-dir {project} --shell /usr/sbin/nologin {user} &&\n"
        f"# chown -R {user}: {project}\n"
        if user == "catalog-gen"
        else ""
    )
    if config.frontcore.api_key_file:
        credential = "# The key: frontcore.api_key_file in catalog.toml.\n"
        key_steps = ""
    else:
        credential = (
            f"LoadCredential=frontcore-key:{key}\nEnvironment={API_KEY_FILE_ENV}=%d/frontcore-key\n"
        )
        key_steps = f"# put the API key alone in {key} (mode 600, owned by root),\n"

    timers = "catalog-gen.timer catalog-gen-full.timer" + (
        " catalog-gen-hourly.timer" if hourly else ""
    )

    def service(description: str, options: str, extra: str = "") -> str:
        return f"""\
# Written by 'catalog-gen init --cron' (catalog-gen {__version__}).
# Install as root: copy the files in this folder to /etc/systemd/system/,
{key_steps}{make_user}# then: systemctl daemon-reload &&
# systemctl enable --now {timers}
[Unit]
Description={description}
Wants=network-online.target
After=network-online.target
{extra}
[Service]
Type=oneshot
User={user}
WorkingDirectory={project}
{credential}ExecStart={executable} build {options}--quiet --report - --timeout 1800
# catalog-gen holds its own lock: a second start while one runs exits 3 and changes nothing.
# What it may touch: the project folder (snapshots, site, build state), the network, /tmp.
UMask=0022
NoNewPrivileges=yes
CapabilityBoundingSet=
ProtectSystem=strict
ReadWritePaths={" ".join(str(path) for path in sorted(writable))}
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
"""

    def timer(description: str, calendar: str) -> str:
        at = f"{NIGHTLY_AT[0]:02}:{NIGHTLY_AT[1]:02}:00"
        return f"""\
# Written by 'catalog-gen init --cron' (catalog-gen {__version__}).
[Unit]
Description={description}

[Timer]
OnCalendar={calendar} {at} {config.timezone}
RandomizedDelaySec=10min
Persistent=true

[Install]
WantedBy=timers.target
"""

    units = {
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
    if hourly:
        hours = f"{hourly[0]:02}..{hourly[1]:02}" if hourly[1] > hourly[0] else f"{hourly[0]:02}"
        units["catalog-gen-hourly.timer"] = f"""\
# Written by 'catalog-gen init --cron --hourly {hourly[0]}-{hourly[1]}' (catalog-gen {__version__}).
# Fresher seats: the nightly build (catalog-gen.service) again every hour in opening hours.
[Unit]
Description=Hourly catalog-gen build in opening hours (fresher seats)

[Timer]
Unit=catalog-gen.service
OnCalendar=Mon..Fri *-*-* {hours}:{NIGHTLY_AT[1]:02}:00 {config.timezone}
RandomizedDelaySec=5min
# A run missed while the machine was off is not made up: the next hour's run is as fresh.
Persistent=false

[Install]
WantedBy=timers.target
"""
    return units
