"""The emulator and its sample catalog: Frontcore's shapes, quirks, limits and faults, for real.

Each test runs a real server on 127.0.0.1 and talks to it with httpx, so what is asserted here
is exactly what the client meets on the wire.
"""

from __future__ import annotations

import gzip
import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta

import httpx
import pytest

from catalog_gen.demo.emulator import Emulator, LoggedRequest
from catalog_gen.demo.sample import OSLO, SampleCatalog, generate_catalog
from tests.conftest import interruptible

TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=OSLO)
KEY = "test-key-Hk3"


def fresh_catalog(courses: int = 48, **options) -> SampleCatalog:
    catalog = generate_catalog(courses, today=TODAY, **options)
    catalog.clock = lambda: NOW
    return catalog


@pytest.fixture
def catalog() -> SampleCatalog:
    return fresh_catalog()


@pytest.fixture
def serve(emulator_for):
    """Start emulators with an unlimited rate unless asked; conftest stops them."""

    def start(catalog: SampleCatalog, **options) -> Emulator:
        options.setdefault("api_key", KEY)
        options.setdefault("rate_limit", 0)
        return emulator_for(catalog, **options)

    return start


@pytest.fixture
def api(serve, catalog) -> tuple[Emulator, httpx.Client]:
    emulator = serve(catalog)
    with httpx.Client(base_url=emulator.base_url + "/", headers={"X-API-Key": KEY}) as client:
        yield emulator, client


def get_json(client: httpx.Client, path: str, **params):
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


# --------------------------------------------------------------------------------------------
# The sample catalog
# --------------------------------------------------------------------------------------------


def test_generation_is_deterministic_and_fast():
    first, second = fresh_catalog(), fresh_catalog()
    assert first == second
    assert json.dumps(first.coursedates, sort_keys=True) == json.dumps(
        second.coursedates, sort_keys=True
    )
    assert fresh_catalog(seed=7) != first
    later = generate_catalog(48, today=TODAY + timedelta(days=10))
    shifted = date.fromisoformat(later.coursedates[900002]["start_at"])
    assert shifted - date.fromisoformat(first.coursedates[900002]["start_at"]) == timedelta(10)

    started = time.perf_counter()
    big = generate_catalog(1000, today=TODAY)
    assert time.perf_counter() - started < 1.5
    assert len(big.courses) == 1000 and len(big.coursedates) == 5000
    assert len(set(big.coursedates) & set(big.courses)) == 0  # two id spaces


def test_timestamps_come_from_today_not_the_clock(catalog):
    stamps = [c["created_at"] for c in catalog.courses.values()] + [
        d["updated_at"] for d in catalog.coursedates.values()
    ]
    for stamp in stamps:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", stamp), stamp
        assert datetime.fromisoformat(stamp).date() < TODAY
    for course in catalog.courses.values():
        assert course["created_at"] <= course["updated_at"]


def test_every_realism_kind_occurs_in_the_default_catalog(catalog):
    courses = list(catalog.courses.values())
    dates = list(catalog.coursedates.values())
    today = TODAY.isoformat()
    titles = [c["title"] for c in courses]
    texts = " ".join(
        c[f] for c in courses for f in ("text_description", "text_prerequisites", "text_audience")
    )

    # Titles: Norwegian letters, the named ones, a duplicate pair, a hostile one.
    for title in (
        "Førstehjelp på arbeidsplassen",
        "Grunnkurs i økonomi og regnskap",
        "Sikkerhet ved arbeid i høyden",
        "Bærekraftig ledelse",
    ):
        assert title in titles
    assert max(Counter(titles).values()) >= 2
    assert any("<b>" in t and '"' in t for t in titles)
    # HTML: mostly benign, a few hostile.
    assert all(
        isinstance(c["text_lead"], str) and "<" not in c["text_lead"]
        for c in courses
        if "<b>" not in c["title"]
    )
    for benign in ("<p>", "<ul><li>", "<strong>", '<a href="https://'):
        assert benign in texts
    for hostile in (
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">',
        '<iframe src="https://evil.example/">',
        'style="',
    ):
        assert hostile in texts
    # Courses: inactive, internal, corporate level, prices and currencies, categories.
    assert any(not c["is_active"] for c in courses)
    assert any(c["type"] == "internal" for c in courses)
    assert any(c["type"] == "public" and c["level"]["id"] == 15 for c in courses)
    currencies = Counter(c["price"]["currency"] for c in courses)
    assert currencies["NOK"] > len(courses) * 0.8 and currencies["EUR"] and currencies["SEK"]
    assert any(c["price"]["value"] == 0 for c in courses)
    assert all(isinstance(c["price"]["value"], int) for c in courses)
    categories = {cat["id"] for c in courses for cat in c["categories"] or []}
    assert len(categories) >= 5
    assert any(c["categories"] is None for c in courses)
    assert any(c["custom_properties"] == [] for c in courses)
    assert any(isinstance(c["custom_properties"], dict) for c in courses)
    assert {c["teaching_language"]["id"] for c in courses} == {"no", "en"}

    # Dates: every state a publisher must handle.
    by_id = catalog.coursedates
    assert {d["status"]["id"] for d in dates} >= {1, 2, 3, 4}
    subs = [d for d in dates if d["parent_id"] is not None]
    assert subs and all(by_id[d["parent_id"]]["course_id"] == d["course_id"] for d in subs)
    assert any(d["deleted_at"] for d in dates)
    assert any(not d["is_visible"] for d in dates)
    assert any(d["start_at"] < today for d in dates)
    passed = [
        d for d in dates if d["start_at"] >= today and d["deadline_at"] and d["deadline_at"] < today
    ]
    assert {d["visible_when_passed_deadline"] for d in passed} == {True, False}
    full = [d for d in dates if d["seats_status"] == "fully_booked"]
    assert full and all(int(d["seats"]["free"]["num"]) == 0 for d in full)
    assert any(
        d["seats"]["allocated_capacity"]["num"] == 0
        and d["seats_status"] == "open"
        and int(d["seats"]["free"]["num"]) == 0
        for d in dates
    )
    assert any(isinstance(d["seats"]["free"]["num"], str) for d in dates)
    assert any(d["location"] is None and d["gatherings"][0]["location"] for d in dates)
    assert any(d["place"] == {"title_additional_info": None} for d in dates)
    assert any(d["timezone"] is None for d in dates)
    assert any(d["start_time_at"] is None for d in dates)
    assert any(d["is_virtual"] for d in dates)
    assert any(isinstance(d["custom_properties"], dict) for d in dates)
    for d in dates:
        assert d["status"]["idType"] == 2
        assert isinstance(d["seats"]["allocated_capacity"]["num_overbooked"], str)
        assert isinstance(d["seats"]["allocated_capacity"]["num_waiting"], str)
        assert d["gatherings"] and all(
            g["idInstance"] == d["coursedate_id"] for g in d["gatherings"]
        )

    # Reference data.
    cities = {loc["city"] for loc in catalog.locations.values() if loc["city"]}
    assert cities >= {"Oslo", "Bergen", "Trondheim", "Tromsø", "Stavanger", "Kristiansand", "Bodø"}
    assert sum(bool(loc["is_virtual"]) for loc in catalog.locations.values()) == 1
    assert all(i["email"] and i["phone"] for i in catalog.instructors.values())
    main_products = [
        p for p in catalog.products.values() if p["id_type"] == 2 and p["is_main_price"]
    ]
    assert sorted(p["id_relation"] for p in main_products) == sorted(catalog.courses)
    assert all(isinstance(p["item_number"], str) for p in catalog.products.values())
    assert any(p["id_type"] == 1 for p in catalog.products.values())


# --------------------------------------------------------------------------------------------
# Mutation helpers
# --------------------------------------------------------------------------------------------


def test_change_course_bumps_updated_at_to_the_clock(catalog):
    cid = sorted(catalog.courses)[0]
    catalog.change_course(cid, title="Nytt navn", is_active=False)
    course = catalog.courses[cid]
    assert course["title"] == "Nytt navn" and course["is_active"] is False
    assert course["updated_at"] == "2026-11-23T10:00:00+01:00"


def test_set_free_seats_keeps_counts_consistent_and_updated_at_still(catalog):
    record = next(
        d for d in catalog.coursedates.values() if d["seats"]["allocated_capacity"]["num"] >= 10
    )
    before = record["updated_at"]
    catalog.set_free_seats(record["coursedate_id"], 3)
    seats = record["seats"]
    assert int(seats["free"]["num"]) == 3
    assert seats["booking_status"]["num"] == seats["allocated_capacity"]["num"] - 3
    booking = seats["booking_status"]
    assert booking["num_confirmed"] + booking["num_unconfirmed"] == booking["num"]
    assert record["seats_status"] == "open"
    catalog.set_free_seats(record["coursedate_id"], 0)
    assert record["seats_status"] == "fully_booked"
    assert record["updated_at"] == before


def test_remove_add_and_delete(catalog):
    doomed = sorted(catalog.courses)[5]
    catalog.remove_course(doomed)
    assert doomed not in catalog.courses
    assert all(d["course_id"] != doomed for d in catalog.coursedates.values())
    assert all(p["id_relation"] != doomed for p in catalog.products.values() if p["id_type"] == 2)

    new_id = catalog.add_course("Kurs i årsoppgjør", dates=3)
    assert new_id > max(c for c in catalog.courses if c != new_id)
    course = catalog.courses[new_id]
    assert course["title"] == "Kurs i årsoppgjør"
    assert course["is_active"] and course["type"] == "public"
    assert course["created_at"] == course["updated_at"] == "2026-11-23T10:00:00+01:00"
    new_dates = catalog.dates_of(new_id)
    assert len(new_dates) == 3
    assert all(
        d["start_at"] > TODAY.isoformat()
        and d["deleted_at"] is None
        and d["status"]["id"] == 2
        and d["parent_id"] is None
        for d in new_dates
    )
    assert any(p["id_relation"] == new_id for p in catalog.products.values())

    target = new_dates[0]["coursedate_id"]
    catalog.clock = lambda: NOW + timedelta(hours=1)
    catalog.delete_date(target)
    assert catalog.coursedates[target]["deleted_at"] == "2026-11-23T11:00:00+01:00"
    assert catalog.coursedates[target]["updated_at"] == "2026-11-23T11:00:00+01:00"


# --------------------------------------------------------------------------------------------
# Wire format and shapes
# --------------------------------------------------------------------------------------------


def test_json_is_php_encoded(api):
    _, client = api
    response = client.get("courses", params={"limit": 3})
    raw = response.content
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(raw)
    assert raw.isascii()
    assert b"https:\\/\\/www.kursguiden.no\\/kurs\\/" in raw
    assert b"F\\u00f8rstehjelp p\\u00e5 arbeidsplassen" in raw
    assert b"/" not in raw.replace(b"\\/", b"")  # every slash escaped
    assert b'": ' not in raw and b'", "' not in raw  # compact separators
    assert response.json()[0]["title"] == "Førstehjelp på arbeidsplassen"


def test_dates_carry_frontcore_quirks(api, catalog):
    _, client = api
    cid = sorted(catalog.courses)[0]
    dates = get_json(client, f"courses/{cid}/coursedates")
    assert len(dates) == 5
    for record in dates:
        assert "coursedate_id" in record and "id" not in record and "course_id" not in record
        assert record["course"] == {
            "id": cid,
            "title": catalog.courses[cid]["title"],
            "reference": catalog.courses[cid]["reference"],
        }
        assert isinstance(record["seats"]["allocated_capacity"]["num_overbooked"], str)
        assert isinstance(record["seats"]["allocated_capacity"]["num_waiting"], str)
    every = get_json(client, "coursedates", limit=250)["items"]
    assert any(d["custom_properties"] == [] for d in every)
    assert any(isinstance(d["seats"]["free"]["num"], str) for d in every)
    one = get_json(client, f"courses/{cid}/coursedates/{dates[1]['coursedate_id']}")
    assert one == dates[1]
    other = sorted(catalog.courses)[1]
    missing = client.get(f"courses/{other}/coursedates/{dates[1]['coursedate_id']}")
    assert missing.status_code == 404


def test_bare_array_paging_ends_with_a_short_page(serve):
    catalog = fresh_catalog(60)
    emulator = serve(catalog)
    with httpx.Client(base_url=emulator.base_url + "/", headers={"X-API-Key": KEY}) as client:
        sizes = [len(get_json(client, "courses", limit=25, page=p)) for p in (1, 2, 3, 4)]
        assert sizes == [25, 25, 10, 0]
        ids = [c["id"] for p in (1, 2, 3) for c in get_json(client, "courses", limit=25, page=p)]
        assert ids == sorted(ids) and len(set(ids)) == 60
        assert len(get_json(client, "courses")) == 60  # default 75
        assert len(get_json(client, "coursedates", limit=1000)["items"]) == 250  # clamped
        course_products = [p for p in catalog.products.values() if p["id_type"] == 2]
        assert len(course_products) > 60  # member prices too
        assert len(get_json(client, "orders/products", id_type=2)) == len(course_products)
        assert len(get_json(client, "orders/products", id_type=1, limit=2)) == 2


def test_summary_list_lacks_texts_and_detail_has_them(serve, catalog):
    emulator = serve(catalog, course_list="summary")
    with httpx.Client(base_url=emulator.base_url + "/", headers={"X-API-Key": KEY}) as client:
        summary = get_json(client, "courses", limit=5)
        assert set(summary[0]) == {
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
        }
        detail = get_json(client, f"courses/{summary[0]['id']}")
        assert detail == catalog.courses[summary[0]["id"]]
        with_products = get_json(client, f"courses/{summary[0]['id']}", **{"include[]": "products"})
        assert [p["id_relation"] for p in with_products["products"]] == [summary[0]["id"]]
        missing = client.get("courses/1")
        assert missing.status_code == 404 and missing.json() == {"error": "Course not found"}


def test_course_list_order(serve, catalog):
    def ids(emulator, **params):
        with httpx.Client(base_url=emulator.base_url + "/", headers={"X-API-Key": KEY}) as c:
            return [course["id"] for course in get_json(c, "courses", limit=250, **params)]

    by_id = sorted(catalog.courses)
    plain = serve(catalog)
    assert ids(plain) == by_id
    assert ids(plain, order_by="id", order_direction="desc") == by_id[::-1]
    with httpx.Client(base_url=plain.base_url + "/", headers={"X-API-Key": KEY}) as c:
        assert c.get("courses", params={"order_by": "title"}).status_code == 400

    # Most recently updated first: a change moves a course to the front.
    updated = serve(catalog, course_order="updated")
    oldest = ids(updated)[-1]
    catalog.change_course(oldest, title="Nytt navn")
    assert ids(updated)[0] == oldest
    assert ids(updated, order_by="id", order_direction="asc") == by_id
    ignoring = serve(catalog, course_order="updated", course_ordering=False)
    assert ids(ignoring, order_by="id", order_direction="asc")[0] == oldest


def test_list_items_can_lack_fields_the_detail_has(serve, catalog):
    emulator = serve(catalog, list_omits=("email_booking", "duration"))
    with httpx.Client(base_url=emulator.base_url + "/", headers={"X-API-Key": KEY}) as client:
        [first] = get_json(client, "courses", limit=1)
        assert "email_booking" not in first and "duration" not in first and "title" in first
        detail = get_json(client, f"courses/{first['id']}")
        assert "email_booking" in detail and "duration" in detail


def test_on_request_runs_before_each_answer(api, catalog):
    emulator, client = api
    seen = []
    emulator.on_request = lambda path, params: seen.append((path, params.get("page")))
    client.get("courses", params={"page": 2})
    assert seen == [("/v2/courses", ["2"])]


def test_full_list_items_are_complete(api, catalog):
    _, client = api
    assert get_json(client, "courses", limit=250) == [
        catalog.courses[cid] for cid in sorted(catalog.courses)
    ]


def test_batch_spans_courses_and_requires_ids(api, catalog):
    _, client = api
    wanted = sorted(catalog.courses)[:3]
    expected = sorted(
        d["coursedate_id"] for d in catalog.coursedates.values() if d["course_id"] in wanted
    )
    params = {"course_ids[]": wanted, "limit": 10}
    pages = [get_json(client, "batch/coursedates", page=p, **params) for p in (1, 2)]
    assert [len(p) for p in pages] == [10, 5]
    assert len({d["course"]["id"] for d in pages[0]}) == 2  # one page, two courses
    assert [d["coursedate_id"] for page in pages for d in page] == expected
    assert all("course_id" not in d for page in pages for d in page)
    assert len(get_json(client, "batch/coursedates", **{"course_ids[]": wanted})) == 15
    comma = get_json(client, "batch/coursedates", course_ids=",".join(map(str, wanted)))
    repeated = get_json(client, "batch/coursedates", course_ids=wanted)
    assert len(comma) == len(repeated) == 15  # default limit 25
    refused = client.get("batch/coursedates")
    assert refused.status_code == 400
    assert refused.json() == {"error": "course_ids is required"}


def test_all_dates_wrapped_and_bare(serve, catalog):
    emulator = serve(catalog)
    bare = serve(catalog, wrapped_coursedates=False)
    headers = {"X-API-Key": KEY}
    with httpx.Client(headers=headers) as client:
        total = len(catalog.coursedates)
        first = client.get(f"{emulator.base_url}/coursedates", params={"limit": 200}).json()
        assert first["pagination"] == {"current_page": 1, "next_page": 2}
        last = client.get(
            f"{emulator.base_url}/coursedates", params={"limit": 200, "page": 2}
        ).json()
        assert last["pagination"] == {"current_page": 2, "next_page": None}
        assert len(first["items"]) + len(last["items"]) == total
        assert all(isinstance(d["course_id"], int) for d in first["items"])
        plain = client.get(f"{bare.base_url}/coursedates", params={"limit": 200}).json()
        assert isinstance(plain, list) and plain == first["items"]


def test_old_kursguiden_prefix_is_accepted(api):
    emulator, client = api
    old_base = emulator.base_url.replace("/v2", "/api/v2")
    response = client.get(f"{old_base}/courses/22001")
    assert response.status_code == 200 and response.json()["id"] == 22001
    assert emulator.requests[-1].path == "/api/v2/courses/22001"
    assert client.get(emulator.base_url.replace("/v2", "/v3") + "/courses").status_code == 404


def test_unknown_paths_and_methods(api):
    _, client = api
    assert client.get("nowhere").json() == {"error": "Not found"}
    assert client.get("nowhere").status_code == 404
    posted = client.post("courses", json={"title": "x"})
    assert posted.status_code == 405 and "error" in posted.json()
    assert client.get("courses", params={"limit": "many"}).status_code == 400


def test_date_filters_and_ordering(api, catalog):
    _, client = api
    today = TODAY.isoformat()
    dates = catalog.coursedates.values()

    def ids(**params) -> list[int]:
        return [
            d["coursedate_id"]
            for d in get_json(client, "coursedates", limit=250, **params)["items"]
        ]

    assert ids(start_date_at_min=today) == sorted(
        d["coursedate_id"] for d in dates if d["start_at"] >= today
    )
    assert ids(end_date_at_max=today) == sorted(
        d["coursedate_id"] for d in dates if d["end_at"] <= today
    )
    not_started = ids(start_date_at_min="now")  # the catalog clock: 10:00 today
    assert set(not_started) <= set(ids(start_date_at_min=today))
    assert set(not_started) == {d["coursedate_id"] for d in get_json(client, "nextcoursedates")}
    assert ids(status_id=3) == sorted(d["coursedate_id"] for d in dates if d["status"]["id"] == 3)
    assert ids(since_id=900230) == list(range(900231, 900241))
    newest = max(d["updated_at"] for d in dates)
    assert ids(updated_at_min=newest[:19].replace("T", " ")) == [
        d["coursedate_id"] for d in dates if d["updated_at"] == newest
    ]
    by_start = get_json(
        client, "coursedates", limit=250, order_by="startdate", order_direction="desc"
    )["items"]
    starts = [d["start_at"] for d in by_start]
    assert starts == sorted(starts, reverse=True)
    assert client.get("coursedates", params={"start_date_at_min": "soon"}).status_code == 400


# --------------------------------------------------------------------------------------------
# Auth, rate limit, faults, request log
# --------------------------------------------------------------------------------------------


def test_wrong_key_is_refused_with_401_or_200(serve, catalog):
    strict, lenient = serve(catalog), serve(catalog, auth_error_status=200)
    with httpx.Client(headers={"X-API-Key": "wrong"}) as client:
        refused = client.get(f"{strict.base_url}/courses")
        assert refused.status_code == 401 and refused.json() == {"error": "Wrong API Key"}
        quiet = client.get(f"{lenient.base_url}/courses")
        assert quiet.status_code == 200 and quiet.json() == {"error": "Wrong API Key"}
    assert httpx.get(f"{strict.base_url}/courses").status_code == 401  # no key at all
    assert [r.status for r in strict.requests] == [401, 401]


@pytest.mark.parametrize("retry_after", [True, False])
def test_a_burst_gets_429_with_or_without_retry_after(serve, catalog, retry_after):
    emulator = serve(catalog, rate_limit=3, retry_after=retry_after)
    with httpx.Client(base_url=emulator.base_url + "/", headers={"X-API-Key": KEY}) as client:
        responses = [client.get("locations") for _ in range(5)]
        assert [r.status_code for r in responses[:3]] == [200, 200, 200]
        throttled = responses[3]
        assert throttled.status_code == 429 and throttled.content == b""
        assert throttled.headers.get("retry-after") == ("1" if retry_after else None)
        time.sleep(0.4)  # a token refills in 1/3 s
        assert client.get("locations").status_code == 200
    assert [r.status for r in emulator.requests].count(429) == 2


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_server_errors(api, status):
    emulator, client = api
    emulator.inject(status, times=2, path="/courses")
    assert client.get("locations").status_code == 200  # other paths are untouched
    answers = [client.get("courses") for _ in range(3)]
    assert [r.status_code for r in answers] == [int(status), int(status), 200]
    assert answers[0].json() == {"error": "Internal Server Error"}


def test_drop_truncate_error200_and_429_faults(api):
    emulator, client = api
    emulator.inject("drop", path="/batch/coursedates")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ConnectError, httpx.ReadError)):
        client.get("batch/coursedates", params={"course_ids[]": 22001})

    emulator.inject("truncate")
    cut = client.get("locations")
    assert cut.status_code == 200
    assert int(cut.headers["content-length"]) == len(cut.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)

    emulator.inject("error200")
    soft = client.get("locations")
    assert soft.status_code == 200
    assert soft.json() == {"error": "Temporary failure, please try again"}

    emulator.inject("429")
    limited = client.get("locations")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert client.get("locations").status_code == 200
    assert [r.status for r in emulator.requests] == [0, 200, 200, 429, 200]
    with pytest.raises(ValueError, match="unknown fault"):
        emulator.inject("teapot")


def test_forbidden_missing_gzip_and_charset_faults(api):
    emulator, client = api
    emulator.inject("403", path="/instructors")
    emulator.inject("404", path="/instructors")
    assert client.get("instructors").status_code == 403
    assert client.get("instructors").status_code == 404
    assert client.get("instructors").status_code == 200

    emulator.inject("gzip", path="/locations")
    with pytest.raises(httpx.DecodingError):  # announced as gzip, not compressed
        client.get("locations")

    emulator.inject("charset", path="/locations")
    utf16 = client.get("locations")
    assert utf16.headers["content-type"] == "application/json; charset=utf-16"
    assert json.loads(utf16.content.decode("utf-16")) == client.get("locations").json()


def test_hostile_faults_cost_a_careless_client_what_they_say(api):
    emulator, client = api
    emulator.inject("bomb", path="/courses", size=10_000_000)
    with client.stream("GET", "courses") as answer:
        packed = b"".join(answer.iter_raw())
    assert answer.headers["content-encoding"] == "gzip" and len(packed) < 20_000
    unpacked = gzip.decompress(packed)
    assert len(unpacked) == 10_000_000 and json.loads(unpacked) == []

    emulator.inject("huge", path="/courses", size=3_000_000)
    huge = client.get("courses")
    assert huge.headers["content-length"] == "3000000" and huge.json() == []

    emulator.inject("endless", path="/courses")
    received = 0
    with client.stream("GET", "courses") as answer:
        assert answer.headers["transfer-encoding"] == "chunked"
        for chunk in answer.iter_raw():
            received += len(chunk)
            if received > 5_000_000:
                break  # it would go on for ever
    assert received > 5_000_000

    emulator.inject("trickle", path="/courses/1", delay=0.01)
    started = time.monotonic()
    missing = client.get("courses/1")  # a short answer: a 404 of 30 bytes, headers and all
    assert missing.status_code == 404 and missing.json() == {"error": "Course not found"}
    assert time.monotonic() - started > 0.01 * 100
    assert [r.status for r in emulator.requests] == [200, 200, 200, 404]
    assert client.get("courses").status_code == 200  # each fault served once


def test_slow_answers_are_late_but_complete(api, catalog):
    emulator, client = api
    emulator.inject("slow", delay=0.3, path="/instructors")
    started = time.monotonic()
    answer = client.get("instructors")
    assert time.monotonic() - started >= 0.3
    assert len(answer.json()) == len(catalog.instructors)


def test_faults_apply_after_auth(serve, catalog):
    emulator = serve(catalog)
    emulator.inject("500")
    assert httpx.get(f"{emulator.base_url}/courses").status_code == 401  # not consumed
    assert httpx.get(f"{emulator.base_url}/courses", headers={"X-API-Key": KEY}).status_code == 500


def test_request_log_and_keep_alive(api):
    emulator, client = api
    before = time.monotonic()
    client.get("courses", params={"limit": 2, "page": 1})
    client.get("batch/coursedates", params={"course_ids[]": [22001, 22003], "x": ""})
    client.get("courses/1")
    log = emulator.requests
    assert [(r.method, r.path, r.status) for r in log] == [
        ("GET", "/v2/courses", 200),
        ("GET", "/v2/batch/coursedates", 200),
        ("GET", "/v2/courses/1", 404),
    ]
    assert isinstance(log[0], LoggedRequest) and before <= log[0].at <= log[1].at
    assert log[0].params == {"limit": ["2"], "page": ["1"]}
    assert log[1].params == {"course_ids[]": ["22001", "22003"], "x": [""]}
    emulator.clear_log()
    assert emulator.requests == []
    # One connection served all of them (HTTP/1.1 keep-alive).
    assert client.get("courses").http_version == "HTTP/1.1"
    assert client.get("courses").headers.get("connection", "").lower() != "close"


def test_mutations_show_between_requests(api, catalog):
    _, client = api
    cid = sorted(catalog.courses)[0]
    catalog.change_course(cid, title="Førstehjelp <ny>")
    assert get_json(client, f"courses/{cid}")["title"] == "Førstehjelp <ny>"
    catalog.remove_course(cid)
    assert client.get(f"courses/{cid}").status_code == 404
    new_id = catalog.add_course("Helt nytt kurs", dates=2)
    assert len(get_json(client, "batch/coursedates", **{"course_ids[]": new_id})) == 2


def test_standalone_runs_until_ctrl_c():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "catalog_gen.demo.emulator",
            "--port",
            "0",
            "--courses",
            "5",
            "--api-key",
            "k",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    try:
        base_url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v2", base_url)
        courses = httpx.get(f"{base_url}/courses", headers={"X-API-Key": "k"}).json()
        assert len(courses) == 5
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
