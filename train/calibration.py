"""Calibration of the student's confidence and the per-slice routing thresholds of the gateway.

Pure functions over (confidence, correct, slice) lists, from a held-out evaluation's items (no model, no workspace;
``train.monitor.calibrate`` reads the items and stores the result).

- Confidence is ``exp(mean token logprob)`` (``train.generate``'s definition); a temperature T makes it
  ``exp(mean logprob / T)`` = ``confidence ** (1 / T)`` (``scaled``). ``fit_temperature`` picks the T that minimises
  the log loss of "correct" on held-out, so that after scaling, confidence reads as a probability of being right
  (T < 1 lowers an over-confident student's confidence: exp(mean logprob / T) falls as T falls; T > 1 raises it).
- ``fit_isotonic``: a monotone map from (scaled) confidence to the observed accuracy (pool-adjacent-violators), the
  finer calibration the label-free accuracy estimate uses (``estimate_accuracy``, the CBPE idea: the mean calibrated
  confidence of answers no one has labelled estimates their accuracy).
- ``routing_curve``: per candidate threshold, the share of traffic the student keeps (confidence >= threshold) and
  the quality of the mix (the student's correctness on what it keeps, the teacher's on what goes back to it).
  ``pick_threshold`` takes the lowest threshold (the student keeps the most) whose mix meets the slice's bar; where
  no mix can (not even all-teacher, when quality is measured against references the teacher also misses), the bar
  is capped at the all-teacher quality.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from train.stats import expected_calibration_error, reliability

# Workspace settings written by `distill serve calibrate`: the gateway's thresholds ({"default", "temperature",
# "slices"}, read by `distill serve` at start) and the isotonic map the monitor's accuracy estimate applies.
THRESHOLDS_SETTING = "serve.thresholds"
CALIBRATION_SETTING = "serve.calibration"
MIN_SLICE_ITEMS = 30  # fewer held-out items than this: the slice takes the pooled threshold (its own curve is noise)
_EPS = 1e-6  # probabilities kept inside (0, 1) for the log loss
_LOG_T_RANGE = (-4.0, 4.0)  # temperatures e^-4 .. e^4 (0.018 .. 55)


def scaled(confidence: float, temperature: float) -> float:
    """``confidence ** (1 / temperature)``: what ``train.generate.confidence(logprobs, T)`` (the definition,
    ``exp(mean logprob / T)``) gives for an answer whose confidence at T = 1 is ``confidence`` (a test holds the
    two together; ``train.generate`` is not imported here, it brings torch)."""
    return float(confidence) ** (1.0 / temperature)


def log_loss(confidences: Sequence[float], correct: Sequence[float], temperature: float = 1.0) -> float:
    """Mean binary log loss of ``correct`` (0/1, or fractions) under the scaled confidences."""
    c = np.clip(np.asarray(confidences, dtype=np.float64), _EPS, 1.0)
    y = np.asarray(correct, dtype=np.float64)
    p = np.clip(np.exp(np.log(c) / temperature), _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fit_temperature(confidences: Sequence[float], correct: Sequence[float]) -> float:
    """The temperature minimising the log loss (golden-section search over log T; the loss is unimodal in log T for
    confidences in (0, 1)). 1.0 for no items."""
    if len(confidences) == 0:
        return 1.0
    lo, hi = _LOG_T_RANGE
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = log_loss(confidences, correct, math.exp(a)), log_loss(confidences, correct, math.exp(b))
    for _ in range(60):  # the bracket shrinks by 0.618 a step: 60 steps = 1e-12 of its width
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = log_loss(confidences, correct, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = log_loss(confidences, correct, math.exp(b))
    return math.exp((lo + hi) / 2)


@dataclass(frozen=True)
class IsotonicMap:
    """A monotone, piecewise-linear map from confidence to probability of being right (knots ``xs`` -> ``ys``;
    clipped to the end values outside them)."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]

    def __call__(self, confidences: Sequence[float] | np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(confidences, dtype=np.float64), self.xs, self.ys)

    def to_dict(self) -> dict[str, list[float]]:
        return {"x": list(self.xs), "y": list(self.ys)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> IsotonicMap:
        return IsotonicMap(tuple(float(x) for x in d["x"]), tuple(float(y) for y in d["y"]))


def fit_isotonic(confidences: Sequence[float], correct: Sequence[float]) -> IsotonicMap:
    """Least-squares non-decreasing fit of ``correct`` on ``confidences`` (pool adjacent violators); equal
    confidences are pooled first. Knots at each block's mean confidence."""
    if len(confidences) == 0:
        raise ValueError("no items to calibrate on")
    groups: dict[float, list[float]] = defaultdict(list)
    for c, y in zip(confidences, correct, strict=True):
        groups[float(c)].append(float(y))
    # blocks of [sum of x, sum of y, weight], merged while a block's mean is above the next one's
    blocks: list[list[float]] = []
    for x in sorted(groups):
        ys = groups[x]
        blocks.append([x * len(ys), sum(ys), float(len(ys))])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            sx, sy, w = blocks.pop()
            blocks[-1][0] += sx
            blocks[-1][1] += sy
            blocks[-1][2] += w
    return IsotonicMap(tuple(b[0] / b[2] for b in blocks), tuple(b[1] / b[2] for b in blocks))


def estimate_accuracy(calibration: IsotonicMap, confidences: Sequence[float]) -> float | None:
    """The label-free accuracy estimate (CBPE): the mean calibrated confidence; None for no answers."""
    if len(confidences) == 0:
        return None
    return float(np.mean(calibration(confidences)))


def routing_curve(
    confidences: Sequence[float], correct: Sequence[float], teacher_correct: Sequence[float] | None = None
) -> list[dict[str, float]]:
    """Per candidate threshold: the share of items the student keeps (confidence >= threshold) and the quality of the
    mix (the student's correctness on what it keeps, the teacher's on the rest; the teacher counts as right where
    ``teacher_correct`` is not given). Thresholds: 0, every distinct confidence above the lowest, and one past the
    highest (everything to the teacher); ascending, so the student's share falls along the list."""
    n = len(confidences)
    if n == 0 or len(correct) != n or (teacher_correct is not None and len(teacher_correct) != n):
        raise ValueError("confidences, correct and teacher_correct must be non-empty and of one length")
    teacher = list(teacher_correct) if teacher_correct is not None else [1.0] * n
    order = sorted(range(n), key=lambda i: confidences[i])
    kept_ok, sent_ok = float(sum(correct)), 0.0  # threshold 0: the student keeps everything
    out = [{"threshold": 0.0, "student_share": 1.0, "quality": kept_ok / n}]
    k = 0
    while k < n:  # raising the threshold past each distinct confidence sends those items to the teacher
        c = confidences[order[k]]
        while k < n and confidences[order[k]] == c:
            kept_ok -= correct[order[k]]
            sent_ok += teacher[order[k]]
            k += 1
        nxt = confidences[order[k]] if k < n else math.nextafter(c, math.inf)
        out.append({"threshold": float(nxt), "student_share": (n - k) / n, "quality": (kept_ok + sent_ok) / n})
    return out


def pick_threshold(curve: list[dict[str, float]], bar: float) -> dict[str, float]:
    """The point of ``curve`` with the largest student share whose quality meets ``bar`` (capped at the all-teacher
    quality, the last point, which no threshold can beat when the teacher is not always right)."""
    target = min(bar, curve[-1]["quality"])
    return next(p for p in curve if p["quality"] >= target - 1e-12)


@dataclass
class SliceRouting:
    """The threshold chosen for one slice (``pooled``: too few items of its own, the pooled threshold applies)."""

    slice: str
    n: int
    bar: float
    threshold: float
    student_share: float
    quality: float
    pooled: bool = False
    curve: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Calibration:
    """What ``calibrate`` fits: the temperature, the isotonic map (on scaled confidence), the pooled routing point
    and one per slice."""

    temperature: float
    isotonic: IsotonicMap
    overall: SliceRouting
    slices: list[SliceRouting]
    n_items: int
    n_without_confidence: int
    log_loss_before: float = math.nan  # at temperature 1
    log_loss_after: float = math.nan  # at the fitted temperature
    ece_before: float = math.nan  # expected calibration error (``train.stats``) at temperature 1
    ece_after: float = math.nan

    def thresholds(self) -> dict[str, Any]:
        """The gateway's thresholds document: ``{"default", "temperature", "slices": {slice: threshold}}``."""
        return {"default": self.overall.threshold, "temperature": self.temperature,
                "slices": {s.slice: s.threshold for s in self.slices if not s.pooled}}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["isotonic"] = self.isotonic.to_dict()
        return d


def mix_at(
    conf: Sequence[float], ok: Sequence[float], teacher: Sequence[float], threshold: float
) -> tuple[float, float]:
    """(student share, quality of the mix) at one threshold: the student keeps items with confidence >= it."""
    kept = [c >= threshold for c in conf]
    quality = sum(o if k else t for k, o, t in zip(kept, ok, teacher, strict=True)) / len(conf)
    return sum(kept) / len(conf), quality


def _routing(name: str, conf: list[float], ok: list[float], teacher: list[float], bar: float) -> SliceRouting:
    curve = routing_curve(conf, ok, teacher)
    p = pick_threshold(curve, bar)
    return SliceRouting(name, len(conf), bar, p["threshold"], p["student_share"], p["quality"], False, curve)


def calibrate(
    confidences: Sequence[float | None],
    correct: Sequence[float],
    slices: Sequence[str],
    bar_for: Callable[[str], float],
    overall_bar: float,
    teacher_correct: Sequence[float] | None = None,
) -> Calibration:
    """Fit the temperature and the isotonic map on every item with a confidence, then choose the pooled threshold
    (against ``overall_bar``) and one per slice (against ``bar_for(slice)``) on the scaled confidences, which is what
    the gateway compares with its thresholds."""
    teacher = list(teacher_correct) if teacher_correct is not None else [1.0] * len(correct)
    keep = [i for i, c in enumerate(confidences) if c is not None]
    if not keep:
        raise ValueError("no item has a confidence")
    raw = [float(confidences[i]) for i in keep]  # type: ignore[arg-type]
    ok = [float(correct[i]) for i in keep]
    t = fit_temperature(raw, ok)
    conf = [scaled(c, t) for c in raw]
    by_slice: dict[str, list[int]] = defaultdict(list)
    for k, i in enumerate(keep):
        by_slice[slices[i]].append(k)
    overall = _routing("(all)", conf, ok, [teacher[i] for i in keep], overall_bar)
    rows = []
    for name in sorted(by_slice):
        idx = by_slice[name]
        if len(idx) < MIN_SLICE_ITEMS:
            sub = [conf[k] for k in idx], [ok[k] for k in idx], [teacher[keep[k]] for k in idx]
            share, quality = mix_at(*sub, overall.threshold)
            rows.append(SliceRouting(name, len(idx), bar_for(name), overall.threshold, share, quality, True))
            continue
        rows.append(_routing(name, [conf[k] for k in idx], [ok[k] for k in idx], [teacher[keep[k]] for k in idx],
                             bar_for(name)))  # fmt: skip
    return Calibration(t, fit_isotonic(conf, ok), overall, rows, len(keep), len(confidences) - len(keep),
                       log_loss(raw, ok, 1.0), log_loss(raw, ok, t), _ece(raw, ok), _ece(conf, ok))  # fmt: skip


def _ece(confidences: list[float], correct: list[float]) -> float:
    return expected_calibration_error(reliability(confidences, correct)) or 0.0
