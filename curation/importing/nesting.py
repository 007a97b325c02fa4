"""How deep a JSON (or Python repr) line nests, without parsing it: deep lines crash recursive parsers.

Python's ``json`` and ``ast`` recurse once per level and fail past the interpreter's recursion limit (1,000 frames,
shared with the caller's stack): a line nested 10,000 deep raised RecursionError from format sniffing. Lines are
measured here first. Real logs nest under 20 levels (tool schemas included), so the limit is generous.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

MAX_DEPTH = 100

# A JSON string (with escapes) or one bracket. Strings are matched whole so their brackets don't count.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)
_REPR_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|\'(?:[^\'\\]|\\.)*(?:\'|\\?\Z)|[\[\](){}]', re.DOTALL)
_OPEN = frozenset(b"[{(")


def too_deep(line: bytes, limit: int = MAX_DEPTH, *, python: bool = False) -> bool:
    """Whether ``line`` nests deeper than ``limit`` (brackets inside strings don't count).

    ``python`` also counts parentheses and single-quoted strings (a Python repr).
    """
    if line.count(b"[") + line.count(b"{") + (line.count(b"(") if python else 0) <= limit:
        return False
    return _scan(line, limit, python)[0]


def open_brackets(line: bytes) -> int:
    """How many brackets are still open at the end of ``line`` (0 for a whole JSON value)."""
    return _scan(line, None, False)[1]


def _scan(line: bytes, limit: int | None, python: bool) -> tuple[bool, int]:
    """(went deeper than ``limit``, depth at the end). An unclosed string runs to the end of the line."""
    depth = 0
    for m in (_REPR_TOKENS if python else _TOKENS).finditer(line):
        tok = m.group()
        if len(tok) != 1:
            continue
        if tok[0] in _OPEN:
            depth += 1
            if limit is not None and depth > limit:
                return True, depth
        else:
            depth -= 1
    return False, depth


def deep_lines(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, limit: int = MAX_DEPTH) -> np.ndarray:
    """A boolean per line (``data[starts[i]:ends[i]]``): does it nest deeper than ``limit``?

    Only lines with more than ``limit`` opening brackets can; those few are measured exactly (``too_deep``). The
    count is one pass over the chunk: ``b | 0x20`` maps ``[`` to ``{``, so one comparison finds both.
    """
    import numpy as np  # here: detecting a format (the CLI's start) needs no numpy

    out = np.zeros(len(starts), bool)
    full = np.flatnonzero(ends > starts)  # reduceat needs increasing start offsets inside the data
    if len(full) == 0:
        return out
    opens = ((data | 0x20) == 0x7B).view(np.uint8)
    counts = np.add.reduceat(opens, starts[full], dtype=np.int64)  # up to the next line's start: only newlines
    for i in full[counts > limit]:
        out[i] = too_deep(data[starts[i] : ends[i]].tobytes(), limit)
    return out
