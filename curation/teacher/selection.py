"""Which records a generation run works on: those without a response, a slice, a SQL filter, or given ids.

Records are read as they are now (``curation.effective``: the slice under the active slicing and the reviewer's
relabel, the edited response); a SQL filter is written against the same column names as the studio's. Records that
already hold an output from the teacher being run are always left out, so a re-run only does what is left.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from curation.effective import effective_sql
from curation.errors import UserError
from curation.sql_guard import validate_where
from curation.workspace import Workspace


@dataclass
class Selection:
    """A set of records. With nothing set: every record whose response is still NULL."""

    missing: bool = True
    slice: str | None = None
    where: str | None = None
    record_ids: list[int] | None = None
    limit: int | None = None

    def describe(self) -> dict[str, Any]:
        """The selection as plain data (stored with the run)."""
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}


def select_records(ws: Workspace, teacher: str, sel: Selection) -> list[tuple[int, list[dict[str, Any]]]]:
    """``(record_id, messages)`` for the selected records lacking an output from ``teacher``, by record id."""
    conds = ["NOT EXISTS (SELECT 1 FROM teacher_outputs o WHERE o.record_id = b.record_id AND o.teacher = ?)"]
    params: list[Any] = [teacher]
    if sel.missing:
        conds.append("b.response IS NULL")
    if sel.slice is not None:
        conds.append("b.slice = ?")
        params.append(sel.slice)
    if sel.record_ids is not None:
        conds.append("b.record_id IN (SELECT unnest(?))")
        params.append(list(sel.record_ids))
    if sel.where:
        conds.append(validate_where(ws, sel.where, *effective_sql(ws)))  # guarded, parenthesised
    if sel.limit is not None and sel.limit < 0:
        raise UserError("--limit must be >= 0")
    limit = f" LIMIT {int(sel.limit)}" if sel.limit is not None else ""
    where = " AND ".join(conds)
    base, base_params = effective_sql(ws)
    rows = ws.query(
        f"SELECT b.record_id, CAST(b.messages AS VARCHAR) FROM ({base}) b WHERE {where} ORDER BY b.record_id{limit}",
        [*base_params, *params],
    )
    return [(int(rid), json.loads(m)) for rid, m in rows]
