"""Publishing into site/ (catalog_gen.site.publish): atomic, incremental, never destructive.

The promises of the publisher every build uses (driven as a build drives it:
tests/publishing.py): a build that fails or is killed leaves the old site byte-identical; an
unchanged file keeps its inode and mtime (hard-linked, so rsync/CDN uploads send only what
changed); when nothing changed nothing on disk is touched; nothing is left beside the site
but its spare (the site before the last publish, which the next build starts from);
and a folder that is not ours (the project, a folder without the marker, a file) is refused
rather than wiped. Every test uses real files in tmp_path and compares whole trees (bytes and
mtime_ns of every file and folder, plus inodes), because those are the promises. A killed
build is a real SIGKILL of a child process, not a simulation.
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog_gen.errors import BuildError
from catalog_gen.site import publish as output
from catalog_gen.site.publish import MARKER, MARKER_TEXT, OutputReport
from tests.publishing import publish

FILES = {
    "index.html": b"<h1>Kurs</h1>",
    "kurs/excel-1/index.html": b"<h1>Excel</h1>",
    "kurs/word-2/index.html": b"<h1>Word</h1>",
    "static/style.abc.css": b"body{}",
}
REPO = Path(output.__file__).resolve().parents[1]


def tree(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Everything under ``folder`` by relative path: (bytes, mtime_ns).

    Folders are included too, as ``"name/"`` with ``None`` for bytes, so a comparison also
    catches a folder that appeared, vanished or was written into.
    """
    found: dict[str, tuple[bytes | None, int]] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        mtime = path.lstat().st_mtime_ns
        if path.is_dir():
            found[rel + "/"] = (None, mtime)
        else:
            found[rel] = (path.read_bytes(), mtime)
    return found


def inodes(folder: Path) -> dict[str, int]:
    """The inode of every file under ``folder``, by relative path."""
    return {
        path.relative_to(folder).as_posix(): path.stat().st_ino
        for path in folder.rglob("*")
        if path.is_file()
    }


def contents(folder: Path) -> dict[str, bytes]:
    """The published files (without the marker), as a mapping like the one given to publish."""
    return {
        rel: data for rel, (data, _) in tree(folder).items() if data is not None and rel != MARKER
    }


def published(report: OutputReport) -> tuple[str, ...]:
    """What a build records as its own after a publish (build.record): for the next one."""
    return report.written + report.unchanged


def beside(folder: Path) -> list[str]:
    """What is in ``folder``'s parent but the site's spare: only the site itself, once
    publishing has finished."""
    return sorted(set(os.listdir(folder.parent)) - {f".{folder.name}.spare"})


@pytest.fixture(params=["exchange", "two renames"])
def swap(request, monkeypatch) -> str:
    """Run a test with the atomic renameat2 exchange and with the two-rename fallback."""
    if request.param == "two renames":
        monkeypatch.setattr(output, "_exchange", lambda a, b: False)
    return request.param


# -- 1-4: what a publish writes, keeps and removes ---------------------------------------------


def test_first_publish_writes_every_file_and_the_marker(tmp_path):
    site = tmp_path / "site"
    report = publish(site, FILES, protect=tmp_path)  # a site inside the project is fine
    assert report == OutputReport(tuple(sorted(FILES)), (), (), swapped=True)
    assert contents(site) == FILES
    assert (site / MARKER).read_bytes() == MARKER_TEXT
    assert stat.S_IMODE(site.stat().st_mode) == 0o755  # not mkdtemp's 0700: a web server reads it
    assert beside(site) == ["site"]


def test_publishing_identical_files_touches_nothing(tmp_path):
    site = tmp_path / "site"
    publish(site, FILES)
    before, before_inodes = tree(site), inodes(site)
    folder, parent = site.stat(), tmp_path.stat()

    report = publish(site, {name: bytes(data) for name, data in FILES.items()})

    assert report == OutputReport((), tuple(sorted(FILES)), (), swapped=False)
    assert tree(site) == before
    assert inodes(site) == before_inodes
    after = site.stat()
    assert (after.st_ino, after.st_mtime_ns) == (folder.st_ino, folder.st_mtime_ns)
    assert tmp_path.stat().st_mtime_ns == parent.st_mtime_ns  # not even a staging folder made
    assert beside(site) == ["site"]


def test_changed_and_added_are_written_removed_vanishes_the_rest_is_hard_linked(tmp_path, swap):
    site = tmp_path / "site"
    publish(site, FILES)
    before, before_inodes = tree(site), inodes(site)
    new = dict(FILES)
    new["kurs/excel-1/index.html"] = b"<h1>Excel 365</h1>"  # changed
    new["kurs/pivot-3/index.html"] = b"<h1>Pivot</h1>"  # added
    del new["kurs/word-2/index.html"]  # removed

    report = publish(site, new)

    assert report == OutputReport(
        written=("kurs/excel-1/index.html", "kurs/pivot-3/index.html"),
        unchanged=("index.html", "static/style.abc.css"),
        removed=("kurs/word-2/index.html",),
        swapped=True,
    )
    assert contents(site) == new
    assert (site / MARKER).read_bytes() == MARKER_TEXT
    assert not (site / "kurs" / "word-2").exists()  # the emptied folder went with its file
    after, after_inodes = tree(site), inodes(site)
    for name in report.unchanged:
        assert after[name] == before[name]  # same bytes and mtime_ns
        assert after_inodes[name] == before_inodes[name]  # the very same file, hard-linked
    assert after_inodes["kurs/excel-1/index.html"] != before_inodes["kurs/excel-1/index.html"]
    assert beside(site) == ["site"]


def test_no_leftovers_beside_the_site_after_any_publish(tmp_path, swap):
    site = tmp_path / "site"
    steps = [
        FILES,  # first publish: a plain rename
        FILES,  # nothing changed
        {**FILES, "index.html": b"<h1>Nytt</h1>"},  # a swap with an old site to dispose of
        {"index.html": b"<h1>Nytt</h1>"},  # mostly removals
        {},  # an empty site: only the marker
    ]
    for files in steps:
        publish(site, files)
        assert beside(site) == ["site"]
        assert contents(site) == files
        assert (site / MARKER).is_file()
    assert tree(site) == {MARKER: (MARKER_TEXT, (site / MARKER).stat().st_mtime_ns)}


def test_a_file_can_become_a_folder_and_back(tmp_path, swap):
    site = tmp_path / "site"
    publish(site, {"kurs": b"a file"})
    report = publish(site, {"kurs/index.html": b"now a folder"})
    assert (report.written, report.removed) == (("kurs/index.html",), ("kurs",))
    assert contents(site) == {"kurs/index.html": b"now a folder"}
    publish(site, {"kurs": b"a file again"})
    assert contents(site) == {"kurs": b"a file again"}
    assert beside(site) == ["site"]


def test_without_hard_links_unchanged_files_are_copied_with_their_mtime(tmp_path, monkeypatch):
    site = tmp_path / "site"
    publish(site, FILES)
    before = tree(site)

    def no_links(source, target, **options):
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    report = publish(site, {**FILES, "index.html": b"<h1>Ny</h1>"})
    assert report.unchanged == (
        "kurs/excel-1/index.html",
        "kurs/word-2/index.html",
        "static/style.abc.css",
    )
    after = tree(site)
    for name in report.unchanged:
        assert after[name] == before[name]  # shutil.copy2 kept bytes and mtime_ns
    assert beside(site) == ["site"]


# -- 5-6: a failed or killed build leaves the old site alone -----------------------------------


def _fail_in_swap(monkeypatch):
    def broken_swap(staging, site):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output, "_swap_in", broken_swap)


def _fail_on_write_of(name: str):
    def install(monkeypatch):
        real_write = output._write

        def write(path, data):
            if Path(path).name == name:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(path, data)

        monkeypatch.setattr(output, "_write", write)

    return install


def _fail_on_link_of(name: str):
    def install(monkeypatch):
        real_link = output._link_or_copy

        def link(source, target):
            if Path(source).name == name:
                raise OSError(errno.ENOSPC, "No space left on device")
            real_link(source, target)

        monkeypatch.setattr(output, "_link_or_copy", link)

    return install


def _fail_on_second_link(monkeypatch):
    real_link, calls = output._link_or_copy, []

    def link(source, target):
        calls.append(source)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_link(source, target)

    monkeypatch.setattr(output, "_link_or_copy", link)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(_fail_on_second_link, id="linking unchanged"),
        pytest.param(_fail_on_write_of("style.def.css"), id="writing the second file"),
        pytest.param(_fail_on_link_of(MARKER), id="carrying the marker over"),
        pytest.param(_fail_in_swap, id="swapping in"),
    ],
)
def test_a_failure_while_assembling_leaves_the_old_site_byte_identical(
    tmp_path, monkeypatch, fault
):
    site = tmp_path / "site"
    publish(site, FILES)
    before, before_inodes, folder = tree(site), inodes(site), site.stat()
    new = {**FILES, "index.html": b"<h1>Ny</h1>", "static/style.def.css": b"body{color:red}"}

    fault(monkeypatch)
    with pytest.raises(OSError, match="No space"):
        publish(site, new)

    assert tree(site) == before
    assert inodes(site) == before_inodes
    assert (site.stat().st_ino, site.stat().st_mtime_ns) == (folder.st_ino, folder.st_mtime_ns)
    assert beside(site) == ["site"]  # the staging folder was removed


KILLED_MIDWAY = textwrap.dedent(
    """
    import os, signal, sys
    from collections.abc import Mapping
    from pathlib import Path

    from tests.publishing import publish

    class DiesOnTheFiftiethWrite(Mapping):
        '''The publisher reads each value once, to put it in: the first is the unchanged
        index.html, the 51st the fiftieth file to write (49 are written by then).'''

        def __init__(self, files):
            self.files, self.reads = files, 0

        def __iter__(self):
            return iter(self.files)

        def __len__(self):
            return len(self.files)

        def __getitem__(self, name):
            self.reads += 1
            if self.reads == 51:
                os.kill(os.getpid(), signal.SIGKILL)
            return self.files[name]

    files = {"index.html": b"<h1>Kurs</h1>"}
    files.update({f"kurs/c{i:03}/index.html": b"new %d" % i for i in range(100)})
    publish(Path(sys.argv[1]), DiesOnTheFiftiethWrite(files))
    """
)


def test_a_build_killed_midway_leaves_the_old_site_and_the_next_run_cleans_up(tmp_path):
    site = tmp_path / "site"
    old = {"index.html": b"<h1>Kurs</h1>"}
    old.update({f"kurs/c{i:03}/index.html": b"old %d" % i for i in range(100)})
    publish(site, old)
    before, before_inodes = tree(site), inodes(site)

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MIDWAY, str(site)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert tree(site) == before
    assert inodes(site) == before_inodes
    stale = [name for name in beside(site) if name != "site"]
    assert len(stale) == 1 and stale[0].startswith(".site.staging-")
    # It really died while writing the staging folder: the unchanged file linked, 49 written.
    assert sorted(contents(tmp_path / stale[0])) == ["index.html"] + [
        f"kurs/c{i:03}/index.html" for i in range(49)
    ]

    new = {"index.html": b"<h1>Kurs</h1>"}
    new.update({f"kurs/c{i:03}/index.html": b"new %d" % i for i in range(100)})
    report = publish(site, new)

    assert report.swapped and report.unchanged == ("index.html",)
    assert report.written == tuple(sorted(set(new) - {"index.html"}))
    assert contents(site) == new
    assert inodes(site)["index.html"] == before_inodes["index.html"]
    assert beside(site) == ["site"]


# -- 7-8: the two-rename fallback and its recovery ---------------------------------------------


def test_an_interrupted_two_rename_swap_is_recovered_by_the_next_run(tmp_path):
    site = tmp_path / "site"
    publish(site, FILES)
    before, before_inodes = tree(site), inodes(site)
    # Killed between the fallback's two renames: the old site moved aside, the complete new
    # site still in its staging folder, nothing at site/.
    os.rename(site, tmp_path / ".site.old-abc123")
    staging = tmp_path / ".site.staging-xyz789"
    staging.mkdir()
    (staging / MARKER).write_bytes(MARKER_TEXT)
    (staging / "index.html").write_bytes(b"<h1>Never swapped in</h1>")

    report = publish(site, FILES)

    assert report == OutputReport((), tuple(sorted(FILES)), (), swapped=False)
    assert tree(site) == before  # the old site is back, as it was
    assert inodes(site) == before_inodes
    assert beside(site) == ["site"]

    report = publish(site, {**FILES, "index.html": b"<h1>Ny</h1>"})
    assert report.written == ("index.html",) and report.swapped
    assert inodes(site)["static/style.abc.css"] == before_inodes["static/style.abc.css"]
    assert beside(site) == ["site"]


def test_without_an_atomic_exchange_the_two_rename_fallback_swaps(tmp_path, monkeypatch):
    site = tmp_path / "site"
    publish(site, FILES)
    before, before_inodes = tree(site), inodes(site)
    asked = []

    def no_exchange(a, b):
        asked.append((Path(a).name, Path(b).name))
        return False

    monkeypatch.setattr(output, "_exchange", no_exchange)
    new = {**FILES, "ny/index.html": b"ny"}
    report = publish(site, new)

    assert len(asked) == 1 and asked[0][0].startswith(".site.staging-") and asked[0][1] == "site"
    assert report.written == ("ny/index.html",) and report.swapped
    assert contents(site) == new
    after, after_inodes = tree(site), inodes(site)
    for name in FILES:
        assert after[name] == before[name] and after_inodes[name] == before_inodes[name]
    assert beside(site) == ["site"]


def test_the_atomic_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "from-a").write_bytes(b"a")
    (b / "from-b").write_bytes(b"b")
    if not output._exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    assert os.listdir(a) == ["from-b"] and os.listdir(b) == ["from-a"]


def _second_rename_fails(monkeypatch):
    monkeypatch.setattr(output, "_exchange", lambda a, b: False)
    real_rename, calls = os.rename, []

    def rename(source, target):
        calls.append(source)
        if len(calls) == 2:  # staging → site, after site → .site.old-*
            raise OSError(errno.EIO, "I/O error")
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename)


def test_a_failed_second_rename_is_recovered_by_the_next_run(tmp_path, monkeypatch):
    site = tmp_path / "site"
    publish(site, FILES)
    before = tree(site)
    with monkeypatch.context() as patch:
        _second_rename_fails(patch)
        with pytest.raises(OSError, match="I/O error"):
            publish(site, {**FILES, "index.html": b"<h1>Ny</h1>"})

    report = publish(site, FILES)
    assert not report.swapped
    assert tree(site) == before
    assert beside(site) == ["site"]


def test_a_failed_second_rename_puts_the_old_site_back_at_once(tmp_path, monkeypatch):
    site = tmp_path / "site"
    publish(site, FILES)
    before = tree(site)
    _second_rename_fails(monkeypatch)
    with pytest.raises(OSError, match="I/O error"):
        publish(site, {**FILES, "index.html": b"<h1>Ny</h1>"})
    assert site.is_dir() and tree(site) == before


# -- 9-10: refusals, and a site folder behind a symlink ----------------------------------------


BAD_NAMES = [
    "../escape.html",
    "kurs/../../escape.html",
    "/etc/passwd",
    "a//b.html",
    "a/./b.html",
    "a\\b.html",
    "..\\escape.html",
    "",
    ".",
    "kurs/",
    MARKER,
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_paths_outside_the_site_are_refused(tmp_path, name):
    with pytest.raises(BuildError, match="inside the site"):
        publish(tmp_path / "site", {"index.html": b"ok", name: b"x"})
    assert os.listdir(tmp_path) == []


def test_a_path_inside_a_folder_named_like_the_marker_is_refused(tmp_path):
    with pytest.raises(BuildError, match="inside the site"):
        publish(tmp_path / "site", {f"{MARKER}/index.html": b"x"})
    with pytest.raises(BuildError, match="inside the site"):
        publish(tmp_path / "site", {"a\0b.html": b"x"})


def _project(tmp_path: Path) -> Path:
    """A project folder that even carries a marker, so only ``protect`` can stop the build."""
    project = tmp_path / "www" / "project"
    project.mkdir(parents=True)
    (project / "catalog.toml").write_text('[site]\noutput_dir = "."\n')
    (project / MARKER).write_bytes(MARKER_TEXT)
    (project.parent / MARKER).write_bytes(MARKER_TEXT)
    return project


@pytest.mark.parametrize("target", ["the project", "its parent", "a symlink to the project"])
def test_the_project_folder_and_what_contains_it_are_never_replaced(tmp_path, target):
    project = _project(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(project)
    site = {"the project": project, "its parent": project.parent, "a symlink to the project": link}
    before = tree(tmp_path)

    with pytest.raises(BuildError, match="project folder or contains it"):
        publish(site[target], FILES, protect=project)

    assert tree(tmp_path) == before  # no staging folder either


def test_a_non_empty_folder_without_the_marker_is_not_wiped(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "precious.txt").write_text("keep")
    (site / "sub").mkdir()
    (site / "sub" / "photo.jpg").write_bytes(b"\xff\xd8")
    before = tree(site)
    with pytest.raises(BuildError, match="not made by catalog-gen"):
        publish(site, FILES)
    assert tree(site) == before
    assert beside(site) == ["site"]


def test_a_file_in_the_way_is_refused(tmp_path):
    target = tmp_path / "site"
    target.write_bytes(b"not a folder")
    with pytest.raises(BuildError, match="not a folder"):
        publish(target, FILES)
    assert target.read_bytes() == b"not a folder"
    assert os.listdir(tmp_path) == ["site"]


def test_an_empty_folder_without_the_marker_is_accepted(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    report = publish(site, FILES)
    assert report == OutputReport(tuple(sorted(FILES)), (), (), swapped=True)
    assert contents(site) == FILES
    assert (site / MARKER).read_bytes() == MARKER_TEXT
    assert beside(site) == ["site"]


def test_a_symlinked_site_folder_stays_a_symlink_and_its_target_is_updated(tmp_path, swap):
    real = tmp_path / "www" / "catalog"
    real.mkdir(parents=True)
    link = tmp_path / "site"
    link.symlink_to(real)

    publish(link, FILES)
    before_inodes = inodes(real)
    report = publish(link, {**FILES, "ny.html": b"ny"})

    assert report.written == ("ny.html",) and report.swapped
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert contents(real) == {**FILES, "ny.html": b"ny"}
    assert inodes(real)["index.html"] == before_inodes["index.html"]
    assert sorted(os.listdir(tmp_path)) == ["site", "www"]
    assert beside(real) == ["catalog"]  # staging lived beside the real folder (the spare too)


# -- a derived index (the search) ------------------------------------------------------------


class WordIndex:
    """A stand-in for Pagefind: one index file per HTML file (its bytes reversed), plus one
    for the whole site. Told which pages changed, it makes only theirs again, in the old
    index it finds in the staging folder (replacing files, never writing into them: they are
    the live site's)."""

    def __init__(self, fail: bool = False):
        self.calls: list[frozenset[str] | None] = []
        self.fail = fail

    @property
    def runs(self) -> int:
        return len(self.calls)

    def __call__(self, folder: Path, changed: frozenset[str] | None, staged: output.Staged) -> None:
        self.calls.append(changed)
        self.staged = staged
        if self.fail:
            raise BuildError("search indexing failed: boom")
        out = folder / "pagefind"
        if changed is None:
            shutil.rmtree(out, ignore_errors=True)
        out.mkdir(exist_ok=True)
        pages = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*.html")}
        for name in sorted(pages if changed is None else changed):
            target = out / f"{PurePosixPath(name).parent.name or 'root'}.pf"
            target.unlink(missing_ok=True)
            if name in pages:
                target.write_bytes(pages[name].read_bytes()[::-1])
        (out / "entry.json").unlink(missing_ok=True)
        (out / "entry.json").write_text(str(len(pages)))


def test_the_index_runs_only_when_pages_change_and_unchanged_index_files_keep_their_mtime(
    tmp_path,
):
    site = tmp_path / "site"
    index = WordIndex()
    indexer = output.Indexer("pagefind", index)
    first = publish(site, FILES, indexer=indexer)
    assert index.calls == [None] and "pagefind/entry.json" in first.written  # no old index
    before = tree(site)

    again = publish(site, FILES, indexer=indexer)
    assert index.runs == 1 and again.written == () and again.removed == ()
    assert "pagefind/entry.json" in again.unchanged and tree(site) == before

    css_only = {**FILES, "static/style.abc.css": b"body{color:red}"}
    styled = publish(site, css_only, indexer=indexer)
    assert index.runs == 1  # no page changed: the old index is carried over
    assert styled.written == ("static/style.abc.css",)
    assert tree(site)["pagefind/entry.json"] == before["pagefind/entry.json"]

    one_page = {**css_only, "kurs/word-2/index.html": b"<h1>Word 2</h1>"}
    changed = publish(site, one_page, indexer=indexer)
    assert index.calls[-1] == {"kurs/word-2/index.html"}  # told which page changed
    assert set(changed.written) == {"kurs/word-2/index.html", "pagefind/word-2.pf"}
    after = tree(site)
    for name in ("pagefind/excel-1.pf", "pagefind/entry.json"):  # same bytes: same mtime
        assert after[name] == before[name], name

    fewer = {k: v for k, v in one_page.items() if k != "kurs/excel-1/index.html"}
    removed = publish(site, fewer, indexer=indexer)
    assert index.calls[-1] == {"kurs/excel-1/index.html"}
    assert index.staged.files == set(fewer)  # told the new site's files: no need to look
    assert set(index.staged.index) == {"entry.json", "excel-1.pf", "word-2.pf", "root.pf"}
    assert index.staged.index["word-2.pf"] == len(one_page["kurs/word-2/index.html"])
    assert set(removed.removed) == {"kurs/excel-1/index.html", "pagefind/excel-1.pf"}
    clean = publish(tmp_path / "clean", fewer, indexer=output.Indexer("pagefind", index))
    assert index.calls[-1] is None and contents(site) == contents(tmp_path / "clean")
    assert sorted(published(removed)) == sorted(published(clean))


def test_the_index_is_told_of_the_files_that_keep_carries_over(tmp_path):
    site = tmp_path / "site"
    publish(site, FILES)
    (site / "kurs" / "hand-made").mkdir()
    (site / "kurs" / "hand-made" / "index.html").write_bytes(b"<h1>By hand</h1>")
    index = WordIndex()
    page = {**FILES, "kurs/word-2/index.html": b"<h1>Word 3</h1>"}
    publish(site, page, keep=["kurs/hand-made/"], indexer=output.Indexer("pagefind", index))
    assert index.staged.files == {*page, "kurs/hand-made/index.html"}
    assert (site / "pagefind" / "hand-made.pf").read_bytes() == b"<h1>By hand</h1>"[::-1]


def test_a_failing_index_publishes_nothing(tmp_path):
    site = tmp_path / "site"
    publish(site, FILES, indexer=output.Indexer("pagefind", WordIndex()))
    before = tree(site)
    with pytest.raises(BuildError, match="search indexing failed"):
        publish(
            site,
            {**FILES, "index.html": b"<h1>Ny</h1>"},
            indexer=output.Indexer("pagefind", WordIndex(fail=True)),
        )
    assert tree(site) == before
    assert [p.name for p in tmp_path.iterdir()] == ["site"]


def test_turning_the_index_off_removes_it(tmp_path):
    site = tmp_path / "site"
    publish(site, FILES, indexer=output.Indexer("pagefind", WordIndex()))
    report = publish(site, FILES)
    assert {n.split("/")[0] for n in report.removed} == {"pagefind"}
    assert not (site / "pagefind").exists()


# -- 5: the new site is what the build made, plus what site.keep names -------------------------

#: Files that no build wrote: a GitHub Pages CNAME, a verification file, notes, and a folder
#: another tool keeps up to date (an ACME challenge), and snapshots a config put in site/.
FOREIGN = {
    "CNAME": b"kurs.example.no\n",
    "google1a2b3c.html": b"google-site-verification: google1a2b3c.html",
    ".well-known/acme-challenge/token": b"token",
    "kurs/notes.txt": b"mine",
    "snapshots/0001/courses.json": b"{}",
}
KEEP = ("CNAME", "google*.html", ".well-known/")
KEPT = ("google1a2b3c.html", ".well-known/acme-challenge/token", "CNAME")


def add_foreign(site: Path) -> None:
    for name, data in FOREIGN.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(data)


def test_files_the_build_did_not_make_are_removed_unless_site_keep_names_them(tmp_path, swap):
    site = tmp_path / "site"
    publish(site, FILES)
    add_foreign(site)
    before, before_inodes = tree(site), inodes(site)
    new = dict(FILES)
    del new["kurs/word-2/index.html"]

    report = publish(site, new, keep=KEEP)

    assert report.removed == (
        "kurs/notes.txt", "kurs/word-2/index.html", "snapshots/0001/courses.json"
    )  # fmt: skip
    assert sorted(report.retained) == sorted(KEPT)
    assert contents(site) == {**new, **{name: FOREIGN[name] for name in KEPT}}
    after, after_inodes = tree(site), inodes(site)
    for name in KEPT:  # carried over untouched: the same file, bytes and mtime
        assert (after[name], after_inodes[name]) == (before[name], before_inodes[name])
    assert not (site / "snapshots").exists() and not (site / "kurs" / "word-2").exists()
    assert beside(site) == ["site"]


def test_without_any_record_what_the_build_did_not_make_is_removed(tmp_path):
    """No state, no list of what an earlier build made: the new site is still this build's
    files and the kept ones, so a site restored from anywhere converges."""
    site = tmp_path / "site"
    publish(site, FILES)
    add_foreign(site)

    report = publish(site, {"index.html": b"<h1>Ny</h1>"}, keep=["CNAME"])

    assert report.retained == ("CNAME",)
    assert set(report.removed) == {*FOREIGN, *FILES} - {"index.html", "CNAME"}
    assert contents(site) == {"index.html": b"<h1>Ny</h1>", "CNAME": FOREIGN["CNAME"]}


@pytest.mark.parametrize(
    ("pattern", "name", "kept"),
    [
        ("CNAME", "CNAME", True),
        ("CNAME", "kurs/CNAME", False),
        ("google*.html", "google1a2b.html", True),
        ("google*.html", "kurs/google1a2b.html", False),
        ("google*.html", "googlex/y.html", False),
        (".well-known", ".well-known/acme-challenge/t", True),
        (".well-known/", ".well-known/security.txt", True),
        (".well-known", ".well-knownx", False),
        ("kurs/*/extra.txt", "kurs/a/extra.txt", True),
        ("kurs/*/extra.txt", "kurs/a/b/extra.txt", False),
    ],
)
def test_site_keep_matches_paths_and_folders_name_by_name(pattern, name, kept):
    assert output.kept_by_setting(name, [pattern]) is kept


@pytest.mark.parametrize(
    ("foreign", "page"), [("kurs", "kurs/index.html"), ("kurs/notes.txt", "kurs")]
)
def test_a_kept_file_in_the_way_of_a_page_gives_way_to_the_page(tmp_path, foreign, page):
    site = tmp_path / "site"
    publish(site, {"index.html": b"<h1>Kurs</h1>"})
    (site / foreign).parent.mkdir(parents=True, exist_ok=True)
    (site / foreign).write_bytes(b"not ours")
    report = publish(site, {"index.html": b"<h1>Kurs</h1>", page: b"x"}, keep=[foreign])
    assert foreign in report.removed and report.retained == ()
    assert contents(site) == {"index.html": b"<h1>Kurs</h1>", page: b"x"}
    assert beside(site) == ["site"]


# -- 6: links are names, never followed ----------------------------------------------------------


def test_a_link_in_the_site_is_removed_as_a_link_never_followed(tmp_path, swap):
    """A course folder replaced by a link to another folder, a file replaced by a link to a
    file outside, a dangling link: each is removed as a link; what they point at is
    untouched, and the publish neither writes through them nor fails."""
    site = tmp_path / "site"
    publish(site, FILES)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "index.html").write_bytes(b"<h1>Mine</h1>")
    (outside / "other.txt").write_bytes(b"mine")
    shutil.rmtree(site / "kurs" / "word-2")
    (site / "kurs" / "word-2").symlink_to(outside, target_is_directory=True)
    (site / "kurs" / "excel-1" / "index.html").unlink()
    (site / "kurs" / "excel-1" / "index.html").symlink_to(outside / "other.txt")
    (site / "dangling").symlink_to(tmp_path / "nowhere")
    outside_before = tree(outside)

    new = dict(FILES)
    del new["kurs/word-2/index.html"]  # the course went upstream
    report = publish(site, new)

    assert tree(outside) == outside_before
    assert contents(site) == new
    assert not (site / "kurs" / "word-2").is_symlink() and not (site / "dangling").is_symlink()
    assert not (site / "kurs" / "excel-1" / "index.html").is_symlink()
    assert {"kurs/word-2", "dangling"} <= set(report.removed)
    # The page where a link was is written as a page of its own, the next publish too.
    again = publish(site, {**new, "kurs/word-2/index.html": b"<h1>Word</h1>"})
    assert tree(outside) == outside_before
    assert (site / "kurs" / "word-2").is_dir() and not (site / "kurs" / "word-2").is_symlink()
    assert again.written == ("kurs/word-2/index.html",)


def test_what_the_index_read_of_a_page_is_never_read_through_a_link(tmp_path):
    """A page written again is compared with the old one for the search index (does it read
    alike?). An old page that is a link is no page of ours: what it points at is not read,
    however it is, and the page counts as changed."""
    seen: list[bytes] = []

    def reads(name: str, page: bytes) -> bytes:
        seen.append(page)
        return b"same"  # every page reads alike: only a link must not make it so

    indexer = output.Indexer("idx", lambda staging, _, __: (staging / "idx").mkdir(), reads)
    site = tmp_path / "site"
    publish(site, FILES, indexer=indexer)
    (tmp_path / "secret").write_bytes(b"not the site's")
    page = site / "kurs" / "excel-1" / "index.html"
    page.unlink()
    page.symlink_to(tmp_path / "secret")
    seen.clear()

    report = publish(site, {**FILES, "kurs/excel-1/index.html": b"<h1>Excel</h1>"}, indexer=indexer)
    assert b"not the site's" not in seen
    assert "kurs/excel-1/index.html" in report.written and not page.is_symlink()


def test_a_kept_link_is_carried_over_as_the_link(tmp_path):
    site = tmp_path / "site"
    publish(site, FILES)
    certificates = tmp_path / "acme"
    certificates.mkdir()
    (certificates / "token").write_bytes(b"t")
    (site / ".well-known").symlink_to(certificates, target_is_directory=True)
    report = publish(site, {**FILES, "index.html": b"<h1>Ny</h1>"}, keep=[".well-known"])
    assert report.retained == (".well-known",)
    assert os.readlink(site / ".well-known") == str(certificates)
    assert (certificates / "token").read_bytes() == b"t"


@pytest.mark.parametrize("in_the_way", ["nothing", "a file", "a link"])
def test_forked_workers_putting_files_into_the_same_new_folders_never_collide(tmp_path, in_the_way):
    """A build's render workers are forked after ``begin`` and each makes the folders its
    files go into. Two making one folder at the same moment is no error: a 1,000-course
    catalog built again a night later ended, more often than not, in "internal error:
    FileExistsError" when a course page and its calendar files reached a new folder from two
    workers at once."""
    site, workers, folders = tmp_path / "site", 4, 400
    names = [f"kurs/c{i}/{w}.html" for i in range(folders) for w in range(workers)]
    publisher = output.Publisher(site)
    publisher.plan(names)
    publisher.begin()
    staging, outside = Path(publisher.staging), tmp_path / "outside"
    outside.mkdir()
    if in_the_way != "nothing":  # where each folder must go, a name of the old site's
        (staging / "kurs").mkdir()
        for i in range(folders):
            if in_the_way == "a file":
                (staging / f"kurs/c{i}").write_bytes(b"old")
            else:
                (staging / f"kurs/c{i}").symlink_to(outside, target_is_directory=True)
    start_reading, start_writing = os.pipe()
    children = []
    for worker in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: every folder in the same order as the others, all at once
            status = 1
            try:
                os.close(start_writing)
                os.read(start_reading, 1)
                for i in range(folders):
                    publisher.put(f"kurs/c{i}/{worker}.html", b"<p>%d</p>" % i)
                status = 0
            except BaseException as exc:
                os.write(2, f"worker {worker}: {exc!r}\n".encode())
            finally:
                os._exit(status)
        children.append(pid)
    os.close(start_reading)
    os.write(start_writing, b"go" * workers)
    os.close(start_writing)
    statuses = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    assert statuses == [0] * workers
    for name in names:
        publisher.mark(name, output.WRITTEN)
    publisher.course_pages_done(set())
    publisher.commit()
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")) == sorted(names)
    assert not any(outside.iterdir()), "nothing is written through a link"


@given(st.lists(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=5).map("/".join)))
def test_the_folders_of_many_files_are_the_folders_of_each(names):
    # The one-step walk publish uses for a whole site: no folder missed, none made up.
    each = [name.split("/") for name in names]
    assert output._all_folders(names) == {
        "/".join(parts[:n]) for parts in each for n in range(1, len(parts))
    }


@pytest.mark.parametrize("size", [0, 1, output._COMPARE_CHUNK, 2 * output._COMPARE_CHUNK + 7])
def test_an_old_file_is_compared_chunk_by_chunk_to_its_last_byte(tmp_path, size):
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    old = tmp_path / "old"
    old.write_bytes(data)
    assert output._same_bytes(str(old), data)
    for at in {0, size // 2, size - 1} if size else ():  # a byte changed in any chunk
        changed = bytearray(data)
        changed[at] ^= 1
        assert not output._same_bytes(str(old), bytes(changed))
    old.write_bytes(data + b"!")  # a file that grew is never the same
    assert not output._same_bytes(str(old), data)


@pytest.mark.parametrize("cuts", [(), (0,), (5, 5, 9), (1, 2, 3, 4, 5, 6, 7, 8)])
def test_a_file_given_in_parts_is_kept_when_its_bytes_are_the_old_files(tmp_path, cuts):
    """The site-wide calendar is put in as its parts (45 MB at 10,000 courses, never joined):
    the same bytes however cut keep the old file (its inode), other bytes are written whole."""
    site = tmp_path / "site"
    feed = b"BEGIN:VCALENDAR\r\nX:1\r\nEND:VCALENDAR\r\n"
    publish(site, {**FILES, "kalender.ics": feed})

    def cut(data: bytes) -> list[bytes | memoryview]:
        edges = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
        return [memoryview(data)[a:b] for a, b in itertools.pairwise(edges)]

    for data, status in [
        (feed, output.UNCHANGED),
        (feed[:-3] + b"X\r\n", output.WRITTEN),  # the same length, the last part differs
        (feed + b"X", output.WRITTEN),
    ]:
        before = inodes(site)["kalender.ics"]
        publisher = output.Publisher(site)
        publisher.plan([*FILES, "kalender.ics"], kept=FILES)
        assert publisher.put("kalender.ics", cut(data)) == status
        publisher.course_pages_done(set())
        publisher.commit()
        assert (site / "kalender.ics").read_bytes() == data
        assert (inodes(site)["kalender.ics"] == before) == (status == output.UNCHANGED)


@pytest.mark.parametrize("when", ["before begin", "after begin", "from the spare"])
def test_files_found_kept_after_the_plan_are_carried_over_as_they_are(tmp_path, when):
    """The calendars are checked while the pages render, so what they keep reaches the
    publisher after ``plan``: before the staging folder is begun, after (render workers
    were forked), or into one begun from the spare. Each way the old files are in the new
    site, the very same files, and reported unchanged."""
    site = tmp_path / "site"
    record = None
    if when == "from the spare":
        record = _published_with_record(site, FILES, None, None)
        record = _published_with_record(site, {**FILES, "index.html": b"<h1>2</h1>"}, None, record)
    else:
        publish(site, FILES)
    old = contents(site)
    before = inodes(site)
    publisher = output.Publisher(site, record=record)
    publisher.plan(FILES, kept=["index.html"])
    carried = ["kurs/word-2/index.html", "static/style.abc.css"]
    if when == "before begin":
        publisher.carry(carried)
    publisher.put("kurs/excel-1/index.html", b"<h1>Excel 365</h1>")  # begins
    if when != "before begin":
        publisher.carry(carried)
    publisher.course_pages_done({"kurs/excel-1/index.html"})
    report = publisher.commit()
    assert publisher.synced == (when == "from the spare")
    assert report.written == ("kurs/excel-1/index.html",)
    assert sorted(report.unchanged) == sorted(set(FILES) - {"kurs/excel-1/index.html"})
    assert contents(site) == {**old, "kurs/excel-1/index.html": b"<h1>Excel 365</h1>"}
    for name in report.unchanged:
        assert inodes(site)[name] == before[name]
    with pytest.raises(BuildError, match="vanished during the build"):
        later = output.Publisher(site)
        later.plan(FILES)
        later.carry(["kurs/gone-9/index.html"])


def test_a_kept_file_removed_by_hand_during_the_build_is_a_clear_error(tmp_path):
    """A file the build keeps, removed from the live site after the build looked: "build
    again", not an internal error; the site is left as it was."""
    site = tmp_path / "site"
    publish(site, FILES)
    publisher = output.Publisher(site)
    publisher.plan(FILES, kept=list(FILES))
    (site / "index.html").unlink()
    left = contents(site)
    with pytest.raises(BuildError, match=r"index\.html vanished during the build; build again"):
        publisher.begin()
    publisher.abort()
    assert contents(site) == left


def _published_with_record(site: Path, files: dict[str, bytes], indexer, record):
    """Publish ``files`` as a build does, with the record of the last publish: the next."""
    publisher = output.Publisher(site, record=record, indexer=indexer)
    publisher.plan(files)
    pages = {n for n in files if publisher.put(n, files[n]) == output.WRITTEN}
    publisher.course_pages_done({n for n in pages if n.endswith(".html")})
    publisher.commit()
    return publisher.next_record


@pytest.mark.parametrize(
    "change",
    ["nothing", "a file dropped in", "a file removed", "an index file replaced", "spare touched"],
)
def test_what_the_publisher_looks_at_in_a_worker_it_sees_as_it_would_itself(
    tmp_path, monkeypatch, change
):
    """The publisher stats the site, its index and the spare against the record in a forked
    process while the build makes its catalog: what its plan makes of that, and whether it
    may start from the spare, are what they make of looking themselves, whatever changed
    behind the record's back."""

    def planned(looked: bool):
        site = tmp_path / str(looked) / "site"
        site.parent.mkdir()
        indexer = output.Indexer("pagefind", WordIndex())
        record = _published_with_record(site, FILES, indexer, None)
        second = {**FILES, "index.html": b"<h1>Kurs 2</h1>"}
        record = _published_with_record(site, second, indexer, record)
        assert record is not None and record.spare_inode  # a spare to start from
        if change == "a file dropped in":
            (site / "kurs/excel-1/notes.txt").write_text("dropped")
        elif change == "a file removed":
            (site / "kurs/word-2/index.html").unlink()
        elif change == "an index file replaced":
            (site / "pagefind/entry.json").unlink()
            (site / "pagefind/entry.json").write_text("999")
        elif change == "spare touched":
            (output.SitePaths(site).spare / "kurs/excel-1/extra.html").write_text("x")
        if not looked:
            monkeypatch.setattr(output.forked, "later", lambda function: None)
        publisher = output.Publisher(site, record=record, indexer=indexer)
        assert (publisher._looking is not None) == looked
        publisher.plan({**second, "kurs/excel-1/index.html": b"<h1>Excel 3</h1>"})
        publisher.begin()
        assert (publisher._looking is not None) == looked  # used what the worker found
        seen = publisher.old, publisher.touched, publisher.removed, publisher.staged
        started_from_spare = publisher.synced
        publisher.abort()
        monkeypatch.undo()
        return (
            {n: Path(p).relative_to(site) for n, p in seen[0].items()},
            seen[1:],
            started_from_spare,
        )

    looked_apart = planned(looked=True)
    assert looked_apart == planned(looked=False)
    assert looked_apart[2] == (change != "spare touched")
