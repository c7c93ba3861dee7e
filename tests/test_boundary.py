"""Whatever the API sends ends in a named error or a clean snapshot: never an internal error.

Property-based (Hypothesis): arbitrary bytes, statuses and encodings through the transport,
and arbitrary JSON strings and values (lone surrogates, the API key in its written forms, NaN)
through a whole sync, whose snapshot is then saved and loaded. End to end: the real CLI against
the emulator, with a record carrying a lone surrogate and the key, and with answers that cannot
be decoded.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog_gen.config import SyncSettings
from catalog_gen.errors import ApiError
from catalog_gen.source.client import FrontcoreClient
from catalog_gen.source.store import SnapshotStore
from catalog_gen.source.sync import sync_catalog
from catalog_gen.source.transport import Transport
from tests.conftest import API_KEY, NOW

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.too_slow],
)


def transport_for(handler) -> Transport:
    """A transport on a MockTransport: no rate limit to wait for, one retry, no real sleep."""
    return Transport(
        "https://api.example.test/v2",
        API_KEY,
        http_transport=httpx.MockTransport(handler),
        rate_limit=1000,
        max_retries=1,
        sleep=lambda seconds: None,
    )


def every_string(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *every_string(v))]
    if isinstance(value, list):
        return [s for v in value for s in every_string(v)]
    return []


# --- the transport: any bytes ---------------------------------------------------------------

BODIES = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda text: text.encode("utf-8", "surrogatepass"),
        st.text(st.characters(codec=None), max_size=60),
    ),
    st.sampled_from(
        [
            b"[]",
            b'[{"id": 1}]',
            b'{"error": "Wrong API Key"}',
            b'{"successful": false, "errors": {"0": 1}}',
            b'{"items": [{"id": 1}], "pagination": {"next_page": []}}',
            b'[{"id": NaN}]',
            b"[1e999]",
            b"\xef\xbb\xbf[]",
            b'["\\ud800"]',
            b'{"error": "' + API_KEY.encode() + b'"}',
            b"[" * 5000,
        ]
    ),
)
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@PROPERTY
@given(
    body=BODIES,
    status=st.sampled_from([200, 200, 200, 201, 204, 302, 400, 401, 403, 404, 429, 500, 503]),
    encoding=st.sampled_from([None, "gzip", "deflate", "br", "identity", "x-unknown"]),
    content_type=st.none() | st.sampled_from(["application/json; charset=utf-16", "text/html"]),
    retry_after=st.none() | HEADER_TEXT,
)
def test_any_bytes_end_in_a_named_error_or_strict_json(
    body, status, encoding, content_type, retry_after
):
    headers = {}
    if encoding:
        headers["Content-Encoding"] = encoding
    if content_type:
        headers["Content-Type"] = content_type
    if retry_after is not None:
        headers["Retry-After"] = retry_after

    def handler(request):
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))

    with transport_for(handler) as transport:
        try:
            value = transport.get_json("courses")
        except ApiError as exc:
            str(exc).encode("utf-8")  # a message that can be printed anywhere
            assert API_KEY not in str(exc)
            return
    json.dumps(value, allow_nan=False).encode("utf-8")


# --- a whole sync: any strings and values in the records -------------------------------------

KEY_FORMS = [
    API_KEY,
    quote(API_KEY, safe=""),
    json.dumps(API_KEY)[1:-1],
    base64.b64encode(b"x:" + API_KEY.encode()).decode(),
]
#: Any text, built of pieces: characters, lone surrogates and the key in its written forms.
TEXT = st.lists(
    st.one_of(st.characters(), st.characters(categories=["Cs"]), st.sampled_from(KEY_FORMS)),
    max_size=8,
).map("".join)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and Infinity too: json.dumps writes them, the API must not
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
IDS = st.one_of(st.integers(min_value=1, max_value=50), st.just("7"), VALUES)


@st.composite
def catalogs(draw):
    """A small catalog as the API might send it: mostly well-formed, any text anywhere."""
    courses, dates = [], []
    for n in range(draw(st.integers(min_value=0, max_value=3))):
        course = {
            "id": draw(IDS) if draw(st.integers(0, 9)) == 0 else n + 1,
            "title": draw(TEXT),
            "text_description": draw(TEXT),
            "custom_properties": draw(st.dictionaries(TEXT, VALUES, max_size=3)),
            draw(TEXT): draw(VALUES),
        }
        courses.append(course)
        for m in range(draw(st.integers(min_value=0, max_value=2))):
            dates.append(
                {
                    "coursedate_id": 100 * (n + 1) + m,
                    "course": {"id": course["id"], "title": course["title"]},
                    "start_at": draw(st.sampled_from(["2026-12-01", "x", None])),
                    "gatherings": [{"location": {"title": draw(TEXT)}, draw(TEXT): draw(VALUES)}],
                }
            )
    return courses, dates, draw(st.lists(st.dictionaries(TEXT, VALUES, max_size=3), max_size=2))


def frontcore(courses, dates, venues, *, ascii_only: bool):
    """A MockTransport handler serving one catalog, JSON-encoded as Python would send it."""

    def encode(payload) -> bytes:
        text = json.dumps(payload, ensure_ascii=ascii_only)
        return text.encode("utf-8", "surrogatepass")  # a lone surrogate: not valid UTF-8

    def handler(request):
        path = request.url.path.removeprefix("/v2/")
        first = request.url.params.get("page") == "1"
        if path == "courses":
            return httpx.Response(200, content=encode(courses if first else []))
        if path == "batch/coursedates":
            return httpx.Response(200, content=encode(dates if first else []))
        if path == "locations":
            return httpx.Response(
                200, content=encode([{"id": 1, **v} for v in venues] if first else [])
            )
        if path.startswith("courses/"):
            found = [c for c in courses if str(c.get("id")) == path.split("/")[1]]
            return httpx.Response(
                200 if found else 404, content=encode(found[0] if found else {"error": "Not found"})
            )
        return httpx.Response(200, content=b"[]")

    return handler


@pytest.mark.slow
@PROPERTY
@given(catalog=catalogs(), ascii_only=st.booleans())
def test_any_json_strings_end_in_a_named_error_or_a_clean_snapshot(catalog, ascii_only):
    courses, dates, venues = catalog
    with transport_for(frontcore(courses, dates, venues, ascii_only=ascii_only)) as transport:
        client = FrontcoreClient(transport)
        try:
            outcome = sync_catalog(
                client,
                None,
                now=NOW,
                api_base="https://api.example.test/v2",
                settings=SyncSettings(),
            )
        except ApiError as exc:
            str(exc).encode("utf-8")
            assert all(form not in str(exc) for form in KEY_FORMS)
            return
    with tempfile.TemporaryDirectory() as folder:
        store = SnapshotStore(Path(folder))
        name = store.save(outcome.snapshot).name
        loaded = store.load(name)
        written = b"".join(p.read_bytes() for p in (Path(folder) / name).rglob("*") if p.is_file())
    assert API_KEY.encode() not in written
    for form in KEY_FORMS:
        assert form.encode() not in written
    assert loaded.courses == outcome.snapshot.courses
    assert loaded.coursedates == outcome.snapshot.coursedates
    for record in [*loaded.courses.values(), *loaded.coursedates.values()]:
        for text in every_string(record):
            text.encode("utf-8")
    for anomaly in client.anomalies:
        assert API_KEY not in anomaly.value
        anomaly.value.encode("utf-8")


def test_a_detail_answer_naming_another_course_keeps_the_lists_id():
    def handler(request):
        path = request.url.path.removeprefix("/v2/")
        first = request.url.params.get("page") == "1"
        if path == "courses":
            return httpx.Response(200, json=[{"id": 1, "title": "A"}, {"id": 2}] if first else [])
        if path.startswith("courses/"):  # every detail answer claims to be course 2
            return httpx.Response(200, json={"id": 2, "title": "B", "text_lead": "x"})
        return httpx.Response(200, json=[])

    with transport_for(handler) as transport:
        outcome = sync_catalog(
            FrontcoreClient(transport), None, now=NOW, api_base="x", settings=SyncSettings()
        )
    assert {cid: c["id"] for cid, c in outcome.snapshot.courses.items()} == {1: 1, 2: 2}


# --- end to end: the CLI against the emulator --------------------------------------------------


@pytest.mark.slow
def test_a_record_with_a_lone_surrogate_and_the_key_is_stored_clean_and_named(project, sample):
    cid = sorted(sample.courses)[4]
    sample.change_course(
        cid, title="Excel \ud800 for viderekomne", text_description=f"<p>Nøkkel: {API_KEY}</p>"
    )
    result = project.run("fetch")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: 1 × replaced the API key with [REDACTED]; nothing stored it [text.api_key]: "
        f"course {cid} text_description='<p>Nøkkel: [REDACTED]</p>'",
        "warning: 1 × replaced each lone surrogate with U+FFFD [text.lone_surrogate]: "
        f"course {cid} title='Excel \ufffd for viderekomne'",
    ]
    files = project.snapshot_bytes()
    assert not any(API_KEY.encode() in data for data in files.values())
    courses = b"".join(data for name, data in files.items() if "/courses/" in name)
    assert "Excel \ufffd for viderekomne".encode() in courses
    assert API_KEY not in result.stdout + result.stderr

    # A build passes the fetch's warnings on, like its own: every run, until the API's
    # records are fixed.
    other = sorted(sample.courses)[5]
    sample.change_course(other, text_lead="\udbff")
    built = project.run("build", "--quiet")
    assert built.returncode == 0, built.stderr
    assert built.stderr.splitlines() == [
        warnings[0],
        "warning: 2 × replaced each lone surrogate with U+FFFD [text.lone_surrogate]: "
        f"course {cid} title='Excel \ufffd for viderekomne'; course {other} text_lead='\ufffd'",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("trouble", ["nan", "gzip", "charset"])
def test_undecodable_answers_are_api_errors_that_offline_on_error_handles(project, sample, trouble):
    (project.root / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\nmax_retries = 1\n")
    assert project.run("fetch").returncode == 0
    before = project.snapshot_bytes()
    if trouble == "nan":
        cid = sorted(sample.courses)[0]
        sample.change_course(cid, price={"value": float("nan"), "currency": "NOK"})
    else:
        project.emulator.inject(trouble, times=10, path="/courses")

    failed = project.run("fetch")
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: GET /courses: the answer ")
    assert "internal error" not in failed.stderr
    assert project.snapshot_bytes() == before

    built = project.run("build", "--offline-on-error")
    assert built.returncode == 0, built.stderr
    assert "rendered the last good snapshot instead" in built.stderr
    assert (project.root / "site" / "index.html").is_file()
