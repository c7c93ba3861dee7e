"""The ``catalog-gen`` command line: options in, the library's work, its result out.

Each command parses its options, calls the library (``run_fetch``, ``run_build``,
``open_preview``, the diff of two snapshots) and prints what it returns; ``init`` writes the
files scaffold.py makes, and ``--demo`` runs against the bundled emulator. Named errors
(errors.py) become one line on stderr and the documented exit code; nothing prints a traceback
unless --debug is given. Everything written to stdout and stderr while a command runs passes
one gate, the key redactor (see ``redacted_output``), whoever writes it. Every line for a person
that may repeat API text (a diff, a warning, an error, a log line) shows its control and bidi
characters escaped (printable.py); ``--json`` output escapes them as JSON does.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from catalog_gen import __version__, github
from catalog_gen.clock import run_now
from catalog_gen.config import (
    API_KEY_ENV,
    CONFIG_FILENAME,
    NOW_ENV,
    ApiAccess,
    Config,
    api_access,
    config_template,
    configured_api_key,
    find_config,
    load_config,
)
from catalog_gen.errors import CatalogGenError, ConfigError, SnapshotError, TimedOut
from catalog_gen.printable import printable, printable_json
from catalog_gen.progress import progress_for
from catalog_gen.redact import RedactingFilter, RedactingStream, redact, register_secret

if TYPE_CHECKING:  # the pipeline is imported by the commands that run it: --help stays quick
    from catalog_gen.site.changes import ChangeReport
    from catalog_gen.snapshot import Record, RecordDiff, SnapshotDiff
    from catalog_gen.source.fetch import FetchReport

log = logging.getLogger("catalog_gen")

#: A command's function, as click's decorators take and give it back.
_Command = TypeVar("_Command", bound=Callable[..., object])

#: Demo runs keep their snapshots apart so they never mix with a real catalog's history.
DEMO_SUBDIR = "demo"
DEMO_URL = "https://kurs.example.com/"
#: The demo's site.description (by site language), as a real catalog.toml would set one.
DEMO_DESCRIPTION = {
    "nb": "Finn kurs i hele landet, med datoer, kurssteder og ledige plasser, og meld deg på. "
    "En demo av catalog-gen med generert eksempeldata.",
    "en": "Find courses across Norway, with dates, venues and free seats, and book a place. "
    "A catalog-gen demo with generated sample data.",
}
DEMO_COURSES = 48
#: What demo snapshots name as their source (the emulator's port changes every run; a name that
#: does not lets a second demo run find nothing new and write no snapshot).
DEMO_SOURCE = "the bundled Frontcore emulator (catalog-gen --demo)"
INTERRUPTED = 130
#: The exit code when stdout was closed before the command said all (``diff | head``): as a
#: process killed by SIGPIPE reports it, silently.
BROKEN_PIPE = 141


class CatalogGenGroup(click.Group):
    """Turns our named errors into one line and an exit code, for every subcommand."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta["catalog_gen.command"] = name  # for _fail: which command failed
        return name, command, rest

    def invoke(self, ctx: click.Context) -> object:
        with redacted_output():
            try:
                return super().invoke(ctx)
            except CatalogGenError as exc:
                command = ctx.meta.get("catalog_gen.command", "")
                _fail(str(exc), exc.exit_code, command)
            except BrokenPipeError:  # the reader went away (diff | head): nothing to say
                _quiet_stdout()
                sys.exit(BROKEN_PIPE)
            except KeyboardInterrupt:
                command = ctx.meta.get("catalog_gen.command", "")
                _fail("interrupted; the last good snapshot is unchanged", INTERRUPTED, command)
            except (click.ClickException, click.exceptions.Exit, click.Abort):
                raise
            except Exception as exc:
                if ctx.obj and ctx.obj.get("debug"):
                    lines = traceback.format_exc().splitlines()
                    click.echo("\n".join(printable(line) for line in lines), err=True)
                message = f"internal error: {type(exc).__name__}: {exc}"
                command = ctx.meta.get("catalog_gen.command", "")
                _fail(f"{message} (run with --debug for details)", 1, command)


@contextmanager
def redacted_output() -> Iterator[None]:
    """Route stdout and stderr through the key redactor while a command runs: the one gate
    for the reports, warnings, notes, logs, tracebacks and anything a library prints."""
    register_secret(os.environ.get(API_KEY_ENV, "").strip())  # known before anything prints
    saved = sys.stdout, sys.stderr
    # A stream Python started without (``>&-``: None) stays None; print and click.echo then
    # write nothing to it, as they would without the gate.
    sys.stdout, sys.stderr = (None if s is None else RedactingStream(s) for s in saved)
    try:
        yield
    finally:
        gated = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = saved
        closed = False
        for stream in gated:
            if stream is None:
                continue
            try:
                stream.flush()
            except BrokenPipeError:
                closed = True
            except (ValueError, OSError):  # closed underneath: nothing left to say
                pass
        if closed and sys.exc_info()[0] is None:  # the reader went away: said as always
            _quiet_stdout()
            sys.exit(BROKEN_PIPE)


def _fail(message: str, code: int, command: str = "") -> NoReturn:
    _say("error", message)
    if command in ("build", "fetch"):  # a night in CI says why it failed on its summary page
        github.summarize_failure(command, message)
    sys.exit(code)


def _say(kind: str, text: str) -> None:
    """A ``warning:``, ``note:`` or ``error:`` line on stderr. Its text may repeat the API's
    (a record's field, an error body): shown printable, one line whatever it holds."""
    click.echo(f"{kind}: {printable(text)}", err=True)


def _echo_json(value: object, *, sort_keys: bool = False) -> None:
    """``value`` as one line of JSON on stdout, for programs (and safe in a terminal)."""
    click.echo(printable_json(json.dumps(value, ensure_ascii=False, sort_keys=sort_keys)))


class _LineFormatter(logging.Formatter):
    """Log records as the CLI's own lines: ``warning: …`` and ``error: …`` like every other
    warning and error, and retries and waits as plain lines. On a terminal, a line first
    clears the progress bar it interrupts (the bar redraws on its next step)."""

    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.clear = "\r\033[K" if terminal else ""

    def format(self, record: logging.LogRecord) -> str:
        text = printable(record.getMessage())  # retries repeat the server's error text
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname.lower()}: {text}"
        return self.clear + text


def _setup_logging(verbose: bool, quiet: bool, *, live: bool = False) -> None:
    """Warnings always print (a warning needs a person, --quiet or not); retries and waits
    with --verbose, or on a terminal while a run shows its progress (``live``), so a run
    against an unreachable API is never silent for the half minute its retries take."""
    terminal = sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter(terminal))
    handler.addFilter(RedactingFilter())
    log.handlers[:] = [handler]
    log.propagate = False
    show_retries = verbose or (live and terminal and not quiet)
    log.setLevel(logging.INFO if show_retries else logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


@click.group(cls=CatalogGenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="catalog-gen")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"The {CONFIG_FILENAME} to use (default: ./{CONFIG_FILENAME} if present, else defaults).",
)
@click.option("-v", "--verbose", is_flag=True, help="Also log retries and waits.")
@click.option("--debug", is_flag=True, help="Show a (redacted) traceback on internal errors.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: bool, debug: bool) -> None:
    """Build a static course-catalog website from Frontcore, politely.

    \b
    Typical use:
      catalog-gen init            start a project (writes catalog.toml)
      catalog-gen build           fetch what changed and render the site into site/
      catalog-gen build --demo    try it on the bundled sample catalog (no key needed)
      catalog-gen serve           preview on 127.0.0.1 with live reload while you edit
      catalog-gen fetch           only download the catalog into a JSON snapshot
      catalog-gen diff            what changed between the last two snapshots

    The API key is read from FRONTCORE_API_KEY, never from catalog.toml.
    Exit codes: 0 ok, 1 run failed, 2 usage or config error, 3 refused by a guard,
    130 interrupted, 141 output closed early (a pipe); diff --exit-code: 1 they differ.
    """
    ctx.ensure_object(dict)
    ctx.obj.update(config_path=config_path, debug=debug, verbose=verbose)
    _setup_logging(verbose, quiet=False)


def _config(ctx: click.Context) -> Config:
    config = load_config(find_config(ctx.obj.get("config_path")))
    register_secret(configured_api_key(config))  # also offline: a key must never be shown
    return config


def _now(config: Config, pinned: str | None) -> datetime:
    try:
        return run_now(config.timezone, pinned)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--now") from None


timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop the whole run after this long, leaving snapshot and site as they were (exit 1).",
)


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise TimedOut in the main thread after ``seconds`` (SIGALRM; POSIX)."""
    if seconds is None:
        yield
        return

    def expire(_signum: int, _frame: FrameType | None) -> NoReturn:
        raise TimedOut(
            f"stopped after --timeout {seconds:g} s; the last good snapshot and site are unchanged"
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


now_option = click.option(
    "--now",
    "pinned_now",
    metavar="ISO-DATETIME",
    envvar=NOW_ENV,
    help=f"Pin the run's clock (default: now in the catalog's time zone; also {NOW_ENV}). "
    "For tests and replays.",
)


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option(
    "--ci",
    type=click.Choice(["github"]),
    help="Also write a CI workflow: github = .github/workflows/catalog.yml (GitHub Pages).",
)
@click.option(
    "--cron",
    is_flag=True,
    help="Also print crontab lines and write systemd/catalog-gen{,-full}.{service,timer}.",
)
@click.option(
    "--project",
    "projects",
    multiple=True,
    metavar="FOLDER",
    help="With --ci github, for many accounts: a catalog in DIRECTORY/FOLDER with its own key "
    "(secret FRONTCORE_API_KEY_<FOLDER>). Repeat for each; the workflow builds each folder "
    "in a matrix job. A folder without catalog.toml is started like a new project.",
)
@click.option(
    "--hourly",
    metavar="START-END",
    help="With --ci github or --cron, for fresher seats: also build every hour from START to "
    "END (e.g. 8-17: 08:15 to 17:15 in the catalog's time zone), Monday to Friday.",
)
@click.option(
    "--install-from",
    metavar="URL",
    help="With --ci github: where the workflow installs catalog-gen from, a git URL ending "
    "in @<full commit> or a .whl/.tar.gz URL ending in #sha256=<hash> (default: where this "
    "catalog-gen was installed from).",
)
def init(
    directory: Path,
    ci: str | None,
    cron: bool,
    projects: tuple[str, ...],
    hourly: str | None,
    install_from: str | None,
) -> None:
    """Start a project in DIRECTORY: a commented catalog.toml and the folder layout.

    With --ci or --cron in an existing project, only the unattended-run files are added.
    They follow the project's catalog.toml (folders, time zone): run init again after
    changing those.

    \b
    Many accounts, one catalog per folder, one repository:
      catalog-gen init --ci github --project kurs-nord --project kurs-sor

    \b
    Fresher seats: the nightly build again every hour, 08:15 to 17:15 on weekdays:
      catalog-gen init --ci github --hourly 8-17
    """
    from catalog_gen import scaffold

    if install_from is not None and ci != "github":
        raise click.UsageError("--install-from works with --ci github")
    hours = None
    if hourly is not None:
        if not (ci or cron):
            raise click.UsageError("--hourly works with --ci github or --cron")
        try:
            hours = scaffold.opening_hours(hourly)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--hourly") from None
    install = ""
    if ci == "github":
        try:
            install = scaffold.install_source(install_from)
        except ValueError as exc:
            raise ConfigError(f"--install-from: {exc}") from None
    if projects:
        if ci != "github" or cron:
            raise click.UsageError("--project works with --ci github only (not with --cron)")
        try:
            folders = scaffold.check_projects(projects)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--project") from None
        _init_projects(directory, folders, install, hours)
        return
    config_file = directory / CONFIG_FILENAME
    if config_file.exists() and not (ci or cron):
        raise ConfigError(f"{config_file} already exists; not overwriting it")
    config = _project_config(directory)
    extra: dict[str, str] = {}
    if ci == "github":
        extra[scaffold.WORKFLOW_PATH] = scaffold.github_workflow(config, install, hours)
    if cron:
        found = shutil.which("catalog-gen")
        command = [found] if found else [sys.executable, "-m", "catalog_gen"]
        for name, text in scaffold.systemd_units(config, command, hours).items():
            extra[f"{scaffold.SYSTEMD_DIR}/{name}"] = text
    _refuse_to_overwrite(directory, extra)
    created = [] if config_file.exists() else _new_project(directory)
    created += _write_files(directory, extra)
    click.echo(f"created in {directory}: {', '.join(created)}")
    if ci == "github":
        click.echo(f"the workflow installs {install}")
    if cron:
        _echo_cron(config, command, hours)
    if not extra:
        click.echo("next: export FRONTCORE_API_KEY=... && catalog-gen build")


def _project_config(directory: Path) -> Config:
    """The settings the generated files follow: the folder's catalog.toml, or the defaults
    a new one will have, rooted in the folder."""
    config_file = directory / CONFIG_FILENAME
    if config_file.exists():
        return load_config(config_file)
    return dataclasses.replace(Config(), root=directory.resolve())


def _echo_cron(config: Config, command: list[str], hours: tuple[int, int] | None) -> None:
    from catalog_gen import scaffold

    at = f"{scaffold.NIGHTLY_AT[0]:02}:{scaffold.NIGHTLY_AT[1]:02}"
    click.echo(
        f"nightly at {at} {config.timezone} and a weekly full run with cron (crontab -e; CRON_TZ "
        "sets the zone of the lines after it: cronie honours it, Debian's cron does not, so "
        "use the systemd timers there), or with systemd (see the unit files):"
    )
    if hours:
        click.echo(
            f"and, for fresher seats, every hour from {hours[0]:02}:{scaffold.NIGHTLY_AT[1]:02} "
            f"to {hours[1]:02}:{scaffold.NIGHTLY_AT[1]:02} on weekdays (the last line; "
            "systemd: catalog-gen-hourly.timer)"
        )
    for line in scaffold.crontab_lines(config, command, hours):
        click.echo(line)
    if not config.frontcore.api_key_file:
        click.echo(
            f"put the API key alone in {scaffold.cron_key_file(config)} (chmod 600) for cron, "
            f"in {scaffold.systemd_key_file(config)} (root, chmod 600) for systemd"
        )


def _init_projects(
    directory: Path, folders: list[str], install: str, hours: tuple[int, int] | None
) -> None:
    """A repository of catalogs, one per folder and account, and their matrix workflow."""
    from catalog_gen import scaffold

    configs = [(folder, _project_config(directory / folder)) for folder in folders]
    extra = {scaffold.WORKFLOW_PATH: scaffold.github_matrix_workflow(configs, install, hours)}
    _refuse_to_overwrite(directory, extra)
    created = []
    for folder in folders:
        if not (directory / folder / CONFIG_FILENAME).exists():
            created += [f"{folder}/{name}" for name in _new_project(directory / folder)]
    created += _write_files(directory, extra)
    click.echo(f"created in {directory}: {', '.join(created)}")
    click.echo(f"the workflow installs {install}")
    click.echo("next: add one repository secret per folder (Settings > Secrets and variables):")
    for folder in folders:
        click.echo(f"  {scaffold.project_secret(folder)}  the API key of {folder}/")


def _refuse_to_overwrite(directory: Path, files: dict[str, str]) -> None:
    for name in files:
        if (directory / name).exists():
            raise ConfigError(f"{directory / name} already exists; not overwriting it")


def _write_files(directory: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    return list(files)


def _new_project(directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    created = []
    (directory / CONFIG_FILENAME).write_text(config_template(), encoding="utf-8")
    created.append(CONFIG_FILENAME)
    for folder in ("templates", "content", "static", "snapshots"):
        path = directory / folder
        if not path.exists():
            path.mkdir()
            (path / ".gitkeep").touch()
            created.append(folder + "/")
    gitignore = directory / ".gitignore"
    if not gitignore.exists():
        # What runs write, never the snapshots themselves: they may be committed (git diff).
        lines = _project_config(directory).ignore_lines()
        gitignore.write_text("\n".join(lines) + "\n", encoding="utf-8")
        created.append(".gitignore")
    return created


def run_options(*, demo_help: str, json_help: str) -> Callable[[_Command], _Command]:
    """The options ``fetch`` and ``build`` share: one definition, one meaning."""
    options = [
        click.option("--demo", is_flag=True, help=demo_help),
        click.option(
            "--demo-change",
            is_flag=True,
            help="With --demo: the sample as a night later (a course added, one deleted, a "
            "date canceled, one fully booked, a price raised), to see 'diff --demo' at work.",
        ),
        click.option(
            "--full", is_flag=True, help="Ignore the last snapshot and download everything."
        ),
        click.option(
            "--allow-shrink",
            is_flag=True,
            help="Accept a catalog that lost more courses or dates than the shrink guards allow.",
        ),
        click.option("--json", "as_json", is_flag=True, help=json_help),
        click.option("-q", "--quiet", is_flag=True, help="Print nothing on success (for cron)."),
        now_option,
        timeout_option,
    ]

    def decorate(command: _Command) -> _Command:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@cli.command()
@run_options(
    demo_help="Fetch from the bundled Frontcore emulator on 127.0.0.1: no key, no network.",
    json_help="Print the summary as JSON on stdout.",
)
@click.pass_context
def fetch(
    ctx: click.Context,
    demo: bool,
    demo_change: bool,
    full: bool,
    allow_shrink: bool,
    as_json: bool,
    quiet: bool,
    pinned_now: str | None,
    timeout: float | None,
) -> None:
    """Download the catalog into a new snapshot, fetching only what changed.

    The first run downloads everything; later runs compare with the last snapshot and fetch
    details only for new or changed courses, refresh upcoming dates (seat counts) and reuse
    venues, instructors and products until they are older than sync.reference_ttl_days.
    A run that fails or is interrupted leaves the last snapshot exactly as it was.
    """
    from catalog_gen.source.fetch import run_fetch

    _setup_logging(ctx.obj["verbose"], quiet=quiet, live=not (quiet or as_json))
    config = _config(ctx)
    now = _now(config, pinned_now)
    progress = progress_for(enabled=not (quiet or as_json))
    with time_limit(timeout), _api(config, demo, now, change=demo_change) as (run_config, access):
        report = run_fetch(
            run_config, access, now=now, full=full, allow_shrink=allow_shrink, progress=progress
        )
    for warning in report.warnings:  # even with --quiet, as build does: cron should mail these
        _say("warning", redact(warning))
    _print_report(report, as_json=as_json, quiet=quiet)


@contextmanager
def _api(
    config: Config, demo: bool, now: datetime, *, change: bool = False
) -> Iterator[tuple[Config, ApiAccess]]:
    """The config and API access for a run: the real API, or the emulator with --demo (its
    sample a night later with ``change``)."""
    if change and not demo:
        raise click.UsageError("--demo-change works with --demo")
    if not demo:
        access = api_access(config)
        register_secret(access.api_key)
        yield config, access
        return
    from catalog_gen.demo.emulator import Emulator  # only demo runs pay for it
    from catalog_gen.demo.sample import generate_catalog

    key = secrets.token_hex(16)
    register_secret(key)
    catalog = generate_catalog(DEMO_COURSES, today=now.date())
    catalog.clock = lambda: now  # the emulator and the night's edits live at --now too
    if change:
        catalog.a_night_later()
    with Emulator(catalog, api_key=key) as emulator:
        access = ApiAccess(base_url=emulator.base_url, api_key=key, source=DEMO_SOURCE)
        yield _demo_config(config), access


def _demo_config(config: Config) -> Config:
    """Demo runs keep their snapshots in a folder of their own, and publish (on paper) at a
    reserved example address with a description, so the demo shows canonical links, the
    sitemap, the feed and meta descriptions as a configured site has them."""
    site = dataclasses.replace(
        config.site,
        base_url=config.site.base_url or DEMO_URL,
        description=config.site.description or DEMO_DESCRIPTION[config.site.language],
    )
    return dataclasses.replace(
        config, snapshot_dir=str(Path(config.snapshot_dir) / DEMO_SUBDIR), site=site
    )


def _write_change_report(report: ChangeReport, target: str) -> None:
    """The night's change report to ``target``: a file (Markdown for ``.md``), or stdout
    when something changed (``-``: cron mails what a job prints)."""
    from catalog_gen.site import changes

    if target == "-":
        if report:
            click.echo(changes.as_text(report))
        return
    text = changes.as_markdown(report) if target.endswith(".md") else changes.as_text(report)
    try:
        Path(target).write_text(redact(text) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--report {target}: cannot write ({exc.strerror})") from None


def _print_report(report: FetchReport, *, as_json: bool, quiet: bool) -> None:
    if as_json:
        _echo_json(report.as_dict(), sort_keys=True)
    elif not quiet:
        click.echo(report.summary_line())


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("old", required=False)
@click.argument("new", required=False)
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit with 1 when the snapshots differ (and 0 when not); any error then exits 2.",
)
@click.option(
    "--format",
    "form",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="text: the records added, changed (with the fields) and removed; markdown: what a "
    "visitor sees changed (the change report); json: both.",
)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@click.option("--demo", is_flag=True, help="Compare the demo snapshots of 'fetch --demo'.")
@click.pass_context
def diff(
    ctx: click.Context,
    old: str | None,
    new: str | None,
    exit_code: bool,
    form: str,
    as_json: bool,
    demo: bool,
) -> None:
    """Show what changed between two snapshots.

    OLD and NEW name snapshots by folder name, sequence number (7) or position from the end
    (-1 is the newest, -2 the one before). Default: the last two snapshots.

    \b
    Exit codes with --exit-code: 0 the snapshots are the same, 1 they differ, 2 an error
    (no such snapshot, a damaged one, a bad option), as diff(1) and git diff do.
    """
    for ref in (old, new):  # -1 and -2 are positions; anything else with a dash is a typo
        if ref is not None and ref.startswith("-") and not ref[1:].isdigit():
            raise click.NoSuchOption(ref, ctx=ctx)
    try:
        differ = _diff(ctx, old, new, "json" if as_json else form, demo)
    except CatalogGenError as exc:
        if exit_code and exc.exit_code == 1:  # 1 means "they differ" here: an error is 2
            exc.exit_code = 2
        raise
    if exit_code and differ:
        ctx.exit(1)


def _diff(ctx: click.Context, old: str | None, new: str | None, form: str, demo: bool) -> bool:
    """Print the difference between two snapshots in ``form``; whether they differ."""
    from catalog_gen.site.changes import as_json, as_markdown, compare
    from catalog_gen.site.drafts import DraftRules
    from catalog_gen.snapshot import diff_snapshots
    from catalog_gen.source.store import SnapshotStore

    config = _config(ctx)
    root = config.snapshot_path / DEMO_SUBDIR if demo else config.snapshot_path
    store = SnapshotStore(root)
    names = store.names()
    if old is None and new is None:
        if len(names) < 2:
            hint = (
                "a fetch writes a new one only when the data changed; "
                "'catalog-gen build --demo --demo-change' makes one with changes"
                if names and demo
                else "a fetch writes a new one only when the data changed"
                if names
                else "run 'catalog-gen fetch'"
            )
            raise SnapshotError(f"diff needs two snapshots; {root} has {len(names)}; {hint}")
        old_name, new_name = names[-2], names[-1]
    else:
        old_name = store.resolve(old or "-2")
        new_name = store.resolve(new or "-1")
    before, after = store.load(old_name), store.load(new_name)
    changes = diff_snapshots(before, after)
    if form == "text":
        click.echo(printable(f"{old_name} → {new_name}"))
        _echo_diff("courses", changes.courses, before.courses, after.courses, _course_label)
        _echo_diff(
            "course dates", changes.coursedates, before.coursedates, after.coursedates, _date_label
        )
        return bool(changes)
    today = run_now(config.timezone, None).date()
    report = compare(
        store.stored(old_name), store.stored(new_name), DraftRules.of(config), today=today
    )
    if form == "markdown":
        click.echo(as_markdown(report), nl=False)
    else:
        _echo_json({**_diff_json(old_name, new_name, changes), "changes": as_json(report)})
    return bool(changes)


def _course_label(record: Record) -> str:
    return str(record.get("title", ""))


def _date_label(record: Record) -> str:
    return (
        f"{record.get('title', '')}, {record.get('start_at', '?')} (course {record['course_id']})"
    )


def _echo_diff(
    kind: str,
    changes: RecordDiff,
    before: Mapping[int, Record],
    after: Mapping[int, Record],
    label: Callable[[Record], str],
) -> None:
    """One line per record; ids, labels and field names are the API's text: printable."""
    click.echo(
        f"{kind}: {len(changes.added)} added, {len(changes.changed)} changed, "
        f"{len(changes.removed)} removed"
    )
    for rid in changes.added:
        click.echo(printable(f"  + {rid} {label(after[rid])}"))
    for rid, fields in changes.changed.items():
        click.echo(printable(f"  ~ {rid} {label(after[rid])}: {', '.join(fields)}"))
    for rid in changes.removed:
        click.echo(printable(f"  - {rid} {label(before[rid])}"))


def _diff_json(old: str, new: str, changes: SnapshotDiff) -> dict[str, object]:
    def part(d: RecordDiff) -> dict[str, object]:
        return {
            "added": list(d.added),
            "changed": {str(k): list(v) for k, v in d.changed.items()},
            "removed": list(d.removed),
        }

    return {
        "old": old,
        "new": new,
        "differ": bool(changes),
        "courses": part(changes.courses),
        "coursedates": part(changes.coursedates),
    }


@cli.command()
@run_options(
    demo_help="Build from the bundled emulator and sample catalog: no key, no network.",
    json_help="Print the build report as JSON on stdout.",
)
@click.option(
    "--offline", is_flag=True, help="Render the last snapshot without touching the network."
)
@click.option(
    "--offline-on-error",
    is_flag=True,
    help="If the API fails, render the last good snapshot (exit 0, with a warning).",
)
@click.option(
    "--max-age",
    type=click.FloatRange(min=0, min_open=True),
    metavar="HOURS",
    help="Refuse (exit 3) to render a snapshot older than this.",
)
@click.option(
    "--report",
    "report_to",
    metavar="FILE",
    help="Write what the fetch changed in the catalog to FILE (Markdown if it ends in .md, "
    "else text); '-' prints it on stdout only when something changed (for cron mail).",
)
@click.pass_context
def build(
    ctx: click.Context,
    demo: bool,
    demo_change: bool,
    offline: bool,
    full: bool,
    allow_shrink: bool,
    as_json: bool,
    quiet: bool,
    pinned_now: str | None,
    offline_on_error: bool,
    max_age: float | None,
    timeout: float | None,
    report_to: str | None,
) -> None:
    """Fetch what changed and render the site into site/ (site.output_dir).

    The site is assembled beside the old one and swapped in only when complete: a failing
    template or an interrupted build leaves the last good site exactly as it was. Files whose
    bytes did not change are not rewritten, so uploads send only what changed.
    """
    from catalog_gen.build import run_build
    from catalog_gen.site import changes

    if report_to == "-" and as_json:
        raise click.UsageError("--report - and --json both write to stdout; give --report FILE")
    _setup_logging(ctx.obj["verbose"], quiet=quiet, live=not (quiet or as_json))
    config = _config(ctx)
    now = _now(config, pinned_now)
    progress = progress_for(enabled=not (quiet or as_json))
    with time_limit(timeout):
        if offline:
            run_config = _demo_config(config) if demo else config
            report = run_build(
                run_config, None, now=now, full=full, progress=progress, max_age_hours=max_age
            )
        else:
            with _api(config, demo, now, change=demo_change) as (run_config, access):
                report = run_build(
                    run_config,
                    access,
                    now=now,
                    full=full,
                    allow_shrink=allow_shrink,
                    progress=progress,
                    offline_on_error=offline_on_error,
                    max_age_hours=max_age,
                )
    for warning in report.warnings:  # even with --quiet: cron should mail these
        _say("warning", warning)
    # Odd data in the catalog: every night unless --quiet, which mails only what is new.
    for line in report.new_anomaly_lines if quiet else report.anomaly_lines:
        _say("warning", line)
    if not quiet and not as_json:
        for note in report.notes:  # a choice the user may have made on purpose: not for cron
            _say("note", note)
    github.write_outputs(report.as_dict())
    github.write_summary(
        f"catalog-gen build: {report.site}/ from {report.snapshot}",
        [
            *([report.fetch.summary_line()] if report.fetch else []),
            report.summary_line(),
            *(f"warning: {warning}" for warning in report.warnings),
            *(f"odd data, new tonight: {line}" for line in report.new_anomaly_lines),
        ],
    )
    if report.changes is not None:
        github.write_markdown(changes.as_markdown(report.changes))
        if report_to:
            _write_change_report(report.changes, report_to)
    if as_json:
        _echo_json(report.as_dict(), sort_keys=True)
    elif not quiet:
        if report.fetch is not None:
            click.echo(report.fetch.summary_line())
        click.echo(report.summary_line())


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@click.option("--fetch", "fetch_first", is_flag=True, help="Fetch what changed before serving.")
@click.option("--demo", is_flag=True, help="Preview the demo site (see 'build --demo').")
@now_option
@click.pass_context
def serve(
    ctx: click.Context, port: int, fetch_first: bool, demo: bool, pinned_now: str | None
) -> None:
    """Preview the site on 127.0.0.1, rebuilding and reloading the browser as you edit.

    Builds from the last snapshot (with --fetch, fetches first), then watches templates, the
    theme, content, static files, catalog.toml and the snapshot folder. After a save, the
    pages open in the browser are rendered first and reload at once; the rest of the site is
    built behind them, as 'build --offline' builds it. A template or config error shows in
    the browser and the next good save recovers. Ctrl-C stops it.
    """
    from catalog_gen.serve import open_preview
    from catalog_gen.source.fetch import run_fetch

    _setup_logging(ctx.obj["verbose"], quiet=False)
    config = _config(ctx)
    if fetch_first:
        now = _now(config, pinned_now)
        with _api(config, demo, now) as (fetch_config, access):
            run_fetch(fetch_config, access, now=now, progress=progress_for())

    def current_config() -> Config:
        current = _config(ctx)  # catalog.toml may have changed since the last save
        return _demo_config(current) if demo else current

    def log(line: str) -> None:  # a build's warnings and errors repeat API text too
        click.echo(printable(line), err=True)

    try:
        preview = open_preview(
            current_config,
            now=lambda c: _now(c, pinned_now),
            log=log,
            port=port,
            ignore=[config.snapshot_path],  # the demo's snapshots are a folder inside it
        )
    except OSError as exc:
        raise ConfigError(  # a setting to change, like a bad config value: exit 2
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port"
        ) from None
    click.echo(f"serving {preview.url} (Ctrl-C to stop)")
    signal.signal(signal.SIGTERM, lambda *_: preview.stopping.set())
    with suppress(KeyboardInterrupt):  # Ctrl-C is how a preview ends: not an error
        preview.stopping.wait()
    preview.stop()
    click.echo("stopped", err=True)


def main() -> None:
    """Console-script entry point: every error one ``error:`` line, usage errors too (click's
    own are three lines)."""
    _no_closed_standard_streams()
    try:
        code = cli.main(prog_name="catalog-gen", standalone_mode=False)
    except click.UsageError as exc:
        where = f"; see '{exc.ctx.command_path} --help'" if exc.ctx is not None else ""
        _usage_line(f"{exc.format_message().rstrip('.')}{where}", exc.exit_code)
    except click.ClickException as exc:
        _usage_line(exc.format_message(), exc.exit_code)
    except click.exceptions.Abort:
        _usage_line("interrupted", INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


def _no_closed_standard_streams() -> None:
    """A run started with stdin, stdout or stderr closed (``2>&-``, some service managers)
    says nothing there and still ends with its own exit code. The descriptor is given
    /dev/null, so no file this run opens takes its number (a child such as Pagefind would
    write into it), and a stream Python left as None writes nowhere."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (the run's own)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115


def _usage_line(message: str, code: int) -> NoReturn:
    message = message.rstrip(".")
    click.echo(f"error: {message[:1].lower()}{message[1:]}", err=True)
    sys.exit(code)


def _quiet_stdout() -> None:
    """Nothing more can be said on a closed pipe: stop Python trying again at exit."""
    if sys.__stdout__ is None:  # Python started without one (``>&-``): nothing to stop
        return
    with suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.__stdout__.fileno())
