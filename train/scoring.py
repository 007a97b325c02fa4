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
from train.stats import (
    MacroAverage,
    ReliabilityBin,
    expected_calibration_error,
    macro_average,
    more_items_to_resolve,
    paired_difference,
    reliability,
    wilson,
)


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
    confidence: float | None = None  # the student's: exp(mean logprob of its generated tokens)
    correct: float | None = None  # primary metric vs the reference where there is one, else vs the teacher
    source_line: int | None = None  # the item's line in an external gold set


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
    n_scored: int = 0  # items the primary metric could score (the interval's n)
    score_low: float | None = None  # 95% Wilson interval of the score
    score_high: float | None = None
    diff: float | None = None  # student minus teacher on the same items (see ``teacher_pairs``)
    diff_low: float | None = None
    diff_high: float | None = None
    n_paired: int = 0
    more_items: int | None = None  # items more to resolve +-3 points, when the interval holds the bar
    ece: float | None = None  # expected calibration error of the student's confidence
    reliability: list[ReliabilityBin] = field(default_factory=list)


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
    s = item.scores[bar.primary_name]
    item.agree = None if s["vs_teacher"] is None else s["vs_teacher"] >= 1.0 - 1e-9
    item.correct = s["vs_reference"] if "vs_reference" in s else s["vs_teacher"]


def primary_values(items: list[Item], bar: QualityBar) -> list[float]:
    """The primary metric's scores (vs the teacher) of the items it could score."""
    return [v for i in items if (v := i.scores[bar.primary_name]["vs_teacher"]) is not None]


def teacher_pairs(items: list[Item], bar: QualityBar) -> list[tuple[float, float]]:
    """(student, teacher) scores of the same items, paired as the gap is measured: for a check metric the check on
    both answers; where the group has references, both answers against the reference (items with one); otherwise
    the teacher's answer is the expected one, so it scores 1 and the student its agreement with it."""
    primary = bar.primary_name
    scored = [i.scores[primary] for i in items]
    if is_check(bar.primary):
        return [(s["vs_teacher"], s["teacher"]) for s in scored if s["vs_teacher"] is not None and
                s["teacher"] is not None]  # fmt: skip
    with_ref = [(s["vs_reference"], s["teacher_vs_reference"]) for s in scored if "vs_reference" in s]
    pairs = [(a, b) for a, b in with_ref if a is not None and b is not None]
    if pairs:
        return pairs
    return [(s["vs_teacher"], 1.0) for s in scored if s["vs_teacher"] is not None]


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
    out = SliceScore(name, len(items), agreement, s_ref, t_ref, gap, threshold, passed, metrics)
    add_statistics(out, items, bar)
    return out


def add_statistics(s: SliceScore, items: list[Item], bar: QualityBar) -> None:
    """Fill the interval, paired difference, resolution hint and calibration of a scored group."""
    values = primary_values(items, bar) if items else []
    s.n_scored = len(values)
    interval = wilson(sum(values), len(values))
    s.score_low, s.score_high = interval or (None, None)
    s.more_items = more_items_to_resolve(s.score, len(values), interval, s.bar)
    d = paired_difference(teacher_pairs(items, bar)) if items else None
    if d is not None:
        s.diff, s.diff_low, s.diff_high, s.n_paired = d.diff, d.low, d.high, d.n
    rated = [(i.confidence, i.correct) for i in items if i.confidence is not None and i.correct is not None]
    if rated:
        s.reliability = reliability([c for c, _ in rated], [k for _, k in rated])
        s.ece = expected_calibration_error(s.reliability)


def macro_for(items: list[Item], bar: QualityBar) -> MacroAverage | None:
    """Macro averages over the slices of scored items: the mean slice score and mean paired difference."""
    by_slice: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        by_slice[it.slice].append(it)
    groups = [by_slice[s] for s in sorted(by_slice)]
    return macro_average([primary_values(g, bar) for g in groups],
                         [[a - b for a, b in teacher_pairs(g, bar)] for g in groups])  # fmt: skip


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
