"""The polite wire: one rate limiter and one retry policy around every Frontcore request.

Layers, outermost first (httpx/hishel style, no ``if`` statements sprinkled through callers):

    Transport.get_json   retry policy (tenacity): 429, 5xx, timeouts, bad JSON; never a bad key
      _decode             strict decoding: UTF-8 only, RFC 8259 JSON only (no NaN/Infinity, no
                          number JSON readers disagree on), bounded nesting
      httpx.Client        base URL, the X-API-Key header, timeouts, gzip/deflate
        _PacedTransport   the rate limiter: every attempt, retries included, waits its turn here
          httpx.HTTPTransport

Nothing the server sends escapes as anything but our named errors: a body that cannot be
decoded (bad gzip, not UTF-8, not JSON) is an ApiError like a 5xx, retried and then reported,
so ``--offline-on-error`` handles it.

Frontcore allows 5 requests per second per *account*, shared by every script using the key, and
asks clients to stay well below it and never burst. We default to 4 in any sliding second and also
space requests evenly, so even the first second is not a burst.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import tenacity

from catalog_gen import __version__
from catalog_gen.errors import ApiError, AuthError, RateLimited, TransientApiError
from catalog_gen.printable import printable
from catalog_gen.source.scrub import Scrubber

log = logging.getLogger(__name__)

#: Integers outside this range are read differently by JSON libraries (orjson, which loads
#: snapshots, turns them into floats; JavaScript rounds them): refused, never stored.
INT_RANGE = range(-(2**63), 2**64)

#: Added to the one-second window so that requests spaced exactly at the limit on our clock
#: cannot land inside one second on the server's clock.
WINDOW_MARGIN = 0.05


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


class _PacedTransport(httpx.BaseTransport):
    """An httpx transport that makes every request, retries included, wait for the limiter."""

    def __init__(self, inner: httpx.BaseTransport, limiter: RateLimiter, stats: TransportStats):
        self._inner, self._limiter, self._stats = inner, limiter, stats

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._limiter.acquire()
        self._stats.requests += 1
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


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
        backoff_max: float = 30.0,
        http_transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stats = TransportStats()
        #: Cleans text taken from answers: lone surrogates, and this key in any written form.
        self.scrubber = Scrubber(api_key)
        self.limiter = RateLimiter(rate_limit, clock=clock, sleep=sleep)
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._backoff = tenacity.wait_exponential_jitter(initial=1, max=backoff_max, jitter=1)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={
                "X-API-Key": api_key,
                "Accept": "application/json",
                "User-Agent": f"catalog-gen/{__version__}",
            },
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            transport=_PacedTransport(
                http_transport or httpx.HTTPTransport(retries=0), self.limiter, self.stats
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
        bodies sent with a 2xx status, at most ``max_retries`` times; raises AuthError at once.
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
            response = self._http.get(path, params=params)
        except httpx.TimeoutException:
            raise TransientApiError(
                f"GET {shown}: no answer within {self.timeout:g} s", path=shown
            ) from None
        except httpx.DecodingError:
            raise TransientApiError(
                f"GET {shown}: the answer could not be decoded (a damaged compressed body)",
                path=shown,
            ) from None
        except httpx.RequestError as exc:
            raise TransientApiError(
                f"GET {shown}: connection failed ({type(exc).__name__})", path=shown
            ) from None
        return self._decode(shown, response)

    def _decode(self, path: str, response: httpx.Response) -> Any:
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

        payload, unreadable = _parse_json(response.content)
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
            raise ApiError(f"GET {path}: HTTP {status}: {reason}", status=status, path=path)
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


@dataclass(frozen=True)
class _Unreadable:
    """Why a body is not JSON we accept, and whether asking again may help."""

    reason: str
    #: True for what a cut-off answer looks like (empty, not UTF-8, not JSON): retried.
    transient: bool


class _Refused(ValueError):
    """A value JSON readers disagree on: NaN, Infinity, an integer beyond 64 bits."""


def _parse_json(body: bytes) -> tuple[Any, _Unreadable | None]:
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
