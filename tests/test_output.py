"""Publishing into site/: atomic, incremental, and never destructive to what is not ours.

Real files in tmp_path; each assertion compares whole trees (bytes, mtimes, inodes), because
"the old site stays byte-identical" and "unchanged files keep their mtime" are the promises.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from catalog_gen import output
from catalog_gen.errors import BuildError
from catalog_gen.output import MARKER, publish_site

FILES = {
    "index.html": b"<h1>Kurs</h1>",
    "kurs/excel-1/index.html": b"<h1>Excel</h1>",
    "kurs/word-2/index.html": b"<h1>Word</h1>",
    "static/style.abc.css": b"body{}",
}


def tree(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file by relative path: (bytes, mtime_ns, inode)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            found[path.relative_to(folder).as_posix()] = (
                path.read_bytes(),
                stat.st_mtime_ns,
                stat.st_ino,
            )
    return found


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".site."))


def test_first_publish_writes_everything_and_the_marker(tmp_path):
    report = publish_site(tmp_path / "site", FILES, protect=tmp_path)
    assert report.written == tuple(sorted(FILES)) and report.swapped
    assert report.unchanged == () and report.removed == ()
    files = tree(tmp_path / "site")
    assert {name: data for name, (data, _, _) in files.items() if name != MARKER} == FILES
    assert MARKER in files
    assert leftovers(tmp_path) == []


def test_publishing_the_same_files_touches_nothing(tmp_path):
    site = tmp_path / "site"
    publish_site(site, FILES)
    before, folder = tree(site), site.stat()
    report = publish_site(site, dict(FILES))
    assert report.written == () and report.removed == () and not report.swapped
    assert report.unchanged == tuple(sorted(FILES))
    assert tree(site) == before
    assert (site.stat().st_ino, site.stat().st_mtime_ns) == (folder.st_ino, folder.st_mtime_ns)


def test_changes_are_written_removals_vanish_and_the_rest_keeps_inode_and_mtime(tmp_path):
    site = tmp_path / "site"
    publish_site(site, FILES)
    before = tree(site)
    new = dict(FILES)
    new["kurs/excel-1/index.html"] = b"<h1>Excel 365</h1>"  # changed
    new["kurs/pivot-3/index.html"] = b"<h1>Pivot</h1>"  # added
    del new["kurs/word-2/index.html"]  # removed
    report = publish_site(site, new)
    assert report.written == ("kurs/excel-1/index.html", "kurs/pivot-3/index.html")
    assert report.removed == ("kurs/word-2/index.html",)
    assert report.unchanged == ("index.html", "static/style.abc.css")
    after = tree(site)
    assert not (site / "kurs" / "word-2").exists()
    for name in report.unchanged:
        assert after[name] == before[name]  # same bytes, mtime and inode: not rewritten
    assert after["kurs/excel-1/index.html"][0] == b"<h1>Excel 365</h1>"
    assert leftovers(tmp_path) == []


def test_a_failure_while_assembling_leaves_the_old_site_as_it_was(tmp_path, monkeypatch):
    site = tmp_path / "site"
    publish_site(site, FILES)
    before = tree(site)

    def broken_swap(staging, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output, "_swap_in", broken_swap)
    with pytest.raises(OSError, match="No space"):
        publish_site(site, {**FILES, "index.html": b"<h1>Ny</h1>"})
    assert tree(site) == before
    assert leftovers(tmp_path) == []


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from collections.abc import Mapping
    from pathlib import Path
    from catalog_gen.output import publish_site

    class DiesHalfway(Mapping):
        def __init__(self, n):
            self.names, self.reads = [f"kurs/c{i}/index.html" for i in range(n)], 0
        def __iter__(self): return iter(self.names)
        def __len__(self): return len(self.names)
        def __getitem__(self, name):
            self.reads += 1  # one read to compare, one to write: die halfway through writing
            if self.reads == len(self) * 3 // 2 and Path(sys.argv[2]).exists():
                os.kill(os.getpid(), signal.SIGKILL)
            return b"new " + name.encode()

    publish_site(Path(sys.argv[1]), DiesHalfway(100))
    """
)


def test_a_build_killed_midway_leaves_the_old_site_and_the_next_run_cleans_up(tmp_path):
    site = tmp_path / "site"
    publish_site(site, {f"kurs/c{i}/index.html": b"old" for i in range(100)})
    before = tree(site)
    arm = tmp_path / "armed"
    arm.touch()
    run = [sys.executable, "-c", KILLER, str(site), str(arm)]
    killed = subprocess.run(run, capture_output=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert tree(site) == before
    assert [n for n in leftovers(tmp_path) if ".staging-" in n]  # it really died mid-assembly

    arm.unlink()
    finished = subprocess.run(run, capture_output=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert leftovers(tmp_path) == []
    assert (site / "kurs/c0/index.html").read_bytes() == b"new kurs/c0/index.html"


def test_an_interrupted_two_rename_swap_is_recovered(tmp_path):
    site = tmp_path / "site"
    publish_site(site, FILES)
    os.rename(site, tmp_path / ".site.old-abc123")  # died between the fallback's two renames
    report = publish_site(site, FILES)
    assert report.unchanged == tuple(sorted(FILES)) and not report.swapped
    assert leftovers(tmp_path) == []


def test_without_an_atomic_exchange_the_fallback_swap_works(tmp_path, monkeypatch):
    monkeypatch.setattr(output, "_exchange", lambda a, b: False)
    site = tmp_path / "site"
    publish_site(site, FILES)
    before = tree(site)
    report = publish_site(site, {**FILES, "ny/index.html": b"ny"})
    assert report.written == ("ny/index.html",)
    after = tree(site)
    assert after["index.html"] == before["index.html"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "name", ["../escape.html", "/etc/passwd", "a//b.html", "a/./b.html", "a\\b.html", "", MARKER]
)
def test_paths_outside_the_site_are_refused(tmp_path, name):
    with pytest.raises(BuildError, match="inside the site"):
        publish_site(tmp_path / "site", {name: b"x"})
    assert not (tmp_path / "site").exists()


def test_the_project_folder_is_never_replaced(tmp_path):
    (tmp_path / "catalog.toml").write_text("")
    for target in (tmp_path, tmp_path.parent):
        with pytest.raises(BuildError, match="project folder"):
            publish_site(target, FILES, protect=tmp_path)
    assert (tmp_path / "catalog.toml").exists()


def test_a_folder_catalog_gen_did_not_make_is_not_wiped(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "precious.txt").write_text("keep")
    with pytest.raises(BuildError, match="not made by catalog-gen"):
        publish_site(site, FILES)
    assert (site / "precious.txt").read_text() == "keep"
    assert leftovers(tmp_path) == []


def test_an_empty_folder_and_a_file_in_the_way(tmp_path):
    (tmp_path / "site").mkdir()
    assert publish_site(tmp_path / "site", FILES).swapped
    (tmp_path / "file").write_text("x")
    with pytest.raises(BuildError, match="not a folder"):
        publish_site(tmp_path / "file", FILES)


def test_a_symlinked_site_folder_stays_a_symlink(tmp_path):
    real = tmp_path / "www" / "catalog"
    real.mkdir(parents=True)
    link = tmp_path / "site"
    link.symlink_to(real)
    publish_site(link, FILES)
    publish_site(link, {**FILES, "ny.html": b"ny"})
    assert link.is_symlink()
    assert (real / "ny.html").read_bytes() == b"ny"
