"""The client's handling of Frontcore's list shapes and id quirks (httpx.MockTransport)."""

from __future__ import annotations

import base64
import html
import json
import logging
from datetime import date
from urllib.parse import quote

import httpx
import pytest

from catalog_gen.config import SyncSettings
from catalog_gen.errors import ApiError, LimitExceeded
from catalog_gen.source.client import FrontcoreClient
from catalog_gen.source.transport import Transport


def client_for(handler, page_size=3) -> tuple[FrontcoreClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def recording(request):
        seen.append(request)
        return handler(request)

    transport = Transport(
        "https://api.example.test/v2",
        "k",
        http_transport=httpx.MockTransport(recording),
        sleep=lambda s: None,
    )
    return FrontcoreClient(transport, page_size=page_size), seen


def paged(records, page_size=3):
    """A server that pages ``records`` as bare arrays and ignores nothing."""

    def handler(request):
        page = int(request.url.params["page"])
        limit = int(request.url.params["limit"])
        assert limit == page_size
        return httpx.Response(200, json=records[(page - 1) * limit : page * limit])

    return handler


def test_pages_until_a_short_page():
    records = [{"id": i, "title": f"c{i}"} for i in range(1, 8)]
    client, seen = client_for(paged(records))
    assert [c["id"] for c in client.list_courses()] == list(range(1, 8))
    assert [r.url.params["page"] for r in seen] == ["1", "2", "3"]


def test_an_exact_multiple_ends_on_an_empty_page():
    records = [{"id": i} for i in range(1, 7)]
    client, seen = client_for(paged(records))
    assert len(client.list_courses()) == 6
    assert len(seen) == 3


def test_default_page_size_is_the_documented_maximum():
    client, seen = client_for(paged([{"id": 1}], page_size=250), page_size=250)
    client.list_courses()
    assert seen[0].url.params["limit"] == "250"


def test_wrapped_lists_follow_next_page():
    pages = {
        1: {
            "items": [{"id": 1}, {"id": 2}, {"id": 3}],
            "pagination": {"current_page": 1, "next_page": 2},
        },
        2: {"items": [{"id": 4}], "pagination": {"current_page": 2, "next_page": 3}},
        3: {"items": [], "pagination": {"current_page": 3, "next_page": None}},
    }
    client, seen = client_for(lambda r: httpx.Response(200, json=pages[int(r.url.params["page"])]))
    assert [c["id"] for c in client.list_courses()] == [1, 2, 3, 4]
    assert len(seen) == 3  # a short page does not end a wrapped list; next_page does


def test_a_server_ignoring_page_is_stopped_with_a_warning(caplog):
    same = [{"id": 1}, {"id": 2}, {"id": 3}]
    client, seen = client_for(lambda r: httpx.Response(200, json=same))
    with caplog.at_level(logging.WARNING):
        assert len(client.list_courses()) == 3
    assert len(seen) == 2
    assert "repeats ids already seen" in caplog.text


def test_string_ids_become_integers():
    client, _ = client_for(paged([{"id": "17"}]))
    assert client.list_courses() == [{"id": 17}]


def test_an_answer_that_is_not_a_list_is_a_clear_error():
    client, _ = client_for(lambda r: httpx.Response(200, json={"data": []}))
    with pytest.raises(ApiError, match="expected a list"):
        client.list_courses()


def test_entries_without_a_usable_id_are_left_out_and_named_and_the_rest_is_read():
    """A record never stops the catalog: a list entry that is not an object, or has no id
    the client can file it under, is left out with a warning naming where it was."""
    body = [{"id": 1}, "x", {"title": "?"}, {"id": "7.5"}, {"id": True}, {"id": "3"}]
    client, _ = client_for(paged(body))
    assert client.list_courses() == [{"id": 1}, {"id": 3}]
    found = {(a.kind, a.record, a.field) for a in client.anomalies}
    assert found == {
        ("record.not_an_object", "course #2 on page 1 of /courses", "(entry)"),
        ("record.id_unusable", "course #3 on page 1 of /courses", "id"),
        ("record.id_unusable", "course #1 on page 2 of /courses", "id"),
        ("record.id_unusable", "course #2 on page 2 of /courses", "id"),
    }


def test_a_page_of_nothing_usable_does_not_end_the_list_early():
    pages = {1: [{"title": "?"}] * 2, 2: [{"id": 5}]}
    client, _ = client_for(
        lambda r: httpx.Response(200, json=pages.get(int(r.url.params["page"]), [])),
        page_size=2,
    )
    assert client.list_courses() == [{"id": 5}]
    assert len(client.anomalies) == 2


def test_batch_dates_are_chunked_and_normalised():
    def handler(request):
        ids = [int(v) for v in request.url.params.get_list("course_ids[]")]
        page = int(request.url.params["page"])
        if page > 1:
            return httpx.Response(200, json=[])
        return httpx.Response(
            200,
            json=[
                {
                    "coursedate_id": str(1000 + cid),
                    "course": {"id": cid, "title": "t"},
                    "start_at": "x",
                }
                for cid in ids
            ],
        )

    client, seen = client_for(handler, page_size=250)
    dates = client.batch_coursedates(
        list(range(1, 8)), chunk_size=3, end_date_min=date(2026, 10, 24)
    )
    assert [d["coursedate_id"] for d in dates] == [1001, 1002, 1003, 1004, 1005, 1006, 1007]
    assert all("course" not in d for d in dates)
    assert [d["course_id"] for d in dates] == list(range(1, 8))
    chunks = [r.url.params.get_list("course_ids[]") for r in seen]
    assert chunks == [["1", "2", "3"], ["4", "5", "6"], ["7"]]
    assert {r.url.params["end_date_at_min"] for r in seen} == {"2026-10-24"}


def test_flat_course_id_is_accepted_and_a_date_naming_no_course_left_out_and_named():
    client, _ = client_for(
        lambda r: httpx.Response(200, json=[{"coursedate_id": 5, "course_id": "9"}])
    )
    assert client.batch_coursedates([9], chunk_size=10)[0]["course_id"] == 9
    body = [{"coursedate_id": 5}, {"coursedate_id": 6, "course_id": 9}]
    client, _ = client_for(lambda r: httpx.Response(200, json=body))
    assert [d["coursedate_id"] for d in client.batch_coursedates([9], chunk_size=10)] == [6]
    [anomaly] = client.anomalies
    assert (anomaly.kind, anomaly.record) == ("date.course_unnamed", "course date 5")


def test_a_date_listed_twice_is_kept_once_and_named():
    body = [{"coursedate_id": 5, "course_id": 9}, {"coursedate_id": 5, "course_id": 9}]
    client, _ = client_for(lambda r: httpx.Response(200, json=body))
    assert len(client.batch_coursedates([9], chunk_size=10)) == 1
    [anomaly] = client.anomalies
    assert (anomaly.kind, anomaly.record) == ("record.id_repeated", "course date 5")


def test_single_course_may_come_wrapped_in_an_array():
    client, _ = client_for(lambda r: httpx.Response(200, json=[{"id": 4, "text_lead": "x"}]))
    assert client.get_course(4) == {"id": 4, "text_lead": "x"}


# --- the course list: one stable order, and reads that must agree -------------------------


def test_the_course_list_is_asked_for_in_ascending_id_order():
    client, seen = client_for(paged([{"id": i} for i in range(1, 5)]))
    client.list_courses()
    assert {(r.url.params["order_by"], r.url.params["order_direction"]) for r in seen} == {
        ("id", "asc")
    }


class MovingList:
    """A server ignoring order_by whose list moves between two pages of the first read:
    course 7 is updated and jumps to the front, so a plain paged read never sees it."""

    def __init__(self, moves: int = 1):
        self.order = [1, 2, 3, 4, 5, 6, 7]
        self.moves = moves

    def __call__(self, request):
        page = int(request.url.params["page"])
        if page == 2 and self.moves:
            self.moves -= 1
            last = self.order.pop()
            self.order.insert(0, last)
        return httpx.Response(200, json=[{"id": i} for i in self.order[(page - 1) * 3 : page * 3]])


def test_a_list_that_moves_between_pages_is_read_again_until_two_reads_agree():
    server = MovingList()
    client, seen = client_for(server)
    # The first read gets [1, 2, 3], [3, 4, 5], [6]: course 3 twice, course 7 never.
    assert sorted(c["id"] for c in client.list_courses()) == [1, 2, 3, 4, 5, 6, 7]
    assert client.course_list_reads == 3  # a moved read, then two that agree
    assert len(seen) == 9


def test_a_list_that_keeps_moving_is_an_api_error():
    client, _ = client_for(MovingList(moves=10))
    with pytest.raises(ApiError, match="changed while it was read, 3 times"):
        client.list_courses()


def test_a_known_course_missing_from_a_read_is_confirmed_by_a_second_read():
    reads = iter([[1, 2, 4], [1, 2, 3, 4]])  # the first read lost course 3 between pages

    def handler(request):
        if request.url.params["page"] == "1":
            handler.ids = next(reads)
        return httpx.Response(200, json=[{"id": i} for i in handler.ids])

    client, _ = client_for(handler, page_size=10)
    assert [c["id"] for c in client.list_courses(expected={1, 2, 3, 4})] == [1, 2, 3, 4]
    assert client.course_list_reads == 2


def test_a_course_really_gone_costs_one_more_read_only():
    client, seen = client_for(paged([{"id": 1}, {"id": 2}]), page_size=3)
    assert [c["id"] for c in client.list_courses(expected={1, 2, 3})] == [1, 2]
    assert client.course_list_reads == 2 and len(seen) == 2


# --- text cleaned at the boundary -------------------------------------------------------------

KEY = "fc-live-key-Zq81/+mN2xR7pL0w"


def keyed_client(handler, key: str = KEY) -> FrontcoreClient:
    transport = Transport(
        "https://api.example.test/v2",
        key,
        http_transport=httpx.MockTransport(handler),
        sleep=lambda s: None,
    )
    return FrontcoreClient(transport, page_size=250)


def test_lone_surrogates_become_replacement_characters_with_a_warning():
    body = b'[{"id": 7, "title": "Kurs \\ud800", "custom_properties": {"\\udfff": ["x\\udc00"]}}]'
    client = keyed_client(lambda r: httpx.Response(200, content=body))
    [course] = client.list_courses()
    assert course["title"] == "Kurs \ufffd"
    assert course["custom_properties"] == {"\ufffd": ["x\ufffd"]}
    found = {(a.kind, a.record, a.field) for a in client.anomalies}
    assert found == {
        ("text.lone_surrogate", "course 7", "title"),
        ("text.lone_surrogate", "course 7", "custom_properties.\ufffd"),
        ("text.lone_surrogate", "course 7", "custom_properties.\ufffd.0"),
    }


@pytest.mark.parametrize(
    "echo",
    [
        KEY,
        quote(KEY, safe=""),
        html.escape("<" + KEY + ">"),
        json.dumps({"key": KEY}).replace("/", "\\/"),
        base64.b64encode(KEY.encode()).decode(),
        "Basic " + base64.b64encode(b"user:" + KEY.encode()).decode(),
        base64.urlsafe_b64encode(b"a" + KEY.encode() + b"!").decode(),
    ],
    ids=[
        "raw",
        "url-encoded",
        "html-escaped",
        "json-escaped",
        "base64",
        "base64-shifted",
        "base64-urlsafe",
    ],
)
def test_the_api_key_echoed_in_a_record_is_masked_and_named_never_shown(echo):
    date = {"coursedate_id": 5, "course": {"id": 9, "title": echo}, "gatherings": [{"a": echo}]}
    client = keyed_client(lambda r: httpx.Response(200, json=[date]))
    [record] = client.batch_coursedates([9], chunk_size=10)
    assert "[REDACTED]" in record["gatherings"][0]["a"]
    assert KEY not in json.dumps(record) and echo not in json.dumps(record)
    [anomaly] = client.anomalies  # the dropped embedded course is not reported
    assert (anomaly.kind, anomaly.record, anomaly.field) == (
        "text.api_key",
        "course date 5",
        "gatherings.0.a",
    )
    assert KEY not in repr(anomaly)


def test_a_record_nested_too_deeply_is_an_api_error():
    deep: dict = {"id": 3}
    node = deep
    for _ in range(260):
        node["x"] = {}
        node = node["x"]
    client = keyed_client(lambda r: httpx.Response(200, json=[deep]))
    with pytest.raises(ApiError, match="nested more than"):
        client.list_courses()


# --- how long a list may be -------------------------------------------------------------------


def limited_client(handler, **limits) -> tuple[FrontcoreClient, list[httpx.Request]]:
    client, seen = client_for(handler)
    return FrontcoreClient(client.transport, page_size=3, limits=SyncSettings(**limits)), seen


def test_a_course_list_longer_than_sync_max_courses_is_refused_before_it_is_all_read():
    client, seen = limited_client(paged([{"id": i} for i in range(1, 100)]), max_courses=5)
    with pytest.raises(LimitExceeded) as caught:
        client.list_courses()
    assert str(caught.value) == (
        "GET /courses: the list holds more than sync.max_courses = 5 records; refused"
    )
    assert len(seen) == 2  # 6 entries on two pages of 3: the third page is never asked for


def test_the_dates_of_one_fetch_count_together_against_sync_max_dates():
    def dates(request):
        ids = [int(i) for i in request.url.params.get_list("course_ids[]")]
        page = int(request.url.params["page"])
        listed = [{"coursedate_id": c * 10 + n, "course_id": c} for c in ids for n in range(2)]
        return httpx.Response(200, json=listed[(page - 1) * 3 : page * 3])

    client, _ = limited_client(dates, max_dates=8)
    assert len(client.batch_coursedates([1, 2], chunk_size=1)) == 4
    assert len(client.batch_coursedates([3, 4], chunk_size=1)) == 4  # 8 in all: the limit
    with pytest.raises(LimitExceeded, match=r"^GET /batch/coursedates: .* sync.max_dates = 8 "):
        client.batch_coursedates([5], chunk_size=1)


def test_a_reference_list_longer_than_its_limit_is_refused_entries_of_any_shape_counted():
    longer = [{"id": 1}, "junk", None, 4, {"id": 5}]
    client, _ = limited_client(paged(longer), max_reference_records=4)
    with pytest.raises(LimitExceeded, match=r"sync.max_reference_records = 4 records"):
        client.list_reference("locations")
    client, _ = limited_client(paged([{"id": 1}, "junk", None, 4]), max_reference_records=4)
    assert client.list_reference("locations") == [{"id": 1}]  # at the limit: read as usual


def test_an_entry_noted_before_the_boundary_cleans_it_never_shows_the_key():
    """An id no client can use is noted (and shown) before the records are scrubbed: the
    value as shown is scrubbed too. Hypothesis found {"id": {"<key>": null}} once."""
    entries = [{"id": {KEY: None}, "title": "x"}, [KEY.upper(), 1], {"id": 7, "title": "ok"}]
    client = keyed_client(lambda r: httpx.Response(200, json=entries))
    courses = client.list_courses()
    assert [c["id"] for c in courses] == [7]
    shown = " ".join(a.value for a in client.anomalies)
    assert KEY.lower() not in shown.lower() and "[REDACTED]" in shown
