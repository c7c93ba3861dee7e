"""One run at a time per project: an advisory lock on a file in the snapshot folder.

The lock is ``flock``-based, so the kernel releases it when the holding process dies, even by
``kill -9``: a crashed run can never leave a lock that blocks the next nightly run. The file
keeps the holder's pid and start time to say who holds it; a run that finds them left behind
(its predecessor was killed) takes the lock over and says so (``taken_over``: the run's report
carries it as a warning, which prints even with --quiet: a killed run needs a person).

The lock file is opened without following a link (``O_NOFOLLOW``): a link in its place is
refused with one line naming it, never truncated and written through, whatever it points at.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from catalog_gen.errors import GuardRefused, SnapshotError

LOCK_FILENAME = ".lock"
#: The descriptors of the locks this process holds. A forked worker closes its copies at
#: once (``_close_held``): the lock belongs to the open file, so a worker that outlived its
#: run (killed) and kept a copy would hold the lock against every later run. Closing a copy
#: releases nothing while the run itself holds the file open.
_HELD: set[int] = set()


def _close_held() -> None:
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held)


class RunLock:
    """Hold ``<folder>/.lock`` for the duration of a ``with`` block, or refuse at once."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK_FILENAME
        self._fd: int | None = None
        #: What a run that did not finish left in the lock (its pid and start), when this
        #: run took the lock over from it; else None.
        self.taken_over: str | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            if self.path.is_symlink():  # truncated and written through, it would be lost
                raise SnapshotError(
                    f"{self.path} is a symbolic link; catalog-gen writes nothing through a "
                    "link: remove it (the next run makes the lock file anew)"
                ) from None
            raise SnapshotError(f"cannot open the lock {self.path} ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise GuardRefused(
                f"another catalog-gen run holds {self.path} ({holder}); "
                "it is released when that run ends"
            ) from None
        left = os.read(fd, 200).decode("utf-8", "replace").strip()
        if left:  # a clean exit empties the file: this run ended without releasing it
            self.taken_over = left
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.write(fd, f"pid {os.getpid()}, since {since}\n".encode())
        self._fd = fd
        _HELD.add(fd)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            _HELD.discard(self._fd)
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def warnings(self) -> list[str]:
        """What the run should report about the lock (the one ``warning:`` line, or none)."""
        if self.taken_over is None:
            return []
        return [
            f"took over the lock of a run that did not finish ({self.taken_over}); that "
            "process is gone, so look at why it stopped (killed, out of memory, a reboot)"
        ]
