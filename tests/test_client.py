"""The client's handling of Frontcore's list shapes and id quirks (httpx.MockTransport)."""

from __future__ import annotations

import logging
from datetime import date

import httpx
import pytest

from catalog_gen.errors import ApiError
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


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": []}, "expected a list"),
        (["x"], "expected objects"),
        ([{"title": "?"}], "no usable"),
    ],
)
def test_unexpected_shapes_are_clear_errors(body, message):
    client, _ = client_for(lambda r: httpx.Response(200, json=body))
    with pytest.raises(ApiError, match=message):
        client.list_courses()


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
        list(range(1, 8)), chunk_size=3, start_date_min=date(2026, 11, 23)
    )
    assert [d["coursedate_id"] for d in dates] == [1001, 1002, 1003, 1004, 1005, 1006, 1007]
    assert all("course" not in d for d in dates)
    assert [d["course_id"] for d in dates] == list(range(1, 8))
    chunks = [r.url.params.get_list("course_ids[]") for r in seen]
    assert chunks == [["1", "2", "3"], ["4", "5", "6"], ["7"]]
    assert {r.url.params["start_date_at_min"] for r in seen} == {"2026-11-23"}


def test_flat_course_id_is_accepted_and_a_missing_one_refused():
    client, _ = client_for(
        lambda r: httpx.Response(200, json=[{"coursedate_id": 5, "course_id": "9"}])
    )
    assert client.batch_coursedates([9], chunk_size=10)[0]["course_id"] == 9
    client, _ = client_for(lambda r: httpx.Response(200, json=[{"coursedate_id": 5}]))
    with pytest.raises(ApiError, match="names no course"):
        client.batch_coursedates([9], chunk_size=10)


def test_single_course_may_come_wrapped_in_an_array():
    client, _ = client_for(lambda r: httpx.Response(200, json=[{"id": 4, "text_lead": "x"}]))
    assert client.get_course(4) == {"id": 4, "text_lead": "x"}
