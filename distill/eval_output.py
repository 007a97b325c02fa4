"""How ``distill eval``, ``distill train --eval`` and ``distill runs RUN`` print evaluations.

One renderer for a fresh evaluation (``asdict(EvalResult)``) and a stored one (``train.evaluate.get_evaluation``,
which has the same keys): per slice n, score with its 95% interval, the paired difference to the teacher with its
interval, baseline and lift, reference scores, gap, calibration error and verdict; then the micro (all items) and
macro (mean of slices) rows, where more items would resolve a slice, and what the evaluation cost to run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distill.output import print_table
from train.eval_text import cost_text, notes, set_name
from train.stats import interval_text


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def print_evaluation(doc: dict[str, Any], base: dict[str, Any] | None = None) -> None:
    """The per-slice table of one evaluation (and its baseline), the hints under it and its cost lines."""
    base_by = {s["slice"]: s for s in base["slices"]} if base else {}
    overall = doc["overall"]
    others = list(overall["metrics"])[1:]  # in the bar's order: the first is the primary metric
    rows = []
    for s in [*doc["slices"], overall]:
        b = base["overall"] if (base and s is overall) else base_by.get(s["slice"])
        lift = s["score"] - b["score"] if b else None
        extra = [f"{s['metrics'].get(m, 0):.2f}" + (f" ({b['metrics'].get(m, 0):.2f})" if b else "") for m in others]
        name = "(all, micro)" if s is overall else s["slice"]
        rows.append([name, s["n"], s["bar"], interval_text(s["score"], s.get("score_low"), s.get("score_high")),
                     interval_text(s.get("diff"), s.get("diff_low"), s.get("diff_high"), signed=True),
                     b["score"] if b else None, lift, s["student_vs_reference"], s["teacher_vs_reference"], s["gap"],
                     s.get("ece"), "PASS" if s["passed"] else "FAIL", *extra])  # fmt: skip
    macro = doc.get("macro")
    if macro:
        diff = interval_text(macro.get("diff"), macro.get("diff_low"), macro.get("diff_high"), signed=True)
        bm = base.get("macro") if base else None
        rows.append([f"(macro, {macro['n_slices']} slices)", None, None,
                     interval_text(macro["score"], macro["low"], macro["high"]), diff, bm["score"] if bm else None,
                     macro["score"] - bm["score"] if bm else None, None, None, None, None, "", *[""] * len(others)])  # fmt: skip
    run = f"run {doc['run_id']}, " if doc.get("run_id") is not None else ""
    print_table(["slice", "n", "bar", "student [95% CI]", "vs teacher [95% CI]", "baseline", "lift", "stud/ref",
                 "teach/ref", "gap", "ECE", "verdict", *others], rows,
                title=f"evaluation {doc['eval_id']} ({run}{doc['base_model']}, {doc['kind']}) on the "
                f"{set_name(doc)}; primary metric first, others as tuned (baseline)")  # fmt: skip
    for line in notes(doc):
        print(f"  {line}")
    for name, rep in (doc.get("judges") or {}).items():
        print(f"{name}: {rep['n_requests']} requests, {rep['n_cached']} cached, {rep['n_failed']} failed, "
              f"{rep['n_unparsed']} unparsed grades, ${rep['cost_usd']:.4f}")  # fmt: skip
    checks = ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in (doc.get("checks") or {}).items())
    print(f"verdict: {'PASS' if doc['passed'] else 'FAIL'} ({checks})")
    print(f"latency p50 {_f(doc['latency_p50_ms'])} ms, p95 {_f(doc['latency_p95_ms'])} ms; "
          f"{doc['throughput_rps'] or 0:.2f} req/s; cost/1k student {_f(doc['cost_per_1k'])} vs teacher "
          f"{_f(doc['teacher_cost_per_1k'])}")  # fmt: skip
    print(f"calibration: ECE {_f(overall.get('ece'))} (student confidence = exp(mean token logprob) vs its score)")
    print(f"run cost: {cost_text(doc)}")


def print_gold_beside_heldout(held: dict[str, Any], gold: dict[str, Any]) -> None:
    """Per slice, the held-out result next to the gold set's (same model)."""
    h_by = {s["slice"]: s for s in held["slices"]}
    g_by = {s["slice"]: s for s in gold["slices"]}
    rows = []
    for name in [*sorted(set(h_by) | set(g_by)), "(all)"]:
        h = held["overall"] if name == "(all)" else h_by.get(name)
        g = gold["overall"] if name == "(all)" else g_by.get(name)
        rows.append([name, h["n"] if h else None, _ci(h), g["n"] if g else None, _ci(g),
                     g["student_vs_reference"] if g else None, ("PASS" if g["passed"] else "FAIL") if g else "-"])  # fmt: skip
    print_table(["slice", "held-out n", "held-out [95% CI]", "gold n", "gold [95% CI]", "gold stud/ref", "gold verdict"],
                rows, title=f"{gold['kind']} student: held-out (evaluation {held['eval_id']}) vs "
                f"{set_name(gold)} (evaluation {gold['eval_id']})")  # fmt: skip


def _ci(s: dict[str, Any] | None) -> str:
    return "-" if s is None else interval_text(s["score"], s.get("score_low"), s.get("score_high"))


def print_totals(docs: Sequence[dict[str, Any]]) -> None:
    """What the whole command's evaluations cost together (held-out and gold, tuned and baseline)."""
    wall = sum(d.get("wall_s") or 0.0 for d in docs)
    tokens = sum(d.get("new_tokens") or 0 for d in docs)
    rss = max((d.get("peak_rss_mb") or 0.0 for d in docs), default=0.0)
    rate = tokens / wall if wall > 0 else 0.0
    print(f"all {len(docs)} evaluations: wall {wall:.1f} s, {tokens:,} tokens, {rate:.1f} tok/s overall, "
          f"peak RSS {rss:,.0f} MiB")  # fmt: skip


def print_evaluation_list(rows: list[dict[str, Any]], title: str) -> None:
    """One line per evaluation (``train.evaluate.list_evaluations``)."""
    print_table(["eval", "kind", "set", "n", "score [95% CI]", "gap", "ECE", "wall s", "pass"],
                [[r["eval_id"], r["kind"], r["eval_set"], r["n_items"],
                  interval_text(r["score"], r["score_low"], r["score_high"]), r["gap"], r["ece"], r["wall_s"],
                  "PASS" if r["passed"] else "FAIL"] for r in rows], title=title)  # fmt: skip
