"""The polite wire: one rate limiter and one retry policy around every Frontcore request.

Layers, outermost first (httpx/hishel style, no ``if`` statements sprinkled through callers):

    Transport.get_json   retry policy (tenacity): 429, 5xx, timeouts, bad JSON; never a bad key
      httpx.Client        base URL, the X-API-Key header, timeouts
        _PacedTransport   the rate limiter: every attempt, retries included, waits its turn here
          httpx.HTTPTransport

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

log = logging.getLogger(__name__)

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
        except httpx.TransportError as exc:
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

        payload, invalid = _parse_json(response.content)
        message = _error_message(payload)
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
            reason = message or response.reason_phrase
            raise ApiError(f"GET {path}: HTTP {status}: {reason}", status=status, path=path)
        if status >= 300:
            raise ApiError(
                f"GET {path}: unexpected redirect (HTTP {status})", status=status, path=path
            )
        if invalid:
            raise TransientApiError(
                f"GET {path}: the answer is not valid JSON (truncated?)", status=status, path=path
            )
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


def _parse_json(body: bytes) -> tuple[Any, bool]:
    """(payload, invalid): an empty body counts as invalid, it is a cut-off answer."""
    if not body.strip():
        return None, True
    try:
        return json.loads(body), False
    except (ValueError, UnicodeDecodeError):
        return None, True


def _error_message(payload: Any) -> str | None:
    """The error an answer reports in its body, in either documented shape, or None."""
    if not isinstance(payload, dict):
        return None
    if payload.get("error"):
        return str(payload["error"])
    if payload.get("successful") is False:
        errors = payload.get("errors") or []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        return str(first.get("message") or "request not successful")
    return None


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
