"""The training and evaluation screens mounted in a tiny App on a real workspace and the tiny model."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import App
from textual.widgets import DataTable, Input, Static

from curation.workspace import Workspace
from studio.screens.bar_editor import QualityBarScreen, bar_from_fields
from studio.screens.evaluation import EvaluationScreen, diff_texts
from studio.screens.training import LossCurve, TrainingScreen
from train.bars import QualityBar, get_bar, set_bar
from train.config import RunConfig
from train.evaluate import evaluate_run
from train.store import create_run, update_run
from train.trainer import train


class OneScreen(App[None]):
    def __init__(self, screen_factory) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.factory = screen_factory

    def on_mount(self) -> None:
        self.push_screen(self.factory())


async def settle(app: App[None], pilot) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


async def test_training_screen_launches_a_run_and_draws_its_curve(tiny_model: Path, triage_file: Path,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    ws = Workspace.open(tmp_path / "ws.duckdb")
    app = OneScreen(lambda: TrainingScreen(ws))
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        screen.query_one("#train-data", Input).value = str(triage_file)
        screen.query_one("#train-models", Input).value = str(tiny_model)
        screen.query_one("#train-max-steps", Input).value = "4"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        status = str(screen.query_one("#train-status", Static).render())
        assert "run 1 done" in status
        runs = screen.query_one("#runs", DataTable)
        assert runs.row_count == 1 and runs.get_row_at(0)[4] == "done"
        curve = screen.query_one(LossCurve)
        assert [s for s, _ in curve.train_pts] == [1, 2, 3, 4] and curve.eval_pts[0][0] == 0
    ws.close()


async def test_evaluation_screen_table_disagreements_bar_and_oversampling(tiny_model: Path, triage_file: Path,
                                                                         tmp_path: Path) -> None:  # fmt: skip
    ws = Workspace.open(tmp_path / "ws.duckdb")
    set_bar(ws, QualityBar(task="triage", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.5,
                           slice_bars={"payments": 0.9}))  # fmt: skip
    cfg = RunConfig(base_model=str(tiny_model), data_path=str(triage_file), max_steps=2, precision="fp32")
    run_id = create_run(ws, cfg, dataset_version=None, group_id=None)
    update_run(ws, run_id, status="done", adapter_path=train(cfg, lambda e: None).adapter_path)
    tuned, _ = evaluate_run(ws, run_id, limit=8, max_new_tokens=4)
    app = OneScreen(lambda: EvaluationScreen(ws))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        evals = screen.query_one("#evaluations", DataTable)
        assert evals.row_count == 2  # tuned and baseline
        evals.move_cursor(row=1)  # the tuned one (newest first: baseline is row 0)
        await settle(app, pilot)
        slices = screen.query_one("#slices", DataTable)
        assert slices.row_count == len(tuned.slices) + 2  # (all) first, the macro average last
        assert slices.get_row_at(0)[0] == "(all)" and str(slices.get_row_at(slices.row_count - 1)[0]).startswith(
            "(macro")  # fmt: skip
        first = slices.get_row_at(1)
        verdict = first[-1]
        assert isinstance(verdict, Text) and str(verdict) in ("PASS", "FAIL")
        assert ("green" in str(verdict.style)) == (str(verdict) == "PASS")
        dis = screen.query_one("#disagreements", DataTable)
        n_bad = ws.scalar("SELECT count(*) FROM eval_items WHERE eval_id = ? AND NOT agree", [tuned.eval_id])
        assert dis.row_count == min(n_bad, 100)
        slices.move_cursor(row=1)
        await settle(app, pilot)
        assert dis.row_count == ws.scalar(
            "SELECT count(*) FROM eval_items WHERE eval_id = ? AND NOT agree AND slice = ?", [tuned.eval_id, first[0]]
        )
        assert screen.slice_name == first[0]
        await pilot.press("o")
        await pilot.pause()
        assert ws.query("SELECT slice, n FROM input_requests") == [(first[0], 50)]
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, QualityBarScreen)
        assert app.focused is app.screen.query_one("#bar-task", Input)  # typing starts at the top of the form
        app.screen.query_one("#bar-threshold", Input).value = "0.75"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, EvaluationScreen)
        await pilot.press("e")  # evaluate the newest finished run again, tuned + baseline, in a worker
        await pilot.pause()
        assert type(app.screen).__name__ == "EvaluateForm"  # its options first (the defaults: every held-out row)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        await settle(app, pilot)
        assert evals.row_count == 4 and "evaluation stored" in str(screen.query_one("#eval-status", Static).render())
    bar = get_bar(ws)
    assert bar is not None and bar.threshold == 0.75 and bar.slice_bars == {"payments": 0.9}
    ws.close()


def test_diff_highlights_only_the_differing_words() -> None:
    left, right = diff_texts('{"intent": "login"}', '{"intent": "billing"}')
    assert left.plain == '{"intent": "login"}' and right.plain == '{"intent": "billing"}'
    marked = [left.plain[s.start : s.end] for s in left.spans]
    assert marked == ["login"]
    assert [right.plain[s.start : s.end] for s in right.spans] == ["billing"]


def test_bar_editor_fields_parse_and_reject_bad_numbers() -> None:
    fields = {"bar-task": "t", "bar-metrics": "exact:intent, valid_json", "bar-threshold": "0.8",
              "bar-slice-bars": "a=0.9, b=0.7", "bar-max-gap": "0.1"}  # fmt: skip
    bar = bar_from_fields(fields)
    assert bar.slice_bars == {"a": 0.9, "b": 0.7} and bar.metrics[1] == {"kind": "valid_json"} and bar.max_gap == 0.1
    import pytest

    from curation.errors import UserError

    # the messages `distill bar set` prints for the same values (train.bars.BAR)
    with pytest.raises(UserError, match=r"^Slice bars \(--slice-bar\): expected SLICE=X, got 'a:0\.9'$"):
        bar_from_fields({**fields, "bar-slice-bars": "a:0.9"})
    with pytest.raises(UserError, match=r"^Max gap \(--max-gap\): expected a number, got 'lots'$"):
        bar_from_fields({**fields, "bar-max-gap": "lots"})


async def test_training_screen_offers_the_newest_dataset_version_and_cancels_a_live_run(
    tiny_model: Path, tmp_path: Path
) -> None:
    from trainfix import curate_version, triage_workspace

    ws = Workspace.open(tmp_path / "ws.duckdb")
    triage_workspace(ws, 400)
    curate_version(ws, "v1")
    app = OneScreen(lambda: TrainingScreen(ws))
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert screen.query_one("#train-data", Input).value == "v1"
        assert "v1 (" in str(screen.query_one("#train-versions", Static).render())
        screen.query_one("#train-models", Input).value = str(tiny_model)
        # ~900 steps of batch 1 at a small learning rate: far from done (or early-stopped) when cancelled
        screen.query_one("#train-max-steps", Input).value = "100000"
        screen.query_one("#train-batch-size", Input).value = "1"
        screen.query_one("#train-learning-rate", Input).value = "0.0001"
        await pilot.press("ctrl+s")
        curve = screen.query_one(LossCurve)
        for _ in range(600):  # until the live curve has its first training steps
            await pilot.pause(0.1)
            if len(curve.train_pts) >= 2:
                break
        assert len(curve.train_pts) >= 2 and curve.eval_pts[0][0] == 0
        await pilot.press("escape")
        await settle(app, pilot)
        assert "cancelled" in str(screen.query_one("#train-status", Static).render())
        runs = screen.query_one("#runs", DataTable)
        assert runs.get_row_at(0)[3] == "v1" and runs.get_row_at(0)[4] == "cancelled"
    ws.close()


def test_bar_editor_takes_verifier_and_judge_metrics_and_round_trips_them() -> None:
    from studio.screens.bar_editor import bar_to_fields

    text = 'exact:intent, verifier:{"type": "label", "field": "intent", "allowed": ["a", "b"]}, judge:big'
    bar = bar_from_fields({"bar-task": "t", "bar-metrics": text, "bar-threshold": "0.7"})
    assert [m["kind"] for m in bar.metrics] == ["json_field", "verifier", "judge"]
    assert bar.metrics[1]["verifier"]["allowed"] == ["a", "b"] and bar.metrics[2]["teacher"] == "big"
    again = bar_from_fields(bar_to_fields(bar))
    assert again.metrics == bar.metrics


async def test_evaluation_screen_shows_intervals_gold_beside_heldout_and_the_reliability_chart(
    tiny_model: Path, triage_file: Path, tmp_path: Path
) -> None:
    import json

    from trainfix import triage_rows

    from studio.widgets.reliability_chart import ReliabilityChart
    from train.evaluate import evaluate_model
    from train.gold import load_gold_set

    ws = Workspace.open(tmp_path / "ws.duckdb")
    bar = set_bar(ws, QualityBar(task="triage", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.5))
    run_id = create_run(ws, RunConfig(base_model=str(tiny_model), data_path=str(triage_file)), dataset_version=None,
                        group_id=None)  # fmt: skip
    gold_file = tmp_path / "gold.jsonl"
    gold_file.write_text("".join(json.dumps({"messages": r["messages"], "reference": r["messages"][-1]["content"],
                                             "metadata": {"slice": r["slice"]}}) + "\n"
                                 for r in triage_rows(0, 6, seed=9)))  # fmt: skip
    common = {"base_model": str(tiny_model), "data_path": triage_file, "bar": bar, "run_id": run_id,
              "max_new_tokens": 3}  # fmt: skip
    held = evaluate_model(ws, limit=6, **common)
    gold = evaluate_model(ws, gold=load_gold_set(gold_file), **common)
    app = OneScreen(lambda: EvaluationScreen(ws))
    async with app.run_test(size=(200, 60)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        evals = screen.query_one("#evaluations", DataTable)
        assert [evals.get_row_at(i)[5] for i in range(2)] == ["gold", "heldout"]  # newest first
        await settle(app, pilot)  # row 0 (the gold set) is highlighted on load
        slices = screen.query_one("#slices", DataTable)
        student = slices.get_row_at(0)[3]
        o = gold.overall
        assert str(student) == f"{o.score:.3f} [{o.score_low:.3f}, {o.score_high:.3f}]"
        assert str(slices.get_row_at(0)[4]).startswith(f"{o.diff:+.3f} [")  # paired difference to the teacher
        summary = str(screen.query_one("#eval-summary", Static).render())
        assert f"held-out split (eval {held.eval_id})" in summary and "run cost: wall" in summary
        assert "gold set gold.jsonl" in summary
        chart = screen.query_one(ReliabilityChart)
        rated = sum(b.n for b in o.reliability)  # the items with a confidence (all, unless one ended at once)
        assert rated > 0 and sum(b["n"] for b in chart.bins) == rated
        assert chart.title.startswith("reliability of all items")
        assert f"ECE {o.ece:.3f}" in chart.title
        slices.move_cursor(row=1)
        await settle(app, pilot)
        first = gold.slices[0]
        assert chart.title.startswith(f"reliability of {first.slice}: ECE")
        assert sum(b["n"] for b in chart.bins) == sum(b.n for b in first.reliability)
    ws.close()
