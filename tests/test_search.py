"""The search index in shards (catalog_gen.site.search), with the real Pagefind binary.

The promises: a build indexes again only the shards holding a course page it wrote or
removed, and carries the others over untouched (same bytes, same mtime); whatever the path,
the index is byte for byte the one a clean build makes; an index that ``shards.json`` does not
vouch for (other settings, a file missing, cut short or added) is made again whole. Each test
publishes real pages through the build's publisher (tests/publishing.py) with the indexer the
build uses, so the hook between them (site/publish.py's Indexer) is tested too.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog_gen.build import run_build, search_indexer
from catalog_gen.errors import BuildError
from catalog_gen.site.generate import MemorySink, SiteBuilder
from catalog_gen.site.publish import MARKER, Indexer
from catalog_gen.site.search import (
    MANIFEST,
    matches,
    searchable,
    shard_name,
    shard_of,
)
from catalog_gen.source.store import SnapshotStore
from tests.conftest import NOW, run_cli
from tests.publishing import publish
from tests.sitecheck import site_bytes, site_tree
from tests.test_buildstate import clean_build

SHARDS = 4
COURSES = "kurs/*/index.html"
WORDS = [
    "excel", "pivot", "tabeller", "formler", "diagram", "word", "maler", "stiler", "brev",
    "powerpoint", "lysbilder", "førstehjelp", "hjerte", "lunge", "redning", "stige", "truck",
    "kran", "sikkerhet", "ledelse", "coaching", "samtale", "budsjett", "regnskap", "lønn",
    "arbeidsmiljø", "konflikt", "prosjekt", "plan", "risiko",
]  # fmt: skip


def page(title: str, text: str) -> bytes:
    return (
        "<!doctype html><html lang=nb><head><title>x</title></head><body>"
        f"<nav>Meny</nav><article data-pagefind-body><h1>{title}</h1><p>{text}</p></article>"
        "</body></html>"
    ).encode()


def course(number: int, extra: str = "") -> tuple[str, bytes]:
    words = " ".join(WORDS[(number * 7 + k) % len(WORDS)] for k in range(12))
    return f"kurs/kurs-{number}/index.html", page(f"Kurs {number}", f"{words} {extra}".strip())


def site_files(numbers) -> dict[str, bytes]:
    files = {"index.html": page("Forside", "alle kurs").replace(b" data-pagefind-body", b"")}
    files.update(course(n) for n in numbers)
    return files


def in_shard(shard: int, count: int = 1, avoid: tuple[int, ...] = ()) -> list[int]:
    """Course numbers whose page falls in ``shard``."""
    found = []
    for n in range(1000):
        if n not in avoid and shard_of(course(n)[0], SHARDS) == shard:
            found.append(n)
            if len(found) == count:
                return found
    raise AssertionError("no such course")


def indexer(shards: int = SHARDS) -> Indexer:
    return search_indexer("nb", COURSES, shards)


def index_tree(site: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every index file: (bytes, mtime_ns, inode)."""
    found = {}
    for path in sorted((site / "pagefind").rglob("*")):
        if path.is_file():
            info = path.stat()
            found[path.relative_to(site).as_posix()] = (
                path.read_bytes(),
                info.st_mtime_ns,
                info.st_ino,
            )
    return found


def index_bytes(site: Path) -> dict[str, bytes]:
    return {name: data for name, (data, _, _) in index_tree(site).items()}


def clean_index(tmp_path: Path, files: dict[str, bytes], shards: int = SHARDS) -> dict:
    """The index a clean build of ``files`` publishes."""
    clean = tmp_path / f"clean-{len(os.listdir(tmp_path))}"
    publish(clean, files, indexer=indexer(shards))
    return index_bytes(clean)


def shard_files(tree: dict, shard: int) -> dict:
    prefix = f"pagefind/{shard_name(shard, SHARDS)}/"
    return {name: value for name, value in tree.items() if name.startswith(prefix)}


def manifest(site: Path) -> dict:
    return json.loads((site / "pagefind" / MANIFEST).read_text())


class PagefindRuns:
    """The shards Pagefind indexed (the last folder of each run's --output-path), as logged
    by a wrapper around the real binary."""

    def __init__(self, log: Path):
        self.log = log

    def take(self) -> list[str]:
        """The shards indexed since the last call."""
        done = sorted(self.log.read_text().split()) if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        return done


@pytest.fixture
def runs(tmp_path, monkeypatch) -> PagefindRuns:
    from pagefind.service import get_executable

    log = tmp_path / "pagefind-runs.log"
    wrapper = tmp_path / "pagefind-logged"
    wrapper.write_text(
        '#!/bin/sh\nfor a in "$@"; do [ "$prev" = --output-path ] && echo "${a##*/}" >> '
        f'{log}; prev="$a"; done\nexec {get_executable()} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PAGEFIND_BINARY_PATH", str(wrapper))
    return PagefindRuns(log)


def test_a_change_indexes_its_shard_again_and_the_index_equals_a_clean_one(tmp_path, runs):
    site = tmp_path / "site"
    numbers = [n for n in range(40) if shard_of(course(n)[0], SHARDS) != 0][:24]
    files = site_files(numbers)  # shard 0 empty
    publish(site, files, indexer=indexer())
    assert runs.take() == ["1", "2", "3"]
    assert manifest(site)["shards"] == ["1/", "2/", "3/"]
    assert index_bytes(site) == clean_index(tmp_path, files)
    runs.take()
    before = index_tree(site)
    # Pagefind's scripts once, in pagefind/; each shard its index and the engine Pagefind
    # loads from the shard it opens first.
    assert {"pagefind/pagefind.js", "pagefind/pagefind-ui.js"} <= set(before)
    for shard in ("1", "2", "3"):
        names = {n.split("/", 2)[2] for n in before if n.startswith(f"pagefind/{shard}/")}
        assert {"pagefind-entry.json", "pagefind-worker.js", "wasm.nb.pagefind"} <= names
        assert not {"pagefind.js", "pagefind-ui.js"} & names

    # One course's text changes: only its shard is indexed again.
    changed_course = numbers[5]
    shard = shard_of(course(changed_course)[0], SHARDS)
    files[course(changed_course)[0]] = course(changed_course, "akvarell")[1]
    report = publish(site, files, indexer=indexer())
    assert runs.take() == [str(shard)]
    after = index_tree(site)
    assert index_bytes(site) == clean_index(tmp_path, files)
    runs.take()
    for other in {1, 2, 3} - {shard}:  # carried over: the same files, bytes and mtime
        assert shard_files(after, other) == shard_files(before, other), other
    rebuilt = {n for n in report.written if n.startswith("pagefind/")}
    assert f"pagefind/{MANIFEST}" in rebuilt  # it vouches for the new files
    rebuilt.discard(f"pagefind/{MANIFEST}")
    assert rebuilt and all(n.startswith(f"pagefind/{shard}/") for n in rebuilt), rebuilt
    assert f"pagefind/{shard}/pagefind-worker.js" not in rebuilt  # same bytes: kept
    for name in ("pagefind/pagefind-ui.js", "pagefind/pagefind.js"):
        assert after[name] == before[name], name

    # A course added to the empty shard 0 and one removed: both shards indexed again.
    (added,) = in_shard(0)
    files.update([course(added)])
    del files[course(numbers[0])[0]]
    report = publish(site, files, indexer=indexer())
    assert runs.take() == sorted({"0", str(shard_of(course(numbers[0])[0], SHARDS))})
    assert manifest(site)["shards"] == ["0/", "1/", "2/", "3/"]
    assert index_bytes(site) == clean_index(tmp_path, files)

    # Every page of a shard removed: the shard goes, from the folder and the manifest.
    for name in [n for n in files if n.startswith("kurs/")]:
        if shard_of(name, SHARDS) == 2:
            del files[name]
    runs.take()
    report = publish(site, files, indexer=indexer())
    assert runs.take() == []  # nothing left to index in shard 2
    assert manifest(site)["shards"] == ["0/", "1/", "3/"]
    assert not (site / "pagefind" / "2").exists()
    assert index_bytes(site) == clean_index(tmp_path, files)
    assert "pagefind/2/pagefind-entry.json" in report.removed


def test_a_change_outside_the_course_pages_leaves_the_index_alone(tmp_path, runs):
    site = tmp_path / "site"
    files = site_files(range(12))
    publish(site, files, indexer=indexer())
    before = index_tree(site)
    files["index.html"] = page("Forside", "nye kurs").replace(b" data-pagefind-body", b"")
    runs.take()
    report = publish(site, files, indexer=indexer())
    assert report.written == ("index.html",) and runs.take() == []
    assert index_tree(site) == before


@pytest.mark.parametrize(
    "change",
    [
        "shard count",
        "no manifest",
        "damaged manifest",
        "other Pagefind",
        "index file missing",
        "index file truncated",
        "file added",
    ],
)
def test_an_index_the_manifest_does_not_vouch_for_is_made_again_whole(tmp_path, runs, change):
    """Whatever is wrong with the old index (made with other settings, a file gone, cut
    short or added), the build does not patch it: every shard is indexed again, and the
    result is a clean build's."""
    site = tmp_path / "site"
    files = site_files(range(16))
    publish(site, files, indexer=indexer())
    runs.take()
    shards = SHARDS
    index = site / "pagefind"
    path = index / MANIFEST
    text = path.read_text()
    fragment = sorted(index.glob("*/fragment/*"))[0]
    if change == "shard count":
        shards = 3
    elif change == "no manifest":
        path.unlink()
    elif change in ("damaged manifest", "other Pagefind"):
        path.unlink()  # publish would carry these over: the indexer must not trust them
        if change == "damaged manifest":
            path.write_text(text[: len(text) // 2])
        else:
            path.write_text(text.replace('"pagefind 1.', '"pagefind 0.'))
    elif change == "index file missing":
        fragment.unlink()
    elif change == "index file truncated":
        data = fragment.read_bytes()
        fragment.unlink()
        fragment.write_bytes(data[:-1])
    else:
        (index / "0" / "notes.txt").write_text("mine")
    files[course(3)[0]] = course(3, "akvarell")[1]
    publish(site, files, indexer=indexer(shards))
    assert len(runs.take()) == len(manifest(site)["shards"]) == shards
    clean = clean_index(tmp_path, files, shards)
    assert index_bytes(site) == clean  # a file added is not the build's: removed
    assert manifest(site)["count"] == shards


def test_a_site_without_course_pages_gets_an_index_of_every_page(tmp_path):
    """No published course (a new account): the search page still needs an index to open."""
    site = tmp_path / "site"
    files = {"index.html": page("Kurs kommer", "snart"), "om/index.html": page("Om", "oss")}
    publish(site, files, indexer=indexer())
    entries = [
        json.loads((site / "pagefind" / name / "pagefind-entry.json").read_text())
        for name in manifest(site)["shards"]
    ]
    assert manifest(site)["pages"] == "**/*.html"
    assert sum(lang["page_count"] for e in entries for lang in e["languages"].values()) == 2
    files.update([course(1)])  # the first course: the index is made again, of courses only
    publish(site, files, indexer=indexer())
    assert manifest(site)["pages"] == COURSES
    assert index_bytes(site) == clean_index(tmp_path, files)


def test_shards_are_pinned_so_an_upgrade_does_not_move_pages_between_them():
    """A page's shard must not depend on the machine or the Python version; changing how it
    is computed needs a new setting in the manifest (so old indexes are made again whole)."""
    assert [shard_of(f"kurs/kurs-{n}/index.html", 16) for n in range(8)] == [
        5, 6, 12, 1, 6, 0, 12, 2,
    ]  # fmt: skip
    assert [shard_of(page, 16) for page in ("index.html", "om/index.html")] == [2, 9]
    assert [shard_name(n, 16) for n in (0, 7, 15)] == ["00", "07", "15"]
    assert [shard_name(n, 4) for n in (0, 3)] == ["0", "3"]


def test_a_failing_pagefind_fails_the_build_with_its_words_and_publishes_nothing(
    tmp_path, monkeypatch
):
    site = tmp_path / "site"
    files = site_files(range(8))
    publish(site, files, indexer=indexer())
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    fake = tmp_path / "pagefind"
    version = (site / "pagefind" / MANIFEST).read_text()
    version = json.loads(version)["pagefind"]
    fake.write_text(
        f'#!/bin/sh\nif [ "$1" = --version ]; then echo "{version}"; exit 0; fi\n'
        'echo "Error: the disk is full" >&2; exit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PAGEFIND_BINARY_PATH", str(fake))
    files[course(2)[0]] = course(2, "akvarell")[1]
    with pytest.raises(BuildError, match=r"pagefind, shard \d\) failed: Error: the disk is full"):
        publish(site, files, indexer=indexer())
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} == before
    assert sorted(os.listdir(tmp_path)) == ["pagefind", "site"]
    assert (site / MARKER).is_file()


# -- through the whole build ------------------------------------------------------------------


@pytest.mark.slow
def test_a_renamed_course_indexes_its_one_shard_again(project, sample, runs):
    """A new title moves a course to a new page: the page it leaves is removed, and the index
    must forget it and learn the new one. Both are in the course's shard (its id's), so that
    shard alone is indexed again, and the site, index and all, is a clean build's."""
    config = project.config
    run_build(config, project.access(), now=NOW)
    runs.take()
    site = config.output_path
    course_id = min(sample.courses)
    (old,) = [p.relative_to(site).as_posix() for p in site.glob(f"kurs/*-{course_id}/index.html")]
    new = f"kurs/omdopt-kurs-{course_id}/index.html"
    assert shard_of(old) == shard_of(new)
    sample.change_course(course_id, title="Omdøpt kurs")
    report = run_build(config, project.access(), now=NOW)
    assert old in report.removed_files and (site / new).is_file()
    assert runs.take() == [shard_name(shard_of(new))]
    assert site_bytes(site) == clean_build(config, NOW)


@pytest.mark.slow
def test_a_build_killed_while_indexing_leaves_the_old_site_and_the_next_is_whole(
    project, sample, tmp_path
):
    """Killed (SIGKILL) while Pagefind runs: the site is the old one to the byte and mtime,
    and the next build publishes the site, index and all, a clean build makes."""
    from pagefind.service import get_executable

    now = ("--now", NOW.isoformat())
    assert project.run("build", *now).returncode == 0
    site = project.config.output_path
    before = site_tree(site)
    killer = tmp_path / "pagefind-killing"
    killer.write_text(
        '#!/bin/sh\n[ "$1" = --version ] && exec ' + f'{get_executable()} "$@"\n'
        "kill -9 $PPID\nsleep 5\n"
    )
    killer.chmod(0o755)
    sample.change_course(sorted(sample.courses)[2], title="Nytt navn")
    env = {**project.env(), "PAGEFIND_BINARY_PATH": str(killer)}
    killed = run_cli(project.root, "build", *now, env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert site_tree(site) == before
    assert project.run("build", *now).returncode == 0
    assert site_bytes(site) == clean_build(project.config, NOW)


def with_status(number: int, status: str, row: str = "open", city: str = "Oslo"):
    """A course page with a dates row: the city indexed, the status marked for the index to
    ignore (as the theme marks status, seats and booking)."""
    name, data = course(number)
    table = (
        f'<table><tr class="date-row {row}" id="date-{number}"><td>{city}</td>'
        f"<td data-pagefind-ignore>{status}</td></tr></table></article>"
    )
    return name, data.replace(b"</article>", table.encode())


def test_what_the_index_ignores_changing_indexes_nothing_again(tmp_path, runs):
    """A day later every open date's status reads "closed" and its row's class changes: the
    pages are written again, but what Pagefind reads of them is the same, so no shard is
    indexed again and the index is still the one a clean build makes."""
    site, numbers = tmp_path / "site", list(range(24))
    files = site_files(numbers)
    files.update(with_status(n, "Frist 1. des.") for n in numbers)
    publish(site, files, indexer=indexer())
    runs.take()
    before = index_tree(site)

    files.update(with_status(n, "Stengt", row="closed") for n in numbers)
    report = publish(site, files, indexer=indexer())
    assert runs.take() == []
    assert len([n for n in report.written if n.startswith("kurs/")]) == len(numbers)
    assert index_tree(site) == before  # the same files, bytes, mtimes and inodes
    assert index_bytes(site) == clean_index(tmp_path, files)
    runs.take()  # the clean build's

    # What is read changes (a date moves to Bergen): that page's shard, and only it.
    name, data = with_status(numbers[3], "Stengt", row="closed", city="Bergen")
    files[name] = data
    publish(site, files, indexer=indexer())
    assert runs.take() == [str(shard_of(name, SHARDS))]
    assert index_bytes(site) == clean_index(tmp_path, files)


@pytest.mark.parametrize(
    ("mark", "inside", "read_alike"),
    [
        ("data-pagefind-ignore", "<b>{}</b>", True),  # ignored text: not read
        ('data-pagefind-ignore="all"', '<b data-pagefind-filter="by">{}</b>', True),
        ("data-pagefind-ignore", '<b data-pagefind-filter="by">{}</b>', False),  # still read
        ("data-pagefind-ignore", '<b data-pagefind-meta="by">{}</b>', False),
    ],
)
def test_pages_read_alike_exactly_when_pagefind_makes_the_same_index_of_them(
    tmp_path, mark, inside, read_alike
):
    """Pagefind reads the filters, metas and sorts inside an element ignored for its text
    (all but ``data-pagefind-ignore="all"``): two pages differing there are not alike."""
    files = [site_files([1]), site_files([1])]
    for files_of, town in zip(files, ("Oslo", "Bergen"), strict=True):
        name, data = course(1)
        cell = f"<div {mark}>{inside.format(town)}</div></article>"
        files_of[name] = data.replace(b"</article>", cell.encode())
    pages = [files_of["kurs/kurs-1/index.html"] for files_of in files]
    assert (searchable(pages[0]) == searchable(pages[1])) is read_alike
    indexes = [clean_index(tmp_path, files_of) for files_of in files]
    assert (indexes[0] == indexes[1]) is read_alike  # what Pagefind itself makes of them


@st.composite
def markup(draw, depth: int = 0):
    """Random markup as a tree: (html, what Pagefind reads of it), where an element may be
    marked data-pagefind-ignore (then nothing of it is read) and class attributes are not
    read."""
    if depth > 3 or draw(st.booleans()):
        text = draw(st.text(alphabet="abc æø 12.,", max_size=8))
        return text, text
    tag = draw(st.sampled_from(["div", "p", "td", "span", "b", "section"]))
    ident = draw(st.sampled_from(["", ' id="x1"', " id=y2"]))
    css = draw(st.sampled_from(["", ' class="a b"', " class=c", " class='d'"]))
    ignored = draw(st.booleans())
    mark = draw(st.sampled_from([" data-pagefind-ignore", ' data-pagefind-ignore="all"']))
    children = draw(st.lists(markup(depth + 1), max_size=3))
    inner = "".join(html for html, _ in children)
    read = "".join(text for _, text in children)
    html = f"<{tag}{ident}{css}{mark if ignored else ''}>{inner}</{tag}>"
    if ignored:
        return html, ""
    attrs = ident.strip()
    return html, f"<{tag}{' ' + attrs if attrs else ''}>{read}</{tag}>"


def test_scripts_and_styles_are_not_read():
    """Pagefind reads no script or style, so the structured data (whose offers say whether a
    date can still be booked) changing asks nothing of the index."""
    page = b'<head><script type="application/ld+json">{"availability": "%s"}</script></head>'
    page += b"<style>.a{}</style><body><h1>Kurs</h1><script>let a = 1 < 2;</script></body>"
    assert searchable(page % b"InStock") == searchable(page % b"Discontinued")
    assert searchable(page % b"x") == b"<head></head><body><h1>Kurs</h1></body>"


@given(st.lists(markup(), max_size=4))
def test_searchable_is_the_page_without_what_pagefind_ignores(parts):
    page = "".join(html for html, _ in parts).encode()
    assert searchable(page) == "".join(read for _, read in parts).encode()


_SEGMENT = st.text("ab.-_+()$^{}|", min_size=1, max_size=4).filter(lambda p: p.strip("."))
_WILD = st.text("ab.-_+()$^{}|*?", min_size=1, max_size=4).filter(lambda p: p.strip("."))


@given(st.lists(_SEGMENT, min_size=1, max_size=4), st.lists(_WILD, min_size=1, max_size=4))
def test_a_page_matches_the_glob_as_path_glob_finds_it(parts, wild):
    """The index tries every file of the site against the course glob, so it compiles it;
    what matches is what Path.glob would find: as many parts, each matching its own."""
    page, pages = "/".join(parts), "/".join(wild)
    pattern = PurePosixPath(pages)
    expected = len(parts) == len(pattern.parts) and PurePosixPath(page).match(pages)
    assert matches(page, pages) == expected


@given(st.lists(_SEGMENT, min_size=1, max_size=4), st.lists(_WILD, min_size=1, max_size=4))
def test_a_glob_with_a_character_class_matches_part_by_part(parts, wild):
    """A glob with ``[...]`` is not compiled: it is read as Path.glob reads it, each part
    matched by its own (fnmatch, as the reference)."""
    classes = [part.replace("a", "[ab]") for part in wild]
    page, pages = "/".join(parts), "/".join(classes)
    expected = len(parts) == len(classes) and all(map(fnmatch.fnmatchcase, parts, classes))
    assert matches(page, pages) == expected


def test_a_page_kept_as_a_link_is_not_read_through(tmp_path):
    """site.keep may carry over a course page that is a symbolic link, or a course folder
    that is one; the index must not read what they point to (maybe outside the site): it
    indexes the regular pages only, in real folders."""
    site = tmp_path / "site"
    files = site_files(range(3))
    publish(site, files, indexer=indexer())
    secret = tmp_path / "secret" / "index.html"
    secret.parent.mkdir()
    secret.write_bytes(page("Hemmelig", "utenfor nettstedet"))
    (site / "kurs" / "lenke-9").mkdir()
    (site / "kurs" / "lenke-9" / "index.html").symlink_to(secret)
    (site / "kurs" / "mappe-8").symlink_to(secret.parent, target_is_directory=True)
    (site / "pagefind" / MANIFEST).unlink()  # every shard made again: the links' too
    keep = ["kurs/lenke-9/", "kurs/mappe-8"]
    publish(site, {**files, **dict([course(4)])}, keep=keep, indexer=indexer())
    assert (site / "kurs" / "lenke-9" / "index.html").is_symlink()  # kept, as a link
    assert (site / "kurs" / "mappe-8").is_symlink()
    entries = [
        json.loads((site / "pagefind" / name / "pagefind-entry.json").read_text())
        for name in manifest(site)["shards"]
    ]
    assert sum(lang["page_count"] for e in entries for lang in e["languages"].values()) == 4


class _Order(MemorySink):
    """A sink that notes when it hears that the course pages are in."""

    def __init__(self) -> None:
        super().__init__()
        self.told_after: list[str] | None = None

    def course_pages_done(self, changed) -> None:
        self.told_after = list(self.files)


def test_the_index_hears_of_the_course_pages_before_other_pages_are_drawn(project):
    """The index runs beside the rest of the build from the moment the course pages are in:
    a build that draws its pages in this process says so before it draws any other page."""
    assert project.run("fetch").returncode == 0
    config = project.config
    store = SnapshotStore(config.snapshot_path)
    builder = SiteBuilder(config)
    builder.prepare(store.stored(store.latest_name()), now=NOW)
    sink = _Order()
    builder.files(sink)
    course_pages = {page.path for page in builder.pages if page.template == "course.html"}
    drawn = {page.path for page in builder.pages}
    assert sink.told_after is not None
    told = [name for name in sink.told_after if name in drawn]
    assert set(told) == course_pages
    assert len(drawn - course_pages) > 10  # the other pages came after
