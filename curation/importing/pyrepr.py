"""Python-repr lines (``{'a': 1, 'ok': True}``, what ``print(dict)`` writes), converted to JSON only when asked.

By default such a line is quarantined with ``REPR_REASON``. ``distill import --accept-python-repr`` converts it with
``ast.literal_eval`` (literals only: it never runs code, unlike ``eval``), after checking its nesting (the parser
recurses per level), and marks the record: its metadata gets ``CONVERTED_KEY: "python_repr"``, so
``--where "metadata->>'_converted_from' = 'python_repr'"`` finds them.
"""

from __future__ import annotations

import ast
import json

from curation.importing.nesting import too_deep

REPR_REASON = (
    "not JSON: looks like a Python dict repr (single quotes, True/None); write it with json.dumps "
    "(or import with --accept-python-repr)"
)
CONVERTED_KEY = "_converted_from"
CONVERTED_MARK = json.dumps({CONVERTED_KEY: "python_repr"})
NOT_LITERAL = "not JSON: a Python repr with more than literals (only dicts, lists, strings, numbers, True/False/None)"
NOT_JSON_VALUE = "not JSON: a Python repr with values JSON cannot hold (sets, bytes, NaN, tuple keys)"
NOT_OBJECT = "not JSON: a Python repr of something other than a dict"


def convert(line: str, max_depth: int) -> tuple[str | None, str | None]:
    """(the line as JSON text, None) or (None, why it cannot be converted). Never evaluates code."""
    if too_deep(line.encode("utf-8", "surrogateescape"), max_depth, python=True):
        return None, f"nested deeper than {max_depth} levels"
    try:
        value = ast.literal_eval(line.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None, NOT_LITERAL
    if not isinstance(value, dict):
        return None, NOT_OBJECT
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False), None
    except (ValueError, TypeError, RecursionError):
        return None, NOT_JSON_VALUE
