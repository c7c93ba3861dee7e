"""Forked workers (catalog_gen.site.forked): the work is done, in order, whether or not a
process can be forked. The real fork is exercised by a whole build in test_buildstate.py
(test_parallel_drafting_and_rendering_give_the_same_bytes_and_the_same_errors)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from catalog_gen.site import forked


class CannotFork:
    """A pool whose workers cannot be had: fork fails at the first submit (EAGAIN)."""

    def __init__(self) -> None:
        self.shut = False

    def map(self, *_: object) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    def shutdown(self, **_: object) -> None:
        self.shut = True


def test_work_that_cannot_be_forked_is_done_here_in_order(monkeypatch):
    pool = CannotFork()
    monkeypatch.setattr(forked, "workers", lambda pieces, least: 2)
    monkeypatch.setattr(forked, "pool", lambda count: pool)
    assert list(forked.in_order(lambda n: n * n, [3, 1, 2], least=1)) == [9, 1, 4]
    assert pool.shut and forked._WORK is None


def test_a_process_that_runs_threads_or_has_too_little_work_is_not_forked(monkeypatch):
    monkeypatch.setattr(forked.os, "sched_getaffinity", lambda _: {0, 1, 2, 3, 4, 5})
    monkeypatch.setattr(forked.threading, "active_count", lambda: 1)
    assert forked.workers(8, least=8) == forked.MOST_WORKERS
    assert forked.workers(7, least=8) == 1
    monkeypatch.setattr(forked.threading, "active_count", lambda: 2)
    assert forked.workers(100, least=8) == 1


@pytest.mark.parametrize("cores", [1, 2, 3])
def test_one_worker_a_core(monkeypatch, cores):
    monkeypatch.setattr(forked.os, "sched_getaffinity", lambda _: set(range(cores)))
    monkeypatch.setattr(forked.threading, "active_count", lambda: 1)
    assert forked.workers(100, least=1) == (1 if cores < 2 else cores)


def test_apart_runs_the_work_in_another_process_and_hands_back_its_result():
    assert forked.apart(os.getpid) not in (None, os.getpid())


def test_work_apart_that_fails_or_cannot_be_forked_is_left_to_the_caller(monkeypatch, capfd):
    def fails() -> int:
        raise ValueError("the caller meets this first hand")

    class NoProcesses:
        def Pipe(self, duplex: bool) -> None:  # multiprocessing's name
            raise OSError(38, "Function not implemented")

    assert forked.apart(fails) is None
    assert forked.apart(lambda: os._exit(3)) is None  # the process died
    assert forked.apart(lambda: lambda: 1) is None  # a result that does not pickle
    assert capfd.readouterr().err == ""  # nothing said: the caller meets it first hand
    with monkeypatch.context() as patched:
        patched.setattr(forked.multiprocessing, "get_context", lambda method: NoProcesses())
        assert forked.apart(os.getpid) is None
    with monkeypatch.context() as patched:
        patched.setattr(forked.threading, "active_count", lambda: 2)
        assert forked.apart(os.getpid) is None


def test_what_interrupts_the_wait_for_work_apart_is_raised_and_ends_its_process(tmp_path):
    """The run's time limit (a SIGALRM whose handler raises) or Ctrl-C while the work runs
    apart: raised here, not taken for the work's failure (which would do it all again
    here, past the limit), and the process is ended, not left running."""

    class TimedOut(Exception):
        pass

    def alarm(*_: object) -> None:
        raise TimedOut

    pid_file = tmp_path / "pid"

    def slow() -> int:
        pid_file.write_text(str(os.getpid()))
        time.sleep(30)
        return 1

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(TimedOut):
            forked.apart(slow)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    worker = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)  # ended and reaped


@pytest.mark.parametrize("how", ["never read", "cancelled"])
def test_work_started_for_later_never_keeps_its_process_from_ending(how):
    """A run that fails or is interrupted before it reads what it started (the build's looks
    at the site) still ends at once, though the work's result is bigger than a pipe holds:
    the worker would wait to send it, and Python's exit waits for every worker."""
    script = (
        "import sys, time\n"
        "from catalog_gen.site import forked\n"
        "pending = forked.later(lambda: b'x' * 1_000_000)\n"
        "assert pending is not None\n"
        "time.sleep(0.5)\n"
        + ("pending.cancel()\n" if how == "cancelled" else "")
        + "raise SystemExit('the run failed')\n"
    )
    started = time.monotonic()
    ended = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert ended.returncode == 1 and "the run failed" in ended.stderr
    assert time.monotonic() - started < 20
