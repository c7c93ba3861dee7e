"""The preview's HTTP side: the site read-only, the reload script, and each tab's stream.

A threaded server (``_Server``) that serves ``site/`` (``safe_target``: nothing outside it)
and, to HTML responses only, adds a small script listening on a server-sent-events stream
(``RELOAD_SCRIPT``, added on the way out, never written to ``site/``). The script names its
page when it connects; after each step the stream says which files changed (``TabNews``),
and a tab reloads only when its own page, a stylesheet, or the error state changed.

The server is for the developer's own browser, and guards against the rest:

- It answers only requests addressed to itself (``Host`` is ``localhost``, ``127.0.0.1`` or
  ``[::1]`` with its port): a page on another site whose name has been pointed at 127.0.0.1
  (DNS rebinding) gets 403, not the site or an error page naming local paths.
- A tab's stream is written by that tab's own thread, never under a lock a rebuild needs, with
  a small send buffer and a timeout: a tab that stops reading is dropped, and neither rebuilds
  nor other tabs wait for it. At most ``MAX_CONNECTIONS`` connections are open at once.
- A connection must send its whole request head within ``HEAD_DEADLINE_SECONDS`` of
  connecting, or it is closed: a few clients trickling header lines cannot hold every slot.
  The deadline is for the head only; a tab's stream stays open as long as the tab reads it.

The handler reaches the preview it serves as ``self.server.preview`` (serve/preview.py).
"""

from __future__ import annotations

import html
import io
import json
import mimetypes
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from catalog_gen.errors import CatalogGenError
from catalog_gen.redact import redact
from catalog_gen.site.pages import NOT_FOUND

if TYPE_CHECKING:  # the preview owns the server; the server only reads it
    from _typeshed import WriteableBuffer

    from catalog_gen.serve.preview import Preview

EVENTS_PATH = "/__catalog-gen/events"
HEARTBEAT_SECONDS = 15.0
#: The names the preview answers to (with its port): anything else is another site's page.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
#: Open connections at most. A tab holds one for live reload (browsers open at most six per
#: host), so this is room for many tabs; a connection over it gets 503.
MAX_CONNECTIONS = 32
#: Seconds a client may wait between two reads of its request, or to take in one write to
#: it: a tab that stops reading is dropped after this long.
WRITE_TIMEOUT_SECONDS = 10.0
#: Seconds from connecting to the end of the request head (the request line and headers): a
#: client that sends a header line now and then, never ending the head, holds a connection
#: this long at most. A browser sends its head at once.
HEAD_DEADLINE_SECONDS = 5.0
#: The kernel's send buffer for a tab's event stream: what a stuck tab can hold (Linux would
#: let it grow to megabytes, and notice a stuck tab only when they are full).
STREAM_BUFFER_BYTES = 64 * 1024

#: Added before </body> of every HTML response. ``data-error`` marks the error page. The
#: stream's URL names the page (the server renders open pages first after a save);
#: ``generation`` is the server's state when the page was served: a tab that missed a message
#: in between (or finds the server restarted) reloads.
RELOAD_SCRIPT = """<script data-catalog-gen-reload{error}>
(() => {{
  const page = decodeURIComponent(location.pathname)
    .replace(/^\\//, "").replace(/(^|\\/)$/, "$1index.html");
  const showingError = {showing_error};
  let seen = {generation};
  const events = new EventSource("{events}?page=" + encodeURIComponent(page));
  events.onmessage = (message) => {{
    const state = JSON.parse(message.data);
    window.catalogGenLive = true;  // connected: tests and curious developers can check
    if (state.generation === seen) {{
      if (showingError !== Boolean(state.error)) location.reload();
      return;
    }}
    const missed = state.generation !== seen + 1;
    seen = state.generation;
    const touched = [...state.written, ...state.removed];
    if (missed || state.error || showingError || touched.includes(page) ||
        touched.some((name) => name.startsWith("static/"))) {{
      location.reload();
    }}
  }};
}})();
</script>
"""


@dataclass
class TabNews:
    """What the open tabs were last told (the files a step changed, or its error), and a way
    to wait for the next message. (Not the build state of site/buildstate.py: what a tab
    hears, not what a file is made of.)"""

    generation: int = 0
    written: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    error: str | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, written: Sequence[str], removed: Sequence[str], error: str | None) -> None:
        with self.changed:
            self.generation += 1
            self.written, self.removed = tuple(written), tuple(removed)
            self.error = redact(error) if error else None  # it is shown in the browser
            self.changed.notify_all()

    def next_message(self, seen: int, timeout: float) -> tuple[int, str] | None:
        """The generation and message after ``seen``, or None when no build ended within
        ``timeout``. The lock is held only to read: no tab is ever written to under it."""
        with self.changed:
            if self.generation == seen:
                self.changed.wait(timeout)
            if self.generation == seen:
                return None
            return self.generation, self.as_message()

    def as_message(self) -> str:
        return json.dumps(
            {
                "generation": self.generation,
                "written": list(self.written),
                "removed": list(self.removed),
                "error": self.error,
            }
        )


class _Server(ThreadingHTTPServer):
    """One thread per connection, at most MAX_CONNECTIONS of them."""

    daemon_threads = True
    allow_reuse_address = True
    #: The kernel's queue of connections not yet accepted: room for a burst as large as the
    #: cap (the default of 5 drops the rest, whose clients try again only a second later).
    request_queue_size = MAX_CONNECTIONS
    preview: Preview

    def __init__(self, address: tuple[str, int], handler: type) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    # A TCP server's requests are sockets; typeshed's parameter type is every server's (a UDP
    # server's are (bytes, socket) pairs), hence the ignores on these three overrides.
    def verify_request(  # type: ignore[override]
        self, request: socket.socket, client_address: tuple[str, int]
    ) -> bool:
        with self._open_lock:
            if len(self._open) < MAX_CONNECTIONS:
                self._open.add(request)
                return True
        with suppress(OSError):  # a fresh socket takes this at once, or the client is gone
            request.setblocking(False)
            request.send(FULL)
        return False

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(  # type: ignore[override]
        self, request: socket.socket, client_address: tuple[str, int]
    ) -> None:
        """A browser that went away mid-answer (a reload, a closed tab, a stalled client let
        go) is how previews are used, not an error: no traceback for it in the terminal."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


FULL = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n"
)


class _HeadReader(io.RawIOBase):
    """A connection's bytes, read against the deadline of its request head.

    Each read waits only for what is left of the deadline, so a client that sends a byte
    every few seconds is let go when time is up, not only one that goes silent (a timeout per
    read would let it stay for ever). Writes keep their own timeout. Only a head is ever read:
    the server speaks HTTP/1.0, one request per connection, and answers GET and HEAD only.
    """

    def __init__(self, connection: socket.socket, deadline: float) -> None:
        super().__init__()
        self._connection = connection
        self._raw = connection.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request head did not arrive in time")
        self._connection.settimeout(min(left, WRITE_TIMEOUT_SECONDS))
        try:
            return self._raw.readinto(buffer)
        finally:
            self._connection.settimeout(WRITE_TIMEOUT_SECONDS)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "catalog-gen-preview"
    #: Every write's timeout; setup() applies it (and _HeadReader re-applies it per read).
    timeout = WRITE_TIMEOUT_SECONDS

    def setup(self) -> None:
        # Every write has a timeout, and the request head a deadline: a client that stalls,
        # or trickles its head, is let go (BaseHTTPRequestHandler closes on TimeoutError).
        deadline = time.monotonic() + HEAD_DEADLINE_SECONDS
        super().setup()
        self.rfile.close()  # the buffered reader setup() made: ours replaces it
        self.rfile = io.BufferedReader(_HeadReader(self.connection, deadline))

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the terminal shows builds, not every request."""

    def do_HEAD(self) -> None:
        if self._addressed_to_us(head=True):
            self._respond(head=True)

    def do_GET(self) -> None:
        if not self._addressed_to_us(head=False):
            return
        if urlsplit(self.path).path == EVENTS_PATH:
            self._events()
        else:
            self._respond(head=False)

    def _addressed_to_us(self, *, head: bool) -> bool:
        """Whether ``Host`` names this server; else a 403 (DNS rebinding)."""
        port = self.server.server_address[1]
        host = (self.headers.get("Host") or "").strip().lower()
        if host in {f"{name}:{port}" for name in LOCAL_HOSTS}:
            return True
        if port == 80 and host in LOCAL_HOSTS:
            return True
        self._send(HTTPStatus.FORBIDDEN, b"refused: unknown host\n", "text/plain", head)
        return False

    # -- files -------------------------------------------------------------------------------

    def _respond(self, *, head: bool) -> None:
        preview = self.server.preview
        target = safe_target(preview.site_dir, urlsplit(self.path).path)
        if target is None:
            return self._send(
                HTTPStatus.FORBIDDEN, b"refused: outside the site\n", "text/plain", head
            )
        # Read before the bytes: the page is at least as new as the state it names.
        generation = preview.state.generation
        is_page = target.suffix == ".html" or not target.suffix
        if preview.state.error is not None and is_page:
            return self._send_error(preview.state.error, generation, head)
        name = target.relative_to(os.path.realpath(preview.site_dir)).as_posix()
        try:
            fresh = preview.site.fresh(name)
        except CatalogGenError as exc:  # this page's template fails: the build will say so too
            return self._send_error(redact(str(exc)), generation, head)
        if fresh is not None:
            status, made, data = fresh
            self._send_data(HTTPStatus(status), made, data, generation, head)
            return preview.site.served(made)
        if target.is_file():
            return self._send_file(HTTPStatus.OK, target, generation, head)
        not_found = preview.site_dir / NOT_FOUND
        if not_found.is_file():
            return self._send_file(HTTPStatus.NOT_FOUND, not_found, generation, head)
        self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", head)

    def _send_file(self, status: HTTPStatus, path: Path, generation: int, head: bool) -> None:
        try:
            data = path.read_bytes()
        except OSError:  # swapped away between the check and the read: the next request wins
            return self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"rebuilding\n", "text/plain", head)
        self._send_data(status, path.name, data, generation, head)

    def _send_data(
        self, status: HTTPStatus, name: str, data: bytes, generation: int, head: bool
    ) -> None:
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if kind == "text/html":
            data = inject_reload(data, error=False, generation=generation)
        self._send(status, data, kind, head)

    def _send_error(self, message: str, generation: int, head: bool) -> None:
        page = self._error_page(message, generation)
        self._send(HTTPStatus.INTERNAL_SERVER_ERROR, page, "text/html", head)

    def _send(self, status: HTTPStatus, body: bytes, kind: str, head: bool) -> None:
        if kind.startswith("text/"):
            kind += "; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    @staticmethod
    def _error_page(error: str, generation: int) -> bytes:
        message = html.escape(error)
        page = (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<title>Build error · catalog-gen</title><link rel=icon href='data:,'>"
            "<style>body{font:1rem/1.5 system-ui;"
            "margin:2rem;max-width:60rem}pre{white-space:pre-wrap;background:#fdecea;"
            "color:#611a15;padding:1rem;border-radius:6px}</style></head><body>"
            "<main><h1>The site could not be built</h1>"
            f"<pre id=catalog-gen-error>{message}</pre>"
            "<p>Fix the file and save: this page reloads by itself.</p></main></body></html>"
        )
        return inject_reload(page.encode(), error=True, generation=generation)

    # -- live reload -------------------------------------------------------------------------

    def _events(self) -> None:
        """The tab's event stream: a message after each build, a heartbeat while idle.

        Written by this thread only, outside any lock: a tab that stops reading makes a write
        time out (its send buffer is kept small so that this happens soon), and is dropped.
        """
        preview = self.server.preview
        page = open_page(urlsplit(self.path).query)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_BUFFER_BYTES)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        seen = -1
        if page is not None:
            preview.opened(page)
        try:
            while not preview.stopping.is_set():
                news = preview.state.next_message(seen, HEARTBEAT_SECONDS)
                if news is None:
                    self.wfile.write(b": heartbeat\n\n")
                    continue
                seen, message = news
                self.wfile.write(f"data: {message}\n\n".encode())
        except OSError:  # closed or reloaded (broken pipe, reset), or stopped reading (timeout)
            self.close_connection = True
        finally:
            if page is not None:
                preview.closed(page)


def safe_target(site_dir: Path, url_path: str) -> Path | None:
    """The file a URL path names inside ``site_dir``, or None when it would leave the site.

    ``..`` (plain or percent-encoded), backslashes, NUL bytes and symlinks that point outside
    are all refused; a folder means its index.html.
    """
    path = unquote(url_path)
    if "\x00" in path or "\\" in path:
        return None
    parts = [p for p in path.split("/") if p]
    if any(p in ("..", ".") for p in parts):
        return None
    root = Path(os.path.realpath(site_dir))
    target = root.joinpath(*parts)
    if url_path.endswith("/") or not parts or target.is_dir():
        target = target / "index.html"
    resolved = Path(os.path.realpath(target))
    if resolved != root and root not in resolved.parents:
        return None
    return resolved


def open_page(query: str) -> str | None:
    """The page a tab's event stream names (``?page=kurs/x/index.html``), or None."""
    values = parse_qs(query, keep_blank_values=True).get("page")
    if not values:
        return None
    page = values[0].lstrip("/")
    parts = page.split("/")
    if len(page) > 1000 or "\x00" in page or "\\" in page or any(p in ("..", ".") for p in parts):
        return None
    return page or "index.html"


def inject_reload(page: bytes, *, error: bool, generation: int = 0) -> bytes:
    """The page with the reload script before ``</body>`` (or at the end); ``generation`` is
    the state the tabs were last told when the page was served."""
    script = RELOAD_SCRIPT.format(
        error=" data-error" if error else "",
        showing_error="true" if error else "false",
        events=EVENTS_PATH,
        generation=generation,
    ).encode()
    marker = page.rfind(b"</body>")
    if marker == -1:
        return page + script
    return page[:marker] + script + page[marker:]
