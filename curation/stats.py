"""Workspace summaries: counts and review progress per slice, per batch, and the quarantine (for `distill stats`).

Records are counted as they are now (``curation.effective``): slices under the active slicing with reviewers'
relabels, responses with their edits, review status.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from curation.effective import active_slicing, effective_sql
from curation.teacher_answers import teacher_names
from curation.team import progress_by_reviewer
from curation.workspace import Workspace


@dataclass
class WorkspaceStats:
    """A snapshot of what a workspace holds."""

    path: str
    schema_version: int
    slicing: str | None  # the active slicing (None = records' own slice)
    records: int
    with_response: int
    synthetic: int
    slices: list[dict[str, Any]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)
    quarantine_total: int = 0
    quarantine_reasons: list[dict[str, Any]] = field(default_factory=list)
    quarantine_sample: list[dict[str, Any]] = field(default_factory=list)
    teachers: list[dict[str, Any]] = field(default_factory=list)  # each teacher with answers, and how many records
    reviewers: list[dict[str, Any]] = field(default_factory=list)  # per slice and reviewer (``curation.team``)


def slice_counts(ws: Workspace) -> list[dict[str, Any]]:
    """Per effective slice: records, share, with a response, synthetic, mean teacher confidence (mean token
    logprob), and review progress: unreviewed, needs_review, accepted, rejected (the statuses) and edited."""
    base, params = effective_sql(ws)
    return ws.query_dicts(
        f"""SELECT slice, count(*) AS records, round(count(*) / sum(count(*)) OVER (), 4) AS share,
            count(response) AS with_response, count(*) FILTER (origin = 'synthetic') AS synthetic,
            round(avg(mean_logprob), 4) AS mean_logprob,
            count(*) FILTER (status = 'unreviewed') AS unreviewed,
            count(*) FILTER (status = 'needs_review') AS needs_review,
            count(*) FILTER (status = 'accepted') AS accepted, count(*) FILTER (status = 'rejected') AS rejected,
            count(*) FILTER (edited) AS edited
        FROM ({base}) b GROUP BY slice ORDER BY records DESC, slice""",
        params,
    )


def workspace_stats(ws: Workspace, quarantine_sample: int = 10) -> WorkspaceStats:
    """Everything `distill stats` prints."""
    slices = slice_counts(ws)
    total, with_resp, synth = (sum(int(s[k]) for s in slices) for k in ("records", "with_response", "synthetic"))
    batches = ws.query_dicts(
        """SELECT b.batch_id, b.source_file, b.format, b.status, b.n_lines, b.n_imported, b.n_duplicates,
            b.n_quarantined, b.started_at, (SELECT count(*) FROM records r WHERE r.batch_id = b.batch_id) AS records_now
        FROM import_batches b ORDER BY b.batch_id"""
    )
    reasons = ws.query_dicts(
        """SELECT coalesce(field || ': ', '') || reason AS reason, count(*) AS lines,
            count(DISTINCT source_file) AS files
        FROM quarantine GROUP BY 1 ORDER BY lines DESC, reason LIMIT 20"""
    )
    sample = ws.query_dicts(
        f"""SELECT batch_id, source_file, line_no, field, reason, left(raw, 120) AS raw FROM quarantine
        ORDER BY batch_id, source_file, line_no LIMIT {int(quarantine_sample)}"""
    )
    return WorkspaceStats(
        path=str(ws.path),
        schema_version=ws.schema_version(),
        slicing=active_slicing(ws),
        records=int(total),
        with_response=int(with_resp),
        synthetic=int(synth),
        slices=slices,
        batches=batches,
        quarantine_total=int(ws.scalar("SELECT count(*) FROM quarantine")),
        quarantine_reasons=reasons,
        quarantine_sample=sample,
        teachers=[{"teacher": t, "records": n} for t, n in teacher_names(ws)],
        reviewers=[asdict(p) | {"left": p.left} for p in progress_by_reviewer(ws)],
    )
