"""What a run tells GitHub Actions about itself: step outputs, and the job's step summary.

Inside a workflow (``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY`` set by the runner) a build
writes its report's figures as step outputs, so the workflow can skip its deploy when no file
changed, and a few lines of Markdown to the run's summary page: what was built, and each thing
a person should look at (pages removed, files kept, odd data new tonight, a lock taken over),
or, when the night failed, why. Nobody reads a nightly job's log; the summary is on the page
the failure mail links to.

Everything written passes the key redactor; text that came from the API (odd-data lines name
records) is escaped so it shows as text, never as Markdown or HTML.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping

from catalog_gen.printable import markdown_text
from catalog_gen.redact import redact

OUTPUT_ENV = "GITHUB_OUTPUT"
SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def write_outputs(report: Mapping[str, object]) -> None:
    """The report's plain values as step outputs (``written=12``), and the whole of it as
    JSON (``report=``), when run inside GitHub Actions."""
    target = os.environ.get(OUTPUT_ENV)
    if not target:
        return
    lines = []
    for key, value in sorted(report.items()):
        if isinstance(value, bool):
            lines.append(f"{key}={str(value).lower()}")
        elif isinstance(value, int | float | str) and "\n" not in str(value):
            lines.append(f"{key}={value}")
    lines.append("report=" + json.dumps(report, ensure_ascii=False, sort_keys=True))
    _append(target, "\n".join(lines) + "\n")


def write_summary(title: str, lines: Iterable[str], *, details: Iterable[str] = ()) -> None:
    """A section of the step summary: a heading, and one list item per line (each a
    sentence to read, escaped), when run inside GitHub Actions."""
    target = os.environ.get(SUMMARY_ENV)
    if not target:
        return
    text = f"### {escape(title)}\n\n"
    text += "".join(f"- {escape(line)}\n" for line in lines)
    shown = list(details)
    if shown:
        text += "\n" + "".join(f"- {escape(line)}\n" for line in shown)
    _append(target, text + "\n")


def write_markdown(text: str) -> None:
    """Markdown made elsewhere (and escaped there: site/changes.py) to the step summary."""
    target = os.environ.get(SUMMARY_ENV)
    if target:
        _append(target, text + "\n")


def summarize_failure(command: str, message: str) -> None:
    """A night that failed says why on its summary page."""
    write_summary(f"catalog-gen {command} failed", [f"error: {message}"])


escape = markdown_text


def _append(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(redact(text))
