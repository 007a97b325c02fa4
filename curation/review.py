"""Review decisions: accept, reject, edit, relabel, queue, undo, and their bulk versions over a filter.

Every decision is appended to ``review_events`` and the record's current state in ``reviews`` is recomputed
from its events that are not undone, in one transaction per decision: a crash loses at most the decision in
flight. Edits never touch ``records.response``; the teacher's original stays beside ``reviews.edited_response``.

Folding rules (also used after undo): the status is the last accept/reject/queue/edit (an edit means the
reviewer stands behind the corrected answer, so it counts as accepted); the edited response is the last edit;
the slice override is the last relabel; a record whose every event is undone has no review row.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from curation.browse import ALL_RECORDS, RecordFilter, select_filtered
from curation.errors import UserError
from curation.reviewer_sql import DECIDES, STATUS_OF
from curation.workspace import Workspace

ACTIONS = ("accept", "reject", "edit", "relabel", "queue")

# Rebuild ``reviews`` rows for the records selected by {affected} (a subquery yielding record_id).
_REFOLD_DELETE = "DELETE FROM reviews WHERE record_id IN ({affected})"
_REFOLD_INSERT = f"""
INSERT INTO reviews (record_id, status, reason, edited_response, slice_override, reviewer, updated_at)
SELECT record_id,
       coalesce(arg_max({STATUS_OF}, event_id) FILTER (WHERE {DECIDES}), 'needs_review'),
       arg_max(reason, event_id) FILTER (WHERE {DECIDES}),
       arg_max(new_response, event_id) FILTER (WHERE action = 'edit'),
       arg_max(new_slice, event_id) FILTER (WHERE action = 'relabel'),
       arg_max(reviewer, event_id),
       max(created_at)
FROM review_events
WHERE NOT undone AND record_id IN ({{affected}})
GROUP BY record_id
"""


@dataclass(frozen=True)
class Decision:
    """One stored decision (a single action, or a whole bulk action when ``bulk_id`` is set)."""

    event_id: int | None
    action: str
    count: int
    bulk_id: int | None
    reviewer: str


@dataclass(frozen=True)
class UndoResult:
    """What an undo reverted."""

    action: str | None
    count: int
    record_ids: list[int]


def reviewer_name() -> str:
    """``$DISTILL_REVIEWER``, else the OS user name."""
    name = os.environ.get("DISTILL_REVIEWER")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers): still record something honest
        return "unknown"


def _refold(cur: duckdb.DuckDBPyConnection, affected: str, params: list[Any]) -> None:
    cur.execute(_REFOLD_DELETE.format(affected=affected), params)
    cur.execute(_REFOLD_INSERT.format(affected=affected), params)


def _decide(
    ws: Workspace,
    record_id: int,
    action: str,
    *,
    reason: str | None = None,
    new_response: str | None = None,
    new_slice: str | None = None,
    reviewer: str | None = None,
) -> Decision:
    who = reviewer or reviewer_name()
    with ws.transaction() as cur:
        if not cur.execute("SELECT 1 FROM records WHERE record_id = ?", [int(record_id)]).fetchall():
            raise UserError(f"no record {record_id}")
        event_id = cur.execute(
            "INSERT INTO review_events (record_id, action, reason, new_response, new_slice, reviewer, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING event_id",
            [int(record_id), action, reason, new_response, new_slice, who, datetime.now()],
        ).fetchall()[0][0]
        _refold(cur, "SELECT ?", [int(record_id)])
    return Decision(int(event_id), action, 1, None, who)


def accept(ws: Workspace, record_id: int, *, reviewer: str | None = None) -> Decision:
    """Accept the record's (effective) response."""
    return _decide(ws, record_id, "accept", reviewer=reviewer)


def reject(ws: Workspace, record_id: int, reason: str, *, reviewer: str | None = None) -> Decision:
    """Reject the record, with a reason."""
    if not reason or not reason.strip():
        raise UserError("a rejection needs a reason")
    return _decide(ws, record_id, "reject", reason=reason.strip(), reviewer=reviewer)


def edit(ws: Workspace, record_id: int, new_response: str, *, reviewer: str | None = None) -> Decision:
    """Replace the response with a corrected one (the teacher's original is kept in ``records``)."""
    if new_response is None or not new_response.strip():
        raise UserError("an edited response cannot be empty")
    return _decide(ws, record_id, "edit", new_response=new_response, reviewer=reviewer)


def relabel(ws: Workspace, record_id: int, new_slice: str, *, reviewer: str | None = None) -> Decision:
    """Move the record to another slice."""
    if not new_slice or not new_slice.strip():
        raise UserError("a slice name cannot be empty")
    return _decide(ws, record_id, "relabel", new_slice=new_slice.strip(), reviewer=reviewer)


def queue(ws: Workspace, record_id: int, reason: str | None = None, *, reviewer: str | None = None) -> Decision:
    """Mark the record as needing review (again)."""
    return _decide(ws, record_id, "queue", reason=reason, reviewer=reviewer)


def _bulk(
    ws: Workspace,
    filt: RecordFilter,
    action: str,
    *,
    reason: str | None = None,
    new_slice: str | None = None,
    reviewer: str | None = None,
) -> Decision:
    who = reviewer or reviewer_name()
    chosen, params = select_filtered(ws, filt, "record_id, ?, ?, ?, ?, ?, ?")
    with ws.transaction() as cur:
        bulk_id = int(cur.execute("SELECT coalesce(max(bulk_id), 0) + 1 FROM review_events").fetchall()[0][0])
        cur.execute(
            "INSERT INTO review_events (record_id, action, reason, new_slice, reviewer, created_at, bulk_id) " + chosen,
            [action, reason, new_slice, who, datetime.now(), bulk_id, *params],
        )
        n = int(cur.execute("SELECT count(*) FROM review_events WHERE bulk_id = ?", [bulk_id]).fetchall()[0][0])
        if n == 0:
            return Decision(None, action, 0, None, who)
        _refold(cur, "SELECT record_id FROM review_events WHERE bulk_id = ?", [bulk_id])
    return Decision(None, action, n, bulk_id, who)


def bulk_accept(ws: Workspace, filt: RecordFilter, *, reviewer: str | None = None) -> Decision:
    """Accept every record matching ``filt``; one bulk action (undone as a whole)."""
    return _bulk(ws, filt, "accept", reviewer=reviewer)


def bulk_reject(ws: Workspace, filt: RecordFilter, reason: str, *, reviewer: str | None = None) -> Decision:
    """Reject every record matching ``filt`` with one reason."""
    if not reason or not reason.strip():
        raise UserError("a rejection needs a reason")
    return _bulk(ws, filt, "reject", reason=reason.strip(), reviewer=reviewer)


def bulk_relabel(ws: Workspace, filt: RecordFilter, new_slice: str, *, reviewer: str | None = None) -> Decision:
    """Move every record matching ``filt`` to ``new_slice``."""
    if not new_slice or not new_slice.strip():
        raise UserError("a slice name cannot be empty")
    return _bulk(ws, filt, "relabel", new_slice=new_slice.strip(), reviewer=reviewer)


def bulk_queue(
    ws: Workspace, filt: RecordFilter, reason: str | None = None, *, reviewer: str | None = None
) -> Decision:
    """Mark every record matching ``filt`` as needing review."""
    return _bulk(ws, filt, "queue", reason=reason, reviewer=reviewer)


def queue_records(cur: duckdb.DuckDBPyConnection, record_ids: Sequence[int], reason: str, reviewer: str) -> int | None:
    """Inside the caller's transaction: queue these records for review as one bulk action (a machine's flag, e.g. a
    filter's), folded like any decision; return the bulk id (None when there is nothing to queue). The caller leaves
    out records a human already accepted or rejected."""
    if not record_ids:
        return None
    import pyarrow as pa

    bulk_id = int(cur.execute("SELECT coalesce(max(bulk_id), 0) + 1 FROM review_events").fetchall()[0][0])
    cur.register("_queue_ids", pa.table({"record_id": pa.array(record_ids, pa.int64())}))
    try:
        cur.execute(
            "INSERT INTO review_events (record_id, action, reason, reviewer, created_at, bulk_id) "
            "SELECT record_id, 'queue', ?, ?, ?, ? FROM _queue_ids",
            [reason, reviewer, datetime.now(), bulk_id],
        )
    finally:
        cur.unregister("_queue_ids")
    _refold(cur, "SELECT record_id FROM review_events WHERE bulk_id = ?", [bulk_id])
    return bulk_id


def undo(ws: Workspace, event_id: int | None = None, *, reviewer: str | None = None) -> UndoResult:
    """Undo one decision: ``event_id``, or the latest one not yet undone (by ``reviewer`` when given).

    An event that belongs to a bulk action undoes the whole bulk action. Returns what was reverted
    (count 0 when there is nothing to undo).
    """
    with ws.transaction() as cur:
        if event_id is None:
            sql = "SELECT event_id, action, bulk_id FROM review_events WHERE NOT undone"
            params: list[Any] = []
            if reviewer:
                sql += " AND reviewer = ?"
                params.append(reviewer)
            rows = cur.execute(sql + " ORDER BY event_id DESC LIMIT 1", params).fetchall()
        else:
            rows = cur.execute(
                "SELECT event_id, action, bulk_id FROM review_events WHERE event_id = ? AND NOT undone", [event_id]
            ).fetchall()
        if not rows:
            return UndoResult(None, 0, [])
        eid, action, bulk_id = rows[0]
        if bulk_id is not None:
            selector, sel_params = "SELECT record_id FROM review_events WHERE bulk_id = ?", [bulk_id]
            cur.execute("UPDATE review_events SET undone = true WHERE bulk_id = ?", [bulk_id])
        else:
            selector, sel_params = "SELECT record_id FROM review_events WHERE event_id = ?", [eid]
            cur.execute("UPDATE review_events SET undone = true WHERE event_id = ?", [eid])
        ids = [int(r[0]) for r in cur.execute(selector + " LIMIT 1000", sel_params).fetchall()]
        n = int(cur.execute(f"SELECT count(*) FROM ({selector})", sel_params).fetchall()[0][0])
        _refold(cur, selector, sel_params)
    return UndoResult(str(action), n, ids)


def last_undoable(ws: Workspace, *, reviewer: str | None = None) -> dict[str, Any] | None:
    """The decision ``undo()`` would revert now, for confirmations ("undo accept of record 12?")."""
    sql = "SELECT event_id, record_id, action, bulk_id, reviewer, created_at FROM review_events WHERE NOT undone"
    params: list[Any] = []
    if reviewer:
        sql += " AND reviewer = ?"
        params.append(reviewer)
    rows = ws.query_dicts(sql + " ORDER BY event_id DESC LIMIT 1", params)
    return rows[0] if rows else None


@dataclass(frozen=True)
class SliceProgress:
    """Review progress of one (effective) slice."""

    slice: str
    total: int
    reviewed: int  # accepted or rejected
    accepted: int
    rejected: int

    @property
    def remaining(self) -> int:
        return self.total - self.reviewed


def progress_by_slice(ws: Workspace, filt: RecordFilter = ALL_RECORDS) -> list[SliceProgress]:
    """Reviewed / remaining per slice among the records matching ``filt`` (largest slices first)."""
    sql, params = select_filtered(
        ws,
        filt,
        "slice, count(*), count(*) FILTER (WHERE status IN ('accepted', 'rejected')), "
        "count(*) FILTER (WHERE status = 'accepted'), count(*) FILTER (WHERE status = 'rejected')",
    )
    rows = ws.query(sql + " GROUP BY slice ORDER BY 2 DESC, 1", params)
    return [SliceProgress(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]
