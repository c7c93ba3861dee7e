"""The anomaly report: one line per kind, records named, values shortened, each found once."""

from __future__ import annotations

import pytest

from catalog_gen.anomalies import KINDS, Anomalies, kind, report_lines, shown

BLANK = kind("test.blank", "blank value; shown as a fallback")
ODD = kind("test.odd", "odd value; left out")


def test_one_line_per_kind_naming_records_fields_and_values():
    found = Anomalies()
    for n in range(7):
        found.add(BLANK, f"course {22000 + n}", "title", "  ")
    found.add(ODD, "course date 9", "status.id", 7)
    found.add(ODD, "course date 9", "status.id", 7)  # the same anomaly twice counts once
    lines = report_lines(found)
    assert len(lines) == 2
    assert lines[0].startswith("7 × blank value; shown as a fallback [test.blank]: course 22000")
    assert "course 22004 title='  '" in lines[0]
    assert "course 22005" not in lines[0] and lines[0].endswith("and 2 more")
    assert lines[1] == "1 × odd value; left out [test.odd]: course date 9 status.id=7"
    assert len(found) == 8


def test_values_are_one_short_line():
    assert shown(None) == "null" and shown(True) == "true" and shown([]) == "[]"
    assert "\n" not in shown("a\nb") and len(shown("x" * 500)) == 60


def test_kinds_are_declared_once_and_required():
    with pytest.raises(ValueError):
        kind("test.odd", "something else")
    with pytest.raises(KeyError):
        Anomalies().add("test.never-declared", "course 1", "title", "")
    assert KINDS[BLANK] == "blank value; shown as a fallback"
