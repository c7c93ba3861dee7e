"""The polite wire: rate limiter, retry policy, error classification, the bounds of one answer
(httpx.MockTransport; a real socket where the socket matters)."""

from __future__ import annotations

import gzip
import itertools
import json
import time
import zlib

import httpx
import pytest

from catalog_gen.errors import ApiError, AuthError, LimitExceeded
from catalog_gen.source.transport import (
    MB,
    WINDOW_MARGIN,
    RateLimiter,
    Transport,
    parse_retry_after,
)
from tests.conftest import API_KEY


class FakeClock:
    """A monotonic clock that only moves when somebody sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def max_in_window(starts: list[float], window: float = 1.0) -> int:
    """The most request starts inside any half-open window [t, t + window)."""
    return max(sum(1 for s in starts if t <= s < t + window) for t in starts)


@pytest.mark.parametrize("rate", [1, 2, 4, 5])
def test_limiter_never_exceeds_rate_in_any_sliding_second(rate):
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(40):
        limiter.acquire()
        starts.append(clock.now)
    assert max_in_window(starts) <= rate
    # ... and it is not needlessly slow: close to the rate over the whole run.
    assert (starts[-1] - starts[0]) / 39 == pytest.approx((1 + WINDOW_MARGIN) / rate)


def test_limiter_spaces_even_the_first_requests():
    clock = FakeClock()
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(3):
        limiter.acquire()
        starts.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= 0.25 for gap in gaps), gaps


def test_limiter_lets_a_request_through_at_once_after_a_pause():
    clock = FakeClock()
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 10
    limiter.acquire()
    assert clock.sleeps == []


def make_transport(handler, clock=None, **kwargs) -> tuple[Transport, FakeClock]:
    clock = clock or FakeClock()
    transport = Transport(
        "https://api.example.test/v2",
        "secret-key-123456",
        http_transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        clock=clock,
        **kwargs,
    )
    return transport, clock


def answers(*responses):
    """A handler that plays the given responses in order and records the requests."""
    queue = list(responses)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


def test_sends_key_header_and_base_path():
    handler = answers(httpx.Response(200, json=[{"id": 1}]))
    transport, _ = make_transport(handler)
    assert transport.get_json("courses", {"page": 1}) == [{"id": 1}]
    request = handler.seen[0]
    assert request.headers["X-API-Key"] == "secret-key-123456"
    assert request.url.path == "/v2/courses"
    assert request.url.params["page"] == "1"


def test_429_honours_retry_after_in_full_then_succeeds():
    handler = answers(
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(200, json={"ok": True}),
    )
    transport, clock = make_transport(handler)
    assert transport.get_json("courses") == {"ok": True}
    assert 7 in clock.sleeps
    assert transport.stats.rate_limited == 1
    assert transport.stats.retries == 1
    assert transport.stats.requests == 2


def test_429_without_retry_after_backs_off_exponentially_with_a_cap():
    handler = answers(*[httpx.Response(429)] * 5, httpx.Response(200, json=[]))
    transport, clock = make_transport(handler, backoff_max=8)
    assert transport.get_json("x") == []
    backoffs = [s for s in clock.sleeps if s >= 0.9]  # limiter spacing is ~0.26 s
    assert len(backoffs) == 5
    assert backoffs[1] > backoffs[0] and max(backoffs) <= 8 + 1  # cap plus jitter


def test_retry_after_longer_than_the_cap_fails_at_once():
    handler = answers(httpx.Response(429, headers={"Retry-After": "3600"}))
    transport, _ = make_transport(handler, max_retry_after=60)
    with pytest.raises(ApiError, match="asks to wait 3600 s"):
        transport.get_json("courses")
    assert len(handler.seen) == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500),
        httpx.Response(503, json={"error": "Service Unavailable"}),
        httpx.Response(200, content=b'[{"id": 1}, {"id'),  # truncated body
        httpx.Response(200, content=b""),
        httpx.Response(200, json={"error": "Temporary failure"}),  # error body with status 200
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ConnectError("refused"),
    ],
    ids=["500", "503", "truncated", "empty", "error-200", "timeout", "dropped", "refused"],
)
def test_transient_failures_are_retried_then_succeed(failure):
    handler = answers(failure, httpx.Response(200, json=[{"id": 1}]))
    transport, _ = make_transport(handler)
    assert transport.get_json("courses") == [{"id": 1}]
    assert transport.stats.retries == 1


def test_retries_are_bounded_and_end_in_a_clear_api_error():
    handler = answers(*[httpx.Response(502)] * 4)
    transport, _ = make_transport(handler, max_retries=3)
    with pytest.raises(ApiError, match=r"GET /courses: HTTP 502 \(gave up after 3 retries\)"):
        transport.get_json("courses")
    assert len(handler.seen) == 4


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(401, json={"error": "Wrong API Key"}),
        httpx.Response(403, json={"error": "Forbidden"}),
        httpx.Response(200, json={"error": "Invalid API key"}),
    ],
    ids=["401", "403", "200-with-key-error"],
)
def test_a_wrong_key_fails_at_once_without_retries(response):
    handler = answers(response, httpx.Response(200, json=[]))
    transport, _ = make_transport(handler)
    with pytest.raises(AuthError, match="refused the API key") as caught:
        transport.get_json("courses")
    assert len(handler.seen) == 1
    assert "secret-key-123456" not in str(caught.value)


def test_client_errors_are_not_retried():
    handler = answers(httpx.Response(404, json={"error": "Course not found"}))
    transport, _ = make_transport(handler)
    with pytest.raises(ApiError, match="HTTP 404: Course not found") as caught:
        transport.get_json("courses/9")
    assert caught.value.status == 404
    assert len(handler.seen) == 1


def test_unsuccessful_booking_style_body_is_an_error():
    body = {"successful": False, "errors": [{"code": "x", "message": "Nope"}]}
    handler = answers(*[httpx.Response(200, json=body)] * 2)
    transport, _ = make_transport(handler, max_retries=1)
    with pytest.raises(ApiError, match="Nope"):
        transport.get_json("x")


def test_every_retry_passes_through_the_rate_limiter():
    handler = answers(*[httpx.Response(500)] * 3, httpx.Response(200, json=[]))
    clock = FakeClock()
    starts = []
    inner = handler

    def recording(request):
        starts.append(clock.now)
        return inner(request)

    transport, _ = make_transport(recording, clock=clock, rate_limit=2)
    transport.get_json("x")
    assert len(starts) == 4
    assert max_in_window(starts) <= 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("5", 5.0), ("0.5", 0.5), ("", None), ("soon", None), ("-3", 0.0)],
)
def test_parse_retry_after(header, seconds):
    assert parse_retry_after(header) == seconds


def test_retry_after_as_http_date_is_understood():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


# --- strict decoding: whatever the server sends ends in a named error or clean JSON ---------


def test_a_damaged_gzip_body_is_retried_then_an_api_error():
    def damaged() -> httpx.Response:  # announced as gzip, but not compressed
        return httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b'[{"id": 1}]')
        )

    handler = answers(damaged(), damaged(), httpx.Response(200, json=[{"id": 1}]))
    transport, _ = make_transport(handler, max_retries=1)
    with pytest.raises(ApiError, match=r"could not be decoded.*gave up after 1 retry"):
        transport.get_json("courses")
    assert transport.get_json("courses") == [{"id": 1}]


def test_a_body_in_another_charset_is_retried_then_refused():
    utf16 = '[{"id": 1, "title": "Kurs på norsk"}]'.encode("utf-16")
    latin1 = '[{"id": 1, "title": "Kurs på norsk"}]'.encode("latin-1")
    declared = {"Content-Type": "application/json; charset=utf-16"}
    handler = answers(
        httpx.Response(200, headers=declared, content=utf16),
        httpx.Response(200, content=latin1),
    )
    transport, _ = make_transport(handler, max_retries=1)
    with pytest.raises(ApiError, match=r"not UTF-8 .*gave up after 1 retry"):
        transport.get_json("courses")
    assert transport.stats.retries == 1


def test_a_utf8_byte_order_mark_is_ignored():
    handler = answers(httpx.Response(200, content=b'\xef\xbb\xbf[{"id": 1}]'))
    transport, _ = make_transport(handler)
    assert transport.get_json("courses") == [{"id": 1}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'[{"id": 1, "price": NaN}]', "has NaN"),
        (b'[{"id": 1, "price": Infinity}]', "has Infinity"),
        (b'[{"id": 1, "price": -Infinity}]', "has -Infinity"),
        (b'[{"id": 1, "price": 1e400}]', "too large for a float"),
        (b'[{"id": 18446744073709551616}]', "beyond 64 bits"),
        (b'[{"id": -9223372036854775809}]', "beyond 64 bits"),
        (b"[" + b"7" * 5000 + b"]", "integer of 5000 digits"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
    ids=["nan", "infinity", "minus-infinity", "float-overflow", "u64", "i64", "digits", "deep"],
)
def test_json_that_readers_disagree_on_is_refused_at_once(body, message):
    handler = answers(httpx.Response(200, content=body), httpx.Response(200, json=[]))
    transport, _ = make_transport(handler)
    with pytest.raises(ApiError, match=message) as caught:
        transport.get_json("courses")
    assert "refused" in str(caught.value)
    assert len(handler.seen) == 1  # the same answer would come again: not retried


def test_the_widest_64_bit_integers_are_accepted():
    handler = answers(httpx.Response(200, content=b"[18446744073709551615, -9223372036854775808]"))
    transport, _ = make_transport(handler)
    assert transport.get_json("x") == [2**64 - 1, -(2**63)]


def test_error_texts_from_the_api_are_cleaned_and_shortened():
    key = "secret-key-123456"
    body = json.dumps({"error": "Nope \ud800 for " + key + " " + "x" * 500})
    handler = answers(httpx.Response(400, content=body.encode("ascii")))
    transport, _ = make_transport(handler)
    with pytest.raises(ApiError) as caught:
        transport.get_json("courses")
    message = str(caught.value)
    message.encode("utf-8")  # no lone surrogate left
    assert "\ufffd" in message and key not in message and "[REDACTED]" in message
    assert len(message) < 300


@pytest.mark.parametrize(
    "body",
    [
        {"successful": False, "errors": {"first": {"message": "Nope"}}},
        {"successful": False, "errors": "Nope"},
        {"error": {"nested": [1, 2, 3]}},
    ],
    ids=["errors-object", "errors-text", "error-object"],
)
def test_error_bodies_of_any_shape_are_api_errors(body):
    handler = answers(httpx.Response(200, json=body), httpx.Response(200, json=body))
    transport, _ = make_transport(handler, max_retries=1)
    with pytest.raises(ApiError, match="answered with an error"):
        transport.get_json("x")


# --- bounded answers: bytes received, bytes unpacked, time until complete --------------------


class Pulled(httpx.SyncByteStream):
    """A body served chunk by chunk that counts what the client pulled from it; ``tick``
    runs before each chunk (a test moves a fake clock with it)."""

    def __init__(self, chunks, tick=lambda: None):
        self.chunks, self.tick, self.pulled = chunks, tick, 0

    def __iter__(self):
        for chunk in self.chunks:
            self.tick()
            self.pulled += len(chunk)
            yield chunk


def gzip_of_spaces(size: int) -> bytes:
    """A JSON list of ``size`` bytes (``[``, spaces, ``]``), gzipped: about size / 1000."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b" " * (1 << 20)
    parts = [packer.compress(b"[")]
    for start in range(0, size - 2, len(block)):
        parts.append(packer.compress(block[: min(len(block), size - 2 - start)]))
    return b"".join([*parts, packer.compress(b"]"), packer.flush()])


def in_pieces(data: bytes, size: int = 1 << 14):
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_a_gzip_bomb_is_refused_once_unpacked_past_the_cap_and_not_unpacked_further():
    bomb = gzip_of_spaces(200 * MB)  # 0.2 MB on the wire
    body = Pulled(in_pieces(bomb))
    handler = answers(
        httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=body),
        httpx.Response(200, json=[]),
    )
    transport, _ = make_transport(handler, max_decoded_bytes=5 * MB)
    with pytest.raises(LimitExceeded) as caught:
        transport.get_json("courses")
    message = str(caught.value)
    assert message.startswith("GET /courses: the answer unpacks ")
    assert "frontcore.max_decoded_mb = 5 MB" in message and "not retried" in message
    assert "\n" not in message and "secret-key-123456" not in message
    assert len(handler.seen) == 1  # the same bomb would come again: not retried
    # Stopped within a step of the cap: about 5 kB of the 200 kB was ever pulled.
    assert body.pulled < 0.1 * len(bomb), (body.pulled, len(bomb))
    assert transport.get_json("courses") == []  # and the next answer reads as usual


def test_a_plain_body_past_the_cap_is_refused_as_it_arrives_or_as_it_is_announced():
    endless = Pulled(b" " * (1 << 16) for _ in itertools.count())  # no Content-Length
    announced = Pulled([b"[]"])
    handler = answers(
        httpx.Response(200, stream=endless),
        httpx.Response(200, headers={"Content-Length": str(300 * MB)}, stream=announced),
    )
    transport, _ = make_transport(handler, max_answer_bytes=2 * MB)
    with pytest.raises(LimitExceeded) as caught:
        transport.get_json("courses")
    assert str(caught.value) == (
        "GET /courses: the answer sends more than frontcore.max_answer_mb = 2 MB; "
        "refused, not retried"
    )
    assert 2 * MB < endless.pulled <= 2 * MB + (1 << 16)
    with pytest.raises(
        LimitExceeded, match=r"announces 300.0 MB, more than frontcore.max_answer_mb"
    ):
        transport.get_json("locations")
    assert announced.pulled == 0  # refused before a byte of it was read
    assert transport.stats.retries == 0


def test_a_trickle_is_cut_off_at_the_answer_deadline_however_often_it_sends():
    clock = FakeClock()

    def two_seconds_later():
        clock.now += 2  # a byte every 2 s: far within the 30 s read timeout

    trickle = Pulled((b" " for _ in itertools.count()), tick=two_seconds_later)
    handler = answers(httpx.Response(200, stream=trickle))
    transport, _ = make_transport(handler, clock=clock, answer_deadline=10)
    with pytest.raises(LimitExceeded) as caught:
        transport.get_json("batch/coursedates")
    assert str(caught.value) == (
        "GET /batch/coursedates: the answer was not complete within "
        "frontcore.answer_deadline_seconds = 10 s; refused, not retried"
    )
    assert trickle.pulled == 5 and len(handler.seen) == 1


def test_the_deadline_counts_from_the_rate_limiters_turn_not_from_the_call():
    clock = FakeClock()
    handler = answers(*[httpx.Response(200, json=[])] * 3)
    transport, _ = make_transport(handler, clock=clock, rate_limit=0.5, answer_deadline=1)
    for _ in range(3):  # each waits 2 s for its turn, longer than its deadline
        assert transport.get_json("courses") == []
    assert sum(clock.sleeps) >= 4


@pytest.mark.slow
def test_a_trickle_of_headers_on_a_real_socket_is_cut_off_at_the_deadline(emulator):
    """httpx's read timeout never fires while a byte comes every half second; the sockets
    themselves wait no longer than the deadline, so even the status line is cut off."""
    emulator.inject("trickle", path="/courses", delay=0.5)
    transport = Transport(
        emulator.base_url, API_KEY, rate_limit=5, timeout=30, answer_deadline=2, max_retries=3
    )
    started = time.monotonic()
    with transport:
        with pytest.raises(LimitExceeded, match="answer_deadline_seconds = 2 s"):
            transport.get_json("courses")
        assert 2 <= time.monotonic() - started < 4
        assert [r.path for r in emulator.requests] == ["/v2/courses"]  # not retried
        assert transport.get_json("locations")  # later answers are not hurt


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate", "gzip-in-gzip"])
def test_answers_within_the_bounds_are_unpacked_whatever_their_coding(coding):
    records = [{"id": i, "title": "Kurs " * 100} for i in range(10_000)]  # 5 MB: many steps
    plain = json.dumps(records).encode()
    if coding == "gzip":
        body, header = gzip.compress(plain), "gzip"
    elif coding == "deflate":
        body, header = zlib.compress(plain), "deflate"
    elif coding == "raw-deflate":  # no zlib header, as some servers send it
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body, header = packer.compress(plain) + packer.flush(), "deflate"
    else:
        body, header = gzip.compress(gzip.compress(plain)), "gzip, gzip"
    handler = answers(
        httpx.Response(200, headers={"Content-Encoding": header}, stream=Pulled(in_pieces(body)))
    )
    transport, _ = make_transport(handler, max_decoded_bytes=len(plain))
    assert transport.get_json("courses") == records
    assert handler.seen[0].headers["Accept-Encoding"] == "gzip, deflate"


def test_a_compressed_body_cut_off_or_followed_by_junk_is_retried_as_damaged():
    whole = gzip.compress(b'[{"id": 1}]')
    handler = answers(
        httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Pulled([whole[:-6]])),
        httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Pulled([whole + b"x"])),
        httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Pulled([whole])),
    )
    transport, _ = make_transport(handler)
    assert transport.get_json("courses") == [{"id": 1}]
    assert transport.stats.retries == 2


def test_an_empty_compressed_429_is_still_a_rate_limit():
    handler = answers(
        httpx.Response(429, headers={"Content-Encoding": "gzip", "Retry-After": "3"}),
        httpx.Response(200, json=[]),
    )
    transport, clock = make_transport(handler)
    assert transport.get_json("courses") == []
    assert 3 in clock.sleeps and transport.stats.rate_limited == 1


def test_a_404_from_a_base_without_v2_says_where_the_api_is():
    """The base without /v2 answers 404 everywhere: the error says what to check."""
    answer = lambda request: httpx.Response(404, json={"error": "Not found"})  # noqa: E731
    for base, hinted in (
        ("https://api.frontcore.com", True),
        ("https://api.frontcore.com/v2", False),
    ):
        transport = Transport(base, "k" * 20, http_transport=httpx.MockTransport(answer))
        with pytest.raises(ApiError) as caught:
            transport.get_json("courses")
        message = str(caught.value)
        assert message.startswith("GET /courses: HTTP 404")
        assert ("should end in /v2" in message) is hinted
        assert "k" * 20 not in message
