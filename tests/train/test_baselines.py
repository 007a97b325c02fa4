"""Phase-1 baselines: few-shot example choice by similarity, zero-/few-shot evaluations of a tiny untuned student,
a cheaper model through the fake teacher server (ledger rows), the "already meets the bar" message, prompt export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from trainfix import KEY, curate_version, fake_teacher_workspace, triage_workspace

from curation.errors import UserError
from curation.workspace import Workspace
from tests.teacher.fake_openai import FakeOpenAI
from train.bars import QualityBar, set_bar
from train.baseline_prompts import choose_shots, export_prompt, few_shot_messages, get_prompt, nearest, shot_of
from train.baselines import latest_baselines, outcome_message, run_baselines
from train.data import Example

SYSTEM = {"role": "system", "content": "Classify the ticket as JSON."}


def ex(rid: int, text: str, answer: str = "{}", split: str = "train", slice_: str = "s") -> Example:
    return Example(rid, split, slice_, 1.0, [SYSTEM, {"role": "user", "content": text},
                                             {"role": "assistant", "content": answer}], answer, None)  # fmt: skip


def test_nearest_orders_by_similarity() -> None:
    pool = np.eye(4, dtype=np.float32)
    q = np.array([[0.1, 0.9, 0.3, 0.0], [0.05, 0.0, 0.2, 1.0]], dtype=np.float32)
    assert nearest(q, pool, 2) == [[1, 2], [3, 2]]
    assert nearest(q, pool, 9) == [[1, 2, 0, 3], [3, 2, 0, 1]]  # k past the pool: all of it


def test_a_test_prompt_gets_its_nearest_train_examples(tmp_path: Path) -> None:
    pool = [ex(1, "I was charged twice for the same order, refund me"), ex(2, "my password reset link does not work"),
            ex(3, "the parcel has not arrived, tracking is stuck"), ex(4, "please refund the duplicate charge on my card"),
            ex(5, "cannot log in to my account since yesterday"), ex(6, "delivery is late by a week")]  # fmt: skip
    held = [ex(10, "refund the double charge on my credit card", split="heldout"),
            ex(11, "locked out: login fails after the password change", split="heldout")]  # fmt: skip
    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        order = choose_shots(ws, held, pool, 2)
    assert [sorted(pool[i].record_id for i in ix) for ix in order] == [[1, 4], [2, 5]]
    # The prompt: the test's system turn, each example as user + assistant turns (nearest last), then the test turn.
    msgs = few_shot_messages(held[0].prompt_messages, [shot_of(pool[i]) for i in order[0]])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[0] == SYSTEM and msgs[-1]["content"] == "refund the double charge on my credit card"
    assert msgs[3]["content"] == pool[order[0][-1]].messages[1]["content"]


def test_outcome_message_names_the_cheapest_passing_baseline() -> None:
    msg = outcome_message([("model:cheap", True, 0.95, 0.4), ("few-shot-k4", True, 0.85, None),
                           ("zero-shot", False, 0.3, None)], 0.8)  # fmt: skip
    assert msg == "the cheapest outcome: few-shot-k4 already meets the bar; training may not be needed"
    msg = outcome_message([("zero-shot", False, 0.3, None), ("few-shot-k2", False, 0.5, None)], 0.8)
    assert msg == "no baseline meets the bar (best: few-shot-k2 at 0.500, bar 0.8); training is justified"


def test_zero_and_few_shot_baselines_of_a_tiny_student(tiny_model: Path, tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws.duckdb")
    with pytest.raises(UserError, match="no quality bar"):
        run_baselines(ws, student=str(tiny_model))
    set_bar(ws, QualityBar(task="triage", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.8))
    with pytest.raises(UserError, match="no dataset version yet"):
        run_baselines(ws, student=str(tiny_model))
    triage_workspace(ws, 40)
    made = curate_version(ws, "v1")
    rep = run_baselines(ws, student=str(tiny_model), ks=(2,), limit=3, max_new_tokens=4, precision="fp32")
    assert rep.dataset_version == "v1" and [r.name for r in rep.results] == ["zero-shot", "few-shot-k2"]
    kinds = [r[0] for r in ws.query("SELECT kind FROM evaluations ORDER BY eval_id")]
    assert kinds == ["baseline:zero-shot", "baseline:few-shot-k2"]
    # Both on the same held-out records of the version, scored per slice by the one scorer.
    items = {k: sorted(r[0] for r in ws.query("SELECT record_id FROM eval_items JOIN evaluations USING (eval_id) "
                                              "WHERE kind = ?", [k])) for k in kinds}  # fmt: skip
    assert items[kinds[0]] == items[kinds[1]] and len(items[kinds[0]]) == 3  # the limit
    assert set(items[kinds[0]]) <= made["heldout"]
    assert ws.scalar("SELECT count(*) FROM eval_slices WHERE eval_id = ?", [rep.results[1].evaluation.eval_id]) >= 2
    # The untuned random model meets no bar: the message says training is justified.
    assert "no baseline meets the bar" in rep.message
    assert [b["name"] for b in latest_baselines(ws)] == ["zero-shot", "few-shot-k2"]

    # The few-shot file the student saw: two train examples before each held-out prompt, none of them held out.
    rows = pq.read_table(ws.artifacts_dir / "baselines" / "v1" / "few-shot-k2.parquet").to_pylist()
    assert all([m["role"] for m in r["messages"]][:6] == ["system", "user", "assistant", "user", "assistant", "user"]
               for r in rows)  # fmt: skip
    spec = get_prompt(ws, "few-shot-k2")["spec"]
    assert spec["k"] == 2 and len(spec["items"]) == 3 and all(len(it["examples"]) == 2 for it in spec["items"])
    assert not {s["record_id"] for s in spec["examples"]} & made["heldout"]

    out = export_prompt(ws, "few-shot-k2", tmp_path / "p.jsonl")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [ln["messages"] for ln in lines] == [r["messages"][:-1] for r in rows]
    doc = json.loads(export_prompt(ws, "few-shot-k2", tmp_path / "p.json").read_text())
    assert doc["kind"] == "baseline:few-shot-k2" and doc["system_prompts"] == ["Classify the ticket as JSON."]
    assert doc["passed"] is False and len(doc["examples"]) >= 2
    with pytest.raises(UserError, match="known: few-shot-k2, zero-shot"):
        export_prompt(ws, "few-shot-k9", tmp_path / "x.json")
    with pytest.raises(UserError, match=r"\.json or \.jsonl"):
        export_prompt(ws, "zero-shot", tmp_path / "x.txt")
    ws.close()


def test_cheaper_model_baseline_through_the_fake_teacher(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    ws = fake_teacher_workspace(tmp_path / "ws.duckdb", fake_server.base_url)
    n_held = ws.scalar("SELECT n_heldout FROM dataset_versions WHERE name = 'v1'")
    rep = run_baselines(ws, zero_shot=False, ks=(), models=("cheap",))
    (res,) = rep.results
    assert res.name == "model:cheap" and res.evaluation.passed and res.evaluation.n_items == n_held
    assert rep.message == "the cheapest outcome: model:cheap already meets the bar; training may not be needed"
    ev = ws.query_dicts("SELECT kind, base_model, cost_per_1k FROM evaluations")[0]
    assert ev["kind"] == "baseline:model:cheap" and ev["base_model"] == "cheap-model-1"
    ledger = ws.query("SELECT kind, status, cost_usd FROM teacher_ledger")
    assert len(ledger) == n_held and {(k, s) for k, s, _ in ledger} == {("baseline", "ok")}
    assert ev["cost_per_1k"] == pytest.approx(1000 * sum(c for _, _, c in ledger) / n_held)
    # Nothing became a teacher output of the records.
    assert ws.scalar("SELECT count(*) FROM teacher_outputs") == 0
    # Again: every answer from the cache, no new request, the same cost per 1k.
    asked = fake_server.total_successes()
    rep2 = run_baselines(ws, zero_shot=False, ks=(), models=("cheap",))
    assert ws.scalar("SELECT count(*) FROM teacher_ledger") == n_held
    assert rep2.results[0].evaluation.cost_per_1k == pytest.approx(ev["cost_per_1k"])
    assert fake_server.total_successes() == asked == n_held
    spec = get_prompt(ws, "model:cheap")["spec"]
    assert spec["teacher"]["model"] == "cheap-model-1" and KEY not in json.dumps(spec)
    ws.close()
