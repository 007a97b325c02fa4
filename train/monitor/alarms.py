"""Alarms: where live traffic crosses the thresholds set with the quality bar.

A rate is compared through its 95% interval: an **alarm** when the whole interval is on the wrong side of the limit
(the fallback rate's low end above the maximum, agreement's high end below the minimum), a **watch** when only the
point estimate is (more traffic will tell). Drift alarms when the AUC is over the bar's maximum and beyond chance
(``DriftResult.drifted``). A teacher answering from a model version the training data did not come from always
alarms: the student was distilled from, and evaluated against, another teacher ("re-evaluate").
"""

from __future__ import annotations

from dataclasses import dataclass

from train.bars import DEFAULT_MAX_DRIFT_AUC, DEFAULT_MAX_FALLBACK_RATE, QualityBar
from train.monitor.drift import DriftResult
from train.monitor.traffic import ALL, Rate, Traffic

ALARM, WATCH = "alarm", "watch"


@dataclass(frozen=True)
class Alarm:
    """One crossed threshold. ``kind``: drift | fallback | agreement | teacher_model."""

    kind: str
    slice: str
    level: str
    message: str


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def rate_text(r: Rate) -> str:
    """``12.5% [8.1%, 18.8%] of 160``."""
    if r.value is None:
        return "-"
    return f"{_pct(r.value)} [{_pct(r.low)}, {_pct(r.high)}] of {r.n:,}"


def new_teacher_models(training: dict[str, int], live: dict[str, int]) -> list[str]:
    """Models that answered live but answered none of the training version (nothing to compare when either is
    unknown)."""
    if not training:
        return []
    return sorted(m for m in live if m not in training)


def find_alarms(
    bar: QualityBar | None, traffic: Traffic, drift: list[DriftResult], training_models: dict[str, int]
) -> list[Alarm]:
    """Every alarm and watch, alarms first."""
    max_auc = bar.max_drift_auc if bar else DEFAULT_MAX_DRIFT_AUC
    max_fallback = bar.max_fallback_rate if bar else DEFAULT_MAX_FALLBACK_RATE
    out: list[Alarm] = []
    # The pooled test (all slices) alarms only where no slice does: it is there for traffic without usable slices.
    by_slice = any(d.drifted(max_auc) for d in drift if d.slice != ALL)
    for d in drift:
        if d.drifted(max_auc) and not (d.slice == ALL and by_slice):
            where = "a slice not in the training data" if d.new_slice else "its training prompts"
            out.append(Alarm("drift", d.slice, ALARM, (
                f"{d.slice}: live prompts differ from {where} (AUC {d.auc:.2f} [{d.auc_low:.2f}, {d.auc_high:.2f}] "
                f"> {max_auc:g}, p {d.p_value:.3f}); {_pct(d.no_neighbour)} have no near neighbour in training")))  # fmt: skip
    for s in [traffic.overall, *traffic.slices]:
        f = s.fallback
        if f.value is not None and f.value > max_fallback:
            level = ALARM if (f.low or 0.0) > max_fallback else WATCH
            reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(s.fallback_reasons.items(), key=lambda kv: -kv[1]))
            out.append(Alarm("fallback", s.slice, level,
                             f"{s.slice}: fallback to the teacher {rate_text(f)} > {max_fallback:g} ({reasons})"))  # fmt: skip
        a = s.agreement
        if bar is not None and a.value is not None:
            need = bar.agreement_bar(s.slice)  # (all): min_agreement, else the overall threshold
            if a.value < need:
                level = ALARM if (a.high or 1.0) < need else WATCH
                out.append(Alarm("agreement", s.slice, level,
                                 f"{s.slice}: student-teacher agreement {rate_text(a)} < {need:g} in shadow"))  # fmt: skip
    changed = new_teacher_models(training_models, traffic.teacher_models)
    if changed:
        trained = ", ".join(sorted(training_models))
        out.append(Alarm("teacher_model", ALL, ALARM,
                         f"the teacher answers as {', '.join(changed)}; the training data came from {trained}: "
                         "re-evaluate the student against the new teacher (distill eval)"))  # fmt: skip
    return sorted(out, key=lambda a: (a.level != ALARM, a.kind, a.slice))
