"""The round arithmetic that needs no model: weights from the gap, the change between rounds and whether it is
beyond the interval, and the stop signal on hand-made histories."""

from __future__ import annotations

import pytest

from curation.errors import UserError
from train.rounds.history import HistoryEntry, SliceResult, compare, stop_signal
from train.rounds.plan import next_version_name, weights_from_gap
from train.rounds.text import interval_strip


def test_a_slice_with_a_larger_gap_weighs_more() -> None:
    w = weights_from_gap({"billing": 0.4, "login": 0.1, "shipping": 0.2}, "gap", 3.0)
    assert w == {"billing": 3.0, "login": 1.5, "shipping": 2.0}  # 1 + 2 x gap / 0.4
    assert w["billing"] > w["shipping"] > w["login"]
    assert weights_from_gap({"a": -0.1, "b": 0.2}, "gap", 2.0) == {"a": 1.0, "b": 2.0}  # a negative gap counts as 0
    assert weights_from_gap({"a": -0.1, "b": 0.0}, "gap", 2.0) == {"a": 1.0, "b": 1.0}
    assert weights_from_gap({"a": 0.4, "b": 0.1}, "equal", 3.0) == {"a": 1.0, "b": 1.0}
    with pytest.raises(UserError, match="Weights"):
        weights_from_gap({"a": 0.4}, "loudest", 3.0)


def test_next_version_names() -> None:
    assert next_version_name("v1", 1) == "v1-r1"
    assert next_version_name("v1-r1", 2) == "v1-r2"
    assert next_version_name("prod-r7b", 3) == "prod-r7b-r3"


def _s(name: str, score: float, low: float, high: float, passed: bool = False, bar: float = 0.8) -> SliceResult:
    return SliceResult(name, 100, score, low, high, bar, passed)


def test_a_change_counts_when_the_score_leaves_the_previous_interval() -> None:
    before = [_s("billing", 0.60, 0.50, 0.69), _s("login", 0.70, 0.61, 0.78)]
    now = compare(before, [_s("billing", 0.72, 0.63, 0.80), _s("login", 0.74, 0.65, 0.81), _s("new", 0.5, 0.4, 0.6)])
    assert [(s.slice, round(s.delta or 0, 3), s.moved) for s in now] == [
        ("billing", 0.12, True), ("login", 0.04, False), ("new", 0.0, None)]  # fmt: skip


def _entry(number: int, slices: list[SliceResult]) -> HistoryEntry:
    return HistoryEntry(number, number or None, "done" if number else "start", 10 + number, f"v1-r{number}", slices)


def test_stop_when_the_last_round_moved_no_slice_beyond_its_interval() -> None:
    last = _entry(2, compare([_s("billing", 0.6, 0.5, 0.69)], [_s("billing", 0.65, 0.55, 0.73)]))
    stop = stop_signal(last, {})
    assert stop is not None and stop.reasons == ("no_change",)
    assert stop.message == "stop: round 2 lifted no slice beyond its interval"
    moved = _entry(2, compare([_s("billing", 0.6, 0.5, 0.69)], [_s("billing", 0.75, 0.66, 0.82)]))
    assert stop_signal(moved, {}) is None
    fell = _entry(2, compare([_s("billing", 0.6, 0.5, 0.69), _s("login", 0.3, 0.2, 0.4)],
                             [_s("billing", 0.40, 0.31, 0.50), _s("login", 0.35, 0.25, 0.45)]))  # fmt: skip
    stop = stop_signal(fell, {})  # a fall beyond the interval is no progress (it read as "moved": go on)
    assert (
        stop is not None
        and stop.message == "stop: round 2 lifted no slice beyond its interval (billing -0.200 fell beyond it)"
    )
    assert stop_signal(_entry(0, [_s("billing", 0.6, 0.5, 0.69)]), {}) is None  # round 0 has nothing to compare


def test_stop_when_most_remaining_errors_are_the_teachers_too() -> None:
    moved = _entry(1, compare([_s("billing", 0.6, 0.5, 0.69)], [_s("billing", 0.75, 0.66, 0.82)]))
    stop = stop_signal(moved, {"billing": (7, 10), "login": (1, 10)}, teacher_share=0.5)
    assert stop is not None and stop.reasons == ("teacher_errors",)
    assert stop.message == "stop: 70% of the remaining errors in billing are items the teacher also gets wrong"
    assert stop_signal(moved, {"billing": (4, 10)}, teacher_share=0.5) is None  # 40%: the student can still learn
    assert stop_signal(moved, {"billing": (4, 4)}, teacher_share=0.5) is None  # too few errors to tell
    both = stop_signal(moved, {"billing": (6, 10), "security": (9, 10)}, teacher_share=0.55)
    assert both is not None and both.message == ("stop: 90% of the remaining errors in security are items the teacher "
                                                 "also gets wrong (also billing 60%)")  # fmt: skip


def test_the_message_says_which_reasons_hold_and_passing_everything_stops_too() -> None:
    flat = _entry(3, compare([_s("billing", 0.6, 0.5, 0.69)], [_s("billing", 0.62, 0.52, 0.71)]))
    stop = stop_signal(flat, {"billing": (8, 10)})
    assert stop is not None and stop.reasons == ("no_change", "teacher_errors")
    assert stop.message == ("stop: round 3 lifted no slice beyond its interval; 80% of the remaining errors in "
                            "billing are items the teacher also gets wrong")  # fmt: skip
    done = _entry(1, compare([_s("billing", 0.6, 0.5, 0.69)], [_s("billing", 0.9, 0.83, 0.95, passed=True)]))
    assert stop_signal(done, {}) == stop_signal(done, {"billing": (9, 10)})
    assert stop_signal(done, {}).message == "stop: every slice passes its bar after round 1"  # type: ignore[union-attr]


def test_interval_strip_draws_the_interval_the_score_and_the_bar() -> None:
    assert interval_strip(0.2, 0.4, 0.6, 0.8, width=11) == "··[━●━]·|··"
    assert interval_strip(None, 0.5, None, None, width=5) == "··●··"


def test_a_round_that_pushes_a_passing_slice_below_its_bar_is_a_setback() -> None:
    from train.rounds.history import RoundHistory
    from train.rounds.text import setback_text, verdict_lines

    start = _entry(0, [_s("technical", 0.97, 0.83, 0.99, passed=True), _s("shipping", 0.32, 0.21, 0.46)])
    r1 = _entry(1, compare(start.slices, [_s("technical", 0.17, 0.08, 0.35), _s("shipping", 0.91, 0.80, 0.96, True)]))
    h = RoundHistory([start, r1], None)
    text = setback_text(h)
    assert text is not None and "round 1" in text and "technical 0.970 -> 0.170" in text and "shipping" not in text
    assert verdict_lines(h)[0] == text and len(verdict_lines(h)) == 2
    held = _entry(1, compare(start.slices, [_s("technical", 0.90, 0.8, 0.95, True), _s("shipping", 0.5, 0.4, 0.6)]))
    assert setback_text(RoundHistory([start, held], None)) is None  # inside its interval, still passing
    assert setback_text(RoundHistory([start], None)) is None
