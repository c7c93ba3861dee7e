"""The demo site through the outside validators people run on a site: W3C's Nu Html Checker
and Lighthouse (SEO and accessibility).

Both come from the npm registry into .ci/tools (.ci/run installs them): ``vnu-jar`` ships the
checker's vnu.jar, run here with the machine's Java; ``lighthouse`` drives Debian's chromium.

- Nu Html Checker: every page of the demo (built by the real CLI) and the theme's CSS and SVG,
  0 errors.
- Lighthouse: the home page and a course page score 100 for SEO and for accessibility. The
  site is served on 127.0.0.1 by a plain static server, and it is built with ``site.base_url``
  set to that address: a page's canonical link then names the address it was fetched from, as
  on the real host, so Lighthouse's canonical audit checks it fully (it skips some checks when
  the canonical's origin differs from the page's) and the crawl audits read the site's own
  robots.txt. Nothing else differs from the demo. Chromium reaches no other host.

Locally, the tests skip when a tool is missing; under CI=1 they fail instead.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.sitecheck import pages
from tests.test_browser import ARTIFACTS, StaticHost, first, need
from tests.test_serve import CHROMIUM
from tests.test_site import build_demo

#: The long matrices and whole-tool runs: `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

TOOLS = Path(__file__).resolve().parents[1] / ".ci" / "tools" / "node_modules"
VNU = TOOLS / "vnu-jar" / "build" / "dist" / "vnu.jar"
LIGHTHOUSE = TOOLS / "lighthouse" / "cli" / "index.js"
#: The flags the brief for this machine gives headless chromium: no sandbox as root, no GPU,
#: and no background connections (the network is closed).
LIGHTHOUSE_CHROME_FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-background-networking "
    "--disable-component-update --no-first-run"
)
CATEGORIES = ("seo", "accessibility")


def need_program(name: str, what: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} not found: {what}"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return found


# -- Nu Html Checker -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("validators")
    build_demo(folder)
    return folder / "site"


def nu_messages(files: list[Path]) -> list[dict]:
    """What the Nu Html Checker says about ``files`` (HTML, CSS or SVG by their suffix)."""
    java = need_program("java", "install a Java runtime (apt install default-jre-headless)")
    need(VNU, "run .ci/run, or npm install --prefix .ci/tools vnu-jar")
    result = subprocess.run(
        [java, "-jar", str(VNU), "--format", "json", "--exit-zero-always",
         "--also-check-css", "--also-check-svg", *map(str, files)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stderr)["messages"]  # vnu reports on stderr


def checked_file(message: dict) -> Path:
    """The file a message is about (vnu writes ``file:/tmp/…``, not ``file:///tmp/…``)."""
    return Path(unquote(urlsplit(message.get("url", "")).path))


def shown(message: dict, root: Path) -> str:
    where = checked_file(message).relative_to(root)
    return f"{where}:{message.get('lastLine', '?')}: {message.get('message')}"


#: A control page checked in the same run: a link without href, as the sanitiser used to
#: leave one. The checker must report it, or a clean result would prove nothing.
CONTROL = '<!doctype html><html lang="nb"><title>x</title><p><a rel="nofollow">Klikk</a>'


@pytest.mark.timeout(600)
def test_the_nu_html_checker_finds_no_error_on_any_page(demo_site, tmp_path):
    theme_files = sorted(demo_site.glob("static/*.css")) + sorted(demo_site.glob("static/*.svg"))
    files = pages(demo_site)
    assert len(files) > 60 and len(theme_files) == 2
    control = tmp_path / "control.html"
    control.write_text(CONTROL, encoding="utf-8")
    messages = nu_messages([*files, *theme_files, control])
    caught = [m for m in messages if checked_file(m) == control]
    assert any(m["type"] == "error" and "href" in m["message"] for m in caught), caught
    site = [m for m in messages if checked_file(m) != control]
    errors = [shown(m, demo_site) for m in site if m["type"] in ("error", "non-document-error")]
    warnings = [shown(m, demo_site) for m in site if m.get("subType") == "warning"]
    print(f"\nNu Html Checker: {len(files)} pages, {len(errors)} errors, {len(warnings)} warnings")
    print("\n".join(warnings))
    assert errors == []


# -- Lighthouse ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_site(tmp_path_factory) -> Iterator[tuple[Path, str]]:
    """The demo built for the address it is served from (see the module's docstring)."""
    folder = tmp_path_factory.mktemp("lighthouse")
    handler = functools.partial(StaticHost, directory=str(folder / "site"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    (folder / "catalog.toml").write_text(f'[site]\nbase_url = "{base}"\n', encoding="utf-8")
    build_demo(folder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder / "site", base
    finally:
        server.shutdown()
        server.server_close()


def lighthouse(url: str, name: str) -> dict:
    """Lighthouse's JSON report for ``url`` (SEO and accessibility only)."""
    node = need_program("node", "install Node.js 18 or newer")
    need(LIGHTHOUSE, "run .ci/run, or npm install --prefix .ci/tools lighthouse@12.2.3")
    need(Path(CHROMIUM), "install Debian's chromium (apt install chromium)")
    result = subprocess.run(
        [node, str(LIGHTHOUSE), url, "--quiet", "--output=json", "--output-path=stdout",
         f"--only-categories={','.join(CATEGORIES)}",
         f"--chrome-flags={LIGHTHOUSE_CHROME_FLAGS}"],
        capture_output=True, text=True, timeout=240, env={**os.environ, "CHROME_PATH": CHROMIUM},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"lighthouse-{name}.json").write_text(result.stdout, encoding="utf-8")
    return report


def failing_audits(report: dict, category: str) -> list[str]:
    audits = report["audits"]
    found = []
    for ref in report["categories"][category]["auditRefs"]:
        audit = audits[ref["id"]]
        if ref["weight"] and audit["score"] is not None and audit["score"] < 1:
            items = json.dumps(audit.get("details", {}).get("items", []), ensure_ascii=False)
            found.append(f"{audit['id']}: {audit['title']} {audit.get('explanation', '')} {items}")
    return found


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ["home", "course"])
def test_lighthouse_scores_seo_and_accessibility_at_100(served_site, name):
    site, base = served_site
    url = base + ("" if name == "home" else first(site, "kurs/*"))
    report = lighthouse(url, name)
    assert report["finalDisplayedUrl"] == url and not report.get("runtimeError"), report.get(
        "runtimeError"
    )
    scores = {c: report["categories"][c]["score"] for c in CATEGORIES}
    problems = {c: failing_audits(report, c) for c in CATEGORIES}
    assert scores == {"seo": 1, "accessibility": 1}, problems
    # The audits the issue was about ran on this page rather than being skipped.
    audits = report["audits"]
    for audit in ("meta-description", "canonical", "is-crawlable", "link-text", "color-contrast"):
        assert audits[audit]["scoreDisplayMode"] == "binary", (audit, audits[audit])
        assert audits[audit]["score"] == 1, audit


def test_sanitised_broken_provider_html_passes_the_nu_html_checker(tmp_path):
    """Provider HTML that browsers accept but whose tree breaks a content model (a table in
    a <b>, list items outside a list…) comes out of the sanitiser valid: each text on a page
    of its own, checked by the Nu Html Checker, and the same texts unsanitised as a control
    the checker must fault."""
    from catalog_gen.site.sanitize import sanitize_html
    from tests.test_sanitize import BROKEN

    def page(name: str, body: str) -> Path:
        path = tmp_path / f"{name}.html"
        path.write_text(
            f'<!doctype html><html lang="nb"><title>x</title><div class="prose">{body}</div>',
            encoding="utf-8",
        )
        return path

    cleaned = [page(f"clean-{n}", sanitize_html(markup)) for n, markup in enumerate(BROKEN)]
    raw = [page(f"raw-{n}", markup) for n, markup in enumerate(BROKEN)]
    messages = nu_messages([*cleaned, *raw])
    errors = {checked_file(m).name for m in messages if m["type"] == "error"}
    assert errors >= {f"raw-{n}.html" for n in (0, 1, 2, 3, 5)}  # the checker sees them
    assert not [name for name in errors if name.startswith("clean-")], sorted(errors)
