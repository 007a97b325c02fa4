"""Validation of user-written SQL: a filter clause or an expression that only reads this workspace's rows.

The text is wrapped into a SELECT over the rows it will run on (``SELECT 1 FROM (<base>) b WHERE (\\n<clause>\\n)``)
and parsed by DuckDB itself (``json_serialize_sql``, which only serialises SELECT statements). The parse tree must
hold exactly one statement that reads only this workspace's tables, calls no table function and only functions on
the allow-list (``curation.sql_functions``: a function DuckDB adds later is refused until reviewed). DuckDB's own
tokenizer then checks the text is one expression: every parenthesis it closes it opened, so ``1=1) OR (true`` cannot
reach past the parentheses it is placed in. The text goes on its own lines, so a ``--`` comment ends before the
closing parenthesis. Last, the statement is bound once (LIMIT 0) so unknown columns surface before any paging.

Callers splice the returned *guarded form* (the clause inside its parentheses and newlines) exactly where it was
checked: ``FROM (<base>) b WHERE <guarded>``, or ``CAST(<guarded> AS VARCHAR)`` over ``records r``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb

from curation.errors import UserError
from curation.sql_functions import ALLOWED
from curation.workspace import Workspace

# The expression a slicing computes per record, and the rows it reads (see ``curation.slices``).
EXPRESSION_CONTEXT = "SELECT CAST({expr} AS VARCHAR) FROM records r"


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


def _parse(ws: Workspace, sql: str) -> dict[str, Any]:
    cur = ws.cursor()
    try:
        return json.loads(cur.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    finally:
        cur.close()


def _check_tree(ws: Workspace, doc: dict[str, Any], what: str) -> None:
    if doc.get("error"):
        message = doc.get("error_message", "cannot parse")
        if doc.get("error_type") == "not implemented":
            message = "only a read-only condition is allowed (no writes, ATTACH, COPY, PRAGMA or SET)"
        raise UserError(f"bad {what}: {message}")
    if len(doc.get("statements", [])) != 1:
        raise UserError(f"bad {what}: exactly one condition, no ';' separated statements")
    allowed = _tables(ws)
    for node in _walk(doc["statements"]):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            raise UserError(f"bad {what}: table functions (reading files) are not allowed")
        if kind == "BASE_TABLE":
            name = str(node.get("table_name", "")).lower()
            if node.get("catalog_name") or node.get("schema_name") not in ("", "main", None) or name not in allowed:
                raise UserError(f"bad {what}: only this workspace's tables can be read, not {name!r}")
        fn = node.get("function_name")
        if isinstance(fn, str) and fn.lower() not in ALLOWED:
            raise UserError(
                f"bad {what}: function {fn}() is not allowed (only functions that read the rows and change nothing)"
            )


def _check_one_expression(text: str, what: str) -> None:
    """Refuse text whose parentheses close more than it opened (it would reach past the ones it is placed in)."""
    tokens = duckdb.tokenize(text)
    depth = 0
    for i, (start, kind) in enumerate(tokens):
        if kind != duckdb.token_type.operator:
            continue
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(text)
        for ch in text[start:end]:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth < 0:
                raise UserError(f"bad {what}: a ')' at character {start + 1} closes more than the condition opened")
    if depth:
        raise UserError(f"bad {what}: {depth} '(' never closed")


def _bind(ws: Workspace, sql: str, what: str, params: Sequence[Any] = ()) -> None:
    cur = ws.cursor()
    try:
        cur.execute(sql + " LIMIT 0", list(params)).fetchall()
    except duckdb.Error as exc:
        raise UserError(f"bad {what}: {str(exc).splitlines()[0]}") from None
    finally:
        cur.close()


def _guard(ws: Workspace, text: str, statement: str, what: str, params: Sequence[Any] = ()) -> None:
    doc = _parse(ws, statement)
    if doc.get("error"):
        _check_one_expression(text, what)  # a stray ')' says so, rather than "syntax error at or near ')'"
    _check_tree(ws, doc, what)
    _check_one_expression(text, what)
    _bind(ws, statement, what, params)


def _clean(text: str, what: str) -> str:
    out = text.strip().rstrip(";").strip()
    if not out:
        raise UserError(f"the {what} is empty")
    return out


def validate_where(ws: Workspace, clause: str, base_sql: str, params: Sequence[Any] = ()) -> str:
    """The guarded form of ``clause`` if it is a safe, valid condition over ``base_sql``; else raise UserError.

    Splice the result as ``FROM (<base_sql>) b WHERE <result>`` (alone or joined to other conditions by AND).
    ``params``: the values of ``base_sql``'s ``?`` placeholders.
    """
    guarded = "(\n" + _clean(clause, "WHERE clause") + "\n)"
    _guard(ws, guarded[2:-2], f"SELECT 1 FROM ({base_sql}) b WHERE {guarded}", "WHERE clause", params)
    return guarded


def validate_expression(ws: Workspace, expr: str) -> str:
    """The guarded form of a per-record expression over ``records r`` (``EXPRESSION_CONTEXT``); else UserError."""
    guarded = "(\n" + _clean(expr, "SQL expression") + "\n)"
    _guard(ws, guarded[2:-2], EXPRESSION_CONTEXT.format(expr=guarded), "SQL expression")
    return guarded
