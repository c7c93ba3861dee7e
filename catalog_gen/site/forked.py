"""Forked worker processes: for work that is pure Python and splits into independent pieces
(drafting the parts of a snapshot, rendering pages), one process per core; for work whose
memory should not stay with this process (``apart``: making many parts of the catalog again);
and for work that runs while this process goes on (``later``: the build's looks at the site).

Forked rather than spawned: a worker inherits what the parent holds (the snapshot's reader,
the renderer and its compiled templates) instead of importing and building it again, and
only its result comes back through a pipe. Never from a process that runs threads (the
preview server, the demo's emulator): fork copies a lock another thread holds as held.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import multiprocessing
import multiprocessing.util
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection
from typing import Generic, TypeVar, cast

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

#: More processes than this gain nothing on the machines a catalog is built on, and each
#: holds a copy of what it writes to (the parent's pages are shared until then).
MOST_WORKERS = 4
#: What the workers of ``in_order`` call, set before they are forked (never pickled).
_WORK: Callable[[object], object] | None = None


def workers(pieces: int, least: int) -> int:
    """How many processes to run ``pieces`` of work in: one unless there are at least
    ``least`` of them (below, a second process costs more than it saves), the machine has
    two cores for this process and none of the process's threads but this one runs."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if pieces < least or cores < 2 or not forkable():
        return 1
    return min(cores, MOST_WORKERS)


def forkable() -> bool:
    """Whether this process may fork: it can, and runs no thread but this one."""
    return threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()


def pool(count: int) -> ProcessPoolExecutor:
    """``count`` forked processes. A worker that dies (killed for memory) fails what waits
    on it with BrokenProcessPool, rather than leaving it waiting for ever; a worker whose
    parent dies goes with it (``_with_parent``). OSError where a process cannot have the
    semaphores a pool needs (some containers)."""
    return ProcessPoolExecutor(
        count,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_with_parent,
        initargs=(os.getpid(),),
    )


def _with_parent(parent: int) -> None:
    """End this worker when its parent ends (Linux: ``PR_SET_PDEATHSIG``). A pool's worker
    whose parent was killed (``kill -9``, out of memory) would otherwise wait for work for
    ever, holding its memory and the run's lock (it shares the lock's open file)."""
    prctl = getattr(libc(), "prctl", None)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before that took hold
        os._exit(1)


#: ``prctl`` option: the signal a process gets when its parent ends.
_PR_SET_PDEATHSIG = 1


@functools.cache
def libc() -> ctypes.CDLL | None:
    """The C library (None where it cannot be loaded), for the calls Python does not wrap:
    ``prctl`` here, ``renameat2`` for the publisher's swap."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


def in_order(
    function: Callable[[_Item], _Result], items: Sequence[_Item], *, least: int
) -> Iterator[_Result]:
    """``function`` of each item, in order: in forked workers when ``workers`` says so (the
    results cross a pipe, so they must pickle), else here."""
    global _WORK
    results = None
    count = workers(len(items), least)
    if count > 1:
        _WORK = function  # type: ignore[assignment]  # read back by _call, in the workers
        executor = None
        try:
            executor = pool(count)
            results = executor.map(_call, items)  # the workers are forked here
        except OSError:  # no semaphores, no process to be had: in this process after all
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
            _WORK = None
    if results is None:
        for item in items:
            yield function(item)
        return
    assert executor is not None
    try:
        with executor:
            yield from cast(Iterator[_Result], results)
    finally:
        _WORK = None


def apart(function: Callable[[], _Result]) -> _Result | None:
    """``function()`` in one forked process, for what it leaves behind in memory; None when
    no process could be had, or the work failed or its process died (then the caller does
    it itself, and meets the same error first hand). The result crosses a pipe, so it must
    pickle. What interrupts the wait here (Ctrl-C, the run's time limit) ends the process
    and is raised."""
    pending = later(function)
    return pending.result() if pending is not None else None


def later(function: Callable[[], _Result]) -> Later[_Result] | None:
    """``function()`` started in one forked process, while this one goes on: ``result``
    waits for it, as ``apart`` does. None when no process could be had."""
    if not forkable():
        return None
    context = multiprocessing.get_context("fork")
    try:
        receiving, sending = context.Pipe(duplex=False)
        process = context.Process(target=_worker, args=(function, sending, os.getpid()))
        process.start()  # forked here
    except OSError:
        return None
    sending.close()
    pending: Later[_Result] = Later(process, receiving)
    # A result nobody reads (the run failed or was interrupted first) may leave the worker
    # blocked on a full pipe, and multiprocessing's exit, which joins every child, waiting
    # for ever: the worker is ended before that join (exit priority 0 comes first), or when
    # the Later is dropped.
    multiprocessing.util.Finalize(pending, _end, args=(process, receiving), exitpriority=0)
    return pending


def _end(process: multiprocessing.process.BaseProcess, receiving: Connection) -> None:
    """End a ``later`` worker and its pipe (nothing left to do for one already joined)."""
    process.kill()
    receiving.close()
    process.join()


class Later(Generic[_Result]):
    """A forked process's work on its way (``later``)."""

    def __init__(self, process: multiprocessing.process.BaseProcess, receiving: Connection):
        self._process, self._receiving = process, receiving
        self._outcome: tuple[_Result] | None = None
        self._waited = False

    def cancel(self) -> None:
        """End the work unread (the run failed, or needs it no more)."""
        if not self._waited:
            self._waited = True
            _end(self._process, self._receiving)

    def result(self) -> _Result | None:
        """The result (waited for the first time); None when the work failed or its
        process died. What interrupts the wait ends the process and is raised."""
        if not self._waited:
            try:
                self._outcome = self._receiving.recv()
            except EOFError:  # the process died without a word (killed for memory, say)
                self._outcome = None
            finally:  # done, or interrupted: ended either way
                self._waited = True
                _end(self._process, self._receiving)
        return self._outcome[0] if self._outcome else None


def _worker(function: Callable[[], object], sending: Connection, parent: int) -> None:
    """The forked side of ``later``: the work, and its result sent back (None: it failed)."""
    # Ctrl-C reaches the whole process group: the parent ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _with_parent(parent)
    try:
        result = (function(),)
    except Exception:  # the caller does the work again and meets the error itself
        result = None
    # The parent may be gone, or the result not pickle: then it hears nothing (EOFError).
    with contextlib.suppress(Exception):
        sending.send(result)


def _call(item: object) -> object:
    assert _WORK is not None  # set before the fork
    return _WORK(item)
