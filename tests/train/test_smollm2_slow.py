"""The real path on the real sample (slow, run in CI): import the production logs, curate a dataset version with a
frozen held-out split and a review edit, train SmolLM2-135M on that version for a few steps, then the per-slice
evaluation of the tuned student against the untuned baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation.importing import import_file
from curation.rebalance import Target, apply_rebalance, plan_rebalance
from curation.review import edit
from curation.splits import freeze_split, plan_split
from curation.workspace import Workspace
from train import store
from train.bars import QualityBar, set_bar
from train.config import RunConfig
from train.evaluate import evaluate_run
from train.launcher import run_training

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "production_logs.jsonl.gz"


@pytest.mark.slow
def test_smollm2_trains_on_a_curated_sample_version_and_beats_its_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ws = Workspace.open(tmp_path / "ws.duckdb")
    assert import_file(ws, SAMPLE).n_imported > 1000
    split = plan_split(ws, share=0.03, seed=0, threshold=None)
    freeze_split(ws, split)
    plan = plan_rebalance(ws, Target("production"), budget=200, select="random", seed=0, split="heldout")
    # Only short tickets on the train side keep the steps fast (the held-out side stays whole: it is frozen).
    short = {r[0] for r in ws.query("SELECT record_id FROM records WHERE length(prompt) < 120")}
    plan.members = [m for m in plan.members if m.side == "heldout" or m.record_id in short]
    # A reviewer's edit made before the version is snapshotted must reach the training file.
    edited_id = min(m.record_id for m in plan.members if m.side == "train")
    edited = json.dumps({"intent": "other", "urgency": "low", "summary": "edited by a reviewer"})
    edit(ws, edited_id, edited, reviewer="ci")
    apply_rebalance(ws, plan, "v1")
    set_bar(ws, QualityBar(task="triage support tickets as JSON", threshold=0.5, slice_bars={"security": 0.9},
                           metrics=[{"kind": "json_field", "field": "intent"}, {"kind": "valid_json"},
                                    {"kind": "json_f1"}, {"kind": "verifier", "verifier": {"type": "json"}}],
                           max_gap=0.5, student_price_per_hour=0.1))  # fmt: skip

    cfg = RunConfig(max_steps=8, batch_size=4, learning_rate=3e-3, eval_every=4, eval_max_examples=7, max_length=192)
    res = run_training(ws, cfg, dataset_version="v1")
    assert res.status == "done", res.error
    run = store.get_run(ws, res.run_id)
    rows = pq.read_table(run["data_path"]).to_pylist()
    assert {r["record_id"] for r in rows if r["split"] == "heldout"} == set(split.heldout)
    assert [r["messages"][-1]["content"] for r in rows if r["record_id"] == edited_id] == [edited]
    evals = [m["eval_loss"] for m in store.run_metrics(ws, res.run_id) if m["phase"] == "eval"]
    assert len(evals) == 3 and evals[-1] < evals[0]  # steps 0, 4, 8

    tuned, base = evaluate_run(ws, res.run_id, max_new_tokens=40, batch_size=7, limit=7)
    assert tuned.n_items == base.n_items == 7
    slices = {r[0] for r in ws.query("SELECT DISTINCT slice FROM records")}
    assert {s.slice for s in tuned.slices} == slices  # the limit is spread over every slice (7)
    assert all(0.0 <= s.score <= 1.0 and s.bar in (0.5, 0.9) for s in tuned.slices)
    assert tuned.latency_p95_ms is not None and tuned.throughput_rps > 0 and tuned.cost_per_1k is not None
    # The JSON shape is what a few steps teach first (the untuned student echoes the ticket).
    assert tuned.overall.metrics["valid_json"] > base.overall.metrics["valid_json"]
    assert tuned.overall.metrics["verifier:json"] == tuned.overall.metrics["valid_json"]
    ws.close()
