"""``catalog-gen serve``: a real preview server on 127.0.0.1, real HTTP, a real browser.

The server is the console script in a subprocess, stopped with SIGINT as Ctrl-C would. The
browser test drives Debian's Chromium through Playwright (no browser download) and measures
the time from saving a template to the open page showing the change.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import env_without_key, interruptible, run_cli

PINNED = "2026-11-23T04:00:00+01:00"
CHROMIUM = "/usr/bin/chromium"
#: What the machine notes say headless Chromium needs here: no sandbox as root, and no
#: background connections (the network is closed).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
OVERRIDE = '{{% extends "!theme/home.html" %}}\n{{% block title %}}{title}{{% endblock %}}\n'


@dataclass
class Preview:
    root: Path
    url: str
    process: subprocess.Popen

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].strip("/"))

    def write(self, name: str, text: str) -> float:
        """Write a project file; returns the moment it was saved."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return time.monotonic()

    def raw_get(self, target: str) -> tuple[int, bytes]:
        """A GET with the request target sent exactly as given (no client normalisation)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.putrequest("GET", target, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()

    def wait_for(self, path: str, predicate, timeout: float = 15.0) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while True:
            response = httpx.get(self.url + path.lstrip("/"), timeout=10)
            if predicate(response):
                return response
            assert time.monotonic() < deadline, f"{path}: still {response.status_code}"
            time.sleep(0.1)


def start_preview(root: Path) -> Iterator[Preview]:
    assert run_cli(root, "build", "--demo", "-q", "--now", PINNED).returncode == 0
    env = env_without_key()
    process = subprocess.Popen(
        [sys.executable, "-m", "catalog_gen", "serve", "--demo", "--port", "0", "--now", PINNED],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=interruptible,
    )  # fmt: skip
    line = process.stdout.readline()
    match = re.match(r"serving (http://127\.0\.0\.1:\d+/) \(Ctrl-C to stop\)", line)
    assert match, line + process.stderr.read()
    yield Preview(root, match.group(1), process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert err.strip().splitlines()[-1] == "stopped"
    assert "Traceback" not in err


@pytest.fixture
def preview(tmp_path) -> Iterator[Preview]:
    """A server of its own, for tests that edit the project."""
    yield from start_preview(tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[Preview]:
    """One server for the tests that only read."""
    yield from start_preview(tmp_path_factory.mktemp("shared"))


def test_pages_are_served_with_the_reload_script_which_never_reaches_site(shared):
    response = httpx.get(shared.url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert b"data-catalog-gen-reload" in response.content
    assert b"catalog-gen-reload" not in (shared.root / "site" / "index.html").read_bytes()
    css = re.search(r'href="(static/style\.[0-9a-f]+\.css)"', response.text).group(1)
    stylesheet = httpx.get(shared.url + css)
    assert stylesheet.status_code == 200 and stylesheet.headers["content-type"].startswith(
        "text/css"
    )
    assert b"catalog-gen-reload" not in stylesheet.content


def test_missing_pages_get_the_sites_own_404_page_with_status_404(shared):
    response = httpx.get(shared.url + "kurs/finnes-ikke-1/")
    assert response.status_code == 404
    assert "Fant ikke siden" in response.text


@pytest.mark.parametrize(
    "target",
    [
        "/../catalog.toml",
        "/../../../../etc/passwd",
        "/%2e%2e/catalog.toml",
        "/%2E%2E%2Fcatalog.toml",
        "/kurs/..%2f..%2fcatalog.toml",
        "/static/%2e%2e/%2e%2e/secret.txt",
        "/..\\secret.txt",
        "/%5c..%5csecret.txt",
        "/index.html%00.css",
    ],
)
def test_requests_outside_the_site_are_refused(shared, target):
    shared.write("secret.txt", "project secret")
    status, body = shared.raw_get(target)
    assert status in (403, 404)
    assert b"project secret" not in body and b"root:" not in body


def test_a_symlink_out_of_the_site_is_refused(shared):
    shared.write("secret.txt", "project secret")
    (shared.root / "site" / "leak.txt").symlink_to(shared.root / "secret.txt")
    status, body = shared.raw_get("/leak.txt")
    assert status == 403 and b"project secret" not in body


def test_a_template_error_shows_file_and_line_and_the_next_good_save_recovers(preview):
    preview.write("templates/home.html", OVERRIDE.format(title="{{ no_such_thing }}"))
    broken = preview.wait_for("/", lambda r: r.status_code == 500)
    assert "templates/home.html:2" in broken.text and "no_such_thing" in broken.text
    assert "data-catalog-gen-reload" in broken.text  # it will reload itself when fixed
    # The published site stayed as it was while the template was broken.
    assert b"no_such_thing" not in (preview.root / "site" / "index.html").read_bytes()

    preview.write("templates/home.html", OVERRIDE.format(title="Fikset"))
    fixed = preview.wait_for("/", lambda r: r.status_code == 200)
    assert "<title>Fikset</title>" in fixed.text


def test_a_config_error_is_shown_and_recovers(preview):
    preview.write("catalog.toml", '[site]\nlanguage = "klingon"\n')
    broken = preview.wait_for("/", lambda r: r.status_code == 500)
    assert "site.language" in broken.text
    preview.write("catalog.toml", '[site]\ntitle = "Ny tittel"\n')
    fixed = preview.wait_for("/", lambda r: r.status_code == 200 and "Ny tittel" in r.text)
    assert "<title>Ny tittel</title>" in fixed.text


def test_serve_without_a_snapshot_says_what_to_run(tmp_path):
    result = run_cli(tmp_path, "serve", "--port", "0")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "no snapshot" in line and "catalog-gen build" in line


def test_the_browser_reloads_when_a_template_is_saved(preview):
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} not found: install Debian's chromium (apt install chromium)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("response", lambda r: errors.append(r.url) if r.status == 404 else None)
            page.goto(preview.url)
            page.wait_for_function("window.catalogGenLive === true", timeout=10_000)
            assert page.title() == "Kurskatalog"

            saved = preview.write("templates/home.html", OVERRIDE.format(title="Endret i dag"))
            page.wait_for_function("document.title === 'Endret i dag'", timeout=10_000)
            seconds = time.monotonic() - saved
            print(f"\nsave → reloaded page: {seconds * 1000:.0f} ms (target < 1000 ms)")

            preview.write("templates/home.html", OVERRIDE.format(title="{{ 1 // 0 }}"))
            page.wait_for_selector("#catalog-gen-error", timeout=10_000)
            assert "templates/home.html:2" in page.inner_text("#catalog-gen-error")

            preview.write("templates/home.html", OVERRIDE.format(title="Tilbake"))
            page.wait_for_function("document.title === 'Tilbake'", timeout=10_000)
            # The error page is served with status 500 on purpose; nothing else may fail.
            assert [e for e in errors if "status of 500" not in e] == []
        finally:
            browser.close()


def generation(preview: Preview) -> int:
    """The build generation the server reports first on a new event stream."""
    with httpx.stream("GET", preview.url + "__catalog-gen/events", timeout=10) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                return json.loads(line[6:])["generation"]
    raise AssertionError("no event")


def test_only_source_files_trigger_a_rebuild(preview):
    before = generation(preview)
    preview.write("notes.txt", "not a source")  # nor is a log file the server writes into
    preview.write("site/extra.txt", "output folder")
    time.sleep(1.0)
    assert generation(preview) == before
    preview.write("content/om-oss.md", "---\ntitle: Om oss\n---\nHei\n")
    page = preview.wait_for("/om-oss/", lambda r: r.status_code == 200)
    assert "Om oss" in page.text
    deadline = time.monotonic() + 10  # the site is swapped in just before the event is sent
    while generation(preview) == before:
        assert time.monotonic() < deadline, "no rebuild event after a content change"
        time.sleep(0.05)
