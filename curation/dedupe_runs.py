"""Stored dedupe runs: a previewed ``curation.dedupe.DedupeResult`` written as one run (``dedupe_runs``, its clusters
in ``dedupe_members``; the label conflicts it found queued for review), and the list of runs."""

from __future__ import annotations

import json
from datetime import datetime

from curation.dedupe import CONFLICT_REASON, DEDUPE, DedupeResult
from curation.errors import UserError
from curation.review import queue_records
from curation.workspace import Workspace


def apply_dedupe(ws: Workspace, result: DedupeResult, *, force: bool = False) -> int:
    """Store a previewed dedupe run; refuses when a rare slice would lose too much unless ``force``."""
    if result.blocked and not force:
        raise UserError(
            f"dedupe would remove more than {result.params['max_rare_removal']:.0%} of rare slice(s) "
            f"{', '.join(result.blocked)}; raise the threshold or force it "
            f"({DEDUPE['force'].label}, {DEDUPE['force'].flag})"
        )
    import pyarrow as pa

    cluster_of = {rid: ci for ci, members in enumerate(result.clusters) for rid in members}
    ids = list(result.kept)
    with ws.transaction() as cur:
        run_id = cur.execute(
            "INSERT INTO dedupe_runs (kind, model, threshold, params, n_records, n_clusters, n_removed, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING run_id",
            [
                result.kind,
                result.model,
                result.threshold,
                json.dumps({**result.params, "split": result.split, "force": force, "method": result.method}),
                result.n_records,
                len(result.clusters),
                result.n_removed,
                datetime.now(),
            ],
        ).fetchall()[0][0]
        tbl = pa.table(
            {
                "cluster_id": pa.array([cluster_of[r] for r in ids], pa.int64()),
                "record_id": pa.array(ids, pa.int64()),
                "kept": pa.array([result.kept[r][0] for r in ids], pa.bool_()),
                "reason": pa.array([result.kept[r][1] for r in ids], pa.string()),
            }
        )
        cur.register("_dm", tbl)
        cur.execute("INSERT INTO dedupe_members SELECT ?, cluster_id, record_id, kept, reason FROM _dm", [run_id])
        cur.unregister("_dm")
        conflicted = sorted({r for c in result.conflicts for r in c.to_review})
        queue_records(cur, conflicted, f"{CONFLICT_REASON} (dedupe run {run_id})", "dedupe")
    return int(run_id)


def list_runs(ws: Workspace) -> list[dict]:
    """Stored dedupe runs, newest first."""
    return ws.query_dicts(
        "SELECT run_id, kind, model, threshold, n_records, n_clusters, n_removed, created_at FROM dedupe_runs "
        "ORDER BY run_id DESC"
    )
