"""``catalog-gen serve``: a real preview server on 127.0.0.1, real HTTP, a real browser.

The server is the console script in a subprocess, stopped with SIGINT as Ctrl-C would. The
browser test drives Debian's Chromium through Playwright (no browser download) and measures
the time from saving a template to the open page showing the change.
"""

from __future__ import annotations

import html
import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from bs4 import BeautifulSoup

from catalog_gen.config import load_config
from catalog_gen.serve import Preview, open_preview
from catalog_gen.serve import http as serve
from catalog_gen.site.render import find_theme
from catalog_gen.source.store import SnapshotStore
from tests.conftest import NOW, Project, env_without_key, interruptible, run_cli
from tests.sitecheck import site_bytes

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
class ServeProcess:
    """A ``catalog-gen serve`` process, as a developer starts it."""

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

    def raw_get(self, target: str, host: str | None = None) -> tuple[int, bytes]:
        """A GET with the request target (and Host, if given) sent exactly as given."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.putrequest("GET", target, skip_accept_encoding=True, skip_host=host is not None)
        if host:
            connection.putheader("Host", host)
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


def start_preview(root: Path, key: str | None = None) -> Iterator[ServeProcess]:
    """``catalog-gen serve --demo`` in ``root``; with FRONTCORE_API_KEY set when ``key``."""
    assert run_cli(root, "build", "--demo", "-q", "--now", PINNED).returncode == 0
    env = env_without_key()
    if key is not None:
        env["FRONTCORE_API_KEY"] = key
    process = subprocess.Popen(
        [sys.executable, "-m", "catalog_gen", "serve", "--demo", "--port", "0", "--now", PINNED],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=interruptible,
    )  # fmt: skip
    line = process.stdout.readline()
    match = re.match(r"serving (http://127\.0\.0\.1:\d+/) \(Ctrl-C to stop\)", line)
    assert match, line + process.stderr.read()
    yield ServeProcess(root, match.group(1), process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert err.strip().splitlines()[-1] == "stopped"
    assert "Traceback" not in err


@pytest.fixture
def preview(tmp_path) -> Iterator[ServeProcess]:
    """A server of its own, for tests that edit the project."""
    yield from start_preview(tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[ServeProcess]:
    """One server for the tests that only read."""
    yield from start_preview(tmp_path_factory.mktemp("shared"))


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_browser_that_goes_away_mid_answer_is_no_error(preview):
    """A reload or a closed tab drops the connection while a page is sent: the terminal shows
    no traceback for it (the fixture checks stderr when the server stops)."""
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", preview.port), timeout=5) as client:
            # Reset, not close: the server's next write fails at once.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.sendall(
                b"GET /kalender.ics HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % preview.port
            )
    assert preview.wait_for("/", lambda r: r.status_code == 200)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


# -- the preview serves only its own host, only as many as it can, and never waits on a tab ---


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST"])
def test_the_preview_answers_its_own_host_names_with_the_port(shared, host):
    status, body = shared.raw_get("/", host=f"{host}:{shared.port}")
    assert status == 200 and b"data-catalog-gen-reload" in body


@pytest.mark.parametrize(
    "host",
    ["evil.example:{port}", "evil.example", "127.0.0.1", "localhost:1", "127.0.0.1.evil.example",
     "localhost:{port}.evil.example", ""],
)  # fmt: skip
@pytest.mark.parametrize("target", ["/", "/kurs/finnes-ikke-1/", "/__catalog-gen/events"])
def test_any_other_host_gets_403_and_nothing_of_the_site(shared, host, target):
    """DNS rebinding: a page elsewhere whose name now points at 127.0.0.1 reads nothing."""
    status, body = shared.raw_get(target, host=host.format(port=shared.port) or " ")
    assert status == 403
    assert b"<html" not in body.lower() and str(shared.root).encode() not in body


@pytest.fixture
def key_preview(tmp_path) -> Iterator[Preview]:
    """A preview that knows an API key (serve never sends it, but must never show it)."""
    yield from start_preview(tmp_path, key=SERVE_KEY)


SERVE_KEY = "fc&Lr9<Zp>W4mVb8N7Q2x+k/T=s"


@pytest.mark.slow
def test_the_preview_refuses_a_site_that_holds_the_key_and_its_error_page_masks_it(key_preview):
    site_home = (key_preview.root / "site" / "index.html").read_bytes()
    escaped = html.escape(SERVE_KEY)
    key_preview.write("templates/home.html", OVERRIDE.format(title=escaped))
    refused = key_preview.wait_for("/", lambda r: r.status_code == 500)
    assert "the API key appears in the rendered site (index.html)" in refused.text
    assert (key_preview.root / "site" / "index.html").read_bytes() == site_home
    assert escaped not in refused.text and SERVE_KEY not in html.unescape(refused.text)

    # An error message that quotes the key (here a config value) shows it masked.
    encoded = quote(SERVE_KEY, safe="")
    key_preview.write("templates/home.html", OVERRIDE.format(title="Igjen"))
    key_preview.write("catalog.toml", f'[site]\nlanguage = "{encoded}"\n')
    broken = key_preview.wait_for("/", lambda r: "site.language" in r.text)
    assert "[REDACTED]" in broken.text
    assert encoded not in broken.text and encoded not in html.unescape(broken.text)


@pytest.fixture
def live(tmp_path, emulator, monkeypatch) -> Iterator[Preview]:
    """A preview server in this process (its limits made small by the test), on a project
    built once from the emulator."""
    project = Project(tmp_path, emulator)
    (tmp_path / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\n")
    assert project.run("build", "--now", PINNED).returncode == 0
    yield from in_process(tmp_path)


def in_process(root: Path, now=lambda config: NOW, log=lambda line: None) -> Iterator[Preview]:
    """``catalog-gen serve`` in this process, on the project at ``root``, opened the way the
    command opens it (``open_preview``); stopped after."""
    preview = open_preview(lambda: load_config(root / "catalog.toml"), now=now, log=log)
    try:
        yield preview
    finally:
        preview.stop()


def request(preview: Preview, target: str) -> bytes:
    host = f"127.0.0.1:{preview.server.server_address[1]}"
    return f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def connect(preview: Preview, *, receive_buffer: int | None = None) -> socket.socket:
    client = socket.socket()
    if receive_buffer:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    client.connect(("127.0.0.1", preview.server.server_address[1]))
    return client


def follow(preview: Preview, events: queue.Queue, stop: threading.Event) -> None:
    """A tab that reads its event stream: every message's build generation goes on ``events``."""
    with connect(preview) as client:
        client.sendall(request(preview, serve.EVENTS_PATH))
        client.settimeout(0.5)
        buffered = b""
        while not stop.is_set():
            try:
                chunk = client.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                if line.startswith(b"data: "):
                    events.put(json.loads(line[6:])["generation"])


def closed_by_server(client: socket.socket, within: float) -> bool:
    """Whether the server has closed ``client``: reads what is left, then expects the end.

    Reading lets a blocked write through, so call this only once the server has had time to
    give up on the client."""
    client.settimeout(0.5)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if not client.recv(1 << 20):
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False


def let_go(preview: Preview, client: socket.socket, within: float) -> bool:
    """Whether the server closed its end of ``client``'s connection within ``within`` seconds
    (without reading from the client)."""
    ours = client.getsockname()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with preview.server._open_lock:
            open_peers = {s.getpeername() for s in preview.server._open if s.fileno() != -1}
        if ours not in open_peers:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_a_tab_that_stops_reading_blocks_no_rebuild_and_is_dropped(live, monkeypatch):
    timeout = 10.0
    monkeypatch.setattr(serve, "HEARTBEAT_SECONDS", 0.001)  # fills a stuck tab's buffers fast
    monkeypatch.setattr(serve, "STREAM_BUFFER_BYTES", 4096, raising=False)
    monkeypatch.setattr(serve, "WRITE_TIMEOUT_SECONDS", timeout, raising=False)
    stuck = connect(live, receive_buffer=1024)
    stuck.sendall(request(live, serve.EVENTS_PATH))  # and never reads again, until the end
    connected = time.monotonic()
    events: queue.Queue[int] = queue.Queue()
    stop = threading.Event()
    reader = threading.Thread(target=follow, args=(live, events, stop), daemon=True)
    reader.start()
    try:
        seen = events.get(timeout=10)
        time.sleep(2)  # the stuck tab's small buffers fill with heartbeats: its write blocks
        overrides = live.site_dir.parent / "templates"
        overrides.mkdir(exist_ok=True)
        for save in range(10):
            (overrides / "home.html").write_text(OVERRIDE.format(title=f"Lagret {save}"))
            generation = events.get(timeout=20)
            assert generation > seen, "the reading tab got no reload event"
            seen = generation
            assert live.state.error is None
            assert f"Lagret {save}" in (live.site_dir / "index.html").read_text()
        # The blocked write times out WRITE_TIMEOUT_SECONDS after the buffers filled. Watched
        # from the server's side: reading the client would let the blocked write through.
        assert let_go(live, stuck, within=connected + timeout + 30 - time.monotonic()), (
            "the tab that stopped reading was not dropped"
        )
        assert closed_by_server(stuck, within=10)
    finally:
        stop.set()
        stuck.close()
        reader.join(timeout=5)


@pytest.mark.slow
def test_connections_are_capped_and_a_freed_slot_is_served_again(live, monkeypatch):
    monkeypatch.setattr(serve, "MAX_CONNECTIONS", 3, raising=False)
    url = f"http://127.0.0.1:{live.server.server_address[1]}/"
    idle = [connect(live) for _ in range(3)]  # connected, no request yet
    time.sleep(0.3)
    try:
        refused = httpx.get(url, timeout=5)
        assert refused.status_code == 503
    finally:
        for client in idle:
            client.close()
    deadline = time.monotonic() + 10
    while (status := httpx.get(url, timeout=5).status_code) != 200:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


@pytest.mark.slow
def test_clients_that_trickle_a_request_head_are_let_go_and_another_tab_is_served(
    live, monkeypatch
):
    """As many connections as the server takes, each sending a header line every second and
    never ending its request head, hold every slot (503): each is closed once its head is
    HEAD_DEADLINE_SECONDS late, however often it sends, and the next tab is served. A tab's
    event stream, whose head came at once, stays open long after that deadline."""
    monkeypatch.setattr(serve, "HEARTBEAT_SECONDS", 0.2)
    port = live.server.server_address[1]
    url = f"http://127.0.0.1:{port}/"
    slow = []
    for _ in range(serve.MAX_CONNECTIONS):
        slow.append(connect(live))
        slow[-1].sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
    connected = time.monotonic()
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(1.0):
            for client in slow:
                with suppress(OSError):  # closed by the server: the point of the test
                    client.sendall(b"X-Still-Coming: 1\r\n")

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        time.sleep(0.5)
        assert httpx.get(url, timeout=5).status_code == 503  # every slot is held
        deadline = connected + serve.HEAD_DEADLINE_SECONDS + 5
        while (status := httpx.get(url, timeout=5).status_code) != 200:
            assert time.monotonic() < deadline, f"still {status}: the slow clients hold on"
            time.sleep(0.2)
        assert all(closed_by_server(client, within=2) for client in slow)
    finally:
        stop.set()
        sender.join(timeout=5)
        for client in slow:
            client.close()

    with connect(live) as tab:
        tab.sendall(request(live, serve.EVENTS_PATH))
        time.sleep(serve.HEAD_DEADLINE_SECONDS + 2)
        tab.settimeout(0.2)
        with suppress(TimeoutError):
            while tab.recv(1 << 16):  # what came while the test slept
                pass
        tab.settimeout(5)
        assert tab.recv(1 << 16).startswith(b": heartbeat"), "the tab's stream was cut"


# -- the open pages first, the rest behind them ------------------------------------------------


COURSE_OVERRIDE = (
    '{{% extends "!theme/course.html" %}}\n'
    "{{% block title %}}{marker} {{{{ course.title }}}}{{% endblock %}}\n"
)


class Gate:
    """Holds the preview's build behind a save at one step (``LiveSite.hold``) until the test
    opens it: what the test sees meanwhile is what a browser sees while that build runs."""

    def __init__(self, step: str = "build") -> None:
        self.step = step
        self.reached = threading.Event()
        self.opened = threading.Event()

    def __call__(self, step: str) -> None:
        if step == self.step and not self.opened.is_set():
            self.reached.set()
            self.opened.wait(60)

    def open(self) -> None:
        self.opened.set()


class Tab:
    """A browser tab's event stream, naming its page as the reload script does; every
    message goes on ``messages``."""

    def __init__(self, preview: Preview, page: str) -> None:
        self.preview, self.page = preview, page
        self.messages: queue.Queue[dict] = queue.Queue()
        self.stop = threading.Event()
        self.client = connect(preview)
        self.client.sendall(request(preview, f"{serve.EVENTS_PATH}?page={quote(page)}"))
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.first = self.messages.get(timeout=10)  # the state when it connected

    def _read(self) -> None:
        self.client.settimeout(0.2)
        buffered = b""
        while not self.stop.is_set():
            try:
                chunk = self.client.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                if line.startswith(b"data: "):
                    self.messages.put(json.loads(line[6:]))

    def next(self, predicate=lambda message: True, timeout: float = 60) -> dict:
        """The next message (after the first) for which ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            if predicate(message):
                return message

    def close(self) -> None:
        self.stop.set()
        self.client.close()
        self.thread.join(timeout=5)

    def __enter__(self) -> Tab:
        deadline = time.monotonic() + 10
        while self.page not in self.preview.open_pages():
            assert time.monotonic() < deadline, "the tab's page was not registered"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Warm:
    """A project built from the emulator, and its preview running in this process."""

    root: Path
    preview: Preview
    lines: list[str]
    saves: list[int]

    @property
    def site(self) -> Path:
        return self.root / "site"

    def write(self, name: str, text: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.preview.server.server_address[1]}/{path}")

    def title(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, response.text
        return BeautifulSoup(response.content, "html5lib").title.string

    def disk_title(self, name: str) -> str:
        return BeautifulSoup((self.site / name).read_bytes(), "html5lib").title.string

    def course_pages(self) -> list[str]:
        return sorted(p.parent.relative_to(self.site).as_posix() + "/index.html"
                      for p in (self.site / "kurs").glob("*/index.html"))  # fmt: skip

    def settle(self) -> None:
        """Wait for the build behind the last save to end."""
        assert self.preview.site.idle(120), "the build behind the save did not end"


@pytest.fixture
def warm(tmp_path, emulator) -> Iterator[Warm]:
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, emulator)
    (root / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\n")
    assert project.run("build", "--now", PINNED).returncode == 0
    lines: list[str] = []
    saves: list[int] = []

    def now(config):
        saves.append(1)
        return NOW

    for preview in in_process(root, now=now, log=lines.append):
        warm = Warm(root, preview, lines, saves)
        warm.settle()
        yield warm


def clean_build(root: Path, into: Path) -> dict[str, bytes]:
    """Every file of the site ``build --offline`` makes of a copy of the project (its
    sources and snapshots, none of the site, the build state or the build cache)."""
    shutil.copytree(root, into, ignore=shutil.ignore_patterns("site", ".site*"), symlinks=True)
    result = run_cli(into, "build", "--offline", "--now", PINNED)
    assert result.returncode == 0, result.stderr
    return site_bytes(into / "site")


def assert_same_as_clean_build(warm: Warm, tmp_path: Path) -> None:
    served = site_bytes(warm.site)
    clean = clean_build(warm.root, tmp_path / "clean")
    assert sorted(served) == sorted(clean)
    differ = [name for name in clean if served[name] != clean[name]]
    assert differ == [], f"{len(differ)} files differ from a clean build: {differ[:5]}"


@pytest.mark.slow
def test_a_template_save_reaches_the_open_page_before_the_build_behind_it(warm, tmp_path):
    gate = Gate()
    warm.preview.site.hold = gate
    course, other = warm.course_pages()[:2]
    before = warm.disk_title(course)
    saves = len(warm.saves)
    with Tab(warm.preview, course) as tab:
        warm.write("templates/course.html", COURSE_OVERRIDE.format(marker="Ny mal:"))
        reload = tab.next(lambda message: course in message["written"])
        assert reload["error"] is None
        assert gate.reached.wait(30)  # the build behind it is held: site/ is the old one
        assert warm.title(course).startswith("Ny mal: ")
        assert warm.disk_title(course) == before
        # A page nobody had open, requested while the build runs, is fresh too.
        assert warm.title(other).startswith("Ny mal: ")
        assert not warm.disk_title(other).startswith("Ny mal")

        gate.open()
        built = tab.next(lambda message: message["generation"] > reload["generation"])
        # The tab was shown the page the build published: it does not reload again.
        assert course not in built["written"] and other not in built["written"]
    warm.settle()
    assert warm.disk_title(course).startswith("Ny mal: ")
    assert len(warm.saves) == saves + 1  # "now" was read once for the save
    assert any(line.startswith(f"rendered /{course.removesuffix('index.html')} first: ")
               for line in warm.lines)  # fmt: skip
    assert warm.lines[-1].startswith("built site/ from ")
    assert_same_as_clean_build(warm, tmp_path)


@pytest.mark.slow
def test_static_files_and_new_pages_are_fresh_while_the_build_runs(warm, tmp_path):
    home = warm.get("").text
    old_css = re.search(r'href="(static/style\.[0-9a-f]+\.css)"', home).group(1)
    gate = Gate()
    warm.preview.site.hold = gate
    with Tab(warm.preview, "index.html") as tab:
        theme_css = find_theme("default", warm.root) / "static" / "style.css"
        warm.write("static/style.css", theme_css.read_text() + "\n.fresh { color: red }\n")
        reload = tab.next(lambda message: "index.html" in message["written"])
        new_css = [name for name in reload["written"] if name.startswith("static/style.")]
        assert len(new_css) == 1 and new_css[0] != old_css  # every tab reloads for it
        assert gate.reached.wait(30)
        assert not (warm.site / new_css[0]).exists()
        stylesheet = warm.get(new_css[0])
        assert stylesheet.status_code == 200 and b".fresh { color: red }" in stylesheet.content
        assert stylesheet.headers["content-type"].startswith("text/css")
        assert new_css[0] in warm.get("").text

        # A new page (no tab shows it: no message); served as soon as the save is seen.
        warm.write("content/ny-side.md", "---\ntitle: Ny side\n---\nHei\n")
        deadline = time.monotonic() + 30
        while warm.get("ny-side/").status_code != 200:
            assert time.monotonic() < deadline, "the new page was never served"
            time.sleep(0.05)
        assert tab.messages.empty()  # the home page did not change
        assert warm.title("ny-side/") == "Ny side · Kurskatalog"
        assert warm.title("ny-side") == "Ny side · Kurskatalog"
        assert not (warm.site / "ny-side").exists()
        missing = warm.get("finnes-ikke/")
        assert missing.status_code == 404 and "Fant ikke siden" in missing.text
        gate.open()
    warm.settle()
    assert (warm.site / new_css[0]).is_file() and (warm.site / "ny-side" / "index.html").is_file()
    assert_same_as_clean_build(warm, tmp_path)


@pytest.mark.slow
def test_a_config_change_is_shown_and_new_publishing_rules_remake_the_catalog(warm, tmp_path):
    course = warm.course_pages()[0]
    with Tab(warm.preview, course) as tab:
        warm.write("catalog.toml", '[frontcore]\nrate_limit = 5\n[site]\ntitle = "Ny tittel"\n')
        tab.next(lambda message: course in message["written"])
        assert warm.title(course).endswith(" · Ny tittel")
        warm.settle()
        assert warm.disk_title(course).endswith(" · Ny tittel")

        seats = "[frontcore]\nrate_limit = 5\n[publish]\nshow_seat_counts = false\n"
        warm.write("catalog.toml", seats)
        tab.next(lambda message: course in message["written"])
        warm.settle()
    assert_same_as_clean_build(warm, tmp_path)


@pytest.mark.slow
def test_a_new_snapshot_is_shown_without_a_save(warm, tmp_path):
    config = load_config(warm.root / "catalog.toml")
    store = SnapshotStore(config.snapshot_path)
    snapshot = store.latest()
    course = warm.course_pages()[0]
    course_id = int(course.split("/")[1].rsplit("-", 1)[1])

    def lead(page: bytes) -> str:
        return BeautifulSoup(page, "html5lib").find("meta", attrs={"name": "description"})[
            "content"
        ]

    with Tab(warm.preview, course) as tab:
        snapshot.courses[course_id]["text_lead"] = "<p>En helt ny ingress.</p>"
        store.save(snapshot)  # as a fetch in another terminal would
        reload = tab.next(lambda message: course in message["written"])
        assert reload["error"] is None
        assert lead(warm.get(course).content) == "En helt ny ingress."
        warm.settle()
    assert "new snapshot" in warm.lines
    assert lead((warm.site / course).read_bytes()) == "En helt ny ingress."
    assert_same_as_clean_build(warm, tmp_path)


@pytest.mark.slow
def test_a_second_save_supersedes_the_build_under_way_and_site_never_has_the_first(warm, tmp_path):
    course = warm.course_pages()[0]
    before = site_bytes(warm.site)
    builds = sum(line.startswith("built site/") for line in warm.lines)
    first = Gate("rendering")
    warm.preview.site.hold = first
    warm.write("templates/course.html", COURSE_OVERRIDE.format(marker="Første:"))
    assert first.reached.wait(30)  # the first save's build is under way
    second = Gate()
    warm.preview.site.hold = second
    warm.write("templates/course.html", COURSE_OVERRIDE.format(marker="Andre:"))
    deadline = time.monotonic() + 30
    while not warm.title(course).startswith("Andre: "):
        assert time.monotonic() < deadline, "the second save was never shown"
        time.sleep(0.05)
    first.open()  # the first build goes on from its step, finds itself superseded, and stops
    assert second.reached.wait(30)  # then the second save's build starts
    assert site_bytes(warm.site) == before
    assert not [p.name for p in warm.root.iterdir() if p.name.startswith(".site.staging-")]
    second.open()
    warm.settle()
    assert warm.disk_title(course).startswith("Andre: ")
    assert sum(line.startswith("built site/") for line in warm.lines) == builds + 1
    assert_same_as_clean_build(warm, tmp_path)


@pytest.mark.slow
def test_a_template_error_shows_file_and_line_keeps_site_and_the_next_save_recovers(warm, tmp_path):
    course, other = warm.course_pages()[:2]
    before = site_bytes(warm.site)
    with Tab(warm.preview, course) as tab:
        warm.write("templates/course.html", COURSE_OVERRIDE.format(marker="{{ 1 // 0 }}"))
        broken = tab.next(lambda message: message["error"] is not None)
        assert "templates/course.html:2" in broken["error"]
        response = warm.get(course)
        assert response.status_code == 500
        shown = BeautifulSoup(response.content, "html5lib").find(id="catalog-gen-error")
        assert "templates/course.html:2" in shown.text and "ZeroDivisionError" in shown.text
        warm.settle()
        assert site_bytes(warm.site) == before

        # Broken where no tab looks: the open page renders, the build behind it fails.
        warm.write("templates/course.html", COURSE_OVERRIDE.format(marker="Fikset:"))
        broken = '{% extends "!theme/venue.html" %}{% block main %}{{ x.y }}{% endblock %}\n'
        warm.write("templates/venue.html", broken)
        fixed = tab.next(lambda message: message["error"] is None)
        assert course in fixed["written"]
        failed = tab.next(lambda message: message["error"] is not None)
        assert "templates/venue.html:1" in failed["error"]
        warm.settle()
        assert site_bytes(warm.site) == before
        assert any(line.startswith("error: templates/venue.html:1") for line in warm.lines)

        (warm.root / "templates" / "venue.html").unlink()
        tab.next(lambda message: message["error"] is None)
        warm.settle()
    assert warm.title(other).startswith("Fikset: ")
    assert_same_as_clean_build(warm, tmp_path)


@pytest.mark.slow
def test_tabs_name_their_page_and_a_closed_tab_is_forgotten(warm, monkeypatch):
    monkeypatch.setattr(serve, "HEARTBEAT_SECONDS", 0.1)  # a closed stream is noticed soon
    course = warm.course_pages()[0]
    assert warm.preview.open_pages() == []
    first, second = Tab(warm.preview, course), Tab(warm.preview, course)
    with first, second, Tab(warm.preview, "index.html"):
        assert warm.preview.open_pages() == sorted([course, "index.html"])
        first.close()
        time.sleep(0.5)
        assert warm.preview.open_pages() == sorted([course, "index.html"])  # one tab left
    deadline = time.monotonic() + 10
    while warm.preview.open_pages():
        assert time.monotonic() < deadline, warm.preview.open_pages()
        time.sleep(0.05)
    # The script served with every page names the page and the state it was served in.
    home = warm.get("").text
    generation = warm.preview.state.generation
    assert f"let seen = {generation};" in home
    assert 'new EventSource("/__catalog-gen/events?page=" + encodeURIComponent(page))' in home
    assert serve.open_page("page=%2Fkurs%2Fx%2Findex.html") == "kurs/x/index.html"
    assert serve.open_page("page=") == "index.html"
    assert serve.open_page("page=..%2F..%2Fetc") is None and serve.open_page("") is None
