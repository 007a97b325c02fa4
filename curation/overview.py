"""Workspace overview numbers for the studio's first screen: counts, slices, batches, quarantine.

Records are counted as they are now (``curation.effective``), so the production shares compare with a dataset
version's shares made under the same slicing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curation.effective import effective_sql
from curation.slices import total_variation
from curation.workspace import Workspace


@dataclass
class SliceCount:
    """Records in one (effective) slice, and how many of them are accepted."""

    slice: str
    records: int
    accepted: int
    rejected: int
    synthetic: int = 0  # records with origin = 'synthetic' (teacher-made inputs), not production traffic


@dataclass
class DatasetComparison:
    """Production's slice shares against one dataset version's (train side, weight x copies)."""

    version: str
    versions: list[str]  # every version, newest first (to choose another)
    production: dict[str, float]  # share of production (non-synthetic) records per effective slice
    dataset: dict[str, float]
    tv_distance: float  # total-variation distance: half the sum of absolute share differences, 0..1
    n_train: int


def production_shares(slices: list[SliceCount]) -> dict[str, float]:
    """Each slice's share of production records (synthetic ones excluded: they are not production traffic)."""
    total = sum(s.records - s.synthetic for s in slices)
    return {s.slice: (s.records - s.synthetic) / total for s in slices if total and s.records > s.synthetic}


def dataset_comparison(ws: Workspace, slices: list[SliceCount], version: str | None = None) -> DatasetComparison | None:
    """Compare production with ``version`` (default: the newest dataset version); None when there is none."""
    names = [r[0] for r in ws.query("SELECT name FROM dataset_versions ORDER BY created_at DESC, name")]
    if not names:
        return None
    from curation.datasets import get_version  # (pyarrow: not needed to open the studio on its overview)

    info = get_version(ws, version if version in names else names[0])
    prod = production_shares(slices)
    shares = {str(k): float(v) for k, v in info.shares.items()}
    return DatasetComparison(info.name, names, prod, shares, total_variation(prod, shares), info.n_train)


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
    totals = (
        "count(*), count(response), count(*) FILTER (WHERE status IN ('accepted', 'rejected')), "
        "count(*) FILTER (WHERE status = 'accepted'), count(*) FILTER (WHERE status = 'rejected')"
    )
    per_slice = (
        "slice, count(*), count(*) FILTER (WHERE status = 'accepted'), count(*) FILTER (WHERE status = 'rejected'), "
        "count(*) FILTER (WHERE origin = 'synthetic')"
    )
    base, params = effective_sql(ws)
    cur = ws.cursor()
    try:
        head = cur.execute(f"SELECT {totals} FROM ({base}) b", params).fetchall()[0]
        slices = cur.execute(f"SELECT {per_slice} FROM ({base}) b GROUP BY slice ORDER BY 2 DESC, 1", params).fetchall()
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
        slices=[SliceCount(s, int(n), int(a), int(r), int(y)) for s, n, a, r, y in slices],
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
