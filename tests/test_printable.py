"""Text from the API reaches a person's terminal as text: never as a control sequence.

A course title (or a field name, an error body) holding ``ESC [2J`` would clear the
terminal, ``ESC ]0;…BEL`` set its title, CR LF fake a line of output, U+202E turn the rest
of the line around. The real console script is run against an emulator serving such a
record and such an error, and the bytes it writes are searched: every one is shown escaped
(``\\x1b``), and ``--json`` stays JSON that reads back as the API's text.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog_gen.printable import UNSAFE, printable, printable_json
from tests.conftest import Project, env_without_key

DAY = "2026-11-23T04:00:00+01:00"
LATER = "2026-11-23T05:00:00+01:00"
#: Clears the screen, sets the window title, fakes an error line, reverses what follows.
HOSTILE = "Kurs \x1b[2J\x1b]0;pwned\x07\r\nerror: fake line \u202eevil"
#: What a terminal would act on, as bytes.
RAW = (b"\x1b", b"\x07", b"\r", "\u202e".encode())


def run(project: Project, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The console script, its output as the bytes it wrote (no newline translation)."""
    return subprocess.run(
        [sys.executable, "-m", "catalog_gen", *args],
        cwd=project.root,
        env={**env_without_key(), **project.env()},
        capture_output=True,
        timeout=180,
    )


def assert_shown_as_text(output: bytes) -> None:
    """No byte a terminal acts on, and no line that the API's text started."""
    for raw in RAW:
        assert raw not in output, output
    assert not any(line.startswith(b"error: fake line") for line in output.split(b"\n"))


@pytest.mark.slow
def test_a_hostile_title_field_name_and_property_reach_every_line_escaped(project, sample):
    assert run(project, "fetch", "--now", DAY).returncode == 0
    first, second = sorted(sample.courses)[:2]
    course = sample.courses[first]
    course["title"] = HOSTILE
    sample.courses[second]["title"] = f"{HOSTILE} \ud800"  # cleaned: the warning shows it
    course[HOSTILE] = "a field the API added"
    # A nested property is odd data the build names; a lone surrogate is cleaned by the fetch,
    # which names the field: both by the property's key.
    course["custom_properties"] = {HOSTILE: {"nested": True}, f"{HOSTILE} 2": "\ud800"}

    fetched = run(project, "fetch", "--now", LATER)
    assert fetched.returncode == 0, fetched.stderr
    assert_shown_as_text(fetched.stdout + fetched.stderr)
    (warning,) = [line for line in fetched.stderr.splitlines() if b"lone_surrogate" in line]
    assert warning.startswith(b"warning: ")
    assert b"custom_properties.Kurs \\x1b[2J\\x1b]0;pwned\\x07\\r\\nerror: fake" in warning
    assert f"course {second} title='Kurs \\x1b[2J".encode() in warning

    diff = run(project, "diff")
    assert diff.returncode == 0, diff.stderr
    assert_shown_as_text(diff.stdout + diff.stderr)
    (changed,) = [line for line in diff.stdout.splitlines() if line.startswith(b"  ~ %d " % first)]
    assert b"Kurs \\x1b[2J\\x1b]0;pwned\\x07\\r\\nerror: fake line \\u202eevil" in changed

    as_json = run(project, "diff", "--json")
    assert_shown_as_text(as_json.stdout)
    assert b"\\u202e" in as_json.stdout  # escaped as JSON escapes, and read back whole:
    assert HOSTILE in json.loads(as_json.stdout)["courses"]["changed"][str(first)]

    built = run(project, "build", "--offline", "--now", LATER)
    assert built.returncode == 0, built.stderr
    assert_shown_as_text(built.stdout + built.stderr)
    (odd,) = [line for line in built.stderr.splitlines() if b"nested_value]" in line]
    assert odd.startswith(b"warning: ") and b"\\x1b]0;pwned\\x07" in odd


@pytest.mark.slow
def test_an_api_error_that_repeats_hostile_text_is_one_escaped_line(project):
    project.root.joinpath("catalog.toml").write_text(
        "[frontcore]\nrate_limit = 5\nmax_retries = 1\n"
    )
    assert run(project, "build", "--now", DAY).returncode == 0
    project.emulator.inject("400", times=2, path="/courses", message=HOSTILE)
    failed = run(project, "fetch", "--now", LATER)
    assert failed.returncode == 1
    assert_shown_as_text(failed.stdout + failed.stderr)
    (line,) = failed.stderr.splitlines()
    assert line.startswith(b"error: GET /courses") and b"\\x1b[2J" in line

    fallback = run(project, "build", "--offline-on-error", "--now", LATER)
    assert fallback.returncode == 0, fallback.stderr
    assert_shown_as_text(fallback.stdout + fallback.stderr)
    assert b"warning: GET /courses: HTTP 400: Kurs \\x1b[2J" in fallback.stderr

    # An error sent with status 200 is retried: -v logs each retry with the server's text.
    project.emulator.inject("error200", times=50, path="/courses", message=HOSTILE)
    retried = run(project, "-v", "fetch", "--now", LATER)
    assert retried.returncode == 1
    assert_shown_as_text(retried.stdout + retried.stderr)
    assert b"retrying in" in retried.stderr and b"\\u202eevil" in retried.stderr


@given(st.text())
def test_printable_leaves_nothing_a_terminal_acts_on_and_json_reads_back_the_same(text):
    shown = printable(text)
    assert not UNSAFE.search(shown)
    assert printable(shown) == shown  # applied twice, as a line may be, it changes nothing
    assert "\n" not in shown and "\r" not in shown
    written = printable_json(json.dumps({"title": text}, ensure_ascii=False))
    assert not UNSAFE.search(written)
    assert json.loads(written) == {"title": text}


def test_printable_escapes_controls_and_bidi_and_keeps_every_letter():
    assert printable("a\x1b[2Jb\tc\x7f\x85\x9b") == "a\\x1b[2Jb\\tc\\x7f\\x85\\x9b"
    assert printable("\u202eabc\u2066\u200f") == "\\u202eabc\\u2066\\u200f"
    kept = "Førstehjelp på arbeidsplassen – 北京 👩‍👩‍👧 \u00a0"  # ZWJ emoji, no-break space
    assert printable(kept) == kept
