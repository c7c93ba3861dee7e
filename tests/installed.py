"""catalog-gen as users get it: the source as a git commit, and installed from there into a
virtual environment of its own that cannot see the checkout.

Tests reach no package index, so the new environment sees the test environment's
*dependencies* (jinja2, httpx…, and hatchling to build with) through a path file, but not
catalog-gen itself, nor the checkout: ``import catalog_gen`` finds only what was installed.
pip is told what a runner without network would be told (``PIP_NO_INDEX``, and to build with
the backend it sees rather than download one); the command it runs is the generated one.
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What pip is told on a machine that reaches no index (``0`` is how pip's environment
#: variable for a ``--no-…`` flag says "set it").
OFFLINE_PIP = {
    "PIP_NO_INDEX": "1",
    "PIP_NO_BUILD_ISOLATION": "0",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}


def source_commit(folder: Path) -> tuple[Path, str]:
    """The catalog-gen source as it is now (its tracked and new, not ignored, files) committed
    to a git repository in ``folder``: where an install names it, and its commit."""
    files = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    folder.mkdir(parents=True)
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", "catalog-gen as tested")
    return folder, git(folder, "rev-parse", "HEAD")


def git(folder: Path, *args: str) -> str:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    return subprocess.run(
        ["git", *identity, "-C", str(folder), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def empty_environment(folder: Path) -> Path:
    """A new virtual environment that sees the test environment's packages but catalog-gen
    (and its checkout); returns its ``bin`` folder."""
    venv.EnvBuilder(with_pip=False).create(folder)
    here = Path(sysconfig.get_paths()["purelib"])
    seen = folder / "dependencies"
    seen.mkdir()
    for entry in here.iterdir():
        name = entry.name.lower()
        if name.startswith(("catalog_gen", "_catalog_gen", "__editable__")) or name.endswith(
            ".pth"
        ):
            continue
        (seen / entry.name).symlink_to(entry)
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    inside = subprocess.run(
        [str(folder / "bin" / "python"), "-c", where], capture_output=True, text=True, check=True
    ).stdout.strip()
    Path(inside, "test-dependencies.pth").write_text(f"{seen}\n")
    return folder / "bin"


def offline_env(bin_folder: Path) -> dict[str, str]:
    """The environment a command runs in: the new environment first on PATH, no key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRONTCORE_", "PYTHON"))}
    env["PATH"] = f"{bin_folder}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env.pop("VIRTUAL_ENV", None)
    return {**env, **OFFLINE_PIP}


def check_isolated(bin_folder: Path, cwd: Path) -> None:
    """catalog_gen imports from the new environment, never from the checkout."""
    found = subprocess.run(
        [str(bin_folder / "python"), "-c", "import catalog_gen; print(catalog_gen.__file__)"],
        cwd=cwd, env=offline_env(bin_folder), capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert found.startswith(str(bin_folder.parent)) and not found.startswith(str(ROOT)), found
