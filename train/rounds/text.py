"""Plain-text views of a round's plan and of the round history, shared by the CLI and the studio (one wording):
tables as (headers, rows), and a chart that draws each slice's 95% interval per round on a 0..1 axis."""

from __future__ import annotations

from typing import Any

from curation.teacher.budget import possibly_billed_text
from train.rounds.history import TEACHER_STEPS, HistoryEntry, RoundHistory
from train.rounds.options import GAP_RULE
from train.rounds.plan import STEP_TEXT, RoundPlan
from train.stats import interval_text

PLAN_HEADERS = ("slice", "n", "score [95% CI]", "bar", "gap", "wrong", "new", "weight")


def stop_text(h: RoundHistory) -> str:
    """The stop signal's message, or why there is none yet (the CLI and the round panel say the same)."""
    if h.stop is not None:
        return h.stop.message
    if not any(e.number > 0 and e.slices for e in h.entries):
        return "no stop signal yet: no round has been evaluated"
    return ("no stop signal yet: the last round lifted a slice above its interval, and the remaining errors are "
            "mostly ones the teacher gets right: another round (n, or `distill round next`) may help")  # fmt: skip


def setback_text(h: RoundHistory) -> str | None:
    """Slices that passed their bar before the last round and fell beyond their interval in it (new inputs weighted
    toward the failing slices can pull the student away from the others), or None."""
    done = [e for e in h.entries if e.slices]
    if len(done) < 2 or done[-1].number == 0:
        return None
    before = {s.slice: s for s in done[-2].slices}
    lost = [(before[s.slice], s) for s in done[-1].slices
            if s.slice in before and before[s.slice].passed and not s.passed and s.moved and (s.delta or 0) < 0]  # fmt: skip
    if not lost:
        return None
    names = ", ".join(f"{b.slice} {b.score:.3f} -> {s.score:.3f}" for b, s in lost)
    return (f"setback: round {done[-1].number} pushed slices that passed below their bar, beyond their intervals "
            f"({names}); the new inputs weigh up to --max-weight: a lower one, or --weights equal, moves the student "
            "less in the next round")  # fmt: skip


def verdict_lines(h: RoundHistory) -> list[str]:
    """What the history says under its tables: a setback of the last round, if any, then the stop signal."""
    setback = setback_text(h)
    return [*([setback] if setback else []), stop_text(h)]


def plan_rows(plan: RoundPlan) -> list[list[Any]]:
    """One row per failing slice: its score against the bar, its wrong items (the seeds), new inputs, weight."""
    return [[s.slice, s.n_items, interval_text(s.score, s.score_low, s.score_high), s.bar, s.gap, s.n_wrong, s.n_new,
             s.weight] for s in plan.slices]  # fmt: skip


def plan_head(plan: RoundPlan, rnd: dict[str, Any] | None) -> str:
    """Which round, from where, with which teacher, into which version."""
    how = f"continued: {rnd['status']}" if rnd is not None else "new"
    return (f"round {plan.number} ({how}) from evaluation {plan.base_eval_id} (run {plan.base_run_id}, version "
            f"{plan.base_version}); teacher {plan.teacher}; next version {plan.version}")  # fmt: skip


def plan_lines(plan: RoundPlan, steps: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """The weight rule, the steps (with their state in a continued round) and the estimated teacher cost."""
    steps = steps or {}
    lines = [f"weights (gap): {GAP_RULE}" if plan.weights_rule == "gap" else "weights: equal (1)"]
    if plan.skipped:
        lines.append(f"left out (no wrong item with a record to seed from): {', '.join(plan.skipped)}")
    for i, name in enumerate(plan.steps, 1):
        st = steps.get(name)
        state = f"  [{st['status']}{': ' + st['detail'] if st.get('detail') else ''}]" if st else ""
        lines.append(f"  {i}. {name}: {STEP_TEXT[name]}{state}")
    if all(steps.get(s, {}).get("status") == "done" for s in TEACHER_STEPS):
        lines.append("teacher: nothing more to ask (its steps are done; `distill round history` shows what they cost)")
        return lines
    lines.append(f"estimated teacher cost: at most ${plan.estimate_usd:.4f} over {plan.estimate_requests} requests "
                 f"({plan.n_new} new inputs: synth requests, then one answer each; every input byte counted as a "
                 "token and every request at its output cap)")  # fmt: skip
    return lines


HISTORY_HEADERS = ("round", "status", "eval", "version", "score (all)", "change", "added", "teacher $", "requests",
                   "step time s")  # fmt: skip


def history_rows(h: RoundHistory) -> list[list[Any]]:
    """One row per history entry (round 0 is the start)."""
    rows = []
    for e in h.entries:
        cost = e.cost
        usd = (
            None
            if cost is None
            else f"{cost.cost_usd + cost.judge_usd:.4f}{possibly_billed_text(cost.possibly_billed_usd)}"
        )
        status = e.status + (f" at {e.current_step}" if e.current_step else "")
        rows.append([e.number, status, e.eval_id, e.version, e.score, None if e.delta is None else f"{e.delta:+.3f}",
                     e.n_added if e.round_id is not None else None, usd, None if cost is None else cost.requests,
                     None if e.step_s is None else round(e.step_s, 1)])  # fmt: skip
    return rows


def _cell(e: HistoryEntry, slice_: str) -> str:
    s = next((x for x in e.slices if x.slice == slice_), None)
    if s is None:
        return "-"
    text = interval_text(s.score, s.low, s.high)
    if s.delta is not None:
        text += f" {s.delta:+.3f}" + ("*" if s.moved else "")
    return text


def slice_table(h: RoundHistory) -> tuple[list[str], list[list[Any]]]:
    """Per slice, each evaluated round's score [95% CI] and change (* = beyond the start's interval)."""
    done = [e for e in h.entries if e.slices]
    names = sorted({s.slice for e in done for s in e.slices})
    bars = {s.slice: s.bar for e in done for s in e.slices}
    headers = ["slice", "bar", *(f"round {e.number}" for e in done)]
    return headers, [[n, bars[n], *(_cell(e, n) for e in done)] for n in names]


def interval_strip(low: float | None, score: float, high: float | None, bar: float | None, width: int = 40) -> str:
    """A 0..1 axis ``width`` characters wide: the interval as ``[━━●━━]``, the bar as ``|``."""
    cells = ["·"] * width

    def at(x: float) -> int:
        return min(width - 1, max(0, round(x * (width - 1))))

    if low is not None and high is not None:
        for k in range(at(low), at(high) + 1):
            cells[k] = "━"
        cells[at(low)], cells[at(high)] = "[", "]"
    if bar is not None:
        cells[at(bar)] = "|" if cells[at(bar)] == "·" else cells[at(bar)]
    cells[at(score)] = "●"
    return "".join(cells)


def chart_lines(h: RoundHistory, width: int = 40) -> list[str]:
    """Per slice, one line per evaluated round: its interval on a 0..1 axis (| marks the bar)."""
    done = [e for e in h.entries if e.slices]
    names = sorted({s.slice for e in done for s in e.slices})
    pad = max((len(n) for n in names), default=0)
    lines = []
    for n in names:
        for k, e in enumerate(done):
            s = next((x for x in e.slices if x.slice == n), None)
            if s is None:
                continue
            label = n.ljust(pad) if k == 0 else " " * pad
            lines.append(f"{label} r{e.number} {interval_strip(s.low, s.score, s.high, s.bar, width)} {s.score:.3f}")
    return lines
