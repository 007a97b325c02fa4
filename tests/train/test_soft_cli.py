"""`distill train` with soft labels from a curated dataset version (candidates computed from the stored logprobs) and
`distill eval --constrain-labels`: the flags land in the run's config, the constraint in the evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from trainfix import INTENTS, logprob_workspace

from curation.workspace import Workspace
from distill.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_soft_label_flags_are_recorded_and_eval_constrains_labels(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from curation.rebalance import snapshot_version
    from curation.splits import freeze_split, plan_split

    ws_path = str(tmp_path / "ws.duckdb")
    with Workspace.open(ws_path) as ws:
        logprob_workspace(ws, 32)
        freeze_split(ws, plan_split(ws, share=0.25, seed=0, threshold=None))
        snapshot_version(ws, "v1", split="heldout")
    code, _, err = run_cli(capsys, "train", "--dataset", "v1", "--model", str(tiny_model), "--soft-labels",
                           "candidates", "-w", ws_path)  # fmt: skip
    assert code == 1 and "checkable field" in err  # no bar, no --label-field: said before any run is recorded
    labels = "|".join(sorted(INTENTS))
    run_cli(capsys, "bar", "set", "--task", "triage", "--metric", "exact:intent", "--metric",
            f"verifier:label:intent={labels}", "--threshold", "0.5", "-w", ws_path)  # fmt: skip
    code, out, err = run_cli(capsys, "train", "--dataset", "v1", "--model", str(tiny_model), "--steps", "2",
                             "--precision", "fp32", "--soft-labels", "candidates", "--temperature", "2",
                             "--alpha", "0.8:0.2", "--soft-candidates", "3", "--eval", "--constrain-labels", "trie",
                             "--limit", "4", "--max-new-tokens", "6", "--json",
                             "-w", ws_path)  # fmt: skip
    doc = json.loads(out)
    assert code in (0, 1) and doc["runs"][0]["status"] == "done", err
    with Workspace.open(ws_path) as ws:
        run = ws.query_dicts("SELECT CAST(config AS VARCHAR) AS config, data_path FROM runs WHERE run_id = 1")[0]
        stored = json.loads(ws.scalar("SELECT CAST(summary AS VARCHAR) FROM evaluations WHERE eval_id = 1"))
    cfg = json.loads(run["config"])
    assert {k: cfg[k] for k in ("soft_labels", "soft_temperature", "soft_alpha", "soft_alpha_end",
                                "soft_max_candidates", "label_field", "labels")} == {
        "soft_labels": "candidates", "soft_temperature": 2.0, "soft_alpha": 0.8, "soft_alpha_end": 0.2,
        "soft_max_candidates": 3, "label_field": "intent", "labels": sorted(INTENTS)}  # fmt: skip
    rows = pq.read_table(run["data_path"]).to_pylist()
    spread = [r for r in rows if r["candidates"] and len(r["candidates"]) > 1]
    assert spread and all(r["split"] in ("train", "heldout") for r in spread)
    for r in spread:  # the wrong answers: the right intent among the candidates, the most probable one
        best = max(r["candidates"], key=lambda c: c["prob"])
        assert best["value"] != json.loads(r["teacher_response"])["intent"]
    tuned = doc["evaluations"]["1"][0]
    assert tuned["constrain"] == stored["constrain"] and stored["constrain"]["mode"] == "trie"
    assert stored["constrain"]["labels"] == len(INTENTS) and stored["constrain"]["field"] == "intent"


async def test_training_screen_starts_a_soft_label_run(tiny_model: Path, tmp_path: Path) -> None:
    """The soft-label fields come from the TRAIN declaration; a bad alpha is refused with the option's message."""
    from test_screens import OneScreen, settle
    from textual.widgets import Input
    from trainfix import soft_rows, write_soft_parquet

    from studio.screens.training import RunEventReceived, TrainingScreen
    from studio.widgets.option_form import OptionForm
    from train.events import TrainingStarted

    data = write_soft_parquet(soft_rows(16, 4), tmp_path / "soft.parquet")
    ws = Workspace.open(tmp_path / "ws.duckdb")
    app = OneScreen(lambda: TrainingScreen(ws))
    seen: list = []
    async with app.run_test(size=(160, 60), notifications=True, message_hook=seen.append) as pilot:
        await settle(app, pilot)
        screen = app.screen
        screen.query_one("#train-data", Input).value = str(data)
        form = screen.query_one("#train-options", OptionForm)
        values = {"models": str(tiny_model), "max_steps": "2", "soft_labels": "candidates",
                  "soft_temperature": "3", "alpha": "2:1", "soft_max_candidates": "3"}  # fmt: skip
        for name, v in values.items():
            form.set_value(name, v)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert ws.scalar("SELECT count(*) FROM runs") == 0  # alpha 2 is refused before a run starts
        assert any("Soft-label alpha (--alpha)" in n.message for n in app._notifications)
        form.set_value("alpha", "0.9:0.1")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        cfg = json.loads(ws.scalar("SELECT CAST(config AS VARCHAR) FROM runs WHERE run_id = 1"))
        assert (cfg["soft_labels"], cfg["soft_temperature"], cfg["soft_alpha"], cfg["soft_alpha_end"],
                cfg["soft_max_candidates"], cfg["label_field"]) == ("candidates", 3.0, 0.9, 0.1, 3, "intent")  # fmt: skip
        assert ws.scalar("SELECT status FROM runs WHERE run_id = 1") == "done"
        started = [m.event for m in seen if isinstance(m, RunEventReceived) and isinstance(m.event, TrainingStarted)]
        assert started and {e.n_soft for e in started} == {16}  # the live curve's title says so while the run goes
    ws.close()
