"""Odd data from the API: what was found, in which record, and what catalog-gen did instead.

One awkward record must never stop a night's publish. Wherever catalog-gen reads a value the
API sent (the fetch at the API boundary, the catalog model when it applies the publishing
rules), a value it cannot use as it is gets a safe, documented fallback, and the reader adds an
:class:`Anomaly` naming the record, the field and the value. The build reports them grouped,
one line per kind (``KINDS`` says what each kind means and what was done), so an operator reads
"3 course dates with an unknown status id …" rather than three hundred lines.

Anomalies are data, not errors: only what the operator controls (config, templates, content
files, the API being down or refusing the key) fails a build.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from catalog_gen.printable import printable

#: Every kind of anomaly, with the fallback a reader of the report needs to know. Keys are
#: stable (scripts and the build state use them); the docs list them all (a test checks).
KINDS: dict[str, str] = {}

#: How many records a report line names before it says "and N more".
SHOWN_PER_KIND = 5
#: A value is shown up to this many characters.
VALUE_LIMIT = 60


def kind(key: str, fallback: str) -> str:
    """Declare a kind of anomaly (at import time, beside the code that reports it).

    What a visitor sees instead is named by the key of its text in the site's language, in
    braces (``"shown as '{untitled_course}'"``): ``described`` fills it in, so an English
    site's report says "Course <id>" where a Norwegian one says "Kurs <id>"."""
    if key in KINDS and KINDS[key] != fallback:
        raise ValueError(f"anomaly kind {key!r} declared twice")
    KINDS[key] = fallback
    return key


@dataclass(frozen=True, order=True)
class Anomaly:
    """One value catalog-gen could not use as it was."""

    kind: str
    #: The record, as an operator finds it in Frontcore: "course 22002", "course date 9304757".
    record: str
    #: The field, dotted for nested values: "title", "status.id", "seats.free.num".
    field: str
    #: The value as received, shortened (see :func:`shown`).
    value: str

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes it the same anomaly on the next run (the value may differ)."""
        return (self.kind, self.record, self.field)


#: The user and password part of a URL (``https://user:secret@host``): never repeated.
_CREDENTIALS = re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*:[/\\]{1,6})[^/\\?#\s@'\"]*@")


def shown(value: object) -> str:
    """A received value as a report shows it: one line (repr escapes line breaks and control
    characters), credentials in a URL masked (``https://***@host``: a URL from the API may
    carry a password, and reports go to CI logs and mail), at most VALUE_LIMIT characters."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = _CREDENTIALS.sub(r"\1***@", repr(value))
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"


class Anomalies:
    """The anomalies one run found, in the order found, each reported once."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str, str], Anomaly] = {}

    def add(
        self,
        kind: str,
        record: str,
        field: str,
        value: object,
        *,
        clean: Callable[[str], str] = lambda text: text,
    ) -> None:
        """Note that ``record``'s ``field`` held ``value``, handled as ``KINDS[kind]`` says;
        ``clean`` is applied to the value as shown (the fetch boundary's scrubber, for a value
        noted before the record was scrubbed)."""
        if kind not in KINDS:
            raise KeyError(f"undeclared anomaly kind {kind!r}")
        anomaly = Anomaly(kind, record, field, clean(shown(value)))
        self._found.setdefault(anomaly.key, anomaly)

    def extend(self, anomalies: Iterable[Anomaly]) -> None:
        for anomaly in anomalies:
            self._found.setdefault(anomaly.key, anomaly)

    def __iter__(self) -> Iterator[Anomaly]:
        return iter(self._found.values())

    def __len__(self) -> int:
        return len(self._found)

    def __bool__(self) -> bool:
        return bool(self._found)


_SAYS = re.compile(r"\{(\w+)\}")


def described(key: str, say: Callable[[str], str] | None = None) -> str:
    """What kind ``key`` is and what was done, with what a visitor sees in the site's
    language (``say``: a text's key → the text; without it, the keys themselves)."""
    return _SAYS.sub(lambda found: say(found.group(1)) if say else found.group(1), KINDS[key])


def report_lines(
    anomalies: Iterable[Anomaly], say: Callable[[str], str] | None = None
) -> list[str]:
    """One line per kind, in kind order: the count, the fallback (``described``, in the
    site's language with ``say``), the first few records.

    A record's name and a field's path may hold API text (an id no client can use, the key
    of a custom property): each line is printable (printable.py), wherever it is shown."""
    by_kind: dict[str, list[Anomaly]] = defaultdict(list)
    for anomaly in anomalies:
        by_kind[anomaly.kind].append(anomaly)
    lines = []
    for key in sorted(by_kind):
        found = sorted(by_kind[key])
        named = "; ".join(f"{a.record} {a.field}={a.value}" for a in found[:SHOWN_PER_KIND])
        more = f"; and {len(found) - SHOWN_PER_KIND} more" if len(found) > SHOWN_PER_KIND else ""
        lines.append(printable(f"{len(found)} × {described(key, say)} [{key}]: {named}{more}"))
    return lines
