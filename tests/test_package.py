"""The wheel users install carries the default theme, and a build from it works.

Built with the project's own backend (hatchling, no build isolation: tests reach no index) and
installed into a folder of its own, then run from outside the source tree, so nothing is found
by accident in the checkout.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import env_without_key

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (found,) = out.glob("catalog_gen-*.whl")
    return found


def test_the_wheel_contains_the_default_theme(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for theme_file in (ROOT / "themes" / "default").rglob("*"):
        if theme_file.is_file():
            inside = "catalog_gen/themes/" + theme_file.relative_to(ROOT / "themes").as_posix()
            assert inside in names
    assert not [n for n in names if n.startswith(("tests/", "site/", "snapshots/"))]


def test_a_demo_build_from_the_installed_wheel(wheel, tmp_path):
    target = tmp_path / "installed"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
         "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    project = tmp_path / "project"
    project.mkdir()
    env = env_without_key()
    env["PYTHONPATH"] = str(target)
    probe = subprocess.run(
        [sys.executable, "-c", "import catalog_gen; print(catalog_gen.__file__)"],
        cwd=project, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert probe.stdout.startswith(str(target)), probe.stdout  # not the checkout
    result = subprocess.run(
        [sys.executable, "-m", "catalog_gen", "build", "--demo", "-q",
         "--now", "2026-11-23T04:00:00+01:00"],
        cwd=project, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (project / "site" / "index.html").is_file()
    assert list((project / "site" / "static").glob("style.*.css"))
