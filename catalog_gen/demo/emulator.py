"""A local Frontcore v2 emulator: a real HTTP server that serves a ``SampleCatalog``.

It reproduces what the reference (``frontcore-api.md``) documents and, where the docs are silent,
makes the choices of its §9.2 configurable, so the client is tested against both readings:

- an ``X-API-Key`` check answering ``{"error": "Wrong API Key"}`` (401, or 200 if asked);
- a token bucket per key (5 req/s by default) answering 429 with an empty body;
- bare-array lists paged by ``limit``/``page`` whose only end signal is a short page, and the
  reported ``{items, pagination}`` wrapper on ``/v2/coursedates``;
- PHP ``json_encode`` output: escaped slashes and ``\\uXXXX`` for every non-ASCII character;
- soft-deleted and invisible dates listed with their flags;
- injectable faults (4xx and 5xx, 403, 404, dropped connections, slow and truncated answers,
  errors with 200, a damaged gzip body, a UTF-16 body), whose error text a test may choose (an
  API that echoes what it was sent);
- hostile answers, each costing the client what a careless one would pay in full: a gzip bomb
  (0.5 MB on the wire, 500 MB unpacked), a huge plain body (300 MB), an endless chunked body,
  and a trickle of one byte every ``delay`` seconds (status line and headers included);
- the course list in ascending ids, or most recently updated first (``course_order``), with
  ``order_by``/``order_direction`` honoured or ignored (``course_ordering``);
- a hook run before each answer (``on_request``), so a test can change the catalog between
  two pages of one list.

Every request answered, faulted or refused, is logged, so tests count requests instead of
guessing. Run it standalone with ``python -m catalog_gen.demo.emulator``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from catalog_gen.demo.sample import OSLO, SampleCatalog, generate_catalog
from catalog_gen.snapshot import Record

DEFAULT_LIMIT = 75
BATCH_DEFAULT_LIMIT = 25
MAX_LIMIT = 250
FAULT_KINDS = (
    "400",
    "500",
    "502",
    "503",
    "403",
    "404",
    "drop",
    "slow",
    "truncate",
    "error200",
    "429",
    "gzip",
    "charset",
    "bomb",
    "huge",
    "endless",
    "trickle",
)
#: What the hostile faults send by default, in bytes (the security review's figures): the
#: bomb's unpacked size (about 0.5 MB gzipped) and the huge plain body's size. Both hold a
#: JSON list (``[`` … ``]`` around spaces), valid to a client that reads it all.
BOMB_BYTES = 500_000_000
HUGE_BYTES = 300_000_000
#: The hostile bodies are written this many bytes at a time (the emulator never holds them).
WRITE_STEP = 1 << 16

#: Course fields a "summary" list item keeps; the rest needs ``GET /v2/courses/{id}``.
SUMMARY_FIELDS = (
    "id",
    "title",
    "reference",
    "is_active",
    "type",
    "level",
    "form_of_teaching",
    "teaching_language",
    "price",
    "categories",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the emulator answered it; ``status`` 0 means the connection was dropped."""

    at: float  # time.monotonic() when the request arrived
    method: str
    path: str  # as requested, without the query string
    params: dict[str, list[str]]
    status: int


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class _Fault:
    kind: str
    remaining: int
    path: str | None
    delay: float
    #: The ``error`` text of a 400, 5xx or error200 answer, instead of the usual one.
    message: str | None = None
    #: Bytes of a bomb once unpacked, or of a huge body; None for the defaults above.
    size: int | None = None


class _BadRequest(Exception):
    """A query the API would refuse; the message becomes the ``error`` of a 400 answer."""


def php_json(payload: Any) -> bytes:
    """JSON as PHP's ``json_encode`` writes it by default: ``\\/`` and ``\\uXXXX`` escapes."""
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/").encode("ascii")


def _json_reply(status: int, payload: Any, *extra: tuple[str, str]) -> _Reply:
    return _Reply(status, php_json(payload), (("Content-Type", "application/json"), *extra))


class _TokenBucket:
    """``rate`` tokens of capacity, refilled at ``rate`` per second: Frontcore's 5 req/s."""

    def __init__(self, rate: float, now: float):
        self.rate = rate
        self.tokens = rate
        self.updated = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Emulator:
    """Frontcore's read API on 127.0.0.1, serving ``catalog`` (which tests may mutate live)."""

    def __init__(
        self,
        catalog: SampleCatalog,
        *,
        api_key: str = "emulator-key",
        rate_limit: float = 5.0,
        retry_after: bool = True,
        course_list: str = "full",
        auth_error_status: int = 401,
        wrapped_coursedates: bool = True,
        course_order: str = "id",
        course_ordering: bool = True,
        list_omits: tuple[str, ...] = (),
        clock: Callable[[], datetime] | None = None,
        port: int = 0,
    ):
        if course_list not in ("full", "summary"):
            raise ValueError("course_list must be 'full' or 'summary'")
        if course_order not in ("id", "updated"):
            raise ValueError("course_order must be 'id' or 'updated'")
        self.catalog = catalog
        self.api_key = api_key
        self.rate_limit = rate_limit
        self.retry_after = retry_after
        self.course_list = course_list
        self.auth_error_status = auth_error_status
        self.wrapped_coursedates = wrapped_coursedates
        #: The course list's own order: ascending ids, or most recently updated first (which
        #: moves a course to the front when it changes between two pages).
        self.course_order = course_order
        #: Whether the course list honours order_by/order_direction (undocumented there).
        self.course_ordering = course_ordering
        #: Course fields left out of course-list items (the detail GET still has them).
        self.list_omits = list_omits
        #: Called with (path, params) before each request is answered: tests change the
        #: catalog between two pages with it.
        self.on_request: Callable[[str, dict[str, list[str]]], None] | None = None
        # Default to the catalog's clock, so a test that pins one pins both.
        self.clock = clock or (lambda: catalog.clock())
        self.port = port
        self.requests: list[LoggedRequest] = []
        self._faults: list[_Fault] = []
        #: Gzip bombs made so far, by unpacked size (making one takes a second).
        self._bombs: dict[int, bytes] = {}
        self._buckets: dict[str, _TokenBucket] = {}
        self._state = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind 127.0.0.1 and serve from a daemon thread; returns self for chaining."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self.port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="frontcore-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections, so clients do not hang."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes "slow" faults; they then drop their connection
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v2"

    # -- test controls ---------------------------------------------------------------------------

    def clear_log(self) -> None:
        with self._state:
            self.requests.clear()

    def inject(
        self,
        kind: str,
        *,
        times: int = 1,
        path: str | None = None,
        delay: float = 2.0,
        message: str | None = None,
        size: int | None = None,
    ) -> None:
        """Queue a fault for the next ``times`` requests whose path contains ``path``;
        ``message`` replaces the ``error`` text of a 400, 5xx or error200 answer; ``delay`` is
        the wait of a slow answer, or between two bytes of a trickle; ``size`` the bytes of a
        bomb once unpacked, or of a huge body."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if kind == "bomb":
            self._bomb(size or BOMB_BYTES)  # made now, so the request does not wait for it
        with self._state:
            self._faults.append(_Fault(kind, times, path, delay, message, size))

    # -- one request ---------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        """Auth, then rate limit, then faults, then the answer; everything is logged."""
        arrived = time.monotonic()
        url = urlsplit(handler.path)
        params = parse_qs(url.query, keep_blank_values=True)
        _discard_body(handler)
        key = handler.headers.get("X-API-Key")

        def log(status: int) -> None:
            entry = LoggedRequest(arrived, handler.command, url.path, params, status)
            with self._state:
                self.requests.append(entry)

        if key != self.api_key:
            reply = _json_reply(self.auth_error_status, {"error": "Wrong API Key"})
        elif not self._admit(key, arrived):
            reply = self._too_many()
        else:
            fault = self._take_fault(url.path)
            kind = fault.kind if fault else None
            if kind == "drop":
                log(0)
                handler.close_connection = True
                return
            if kind in ("bomb", "huge", "endless") and fault is not None:
                log(200)
                self._send_hostile(handler, fault)
                return
            if kind == "400" and fault is not None:
                reply = _json_reply(400, {"error": fault.message or "Bad request"})
            elif kind in ("500", "502", "503") and fault is not None:
                reply = _json_reply(int(kind), {"error": fault.message or "Internal Server Error"})
            elif kind in ("403", "404") and fault is not None:
                default = "Forbidden" if kind == "403" else "Not found"
                reply = _json_reply(int(kind), {"error": fault.message or default})
            elif kind == "error200" and fault is not None:
                message = fault.message or "Temporary failure, please try again"
                reply = _json_reply(200, {"error": message})
            elif kind == "429":
                reply = self._too_many()
            else:
                if self.on_request is not None:
                    self.on_request(url.path, params)
                reply = self._answer(handler.command, url.path, params)
                if kind == "truncate":
                    reply.body = reply.body[: len(reply.body) // 2]
                elif kind == "gzip":  # announced as gzip, but not compressed: undecodable
                    reply.headers = (*reply.headers, ("Content-Encoding", "gzip"))
                elif kind == "charset":  # JSON must be UTF-8 (RFC 8259); this says otherwise
                    reply = _Reply(
                        reply.status,
                        reply.body.decode("ascii").encode("utf-16"),
                        (("Content-Type", "application/json; charset=utf-16"),),
                    )
                elif kind == "trickle" and fault is not None:
                    log(reply.status)
                    self._trickle(handler, reply, fault.delay)
                    return
                elif kind == "slow" and fault is not None:
                    # Logged before the wait, so a test can see the request is in flight.
                    log(reply.status)
                    if self._stopping.wait(fault.delay):
                        handler.close_connection = True
                        return
                    handler.send(reply)
                    return
        log(reply.status)
        handler.send(reply)

    # -- hostile answers -------------------------------------------------------------------------

    def _bomb(self, size: int) -> bytes:
        """A gzip body that unpacks to ``size`` bytes of a JSON list (made once per size)."""
        with self._state:
            made = self._bombs.get(size)
        if made is None:
            packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
            made = b"".join(
                [*(packer.compress(piece) for piece in _spaces_list(size)), packer.flush()]
            )
            with self._state:
                self._bombs[size] = made
        return made

    def _send_hostile(self, handler: _Handler, fault: _Fault) -> None:
        """A 200 whose body costs a careless client dearly; written until done, until the
        client hangs up, or until the emulator stops."""
        handler.close_connection = True
        head = [("Content-Type", "application/json"), ("Connection", "close")]
        if fault.kind == "bomb":
            packed = self._bomb(fault.size or BOMB_BYTES)
            head += [("Content-Encoding", "gzip"), ("Content-Length", str(len(packed)))]
            body: Iterator[bytes] = (
                packed[i : i + WRITE_STEP] for i in range(0, len(packed), WRITE_STEP)
            )
        elif fault.kind == "huge":
            size = fault.size or HUGE_BYTES
            head.append(("Content-Length", str(size)))
            body = _spaces_list(size)
        else:  # endless
            head.append(("Transfer-Encoding", "chunked"))
            body = _endless_chunks()
        try:
            handler.send_response(200)
            for name, value in head:
                handler.send_header(name, value)
            handler.end_headers()
            for piece in body:
                if self._stopping.is_set():
                    return
                handler.wfile.write(piece)
        except OSError:
            pass  # the client refused the rest, as it should (or the emulator stopped)

    def _trickle(self, handler: _Handler, reply: _Reply, delay: float) -> None:
        """``reply``, status line and headers included, one byte every ``delay`` seconds."""
        handler.close_connection = True
        status = f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}"
        head = [status, f"Content-Length: {len(reply.body)}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in reply.headers]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body
        try:
            for index in range(len(raw)):
                handler.wfile.write(raw[index : index + 1])
                if self._stopping.wait(delay):
                    return
        except OSError:
            pass  # the client gave up, as it should (or the emulator stopped)

    def _admit(self, key: str, now: float) -> bool:
        if self.rate_limit <= 0:  # switched off, for tests that hammer the server on purpose
            return True
        with self._state:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _TokenBucket(self.rate_limit, now)
            return bucket.take(now)

    def _too_many(self) -> _Reply:
        # Frontcore: "throttled requests return no content".
        return _Reply(429, b"", (("Retry-After", "1"),) if self.retry_after else ())

    def _take_fault(self, path: str) -> _Fault | None:
        with self._state:
            for fault in self._faults:
                if fault.path is None or fault.path in path:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _answer(self, method: str, path: str, params: dict[str, list[str]]) -> _Reply:
        if method != "GET":
            return _json_reply(405, {"error": "Method not allowed"}, ("Allow", "GET"))
        segments = _route(path)
        if segments is None:
            return _json_reply(404, {"error": "Not found"})
        try:
            with self.catalog.lock:
                status, payload = self._dispatch(segments, params)
                # Encoded under the lock: a test mutating the catalog never tears an answer.
                return _json_reply(status, payload)
        except _BadRequest as exc:
            return _json_reply(400, {"error": str(exc)})

    # -- endpoints -----------------------------------------------------------------------------

    def _dispatch(self, segments: list[str], params: dict[str, list[str]]) -> tuple[int, Any]:
        match segments:
            case ["courses"]:
                return 200, self._courses(params)
            case ["courses", course_id]:
                return self._course(course_id, params)
            case ["courses", course_id, "coursedates"]:
                return self._course_dates(course_id, params)
            case ["courses", course_id, "coursedates", date_id]:
                return self._course_date(course_id, date_id)
            case ["batch", "coursedates"]:
                return 200, self._batch_dates(params)
            case ["coursedates"]:
                return 200, self._all_dates(params)
            case ["nextcoursedates"]:
                return 200, self._next_dates(params)
            case ["locations"]:
                return 200, self._reference(self.catalog.locations, params)
            case ["instructors"]:
                return 200, self._reference(self.catalog.instructors, params)
            case ["orders", "products"]:
                return 200, self._products(params)
        return 404, {"error": "Not found"}

    def _courses(self, params: dict[str, list[str]]) -> list[Record]:
        courses = [c for _, c in sorted(self.catalog.courses.items())]
        if self.course_order == "updated":  # stable sort: ties stay in id order
            courses.sort(
                key=lambda c: _timestamp(c.get("updated_at")) or datetime.min, reverse=True
            )
        if self.course_ordering and ("order_by" in params or "order_direction" in params):
            if (_one(params, "order_by") or "id") != "id":
                raise _BadRequest("Field(s) not valid: order_by")
            direction = _one(params, "order_direction") or "asc"
            if direction not in ("asc", "desc"):
                raise _BadRequest("Field(s) not valid: order_direction")
            courses.sort(key=lambda c: _id_order(c["id"]), reverse=direction == "desc")
        courses = _paginate(_record_filters(courses, params, self.clock), params, DEFAULT_LIMIT)
        if self.course_list == "summary":
            courses = [{name: c[name] for name in SUMMARY_FIELDS} for c in courses]
        if self.list_omits:
            courses = [{k: v for k, v in c.items() if k not in self.list_omits} for c in courses]
        return courses

    def _course(self, course_id: str, params: dict[str, list[str]]) -> tuple[int, Any]:
        cid = _int_or_none(course_id)
        course = None if cid is None else self.catalog.courses.get(cid)
        if course is None:
            return 404, {"error": "Course not found"}
        includes = set(params.get("include[]", []) + params.get("include", []))
        answer = dict(course)
        if "products" in includes:
            answer["products"] = [
                p
                for _, p in sorted(self.catalog.products.items())
                if p["id_type"] == 2 and p["id_relation"] == course["id"]
            ]
        if "labels" in includes:
            answer["labels"] = []
        return 200, answer

    def _course_dates(self, course_id: str, params: dict[str, list[str]]) -> tuple[int, Any]:
        cid = _int_or_none(course_id)
        if cid not in self.catalog.courses:
            return 404, {"error": "Course not found"}
        dates = [d for d in self.catalog.coursedates.values() if d["course_id"] == cid]
        dates = _paginate(self._filter_dates(dates, params), params, DEFAULT_LIMIT)
        return 200, [self._with_course(d) for d in dates]

    def _course_date(self, course_id: str, date_id: str) -> tuple[int, Any]:
        cid = _int_or_none(course_id)
        if cid not in self.catalog.courses:
            return 404, {"error": "Course not found"}
        did = _int_or_none(date_id)
        record = None if did is None else self.catalog.coursedates.get(did)
        if record is None or record["course_id"] != cid:
            return 404, {"error": "Course date not found"}
        return 200, self._with_course(record)

    def _batch_dates(self, params: dict[str, list[str]]) -> list[Record]:
        wanted = _course_ids(params)
        dates = [d for d in self.catalog.coursedates.values() if d["course_id"] in wanted]
        dates = _paginate(self._filter_dates(dates, params), params, BATCH_DEFAULT_LIMIT)
        return [self._with_course(d) for d in dates]

    def _all_dates(self, params: dict[str, list[str]]) -> Any:
        dates = list(self.catalog.coursedates.values())
        if "coursedate_id" in params:  # integrations look single dates up this way
            wanted = _int_param(params, "coursedate_id")
            dates = [d for d in dates if d["coursedate_id"] == wanted]
        dates = self._filter_dates(dates, params)
        page_items = _paginate(dates, params, DEFAULT_LIMIT)
        includes = set(params.get("include[]", []))
        items = [
            {**d, "course": self._slim_course(d)} if "course" in includes else d for d in page_items
        ]
        if not self.wrapped_coursedates:
            return items
        page = _page_number(params)
        more = len(dates) > page * _limit(params, DEFAULT_LIMIT)
        return {
            "items": items,
            "pagination": {"current_page": page, "next_page": page + 1 if more else None},
        }

    def _next_dates(self, params: dict[str, list[str]]) -> list[Record]:
        now = _local_naive(self.clock())
        upcoming = [d for d in self.catalog.coursedates.values() if _date_moment(d, "start") >= now]
        return [self._with_course(d) for d in self._filter_dates(upcoming, params)]

    def _reference(self, records: dict[int, Record], params: dict[str, list[str]]) -> list[Record]:
        listed = [r for _, r in sorted(records.items())]
        return _paginate(_record_filters(listed, params, self.clock), params, DEFAULT_LIMIT)

    def _products(self, params: dict[str, list[str]]) -> list[Record]:
        listed = [p for _, p in sorted(self.catalog.products.items())]
        if "id_type" in params:
            id_type = _int_param(params, "id_type")
            listed = [p for p in listed if p["id_type"] == id_type]
        return _paginate(_record_filters(listed, params, self.clock), params, DEFAULT_LIMIT)

    def _slim_course(self, record: Record) -> Record:
        course = self.catalog.courses[record["course_id"]]
        return {"id": course["id"], "title": course["title"], "reference": course["reference"]}

    def _with_course(self, record: Record) -> Record:
        """A date as the per-course and batch lists show it: a slim course, no flat course_id."""
        answer = {k: v for k, v in record.items() if k != "course_id"}
        answer["course"] = self._slim_course(record)
        return answer

    def _filter_dates(self, dates: list[Record], params: dict[str, list[str]]) -> list[Record]:
        """The course-date filters and ordering shared by every date list."""
        dates = _record_filters(dates, params, self.clock, id_key="coursedate_id")
        for name, edge in (
            ("start_date_at_min", "start"),
            ("start_date_at_max", "start"),
            ("end_date_at_min", "end"),
            ("end_date_at_max", "end"),
        ):
            bound = _bound(params, name, self.clock)
            if bound is None:
                continue
            at_least = name.endswith("_min")
            dates = [d for d in dates if _within(_date_moment(d, edge), bound, at_least)]
        if "status_id" in params:
            status = _int_param(params, "status_id")
            dates = [d for d in dates if d["status"]["id"] == status]
        order_by = _one(params, "order_by") or "id"
        direction = _one(params, "order_direction") or "asc"
        if order_by not in ("id", "startdate"):
            raise _BadRequest("Field(s) not valid: order_by")
        if direction not in ("asc", "desc"):
            raise _BadRequest("Field(s) not valid: order_direction")
        if order_by == "id":
            dates.sort(key=lambda d: d["coursedate_id"])
        else:
            dates.sort(key=lambda d: (_date_moment(d, "start"), d["coursedate_id"]))
        if direction == "desc":
            dates.reverse()
        return dates


# --------------------------------------------------------------------------------------------
# Query parameters
# --------------------------------------------------------------------------------------------


def _route(path: str) -> list[str] | None:
    """The path below the version prefix, in segments; both host forms are accepted."""
    for prefix in ("/api/v2/", "/v2/"):
        if path.startswith(prefix):
            rest = path[len(prefix) :].strip("/")
            return rest.split("/") if rest else []
    return None


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1].strip() if values else None


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _int_param(params: dict[str, list[str]], name: str) -> int:
    value = _int_or_none(_one(params, name) or "")
    if value is None:
        raise _BadRequest(f"Field(s) not valid: {name}")
    return value


def _limit(params: dict[str, list[str]], default: int) -> int:
    if not _one(params, "limit"):
        return default
    limit = _int_param(params, "limit")
    return default if limit < 1 else min(limit, MAX_LIMIT)


def _page_number(params: dict[str, list[str]]) -> int:
    return max(_int_param(params, "page"), 1) if _one(params, "page") else 1


def _paginate(records: list[Record], params: dict[str, list[str]], default: int) -> list[Record]:
    """One page of a bare-array list; the only end signal is a short (or empty) page."""
    limit = _limit(params, default)
    start = (_page_number(params) - 1) * limit
    return records[start : start + limit]


def _course_ids(params: dict[str, list[str]]) -> set[int]:
    """``course_ids[]=1&course_ids[]=2``, ``course_ids=1&course_ids=2`` or ``course_ids=1,2``."""
    raw = params.get("course_ids[]", []) + params.get("course_ids", [])
    parts = [part.strip() for value in raw for part in value.split(",") if part.strip()]
    if not parts:
        raise _BadRequest("course_ids is required")
    ids = set()
    for part in parts:
        value = _int_or_none(part)
        if value is None:
            raise _BadRequest("Field(s) not valid: course_ids")
        ids.add(value)
    return ids


def _local_naive(moment: datetime) -> datetime:
    """Oslo wall-clock time without a zone: what filter strings and date fields mean."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(OSLO).replace(tzinfo=None)


def _bound(
    params: dict[str, list[str]], name: str, clock: Callable[[], datetime]
) -> date | datetime | None:
    """A filter bound: a ``date`` (compares days, inclusive) or a local ``datetime``."""
    value = _one(params, name)
    if not value:
        return None
    if value == "now":
        return _local_naive(clock())
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return _local_naive(datetime.fromisoformat(value))
    except ValueError:
        raise _BadRequest(f"Field(s) not valid: {name}") from None


def _within(moment: datetime, bound: date | datetime, at_least: bool) -> bool:
    """Inclusive comparison; a date-only bound compares the day, not the moment."""
    if isinstance(bound, datetime):
        return moment >= bound if at_least else moment <= bound
    day = moment.date()
    return day >= bound if at_least else day <= bound


def _date_moment(record: Record, edge: str) -> datetime:
    """When a date starts or ends, in local time; an unknown time spans the whole day."""
    day = date.fromisoformat(record[f"{edge}_at"])
    clock_time = record.get(f"{edge}_time_at")
    if clock_time:
        return datetime.fromisoformat(f"{day.isoformat()}T{clock_time}")
    return datetime.combine(day, datetime.min.time() if edge == "start" else datetime.max.time())


def _timestamp(value: Any) -> datetime | None:
    """A record's created/updated timestamp as Oslo local time (ISO with offset, or zone-less)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return _local_naive(datetime.fromisoformat(value.replace(" ", "T")))
    except ValueError:
        return None


def _record_filters(
    records: list[Record],
    params: dict[str, list[str]],
    clock: Callable[[], datetime],
    *,
    id_key: str = "id",
) -> list[Record]:
    """``since_id`` and the created/updated windows common to every documented list.

    A record without the timestamp (venues have none) is not filtered out by it.
    """
    if _one(params, "since_id"):
        since = _int_param(params, "since_id")
        records = [r for r in records if r[id_key] > since]
    for name in ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max"):
        bound = _bound(params, name, clock)
        if bound is None:
            continue
        field_name, at_least = name[: -len("_min")], name.endswith("_min")
        kept = []
        for record in records:
            moment = _timestamp(record.get(field_name))
            if moment is None or _within(moment, bound, at_least):
                kept.append(record)
        records = kept
    return records


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, emulator: Emulator):
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    # A TCP server's requests are sockets: the stubs' wider type (socketserver's
    # _RequestType) also holds a UDP server's (data, socket) pairs, which never come here.
    def process_request(  # type: ignore[override]
        self, request: socket.socket, client_address: tuple[str, int]
    ) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            open_now = list(self._connections)
        for connection in open_now:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    #: An idle keep-alive connection is closed after this long, so threads do not pile up.
    timeout = 120

    def do_GET(self) -> None:
        self.server.emulator._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def send(self, reply: _Reply) -> None:
        try:
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up; nothing left to tell it

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests and the demo read the request log, not stderr."""


def _discard_body(handler: BaseHTTPRequestHandler) -> None:
    """Read a request body we ignore, so the next request on the connection parses cleanly."""
    length = _int_or_none(handler.headers.get("Content-Length") or "0") or 0
    if length > 0:
        handler.rfile.read(length)


def _spaces_list(size: int) -> Iterator[bytes]:
    """``size`` bytes of a JSON list of nothing: ``[``, spaces, ``]``, a step at a time."""
    yield b"["
    left = size - 2
    block = b" " * WRITE_STEP
    while left > 0:
        yield block[: min(left, WRITE_STEP)]
        left -= WRITE_STEP
    yield b"]"


def _endless_chunks() -> Iterator[bytes]:
    """A chunked body that never ends: ``[``, then spaces, forever."""
    block = b" " * WRITE_STEP
    yield b"%x\r\n[%s\r\n" % (len(block) + 1, block)
    while True:
        yield b"%x\r\n%s\r\n" % (len(block), block)


def _id_order(value: object) -> tuple[int, int, str]:
    """Ids in numeric order; an id a test made odd (a string, null) sorts after them all
    instead of failing the answer."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, str(value))


# --------------------------------------------------------------------------------------------
# Standalone
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Serve a generated catalog in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m catalog_gen.demo.emulator",
        description="Serve a generated sample catalog through a local Frontcore v2 emulator.",
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--courses", type=int, default=48)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--api-key", default="emulator-key")
    parser.add_argument("--rate-limit", type=float, default=5.0, help="requests per second")
    args = parser.parse_args(argv)
    catalog = generate_catalog(args.courses, seed=args.seed)
    emulator = Emulator(catalog, api_key=args.api_key, rate_limit=args.rate_limit, port=args.port)
    try:
        emulator.start()
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    print(emulator.base_url, flush=True)
    print(f"X-API-Key: {args.api_key}; Ctrl-C stops the emulator", file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
