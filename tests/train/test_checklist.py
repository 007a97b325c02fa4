"""The checklist on a workspace built step by step: each step flips its item (and the gate of `distill train`)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from trainfix import curate_version, triage_workspace

from curation.filters import run_filter
from curation.records import finish_batch, insert_records, new_batch
from curation.review import accept
from curation.teacher.config import TeacherConfig, save_teacher
from curation.workspace import Workspace
from distill.cli import main
from train import events as ev
from train import store
from train.bars import QualityBar, set_bar
from train.checklist import ITEMS, PHASES, open_items, run
from train.config import RunConfig


def states(ws: Workspace) -> dict[str, str]:
    return {r.key: r.state for r in run(ws)}


def add_records(ws: Workspace, rows: list[dict]) -> list[int]:
    with ws.transaction() as cur:
        b = new_batch(cur, "more.jsonl", "log")
        ids = insert_records(cur, b, rows)
        finish_batch(cur, b, n_lines=len(rows), n_imported=len(ids), n_duplicates=0, n_quarantined=0)
    return list(ids)


def test_every_phase_has_items_and_each_open_item_names_its_next_step(tmp_path: Path) -> None:
    assert [p for p in PHASES if any(i.phase == p for i in ITEMS)] == list(PHASES)
    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        items = run(ws)
    assert {i.key for i in items} == {i.key for i in ITEMS}
    assert all(i.next_step for i in items if i.state == "open")
    assert {i.key: i.detail for i in items if i.phase == "rollout"} == dict.fromkeys(
        ["serving", "shadow_run", "canary", "monitoring_alarms"], "not started"
    )


def test_each_step_flips_its_item(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws.duckdb")
    s = states(ws)
    assert s["bar_set"] == s["slice_bars"] == s["baselines_run"] == s["heldout_frozen"] == "open"
    assert s["terms_acknowledged"] == "n/a"

    # Define success: the bar, then each of its parts.
    set_bar(ws, QualityBar(task="triage", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.5))
    s = states(ws)
    assert s["bar_set"] == "ok" and s["slice_bars"] == s["cost_latency_targets"] == s["max_gap"] == "open"
    set_bar(ws, QualityBar(task="triage", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.5,
                           slice_bars={"payments": 0.6}, max_gap=0.1, max_latency_p95_ms=800))  # fmt: skip
    s = states(ws)
    assert s["slice_bars"] == s["max_gap"] == "ok" and s["cost_latency_targets"] == "open"
    set_bar(ws, QualityBar(task="triage", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.5,
                           slice_bars={"payments": 0.6}, max_gap=0.1, max_latency_p95_ms=800,
                           max_cost_per_1k=0.5))  # fmt: skip
    assert states(ws)["cost_latency_targets"] == "ok"

    # Data: real logs; a slice made up mostly by the teacher flips "prompts from real logs".
    triage_workspace(ws, 120)
    assert states(ws)["prompts_from_real_logs"] == "ok"
    synth = add_records(ws, [{"messages": [{"role": "user", "content": f"made up {i}"}], "response": "{}",
                              "slice": "invented", "origin": "synthetic"} for i in range(3)])  # fmt: skip
    item = next(r for r in run(ws) if r.key == "prompts_from_real_logs")
    assert item.state == "open" and "invented" in item.detail
    with ws.transaction() as cur:  # (a direct write: the test undoes its own fixture)
        cur.execute("DELETE FROM records WHERE record_id IN (SELECT unnest(?))", [synth])
    assert states(ws)["prompts_from_real_logs"] == "ok"
    assert states(ws)["distribution_vs_production"] == "open"  # no version yet
    curate_version(ws, "v1")
    s = states(ws)
    assert s["heldout_frozen"] == s["distribution_vs_production"] == "ok"
    # The triage sample's 18 distinct prompts leave every slice short of 20 train rows in a version.
    assert s["rare_slices_represented"] == "open"
    heldout_prompt = ws.scalar("SELECT r.prompt FROM records r JOIN split_members m USING (record_id) "
                               "WHERE m.side = 'heldout' LIMIT 1")  # fmt: skip
    leak = add_records(ws, [{"messages": [{"role": "user", "content": heldout_prompt}], "response": "{}",
                             "slice": "payments", "metadata": {"copy": 1}}])  # fmt: skip
    item = next(r for r in run(ws) if r.key == "heldout_frozen")
    assert item.state == "open" and item.next_step == "distill dedupe --exact"
    with ws.transaction() as cur:
        cur.execute("DELETE FROM records WHERE record_id = ?", leak)
    assert states(ws)["heldout_frozen"] == "ok"
    assert [r.key for r in open_items(ws)] == ["rare_slices_represented"]

    # Teacher outputs: terms, filters.
    save_teacher(ws, TeacherConfig(name="big", base_url="http://127.0.0.1:9/v1", model="m", api_key_env="K"))
    assert states(ws)["terms_acknowledged"] == "open"
    save_teacher(ws, TeacherConfig(name="big", base_url="http://127.0.0.1:9/v1", model="m", api_key_env="K",
                                   terms_ack=True), replace=True)  # fmt: skip
    assert states(ws)["terms_acknowledged"] == "ok"
    assert states(ws)["outputs_filtered"] == "open"
    run_filter(ws, "json", {"kind": "verifier", "verifier": {"type": "json"}}, "keep", apply=True)
    assert states(ws)["outputs_filtered"] == "ok"

    # Student: a finished run, watched and kept; a second base model.
    adapter = tmp_path / "best"
    adapter.mkdir()
    rid = store.create_run(ws, RunConfig(base_model="small", patience=3), dataset_version="v1", group_id=None)
    store.update_run(ws, rid, status="done", adapter_path=str(tmp_path / "gone"), finished_at=datetime.now())
    s = states(ws)
    assert s["two_student_sizes"] == s["overfitting_watched"] == s["checkpoints_kept"] == "open"
    for step, loss in ((0, 2.0), (10, 1.5)):
        store.record_metric(ws, rid, ev.EvalLogged(step, loss))
    store.update_run(ws, rid, adapter_path=str(adapter))
    s = states(ws)
    assert s["overfitting_watched"] == s["checkpoints_kept"] == "ok" and s["two_student_sizes"] == "open"
    rid2 = store.create_run(ws, RunConfig(base_model="larger"), dataset_version="v1", group_id=None)
    store.update_run(ws, rid2, status="failed")
    assert states(ws)["two_student_sizes"] == "open"  # only finished runs count
    store.update_run(ws, rid2, status="done")
    assert states(ws)["two_student_sizes"] == "ok"

    # Evaluation: gap, per-slice verdicts, disagreements inspected (reviews made after the evaluation).
    assert states(ws)["gap_measured"] == "open"
    held = [r[0] for r in ws.query("SELECT record_id FROM split_members WHERE side = 'heldout' ORDER BY 1")][:3]
    eval_id = store.insert_evaluation(
        ws, {"run_id": rid, "kind": "tuned", "base_model": "small", "n_items": 3, "gap": 0.05, "summary": "{}",
             "created_at": datetime.now()},
        [{"slice": "payments", "n": 2, "score": 0.5, "bar": 0.6, "passed": False, "metrics": "{}"},
         {"slice": "accounts", "n": 1, "score": 1.0, "bar": 0.5, "passed": True, "metrics": "{}"}],
        [{"record_id": r, "slice": "payments", "scores": "{}", "agree": False} for r in held],
    )  # fmt: skip
    s = states(ws)
    assert s["gap_measured"] == "ok" and s["per_slice_verdicts"] == s["disagreements_inspected"] == "open"
    item = next(r for r in run(ws) if r.key == "per_slice_verdicts")
    assert item.detail == "failing: payments 0.50 < 0.60"
    for r in held[:2]:
        accept(ws, r, reviewer="test")
    assert next(r for r in run(ws) if r.key == "disagreements_inspected").detail.startswith("2 of 3")
    accept(ws, held[2], reviewer="test")
    assert states(ws)["disagreements_inspected"] == "ok"
    with ws.transaction() as cur:
        cur.execute("UPDATE eval_slices SET passed = true WHERE eval_id = ?", [eval_id])
    assert states(ws)["per_slice_verdicts"] == "ok"

    # Scope and justify: a baseline, then the payback (prices and a measured throughput).
    store.insert_evaluation(ws, {"kind": "baseline:zero-shot", "base_model": "small", "n_items": 3, "score": 0.2,
                                 "passed": False, "summary": "{}", "throughput_rps": 4.0,
                                 "created_at": datetime.now()}, [], [])  # fmt: skip
    item = next(r for r in run(ws) if r.key == "baselines_run")
    assert item.state == "ok" and "no baseline meets the bar" in item.detail
    assert states(ws)["payback_estimated"] == "open"
    set_bar(ws, QualityBar(task="triage", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.5,
                           slice_bars={"payments": 0.6}, max_gap=0.1, max_latency_p95_ms=800, max_cost_per_1k=0.5,
                           teacher_price_per_1k=5.0, student_price_per_hour=1.0, requests_per_day=1000))  # fmt: skip
    assert states(ws)["payback_estimated"] == "ok"

    # Rollout: what the gateway leaves behind.
    logs = ws.artifacts_dir / "serve" / "logs"
    logs.mkdir(parents=True)
    line = {"request": {"model": "m", "messages": [{"role": "user", "content": 'say "mode":"canary"'}]},
            "response": {}, "metadata": {"slice": "x", "serve": {"route": "both", "mode": "shadow"}}}  # fmt: skip
    (logs / "serve-000001.jsonl").write_text(json.dumps(line, separators=(",", ":")) + "\n")
    s = states(ws)
    assert s["serving"] == s["shadow_run"] == "ok" and s["canary"] == "open"
    line["metadata"]["serve"]["mode"] = "canary"  # type: ignore[index]
    (logs / "serve-000002.jsonl").write_text(json.dumps(line, separators=(",", ":")) + "\n")
    assert states(ws)["canary"] == "ok"
    ws.set_setting("monitor.alarms", [{"metric": "distill_serve_fallbacks_total", "above": 0.2}])
    assert states(ws)["monitoring_alarms"] == "ok"
    ws.close()


def test_train_strict_refuses_with_open_items(tmp_path: Path, triage_file: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    ws_path = str(tmp_path / "ws.duckdb")
    Workspace.open(ws_path).close()
    code = main(["train", "--data", str(triage_file), "--strict", "-w", ws_path])
    err = capsys.readouterr().err
    assert code == 1 and "--strict refuses to train" in err
    assert "checklist: define success / quality bar set: no quality bar yet" in err
    with Workspace.open(ws_path) as ws:
        assert ws.scalar("SELECT count(*) FROM runs") == 0


# The columns ``rounds`` has (schema v15, train.rounds) that the checklist reads or that may not be empty; created
# here only where the workspace's schema does not have the table yet.
ROUNDS_TABLE = """CREATE TABLE IF NOT EXISTS rounds (round_id BIGINT PRIMARY KEY, number INTEGER NOT NULL,
    base_eval_id BIGINT NOT NULL, base_run_id BIGINT NOT NULL, base_version VARCHAR NOT NULL, teacher VARCHAR NOT NULL,
    options JSON NOT NULL, plan JSON NOT NULL, status VARCHAR NOT NULL, eval_id BIGINT, created_at TIMESTAMP NOT NULL)"""


def test_rounds_item_follows_the_rounds_table(tmp_path: Path) -> None:
    def rounds_item() -> tuple[str, str]:
        r = next(r for r in run(ws) if r.key == "rounds_until_the_bar_holds")
        return r.state, r.detail

    def evaluation(passed: bool) -> int:
        return store.insert_evaluation(ws, {"run_id": 1, "kind": "tuned", "base_model": "small", "n_items": 3,
                                            "passed": passed, "summary": "{}", "created_at": datetime.now()}, [], [])  # fmt: skip

    ws = Workspace.open(tmp_path / "ws.duckdb")
    assert rounds_item() == ("open", "no evaluation of a trained student")
    first = evaluation(False)
    gap = next(r for r in run(ws) if r.key == "gap_measured")  # an evaluation without teacher answers has no gap
    assert gap.state == "open" and gap.detail == f"evaluation {first} has no teacher answers to compare with"
    assert rounds_item() == ("open", f"no round yet; evaluation {first} fails its bar")  # no rounds table: no rounds
    with ws.transaction() as cur:  # (a direct write: train.rounds owns the table; the test plays its part)
        cur.execute(ROUNDS_TABLE)
        cur.execute("INSERT INTO rounds (round_id, number, base_eval_id, base_run_id, base_version, teacher, options, "
                    "plan, status, created_at) VALUES (1, 1, ?, 1, 'v1', 't', '{}', '{}', 'running', now())", [first])  # fmt: skip
    assert rounds_item() == ("open", "round 1 running (0 of 1 rounds done)")
    second = evaluation(False)
    with ws.transaction() as cur:
        cur.execute("UPDATE rounds SET status = 'done', eval_id = ? WHERE round_id = 1", [second])
    assert rounds_item() == ("open", f"round 1 done; evaluation {second} still fails its bar")
    with ws.transaction() as cur:
        cur.execute("UPDATE evaluations SET passed = true WHERE eval_id = ?", [second])
    assert rounds_item() == ("ok", f"round 1 clears the bar (evaluation {second}; 1 of 1 rounds done)")
    ws.close()
