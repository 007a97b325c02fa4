"""Metrics, per-slice scoring and verdicts on hand-made cases; quality bars; a stored evaluation of a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.errors import UserError
from curation.workspace import Workspace
from train import metrics as M
from train.bars import QualityBar, get_bar, set_bar
from train.config import RunConfig
from train.evaluate import (
    baseline_for,
    count_disagreements,
    disagreements,
    evaluate_model,
    evaluate_run,
    get_evaluation,
    request_more_inputs,
)
from train.scoring import Item, cost_per_1k, percentile, score_all, verdict
from train.store import create_run, update_run
from train.trainer import train


def j(**kw: object) -> str:
    return json.dumps(kw)


def test_metrics_on_known_cases() -> None:
    assert M.json_field(j(intent="Billing "), j(intent="billing", urgency="low"), "intent") == 1.0
    assert M.json_field(j(intent="login"), j(intent="billing"), "intent") == 0.0
    assert M.json_field("not json", j(intent="billing"), "intent") == 0.0
    assert M.json_f1(j(a=1, b=2), j(a=1, c=3)) == pytest.approx(0.5)
    assert M.json_f1(j(a=1, b=2, c=3), j(a=1, b=2)) == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert M.json_f1("[1", j(a=1)) == 0.0
    assert M.valid_json('```json\n{"a": 1}\n```') == 1.0 and M.valid_json("{a: 1}") == 0.0
    assert M.label_in_set(j(intent="Login"), "intent", ["login", "billing"]) == 1.0
    assert M.label_in_set(j(intent="refund"), "intent", ["login", "billing"]) == 0.0
    assert M.exact(" yes  sir ", "yes sir") == 1.0
    assert M.score({"kind": "regex", "pattern": r"\d+"}, " 42 ") == 1.0
    schema = {"type": "object", "required": ["intent"]}
    assert M.score({"kind": "json_schema", "schema": schema}, j(intent="x")) == 1.0
    assert M.score({"kind": "json_schema", "schema": schema}, j(other="x")) == 0.0
    assert M.score({"kind": "json_f1"}, j(a=1), None) is None
    assert M.parse_metric("exact:intent") == {"kind": "json_field", "field": "intent"}
    assert M.parse_metric("label_in_set:intent=a|b") == {
        "kind": "label_in_set",
        "field": "intent",
        "labels": ["a", "b"],
    }
    with pytest.raises(UserError, match="unknown metric"):
        M.parse_metric("bleu")


def bar(**kw: object) -> QualityBar:
    base = {"task": "triage", "metrics": [{"kind": "json_field", "field": "intent"}, {"kind": "valid_json"}],
            "threshold": 0.5, "slice_bars": {"payments": 0.9}, "max_gap": 0.4}  # fmt: skip
    return QualityBar(**{**base, **kw})  # type: ignore[arg-type]


def test_per_slice_scores_gap_and_pass_fail_on_hand_made_items() -> None:
    a, b = j(intent="billing"), j(intent="login")
    items = [
        # payments: student agrees with the teacher on 1 of 2; the reference says the teacher was right once
        Item(1, "payments", "p1", a, a, a, 10.0),
        Item(2, "payments", "p2", "oops", b, b, 20.0),
        # accounts: student agrees 2 of 2; one reference, where the teacher was wrong and so is the student
        Item(3, "accounts", "p3", b, b, a, 30.0),
        Item(4, "accounts", "p4", a, a, None, 40.0),
    ]
    overall, slices = score_all(items, bar())
    pay, acc = {s.slice: s for s in slices}["payments"], {s.slice: s for s in slices}["accounts"]
    assert [i.agree for i in items] == [True, False, True, True]
    assert pay.n == 2 and pay.score == 0.5 and pay.metrics["valid_json"] == 0.5
    assert pay.student_vs_reference == 0.5 and pay.teacher_vs_reference == 1.0 and pay.gap == 0.5
    assert pay.bar == 0.9 and not pay.passed  # below its critical-slice bar (and gap 0.5 > 0.4)
    assert acc.score == 1.0 and acc.student_vs_reference == 0.0 and acc.teacher_vs_reference == 0.0
    assert acc.gap == 0.0 and acc.bar == 0.5 and acc.passed
    assert overall.n == 4 and overall.score == 0.75 and overall.student_vs_reference == pytest.approx(1 / 3)
    assert overall.teacher_vs_reference == pytest.approx(2 / 3) and overall.gap == pytest.approx(1 / 3)
    assert overall.passed
    checks = verdict(overall, slices, bar(max_latency_p95_ms=35.0, max_cost_per_1k=1.0), 40.0, 0.5)
    assert checks == {"overall": True, "slice:payments": False, "latency_p95": False, "cost_per_1k": True}


def test_check_metric_as_primary_measures_gap_against_the_teacher_output() -> None:
    items = [Item(1, "s", "p", "{}", "{}", None), Item(2, "s", "p", "no", "{}", None)]
    overall, _ = score_all(items, bar(metrics=[{"kind": "valid_json"}], slice_bars={}))
    assert overall.score == 0.5 and overall.gap == 0.5 and overall.student_vs_reference is None


def test_latency_percentiles_and_cost() -> None:
    lat = [float(x) for x in range(1, 101)]
    assert percentile(lat, 50) == 50.0 and percentile(lat, 95) == 95.0 and percentile([], 50) is None
    assert cost_per_1k(2.0, 3.6) == pytest.approx(0.5)  # 500 s of a $3.60/h machine
    assert cost_per_1k(2.0, None) is None


def test_bar_versions_and_validation(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        assert get_bar(ws) is None
        first = set_bar(ws, bar())
        second = set_bar(ws, bar(threshold=0.8, teacher_price_per_1k=2.5))
        current = get_bar(ws)
        assert current is not None and current.bar_id == second.bar_id != first.bar_id
        assert current.threshold == 0.8 and current.slice_bars == {"payments": 0.9} and current.primary_name == (
            "exact:intent")  # fmt: skip
        with pytest.raises(UserError, match="between 0 and 1"):
            set_bar(ws, bar(threshold=1.5))
        with pytest.raises(UserError, match="needs field"):
            set_bar(ws, bar(metrics=[{"kind": "json_field"}]))


def test_evaluation_of_a_tiny_student_is_stored_with_baseline(tiny_model: Path, triage_file: Path,
                                                             tmp_path: Path) -> None:  # fmt: skip
    ws = Workspace.open(tmp_path / "ws.duckdb")
    b = set_bar(ws, bar(student_price_per_hour=0.36, teacher_price_per_1k=4.0))
    cfg = RunConfig(base_model=str(tiny_model), data_path=str(triage_file), max_steps=4, precision="fp32")
    run_id = create_run(ws, cfg, dataset_version=None, group_id=None)
    done = train(cfg, lambda e: None)
    update_run(ws, run_id, status="done", adapter_path=done.adapter_path)
    tuned, base = evaluate_run(ws, run_id, max_new_tokens=8, batch_size=4, limit=10)
    assert (tuned.kind, base.kind) == ("tuned", "baseline") and tuned.n_items == 10
    ev = get_evaluation(ws, tuned.eval_id)
    assert ev["bar_id"] == b.bar_id and sum(s["n"] for s in ev["slices"]) == 10
    assert ev["latency_p50_ms"] <= ev["latency_p95_ms"] and ev["throughput_rps"] > 0
    assert ev["cost_per_1k"] == pytest.approx(0.36 / 3600 * 1000 / ev["throughput_rps"])
    assert ev["teacher_cost_per_1k"] == 4.0
    n_bad = sum(1 for _ in ws.query("SELECT 1 FROM eval_items WHERE eval_id = ? AND NOT agree", [tuned.eval_id]))
    assert count_disagreements(ws, tuned.eval_id) == n_bad == len(disagreements(ws, tuned.eval_id))
    assert tuned.overall.score == pytest.approx(1 - n_bad / 10)  # primary metric: agree == score 1
    assert baseline_for(ws, tuned.eval_id) == base.eval_id
    req = request_more_inputs(ws, tuned.eval_id, "payments", 25)
    assert ws.query("SELECT slice, n, status FROM input_requests WHERE request_id = ?", [req]) == [
        ("payments", 25, "open")]  # fmt: skip
    with pytest.raises(UserError, match="no held-out rows"):
        evaluate_model(ws, base_model=str(tiny_model), data_path=_train_only(tmp_path), bar=b)
    ws.close()


def _train_only(tmp_path: Path) -> Path:
    from trainfix import triage_rows, write_parquet

    return write_parquet(triage_rows(4, 0), tmp_path / "only-train.parquet")
