"""The contract between the halves: the site reads no course field the source may leave out.

The source half completes a course-list item with the course's detail GET when it lacks one of
``snapshot.COURSE_FIELDS``; a field the site reads outside that list could be missing from
every course of a catalog whose list items are summaries, and nothing would notice.
"""

from __future__ import annotations

from datetime import UTC, datetime

from catalog_gen.config import PublishSettings
from catalog_gen.demo.sample import generate_catalog
from catalog_gen.site import drafts as drafts_module
from catalog_gen.site.catalog import build_catalog
from catalog_gen.site.model import Fields
from catalog_gen.snapshot import COURSE_FIELDS, Snapshot
from tests.conftest import NOW, TODAY


class ReadRecorder(dict):
    """A course record that notes every field read from it; reading it whole notes ``*``."""

    def __init__(self, record: dict, reads: set[str]):
        super().__init__(record)
        self.reads = reads

    def get(self, key, default=None):
        self.reads.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.reads.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.reads.add(key)
        return super().__contains__(key)

    def __iter__(self):
        self.reads.add("*")
        return super().__iter__()

    def keys(self):
        self.reads.add("*")
        return super().keys()

    def items(self):
        self.reads.add("*")
        return super().items()

    def values(self):
        self.reads.add("*")
        return super().values()

    def copy(self):
        self.reads.add("*")
        return super().copy()


def test_the_site_reads_no_course_field_outside_course_fields(monkeypatch):
    """Every field the model needs is in the list. ``extra`` (every field the model does not
    type, whatever the record holds) reads the record whole by design: it is left out here."""
    monkeypatch.setattr(drafts_module, "read_extra", lambda record, typed, reading: Fields())
    catalog = generate_catalog(48, today=TODAY)
    reads: set[str] = set()
    snapshot = Snapshot(
        fetched_at=datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
        api_base="http://127.0.0.1/v2",
        courses={cid: ReadRecorder(c, reads) for cid, c in catalog.courses.items()},
        coursedates=catalog.coursedates,
        reference={},
        reference_fetched_at={},
        course_sources={},
    )
    built = build_catalog(snapshot, PublishSettings(), now=NOW, timezone="Europe/Oslo")
    assert built.courses  # the records were really read
    assert {"title", "text_description", "email_booking"} <= reads
    assert reads - {"id", *COURSE_FIELDS} == set()
