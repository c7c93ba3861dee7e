"""docs/architecture.md says only what the code does: each structural claim is checked here or
by a contract of ``lint-imports`` (pyproject.toml), and the page's layers are those contracts."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "catalog_gen"
PAGE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "importlinter"
]["contracts"]


def _modules() -> list[str]:
    """Every module of the package, as the page names them (``site/rules.py``, ``cli.py``)."""
    return sorted(
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py" and p.name != "__main__.py"
    )


def _layer_blocks() -> dict[str, list[str]]:
    """The page's ```text blocks of layers, by container (``catalog_gen.site``)."""
    blocks = {}
    for block in re.findall(r"```text\n(.*?)```", PAGE, re.S):
        head, *lines = block.strip().splitlines()
        blocks[head.strip().rstrip("/").replace("/", ".")] = [line.strip() for line in lines]
    return blocks


def _table(heading: str) -> list[list[str]]:
    """The rows of the first table under ``## heading``, as lists of cells."""
    section = PAGE.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def _code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_contracts_hold():
    linter = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert linter, "import-linter is in the test extra"
    result = subprocess.run([linter], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize("contract", [c for c in CONTRACTS if c["type"] == "layers"])
def test_the_pages_layers_are_the_contracts_layers(contract):
    (container,) = contract["containers"]
    assert _layer_blocks()[container] == contract["layers"]
    assert contract.get("exhaustive"), "every module of the package is in its layers"


def test_every_layer_contract_is_on_the_page():
    on_page = set(_layer_blocks())
    assert on_page == {c["containers"][0] for c in CONTRACTS if c["type"] == "layers"}


def test_the_halves_never_import_each_other_and_keep_to_their_tools():
    from importlinter.contracts import layers

    # The page's legend: "|" joins modules of a layer that never import each other.
    assert layers._INDEPENDENT_LAYER_DELIMITER == "|"
    assert "`|` joins modules of one layer that never import each other" in " ".join(PAGE.split())
    (top,) = [c for c in CONTRACTS if c.get("containers") == ["catalog_gen"]]
    assert "source | site | demo" in top["layers"]
    forbidden = {
        c["source_modules"][0]: set(c["forbidden_modules"])
        for c in CONTRACTS
        if c["type"] == "forbidden"
    }
    assert forbidden["catalog_gen.site"] >= {"httpx", "httpcore", "http", "socket", "ssl"}
    assert forbidden["catalog_gen.source"] >= {"jinja2", "markdown", "nh3"}


def test_a_build_that_does_not_fetch_does_not_import_the_http_client():
    assert "(an offline build) does not import the HTTP client" in " ".join(PAGE.split())
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, catalog_gen.cli, catalog_gen.build; print(*sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "catalog_gen.build" in loaded and "catalog_gen.site.generate" in loaded
    assert not {"httpx", "httpcore", "catalog_gen.source.fetch"} & set(loaded)


def test_the_module_table_names_every_module_once():
    named = []
    for first, _ in _table("The modules"):
        (name,) = _code(first)
        named.append(name)
    packages = {m.split("/")[0] + "/" for m in _modules() if "/" in m}
    expected = [m for m in _modules() if "/" not in m or m.split("/")[0] + "/" not in named]
    assert sorted(n for n in named if n not in packages) == sorted(expected)
    assert len(named) == len(set(named))


def _run_build() -> ast.FunctionDef:
    tree = ast.parse((PACKAGE / "build.py").read_text(encoding="utf-8"))
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run_build")


def _own_functions() -> set[str]:
    tree = ast.parse((PACKAGE / "build.py").read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def _steps(function: ast.FunctionDef) -> list[ast.Call]:
    """Every call of build.py's own functions in ``function``, wherever it stands (an
    assignment, a condition, a ``with``), but those inside another such call's arguments (a
    helper of a step), in the order they come."""
    own = _own_functions()

    def calls(node: ast.AST) -> list[ast.Call]:
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in own:
            return [node]  # a step: its arguments are its own business
        return [call for child in ast.iter_child_nodes(node) for call in calls(child)]

    return sorted(calls(function), key=lambda call: (call.lineno, call.col_offset))


def test_the_steps_table_is_run_build_step_by_step():
    in_code = [call.func.id for call in _steps(_run_build())]
    on_page = [_code(first)[0] for first, _ in _table("One build, as named steps")]
    assert on_page == in_code


def test_only_the_first_step_is_given_the_api_access():
    """``access`` (the API's address and key) reaches ``fetch_or_reuse``; ``verify`` gets
    only the keys, to look for them in the site; no other step sees it, however wrapped."""

    def reads_access(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Name) and n.id == "access" for n in ast.walk(node))

    given = {call.func.id: call for call in _steps(_run_build()) if reads_access(call)}
    assert set(given) == {"fetch_or_reuse", "verify"}
    (keys,) = given["verify"].args
    assert isinstance(keys, ast.Call) and getattr(keys.func, "id", None) == "api_keys"
    assert _code(_table("One build, as named steps")[0][0])[0] == "fetch_or_reuse"


def _callers(method: str) -> set[tuple[str, str]]:
    """(module, function) of every call of ``method`` (by name) in the package."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "attr", getattr(node.func, "id", None))
                    if name == method:
                        found.add((path.relative_to(PACKAGE).as_posix(), function.name))
    return found


def test_one_module_asks_whether_a_file_must_be_written_again():
    assert {module for module, _ in _callers("unchanged")} == {"site/generate.py"}


def test_only_decide_asks_whether_the_whole_build_can_stop():
    assert _callers("build_inputs") == {("build.py", "decide")}


def _named_by(name: str) -> set[str]:
    """Every module of the package that names ``name`` in its code (a call, a reference
    handed on, a base class), but where it is defined."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Name) and node.id == name) or (
                isinstance(node, ast.Attribute) and node.attr == name
            ):
                found.add(path.relative_to(PACKAGE).as_posix())
    return found


def test_the_model_cache_the_search_index_and_the_spare_each_have_one_maker():
    assert _named_by("ModelCache") == {"site/generate.py", "site/warm.py"}
    assert _callers("ModelCache") == {("site/generate.py", "__init__")}
    assert _named_by("index_site") == {"build.py"}
    assert _callers("Publisher") == {("build.py", "staging")}
    assert _callers("course_pages_done") == {("site/generate.py", "course_pages_in")}


def _imported(module: str) -> object:
    """The module the page names by its path (``site/rules.py``, ``serve/__init__.py``)."""
    dotted = "catalog_gen." + module.removesuffix(".py").replace("/", ".")
    return importlib.import_module(dotted.removesuffix(".__init__"))


def _resolves(name: str) -> bool:
    """A dotted name on the page (``config.SitePaths``, ``BuildState.unchanged``,
    ``serve.open_preview``) names something that exists."""
    head, *rest = name.split(".")
    modules = {m.removesuffix(".py").replace("/", ".").split(".")[-1]: m for m in _modules()} | {
        "serve": "serve/__init__.py"
    }
    if head in modules:
        target: object = _imported(modules[head])
    else:  # a class: look for it in every module
        owners = []
        for module in _modules():
            imported = _imported(module)
            if head in vars(imported) and getattr(imported, head).__module__ == imported.__name__:
                owners.append(getattr(imported, head))
        if len(owners) != 1:
            return False
        target = owners[0]
    for part in rest:
        if not hasattr(target, part):
            return False
        target = getattr(target, part)
    return True


def _named_in_page() -> list[str]:
    prose = re.sub(r"```.*?```", "", PAGE, flags=re.S)  # the layer blocks have their own test
    return sorted(set(re.findall(r"`([^`\n]+)`", prose)))


@pytest.mark.parametrize("name", _named_in_page())
def test_every_file_and_name_the_page_gives_exists(name):
    """Each thing in code type on the page is a file, a module, a name of the package, a
    command or option, a library or a tool that exists; anything new must be classified."""
    if name in ("|", "#:"):  # the notation the page explains
        return
    if name == "catalog.toml":  # a project's file; the config module reads it
        assert (PACKAGE / "config.py").read_text(encoding="utf-8").count(name)
    elif name.endswith("/") or re.search(r"\.(py|md|toml)$", name):
        assert (PACKAGE / name).exists() or (ROOT / name).exists(), name
    elif name.startswith("--"):
        assert name in _options(), name
    elif name.startswith("python -m "):
        module = name.removeprefix("python -m ")
        assert (ROOT / (module.replace(".", "/") + ".py")).exists(), name
    elif name.startswith("[tool."):
        table: object = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        for key in name.strip("[]").split("."):
            assert isinstance(table, dict) and key in table, name
            table = table[key]
    elif name == "lint-imports":
        assert shutil.which(name, path=str(Path(sys.executable).parent)), name
    elif re.fullmatch(r"[a-z_]+\(\.\.\.\)", name):  # setting(...)
        assert _defined_somewhere(name.removesuffix("(...)")), name
    elif re.fullmatch(r"[A-Za-z_]+(\.[A-Za-z_]+)+", name):
        assert _resolves(name), name
    elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        assert (
            (PACKAGE / name).is_dir()  # a subpackage: source, site, demo
            or _defined_somewhere(name)
            or name in _commands()
            or importlib.util.find_spec(name) is not None  # a library: httpx, jinja2
        ), name
    else:
        pytest.fail(f"{name!r}: the page names something this test cannot check")


def _commands() -> set[str]:
    from catalog_gen.cli import cli

    return set(cli.commands)


def _options() -> set[str]:
    from catalog_gen.cli import cli

    found = {opt for param in cli.params for opt in param.opts}
    for command in cli.commands.values():
        found |= {opt for param in command.params for opt in param.opts}
    return found


def _defined_somewhere(name: str) -> bool:
    """A bare name on the page (``SitePaths``, ``index_site``) is defined in the package."""
    for module in _modules():
        imported = _imported(module)
        if name in vars(imported):
            return True
    return False
