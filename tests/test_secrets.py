"""The API key never leaves the process: through no channel, in no encoding, onto no disk.

What leaves catalog-gen: stdout (the human and the JSON report), stderr (warnings, notes,
logs, --debug tracebacks), ``$GITHUB_OUTPUT``, the preview's pages (tests/test_serve.py) and
files on disk (snapshots, the site, the build state). A misbehaving API is made to repeat the
key in the forms a leak takes (raw, HTML-escaped, URL-encoded, base64) through an error, a
warning and a record value; then every channel and every file is searched for every form.

The forms searched for are listed here, independently of ``catalog_gen.redact``: a form the
redactor forgets is a form these tests find.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import logging
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import markupsafe
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog_gen import build as build_module
from catalog_gen.build import BuildReport
from catalog_gen.cli import cli
from catalog_gen.errors import BuildError
from catalog_gen.redact import MASK, redact
from tests.conftest import Project, run_cli

#: Every character that an encoding changes: &<>"' for HTML, /+= for URLs, ' and " for repr
#: and JSON. Long enough for base64 to hold whole groups of it at every offset.
KEY = "fc&Lr9<Zp>W4\"mVb8N'7Q2x+k/T=s"
DAY = "2026-11-23T04:00:00+01:00"


def forms_of(secret: str) -> dict[str, str]:
    """The shapes a leaked key takes, by name."""
    data = secret.encode()
    return {
        "raw": secret,
        "raw, cut short": secret[:12],
        "HTML-escaped": html.escape(secret),
        "HTML-escaped (Jinja)": str(markupsafe.escape(secret)),
        "HTML-escaped (XML)": html.escape(secret).replace("&#x27;", "&apos;"),
        "URL-encoded": quote(secret, safe=""),
        "URL-encoded (form)": quote_plus(secret),
        "JSON string": json.dumps(secret)[1:-1],
        "Python repr": repr(secret)[1:-1],
        "base64": base64.b64encode(data).decode().rstrip("="),
        "base64 (URL-safe)": base64.urlsafe_b64encode(data).decode().rstrip("="),
        # Inside a longer base64 text (a Basic auth header, say): the groups that hold only
        # bytes of the key, at another alignment.
        "base64 after 'u:'": base64.b64encode(b"u:" + data).decode()[4 : (2 + len(data)) // 3 * 4],
    }


FORMS = forms_of(KEY)
#: What the misbehaving API says back: the key in the four forms a leak takes.
ECHO = " ".join(FORMS[name] for name in ("raw", "HTML-escaped", "URL-encoded", "base64"))


def leaked(text: str | bytes) -> list[str]:
    """The names of the key's forms found in ``text``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [name for name, form in FORMS.items() if form in text]


def assert_no_leak(root: Path, *results, outputs: tuple[Path, ...] = ()) -> None:
    """No form of the key on stdout or stderr of any result, nor in any file below ``root``."""
    for result in results:
        assert leaked(result.stdout) == [], result.stdout
        assert leaked(result.stderr) == [], result.stderr
    for path in [path for path in root.rglob("*") if path.is_file()] + list(outputs):
        assert leaked(path.read_bytes()) == [], path


@pytest.fixture
def keyed(tmp_path, emulator_for, sample) -> Project:
    """A project whose emulator expects KEY; one retry, so faults fail quickly."""
    emulator = emulator_for(sample, api_key=KEY)
    (tmp_path / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\nmax_retries = 1\n")
    return Project(tmp_path, emulator)


def run(project: Project, *args: str, **env: str):
    return run_cli(project.root, *args, env={**project.env(KEY), **env})


# -- end to end: the real console script against a misbehaving API ------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["400", "error200"])
def test_an_api_error_that_repeats_the_key_reaches_no_channel_and_no_file(keyed, fault):
    first = run(keyed, "build", "--now", DAY)
    assert first.returncode == 0, first.stderr
    keyed.emulator.inject(fault, times=50, path="/courses", message=f"bad request: {ECHO}")
    outputs = keyed.root.parent / f"{keyed.root.name}-github-output"

    summary = keyed.root.parent / f"{keyed.root.name}-github-summary"
    fallback = run(
        keyed, "-v", "--debug", "build", "--offline-on-error", "--json", "--now", DAY,
        GITHUB_OUTPUT=str(outputs), GITHUB_STEP_SUMMARY=str(summary),
    )  # fmt: skip
    assert fallback.returncode == 0, fallback.stderr
    report = json.loads(fallback.stdout)
    (warning,) = report["warnings"]
    assert "rendered the last good snapshot" in warning and MASK in warning
    human = run(keyed, "build", "--offline-on-error", "--now", DAY)
    assert human.returncode == 0 and "warning: " in human.stderr and MASK in human.stderr
    failing = run(keyed, "--debug", "build", "--now", DAY, GITHUB_STEP_SUMMARY=str(summary))
    assert failing.returncode == 1 and MASK in failing.stderr
    assert "catalog-gen build failed" in summary.read_text()  # the night says why, masked
    fetch = run(keyed, "-v", "fetch", "--json", "--now", DAY)
    assert fetch.returncode == 1

    assert_no_leak(keyed.root, first, fallback, human, failing, fetch, outputs=(outputs, summary))


@pytest.mark.slow
def test_a_record_value_that_repeats_the_key_in_a_warning_reaches_no_channel(keyed, sample):
    """An id no client can use is left out with a warning that shows it: masked."""
    assert run(keyed, "build", "--now", DAY).returncode == 0
    sample.courses[sorted(sample.courses)[0]]["id"] = ECHO  # an id no client can use
    outputs = keyed.root.parent / f"{keyed.root.name}-github-output"
    summary = keyed.root.parent / f"{keyed.root.name}-github-summary"

    fallback = run(
        keyed, "build", "--offline-on-error", "--json", "--now", DAY,
        GITHUB_OUTPUT=str(outputs), GITHUB_STEP_SUMMARY=str(summary),
    )  # fmt: skip
    assert fallback.returncode == 0, fallback.stderr
    warnings = json.loads(fallback.stdout)["warnings"]
    (warning,) = [w for w in warnings if "[record.id_unusable]" in w]
    assert MASK in warning
    assert "record" in summary.read_text()  # the odd data, new tonight, is on the summary too

    assert_no_leak(keyed.root, fallback, outputs=(outputs, summary))


@pytest.mark.slow
def test_a_record_value_that_repeats_the_key_reaches_neither_the_site_nor_a_channel(keyed, sample):
    assert run(keyed, "build", "--now", DAY).returncode == 0
    sample.change_course(sorted(sample.courses)[0], title=f"Kurs {ECHO}")

    result = run(keyed, "build", "--json", "--now", DAY)
    # Refused by the site check, or published with the value scrubbed at the API boundary.
    assert result.returncode in (0, 1), result.stderr
    assert_no_leak(keyed.root / "site", result)


@pytest.mark.slow
def test_a_record_value_that_repeats_the_key_never_reaches_a_snapshot(keyed, sample):
    assert run(keyed, "build", "--now", DAY).returncode == 0
    sample.change_course(sorted(sample.courses)[0], title=f"Kurs {ECHO}")
    result = run(keyed, "fetch", "--now", DAY)
    assert result.returncode == 0, result.stderr
    assert_no_leak(keyed.root, result)


# -- the gate itself: every write to stdout and stderr, whatever writes it ------------------------


def noisy_build(*args, **kwargs) -> BuildReport:
    """A build that says the key in every way a Python program can say something."""
    print(f"print: {ECHO}")
    print(f"print to stderr: {ECHO}", file=sys.stderr)
    sys.stdout.write(f"write: {FORMS['raw'][:6]}")  # a key split across writes
    sys.stdout.write(f"{FORMS['raw'][6:]}\n")
    logging.getLogger("catalog_gen.build").warning("log: %s", ECHO)
    return BuildReport(
        snapshot="0001", site="site", pages=1, files=1, written=1, unchanged=0, removed=0,
        seconds=0.1, warnings=(f"warning: {ECHO}",), notes=(f"note: {ECHO}",),
    )  # fmt: skip


def failing_build(*args, **kwargs) -> BuildReport:
    raise RuntimeError(f"internal: {ECHO}")


@pytest.mark.parametrize("as_json", [False, True])
def test_every_write_to_stdout_and_stderr_passes_the_redactor(tmp_path, monkeypatch, as_json):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(build_module, "run_build", noisy_build)
    outputs = tmp_path / "github-output"
    env = {"FRONTCORE_API_KEY": KEY, "GITHUB_OUTPUT": str(outputs)}
    args = ["-v", "build", "--offline", *(["--json"] if as_json else [])]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.count(MASK) >= 3 and result.stderr.count(MASK) >= 3
    if as_json:
        report = json.loads(result.stdout.splitlines()[-1])
        assert MASK in report["warnings"][0] and MASK in report["notes"][0]
    assert_no_leak(tmp_path, result, outputs=(outputs,))


def test_a_debug_traceback_passes_the_redactor(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(build_module, "run_build", failing_build)
    result = CliRunner().invoke(
        cli, ["--debug", "build", "--offline"], env={"FRONTCORE_API_KEY": KEY}
    )
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "internal error: RuntimeError" in result.stderr
    assert_no_leak(tmp_path, result)


# -- the redactor's forms ----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=16, max_size=64)
)
def test_the_redactor_masks_every_form_of_any_key(secret):
    for name, form in forms_of(secret).items():
        text = f"before {form} after"
        assert form not in redact(text, secrets=[secret]), name
    basic = base64.b64encode(b"user:" + secret.encode()).decode()
    assert MASK in redact(f"Authorization: Basic {basic}", secrets=[secret])


def test_the_redactor_leaves_other_text_alone():
    text = "GET /courses: HTTP 400: bad request; rendered the last good snapshot instead"
    assert redact(text, secrets=[KEY]) == text


# -- the site check: every build, every encoded form ---------------------------------------------

HOME = '{{% extends "!theme/home.html" %}}\n{{% block title %}}Velkommen {text}{{% endblock %}}\n'


def build_with_home_saying(project: Project, text: str, *args: str, key: str | None = KEY):
    """A good build, then the home page template made to say ``text``, then build ``args``."""
    assert run(project, "build", "--now", DAY).returncode == 0
    before = {p: p.read_bytes() for p in (project.root / "site").rglob("*") if p.is_file()}
    (project.root / "templates").mkdir(exist_ok=True)
    (project.root / "templates" / "home.html").write_text(HOME.format(text=text))
    result = run_cli(project.root, "build", "--now", DAY, *args, env=project.env(key))
    after = {p: p.read_bytes() for p in (project.root / "site").rglob("*") if p.is_file()}
    return result, before, after


@pytest.mark.slow
@pytest.mark.parametrize(
    "form", ["raw", "HTML-escaped (Jinja)", "URL-encoded", "JSON string", "base64"]
)
def test_an_offline_build_refuses_a_site_that_holds_the_key_in_any_form(keyed, form):
    result, before, after = build_with_home_saying(keyed, FORMS[form], "--offline")
    assert result.returncode == 1, result.stderr
    assert "the API key appears in the rendered site (index.html)" in result.stderr
    assert after == before  # nothing was published
    assert_no_leak(keyed.root / "site", result)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["online", "offline, key in a file"])
def test_every_build_that_knows_a_key_checks_the_site(keyed, mode):
    if mode == "online":
        result, before, after = build_with_home_saying(keyed, FORMS["HTML-escaped"])
    else:
        (keyed.root / "secrets").mkdir()
        (keyed.root / "secrets" / "frontcore-key").write_text(KEY + "\n")
        with (keyed.root / "catalog.toml").open("a") as config:
            config.write('api_key_file = "secrets/frontcore-key"\n')
        result, before, after = build_with_home_saying(
            keyed, FORMS["HTML-escaped"], "--offline", key=None
        )
    assert result.returncode == 1, result.stderr
    assert "the API key appears in the rendered site" in result.stderr
    assert after == before
    assert_no_leak(keyed.root / "site", result)


# -- the key in any spelling (a hex key: its case can change) -------------------------------------

HEX = "3f9a0c7be14d52a8f06b9e1d7c24a5f8"


def spellings(secret: str) -> dict[str, str]:
    """Spellings a hex key takes that the encoded forms above do not: another case, percent-
    encoded in whole (lower-case hex) or in part."""
    return {
        "upper case": secret.upper(),
        "percent-encoded, lower-case hex": "".join(f"%{ord(c):02x}" for c in secret),
        "percent-encoded in part": "".join(
            f"%{ord(c):02X}" if n % 3 == 0 else c.upper() for n, c in enumerate(secret)
        ),
    }


def holds_key(data: str | bytes, secret: str = HEX) -> bool:
    """An independent reading: lower-cased, percent-escapes decoded, does it hold the key?"""
    from urllib.parse import unquote

    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return secret in unquote(text).lower() or secret in text.lower()


@pytest.fixture
def hex_keyed(tmp_path, emulator_for, sample) -> Project:
    emulator = emulator_for(sample, api_key=HEX)
    (tmp_path / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\nmax_retries = 1\n")
    return Project(tmp_path, emulator)


@pytest.mark.parametrize("spelling", list(spellings(HEX)))
def test_an_api_error_that_repeats_the_key_in_another_spelling_is_masked(hex_keyed, spelling):
    """Finding 5: an error repeating the key upper-cased or percent-encoded in lower case was
    printed in full."""
    said = spellings(HEX)[spelling]
    hex_keyed.emulator.inject("400", times=50, path="/courses", message=f"bad key: {said}")
    summary = hex_keyed.root / "summary.md"
    result = run_cli(
        hex_keyed.root, "-v", "build", "--json", "--now", DAY,
        env={**hex_keyed.env(HEX), "GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    assert result.returncode == 1 and MASK in result.stderr, result.stderr
    assert not holds_key(result.stdout + result.stderr) and not holds_key(summary.read_text())


@pytest.mark.slow
def test_a_record_carrying_the_key_in_another_case_is_scrubbed_and_the_build_succeeds(
    hex_keyed, sample
):
    """Finding 5: a title holding the key upper-cased was lower-cased by the slug back into
    the key, written to the model cache, and the site check then refused every build. It
    is scrubbed where API data enters: no snapshot, cache file or page holds it, in any
    spelling, and the build publishes."""
    first, second = sorted(sample.courses)[:2]
    sample.change_course(first, title=f"Kurs {HEX.upper()}")
    partly = spellings(HEX)["percent-encoded in part"]
    sample.change_course(second, external_booking_url=f"https://kurs.example.no/?k={partly}")
    result = hex_keyed.run("build", "--json", "--now", DAY, key=HEX)
    assert result.returncode == 0, result.stderr
    assert "[text.api_key]" in result.stderr
    for path in hex_keyed.root.rglob("*"):
        if path.is_file():
            assert not holds_key(path.read_bytes()), path


@pytest.mark.slow
def test_files_that_hold_api_text_are_readable_by_their_owner_only(hex_keyed):
    result = hex_keyed.run("build", "--now", DAY, key=HEX)
    assert result.returncode == 0, result.stderr
    state = hex_keyed.root / ".site.build-state.json"
    cache = [p for p in (hex_keyed.root / ".site.build-cache").rglob("*") if p.is_file()]
    assert cache and all(p.stat().st_mode & 0o077 == 0 for p in [state, *cache])


@pytest.mark.slow
def test_a_program_catalog_gen_starts_gets_no_key(hex_keyed, tmp_path):
    """Pagefind (any program the build starts) runs without the key or the name of the
    file that holds it: it needs neither."""
    seen = tmp_path / "pagefind-environment"
    fake = tmp_path / "pagefind"
    real = subprocess_version()
    fake.write_text(
        "#!/bin/sh\n"
        f'env >> "{seen}"\n'
        f'if [ "$1" = --version ]; then echo "{real}"; exit 0; fi\n'
        "exit 1\n"
    )
    fake.chmod(0o755)
    key_file = tmp_path / "key"
    key_file.write_text(HEX)
    env = {**hex_keyed.env(HEX), "PAGEFIND_BINARY_PATH": str(fake),
           "FRONTCORE_API_KEY_FILE": str(key_file)}  # fmt: skip
    run_cli(hex_keyed.root, "build", "--now", DAY, env=env)
    environment = seen.read_text()
    assert environment and "PATH=" in environment
    assert not holds_key(environment) and "FRONTCORE_API_KEY" not in environment


def subprocess_version() -> str:
    from catalog_gen.site.search import _pagefind_binary, _version

    return _version(_pagefind_binary())


def spelled(secret: str, ways: list[int]) -> bytes:
    """``secret`` with each character spelled one of the ways escapes spell it."""
    spellings = [
        lambda c: c,
        lambda c: c.upper(),
        lambda c: "".join(f"%{b:02x}" for b in c.encode()),
        lambda c: f"&#{ord(c)};",
        lambda c: f"&#x{ord(c):X};",
        lambda c: f"\\u{ord(c):04x}",
        lambda c: html.escape(c),
    ]
    return "".join(
        spellings[way % len(spellings)](c) for c, way in zip(secret, ways, strict=False)
    ).encode()


@settings(max_examples=300, deadline=None)
@given(
    noise=st.lists(st.sampled_from([b"\\", b"\n", b"%", b"&#", b";", b"x", b"4f", b"&amp;", b"a"])),
    at=st.integers(0, 60),
    ways=st.lists(st.integers(0, 6), min_size=len(KEY), max_size=len(KEY)),
    whole=st.booleans(),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_a_file_given_in_parts_is_checked_as_the_whole_file_is(noise, at, ways, whole, cuts):
    """The site-wide calendar reaches the key check in parts, and the check reads them in
    blocks (never joined): it finds the key, spelled any way, in any escapes around it,
    exactly where it finds it in the whole file; the sink gets every byte."""
    from catalog_gen.redact import contains_secret
    from catalog_gen.site import generate
    from catalog_gen.site.generate import MemorySink

    text = b"".join(noise)
    key = spelled(KEY, ways) if whole else spelled(KEY, ways)[: len(KEY) // 2]
    data = text[:at] + key + text[at:]
    edges = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    parts = [memoryview(data)[a:b] for a, b in itertools.pairwise(edges)]
    sink = MemorySink()
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(generate, "_BLOCK", 7)  # blocks shorter than any key
        blocks = list(generate._blocks(parts))
        assert b"".join(blocks) == data
        found = contains_secret(data, KEY)
        assert any(contains_secret(block, KEY) for block in blocks) == found
        put = generate._checked(sink, build_module.verify([KEY]))
        if found:
            with pytest.raises(BuildError, match=r"the API key appears in the rendered site \(f\)"):
                put("f", parts)
            assert "f" not in sink.files
        else:
            put("f", parts)
            assert sink.files["f"] == data
    plain = not any(mark in text for mark in (b"\\", b"%", b"&", b";"))
    assert found or not (whole and plain)  # a whole key among plain text is always found
