"""The package's layers: each subpackage imports only its own layer and the ones below it, no
module imports itself back through a cycle, and pages reach the pipeline only through the public
API, the presentation layer and the store (so a page cannot grow statistics of its own)."""

from __future__ import annotations

import ast
from pathlib import Path

import pipelines

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pipelines"
LAYERS = ["core", "scheme", "stats", "ranking", "synth", "store", "results", "ingest", "present",
          "exports"]
ROOT_MODULES = {"__init__", "__main__", "cli", "serve"}   # the public face and the entry points
PAGE_ALLOWED = ("pipelines.present", "pipelines.store")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every pipelines module a file imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pipelines":
                found.update(f"pipelines.{alias.name}" for alias in node.names)
            elif node.module.startswith("pipelines."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pipelines"))
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 2 and parts[1] in LAYERS else None


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_only_the_public_face_and_entry_points_at_the_package_root():
    loose = {p.stem for p in PACKAGE.glob("*.py")} - ROOT_MODULES
    assert not loose, f"modules at pipelines/ root: {sorted(loose)}"
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(LAYERS)


def test_no_upward_imports():
    wrong = []
    for module, path in _modules().items():
        here = _layer(module + ".x") if module.count(".") == 1 else _layer(module)
        if here is None:
            continue
        for target in _imports(path):
            there = _layer(target if target.count(".") > 1 else target + ".x")
            if target == "pipelines" or (there is not None and there > here):
                wrong.append(f"{module} → {target}")
    assert not wrong, wrong


def test_no_import_cycles():
    modules = _modules()
    graph = {m: {t for t in _imports(p) if t in modules} for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " → ".join(trail[trail.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_pages_use_the_public_api_present_and_store_only():
    wrong = []
    for path in [ROOT / "app.py", *(ROOT / "pages").glob("*.py")]:
        for target in _imports(path):
            names_public = target.startswith("pipelines.") and target.count(".") == 1 \
                and target.split(".")[1] in pipelines.__all__
            if not (names_public or target.startswith(PAGE_ALLOWED)):
                wrong.append(f"{path.name} → {target}")
    assert not wrong, wrong


def test_public_api_names_resolve():
    for name in pipelines.__all__:
        assert getattr(pipelines, name) is not None, name


def test_every_page_first_checks_it_runs_inside_the_entry_file():
    """A page's first statement after its imports is require_entry(): on a fresh `streamlit run
    app.py` server a bookmarked deep link would otherwise run the page without app.py."""
    wrong = []
    for path in sorted((ROOT / "pages").glob("*.py")):
        if path.name.startswith("_"):
            continue
        body = [n for n in ast.parse(path.read_text()).body
                if not isinstance(n, ast.Import | ast.ImportFrom)
                and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        first = body[0] if body else None
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Call)
                and getattr(first.value.func, "id", "") == "require_entry"):
            wrong.append(path.name)
    assert not wrong, f"pages that do not call require_entry() first: {wrong}"
