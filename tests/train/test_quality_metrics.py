"""Bar metrics that reach into curation: a curation verifier's pass rate, and LLM-as-judge through a teacher
configured in the workspace (graded by the real fake-OpenAI HTTP server on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.teacher.fake_openai as fake
from curation.errors import UserError
from curation.filters import run_filter
from curation.records import finish_batch, insert_records, new_batch
from curation.teacher.config import TeacherConfig, save_teacher
from curation.workspace import Workspace
from tests.teacher.fake_openai import FakeOpenAI
from train import metrics as M
from train.bars import QualityBar, get_bar, set_bar
from train.evaluate import judge_all
from train.judge import parse_grade
from train.scoring import Item, score_all

KEY = "sk-test-judge-0123456789abcdef"
KEY_ENV = "DISTILL_TEST_JUDGE_KEY"
LABEL = {"kind": "verifier", "verifier": {"type": "label", "field": "intent", "allowed": ["billing", "login"]}}


def j(**kw: object) -> str:
    return json.dumps(kw)


def test_verifier_metric_reports_the_pass_rate_of_a_curation_verifier() -> None:
    ref = {"kind": "verifier", "verifier": {"type": "exact_match", "field": "intent", "normalize": True}}
    items = [
        Item(1, "a", "p", j(intent="billing"), j(intent="billing"), j(intent="Billing")),
        Item(2, "a", "p", j(intent="refund"), j(intent="billing"), "billing"),  # a bare-label reference
        Item(3, "b", "p", "not json", j(intent="login"), None),
        Item(4, "b", "p", j(intent="login"), j(intent="refund"), None),
    ]
    bar = QualityBar(task="t", metrics=[LABEL, ref], threshold=0.5)
    overall, slices = score_all(items, bar)
    label, exact = M.metric_name(LABEL), M.metric_name(ref)
    assert (label, exact) == ("verifier:label:intent", "verifier:exact_match:intent")
    # label verifier: items 1 and 4 pass (refund is not allowed, "not json" has no field)
    assert overall.metrics[label] == 0.5 and [i.agree for i in items] == [True, False, False, True]
    # teachers' pass rate 3/4 (item 4's teacher said refund) -> gap = 0.75 - 0.5
    assert overall.gap == pytest.approx(0.25)
    # exact match with the reference: item 1 matches (normalised), item 2 does not, 3-4 have no reference (left out)
    assert overall.metrics[exact] == 0.5
    by = {s.slice: s for s in slices}
    assert by["a"].metrics[label] == 0.5 and by["b"].metrics[label] == 0.5 and by["b"].metrics[exact] == 0.0


def test_verifier_metric_text_forms_and_a_curation_filter_by_name(tmp_path: Path) -> None:
    assert M.parse_metric("verifier:label:intent=billing|login") == {
        "kind": "verifier", "verifier": {"type": "label", "field": "intent", "allowed": ["billing", "login"],
                                         "normalize": True}}  # fmt: skip
    assert M.parse_metric("verifier:json") == {"kind": "verifier", "verifier": {"type": "json"}}
    assert M.parse_metric(r"verifier:regex:summary=\w+.*")["verifier"] == {
        "type": "regex", "pattern": r"\w+.*", "field": "summary"}  # fmt: skip
    assert M.parse_metric('verifier:{"type": "exact_match"}')["verifier"] == {"type": "exact_match"}
    assert M.parse_metric("judge:big") == {"kind": "judge", "teacher": "big"}
    assert M.split_metrics('exact:intent, verifier:{"type": "label", "allowed": ["a", "b"]}, judge:big') == [
        "exact:intent", 'verifier:{"type": "label", "allowed": ["a", "b"]}', "judge:big"]  # fmt: skip
    with pytest.raises(UserError, match="unknown verifier"):
        M.parse_metric("verifier:bleu")
    with pytest.raises(UserError, match="needs a 'schema'"):
        M.validate_metric({"kind": "verifier", "verifier": {"type": "json_schema"}})
    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        with ws.transaction() as cur:
            b = new_batch(cur, "t.jsonl", "log")
            insert_records(cur, b, [{"messages": [{"role": "user", "content": "hi"}], "response": j(intent="x")}])
            finish_batch(cur, b, n_lines=1, n_imported=1, n_duplicates=0, n_quarantined=0)
        run_filter(ws, "intents", {"kind": "verifier", "verifier": LABEL["verifier"]}, "keep", apply=True)
        stored = set_bar(ws, QualityBar(task="t", metrics=[M.parse_metric("verifier:@intents")], threshold=0.5))
        assert stored.metrics[0]["verifier"] == LABEL["verifier"]
        assert get_bar(ws).metrics[0]["verifier"] == LABEL["verifier"]  # type: ignore[union-attr]
        with pytest.raises(UserError, match="no curation verifier filter named 'nope'"):
            set_bar(ws, QualityBar(task="t", metrics=[M.parse_metric("verifier:@nope")], threshold=0.5))
        with pytest.raises(UserError, match="no teacher named 'ghost'"):
            set_bar(ws, QualityBar(task="t", metrics=[M.parse_metric("judge:ghost")], threshold=0.5))


def test_parse_grade_is_robust() -> None:
    assert parse_grade('{"score": 5, "reason": "same"}') == 1.0
    assert parse_grade('```json\n{"score": 3}\n```') == 0.5
    assert parse_grade('Sure. {"grade": "2"} is my verdict') == 0.25
    assert parse_grade("Score: 4/5 - close") == pytest.approx(0.75)
    assert parse_grade("I'd rate it 7 out of 10.") == pytest.approx(0.7)
    assert parse_grade(" 1 ") == 0.0
    assert parse_grade("Rating = 9") is None  # out of the 1-5 scale, no denominator
    assert parse_grade('{"intent": "refund"}') is None and parse_grade("") is None and parse_grade(None) is None


def _grader(body: dict[str, Any], served_model: str, planted: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fake server's answer to a judge request: 5 when the candidate equals the reference, a fenced 3 when it
    is other JSON, prose "1 out of 5" otherwise (three reply shapes the parser must handle)."""
    msgs = body.get("messages") or []
    if "strict grader" not in str(msgs[0].get("content")):
        return ORIGINAL(body, served_model, planted)
    user = str(msgs[-1]["content"])
    reference = user.split("Reference answer:\n")[1].split("\n\nCandidate answer:")[0]
    candidate = user.split("Candidate answer:\n")[1].rsplit("\n\nGrade the candidate", 1)[0]
    if candidate == reference:
        text = '{"score": 5, "reason": "same decision"}'
    elif _is_json(candidate):
        text = '```json\n{"score": 3, "reason": "valid but different"}\n```'
    else:
        text = "I would rate this 1 out of 5."
    doc = ORIGINAL(body, served_model)
    doc["choices"][0]["message"]["content"] = text
    return doc


def _is_json(s: str) -> bool:
    try:
        json.loads(s)
    except ValueError:
        return False
    return True


ORIGINAL = fake.completion_body


@pytest.fixture
def grader(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """The fake OpenAI server, answering grading requests with grades (other requests as usual)."""
    monkeypatch.setattr(fake, "completion_body", _grader)
    monkeypatch.setenv(KEY_ENV, KEY)
    srv = FakeOpenAI(api_key=KEY)
    srv.start()
    yield srv
    srv.stop()


def test_llm_judge_through_a_workspace_teacher_with_retries_cache_and_ledger(
    tmp_path: Path, grader: FakeOpenAI
) -> None:
    same, other = j(intent="billing"), j(intent="login")
    items = [
        Item(1, "a", "ticket 1", same, same, None),
        Item(2, "a", "ticket 2", other, same, None),
        Item(3, "b", "ticket 3", "dunno", same, None),
        Item(4, "b", "ticket 1", same, same, None),  # the same grading request as item 1: sent once
    ]
    grader.plans["ticket 2"] = [{"kind": "429", "retry_after": 0.01}, {"kind": "500"}]  # then it answers
    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        save_teacher(ws, TeacherConfig(name="judge", base_url=grader.base_url, model="grader-2026-01-01",
                                       api_key_env=KEY_ENV, terms_ack=True, price_in_per_m=1.0, price_out_per_m=2.0,
                                       max_retries=3, timeout_s=5.0))  # fmt: skip
        bar = set_bar(ws, QualityBar(task="triage tickets", metrics=[M.parse_metric("judge:judge"),
                                     {"kind": "valid_json"}], threshold=0.6))  # fmt: skip
        reports = judge_all(ws, bar, items)
        rep = reports["judge:judge"]
        assert [i.judged["judge:judge"] for i in items] == [1.0, 0.5, 0.0, 1.0]
        assert rep["n_requests"] == 3 and rep["n_cached"] == 0 and rep["n_failed"] == 0 and rep["cost_usd"] > 0
        assert grader.total_successes() == 3 and sum(grader.attempts.values()) == 5  # 2 retries for ticket 2
        overall, slices = score_all(items, bar)
        assert overall.score == pytest.approx(0.625) and overall.gap == pytest.approx(0.375)
        assert {s.slice: s.score for s in slices} == {"a": 0.75, "b": 0.5}
        assert [i.agree for i in items] == [True, False, False, True]
        ledger = ws.query("SELECT kind, status, attempts FROM teacher_ledger ORDER BY attempts")
        assert ledger == [("judge", "ok", 1), ("judge", "ok", 1), ("judge", "ok", 3)]
        # judged again: every grade comes from the cache, nothing is sent or paid twice
        again = [Item(i.record_id, i.slice, i.prompt, i.student, i.teacher, None) for i in items]
        rep2 = judge_all(ws, bar, again)["judge:judge"]
        assert rep2["n_requests"] == 0 and rep2["n_cached"] == 4 and sum(grader.attempts.values()) == 5
        assert [i.judged["judge:judge"] for i in again] == [1.0, 0.5, 0.0, 1.0]
        stored = " ".join(str(r) for t in ("teacher_cache", "teacher_ledger", "teachers", "quality_bars")
                          for r in ws.query(f"SELECT * FROM {t}"))  # fmt: skip
        assert KEY not in stored and KEY_ENV in stored


def test_llm_judge_failures_leave_items_unscored(tmp_path: Path, grader: FakeOpenAI) -> None:
    grader.plans["ticket 9"] = [{"kind": "500"}] * 5
    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        save_teacher(ws, TeacherConfig(name="judge", base_url=grader.base_url, model="grader-2026-01-01",
                                       api_key_env=KEY_ENV, terms_ack=True, max_retries=1, timeout_s=5.0))  # fmt: skip
        bar = set_bar(ws, QualityBar(task="t", metrics=[{"kind": "judge", "teacher": "judge"}], threshold=0.5))
        items = [Item(9, "a", "ticket 9", "x", "y", None), Item(8, "a", "ticket 8", "y", "y", None)]
        rep = judge_all(ws, bar, items)["judge:judge"]
        assert rep["n_failed"] == 1 and [i.judged["judge:judge"] for i in items] == [None, 1.0]
        overall, _ = score_all(items, bar)
        assert overall.score == 1.0 and items[0].agree is None  # left out, not counted as a disagreement
        assert ws.query("SELECT status, http_status FROM teacher_ledger WHERE status <> 'ok'") == [("failed", 500)]


def test_an_evaluation_reports_judge_and_verifier_metrics_per_slice(
    tiny_model: Path, triage_file: Path, tmp_path: Path, grader: FakeOpenAI
) -> None:
    from train.evaluate import evaluate_model, get_evaluation

    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        save_teacher(ws, TeacherConfig(name="judge", base_url=grader.base_url, model="grader-2026-01-01",
                                       api_key_env=KEY_ENV, terms_ack=True, price_in_per_m=1.0,
                                       timeout_s=5.0))  # fmt: skip
        bar = set_bar(ws, QualityBar(task="triage", threshold=0.5, metrics=[
            {"kind": "json_field", "field": "intent"}, M.parse_metric("verifier:json"), M.parse_metric("judge:judge")]))  # fmt: skip
        res = evaluate_model(ws, base_model=str(tiny_model), data_path=triage_file, bar=bar, limit=6,
                             max_new_tokens=6, kind="baseline")  # fmt: skip
        ev = get_evaluation(ws, res.eval_id)
        assert ev["summary"]["judges"]["judge:judge"]["n_items"] == 6 and grader.total_successes() >= 1
        for s in ev["slices"]:
            assert set(s["metrics"]) == {"exact:intent", "verifier:json", "judge:judge"}
            assert 0.0 <= s["metrics"]["judge:judge"] <= 1.0
        n_ledger = ws.scalar("SELECT count(*) FROM teacher_ledger WHERE kind = 'judge'")
        assert n_ledger == ev["summary"]["judges"]["judge:judge"]["n_requests"]
