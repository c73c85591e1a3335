"""The package's layout: no import cycle between voxcause modules, even through function-level imports; one
home for each shared helper; no dead code (vulture, with the framework hooks listed in .vulture_whitelist.py).

Imports under ``if TYPE_CHECKING:`` are annotations only and do not count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "core" / "voxcause"


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the voxcause modules it imports anywhere in its body (TYPE_CHECKING blocks excluded)."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {
            id(sub)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for sub in ast.walk(node)
        }
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        edges = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    edges.add(full if full in modules else target)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "voxcause.outputs" in graph["voxcause.explanation"]  # Explanation.save: a function-level import
    assert "voxcause.explanation" not in graph["voxcause.outputs"]  # annotations only (TYPE_CHECKING)


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_model_loading_dispatch_sits_above_both_loaders():
    graph = import_graph()
    assert {"voxcause.models.loaded", "voxcause.models.nnunet"} <= graph["voxcause.models.load"]
    assert "voxcause.models.nnunet" not in graph["voxcause.models.loaded"]


def test_the_version_has_one_home():
    graph = import_graph()
    readers = {name for name, edges in graph.items() if "voxcause._version" in edges}
    assert {"voxcause", "voxcause.cli.main", "voxcause.batch.job", "voxcause.findings.findings",
            "voxcause.explanation", "voxcause.io.dicom_out"} <= readers
    assert not any("voxcause" in edges for edges in graph.values())  # nothing imports the package root


def test_json_conversion_has_one_home():
    """`jsonable` / `dumps` live in voxcause.jsonio only; no module keeps a private copy."""
    copies = {
        _module(path): node.name
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.name in ("jsonable", "_jsonable", "dumps")
    }
    assert set(copies) == {"voxcause.jsonio"}, copies


def test_no_dead_code():
    """Vulture finds nothing unused in the shipped code beyond the whitelisted framework hooks and test kit."""
    pytest.importorskip("vulture")
    done = subprocess.run(
        [sys.executable, "-m", "vulture", "core", "monailabel_app", "slicer_extension", ".vulture_whitelist.py",
         "--min-confidence", "60"],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=300,
    )
    assert done.returncode == 0 and not done.stdout.strip(), (
        "unused code (delete it; list a framework hook in .vulture_whitelist.py):\n" + done.stdout + done.stderr
    )


def test_the_causal_engine_modules_stay_small():
    """One job per module (issue 22): the engine is split by stage, none over 450 lines."""
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in (PACKAGE / "causal").glob("*.py")}
    assert max(sizes.values()) <= 450, sizes


#: The packages docs/design.md describes module by module (the others in one row of the module map).
DESCRIBED_MODULE_BY_MODULE = ("models", "causal", "io", "cli", "evaluate", "saliency")


def test_design_module_map_names_every_module():
    """docs/design.md's module map stays true to the package: every top-level module and package of
    core/voxcause has a row, and every module of the packages it describes module by module is named."""
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    table = design[design.index("| module | owns |"):design.index("### The Slicer module")]
    missing = []
    for path in sorted(PACKAGE.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        if path.is_dir() and (path / "__init__.py").exists():
            if f"`{path.name}/`" not in table:
                missing.append(f"{path.name}/")
            if path.name in DESCRIBED_MODULE_BY_MODULE:
                missing += [f"{path.name}/{sub.name}" for sub in sorted(path.glob("*.py"))
                            if not sub.name.startswith("_") and sub.stem not in design]
        elif path.suffix in (".py", ".json") and f"`{path.name}`" not in table:
            missing.append(path.name)
    assert not missing, f"add these to docs/design.md's module map: {missing}"
