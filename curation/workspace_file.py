"""Is this file a Distill workspace? Checked before and right after DuckDB opens it.

DuckDB 2.0 opens more than its own files: given a JSON lines, CSV or Parquet file it makes an in-memory database
with a view of it, and every write is lost when the process ends (an import reported success, and ``stats`` then
showed 0 records). So an existing file must start like a DuckDB file (bytes 8-11 are ``DUCK``, after the header
block's checksum), the database DuckDB opened must be backed by that file, and a DuckDB file without our
``schema_migrations`` table must be empty: Distill does not add its tables to someone else's database.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from curation.errors import UserError

DUCKDB_MAGIC_AT = 8
DUCKDB_MAGIC = b"DUCK"

# Leading bytes of files people name by mistake, and what to call them.
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"PK\x03\x04", "a zip archive"),
    (b"ARROW1", "an Arrow file"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
)
_SNIFF_BYTES = 8192
EMPTY = "an empty file"


def _looks_like_text(head: bytes) -> str:
    text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    if "\x00" in text or text.count("\ufffd") > 4:  # a cut multi-byte character at the end is one replacement
        return "binary data"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "blank text"
    first = lines[0]
    if first.startswith("{"):
        return "JSON lines" if first.endswith("}") or len(lines) == 1 else "JSON"
    if first.startswith("["):
        return "a JSON array"
    if "\t" in first:
        return "tab-separated text"
    if "," in first and len(lines) > 1:
        return "CSV"
    return "text"


def sniff(path: Path) -> str | None:
    """None if ``path`` starts like a DuckDB database file; else a few words saying what it looks like."""
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if head[DUCKDB_MAGIC_AT : DUCKDB_MAGIC_AT + len(DUCKDB_MAGIC)] == DUCKDB_MAGIC:
        return None
    if not head:
        return EMPTY
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return _looks_like_text(head)


def check_before_open(path: Path) -> None:
    """Refuse an existing file that is not a DuckDB database, saying what it looks like."""
    kind = sniff(path)
    if kind is not None:
        what = "it is empty: 0 bytes" if kind == EMPTY else f"it looks like {kind}"
        raise UserError(f"{path} is not a Distill workspace ({what}); name a new or existing .duckdb workspace file")


def check_after_open(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a database that is not backed by ``path``, or a DuckDB file that holds someone else's tables."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    if not row or not row[0][0]:
        raise UserError(f"{path} is not a Distill workspace (DuckDB opened it in memory: every write would be lost)")
    if con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = 'schema_migrations'"
    ).fetchall()[0][0]:
        return
    theirs = [
        r[0]
        for r in con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION ALL SELECT schema_name || '.' || view_name FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal "
            "UNION ALL SELECT schema_name || '.' || sequence_name FROM duckdb_sequences() "
            "WHERE database_name = current_database() ORDER BY 1"
        ).fetchall()
    ]
    if theirs:
        shown = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
        raise UserError(
            f"{path} is a DuckDB database but not a Distill workspace (it holds {shown}); Distill will not add its "
            "tables to another database: name a new workspace file"
        )


def damaged(path: Path, detail: str) -> str:
    """The message for a workspace file DuckDB cannot read (truncated, overwritten)."""
    return (
        f"workspace {path} is damaged ({detail}); restore it from a backup into a new file "
        f"(`distill restore BACKUP -w NEW.duckdb`) or re-import its source files into a new workspace"
    )
