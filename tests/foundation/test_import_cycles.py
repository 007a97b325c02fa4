"""No import cycles among the importer's modules (a cycle hid load.py's mixed concerns: issue 16, item 7)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def module_imports(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` (dotted) and the modules of the same package it imports, at any level."""
    folder = ROOT / package.replace(".", "/")
    names = {p.stem for p in folder.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == package:
                deps |= {a.name for a in node.names if a.name in names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package + "."):
                deps.add(node.module.removeprefix(package + ".").split(".")[0])
            elif isinstance(node, ast.Import):
                deps |= {a.name.removeprefix(package + ".") for a in node.names if a.name.startswith(package + ".")}
        graph[path.stem] = deps - {path.stem}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_find_cycle_sees_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_importer_has_no_import_cycle() -> None:
    graph = module_imports("curation.importing")
    assert {"load", "fast", "careful", "plan"} <= set(graph)
    assert find_cycle(graph) is None


def project_imports() -> dict[str, set[str]]:
    """Every module of the project's packages (dotted) and the project modules it imports, at any level."""
    paths = {}
    for top in ("curation", "train", "studio", "distill", "sample_data"):
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:  # `from pkg import mod` imports the module, `from mod import x` the module
                    full = f"{node.module}.{a.name}"
                    deps.add(full if full in paths else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[name] = {d for d in deps if d in paths} - {name}
    return graph


def test_the_project_has_no_import_cycle() -> None:
    """Across curation, train, studio, distill and sample_data (the CLI's curate group had one, wired through
    ``globals()``)."""
    graph = project_imports()
    assert {"distill.commands.dedupe", "curation.options", "studio.widgets.option_form"} <= set(graph)
    assert find_cycle(graph) is None
