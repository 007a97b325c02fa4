"""Statistics of an evaluation: intervals, the paired difference to the teacher, macro averages, calibration.

Pure functions on plain numbers (no model, no workspace), checked against hand-computed values in
``tests/train/test_eval_stats.py``. Scores are in [0, 1]; most metrics give 0/1 per item, some (F1, judge grades)
give fractions.

- A slice's score gets a 95% **Wilson** interval. For fractional scores the same formula is used with the score
  sum as the "successes": a variable in [0, 1] with mean p has variance at most p(1 - p), so the interval is
  conservative for them, never too narrow.
- The **paired difference** student - teacher is measured on the same items. For 0/1 pairs it is Newcombe's
  square-and-add interval for paired proportions (Newcombe 1998, method 10; with the phi correction of Fagerland,
  Lydersen and Laake, *Statistical Analysis of Contingency Tables*, ch. 8); fractional pairs get a percentile
  bootstrap over items with a fixed seed.
- The **macro average** (mean of the slice scores) gets a stratified bootstrap interval (items resampled within
  their slice), also seeded. The micro average is the pooled "(all)" row, with its own Wilson interval.
- **Resolution**: how many items a Wilson interval needs to be no wider than +-3 points at the observed score.
- **Calibration**: reliability bins (10 equal-width confidence bins) and the expected calibration error,
  ECE = sum over bins of (bin size / n) x |accuracy - mean confidence|.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from curation.lazy import lazy_module

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_module("numpy")  # at the first bootstrap: every CLI command imports this module's callers at start

from curation.intervals import Z95, wilson

RESOLVE_HALF_WIDTH = 0.03  # "would resolve +-3 points"
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
ECE_BINS = 10


def items_for_half_width(p: float, half_width: float = RESOLVE_HALF_WIDTH, z: float = Z95) -> int:
    """The smallest n whose Wilson interval at proportion ``p`` is at most ``half_width`` on each side.

    The Wilson half-width w at n satisfies w^2 (n + z^2)^2 = z^2 (p(1-p) n + z^2/4); as a quadratic in n:
    w^2 n^2 + (2 w^2 z^2 - z^2 p(1-p)) n + z^4 (w^2 - 1/4) = 0, whose positive root is the answer (rounded up).
    """
    pq = min(1.0, max(0.0, p)) * (1 - min(1.0, max(0.0, p)))
    a = half_width * half_width
    b = 2 * a * z * z - z * z * pq
    c = z**4 * (a - 0.25)
    root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    return max(1, math.ceil(root - 1e-9))


def more_items_to_resolve(p: float, n: int, interval: tuple[float, float] | None, bar: float) -> int | None:
    """How many more items would narrow the interval to +-3 points, when the interval holds the bar (it cannot tell
    pass from fail); None when it already tells them apart."""
    if interval is None:  # nothing scored yet: plan for the widest interval (p = 0.5)
        return items_for_half_width(0.5)
    low, high = interval
    if not (low < bar <= high):
        return None
    return max(0, items_for_half_width(p) - n)


@dataclass(frozen=True)
class PairedDifference:
    """Student minus teacher over the same items, with its 95% interval and how it was computed."""

    diff: float
    low: float
    high: float
    n: int
    method: str  # newcombe | bootstrap


def newcombe_paired(
    both: int, first_only: int, second_only: int, neither: int, z: float = Z95
) -> tuple[float, float, float]:
    """(difference, low, high) of p1 - p2 for paired 0/1 outcomes: ``both`` items where both succeed, ``first_only``
    where only the first does, ``second_only`` where only the second does, ``neither``. Newcombe's square-and-add
    interval from the two Wilson intervals, with the correlation of the pair as its corrected phi."""
    n = both + first_only + second_only + neither
    p1, p2 = (both + first_only) / n, (both + second_only) / n
    w1, w2 = wilson(both + first_only, n, z), wilson(both + second_only, n, z)
    assert w1 is not None and w2 is not None
    (l1, u1), (l2, u2) = w1, w2
    margins = (both + first_only) * (second_only + neither) * (both + second_only) * (first_only + neither)
    phi = 0.0
    if margins > 0:
        a = both * neither - first_only * second_only
        # Corrected phi: a small positive association counts as none (it would narrow the interval too much).
        phi = (a - n / 2) / math.sqrt(margins) if a > n / 2 else (a / math.sqrt(margins) if a < 0 else 0.0)
    d = p1 - p2
    low = d - math.sqrt(max(0.0, (p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)))
    high = d + math.sqrt(max(0.0, (p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1)))
    return d, max(-1.0, low), min(1.0, high)


def bootstrap_means(
    values: Sequence[float], rng: np.random.Generator, resamples: int = BOOTSTRAP_RESAMPLES
) -> np.ndarray:
    """Means of ``resamples`` bootstrap resamples of ``values`` (with replacement, same size). Drawn as multinomial
    counts over the distinct values, which is the same distribution as resampling items and costs resamples x
    distinct values instead of resamples x n (scores take few distinct values)."""
    counts = Counter(float(v) for v in values)
    distinct = np.array(list(counts), dtype=np.float64)
    probs = np.array(list(counts.values()), dtype=np.float64) / len(values)
    draws = rng.multinomial(len(values), probs, size=resamples)
    return draws @ distinct / len(values)


def _percentile_interval(means: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def paired_difference(pairs: Sequence[tuple[float, float]], seed: int = BOOTSTRAP_SEED) -> PairedDifference | None:
    """Student minus teacher over ``pairs`` (student score, teacher score) of the same items; None for no pairs."""
    if not pairs:
        return None
    if all(s in (0.0, 1.0) and t in (0.0, 1.0) for s, t in pairs):
        cells = Counter((int(s), int(t)) for s, t in pairs)
        d, low, high = newcombe_paired(cells[(1, 1)], cells[(1, 0)], cells[(0, 1)], cells[(0, 0)])
        return PairedDifference(d, low, high, len(pairs), "newcombe")
    diffs = [s - t for s, t in pairs]
    low, high = _percentile_interval(bootstrap_means(diffs, np.random.default_rng(seed)))
    return PairedDifference(sum(diffs) / len(diffs), low, high, len(pairs), "bootstrap")


@dataclass(frozen=True)
class MacroAverage:
    """The unweighted mean over slices of the slice score and of the paired difference, with 95% intervals from a
    stratified bootstrap (every slice resampled on its own, the same seed every time)."""

    n_slices: int
    score: float
    low: float
    high: float
    diff: float | None = None
    diff_low: float | None = None
    diff_high: float | None = None


def _mean_of_means(groups: list[list[float]], seed: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    point = sum(sum(g) / len(g) for g in groups) / len(groups)
    means = sum(bootstrap_means(g, rng) for g in groups) / len(groups)
    return (point, *_percentile_interval(np.asarray(means)))


def macro_average(
    scores: Sequence[Sequence[float]], diffs: Sequence[Sequence[float]] = (), seed: int = BOOTSTRAP_SEED
) -> MacroAverage | None:
    """Macro average of per-slice item scores (one list per slice; empty slices left out) and, when given, of the
    per-slice paired differences (student - teacher per item)."""
    groups = [list(g) for g in scores if len(g)]
    if not groups:
        return None
    score, low, high = _mean_of_means(groups, seed)
    dgroups = [list(g) for g in diffs if len(g)]
    if not dgroups:
        return MacroAverage(len(groups), score, low, high)
    return MacroAverage(len(groups), score, low, high, *_mean_of_means(dgroups, seed))


@dataclass(frozen=True)
class ReliabilityBin:
    """Items whose confidence falls in (low, high] (the first bin includes 0): how many, their mean score (the
    accuracy) and their mean confidence."""

    low: float
    high: float
    n: int
    accuracy: float | None
    confidence: float | None


def reliability(confidences: Sequence[float], correct: Sequence[float], bins: int = ECE_BINS) -> list[ReliabilityBin]:
    """Equal-width confidence bins over [0, 1] with the accuracy and mean confidence of the items in each."""
    members: list[list[int]] = [[] for _ in range(bins)]
    for i, c in enumerate(confidences):
        # Rounded first: 0.3 * 10 is 3.0000000000000004 in floating point, which would put 0.3 in (0.3, 0.4].
        k = min(bins - 1, max(0, math.ceil(round(c * bins, 9)) - 1))
        members[k].append(i)
    out = []
    for k, idx in enumerate(members):
        acc = sum(correct[i] for i in idx) / len(idx) if idx else None
        conf = sum(confidences[i] for i in idx) / len(idx) if idx else None
        out.append(ReliabilityBin(k / bins, (k + 1) / bins, len(idx), acc, conf))
    return out


def expected_calibration_error(bins: Sequence[ReliabilityBin]) -> float | None:
    """ECE over reliability bins; None when no item had a confidence."""
    total = sum(b.n for b in bins)
    if total == 0:
        return None
    return sum(b.n / total * abs((b.accuracy or 0.0) - (b.confidence or 0.0)) for b in bins if b.n)


def interval_text(value: float | None, low: float | None, high: float | None, signed: bool = False) -> str:
    """``0.812 [0.701, 0.889]`` (``+0.05 [...]`` when signed); ``-`` for no value."""
    if value is None:
        return "-"
    fmt = "{:+.3f}" if signed else "{:.3f}"
    if low is None or high is None:
        return fmt.format(value)
    return f"{fmt.format(value)} [{fmt.format(low)}, {fmt.format(high)}]"


def resolve_text(more: int | None, where: str = "held-out") -> str:
    """The hint shown where a slice's interval straddles its bar."""
    if more is None:
        return ""
    points = f"+-{RESOLVE_HALF_WIDTH * 100:.0f} points"
    if more == 0:
        return f"resolved to {points}, and the score is within that of its bar"
    return f"about {more:,} more {where} items would resolve {points} here"
