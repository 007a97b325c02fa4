"""``distill serve calibrate RUN``: fit the student's calibration and per-slice routing thresholds on a run's held-out
evaluation (``train.calibration``) and store them where the gateway and the monitor read them (workspace settings
``serve.thresholds`` and ``serve.calibration``).

The items are the newest tuned evaluation of the run on its held-out split: each item's ``confidence`` (the student's
``exp(mean logprob)``) and ``correct`` (the primary metric vs the reference where there is one, else vs the teacher),
as the evaluation stored them; the teacher's own correctness on the same footing (``teacher_correct``) is what the
routing curve credits to answers sent back to it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from curation.errors import UserError
from curation.workspace import Workspace
from train.bars import require_bar
from train.calibration import CALIBRATION_SETTING, THRESHOLDS_SETTING, Calibration, calibrate
from train.metrics import is_check


def teacher_correct(scores: dict[str, Any], check: bool) -> float | None:
    """The teacher's score on the item by the same yardstick as the student's ``correct``: against the reference
    where the item has one, the check on its answer for a check metric, else 1 (the teacher's answer is the
    expected one)."""
    if "vs_reference" in scores:
        return scores.get("teacher_vs_reference")
    if check:
        return scores.get("teacher")
    return 1.0


def heldout_items(ws: Workspace, run_id: int) -> tuple[int, list[dict[str, Any]]]:
    """(evaluation id, items with slice, confidence, correct, scores) of the run's newest tuned held-out evaluation."""
    eval_id = ws.scalar(
        "SELECT max(eval_id) FROM evaluations WHERE run_id = ? AND kind = 'tuned' AND eval_set = 'heldout'", [run_id]
    )
    if eval_id is None:
        raise UserError(f"run {run_id} has no evaluation to calibrate on: evaluate it first (distill eval {run_id})")
    rows = ws.query_dicts("SELECT slice, confidence, correct, CAST(scores AS VARCHAR) AS scores FROM eval_items "
                          "WHERE eval_id = ? ORDER BY slice", [eval_id])  # fmt: skip
    return int(eval_id), rows


def calibrate_run(ws: Workspace, run_id: int, bar_name: str = "default") -> tuple[int, Calibration]:
    """Fit on the run's held-out items against the current bar's thresholds; (evaluation id, calibration)."""
    from train.store import get_run

    get_run(ws, run_id)  # UserError for an unknown run
    bar = require_bar(ws, bar_name)
    eval_id, rows = heldout_items(ws, run_id)
    check = is_check(bar.primary)
    usable = []
    for r in rows:
        s = json.loads(r["scores"]).get(bar.primary_name, {})
        t = teacher_correct(s, check)
        if r["correct"] is not None and t is not None:
            usable.append((r["slice"], r["confidence"], float(r["correct"]), float(t)))
    if not any(c is not None for _, c, _, _ in usable):
        raise UserError(f"evaluation {eval_id} of run {run_id} has no item with both a confidence and a score for "
                        f"{bar.primary_name}: evaluate again with the current bar (distill eval {run_id})")  # fmt: skip
    cal = calibrate([c for _, c, _, _ in usable], [k for _, _, k, _ in usable], [s for s, _, _, _ in usable],
                    bar.bar_for, bar.threshold, [t for _, _, _, t in usable])  # fmt: skip
    return eval_id, cal


def store_calibration(ws: Workspace, run_id: int, eval_id: int, cal: Calibration) -> None:
    """Store the gateway's thresholds and the monitor's calibration map together (one transaction)."""
    ws.set_settings({THRESHOLDS_SETTING: cal.thresholds(),
                     CALIBRATION_SETTING: {"run_id": run_id, "eval_id": eval_id, "temperature": cal.temperature,
                                           "isotonic": cal.isotonic.to_dict(), "n_items": cal.n_items,
                                           "fitted_at": datetime.now(UTC).isoformat()}})  # fmt: skip


CURVE_SHARES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)  # the routing curve printed at these shares


def curve_points(curve: list[dict[str, float]], chosen: float) -> list[dict[str, float]]:
    """The routing curve thinned to one point per ``CURVE_SHARES`` step (the first whose student share is at or
    below it), plus the chosen threshold's point."""
    keep = {id(p) for p in curve if p["threshold"] == chosen}
    for target in CURVE_SHARES:
        p = next((p for p in curve if p["student_share"] <= target + 1e-12), None)
        if p is not None:
            keep.add(id(p))
    return [p for p in curve if id(p) in keep]


def describe(run_id: int, eval_id: int, cal: Calibration) -> list[str]:
    """The calibration in words: temperature, the chosen threshold per slice, and each slice's routing curve."""
    out = [f"calibration of run {run_id} on its held-out evaluation {eval_id}: {cal.n_items:,} item(s)"
           + (f" ({cal.n_without_confidence:,} without a confidence, left out)" if cal.n_without_confidence else ""),
           f"temperature {cal.temperature:.3f}: log loss {cal.log_loss_before:.4f} at T=1 -> {cal.log_loss_after:.4f}, "
           f"expected calibration error {cal.ece_before:.3f} -> {cal.ece_after:.3f}",
           "", f"{'slice':<20} {'n':>6} {'bar':>5} {'threshold':>9} {'student keeps':>13} {'quality':>8}"]  # fmt: skip
    for s in [cal.overall, *cal.slices]:
        pooled = "  (too few items: the pooled threshold)" if s.pooled else ""
        out.append(f"{s.slice:<20} {s.n:>6,} {s.bar:>5.2f} {s.threshold:>9.4g} {s.student_share:>12.0%} "
                   f"{s.quality:>8.3f}{pooled}")  # fmt: skip
    for s in [cal.overall, *cal.slices]:
        if not s.curve:
            continue
        out += ["", f"routing curve, {s.slice}: threshold -> share the student keeps, quality of the mix"]
        for p in curve_points(s.curve, s.threshold):
            mark = "  <- chosen" if p["threshold"] == s.threshold else ""
            out.append(f"  {p['threshold']:>10.4g}  {p['student_share']:>5.0%}  {p['quality']:.3f}{mark}")
    return out
