"""A workspace is a DuckDB file of ours: data files, other databases and names DuckDB treats specially are refused."""

from __future__ import annotations

import gzip
import os
import sqlite3
from pathlib import Path

import duckdb
import pytest

from curation.errors import UserError
from curation.workspace import Workspace


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b'{"a": 1}\n{"a": 2}\n', "JSON lines"),
        (b'\xef\xbb\xbf{"a": 1}\n', "JSON lines"),
        (b'{\n  "a": 1\n}\n', "JSON"),
        (b'[{"a": 1}, {"a": 2}]', "a JSON array"),
        (b"prompt,response\nhi,hello\n", "CSV"),
        (b"prompt\tresponse\nhi\thello\n", "tab-separated text"),
        (b"just some notes\n", "text"),
        # mtime=0: the same test id in every pytest-xdist worker
        (gzip.compress(b'{"a": 1}\n', mtime=0), "gzip-compressed data"),
        (b"PAR1" + bytes(100), "a Parquet file"),
        (b"\x00\x01\x02\xff" * 50, "binary data"),
        (b"", "an empty file"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_sniff_names_what_a_file_looks_like(tmp_path: Path, content: bytes, kind: str) -> None:
    from curation.workspace_file import sniff

    path = tmp_path / "f"
    path.write_bytes(content)
    assert sniff(path) == kind


def test_sniff_knows_sqlite_and_duckdb(tmp_path: Path) -> None:
    from curation.workspace_file import sniff

    sqlite3.connect(tmp_path / "s.db").execute("CREATE TABLE t (a)").connection.commit()
    assert sniff(tmp_path / "s.db") == "an SQLite database"
    duckdb.connect(str(tmp_path / "d.duckdb")).close()
    assert sniff(tmp_path / "d.duckdb") is None


@pytest.mark.parametrize("name", ["b.jsonl", "b.csv", "b.parquet"])
def test_a_data_file_is_never_opened_as_a_workspace(tmp_path: Path, name: str) -> None:
    """DuckDB would open these as an in-memory database with a view of the file: every write lost."""
    src = duckdb.connect()
    path = tmp_path / name
    fmt = {"b.jsonl": "json", "b.csv": "csv", "b.parquet": "parquet"}[name]
    src.execute(f"COPY (SELECT 'hi' AS prompt, 'hello' AS response) TO '{path}' (FORMAT {fmt})")
    before = path.read_bytes()
    with pytest.raises(UserError, match=rf"^{name} is not a Distill workspace|{path} is not a Distill workspace"):
        Workspace.open(path)
    assert path.read_bytes() == before


def test_special_names_are_plain_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """':memory:' (or 'md:x') names a file in the current folder, not an in-memory or cloud database."""
    monkeypatch.chdir(tmp_path)
    with Workspace.open(":memory:") as ws:
        ws.set_setting("k", 1)
    with Workspace.open(":memory:") as ws:
        assert ws.get_setting("k") == 1
    assert (tmp_path / ":memory:").is_file()


def test_another_programs_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA billing; CREATE TABLE billing.invoices (id INT); CREATE SEQUENCE s")
    con.close()
    with pytest.raises(UserError, match=r"not a Distill workspace \(it holds billing\.invoices, main\.s\)"):
        Workspace.open(path)
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchall() == [(1,)]


def test_an_empty_duckdb_file_becomes_a_workspace(tmp_path: Path) -> None:
    path = tmp_path / "fresh.duckdb"
    duckdb.connect(str(path)).close()
    with Workspace.open(path) as ws:
        assert ws.schema_version() == Workspace.code_schema_version()


def test_a_truncated_workspace_names_the_file_and_the_way_back(tmp_path: Path) -> None:
    path = tmp_path / "ws.duckdb"
    Workspace.open(path).close()
    os.truncate(path, 20_000)  # the headers and a little more: the catalogue is cut
    with pytest.raises(UserError, match=r"workspace .*ws\.duckdb is damaged \(the file ends early.*distill restore"):
        Workspace.open(path)


def test_a_missing_default_workspace_names_the_ones_beside_it(tmp_path: Path) -> None:
    # `distill demo` makes ./demo.duckdb while the CLI's default is ./distill.duckdb: say which ones are here.
    Workspace.open(tmp_path / "demo.duckdb", service=False).close()
    with pytest.raises(UserError, match=r"no workspace at .*distill\.duckdb.*workspaces here: demo\.duckdb"):
        Workspace.open(tmp_path / "distill.duckdb", create=False, service=False)
