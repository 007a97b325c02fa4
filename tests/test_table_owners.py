"""One owner per table: every write statement in the product's source targets a table its module may write
(``curation.table_owners``), and that map covers exactly the workspace's tables."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from curation.table_owners import ALSO_WRITTEN_BY, DYNAMIC_WRITERS, OWNERS, may_write
from curation.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("curation", "train", "distill", "studio")  # bench/ and tests/ build their fixtures by hand
# A statement that changes a table's rows or shape, and the name after it ("{" when the name is computed).
WRITE = re.compile(
    r"\b(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|(?<!DO\s)UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|MERGE\s+INTO|COPY"
    r"|(?:CREATE\s+(?:OR\s+REPLACE\s+)?|DROP\s+|ALTER\s+)TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?)\s+\"?(\{|\w+)",
    re.IGNORECASE,
)


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every string literal (implicit concatenation already joined; an f-string's fields as "{")."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{" for v in node.values)
    # (an f-string's constant parts are also visited on their own; they only repeat a write already seen)


def writes(path: Path) -> Iterator[tuple[int, str]]:
    """(line, target) for each write statement in a module's string literals."""
    for line, text in _strings(ast.parse(path.read_text(encoding="utf-8"))):
        for m in WRITE.finditer(text):
            yield line, m.group(1)


def _sources() -> list[Path]:
    return [
        p
        for top in PACKAGES
        for p in sorted((ROOT / top).rglob("*.py"))
        if not p.relative_to(ROOT).as_posix().startswith("curation/migrations/")
    ]


def _tables(tmp_path: Path) -> set[str]:
    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        rows = ws.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' AND table_type = 'BASE TABLE'"
        )
    return {str(r[0]) for r in rows}


def test_every_workspace_table_has_one_owner(tmp_path: Path) -> None:
    assert set(OWNERS) == _tables(tmp_path)
    for table, module in OWNERS.items():
        assert (ROOT / module).exists(), f"{table}: owner {module} does not exist"
    for (table, module), why in ALSO_WRITTEN_BY.items():
        assert table in OWNERS and (ROOT / module).exists() and why


def test_each_module_writes_only_the_tables_it_may(tmp_path: Path) -> None:
    tables = _tables(tmp_path)
    bad: list[str] = []
    used: set[tuple[str, str]] = set()
    dynamic: set[str] = set()
    for path in _sources():
        module = path.relative_to(ROOT).as_posix()
        for line, target in writes(path):
            if target == "{":
                dynamic.add(module)
                if module not in DYNAMIC_WRITERS:
                    bad.append(f"{module}:{line}: writes a table named at run time (declare it in DYNAMIC_WRITERS)")
            elif target in tables:
                if not may_write(module, target):
                    bad.append(f"{module}:{line}: writes {target}, owned by {OWNERS.get(target)}")
                used.update((t, m) for (t, m) in ALSO_WRITTEN_BY if t == target and module.startswith(m))
    assert not bad, "\n".join(bad)
    # An exception nobody needs any more goes from the map, so the map stays the truth.
    assert set(ALSO_WRITTEN_BY) == used, f"unused exceptions: {sorted(set(ALSO_WRITTEN_BY) - used)}"
    assert set(DYNAMIC_WRITERS) == dynamic


def test_no_layer_writes_another_layers_tables() -> None:
    for table, module in ALSO_WRITTEN_BY:
        assert module.split("/")[0] == OWNERS[table].split("/")[0], (table, module)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('cur.execute("INSERT INTO input_requests (slice, n) VALUES (?, ?)")', ["input_requests"]),
        ('cur.execute("UPDATE runs SET " "status = ?")', ["runs"]),
        ('cur.execute(f"DELETE FROM \\"{table}\\" WHERE x")', ["{"]),
        ('cur.execute("INSERT OR REPLACE INTO settings VALUES (?)")', ["settings"]),
        ('cur.execute("INSERT INTO t SELECT 1 ON CONFLICT (k) DO UPDATE SET v = 1")', ["t"]),
        ('"""Reads eval_slices; an UPDATE of rows costs 4 s."""', ["of"]),
    ],
)
def test_the_scan_finds_write_statements(tmp_path: Path, source: str, expected: list[str]) -> None:
    path = tmp_path / "m.py"
    path.write_text(source + "\n")
    assert [t for _, t in writes(path)] == expected
