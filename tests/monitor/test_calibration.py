"""Calibration and routing thresholds on hand-made data (train/calibration.py)."""

from __future__ import annotations

import numpy as np
import pytest

from train.calibration import (
    MIN_SLICE_ITEMS,
    calibrate,
    estimate_accuracy,
    fit_isotonic,
    fit_temperature,
    log_loss,
    mix_at,
    pick_threshold,
    routing_curve,
    scaled,
)


def test_scaled_is_the_generation_confidence_at_a_temperature() -> None:
    from train.generate import confidence

    lps = [-0.1, -0.9, -0.35]
    for t in (0.5, 1.0, 2.0):
        assert scaled(confidence(lps), t) == pytest.approx(confidence(lps, t))
    assert scaled(0.25, 1.0) == 0.25


def test_temperature_recovers_the_one_that_made_the_data() -> None:
    # an under-confident student: it says c, but is right with probability c ** (1 / 2.5), more often
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.05, 1.0, 20_000)
    right = (rng.uniform(size=raw.size) < raw ** (1 / 2.5)).astype(float)
    t = fit_temperature(raw.tolist(), right.tolist())
    assert t == pytest.approx(2.5, rel=0.05)
    assert log_loss(raw, right, t) < log_loss(raw, right, 1.0)
    assert fit_temperature([], []) == 1.0


def test_isotonic_pools_violators_by_hand() -> None:
    m = fit_isotonic([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1])
    # (0.2: 1) and (0.3: 0) violate the order and pool to 0.5 at x = 0.25
    assert m.xs == (0.1, 0.25, 0.4) and m.ys == (0.0, 0.5, 1.0)
    assert m([0.0, 0.25, 0.325, 1.0]).tolist() == [0.0, 0.5, 0.75, 1.0]
    tied = fit_isotonic([0.5, 0.5, 0.9], [1, 0, 1])
    assert tied.xs == (0.5, 0.9) and tied.ys == (0.5, 1.0)
    with pytest.raises(ValueError):
        fit_isotonic([], [])


def test_cbpe_estimates_accuracy_of_unlabelled_traffic() -> None:
    # held-out: right with probability c ** 2 (miscalibrated); live traffic leans to low confidence
    rng = np.random.default_rng(1)
    held = rng.uniform(0, 1, 5_000)
    held_ok = (rng.uniform(size=held.size) < held**2).astype(float)
    m = fit_isotonic(held.tolist(), held_ok.tolist())
    live = rng.beta(2, 5, 3_000)
    true_acc = float(np.mean(rng.uniform(size=live.size) < live**2))
    est = estimate_accuracy(m, live.tolist())
    assert est is not None and abs(est - true_acc) < 0.02
    assert abs(float(np.mean(live)) - true_acc) > 0.1  # the raw confidence would be far off
    assert estimate_accuracy(m, []) is None


def test_routing_curve_and_threshold_by_hand() -> None:
    conf = [0.9, 0.8, 0.8, 0.3]
    right = [1, 1, 0, 0]
    curve = routing_curve(conf, right)
    assert [(c["student_share"], c["quality"]) for c in curve] == [(1.0, 0.5), (0.75, 0.75), (0.25, 1.0),
                                                                   (0.0, 1.0)]  # fmt: skip
    assert [c["threshold"] for c in curve][:3] == [0.0, 0.8, 0.9]
    assert pick_threshold(curve, 0.7)["threshold"] == 0.8  # keeps 75% at quality 0.75
    assert pick_threshold(curve, 0.9)["threshold"] == 0.9
    # a teacher wrong on the items the student is unsure of: no mix reaches 0.95; the all-teacher quality caps it
    curve = routing_curve(conf, right, [1, 0, 0, 0])
    assert curve[-1]["quality"] == 0.25 and pick_threshold(curve, 0.95)["student_share"] == 1.0
    assert mix_at(conf, right, [1, 1, 1, 1], 0.8) == (0.75, 0.75)
    with pytest.raises(ValueError):
        routing_curve([], [])


def test_calibrate_per_slice_thresholds_meet_each_bar() -> None:
    rng = np.random.default_rng(2)
    conf, ok, slices = [], [], []
    for name, n in (("easy", 400), ("hard", 400), ("tiny", MIN_SLICE_ITEMS - 1)):
        c = rng.uniform(0.2, 1.0, n)
        p = c if name != "hard" else c**3  # the hard slice is right less often at the same confidence
        conf += c.tolist()
        ok += (rng.uniform(size=n) < p).astype(float).tolist()
        slices += [name] * n
    conf.append(None)  # an item without a confidence is left out, and counted
    ok.append(1.0)
    slices.append("easy")
    bars = {"easy": 0.9, "hard": 0.9}
    cal = calibrate(conf, ok, slices, lambda s: bars.get(s, 0.8), 0.8)
    assert cal.n_items == len(conf) - 1 and cal.n_without_confidence == 1
    by = {s.slice: s for s in cal.slices}
    for name in ("easy", "hard"):
        s = by[name]
        assert s.quality >= s.bar - 1e-12 and not s.pooled
        i = [k for k, x in enumerate(slices) if x == name and conf[k] is not None]
        share, quality = mix_at([scaled(conf[k], cal.temperature) for k in i], [ok[k] for k in i], [1.0] * len(i),
                                s.threshold)  # fmt: skip
        assert (share, quality) == pytest.approx((s.student_share, s.quality))
    assert by["hard"].threshold > by["easy"].threshold  # the student keeps less of the hard slice
    assert by["tiny"].pooled and by["tiny"].threshold == cal.overall.threshold
    doc = cal.thresholds()
    assert set(doc["slices"]) == {"easy", "hard"} and doc["default"] == cal.overall.threshold
    assert doc["temperature"] == cal.temperature
