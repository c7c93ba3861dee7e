"""A release users can install: the wheel and the sdist build, pass twine's checks, carry the
theme and the demo, and the wheel installed into a clean environment builds the demo site.

Built as the release workflow builds them (PyPA's build frontend: the sdist first, then the
wheel from the sdist, so a file the sdist forgets is missing from the wheel too), with the
project's own backend and no build isolation (tests reach no package index). Installed into a
new virtual environment that cannot see the checkout (tests/installed.py), and run from a
folder outside it, so nothing is found by accident in the source tree.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.installed import ROOT, check_isolated, empty_environment, offline_env

#: The long matrices and whole-tool runs: `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def one(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


def test_the_wheel_and_the_sdist_pass_twine_check(dist):
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir()))],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_the_wheel_built_from_the_sdist_carries_the_theme_and_the_demo(dist):
    names = zipfile.ZipFile(one(dist, "catalog_gen-*.whl")).namelist()
    for theme_file in (ROOT / "themes" / "default").rglob("*"):
        if theme_file.is_file():
            inside = "catalog_gen/themes/" + theme_file.relative_to(ROOT / "themes").as_posix()
            assert inside in names
    assert "catalog_gen/demo/emulator.py" in names and "catalog_gen/demo/sample.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not [
        n for n in names if n.startswith(("tests/", "site/", "snapshots/", "docs/", "tools/"))
    ]


def test_the_sdist_holds_the_source_and_nothing_a_run_leaves(dist):
    with tarfile.open(one(dist, "catalog_gen-*.tar.gz")) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"catalog_gen/cli.py", "themes/default/templates/course.html", "LICENSE"} <= names
    assert {"README.md", "pyproject.toml", "tests/test_package.py"} <= names
    leftovers = ("site/", "snapshots/", ".site.", ".venv/", ".ci/tools/", ".git/")
    assert not [name for name in names if name.startswith(leftovers)]


def test_a_demo_build_from_the_wheel_in_a_clean_environment(dist, tmp_path):
    bin_folder = empty_environment(tmp_path / "venv")
    install = subprocess.run(
        [str(bin_folder / "python"), "-m", "pip", "install", "-q",
         str(one(dist, "catalog_gen-*.whl"))],
        env=offline_env(bin_folder), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    project = tmp_path / "project"
    project.mkdir()
    check_isolated(bin_folder, project)
    result = subprocess.run(
        [str(bin_folder / "catalog-gen"), "build", "--demo", "-q",
         "--now", "2026-11-23T04:00:00+01:00"],
        cwd=project, env=offline_env(bin_folder), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (project / "site" / "index.html").is_file()
    assert list((project / "site" / "static").glob("style.*.css"))


def test_the_release_workflow_builds_checks_and_publishes_with_trusted_publishing():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert workflow[True] == {"push": {"tags": ["v*"]}}  # YAML 1.1 reads "on" as true
    assert workflow["permissions"] == {}
    build, publish = workflow["jobs"]["build"], workflow["jobs"]["publish"]
    runs = "\n".join(step.get("run", "") for step in build["steps"])
    assert "python -m build" in runs and "twine check --strict" in runs
    assert 'catalog-gen" build --demo' in runs
    assert publish["needs"] == "build" and publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    (uses,) = [s["uses"] for s in publish["steps"] if "pypi-publish" in s.get("uses", "")]
    assert uses.startswith("pypa/gh-action-pypi-publish@") and len(uses.split("@")[1]) == 40
    assert not [s for s in publish["steps"] if "password" in str(s.get("with", {}))]
