"""Validation of user-written SQL filter clauses: read-only, this workspace's tables only.

A clause is wrapped into ``SELECT 1 FROM (<base>) b WHERE (<clause>)`` and parsed by DuckDB itself
(``json_serialize_sql``), which only serialises SELECT statements. The parse tree must hold exactly one
statement, reference only tables of this workspace and call no function that reads files or the environment.
Then the statement is bound once (LIMIT 0) so unknown columns surface as a clear error before any paging.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from curation.errors import UserError
from curation.workspace import Workspace

# Scalar or table functions that reach outside the workspace (files, URLs, environment, dynamic SQL).
_FORBIDDEN_FUNCTIONS = {
    "read_text", "read_blob", "glob", "getenv", "query", "query_table", "sniff_csv", "read_csv", "read_csv_auto",
    "read_json", "read_json_auto", "read_ndjson", "read_ndjson_auto", "read_parquet", "parquet_scan",
    "parquet_metadata", "parquet_schema", "parquet_file_metadata", "parquet_kv_metadata", "read_json_objects",
    "read_ndjson_objects", "iceberg_scan", "delta_scan", "sqlite_scan", "postgres_scan", "current_setting",
    "duckdb_secrets", "which_secret",
}  # fmt: skip


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every dict in a parse tree."""
    found: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _tables(ws: Workspace) -> set[str]:
    rows = ws.query("SELECT lower(table_name) FROM information_schema.tables WHERE table_schema = 'main'")
    return {r[0] for r in rows}


def validate_where(ws: Workspace, clause: str, base_sql: str) -> str:
    """Return ``clause`` stripped if it is a safe, valid boolean expression over ``base_sql``; else raise UserError."""
    text = clause.strip().rstrip(";").strip()
    if not text:
        raise UserError("the WHERE clause is empty")
    wrapped = f"SELECT 1 FROM ({base_sql}) b WHERE ({text})"
    cur = ws.cursor()
    try:
        doc = json.loads(cur.execute("SELECT json_serialize_sql(?)", [wrapped]).fetchall()[0][0])
    finally:
        cur.close()
    if doc.get("error"):
        message = doc.get("error_message", "cannot parse")
        if doc.get("error_type") == "not implemented":
            message = "only a read-only condition is allowed (no writes, ATTACH, COPY, PRAGMA or SET)"
        raise UserError(f"bad WHERE clause: {message}")
    if len(doc.get("statements", [])) != 1:
        raise UserError("bad WHERE clause: exactly one condition, no ';' separated statements")
    allowed = _tables(ws)
    for node in _walk(doc["statements"]):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            raise UserError("bad WHERE clause: table functions (reading files) are not allowed")
        if kind == "BASE_TABLE":
            name = str(node.get("table_name", "")).lower()
            if node.get("catalog_name") or node.get("schema_name") not in ("", "main", None) or name not in allowed:
                raise UserError(f"bad WHERE clause: only this workspace's tables can be read, not {name!r}")
        fn = node.get("function_name")
        if isinstance(fn, str) and (fn.lower() in _FORBIDDEN_FUNCTIONS or fn.lower().startswith("read_")):
            raise UserError(f"bad WHERE clause: function {fn}() is not allowed")
    cur = ws.cursor()
    try:
        cur.execute(wrapped + " LIMIT 0").fetchall()
    except duckdb.Error as exc:
        raise UserError(f"bad WHERE clause: {str(exc).splitlines()[0]}") from None
    finally:
        cur.close()
    return text
