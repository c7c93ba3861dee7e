"""Frontcore's read endpoints, with its quirks absorbed: pagination, id shapes, wrappers.

Liberal in what it accepts (bare arrays or an ``{items, pagination}`` wrapper, ids as strings,
the course of a date as ``course_id`` or an embedded ``course``), strict in what it returns:
records with integer ids, course dates with a ``course_id`` and without the embedded course
(the snapshot stores courses once, not once per date).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from typing import Any

from catalog_gen.errors import ApiError
from catalog_gen.source.transport import Transport

log = logging.getLogger(__name__)

PAGE_SIZE = 250  # Frontcore's documented maximum
#: No real catalog comes near this; reaching it means the server ignores ``page``. We fail
#: rather than publish a silently truncated catalog.
MAX_PAGES = 10_000

#: Reference lists: (snapshot name, path, extra query parameters).
REFERENCE_LISTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("locations", "locations", {}),
    ("instructors", "instructors", {}),
    ("products", "orders/products", {"id_type": 2}),
)


class FrontcoreClient:
    """The catalog-relevant GET endpoints of Frontcore v2."""

    def __init__(self, transport: Transport, *, page_size: int = PAGE_SIZE):
        self.transport = transport
        self.page_size = page_size

    def list_courses(self) -> list[dict]:
        """Every course the account has (active or not), as the list endpoint returns them."""
        return [normalise_course(raw) for raw in self.iter_list("courses", id_key="id")]

    def get_course(self, course_id: int) -> dict:
        """One course in full (texts included), for list items that lack fields."""
        payload = self.transport.get_json(f"courses/{course_id}")
        if isinstance(payload, list) and len(payload) == 1:  # orders come wrapped; be ready
            payload = payload[0]
        if not isinstance(payload, dict):
            raise ApiError(f"GET /courses/{course_id}: expected a course object")
        return normalise_course(payload)

    def batch_coursedates(
        self,
        course_ids: Sequence[int],
        *,
        chunk_size: int,
        start_date_min: date | None = None,
        on_chunk: Callable[[int], None] | None = None,
    ) -> list[dict]:
        """The dates of many courses through ``/batch/coursedates``, ``chunk_size`` ids a call.

        ``start_date_min`` limits the answer to dates starting on or after that day (in the
        catalog's zone): the cheap way to refresh seat counts of upcoming dates only.
        """
        dates: list[dict] = []
        for chunk in _chunks(sorted(course_ids), chunk_size):
            params: dict[str, Any] = {
                "course_ids[]": chunk,
                "order_by": "id",
                "order_direction": "asc",
            }
            if start_date_min is not None:
                params["start_date_at_min"] = start_date_min.isoformat()
            raw_dates = self.iter_list("batch/coursedates", params, id_key="coursedate_id")
            dates.extend(normalise_coursedate(raw, "batch/coursedates") for raw in raw_dates)
            if on_chunk:
                on_chunk(len(chunk))
        return dates

    def list_reference(self, path: str, params: dict[str, Any] | None = None) -> list[dict]:
        """A reference list (venues, instructors, products): records with integer ids."""
        return [
            {**raw, "id": record_id(raw, "id", path)}
            for raw in self.iter_list(path, params or {}, id_key="id")
        ]

    def iter_list(
        self, path: str, params: dict[str, Any] | None = None, *, id_key: str
    ) -> Iterator[dict]:
        """Page through a list until a short page, ``next_page: null`` or a repeated page."""
        seen: set[int] = set()
        for page in range(1, MAX_PAGES + 1):
            payload = self.transport.get_json(
                path, {**(params or {}), "limit": self.page_size, "page": page}
            )
            items, has_next = _page_items(payload, path)
            fresh = []
            for raw in items:
                rid = record_id(raw, id_key, path)
                if rid not in seen:
                    seen.add(rid)
                    fresh.append(raw)
            if items and not fresh:
                log.warning(
                    "/%s page %d repeats ids already seen; stopping there (the server may be "
                    "ignoring 'page')",
                    path,
                    page,
                )
                return
            yield from fresh
            if has_next is None:
                has_next = len(items) >= self.page_size
            if not has_next:
                return
        raise ApiError(f"GET /{path}: more than {MAX_PAGES} pages; refusing to truncate")


def _page_items(payload: Any, path: str) -> tuple[list[dict], bool | None]:
    """(items, has_next) of one page; has_next is None when only a short page can tell."""
    if isinstance(payload, list):
        items, has_next = payload, None
    elif isinstance(payload, dict) and isinstance(payload.get("items"), list):
        items = payload["items"]
        pagination = payload.get("pagination")
        has_next = (
            pagination.get("next_page") not in (None, "", 0, False)
            if isinstance(pagination, dict) and "next_page" in pagination
            else None
        )
    else:
        raise ApiError(f"GET /{path}: expected a list, got {type(payload).__name__}")
    for raw in items:
        if not isinstance(raw, dict):
            raise ApiError(f"GET /{path}: expected objects in the list, got {type(raw).__name__}")
    return items, has_next


def record_id(raw: dict, key: str, path: str) -> int:
    """An id as an int, whether Frontcore sent 42 or "42"."""
    value = raw.get(key)
    if value is None and key == "coursedate_id":
        value = raw.get("id")
    try:
        if isinstance(value, bool):
            raise TypeError
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ApiError(f"GET /{path}: a record has no usable '{key}' ({value!r})") from None


def normalise_course(raw: dict) -> dict:
    return {**raw, "id": record_id(raw, "id", "courses")}


def normalise_coursedate(raw: dict, path: str) -> dict:
    """A date with int ``coursedate_id`` and ``course_id``; the embedded course is dropped."""
    date_id = record_id(raw, "coursedate_id", path)
    course = raw.get("course")
    owner = raw.get("course_id")
    if owner is None and isinstance(course, dict):
        owner = course.get("id")
    if owner is None:
        raise ApiError(f"GET /{path}: course date {date_id} names no course")
    record = {k: v for k, v in raw.items() if k not in ("course", "id")}
    record["coursedate_id"] = date_id
    record["course_id"] = record_id({"course_id": owner}, "course_id", path)
    return record


def _chunks(values: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
