"""Scoring generated answers against the teacher and references, per slice, and judging them against the bar.

Pure functions on plain data (no model, no workspace), so the numbers are easy to check by hand.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from train.bars import QualityBar
from train.metrics import is_check, metric_name, score


@dataclass
class Item:
    """One held-out example with the student's answer."""

    record_id: int | None
    slice: str
    prompt: str
    student: str
    teacher: str
    reference: str | None
    latency_ms: float = 0.0
    scores: dict[str, Any] = field(default_factory=dict)
    agree: bool | None = False  # None: the primary metric has no score for this item (it is not a disagreement)
    judged: dict[str, float | None] = field(default_factory=dict)  # judge metric name -> grade in [0, 1]


@dataclass
class SliceScore:
    """Scores of one slice (or of everything, slice ``(all)``): primary metric vs the teacher is ``score``."""

    slice: str
    n: int
    score: float
    student_vs_reference: float | None
    teacher_vs_reference: float | None
    gap: float
    bar: float
    passed: bool
    metrics: dict[str, float]


def _mean(xs: list[float | None]) -> float | None:
    """Mean of the scores that exist (an item a metric cannot score is left out, not counted as 0)."""
    vals = [x for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def score_item(item: Item, bar: QualityBar) -> None:
    """Fill ``item.scores`` ({metric: {vs_teacher, vs_reference, teacher_vs_reference}}) and ``item.agree``."""
    for spec in bar.metrics:
        name = metric_name(spec)
        if spec["kind"] == "judge":
            s = {"vs_teacher": item.judged.get(name)}
        elif is_check(spec):
            s = {"vs_teacher": score(spec, item.student, reference=item.reference),
                 "teacher": score(spec, item.teacher, reference=item.reference)}  # fmt: skip
        else:
            s = {"vs_teacher": score(spec, item.student, item.teacher)}
            if item.reference is not None:
                s["vs_reference"] = score(spec, item.student, item.reference)
                s["teacher_vs_reference"] = score(spec, item.teacher, item.reference)
        item.scores[name] = s
    primary = item.scores[bar.primary_name]["vs_teacher"]
    item.agree = None if primary is None else primary >= 1.0 - 1e-9


def score_group(name: str, items: list[Item], bar: QualityBar, threshold: float) -> SliceScore:
    """Aggregate scored items. The gap to the teacher is measured on reference answers where the slice has them
    (teacher minus student), for check metrics as teacher minus student, otherwise as 1 - agreement."""
    primary = bar.primary_name
    metrics = {m: _mean([i.scores[m]["vs_teacher"] for i in items]) or 0.0 for m in items[0].scores} if items else {}
    agreement = metrics.get(primary, 0.0)
    with_ref = [i.scores[primary] for i in items if "vs_reference" in i.scores[primary]]
    s_ref = _mean([s["vs_reference"] for s in with_ref])
    t_ref = _mean([s["teacher_vs_reference"] for s in with_ref])
    if is_check(bar.primary):
        teacher = _mean([i.scores[primary]["teacher"] for i in items]) or 0.0
        gap = teacher - agreement
    elif s_ref is not None and t_ref is not None:
        gap = t_ref - s_ref
    else:
        gap = 1.0 - agreement
    passed = agreement >= threshold - 1e-12 and (bar.max_gap is None or gap <= bar.max_gap + 1e-12)
    return SliceScore(name, len(items), agreement, s_ref, t_ref, gap, threshold, passed, metrics)


def score_all(items: list[Item], bar: QualityBar) -> tuple[SliceScore, list[SliceScore]]:
    """Score every item; return the overall row and one row per slice (sorted by name)."""
    for it in items:
        score_item(it, bar)
    by_slice: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        by_slice[it.slice].append(it)
    slices = [score_group(s, by_slice[s], bar, bar.bar_for(s)) for s in sorted(by_slice)]
    return score_group("(all)", items, bar, bar.threshold), slices


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100), or None for no values."""
    if not values:
        return None
    xs = sorted(values)
    return xs[max(0, math.ceil(q / 100 * len(xs)) - 1)]


def cost_per_1k(throughput_rps: float, price_per_hour: float | None) -> float | None:
    """What 1,000 requests cost on a machine billed ``price_per_hour`` serving ``throughput_rps``."""
    if price_per_hour is None or throughput_rps <= 0:
        return None
    return price_per_hour / 3600 * (1000 / throughput_rps)


def verdict(
    overall: SliceScore, slices: list[SliceScore], bar: QualityBar, p95_ms: float | None, cost: float | None
) -> dict[str, bool]:
    """Each check of the bar: overall score and gap, every critical slice, latency and cost targets."""
    checks = {"overall": overall.passed}
    for s in slices:
        if s.slice in bar.slice_bars:
            checks[f"slice:{s.slice}"] = s.passed
    if bar.max_latency_p95_ms is not None and p95_ms is not None:
        checks["latency_p95"] = p95_ms <= bar.max_latency_p95_ms
    if bar.max_cost_per_1k is not None and cost is not None:
        checks["cost_per_1k"] = cost <= bar.max_cost_per_1k
    return checks
