"""The polite wire: one rate limiter and one retry policy around every Frontcore request, and
bounds on what one answer may cost.

Layers, outermost first (httpx/hishel style, no ``if`` statements sprinkled through callers):

    Transport.get_json     retry policy (tenacity): 429, 5xx, timeouts, bad JSON; never a bad key,
                           never an answer beyond its bounds
      _read_body           the bounds: bytes received (``max_answer_bytes``), bytes once
                           decompressed (``max_decoded_bytes``, unpacked here in steps of 1 MB,
                           so a gzip bomb stops within a step of the cap), and the deadline
      _decode              strict decoding: UTF-8 only, RFC 8259 JSON only (no NaN/Infinity, no
                           number JSON readers disagree on), bounded nesting
      httpx.Client         base URL, the X-API-Key header, timeouts, the body as a stream
        _PacedTransport    the rate limiter: every attempt, retries included, waits its turn
                           here; then the answer's deadline starts
          _BoundedHTTPTransport   httpx's own, over sockets that never wait past the deadline

Nothing the server sends escapes as anything but our named errors: a body that cannot be
decoded (bad gzip, not UTF-8, not JSON) is an ApiError like a 5xx, retried and then reported,
so ``--offline-on-error`` handles it; an answer beyond a bound is a ``LimitExceeded``, reported
at once (see its docstring for why it is not retried).

Why a deadline besides the timeout: httpx's read timeout bounds each wait for the next bytes,
so a server sending one byte every two seconds never trips it, in the headers or in the body.
The deadline bounds the whole answer. It is checked as each piece arrives, and every socket
read waits at most until the deadline, so even a trickle of headers is cut off on time.

Frontcore allows 5 requests per second per *account*, shared by every script using the key, and
asks clients to stay well below it and never burst. We default to 4 in any sliding second and also
space requests evenly, so even the first second is not a burst.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import ssl
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import tenacity

from catalog_gen import __version__
from catalog_gen.config import FrontcoreSettings, public_base_url
from catalog_gen.errors import ApiError, AuthError, LimitExceeded, RateLimited, TransientApiError
from catalog_gen.printable import printable
from catalog_gen.source.scrub import Scrubber

log = logging.getLogger(__name__)

#: Integers outside this range are read differently by JSON libraries (orjson, which loads
#: snapshots, turns them into floats; JavaScript rounds them): refused, never stored.
INT_RANGE = range(-(2**63), 2**64)

#: Added to the one-second window so that requests spaced exactly at the limit on our clock
#: cannot land inside one second on the server's clock.
WINDOW_MARGIN = 0.05

#: The settings' megabytes, as bytes (the fetch summary counts MB the same way).
MB = 1_000_000
#: The bounds of one answer by default: the settings' defaults (config.py declares them).
DEFAULTS = FrontcoreSettings()
#: A compressed body is unpacked at most this many bytes at a time: one 64 kB read of gzip may
#: hold 64 MB, and the cap on decoded bytes must stop a bomb before it is unpacked, not after.
INFLATE_STEP = 1 << 20
#: The encodings asked for, and the only ones unpacked (httpx would add br and zstd when their
#: packages happen to be installed; a bound must not depend on that).
ACCEPT_ENCODING = "gzip, deflate"


class RateLimiter:
    """At most ``rate`` request starts in any sliding window of a second, evenly spaced.

    Slots are reserved under a lock and slept for outside it, so concurrent callers queue up
    one behind the other instead of bursting together.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.window = 1.0 + WINDOW_MARGIN
        self.per_window = max(1, math.floor(rate))
        self.spacing = self.window / rate
        self._clock, self._sleep = clock, sleep
        self._starts: deque[float] = deque(maxlen=self.per_window)
        self._next_start = -math.inf
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> None:
        """Block until this request may start."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            if len(self._starts) == self.per_window:
                start = max(start, self._starts[0] + self.window)
            self._starts.append(start)
            self._next_start = start + self.spacing
        delay = start - now
        if delay > 0:
            self.waited += delay
            self._sleep(delay)


@dataclass
class TransportStats:
    """What a run cost the account: the figures the fetch summary reports."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


class AnswerDeadline:
    """When the answer now awaited must be complete, for each thread: started as a request
    leaves the rate limiter, cleared when its answer is read (or given up)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._local = threading.local()

    def start(self) -> None:
        self._local.at = self._clock() + self.seconds

    def expire(self) -> None:
        """Mark it passed: a socket read it cut short ran out (a timer may fire a hair early)."""
        self._local.at = -math.inf

    def clear(self) -> None:
        self._local.at = None

    def remaining(self) -> float | None:
        """Seconds left, or None when no answer is awaited in this thread."""
        at = getattr(self._local, "at", None)
        return None if at is None else at - self._clock()

    def passed(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0


class _PacedTransport(httpx.BaseTransport):
    """An httpx transport that makes every request, retries included, wait for the limiter;
    the answer's deadline starts when the request leaves it."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        limiter: RateLimiter,
        stats: TransportStats,
        deadline: AnswerDeadline,
    ):
        self._inner, self._limiter, self._stats = inner, limiter, stats
        self._deadline = deadline

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._limiter.acquire()
        self._deadline.start()
        self._stats.requests += 1
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every read waits no longer than the answer's deadline allows."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: AnswerDeadline):
        self._inner, self._deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        left = self._deadline.remaining()
        if left is None or (timeout is not None and timeout < left):
            return self._inner.read(max_bytes, timeout)
        try:
            if left <= 0:
                raise httpcore.ReadTimeout("the answer's deadline has passed")
            return self._inner.read(max_bytes, left)
        except httpcore.ReadTimeout:
            self._deadline.expire()
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, timeout), self._deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    """httpcore's sockets, each wrapped in a _DeadlineStream."""

    def __init__(self, deadline: AnswerDeadline):
        self._deadline = deadline

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _DeadlineStream(super().connect_tcp(*args, **kwargs), self._deadline)


class _BoundedHTTPTransport(httpx.HTTPTransport):
    """httpx's HTTPTransport (its request mapping, errors and response stream), over a
    connection pool whose sockets honour the answer's deadline.

    httpx takes no network backend, so its pool is replaced by an equal one that has ours;
    should httpx stop keeping its pool where this expects it, construction fails loudly
    rather than losing the deadline (tests/test_transport.py cuts off a trickle of headers).
    """

    def __init__(self, deadline: AnswerDeadline):
        context = httpx.create_ssl_context()
        super().__init__(verify=context, retries=0)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise RuntimeError("this httpx keeps no connection pool where catalog-gen expects")
        self._pool = httpcore.ConnectionPool(  # as httpx makes it, with httpx's default limits
            ssl_context=context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            retries=0,
            network_backend=_DeadlineBackend(deadline),
        )


class Transport:
    """GET JSON from Frontcore politely; raise our named errors, never httpx's."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        rate_limit: float = 4.0,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_retry_after: float = 120.0,
        max_answer_bytes: int = DEFAULTS.max_answer_mb * MB,
        max_decoded_bytes: int = DEFAULTS.max_decoded_mb * MB,
        answer_deadline: float = DEFAULTS.answer_deadline_seconds,
        backoff_max: float = 30.0,
        http_transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stats = TransportStats()
        self.base_url = base_url
        #: Cleans text taken from answers: lone surrogates, and this key in any written form.
        self.scrubber = Scrubber(api_key)
        self.limiter = RateLimiter(rate_limit, clock=clock, sleep=sleep)
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        #: What one answer may cost: bytes received, bytes once decompressed, and time from
        #: leaving the rate limiter to its last byte.
        self.max_answer_bytes = max_answer_bytes
        self.max_decoded_bytes = max_decoded_bytes
        self.deadline = AnswerDeadline(answer_deadline, clock)
        self._sleep = sleep
        self._backoff = tenacity.wait_exponential_jitter(initial=1, max=backoff_max, jitter=1)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={
                "X-API-Key": api_key,
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
                "User-Agent": f"catalog-gen/{__version__}",
            },
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            transport=_PacedTransport(
                http_transport or _BoundedHTTPTransport(self.deadline),
                self.limiter,
                self.stats,
                self.deadline,
            ),
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``path`` (relative to the API base) and return its decoded JSON body.

        Retries 429s, 5xx, timeouts, dropped connections, truncated or invalid JSON and error
        bodies sent with a 2xx status, at most ``max_retries`` times; raises AuthError at once,
        and LimitExceeded for an answer beyond its bounds (too large, unpacking too large, or
        not complete by its deadline).
        """
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type((TransientApiError, RateLimited)),
            sleep=self._sleep,
            before_sleep=self._before_retry,
            reraise=True,
        )
        try:
            return retrying(self._get_once, path.lstrip("/"), params or {})
        except RateLimited as exc:
            raise ApiError(
                f"{exc}, still after {_retries(self.max_retries)}; another client may be "
                "using this account's rate limit",
                status=429,
                path=exc.path,
            ) from None
        except TransientApiError as exc:
            raise ApiError(
                f"{exc} (gave up after {_retries(self.max_retries)})",
                status=exc.status,
                path=exc.path,
            ) from None

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return exc.retry_after  # honoured in full; the cap is checked when it arrives
        return self._backoff(state)

    def _before_retry(self, state: tenacity.RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        log.info("retrying in %.1f s: %s", wait, exc)

    def _get_once(self, path: str, params: dict[str, Any]) -> Any:
        shown = "/" + path
        try:
            with self._http.stream("GET", path, params=params) as response:
                body = self._read_body(shown, response)
        except httpx.TimeoutException:
            if self.deadline.passed():
                raise self._too_slow(shown) from None
            raise TransientApiError(
                f"GET {shown}: no answer within {self.timeout:g} s", path=shown
            ) from None
        except zlib.error:
            raise TransientApiError(
                f"GET {shown}: the answer could not be decoded (a damaged compressed body)",
                path=shown,
            ) from None
        except httpx.RequestError as exc:
            if self.deadline.passed():  # a server that gave up as the deadline cut it off
                raise self._too_slow(shown) from None
            raise TransientApiError(
                f"GET {shown}: connection failed ({type(exc).__name__})", path=shown
            ) from None
        finally:
            self.deadline.clear()
        return self._decode(shown, response, body)

    def _read_body(self, path: str, response: httpx.Response) -> bytearray:
        """The answer's body, unpacked, within its bounds; LimitExceeded at the first byte
        beyond one. Leaving the ``stream`` block then closes the connection mid-answer: the
        rest of a refused answer is never read."""
        declared = _content_length(response)
        if declared is not None and declared > self.max_answer_bytes:
            raise self._refused(
                path,
                f"announces {_mb(declared)}, more than",
                "max_answer_mb",
                self.max_answer_bytes,
            )
        body = bytearray()
        if response.is_stream_consumed:  # read by whoever made it (httpx.MockTransport's)
            pieces: Iterable[bytes] = self._received(path, [response.content])
        else:
            pieces = _unpacked(self._received(path, response.iter_raw()), _codings(response))
        for piece in pieces:
            if len(body) + len(piece) > self.max_decoded_bytes:
                raise self._refused(
                    path,
                    f"unpacks ({_mb(response.num_bytes_downloaded)} received) to more than",
                    "max_decoded_mb",
                    self.max_decoded_bytes,
                )
            body += piece
        return body

    def _received(self, path: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The body's bytes as they arrive, counted, each arrival checked against the deadline
        (the sockets check it too; this covers any other transport)."""
        received = 0
        for chunk in chunks:
            received += len(chunk)
            if received > self.max_answer_bytes:
                raise self._refused(path, "sends more than", "max_answer_mb", self.max_answer_bytes)
            if self.deadline.passed():
                raise self._too_slow(path)
            yield chunk

    def _refused(self, path: str, what: str, setting: str, limit: int) -> LimitExceeded:
        return LimitExceeded(
            f"GET {path}: the answer {what} frontcore.{setting} = {limit / MB:g} MB; "
            "refused, not retried",
            path=path,
        )

    def _too_slow(self, path: str) -> LimitExceeded:
        return LimitExceeded(
            f"GET {path}: the answer was not complete within frontcore.answer_deadline_seconds"
            f" = {self.deadline.seconds:g} s; refused, not retried",
            path=path,
        )

    def _hint(self, status: int) -> str:
        """What to check when a path of the API is not found: its base, when it does not end
        in /v2 (every documented path is under it), as the project reads FRONTCORE_API_URL."""
        base = public_base_url(self.base_url)
        if status != 404 or urlsplit(base).path.rstrip("/").endswith("/v2"):
            return ""
        return f"; the API's address is {base} (FRONTCORE_API_URL): it should end in /v2"

    def _decode(self, path: str, response: httpx.Response, body: bytearray) -> Any:
        status = response.status_code
        if status == 429:
            self.stats.rate_limited += 1
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self.max_retry_after:
                raise ApiError(
                    f"GET {path}: Frontcore asks to wait {retry_after:g} s (429), longer than "
                    f"frontcore.max_retry_after_seconds = {self.max_retry_after:g}",
                    status=429,
                    path=path,
                )
            raise RateLimited(f"GET {path}: rate limited (429)", retry_after=retry_after, path=path)

        payload, unreadable = _parse_json(body)
        message = _error_message(payload)
        if message is not None:
            message = self.scrubber.text(message)[0]
        if status in (401, 403) or (message and _is_key_error(message)):
            raise AuthError(
                f"Frontcore refused the API key (HTTP {status}"
                f"{': ' + message if message else ''}); check FRONTCORE_API_KEY",
                status=status,
                path=path,
            )
        if status >= 500:
            raise TransientApiError(f"GET {path}: HTTP {status}", status=status, path=path)
        if status >= 400:
            reason = message or printable(self.scrubber.text(response.reason_phrase)[0])
            raise ApiError(
                f"GET {path}: HTTP {status}: {reason}{self._hint(status)}", status=status, path=path
            )
        if status >= 300:
            raise ApiError(
                f"GET {path}: unexpected redirect (HTTP {status})", status=status, path=path
            )
        if unreadable is not None:
            error = TransientApiError if unreadable.transient else ApiError
            raise error(f"GET {path}: the answer {unreadable.reason}", status=status, path=path)
        if message is not None:
            # Frontcore may report errors with status 200; a GET is safe to repeat.
            raise TransientApiError(
                f"GET {path}: Frontcore answered with an error: {message}",
                status=status,
                path=path,
            )
        return payload


def _retries(count: int) -> str:
    return f"{count} retry" if count == 1 else f"{count} retries"


def _mb(count: int) -> str:
    return f"{count / MB:.1f} MB"


def _content_length(response: httpx.Response) -> int | None:
    """The size the answer announces, when it announces one we can read."""
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _codings(response: httpx.Response) -> list[str]:
    """The answer's content codings that we unpack, in the order they were applied. Others
    are passed through, as httpx does (the body then fails as JSON, and is retried)."""
    named = response.headers.get("Content-Encoding", "")
    codings = [c.strip().lower() for c in named.split(",")]
    return [c for c in codings if c in ("gzip", "x-gzip", "deflate")]


def _unpacked(chunks: Iterable[bytes], codings: list[str]) -> Iterable[bytes]:
    """The body with its content codings undone, last applied first, in pieces of at most
    ``INFLATE_STEP`` bytes each (a zlib.error for a damaged one)."""
    for coding in reversed(codings):
        chunks = _inflated(chunks, coding)
    return chunks


def _inflated(chunks: Iterable[bytes], coding: str) -> Iterator[bytes]:
    """One coding undone, lazily, never more than ``INFLATE_STEP`` bytes at a time. A deflate
    body may come without its zlib header, as some servers send it (httpx reads both); an
    empty body (a 429 has none) is no damage."""
    wbits = zlib.MAX_WBITS | 16 if coding in ("gzip", "x-gzip") else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    received = False
    for chunk in chunks:
        data = chunk
        while data or received:
            try:
                piece = inflater.decompress(data, INFLATE_STEP)
            except zlib.error:
                if received or coding != "deflate" or wbits < 0:
                    raise
                wbits = -zlib.MAX_WBITS  # raw deflate: try once more from the start
                inflater = zlib.decompressobj(wbits)
                continue
            received = True
            if piece:
                yield piece
            data = inflater.unconsumed_tail
            if not data and len(piece) < INFLATE_STEP:
                break  # else input is left, or output is still held inside zlib
        if inflater.unused_data:
            raise zlib.error("data after the end of the compressed body")
    if received and not inflater.eof:
        raise zlib.error("the compressed body is cut off")


@dataclass(frozen=True)
class _Unreadable:
    """Why a body is not JSON we accept, and whether asking again may help."""

    reason: str
    #: True for what a cut-off answer looks like (empty, not UTF-8, not JSON): retried.
    transient: bool


class _Refused(ValueError):
    """A value JSON readers disagree on: NaN, Infinity, an integer beyond 64 bits."""


def _parse_json(body: bytes | bytearray) -> tuple[Any, _Unreadable | None]:
    """Strict RFC 8259: UTF-8 only (whatever the Content-Type's charset says), finite numbers,
    integers within 64 bits, nesting the parser can handle. An empty body is a cut-off answer.
    """
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")  # a BOM may be ignored (RFC 8259)
    except UnicodeDecodeError:
        return None, _Unreadable("is not UTF-8 (cut off, or in another charset)", transient=True)
    if not text.strip():
        return None, _Unreadable("is empty (cut off?)", transient=True)
    try:
        return json.loads(
            text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int
        ), None
    except _Refused as exc:
        return None, _Unreadable(f"{exc}; refused", transient=False)
    except RecursionError:
        return None, _Unreadable("is nested too deeply to read; refused", transient=False)
    except ValueError:
        return None, _Unreadable("is not valid JSON (truncated?)", transient=True)


def _no_constant(name: str) -> Any:
    raise _Refused(f"has {name}, which JSON does not allow")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"has the number {text[:20]}, too large for a float")
    return value


def _bounded_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:  # more digits than Python converts
        raise _Refused(f"has an integer of {len(text)} digits") from None
    if value not in INT_RANGE:
        raise _Refused(f"has the integer {text[:20]}…, beyond 64 bits")
    return value


#: Error texts from an answer are shown up to this many characters.
MESSAGE_LIMIT = 200


def _error_message(payload: Any) -> str | None:
    """The error an answer reports in its body, in either documented shape, or None."""
    if not isinstance(payload, dict):
        return None
    if payload.get("error"):
        return _message_text(payload["error"])
    if payload.get("successful") is False:
        errors = payload.get("errors") or []
        first = errors[0] if isinstance(errors, list) and errors else {}
        message = first.get("message") if isinstance(first, dict) else None
        return _message_text(message or "request not successful")
    return None


def _message_text(value: Any) -> str:
    """An error value as one short line (an object is named, not printed: it may be huge),
    printable: it becomes part of an error message shown to a person."""
    if isinstance(value, dict | list):
        return f"(an error {'object' if isinstance(value, dict) else 'list'})"
    text = " ".join(str(value).split())
    text = text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
    return printable(text)


def _is_key_error(message: str) -> bool:
    lowered = message.lower()
    return "api key" in lowered or "apikey" in lowered or "api-key" in lowered


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
