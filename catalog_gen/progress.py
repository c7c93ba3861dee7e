"""Progress of long work, shown as a live bar on a terminal and as plain lines in logs.

Library code reports phases through the small :class:`Progress` protocol and never prints;
the CLI picks the renderer (a bar for people at a terminal, one line per phase for cron mail
and CI logs, nothing with --quiet or --json). A phase's name is shown printable (printable.py):
the bar's own control sequences are the only ones it writes.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

from catalog_gen.printable import printable


class Progress(Protocol):
    def phase(self, name: str, total: int | None = None) -> None:
        """A new phase starts; ``total`` units of work if known."""

    def advance(self, units: int = 1) -> None:
        """``units`` more of the current phase are done."""

    def done(self) -> None:
        """All phases are over."""


class NoProgress:
    """Reports nothing (tests, --quiet, --json)."""

    def phase(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, units: int = 1) -> None:
        pass

    def done(self) -> None:
        pass


class _Tracker:
    def __init__(self, stream: TextIO):
        self.stream = stream
        self.name: str | None = None
        self.total: int | None = None
        self.count = 0
        self.started = time.monotonic()

    def _start(self, name: str, total: int | None) -> None:
        self.name, self.total, self.count = printable(name), total, 0
        self.started = time.monotonic()


class PlainProgress(_Tracker):
    """One line per finished phase: readable in cron mail and CI logs."""

    def phase(self, name: str, total: int | None = None) -> None:
        self._finish()
        self._start(name, total)

    def advance(self, units: int = 1) -> None:
        self.count += units

    def done(self) -> None:
        self._finish()

    def _finish(self) -> None:
        if self.name is not None:
            seconds = time.monotonic() - self.started
            print(f"{self.name}: {self.count} ({seconds:.1f} s)", file=self.stream, flush=True)
            self.name = None


class BarProgress(_Tracker):
    """A single self-rewriting line with a bar when the total is known."""

    WIDTH = 24

    def phase(self, name: str, total: int | None = None) -> None:
        self._start(name, total)
        self._draw()

    def advance(self, units: int = 1) -> None:
        self.count += units
        self._draw()

    def done(self) -> None:
        self.stream.write("\r\033[K")
        self.stream.flush()

    def _draw(self) -> None:
        if self.total:
            filled = min(self.WIDTH, self.WIDTH * self.count // self.total)
            bar = "█" * filled + "░" * (self.WIDTH - filled)
            text = f"{self.name:<12} {bar} {self.count}/{self.total}"
        else:
            text = f"{self.name:<12} {self.count}"
        self.stream.write("\r\033[K" + text)
        self.stream.flush()


def progress_for(stream: TextIO | None = None, *, enabled: bool = True) -> Progress:
    """The right renderer for where output goes."""
    stream = stream or sys.stderr
    if not enabled:
        return NoProgress()
    return BarProgress(stream) if stream.isatty() else PlainProgress(stream)
