"""What the evaluation screen shows of one evaluation: the per-slice table rows (score with its 95% interval
coloured against the bar, the paired difference to the teacher, baseline and lift, calibration error, verdict;
the micro row first, the macro row last) and the summary under it. Built from ``train.evaluate.get_evaluation``'s
dict, so the screen's handlers only place them."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from train.eval_text import cost_text, notes, set_name
from train.stats import interval_text

SLICE_COLUMNS = ("slice", "n", "bar", "student [95% CI]", "vs teacher [95% CI]", "baseline", "lift", "stud/ref",
                 "teach/ref", "gap", "ECE", "verdict")  # fmt: skip
MACRO_KEY = "(macro)"


def num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _score(s: dict[str, Any], bar: float | None) -> Text:
    """The score green/red against the bar, its interval dim after it."""
    t = Text(num(s["score"]), style="" if bar is None else ("green" if s["score"] >= bar else "red"))
    low, high = s.get("score_low"), s.get("score_high")
    if low is not None and high is not None:
        t.append(f" [{low:.3f}, {high:.3f}]", style="dim")
    return t


def slice_rows(ev: dict[str, Any], base: dict[str, Any] | None) -> list[tuple[str, list[Any]]]:
    """(row key, cells) for "(all)" (the micro average), each slice, then the macro average."""
    base_by = {s["slice"]: s for s in base["slices"]} if base else {}
    rows: list[tuple[str, list[Any]]] = []
    overall = {**ev["overall"], "slice": "(all)"}
    for s in [overall, *ev["slices"]]:  # "(all)" first: its disagreements show by default
        b = base_by.get(s["slice"]) if s["slice"] != "(all)" else (base["overall"] if base else None)
        lift = s["score"] - b["score"] if b else None
        lift_t = Text("-" if lift is None else f"{lift:+.3f}", style="green" if (lift or 0) > 0 else "")
        diff = Text(interval_text(s.get("diff"), s.get("diff_low"), s.get("diff_high"), signed=True))
        verdict = Text("PASS" if s["passed"] else "FAIL", style="bold green" if s["passed"] else "bold red")
        rows.append((s["slice"], [s["slice"], s["n"], num(s["bar"]), _score(s, s["bar"]), diff,
                                  num(b["score"] if b else None), lift_t, num(s["student_vs_reference"]),
                                  num(s["teacher_vs_reference"]), num(s["gap"]), num(s.get("ece")), verdict]))  # fmt: skip
    m = ev.get("macro")
    if m:
        bm = base.get("macro") if base else None
        mscore = _score({"score": m["score"], "score_low": m["low"], "score_high": m["high"]}, None)
        diff = Text(interval_text(m.get("diff"), m.get("diff_low"), m.get("diff_high"), signed=True))
        lift = f"{m['score'] - bm['score']:+.3f}" if bm else "-"
        rows.append((MACRO_KEY, [f"(macro, {m['n_slices']} slices)", "", "", mscore, diff,
                                 num(bm["score"] if bm else None), lift, "", "", "", "", ""]))  # fmt: skip
    return rows


def summary_text(ev: dict[str, Any], heldout: dict[str, Any] | None) -> str:
    """Checks, serving figures, the run's cost, hints and notes; for a gold set, the held-out result beside it."""
    checks = "  ".join(f"{k}: {'ok' if v else 'FAIL'}" for k, v in (ev.get("checks") or {}).items())
    lines = [
        f"eval {ev['eval_id']} ({ev['kind']} on the {set_name(ev)}, {ev['summary']['primary_metric']})  {checks}",
        f"latency p50 {num(ev['latency_p50_ms'])} ms  p95 {num(ev['latency_p95_ms'])} ms  "
        f"{ev['throughput_rps'] or 0:.2f} req/s  cost/1k {num(ev['cost_per_1k'])} vs teacher "
        f"{num(ev['teacher_cost_per_1k'])}",
        f"run cost: {cost_text(ev)}",
    ]
    if heldout is not None:
        h = heldout["overall"]
        lines.append(f"held-out split (eval {heldout['eval_id']}): "
                     f"{interval_text(h['score'], h.get('score_low'), h.get('score_high'))} over {h['n']} items")  # fmt: skip
    return "\n".join(lines + notes(ev))
