"""Workspace overview numbers for the studio's first screen: counts, slices, batches, quarantine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curation.browse import BASE_SQL
from curation.workspace import Workspace


@dataclass
class SliceCount:
    """Records in one (effective) slice, and how many of them are accepted."""

    slice: str
    records: int
    accepted: int
    rejected: int


@dataclass
class Overview:
    """Headline numbers of a workspace."""

    records: int
    with_response: int
    reviewed: int
    accepted: int
    rejected: int
    quarantined: int
    slices: list[SliceCount] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)


def workspace_overview(ws: Workspace) -> Overview:
    """Counts, the slice distribution (production vs accepted) and the import batches."""
    cur = ws.cursor()
    try:
        head = cur.execute(
            "SELECT count(*), count(response), count(*) FILTER (WHERE status IN ('accepted', 'rejected')), "
            "count(*) FILTER (WHERE status = 'accepted'), count(*) FILTER (WHERE status = 'rejected') "
            f"FROM ({BASE_SQL}) b"
        ).fetchall()[0]
        slices = cur.execute(
            "SELECT slice, count(*), count(*) FILTER (WHERE status = 'accepted'), "
            f"count(*) FILTER (WHERE status = 'rejected') FROM ({BASE_SQL}) b GROUP BY slice ORDER BY 2 DESC, 1"
        ).fetchall()
        quarantined = cur.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
        res = cur.execute(
            "SELECT batch_id, source_file, format, started_at, n_lines, n_imported, n_duplicates, n_quarantined, "
            "status FROM import_batches ORDER BY batch_id DESC LIMIT 200"
        )
        names = [d[0] for d in res.description]
        batches = [dict(zip(names, r, strict=True)) for r in res.fetchall()]
    finally:
        cur.close()
    return Overview(
        records=int(head[0]),
        with_response=int(head[1]),
        reviewed=int(head[2]),
        accepted=int(head[3]),
        rejected=int(head[4]),
        quarantined=int(quarantined),
        slices=[SliceCount(s, int(n), int(a), int(r)) for s, n, a, r in slices],
        batches=batches,
    )


def quarantine_page(ws: Workspace, *, offset: int = 0, limit: int = 200) -> list[dict[str, Any]]:
    """One page of quarantined lines with their reasons, newest batch first."""
    cur = ws.cursor()
    try:
        res = cur.execute(
            "SELECT batch_id, source_file, line_no, field, reason, left(raw, 300) AS raw FROM quarantine "
            "ORDER BY batch_id DESC, line_no LIMIT ? OFFSET ?",
            [int(limit), int(offset)],
        )
        names = [d[0] for d in res.description]
        return [dict(zip(names, r, strict=True)) for r in res.fetchall()]
    finally:
        cur.close()
