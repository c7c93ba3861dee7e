"""Shared fixtures: a real emulator on 127.0.0.1 and a project folder wired to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from catalog_gen.config import ApiAccess, Config, load_config
from catalog_gen.demo.emulator import Emulator
from catalog_gen.demo.sample import SampleCatalog, generate_catalog
from catalog_gen.snapshot import Record, Snapshot

OSLO = ZoneInfo("Europe/Oslo")
TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=OSLO)
#: Long and distinctive, so a leak anywhere is easy to find.
API_KEY = "fc-test-key-7Q2xLr9ZpW4mVb8N"


@pytest.fixture
def sample() -> SampleCatalog:
    return generate_catalog(48, today=TODAY)


@pytest.fixture
def emulator_for() -> Iterator[Callable[..., Emulator]]:
    """Start emulators on loopback for a test; all are stopped afterwards."""
    started: list[Emulator] = []

    def start(catalog: SampleCatalog, **options) -> Emulator:
        options.setdefault("api_key", API_KEY)
        emulator = Emulator(catalog, **options).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(emulator_for, sample) -> Emulator:
    return emulator_for(sample)


@dataclass
class Project:
    """A catalog-gen project folder in tmp_path, pointed at an emulator."""

    root: Path
    emulator: Emulator

    @property
    def config(self) -> Config:
        return load_config(self.root / "catalog.toml")

    def access(self, key: str = API_KEY) -> ApiAccess:
        return ApiAccess(base_url=self.emulator.base_url, api_key=key)

    def env(self, key: str | None = API_KEY) -> dict[str, str]:
        env = env_without_key()
        env["FRONTCORE_API_URL"] = self.emulator.base_url
        if key is not None:
            env["FRONTCORE_API_KEY"] = key
        return env

    def run(self, *args: str, key: str | None = API_KEY, timeout: float = 120):
        """Run the real ``catalog-gen`` console script in this folder, against the emulator."""
        return run_cli(self.root, *args, env=self.env(key), timeout=timeout)

    def snapshot_bytes(self, sub: str = "snapshots") -> dict[str, bytes]:
        """Every file of every complete snapshot, by relative path."""
        folder = self.root / sub
        return {
            str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.glob("0*/**/*"))
            if p.is_file()
        }


@pytest.fixture
def project(tmp_path, emulator) -> Project:
    (tmp_path / "catalog.toml").write_text("[frontcore]\nrate_limit = 5\n", encoding="utf-8")
    return Project(tmp_path, emulator)


def env_without_key() -> dict[str, str]:
    """This process's environment minus any FRONTCORE_* setting of the machine running tests."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FRONTCORE_")}


def run_cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    """``python -m catalog_gen ARGS`` in ``cwd``; ``env`` adds to a key-free environment."""
    return subprocess.run(
        [sys.executable, "-m", "catalog_gen", *args],
        cwd=cwd,
        env={**env_without_key(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def interruptible() -> None:
    """``preexec_fn`` for a child that a test stops with SIGINT, as Ctrl-C would.

    A shell starts background jobs with SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler; restoring the default makes the test independent of how the
    suite itself was started (a terminal, CI, or ``.ci/run &``).
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def snapshot_of(
    courses: list[Record],
    dates: list[Record],
    *,
    fetched_at: datetime = datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
    **fields: Any,
) -> Snapshot:
    """A snapshot of exactly these course and date records (no reference lists), fetched at
    04:00 in Oslo on the test day unless ``fetched_at`` says otherwise."""
    return Snapshot(
        fetched_at=fetched_at,
        api_base="http://127.0.0.1/v2",
        courses={c["id"]: c for c in courses},
        coursedates={d["coursedate_id"]: d for d in dates},
        reference={},
        reference_fetched_at={},
        course_sources={},
        **fields,
    )


def with_rate(config: Config, rate: float) -> Config:
    return replace(config, frontcore=replace(config.frontcore, rate_limit=rate))


def max_requests_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    return max((sum(1 for t in times if start <= t < start + 1.0) for start in times), default=0)
