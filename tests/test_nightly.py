"""The nightly path as users run it: what ``init`` generates, replayed night after night.

Every local guarantee (an incremental build equals a clean one) holds only while our own
bookkeeping survives; in the field it does not. So these tests run the generated files the
way their runners run them, against the emulator on 127.0.0.1, with catalog-gen installed by
the workflow's own install step from a git commit into an environment that cannot see this
checkout:

- **GitHub Actions** (tests/actions.py): each night a fresh clone of the committed files plus
  only the cached paths, the workflow's own build command and environment (Sunday's
  ``FULL=yes`` from the schedule expression), its outputs and upload and deploy conditions;
  courses deleted and deactivated, dates canceled and added, a template edit, a manual run
  with nothing new, a night the API is down, a night the cache was evicted.
- **cron**: one folder kept between nights, the printed command lines run by ``/bin/sh`` in
  cron's environment, the key from the file the lines name, drift made by hand in site/.
- **the multi-account matrix**: a job per folder, each with its own account and cache.

Each night the uploaded site (and site/) must equal a clean build of the same snapshot at the
same moment, made in a fresh folder by the same installed catalog-gen; the deploy runs exactly
when the uploaded site differs from what was deployed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import markdown
import pytest
import yaml
from bs4 import BeautifulSoup

from catalog_gen.demo.sample import SampleCatalog, generate_catalog
from tests.actions import Caches, Runner
from tests.installed import check_isolated, empty_environment, git, offline_env, source_commit

#: The long matrices and whole-tool runs: `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = date(2026, 11, 23)
KEY = "fc-nightly-key-5Rk2Lq8ZpW4mVb8N"
COURSES = 24
TOML = '[site]\nbase_url = "https://kurs.example.com/"\ntitle = "Kurs om natten"\n'


def night(day: int, hour: int = 3, minute: int = 15) -> datetime:
    """Day ``day`` of the replay (0 = Monday 23 November 2026), at 03:15 in Oslo."""
    return datetime.combine(MONDAY + timedelta(days=day), datetime.min.time(), OSLO).replace(
        hour=hour, minute=minute
    )


# --- catalog-gen, installed as the workflow installs it ---------------------------------------


@dataclass(frozen=True)
class Installed:
    """catalog-gen installed from a git commit into an environment of its own."""

    bin: Path
    #: The workflow's install step, as the generated YAML has it (and as it was run).
    install: str

    def env(self, **extra: str) -> dict[str, str]:
        return {**offline_env(self.bin), **extra}

    def run(self, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin / "catalog-gen"), *args], cwd=cwd, env=self.env(**env),
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """The source as a git commit; a workflow written for it; that workflow's install step
    run as written (bash, ``python`` the new environment's) with pip kept offline. The URL
    names the host (``file://localhost/…``): pip before 23.3 refuses ``git+file:///…``."""
    root = tmp_path_factory.mktemp("installed")
    source, commit = source_commit(root / "catalog-gen")
    bin_folder = empty_environment(root / "venv")
    draft = root / "draft"
    written = subprocess.run(
        [str(Path(shutil.which("python") or "python")), "-m", "catalog_gen", "init",
         "--ci", "github", "--install-from", f"git+file://localhost{source}@{commit}", str(draft)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    install = install_step(load(draft / ".github/workflows/catalog.yml"))
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", install],
        cwd=root, env=offline_env(bin_folder), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    check_isolated(bin_folder, root)
    return Installed(bin_folder, install)


def shown(markdown_text: str) -> str:
    """The step summary as GitHub shows it: the Markdown rendered, as text."""
    html = markdown.markdown(markdown_text)
    return BeautifulSoup(html, "html5lib").get_text()


def load(workflow: Path) -> dict:
    data = yaml.safe_load(workflow.read_text())
    data["on"] = data.pop(True)  # YAML 1.1 reads the key "on" as true
    return data


def install_step(workflow: dict) -> str:
    return next(s["run"] for s in workflow["jobs"]["build"]["steps"] if "pip install" in str(s))


# --- a repository with a catalog, and its account ------------------------------------------------


@dataclass
class Account:
    """A Frontcore account (the emulator) whose catalog changes from night to night."""

    sample: SampleCatalog
    url: str
    now: datetime = field(default_factory=lambda: night(0))

    def at(self, moment: datetime) -> None:
        self.now = moment
        self.sample.clock = lambda: self.now

    def cancel(self, date_id: int) -> None:
        record = self.sample.coursedates[date_id]
        record["status"] = {"id": 3, "idType": 2, "title": "Avlyst"}
        record["updated_at"] = self.sample._now_stamp()

    def upcoming(self, count: int, *, skip: set[int] = frozenset()) -> list[int]:
        """Ids of dates of published courses that start after the replay's last night."""
        found = []
        for did, record in sorted(self.sample.coursedates.items()):
            course = self.sample.courses.get(record["course_id"])
            if not course or record["course_id"] in skip or record.get("deleted_at"):
                continue
            if (record.get("status") or {}).get("id") == 2 and str(
                record.get("start_at", "")
            ) > "2026-12-10":
                found.append(did)
        return found[:count]


@pytest.fixture
def account(emulator_for) -> Account:
    sample = generate_catalog(COURSES, today=MONDAY)
    emulator = emulator_for(sample, api_key=KEY)
    made = Account(sample, emulator.base_url)
    made.at(night(0))
    return made


def new_repository(folder: Path, installed: Installed, *init_args: str, toml: str = TOML) -> Path:
    """A git repository holding a catalog project, made with the installed catalog-gen: init,
    settings, the unattended files ``init_args`` ask for; everything committed."""
    folder.mkdir(parents=True)
    assert installed.run(folder, "init", ".").returncode == 0
    (folder / "catalog.toml").write_text(toml)
    (folder / "templates" / "course.html").write_text(
        '{% extends "!theme/course.html" %}\n'
        '{% block main %}{{ super() }}<aside class="kontakt">Ring oss</aside>'
        "{% endblock %}\n"
    )
    if init_args:
        made = installed.run(folder, "init", *init_args, ".")
        assert made.returncode == 0, made.stderr
    git(folder, "init", "-q", "-b", "main")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "a catalog")
    return folder


def commit(repository: Path, message: str) -> None:
    git(repository, "commit", "-q", "-am", message)


def files(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` by relative path (hidden ones too), links followed."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def clean_build(
    installed: Installed,
    repository: Path,
    project: Path,
    moment: datetime,
    scratch: Path,
    *,
    folder: str = "",
) -> dict[str, bytes]:
    """What a clean build makes: the committed files, the snapshot folder as the night left
    it in ``project``, nothing else; ``build --offline`` at the same moment by the same
    catalog-gen. ``folder``: the project's folder in the repository (many accounts)."""
    shutil.rmtree(scratch, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(repository), str(scratch)], check=True)
    inside = scratch / folder
    shutil.copytree(project / "snapshots", inside / "snapshots", dirs_exist_ok=True)
    (inside / "snapshots" / ".lock").unlink(missing_ok=True)
    moment_text = moment.isoformat()
    made = installed.run(inside, "build", "--offline", "--quiet", CATALOG_GEN_NOW=moment_text)
    assert made.returncode == 0, made.stderr
    return files(inside / "site")


# --- GitHub Actions -----------------------------------------------------------------------------


@dataclass
class Replay:
    """Nights of the generated workflow: the runner, the account, what was deployed."""

    runner: Runner
    account: Account
    repository: Path
    installed: Installed
    scratch: Path
    deployed: dict[str, bytes] | None = None
    reports: list[dict] = field(default_factory=list)

    def night(self, moment: datetime, *, event: str = "schedule", api_down: bool = False):
        self.account.at(moment)
        schedules = [s["cron"] for s in self.runner.workflow["on"]["schedule"]]
        sunday = moment.weekday() == 6
        schedule = (schedules[1] if sunday else schedules[0]) if event == "schedule" else ""
        url = "http://127.0.0.1:9/v2" if api_down else self.account.url
        self.runner.env.update(CATALOG_GEN_NOW=moment.isoformat(), FRONTCORE_API_URL=url)
        run = self.runner.run(event=event, schedule=schedule)
        if not run.succeeded:
            assert not run.deployed and run.uploaded is None and not run.saved
            return run, None
        report = json.loads(run.outputs["report"])
        self.reports.append(report)
        clean = clean_build(
            self.installed, self.repository, run.workspace, moment, self.scratch / "clean"
        )
        assert files(run.workspace / "site") == clean, "site/ is not a clean build's"
        changed = self.deployed != clean
        if run.uploaded is not None:
            assert files(run.uploaded) == clean, "the upload is not a clean build's"
        if event != "workflow_dispatch":  # by hand: deployed whatever changed
            assert run.deployed == changed, "deployed when nothing changed, or not when it did"
        if run.deployed:
            self.deployed = files(run.uploaded)
        return run, report


@pytest.fixture
def replay(installed, account, tmp_path) -> Replay:
    repository = new_repository(tmp_path / "repository", installed, "--ci", "github")
    workflow = load(repository / ".github/workflows/catalog.yml")
    runner = Runner(
        workflow,
        repository,
        tmp_path / "runner",
        install=installed.install,
        env=installed.env(HOME=str(tmp_path / "home")),
        secrets={"FRONTCORE_API_KEY": KEY},
    )
    return Replay(runner, account, repository, installed, tmp_path)


def test_the_workflow_installs_the_catalog_gen_that_wrote_it(installed, tmp_path):
    """The installed catalog-gen, asked to write a workflow, names the very commit it was
    installed from: a workflow installs what wrote it, and a source that exists."""
    again = installed.run(tmp_path, "init", "--ci", "github", str(tmp_path / "p"))
    assert again.returncode == 0, again.stderr
    step = install_step(load(tmp_path / "p/.github/workflows/catalog.yml"))
    assert step == installed.install
    assert re.fullmatch(r'python -m pip install "catalog-gen @ git\+file://\S+@[0-9a-f]{40}"', step)


def test_a_week_of_nights_each_uploads_a_clean_build_and_deploys_exactly_when_it_changed(
    replay, account
):
    sample = account.sample
    ids = sorted(sample.courses)

    # Monday: the first night, no cache; one course has odd data (a blank title).
    sample.change_course(ids[10], title="   ")
    run, monday = replay.night(night(0))
    assert run.restored is None and run.deployed
    assert monday["new_anomalies"] > 0  # the sample's odd data, told once
    assert "catalog-gen build: site/" in shown(run.summary)
    assert "[course.title_blank]: course" in shown(run.summary)

    # Tuesday: three courses deleted, one deactivated, two dates canceled.
    account.at(night(1))
    gone = ids[:3]
    for course_id in gone:
        sample.remove_course(course_id)
    sample.change_course(ids[3], is_active=False)
    for date_id in account.upcoming(2, skip=set(gone)):
        account.cancel(date_id)
    run, tuesday = replay.night(night(1))
    assert run.restored and run.deployed
    for course_id in [*gone, ids[3]]:
        assert not [n for n in files(run.uploaded) if n.endswith(f"-{course_id}/index.html")]
    assert tuesday["new_anomalies"] == 0  # the same odd data as Monday: not new again
    removed = [w for w in tuesday["warnings"] if w.startswith("removed ")]
    assert len(removed) == 1 and "pages the site no longer has" in removed[0]
    assert removed[0] in shown(run.summary)
    assert "Courses no longer on the site (4)" in shown(run.summary)  # the change report

    # Wednesday: a course with new dates; the cache was evicted (a week unused, say).
    replay.runner.caches.evict()
    account.at(night(2))
    sample.add_course("Nytt kurs i akvarell", dates=3)
    run, _ = replay.night(night(2))
    assert run.restored is None and run.deployed

    # Thursday: the course template is edited and committed; the cache is back.
    template = replay.repository / "templates" / "course.html"
    template.write_text(template.read_text().replace("Ring oss", "Ring oss i dag"))
    commit(replay.repository, "the course page says when to call")
    run, _ = replay.night(night(3))
    assert run.restored and run.deployed
    assert b"Ring oss i dag" in files(run.uploaded)[next(
        n for n in files(run.uploaded) if n.startswith("kurs/") and n.endswith("/index.html")
    )]  # fmt: skip

    # Friday: nothing changed upstream, a day later; then a push an hour on (a README edit):
    # nothing to deploy. A run started by hand deploys anyway (it repairs a failed deploy).
    replay.night(night(4))
    (replay.repository / "README.md").write_text("Kurs om natten\n")
    git(replay.repository, "add", "README.md")
    commit(replay.repository, "a readme")
    run, friday = replay.night(night(4, hour=4), event="push")
    assert friday["written"] == 0 and friday["removed"] == 0
    assert run.uploaded is None and not run.deployed
    run, _ = replay.night(night(4, hour=5), event="workflow_dispatch")
    assert run.deployed and files(run.uploaded) == replay.deployed

    # Saturday: the API is down. The job fails, says why, saves no cache, deploys nothing.
    run, _ = replay.night(night(5), api_down=True)
    assert not run.succeeded
    assert "catalog-gen build failed" in shown(run.summary)
    assert "nothing was published" in shown(run.summary)

    # Sunday: the weekly schedule runs with FULL=yes; a course went upstream meanwhile.
    account.at(night(6))
    sample.remove_course(ids[5])
    run, sunday = replay.night(night(6))
    assert sunday["fetch"]["mode"] == "full" and run.deployed

    # Monday again: an ordinary night after the full one.
    run, _ = replay.night(night(7))
    assert run.restored


def test_a_project_with_its_own_folders_caches_and_uploads_them(installed, account, tmp_path):
    """site.output_dir = "public", snapshot_dir = "data": the workflow caches and uploads
    those, and nights stay incremental (the state and model cache come back)."""
    toml = 'snapshot_dir = "data"\n' + TOML + 'output_dir = "public"\n'
    repository = new_repository(tmp_path / "repository", installed, "--ci", "github", toml=toml)
    workflow = load(repository / ".github/workflows/catalog.yml")
    runner = Runner(
        workflow, repository, tmp_path / "runner", install=installed.install,
        env=installed.env(HOME=str(tmp_path / "home")), secrets={"FRONTCORE_API_KEY": KEY},
    )  # fmt: skip
    for day in (0, 1):
        account.at(night(day))
        account.sample.change_course(sorted(account.sample.courses)[day], text_lead=f"Dag {day}")
        runner.env.update(CATALOG_GEN_NOW=night(day).isoformat(), FRONTCORE_API_URL=account.url)
        run = runner.run(schedule="15 2 * * 1-6")
        assert run.succeeded, run.log
        assert (run.uploaded / "index.html").is_file() and (run.workspace / "data").is_dir()
        beside = sorted(p.name for p in run.workspace.iterdir() if p.name.startswith(".public."))
        assert beside[:2] == [".public.build-cache", ".public.build-state.json"]
    report = json.loads(run.outputs["report"])
    assert run.restored and 0 < report["rendered"] < report["pages"]  # not a cold render


# --- cron ---------------------------------------------------------------------------------------


def test_cron_nights_in_one_folder_converge_and_the_weekly_run_repairs_drift(
    installed, account, tmp_path
):
    """The printed crontab, run by /bin/sh as cron runs it: the line for the night's
    weekday (in the zone CRON_TZ names), the key from the file the line names. Drift made
    by hand in site/: a stray file, a removed page and an edited one are repaired on the
    next ordinary night; a page edited with its mtime put back only by Sunday's --full."""
    project = new_repository(tmp_path / "project", installed)
    printed = installed.run(project, "init", "--cron", ".")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    zone = next(line for line in lines if line.startswith("CRON_TZ=")).split("=", 1)[1]
    entries = [line for line in lines if re.match(r"\d+ \d+ \* \* ", line)]
    home = tmp_path / "home"
    key_file = re.search(r'FRONTCORE_API_KEY_FILE="\$HOME/([^"]+)"', entries[0]).group(1)
    (home / key_file).parent.mkdir(parents=True)
    (home / key_file).write_text(KEY + "\n")
    (home / key_file).chmod(0o600)

    def cron(moment: datetime) -> subprocess.CompletedProcess:
        local = moment.astimezone(ZoneInfo(zone))
        weekday = (local.weekday() + 1) % 7  # cron counts from Sunday
        (entry,) = [e for e in entries if _matches_day(e.split()[4], weekday)]
        command = entry.split(None, 5)[5]
        account.at(moment)
        return subprocess.run(
            ["/bin/sh", "-c", command],
            env={"HOME": str(home), "LOGNAME": "catalog", "SHELL": "/bin/sh",
                 "PATH": "/usr/bin:/bin", "CATALOG_GEN_NOW": moment.isoformat(),
                 "FRONTCORE_API_URL": account.url},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    def converged(moment: datetime) -> None:
        assert files(project / "site") == clean_build(
            installed, project, project, moment, tmp_path / "clean"
        )

    site = project / "site"
    account.sample.change_course(sorted(account.sample.courses)[10], title="   ")
    mail = cron(night(0))
    assert mail.returncode == 0, mail.stderr
    assert "[course.title_blank]" in mail.stderr  # odd data, told once
    assert "new courses" in mail.stdout.splitlines()[0]  # the night's report (--report -)
    converged(night(0))

    mail = cron(night(1))  # nothing new: cron mails nothing
    assert (mail.returncode, mail.stdout, mail.stderr) == (0, "", "")
    converged(night(1))

    # Drift by hand that a stat shows: the next ordinary night repairs it.
    (site / "stray.html").write_text("not ours")
    page = next(site.glob("kurs/*/index.html"))
    page.unlink()
    other = sorted(site.glob("kurs/*/index.html"))[-1]
    other.write_text(other.read_text() + "<!-- edited -->")
    gone = sorted(account.sample.courses)[0]
    account.sample.remove_course(gone)
    mail = cron(night(2))
    assert mail.returncode == 0, mail.stderr
    assert f"course {gone}" in mail.stdout  # the report names the course that went
    assert "warning: removed 1 file from site/ that catalog-gen did not make: stray.html" in (
        mail.stderr
    )
    assert re.search(
        rf"warning: removed \d+ pages? the site no longer has: .*-{gone}/", mail.stderr
    )
    converged(night(2))

    # Drift no stat shows: a page edited in place with its mtime put back.
    edited = sorted(site.glob("kurs/*/index.html"))[1]
    found = edited.stat()
    edited.write_bytes(edited.read_bytes().replace(b"<h1", b"<H1", 1))
    os.utime(edited, ns=(found.st_atime_ns, found.st_mtime_ns))
    for day in (3, 4, 5):  # Thursday to Saturday: ordinary nights
        assert cron(night(day)).returncode == 0
    assert b"<H1" in edited.read_bytes()  # what docs/site.md says an ordinary night misses
    mail = cron(night(6))  # Sunday: the --full line
    assert mail.returncode == 0, mail.stderr
    assert b"<H1" not in edited.read_bytes()
    converged(night(6))


def _matches_day(field_text: str, weekday: int) -> bool:
    """Whether cron's day-of-week field (``1-6``, ``0``, ``0,2-6``) holds ``weekday``."""
    for part in field_text.split(","):
        low, _, high = part.partition("-")
        if int(low) <= weekday <= int(high or low):
            return True
    return False


# --- many accounts ------------------------------------------------------------------------------


def test_the_matrix_builds_each_folder_from_its_own_account_and_cache(
    installed, emulator_for, tmp_path
):
    accounts = {}
    for folder, seed_courses in (("kurs-nord", 12), ("kurs-sor", 16)):
        sample = generate_catalog(seed_courses, today=MONDAY)
        key = f"fc-{folder}-key-{seed_courses}xLr9ZpW4mVb8N"
        emulator = emulator_for(sample, api_key=key)
        accounts[folder] = (Account(sample, emulator.base_url), key)
    repository = tmp_path / "agency"
    repository.mkdir()
    made = installed.run(
        repository, "init", "--ci", "github", "--project", "kurs-nord", "--project", "kurs-sor", "."
    )
    assert made.returncode == 0, made.stderr
    for folder in accounts:
        (repository / folder / "catalog.toml").write_text(TOML)
    git(repository, "init", "-q", "-b", "main")
    git(repository, "add", "-A")
    git(repository, "commit", "-q", "-m", "two catalogs")
    workflow = load(repository / ".github/workflows/catalog.yml")
    secrets = {
        f"FRONTCORE_API_KEY_{f.upper().replace('-', '_')}": k for f, (_, k) in accounts.items()
    }
    caches = Caches(tmp_path / "caches")
    uploaded: dict[str, dict[str, bytes]] = {}
    for day in (0, 1, 6):
        moment = night(day)
        if day == 1:
            north = accounts["kurs-nord"][0]
            north.at(moment)
            north.sample.remove_course(sorted(north.sample.courses)[0])
        for entry in workflow["jobs"]["build"]["strategy"]["matrix"]["include"]:
            folder = entry["project"]
            account_here, _ = accounts[folder]
            account_here.at(moment)
            runner = Runner(
                workflow, repository, tmp_path / f"runner-{folder}-{day}",
                install=installed.install, caches=caches,
                env=installed.env(
                    HOME=str(tmp_path / "home"), CATALOG_GEN_NOW=moment.isoformat(),
                    FRONTCORE_API_URL=account_here.url,
                ),
                secrets=secrets,
            )  # fmt: skip
            schedules = [s["cron"] for s in workflow["on"]["schedule"]]
            run = runner.run(schedule=schedules[1] if day == 6 else schedules[0], matrix=entry)
            assert run.succeeded, run.log
            if day == 0:
                assert run.restored is None
            else:  # its own cache, never the other folder's
                assert run.restored.startswith(f"catalog/{folder}/")
            clean = clean_build(
                installed, repository, run.workspace / folder, moment, tmp_path / "clean",
                folder=folder,
            )  # fmt: skip
            assert files(run.workspace / folder / "site") == clean
            assert (run.uploaded is not None) == (clean != uploaded.get(folder))
            if run.uploaded is not None:  # uploaded exactly when it changed, as a clean build
                assert files(run.uploaded) == clean
                assert (run.uploaded / ".catalog-gen").is_file()  # hidden files uploaded too
                uploaded[folder] = clean
