"""Layering: the domain (curation, train) never imports Textual; the studio never imports DuckDB itself."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules_after_import(*packages: str) -> set[str]:
    code = "import importlib, json, pkgutil, sys\n"
    code += f"for top in {packages!r}:\n"
    code += (
        "    try:\n        pkg = importlib.import_module(top)\n    except ModuleNotFoundError:\n        continue\n"
        "    for info in pkgutil.walk_packages(pkg.__path__, top + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT)},
    )
    return set(json.loads(out.stdout))


def test_curation_and_train_never_import_textual() -> None:
    loaded = _modules_after_import("curation", "train")
    assert "curation.workspace" in loaded
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}


@pytest.mark.parametrize("path", sorted((ROOT / "studio").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_studio_source_never_imports_duckdb(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        assert not any(n == "duckdb" or n.startswith("duckdb.") for n in names), f"{path} imports duckdb"
