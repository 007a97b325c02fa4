"""The CLI end to end on a tiny model: bar, train (single and run group) with evaluation, runs, eval views."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from curation.workspace import Workspace
from distill.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bar_train_eval_runs(tiny_model: Path, triage_file: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    ws_path = str(tmp_path / "ws.duckdb")
    Workspace.open(ws_path).close()
    code, _, err = run_cli(capsys, "eval", "1", "-w", ws_path)
    assert code == 1 and "no run 1" in err
    code, _, err = run_cli(capsys, "train", "--data", str(triage_file), "--eval", "-w", ws_path)
    assert code == 1 and "no quality bar" in err
    code, out, _ = run_cli(capsys, "bar", "set", "--task", "triage", "--metric", "exact:intent", "--metric",
                           "json_f1", "--threshold", "0.7", "--slice-bar", "payments=0.9", "--json",
                           "-w", ws_path)  # fmt: skip
    assert code == 0 and json.loads(out)["metrics"][0] == {"kind": "json_field", "field": "intent"}
    code, out, _ = run_cli(capsys, "bar", "set", "--threshold", "0.8", "--teacher-price", "3", "--json", "-w", ws_path)
    bar = json.loads(out)
    assert bar["threshold"] == 0.8 and bar["task"] == "triage" and bar["slice_bars"] == {"payments": 0.9}

    other = tmp_path / "tiny-copy"
    shutil.copytree(tiny_model, other)
    code, out, _ = run_cli(capsys, "train", "--data", str(triage_file), "--model", str(tiny_model), "--model",
                           str(other), "--steps", "3", "--eval", "--limit", "4", "--max-new-tokens", "4",
                           "--precision", "fp32", "--json", "-w", ws_path)  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and doc["group_id"] == 1 and [r["status"] for r in doc["runs"]] == ["done", "done"]
    assert {len(v) for v in doc["evaluations"].values()} == {2}  # tuned + baseline per run

    code, out, _ = run_cli(capsys, "runs", "--json", "-w", ws_path)
    runs = json.loads(out)
    assert [r["run_id"] for r in runs] == [2, 1] and all(r["group_id"] == 1 for r in runs)
    code, out, _ = run_cli(capsys, "runs", "1", "--json", "-w", ws_path)
    assert [m["step"] for m in json.loads(out)["metrics"] if m["phase"] == "train"] == [1, 2, 3]

    code, out, _ = run_cli(capsys, "eval", "--show", "1", "-w", ws_path)
    assert code == 0 and "payments" in out and "overall" in out
    code, out, _ = run_cli(capsys, "eval", "--show", "1", "--disagreements", "--json", "-w", ws_path)
    n_bad = Workspace.open(ws_path)
    try:
        expected = n_bad.scalar("SELECT count(*) FROM eval_items WHERE eval_id = 1 AND NOT agree")
    finally:
        n_bad.close()
    assert len(json.loads(out)) == expected

    code, out, _ = run_cli(capsys, "eval", "1", "--no-baseline", "--limit", "3", "--max-new-tokens", "2",
                           "-w", ws_path)  # fmt: skip
    assert "evaluation 5 (run 1" in out and "verdict:" in out and code in (0, 1)


def test_train_on_a_curated_dataset_version_from_a_relative_workspace_path(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`distill train --dataset` consumes curation's version: its members and weights, the frozen held-out side,
    review edits applied and rejections left out; a workspace given relative to the current folder works."""
    import pyarrow.parquet as pq
    from trainfix import curate_version, triage_workspace

    monkeypatch.chdir(tmp_path)
    with Workspace.open("ws.duckdb") as ws:
        triage_workspace(ws, 40)
        want = curate_version(ws, "v1")
        members = ws.query("SELECT record_id, side, weight FROM dataset_members WHERE version = 'v1'")
    run_cli(capsys, "bar", "set", "--task", "triage", "--metric", "exact:intent", "--threshold", "0.5", "-w",
            "ws.duckdb")  # fmt: skip
    code, out, err = run_cli(capsys, "train", "--dataset", "v1", "--model", str(tiny_model), "--steps", "2",
                             "--precision", "fp32", "--eval", "--limit", "4", "--max-new-tokens", "4", "--json",
                             "-w", "ws.duckdb")  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and doc["runs"][0]["status"] == "done", err
    with Workspace.open("ws.duckdb") as ws:
        run = ws.query_dicts("SELECT dataset_version, data_path, out_dir FROM runs WHERE run_id = 1")[0]
    assert run["dataset_version"] == "v1" and Path(run["out_dir"]).is_absolute()
    rows = pq.read_table(run["data_path"]).to_pylist()
    assert {(r["record_id"], r["split"], r["weight"]) for r in rows} == {tuple(m) for m in members}
    assert {r["record_id"] for r in rows if r["split"] == "heldout"} == want["heldout"]
    assert not want["rejected"] & {r["record_id"] for r in rows}
    assert len({r["weight"] for r in rows if r["split"] == "train"}) > 1  # rare slices up-weighted
    assert set(want["edited"]) <= {r["record_id"] for r in rows}
    for r in rows:
        if r["record_id"] in want["edited"]:
            assert r["messages"][-1]["content"] == want["edited"][r["record_id"]] == r["teacher_response"]
    tuned, base = doc["evaluations"]["1"]
    assert tuned["n_items"] == base["n_items"] == 4 and len({s["slice"] for s in tuned["slices"]}) == 3


def _gold_files(tmp_path: Path) -> tuple[Path, Path]:
    """The same 12 unseen tickets as a CSV (references only) and as fine-tuning JSON lines (answer + reference)."""
    import csv

    from trainfix import triage_rows

    rows = triage_rows(0, 12, seed=5)
    with (tmp_path / "gold.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["ticket", "gold", "area"])
        for r in rows:
            w.writerow([r["messages"][1]["content"], r["messages"][-1]["content"], r["slice"]])
    with (tmp_path / "gold.jsonl").open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"messages": r["messages"], "reference": r["messages"][-1]["content"],
                                "metadata": {"area": r["slice"]}}) + "\n")  # fmt: skip
    return tmp_path / "gold.csv", tmp_path / "gold.jsonl"


def test_eval_on_an_external_gold_set(tiny_model: Path, triage_file: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """`distill eval RUN --data FILE`: a CSV and a JSONL gold set with references, per slice beside the held-out
    result, with intervals, calibration and the run's cost; the workspace gets evaluations, never records."""
    ws_path = str(tmp_path / "ws.duckdb")
    Workspace.open(ws_path).close()
    run_cli(capsys, "bar", "set", "--task", "triage", "--metric", "exact:intent", "--threshold", "0.7", "-w", ws_path)
    code, _, err = run_cli(capsys, "train", "--data", str(triage_file), "--model", str(tiny_model), "--steps", "2",
                           "--precision", "fp32", "--json", "-w", ws_path)  # fmt: skip
    assert code == 0, err
    gold_csv, gold_jsonl = _gold_files(tmp_path)

    code, out, err = run_cli(capsys, "eval", "1", "--no-baseline", "--data", str(gold_csv), "--reference-field", "gold",
                             "--slice-field", "area", "--prompt-col", "ticket", "--limit", "6", "--max-new-tokens", "4", "--json",
                             "-w", ws_path)  # fmt: skip
    assert code in (0, 1), err
    assert out, err
    held, gold = json.loads(out)
    assert (held["eval_set"], gold["eval_set"]) == ("heldout", "gold") and gold["data_path"] == str(gold_csv)
    assert gold["n_items"] == 6 and {s["slice"] for s in gold["slices"]} == {"payments", "accounts", "logistics"}
    for s in [*gold["slices"], gold["overall"]]:
        assert s["n_scored"] == s["n"] and s["score_low"] <= s["score"] <= s["score_high"]
        assert s["diff_low"] <= s["diff"] <= s["diff_high"] and s["ece"] is not None
    assert "reference stands in for the teacher" in gold["note"]  # the CSV has references, no answers
    assert gold["macro"]["n_slices"] == 3 and gold["macro"]["low"] <= gold["macro"]["score"] <= gold["macro"]["high"]
    for doc in (held, gold):
        assert doc["wall_s"] > 0 and doc["new_tokens"] > 0 and doc["overall_tokens_per_s"] > 0
        assert doc["peak_rss_mb"] > 100 and doc["peak_gpu_mb"] is None  # CPU: no GPU figure
    with Workspace.open(ws_path) as ws:
        assert ws.scalar("SELECT count(*) FROM records") == 0 and ws.scalar("SELECT count(*) FROM import_batches") == 0
        items = ws.query("SELECT record_id, source_line, reference IS NOT NULL, confidence FROM eval_items "
                         "WHERE eval_id = ? ORDER BY source_line", [gold["eval_id"]])  # fmt: skip
        assert len(items) == 6 and all(r[0] is None and r[1] >= 2 and r[2] for r in items)
        # a confidence per answer (None only for an answer that ended at once: no token to be sure of)
        assert all(r[3] is None or 0 < r[3] <= 1 for r in items) and any(r[3] is not None for r in items)

    code, out, err = run_cli(capsys, "eval", "1", "--no-baseline", "--data", str(gold_jsonl), "--slice-field",
                             "metadata.area", "--max-new-tokens", "4", "-w", ws_path)  # fmt: skip
    assert code in (0, 1), err
    assert "on the gold set gold.jsonl" in out and "student [95% CI]" in out and "(macro, 3 slices)" in out
    assert "tuned student: held-out (evaluation" in out and "vs gold set gold.jsonl" in out
    assert "all 2 evaluations: wall" in out and "calibration: ECE" in out and "note:" not in out  # answers present
    code, out, _ = run_cli(capsys, "eval", "--show", "4", "-w", ws_path)
    assert "gold set gold.jsonl" in out and "held-out (evaluation 3)" in out
    code, out, _ = run_cli(capsys, "runs", "1", "-w", ws_path)
    assert "score [95% CI]" in out and "gold" in out

    bad = tmp_path / "bad.csv"
    bad.write_text('ticket,gold,area\ncharged twice,"{""intent"": ""billing""}",payments\nlate,,logistics\n')
    code, _, err = run_cli(capsys, "eval", "1", "--data", str(bad), "--reference-field", "gold", "--prompt-col",
                           "ticket", "-w", ws_path)  # fmt: skip
    assert code == 1 and "bad.csv line 3: no reference answer" in err
