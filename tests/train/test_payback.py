"""Payback estimate: the pure function on hand numbers, and its inputs read from a workspace."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from curation.records import finish_batch, insert_records, new_batch
from curation.teacher.config import TeacherConfig, save_teacher
from curation.workspace import Workspace
from train import store
from train.bars import QualityBar, set_bar
from train.payback import MISSING_PRICE, MISSING_REQUESTS, MISSING_STUDENT, PaybackInputs, describe, estimate, payback


def test_payback_by_hand() -> None:
    # 2,000 requests/day; teacher $0.025, student $0.005 per request -> saves $40/day.
    # One-off: $300 of teacher answers + 4 h of training at $2/h = $308 -> 7.7 days.
    p = estimate(PaybackInputs(requests_per_day=2000, teacher_cost_per_request=0.025, student_cost_per_request=0.005,
                               price_per_hour=2.0, teacher_spent_usd=300, training_hours=4))  # fmt: skip
    assert p.estimated and p.one_off_usd == pytest.approx(308)
    assert p.savings_per_day == pytest.approx(40) and p.payback_days == pytest.approx(7.7)
    assert describe(p)[0] == "payback: 7.7 days"
    assert describe(estimate(dataclasses.replace(p.inputs, requests_per_day=20000)))[0] == "payback: 18.5 hours"
    assert "saves $40.00/day = 2,000 requests/day" in describe(p)[1]
    assert "one-off $308.00 = teacher so far $300.00 + training 4.00 h x $2.00/h" in describe(p)[2]


def test_a_student_dearer_than_the_teacher_never_pays_back() -> None:
    p = estimate(PaybackInputs(requests_per_day=100, teacher_cost_per_request=0.001, student_cost_per_request=0.002,
                               price_per_hour=1.0))  # fmt: skip
    assert p.estimated and p.payback_days is None and p.savings_per_day == pytest.approx(-0.1)
    assert describe(p)[0] == "payback: never; the student costs at least as much per request as the teacher"


def test_missing_inputs_are_named() -> None:
    p = estimate(PaybackInputs(requests_per_day=100, teacher_cost_per_request=0.01, student_cost_per_request=None))
    assert p.missing == [MISSING_PRICE] and p.payback_days is None and p.one_off_usd is None
    assert describe(p) == ["payback: not estimated", f"  - {MISSING_PRICE}"]
    assert "--student-price" in MISSING_PRICE
    p = estimate(PaybackInputs(teacher_cost_per_request=0.01, price_per_hour=3.0))
    assert p.missing == [MISSING_REQUESTS, MISSING_STUDENT] and p.one_off_usd == 0.0


def test_inputs_from_the_workspace(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws.duckdb")
    t0 = datetime(2026, 1, 1)
    rows = [
        {
            "messages": [{"role": "user", "content": f"ticket {i}"}],
            "response": "ok",
            "prompt_tokens": 1000,
            "completion_tokens": 200,
            "logged_at": t0 + timedelta(days=i * 10 / 49),
        }
        for i in range(50)
    ]
    rows.append({"messages": [{"role": "user", "content": "made up"}], "origin": "synthetic",
                 "logged_at": t0 + timedelta(days=100)})  # synthetic: not production traffic  # fmt: skip
    with ws.transaction() as cur:
        b = new_batch(cur, "logs.jsonl", "log")
        finish_batch(cur, b, n_lines=51, n_imported=len(insert_records(cur, b, rows)), n_duplicates=0,
                     n_quarantined=0)  # fmt: skip
    p = payback(ws, None)
    assert p.inputs.requests_per_day == pytest.approx(5.0) and p.inputs.requests_source.startswith("50 logged")
    assert set(p.missing) >= {MISSING_PRICE}
    # A teacher with prices: $2.5/M in, $10/M out x the logs' mean tokens (1000 in, 200 out) = $0.0045 a request.
    save_teacher(ws, TeacherConfig(name="big", base_url="http://127.0.0.1:9/v1", model="m", api_key_env="K",
                                   price_in_per_m=2.5, price_out_per_m=10.0))  # fmt: skip
    assert payback(ws, None).inputs.teacher_cost_per_request == pytest.approx(0.0045)
    # The bar's price per hour and the newest evaluation's throughput: $3.6/h at 2 requests/s = $0.0005 a request.
    bar = set_bar(ws, QualityBar(task="t", metrics=[{"kind": "valid_json"}], threshold=0.5,
                                 student_price_per_hour=3.6))  # fmt: skip
    store.insert_evaluation(ws, {"kind": "tuned", "base_model": "s", "n_items": 1, "summary": "{}",
                                 "throughput_rps": 2.0, "created_at": datetime.now()}, [], [])  # fmt: skip
    p = payback(ws, bar)
    assert p.inputs.student_cost_per_request == pytest.approx(0.0005) and p.estimated
    # 5 requests/day x ($0.0045 - $0.0005) = $0.02/day; nothing spent yet: pays back at once.
    assert p.savings_per_day == pytest.approx(0.02) and p.payback_days == 0.0
    # Given traffic and a teacher price on the bar win over what the logs say.
    bar = set_bar(ws, QualityBar(task="t", metrics=[{"kind": "valid_json"}], threshold=0.5, student_price_per_hour=3.6,
                                 requests_per_day=1000, teacher_price_per_1k=5.0))  # fmt: skip
    p = payback(ws, bar)
    assert p.inputs.requests_per_day == 1000 and p.inputs.teacher_cost_per_request == pytest.approx(0.005)
    assert p.savings_per_day == pytest.approx(4.5)
    ws.close()
