"""Paged, filtered views of a workspace's records for browsing and review.

Every read is bounded: ``count_records`` answers "M", ``fetch_page`` returns at most ``limit`` rows, moving by
keyset (after / before a row's sort key) for sequential paging and by OFFSET only for random jumps. Records are
seen as they are now (``curation.effective``: the slice under the active slicing and the reviewer's relabel, the
edited response, the review status); users' WHERE clauses are written against that relation's column names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from curation import search
from curation.effective import effective_sql
from curation.errors import UserError
from curation.reviewer_sql import CONFLICT_IDS, PENDING_FOR_IDS
from curation.sql_guard import validate_where
from curation.teacher_answers import DISTINCT_ANSWERS_SQL, TeacherAnswer, record_answers
from curation.workspace import Workspace

# Sort orders: name -> (label, leading sort expression). record_id always breaks ties, so keys are unique.
ORDERS: dict[str, tuple[str, str]] = {
    "import": ("import order", "record_id"),
    "confidence": ("lowest confidence first", "coalesce(mean_logprob, 'infinity'::DOUBLE)"),
    "slice": ("by slice", "slice"),
    # Most distinct teachers' answers first (curation.teacher_answers); records one teacher answered come last.
    "disagree": ("teachers disagree first", f"-{DISTINCT_ANSWERS_SQL.format(rid='b.record_id')}"),
    # The review queue's own order: records flagged for review (a filter queued them, a reviewer marked them) before
    # the unreviewed rest, each part lowest confidence first (mean_logprob <= 0, so 1e6 keeps the parts apart).
    "queue": (
        "flagged first, then lowest confidence",
        "(status <> 'needs_review')::DOUBLE * 1e6 + coalesce(mean_logprob, 1e5)",
    ),
}

PENDING = ("unreviewed", "needs_review")  # what the review queue shows


@dataclass(frozen=True)
class RecordFilter:
    """Which records to show. Empty tuples / None mean "no restriction"."""

    slices: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    min_confidence: float | None = None  # exp(mean token logprob), 0..1
    max_confidence: float | None = None
    batch_ids: tuple[int, ...] = ()
    text: str | None = None  # case-insensitive substring of prompt or effective response
    where: str | None = None  # a read-only SQL boolean expression over curation.effective's columns
    verifier: str | None = None  # "failed" (some filter/verifier check failed) | "passed" (checked, none failed)
    pending_for: str | None = None  # only records assigned to this reviewer that they have not decided yet
    conflicts: bool = False  # only records on which reviewers' verdicts differ

    def describe(self) -> str:
        """A short human label for status lines and bulk confirmations."""
        parts: list[str] = []
        if self.slices:
            parts.append("slice=" + ",".join(self.slices))
        if self.statuses:
            parts.append("status=" + ",".join(self.statuses))
        if self.min_confidence is not None or self.max_confidence is not None:
            lo = "0" if self.min_confidence is None else f"{self.min_confidence:g}"
            hi = "1" if self.max_confidence is None else f"{self.max_confidence:g}"
            parts.append(f"confidence {lo}..{hi}")
        if self.batch_ids:
            parts.append("batch=" + ",".join(str(b) for b in self.batch_ids))
        if self.text:
            parts.append(f"text~{self.text!r}")
        if self.where:
            parts.append(f"where {self.where}")
        if self.verifier:
            parts.append(f"verifier {self.verifier}")
        if self.pending_for:
            parts.append(f"assigned to {self.pending_for}")
        if self.conflicts:
            parts.append("conflicts")
        return " ".join(parts) or "all records"


ALL_RECORDS = RecordFilter()


@dataclass(frozen=True)
class RecordRow:
    """One line of the records list; ``key`` is its position in the chosen order (for keyset paging)."""

    record_id: int
    slice: str
    status: str
    confidence: float | None
    prompt: str
    response: str | None
    batch_id: int
    edited: bool
    key: tuple[Any, ...]


@dataclass
class RecordDetail:
    """Everything about one record for the detail pane."""

    record_id: int
    batch_id: int
    source_file: str | None
    source_line: int | None
    messages: list[dict[str, Any]]
    response: str | None
    original_response: str | None
    logprobs: list[dict[str, Any]] | None
    confidence: float | None
    min_logprob: float | None
    slice: str
    original_slice: str
    reference: str | None
    metadata: dict[str, Any] | None
    teacher_model: str | None
    status: str
    reason: str | None
    reviewer: str | None
    reviewed_at: Any
    events: list[dict[str, Any]] = field(default_factory=list)
    answers: list[TeacherAnswer] = field(default_factory=list)  # every teacher's answer, the record's own first
    comments: list[dict[str, Any]] = field(default_factory=list)  # reviewers' comments, oldest first


def filter_sql(ws: Workspace, filt: RecordFilter) -> tuple[str, list[Any]]:
    """The WHERE clause (over curation.effective's columns, alias-free) and its parameters for ``filt``."""
    conds: list[str] = []
    params: list[Any] = []
    if filt.slices:
        conds.append("slice IN (SELECT unnest(?))")
        params.append(list(filt.slices))
    if filt.statuses:
        conds.append("status IN (SELECT unnest(?))")
        params.append(list(filt.statuses))
    if filt.min_confidence is not None:
        conds.append("confidence >= ?")
        params.append(float(filt.min_confidence))
    if filt.max_confidence is not None:
        conds.append("confidence <= ?")
        params.append(float(filt.max_confidence))
    if filt.batch_ids:
        conds.append("batch_id IN (SELECT unnest(?))")
        params.append([int(b) for b in filt.batch_ids])
    if filt.text:
        search.refresh(ws)  # records newer than the search index join it first
        text_cond, text_params = search.condition(filt.text)
        conds.append(text_cond)
        params += text_params
    if filt.verifier:
        # Results of curation's filters/verifiers (schema v4); empty until one has run.
        if (
            not ws.table_exists("filter_results")
            or ws.scalar("SELECT count(*) FROM (FROM filter_results LIMIT 1)") == 0
        ):
            raise UserError("no verifier results in this workspace yet (run a filter first)")
        failed = "SELECT record_id FROM filter_results WHERE NOT ok"
        if filt.verifier == "failed":
            conds.append(f"record_id IN ({failed})")
        elif filt.verifier == "passed":
            conds.append(f"record_id IN (SELECT record_id FROM filter_results) AND record_id NOT IN ({failed})")
        else:
            raise UserError(f"unknown verifier filter {filt.verifier!r}; use failed or passed")
    if filt.pending_for:
        conds.append(f"record_id IN ({PENDING_FOR_IDS})")
        params += [filt.pending_for, filt.pending_for]
    if filt.conflicts:
        conds.append(f"record_id IN ({CONFLICT_IDS})")
    if filt.where and filt.where.strip():
        conds.append(validate_where(ws, filt.where, *effective_sql(ws)))  # guarded, parenthesised
    return (" AND ".join(conds) or "true"), params


def records_from(ws: Workspace) -> tuple[str, list[Any]]:
    """``(<records now>) b`` for a FROM clause, and its parameters (they come before the WHERE clause's)."""
    base, params = effective_sql(ws)
    return f"({base}) b", params


def select_filtered(ws: Workspace, filt: RecordFilter, select: str) -> tuple[str, list[Any]]:
    """``SELECT {select} FROM <records now> WHERE <filt>`` and its parameters (``select`` may hold none)."""
    where, params = filter_sql(ws, filt)
    frm, base_params = records_from(ws)
    return f"SELECT {select} FROM {frm} WHERE {where}", [*base_params, *params]


def _run(ws: Workspace, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Run a read on its own cursor (callers may be worker threads); SQL errors from user clauses become UserError."""
    cur = ws.cursor()
    try:
        return cur.execute(sql, params).fetchall()
    except duckdb.Error as exc:
        raise UserError(f"query failed: {str(exc).splitlines()[0]}") from None
    finally:
        cur.close()


def count_records(ws: Workspace, filt: RecordFilter = ALL_RECORDS) -> int:
    """How many records match ``filt``."""
    sql, params = select_filtered(ws, filt, "count(*)")
    return int(_run(ws, sql, params)[0][0])


def fetch_page(
    ws: Workspace,
    filt: RecordFilter = ALL_RECORDS,
    order: str = "import",
    *,
    after: tuple[Any, ...] | None = None,
    before: tuple[Any, ...] | None = None,
    offset: int | None = None,
    from_end: bool = False,
    limit: int = 100,
) -> list[RecordRow]:
    """Up to ``limit`` rows in ``order``: after/before a key (keyset), at an offset, or the last ones (``from_end``).

    Rows always come back in ascending order, whichever direction they were fetched in.
    """
    if order not in ORDERS:
        raise UserError(f"unknown order {order!r}; choose one of {', '.join(ORDERS)}")
    where, params = filter_sql(ws, filt)
    lead = ORDERS[order][1]
    backward = before is not None or from_end
    for key, op in ((after, ">"), (before, "<")):
        if key is None:
            continue
        if lead == "record_id":  # a plain range on the primary key prunes row groups; a row comparison does not
            where += f" AND record_id {op} ?"
            params.append(key[1])
        else:
            where += f" AND ({lead}, record_id) {op} (?, ?)"
            params += list(key)
    direction = "DESC" if backward else "ASC"
    # Two phases: order only the keys (cheap columns) to find the page, then read the wide columns of those rows.
    # Sorting 1M rows with their text attached costs ~10x more than sorting ids.
    frm, base_params = records_from(ws)
    sql = (
        f"SELECT record_id, {lead} AS k FROM {frm} WHERE {where} ORDER BY k {direction}, record_id {direction} LIMIT ?"
    )
    params = [*base_params, *params, int(limit)]
    if offset is not None and not backward:
        sql += " OFFSET ?"
        params.append(max(0, int(offset)))
    keys = _run(ws, sql, params)
    if backward:
        keys.reverse()
    if not keys:
        return []
    ids = [int(k[0]) for k in keys]
    select = "record_id, slice, status, confidence, left(prompt, 300), left(response, 300), batch_id, edited"
    frm, base_params = records_from(ws)
    rows = _run(
        ws,
        f"SELECT {select} FROM {frm} WHERE record_id IN (SELECT unnest(?)) AND record_id BETWEEN ? AND ?",
        [*base_params, ids, min(ids), max(ids)],
    )
    by_id = {int(r[0]): r for r in rows}
    out: list[RecordRow] = []
    for rid, k in keys:
        r = by_id.get(int(rid))
        if r is None:  # deleted between the two reads (an import undone): skip it
            continue
        out.append(
            RecordRow(
                record_id=int(r[0]),
                slice=r[1],
                status=r[2],
                confidence=r[3],
                prompt=r[4] or "",
                response=r[5],
                batch_id=int(r[6]),
                edited=bool(r[7]),
                key=(k, int(rid)),
            )
        )
    return out


def position_of(ws: Workspace, filt: RecordFilter, order: str, key: tuple[Any, ...]) -> int:
    """0-based position of the row with ``key`` in the filtered, ordered list (rows before it)."""
    where, params = filter_sql(ws, filt)
    lead = ORDERS[order][1]
    frm, base_params = records_from(ws)
    sql = f"SELECT count(*) FROM {frm} WHERE {where} AND ({lead}, record_id) < (?, ?)"
    return int(_run(ws, sql, [*base_params, *params, *key])[0][0])


def get_record(ws: Workspace, record_id: int) -> RecordDetail:
    """The full record with its review state and decision history."""
    cols = (
        "record_id, batch_id, source_file, source_line, messages, response, original_response, response_logprobs, "
        "confidence, min_logprob, slice, original_slice, reference, metadata, teacher_model, status, reason, "
        "reviewer, reviewed_at"
    )
    frm, base_params = records_from(ws)
    rows = _run(ws, f"SELECT {cols} FROM {frm} WHERE record_id = ?", [*base_params, int(record_id)])
    if not rows:
        raise UserError(f"no record {record_id}")
    r = rows[0]
    events = _run(
        ws,
        "SELECT event_id, action, reason, new_slice, reviewer, created_at, bulk_id, undone FROM review_events "
        "WHERE record_id = ? ORDER BY event_id",
        [int(record_id)],
    )
    names = ("event_id", "action", "reason", "new_slice", "reviewer", "created_at", "bulk_id", "undone")
    notes = _run(
        ws,
        "SELECT reviewer, body, created_at FROM review_comments WHERE record_id = ? ORDER BY comment_id",
        [int(record_id)],
    )
    return RecordDetail(
        record_id=int(r[0]),
        batch_id=int(r[1]),
        source_file=r[2],
        source_line=r[3],
        messages=json.loads(r[4]) if r[4] else [],
        response=r[5],
        original_response=r[6],
        logprobs=json.loads(r[7]) if r[7] else None,
        confidence=r[8],
        min_logprob=r[9],
        slice=r[10],
        original_slice=r[11],
        reference=r[12],
        metadata=json.loads(r[13]) if r[13] else None,
        teacher_model=r[14],
        status=r[15],
        reason=r[16],
        reviewer=r[17],
        reviewed_at=r[18],
        events=[dict(zip(names, e, strict=True)) for e in events],
        answers=record_answers(ws, int(record_id)),
        comments=[{"reviewer": c[0], "body": c[1], "created_at": c[2]} for c in notes],
    )


def slice_names(ws: Workspace) -> list[str]:
    """Every effective slice name, alphabetically."""
    frm, params = records_from(ws)
    return [r[0] for r in _run(ws, f"SELECT DISTINCT slice FROM {frm} ORDER BY 1", params)]


def batch_ids(ws: Workspace) -> list[int]:
    """Every import batch id that still has records."""
    return [int(r[0]) for r in _run(ws, "SELECT DISTINCT batch_id FROM records ORDER BY 1", [])]
