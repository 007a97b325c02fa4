"""The monitor on hand-written gateway logs: incremental reading, traffic, shares, fallback, agreement with
intervals, latency percentiles, CBPE and cost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from curation.teacher.config import TeacherConfig
from tests.monitor.logfix import answer, log_line, minutes, write_log
from train.bars import QualityBar
from train.calibration import IsotonicMap
from train.monitor.logs import LogTail
from train.monitor.traffic import Pricing, enricher, summarize
from train.serve.settings import SHADOW_LATE
from train.stats import wilson

BAR = QualityBar(task="triage", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.8)


def scenario() -> list[dict]:
    lines = []
    # billing, shadow: 8 of 10 agree on the intent; one student answer would have fallen back (low confidence)
    for i in range(10):
        student = answer("refund" if i < 8 else "other", "high")
        lines.append(log_line(f"billing ticket {i}", slice_name="billing", student=student, teacher=answer("refund"),
                              confidence=0.5 + i * 0.05, fallback_check="low_confidence" if i == 9 else None,
                              latency_ms=100 + i, at=minutes(i)))  # fmt: skip
    # shipping, student mode: 4 served by the student, 2 sent back to the teacher
    for i in range(6):
        reason = {4: "low_confidence", 5: "verifier:valid_json"}.get(i)
        lines.append(log_line(f"where is my parcel {i}", route="teacher" if reason else "student", mode="student",
                              slice_name="shipping", student=answer("track"),
                              teacher=answer("track") if reason else None, confidence=0.3 if reason else 0.95,
                              fallback_reason=reason, latency_ms=(300 if reason else 40) + i, at=minutes(20 + i)))  # fmt: skip
    # account, canary's teacher share: the student was never asked
    for i in range(4):
        lines.append(log_line(f"reset my password {i}", route="teacher", mode="canary", slice_name="account",
                              teacher=answer("reset"), latency_ms=200 + i, at=minutes(30 + i)))  # fmt: skip
    return lines


def test_log_tail_reads_incrementally_and_skips_torn_and_bad_lines(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    lines = scenario()
    write_log(logs, lines[:12], "serve-000001.jsonl")
    write_log(logs, lines[12:16], "serve-000002.jsonl")
    tail = LogTail(logs)
    assert tail.refresh() == 16
    # the live file grows: one whole line, one line still being written, one that is not a gateway line
    live = logs / "serve-000002.jsonl"
    write_log(logs, lines[16:17], live.name, mode="a")
    with live.open("a") as f:
        f.write('{"request": {"messages": []}}\n')
        f.write('{"request": {"mess')
    assert tail.refresh() == 1 and tail.bad_lines == 1
    with live.open("a") as f:
        f.write('ages": []}, "metadata": {"serve": {"route": "teacher", "slice": "account"}}}\n')
    assert tail.refresh() == 1 and tail.refresh() == 0
    assert tail.window().num_rows == 18
    # the same rows whether DuckDB read a whole file or Python read it line by line
    fresh = LogTail(logs)
    fresh.refresh()
    assert fresh.window().to_pylist()[:16] == tail.window().to_pylist()[:16]
    assert fresh.bad_lines == 1
    # a window, then pruning what a sliding window left behind
    assert tail.window(since=minutes(20), until=minutes(30)).num_rows == 6 + 1  # + the line without a time
    tail.prune(minutes(30))
    assert tail.window().num_rows == 2  # the account line at minute 30, and the line without a time
    # a file last written before the window is never opened
    old = write_log(logs, lines[:2], "serve-000000.jsonl")
    os.utime(old, (minutes(-60).timestamp(), minutes(-60).timestamp()))
    later = LogTail(logs)
    later.refresh(since=minutes(-30))
    assert "serve-000000.jsonl" not in later.files and "serve-000001.jsonl" in later.files


def test_traffic_shares_fallback_agreement_latency_cost(tmp_path: Path) -> None:
    write_log(tmp_path, scenario())
    tail = LogTail(tmp_path, enrich=enricher(BAR))
    tail.refresh()
    teacher = TeacherConfig("t", "http://x", "gpt-4o", "KEY", price_in_per_m=2.5, price_out_per_m=10.0)
    tr = summarize(tail.window(), Pricing(teacher, None, 3.6), IsotonicMap((0.0, 1.0), (0.0, 1.0)), hours=1.0)
    o = tr.overall
    assert o.requests == 20 and o.routes == {"both": 10, "student": 4, "teacher": 6}
    by = {s.slice: s for s in tr.slices}
    assert list(by) == ["account", "billing", "shipping"]
    assert by["billing"].share("both") == 1.0 and by["shipping"].share("student") == pytest.approx(4 / 6)
    # fallback: of the requests the student was asked (shadow included: what it would have done)
    assert (by["billing"].fallback.k, by["billing"].fallback.n) == (1, 10)
    assert (by["shipping"].fallback.k, by["shipping"].fallback.n) == (2, 6)
    assert by["account"].fallback.n == 0 and by["account"].fallback.value is None
    assert by["shipping"].fallback_reasons == {"low_confidence": 1, "verifier:valid_json": 1}
    assert o.fallback_reasons == {"low_confidence": 2, "verifier:valid_json": 1} and o.fallback.value == 3 / 16
    # agreement in shadow with its Wilson interval; no shadow traffic elsewhere
    a = by["billing"].agreement
    assert (a.k, a.n, a.value) == (8, 10, 0.8) and (a.low, a.high) == pytest.approx(wilson(8, 10))
    assert by["shipping"].agreement.n == 0 and o.agreement.n == 10
    # CBPE with an identity calibration is the mean confidence of the student's answers
    assert by["billing"].estimated_accuracy == pytest.approx(sum(0.5 + i * 0.05 for i in range(10)) / 10)
    assert by["account"].estimated_accuracy is None and by["shipping"].n_confidence == 6
    # latency per route, nearest-rank percentiles
    assert tr.latency["both"] == {"n": 10, "p50": 104.0, "p95": 109.0, "p99": 109.0}
    assert tr.latency["student"]["p50"] == 41.0 and tr.latency["teacher"]["p99"] == 305.0
    assert by["account"].latency_p95_ms == 203.0
    # cost: 100 prompt + 20 completion tokens at 2.5/10 USD per million = 0.00045 per teacher request
    c = tr.cost
    assert c.teacher_only == pytest.approx(20 * 0.00045) and c.teacher == pytest.approx(16 * 0.00045)
    assert c.student == pytest.approx(3.6) and c.actual == pytest.approx(3.6 + 16 * 0.00045)
    assert c.per_1k_teacher_only == pytest.approx(0.45) and c.savings == pytest.approx(c.teacher_only - c.actual)
    assert tr.teacher_models == {"gpt-4o-2024-08-06": 16} and tr.modes == {"shadow": 10, "student": 6, "canary": 4}
    assert tr.first == minutes(0) and tr.last == minutes(33)


def test_traffic_without_prices_bar_or_rows(tmp_path: Path) -> None:
    write_log(tmp_path, scenario()[:3])
    tail = LogTail(tmp_path, enrich=enricher(None))
    tail.refresh()
    tr = summarize(tail.window(), Pricing())
    assert tr.overall.agreement.n == 0 and tr.cost.teacher_only is None and tr.overall.estimated_accuracy is None
    assert summarize(LogTail(tmp_path / "none", enrich=enricher(BAR)).window(), Pricing()).overall.requests == 0
    flat = summarize(tail.window(), Pricing(teacher_per_1k=2.0))
    assert flat.cost.teacher_only == pytest.approx(3 * 0.002)


def test_a_new_teacher_model_flags_reevaluate(tmp_path: Path) -> None:
    from train.monitor.alarms import find_alarms

    trained = {"gpt-4o-2024-08-06": 120}
    same = [log_line(f"t{k}", student=answer("a"), teacher=answer("a"), at=minutes(k)) for k in range(3)]
    new = [log_line(f"n{k}", student=answer("a"), teacher=answer("a"), teacher_model="gpt-4o-2024-11-20",
                    at=minutes(10 + k)) for k in range(2)]  # fmt: skip
    write_log(tmp_path, same + new)
    tail = LogTail(tmp_path, enrich=enricher(BAR))
    tail.refresh()
    before = summarize(tail.window(until=minutes(10)), Pricing())
    assert before.teacher_models == {"gpt-4o-2024-08-06": 3} and not find_alarms(BAR, before, [], trained)
    after = summarize(tail.window(), Pricing())
    assert after.teacher_models == {"gpt-4o-2024-08-06": 3, "gpt-4o-2024-11-20": 2}
    alarms = find_alarms(BAR, after, [], trained)
    assert [(a.kind, a.level) for a in alarms] == [("teacher_model", "alarm")]
    assert "gpt-4o-2024-11-20" in alarms[0].message and "re-evaluate" in alarms[0].message
    assert not find_alarms(BAR, after, [], {})  # nothing known about the training data: nothing to compare


def test_a_shadow_student_still_generating_is_no_fallback(tmp_path: Path) -> None:
    late = log_line("slow", student=None, teacher=answer("refund"))
    failed = log_line("broken", student=None, teacher=answer("refund"), at=minutes(1))
    for line, error in ((late, f"{SHADOW_LATE} 1000 ms after the teacher answered"), (failed, "CUDA out of memory")):
        line["metadata"]["serve"]["student"] = {"text": None, "confidence": None, "latency_ms": 0.0, "model": None,
                                                "fallback_check": None, "error": error}  # fmt: skip
    write_log(tmp_path, [late, failed])
    tail = LogTail(tmp_path, enrich=enricher(BAR))
    tail.refresh()
    o = summarize(tail.window(), Pricing(None, None, None), IsotonicMap((0.0, 1.0), (0.0, 1.0)), hours=1.0).overall
    assert (o.fallback.k, o.fallback.n) == (1, 1) and o.fallback_reasons == {"student_error": 1}
    assert o.student_errors == 2 and o.agreement.n == 0
