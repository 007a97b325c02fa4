"""Evaluation statistics against hand-computed and published values: Wilson intervals, Newcombe's paired difference,
the items needed to resolve +-3 points, macro averages, reliability bins and the expected calibration error."""

from __future__ import annotations

import json

import pytest

from train.bars import QualityBar
from train.scoring import Item, macro_for, score_all
from train.stats import (
    expected_calibration_error,
    interval_text,
    items_for_half_width,
    macro_average,
    more_items_to_resolve,
    newcombe_paired,
    paired_difference,
    reliability,
    resolve_text,
    wilson,
)


def test_wilson_interval_matches_the_textbook_value() -> None:
    # 8 of 10: centre (0.8 + z^2/20) / (1 + z^2/10) = 0.71674, half-width z / (1 + z^2/10) * sqrt(0.016 + z^2/400)
    # = 0.22658 -> 0.4902 to 0.9433 (Newcombe 1998, table I: 0.490 to 0.943).
    low, high = wilson(8, 10)  # type: ignore[misc]
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 10)[0] == 0.0 and wilson(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)  # type: ignore[index]
    assert wilson(3, 0) is None


def test_newcombe_paired_difference_matches_the_published_example_and_a_hand_computation() -> None:
    # Cavo et al. (2012) in Fagerland, Lydersen & Laake, ch. 8: 59 both, 6 first only, 16 second only, 80 neither:
    # estimate -0.0621, 95% CI -0.1186 to -0.0046.
    d, low, high = newcombe_paired(59, 6, 16, 80)
    assert (round(d, 4), round(low, 4), round(high, 4)) == (-0.0621, -0.1186, -0.0046)
    # By hand, 3 both / 1 first only / 2 second only / 4 neither (n = 10): p1 = 0.4, p2 = 0.5; Wilson 4/10 =
    # (0.16818, 0.68733), 5/10 = (0.23659, 0.76341); ad - bc = 10 > n/2, so phi = (10 - 5) / sqrt(4*6*5*5) = 0.20412;
    # low = -0.1 - sqrt(0.23182^2 + 0.26341^2 - 2 phi 0.23182 0.26341) = -0.41336, high = -0.1 + sqrt(0.26341^2 +
    # 0.28733^2 - 2 phi 0.26341 0.28733) = 0.24791.
    d, low, high = newcombe_paired(3, 1, 2, 4)
    assert d == pytest.approx(-0.1) and low == pytest.approx(-0.41336, abs=1e-5)
    assert high == pytest.approx(0.24791, abs=1e-5)
    pd = paired_difference([(1, 1)] * 3 + [(1, 0)] + [(0, 1)] * 2 + [(0, 0)] * 4)
    assert pd is not None and pd.method == "newcombe" and (pd.diff, pd.low) == (pytest.approx(-0.1), low)
    assert paired_difference([]) is None


def test_fractional_pairs_get_a_seeded_bootstrap() -> None:
    pairs = [(0.5, 1.0), (1.0, 1.0), (0.25, 0.0), (0.0, 0.5), (1.0, 0.5)]
    a, b = paired_difference(pairs), paired_difference(pairs)
    assert a is not None and a.method == "bootstrap" and a == b  # the same seed, the same interval
    assert a.diff == pytest.approx((-0.5 + 0 + 0.25 - 0.5 + 0.5) / 5)
    assert -1 <= a.low < a.diff < a.high <= 1


def test_items_needed_to_resolve_three_points() -> None:
    # p = 0.5, w = 0.03: w^2 n^2 + (2 w^2 z^2 - z^2/4) n + z^4 (w^2 - 1/4) = 0 -> n = 1063.27, so 1,064 items.
    assert items_for_half_width(0.5) == 1064
    for n, ok in ((1064, True), (1063, False)):
        low, high = wilson(n / 2, n)  # type: ignore[misc]
        assert ((high - low) / 2 <= 0.03) == ok
    # p = 0.8 from 10 items, interval (0.49, 0.94) holds a bar of 0.9: root 681.24 -> 682 items, 672 more.
    assert more_items_to_resolve(0.8, 10, wilson(8, 10), 0.9) == 672
    assert more_items_to_resolve(0.8, 10, wilson(8, 10), 0.4) is None  # clearly above that bar already
    assert more_items_to_resolve(0.0, 0, None, 0.9) == 1064  # nothing scored: planned at p = 0.5
    assert resolve_text(672) == "about 672 more held-out items would resolve +-3 points here"
    assert resolve_text(None) == ""
    assert resolve_text(0) == "resolved to +-3 points, and the score is within that of its bar"


def test_macro_average_and_its_stratified_bootstrap() -> None:
    # Constant slices: every resample has the same means, so the interval is the point.
    m = macro_average([[1, 1], [0, 0]])
    assert m is not None and (m.score, m.low, m.high, m.n_slices) == (0.5, 0.5, 0.5, 2)
    # One slice [1, 0]: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4 -> 2.5%/97.5% at 0 and 1.
    m = macro_average([[1, 0]])
    assert m is not None and (m.score, m.low, m.high) == (0.5, 0.0, 1.0)
    # Macro weighs slices equally: (2/3 + 4/5) / 2, whatever their sizes.
    m = macro_average([[1, 0, 1], [1, 1, 1, 1, 0]], [[0, -1, 0], [0, 0, 1, 0, 0]])
    assert m is not None and m.score == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m.diff == pytest.approx((-1 / 3 + 1 / 5) / 2) and m.low <= m.score <= m.high
    assert macro_average([[], []]) is None


def test_reliability_bins_and_expected_calibration_error_by_hand() -> None:
    conf, correct = [0.95, 0.9, 0.85, 0.55, 0.15, 0.3], [1, 1, 0, 1, 0, 1]
    bins = reliability(conf, correct)
    filled = {(round(b.low, 1), b.n, b.accuracy) for b in bins if b.n}
    # 0.3 lands in (0.2, 0.3] (not (0.3, 0.4], as 0.3 * 10 = 3.0000000000000004 would put it)
    assert filled == {(0.1, 1, 0.0), (0.2, 1, 1.0), (0.5, 1, 1.0), (0.8, 2, 0.5), (0.9, 1, 1.0)}
    assert len(bins) == 10 and sum(b.n for b in bins) == 6
    # Without the 0.3 item: (1 x |1 - 0.95| + 2 x |0.5 - 0.875| + 1 x |1 - 0.55| + 1 x |0 - 0.15|) / 5 = 0.28
    assert expected_calibration_error(reliability(conf[:5], correct[:5])) == pytest.approx(0.28)
    assert expected_calibration_error(reliability([], [])) is None


def test_interval_text() -> None:
    assert interval_text(0.8, 0.49016, 0.94332) == "0.800 [0.490, 0.943]"
    assert interval_text(-0.1, -0.41336, 0.24791, signed=True) == "-0.100 [-0.413, +0.248]"
    assert interval_text(None, None, None) == "-"


def j(**kw: object) -> str:
    return json.dumps(kw)


def test_slice_statistics_on_hand_made_items() -> None:
    """score_all fills each slice's interval, paired difference (as the gap pairs it) and calibration."""
    bar = QualityBar(task="t", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.5,
                     slice_bars={"payments": 0.9})  # fmt: skip
    a, b = j(intent="billing"), j(intent="login")
    items = [
        Item(1, "payments", "p1", a, a, a, confidence=0.95),  # student right, teacher right (vs reference)
        Item(2, "payments", "p2", "oops", b, b, confidence=0.85),  # student wrong, teacher right
        Item(3, "accounts", "p3", b, b, a, confidence=0.55),  # both wrong vs the reference
        Item(4, "accounts", "p4", a, a, None, confidence=0.15),  # no reference: left out of the pairs
        Item(5, "shipping", "p5", a, b, None),  # no references in the slice: paired with a teacher scoring 1
    ]
    overall, slices = score_all(items, bar)
    pay, acc, ship = ({s.slice: s for s in slices}[k] for k in ("payments", "accounts", "shipping"))
    assert [i.correct for i in items] == [1.0, 0.0, 0.0, 1.0, 0.0]  # vs reference where there is one
    assert pay.n_scored == 2 and (pay.score_low, pay.score_high) == wilson(1, 2)
    assert (pay.diff, pay.n_paired) == (-0.5, 2) and pay.diff == -pay.gap
    assert (pay.diff_low, pay.diff_high) == pytest.approx(newcombe_paired(1, 0, 1, 0)[1:])
    assert pay.more_items == items_for_half_width(0.5) - 2  # [0.09, 0.91] holds the 0.9 bar
    assert (acc.diff, acc.n_paired) == (0.0, 1)
    assert (ship.diff, ship.n_paired, ship.score) == (-1.0, 1, 0.0) and ship.diff == -ship.gap
    assert ship.ece is None and ship.reliability == []  # no confidence for item 5
    # payments: bins (0.9, 1] acc 1 conf 0.95 and (0.8, 0.9] acc 0 conf 0.85 -> (0.05 + 0.85) / 2
    assert pay.ece == pytest.approx(0.45)
    assert overall.n_scored == 5 and overall.ece == pytest.approx((0.05 + 0.85 + 0.55 + 0.85) / 4)
    macro = macro_for(items, bar)
    assert macro is not None and macro.n_slices == 3
    assert macro.score == pytest.approx((0.5 + 1.0 + 0.0) / 3) and macro.diff == pytest.approx((-0.5 + 0 - 1) / 3)


def test_check_metric_pairs_the_check_on_both_answers() -> None:
    bar = QualityBar(task="t", metrics=[{"kind": "valid_json"}], threshold=0.5)
    overall, _ = score_all([Item(1, "s", "p", "{}", "{}", None), Item(2, "s", "p", "no", "{}", None)], bar)
    assert overall.diff == -0.5 == -overall.gap and overall.n_paired == 2
