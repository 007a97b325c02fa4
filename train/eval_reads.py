"""Reading stored evaluations for the CLI and the studio: lists, one evaluation with its slices and statistics,
its baseline and held-out counterparts, and pages of disagreements."""

from __future__ import annotations

import json
from typing import Any

from curation.errors import UserError
from curation.oversample import request_inputs
from curation.workspace import Workspace
from train.bars import get_bar_by_id

_SLICE_COLUMNS = (
    "slice, n, score, student_vs_reference, teacher_vs_reference, gap, bar, passed, metrics, n_scored, score_low, "
    "score_high, diff, diff_low, diff_high, n_paired, more_items, ece, reliability"
)


def list_evaluations(ws: Workspace, run_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Newest evaluations first (of one run, if given)."""
    where, params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
    return ws.query_dicts(
        f"SELECT eval_id, run_id, kind, eval_set, data_path, base_model, bar_id, n_items, score, "
        f"CAST(summary->>'$.overall.score_low' AS DOUBLE) AS score_low, "
        f"CAST(summary->>'$.overall.score_high' AS DOUBLE) AS score_high, gap, passed, latency_p50_ms, "
        f"latency_p95_ms, throughput_rps, cost_per_1k, teacher_cost_per_1k, wall_s, overall_tokens_per_s, "
        f"peak_rss_mb, ece, created_at FROM evaluations {where} ORDER BY eval_id DESC LIMIT ?",
        [*params, limit],
    )


def get_evaluation(ws: Workspace, eval_id: int) -> dict[str, Any]:
    """An evaluation with its summary (overall row with its statistics, macro average, sample), bar and slice rows
    (each with its interval, paired difference, resolution hint, calibration error and reliability bins)."""
    rows = ws.query_dicts("SELECT * FROM evaluations WHERE eval_id = ?", [eval_id])
    if not rows:
        raise UserError(f"no evaluation {eval_id} in this workspace")
    ev = rows[0]
    ev["summary"] = json.loads(ev["summary"])
    # The same top-level keys as a fresh ``EvalResult`` (asdict), so one renderer shows both.
    ev.update(
        {k: ev["summary"].get(k) for k in ("overall", "checks", "judges", "macro", "sample", "note", "constrain")}
    )
    ev["bar"] = get_bar_by_id(ws, ev["bar_id"]).to_dict() if ev["bar_id"] is not None else None
    ev["slices"] = ws.query_dicts(
        f"SELECT {_SLICE_COLUMNS} FROM eval_slices WHERE eval_id = ? ORDER BY slice", [eval_id]
    )
    for s in ev["slices"]:
        s["metrics"] = json.loads(s["metrics"])
        s["reliability"] = json.loads(s["reliability"]) if s["reliability"] else []
    return ev


def baseline_for(ws: Workspace, eval_id: int) -> int | None:
    """The newest baseline evaluation of the same run on the same set, to show the lift next to a tuned one."""
    return ws.scalar(
        "SELECT b.eval_id FROM evaluations e JOIN evaluations b ON b.run_id = e.run_id AND b.kind = 'baseline' "
        "AND b.eval_set = e.eval_set AND b.data_path IS NOT DISTINCT FROM e.data_path "
        "WHERE e.eval_id = ? ORDER BY b.eval_id DESC LIMIT 1",
        [eval_id],
    )


def heldout_for(ws: Workspace, eval_id: int) -> int | None:
    """For a gold-set evaluation, the newest held-out evaluation of the same run and kind (shown beside it)."""
    return ws.scalar(
        "SELECT h.eval_id FROM evaluations e JOIN evaluations h ON h.run_id = e.run_id AND h.kind = e.kind "
        "AND h.eval_set = 'heldout' WHERE e.eval_id = ? AND e.eval_set = 'gold' ORDER BY h.eval_id DESC LIMIT 1",
        [eval_id],
    )


def disagreements(
    ws: Workspace, eval_id: int, *, slice_name: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """A page of items where the student and the teacher disagree on the primary metric."""
    where = "eval_id = ? AND NOT agree" + (" AND slice = ?" if slice_name is not None else "")
    params: list[Any] = [eval_id] + ([slice_name] if slice_name is not None else [])
    rows = ws.query_dicts(
        f"SELECT record_id, source_line, slice, prompt, student_output, teacher_output, reference, scores, "
        f"latency_ms, confidence FROM eval_items WHERE {where} ORDER BY slice, record_id, source_line "
        f"LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    for r in rows:
        r["scores"] = json.loads(r["scores"])
    return rows


def count_disagreements(ws: Workspace, eval_id: int, slice_name: str | None = None) -> int:
    if slice_name is None:
        return int(ws.scalar("SELECT count(*) FROM eval_items WHERE eval_id = ? AND NOT agree", [eval_id]))
    return int(ws.scalar("SELECT count(*) FROM eval_items WHERE eval_id = ? AND NOT agree AND slice = ?",
                         [eval_id, slice_name]))  # fmt: skip


def request_more_inputs(ws: Workspace, eval_id: int, slice_name: str, n: int = 50) -> int:
    """Send a failing slice to curation's oversampling (``curation.oversample.request_inputs``): an open
    ``input_requests`` row the teacher fulfils; return its id."""
    return request_inputs(ws, {slice_name: n}, reason=f"evaluation {eval_id} failed the bar")[0]
