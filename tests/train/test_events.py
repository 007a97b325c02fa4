"""Typed training events: every kind round-trips, bad lines become MalformedEvent, the launcher reads a real worker,
and run_metrics rows written the old way still draw the studio's loss curve."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from textual.app import App

from curation.workspace import Workspace
from studio.screens.training import LossCurve, TrainingScreen
from train import events as ev
from train import store
from train.config import RunConfig
from train.launcher import run_training

EXAMPLES: list[ev.Event] = [
    ev.PhaseStarted("load"),
    ev.PhaseStarted("eval", 10),
    ev.RunResumed(20, "/runs/3/checkpoints/step-000020"),
    ev.TrainingStarted(60, 48, 16, "/models/smollm2", {"device": "cpu", "cpu_count": 2}, 460_800),
    ev.StepLogged(1, 2.5, 0.002, 810.5, 42.0, 0.125, 60),
    ev.EvalLogged(10, 1.75, True),
    ev.CheckpointSaved(20),
    ev.RunFinished(60, 0.9, 50, 1.1, "/runs/3/best", None, False, 48, 16),
    ev.RunFinished(8, 1.3, None, None, "/runs/4/best", "/runs/4/merged", True, 4, 0),
    ev.RunFailed("ValueError: no rows", "Traceback ..."),
    ev.MalformedEvent("not JSON", "hello"),
]


def test_every_kind_round_trips_through_one_json_line() -> None:
    assert {type(e) for e in EXAMPLES} == set(ev.EVENT_TYPES)  # a new kind needs an example here
    for event in EXAMPLES:
        line = ev.serialise(event)
        assert "\n" not in line and json.loads(line)["event"] == event.KIND
        assert ev.parse(line) == event
        assert ev.parse(line.encode()) == event
        assert ev.parse(ev.to_dict(event)) == event


def test_the_wire_keeps_the_keys_the_old_dict_events_had() -> None:
    """What the worker printed before events were typed still parses (extra keys such as `phase` are ignored)."""
    old_step = ('{"event": "step", "phase": "train", "step": 3, "total_steps": 10, "loss": 2.0, "lr": 0.001, '
                '"tokens_per_s": 500, "eta_s": 7, "epoch": 0.5}')  # fmt: skip
    assert ev.parse(old_step) == ev.StepLogged(3, 2.0, 0.001, 500.0, 7.0, 0.5, 10)
    assert isinstance(ev.parse(old_step).tokens_per_s, float)  # a JSON integer where a float is due
    old_eval = '{"event": "eval", "phase": "eval", "step": 0, "eval_loss": 3.1, "best": true}'
    assert ev.parse(old_eval) == ev.EvalLogged(0, 3.1, True)
    assert ev.parse('{"event": "error", "message": "boom"}') == ev.RunFailed("boom")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("Some library says hello", "not JSON"),
        ('{"event": "step", "step": 1', "not JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        ('{"step": 1}', "unknown event kind None"),
        ('{"event": "dance"}', "unknown event kind 'dance'"),
        ('{"event": "step", "step": 1, "lr": 0.1, "tokens_per_s": 1, "eta_s": 1, "epoch": 1}', "lacks field 'loss'"),
        ('{"event": "checkpoint", "step": "20"}', "field 'step' is str, not int"),
        ('{"event": "checkpoint", "step": 2.5}', "field 'step' is float, not int"),
        ('{"event": "checkpoint", "step": true}', "field 'step' is bool, not int"),
        ('{"event": "eval", "step": 1, "eval_loss": null}', "field 'eval_loss' is null, not float"),
        ('{"event": "done", "step": 1}', "'done' event lacks field 'final_loss'"),
    ],
)
def test_a_bad_line_becomes_a_malformed_event_saying_why(line: str, reason: str) -> None:
    event = ev.parse(line)
    assert isinstance(event, ev.MalformedEvent)
    assert reason in event.reason and event.line == line.strip()


def test_a_huge_bad_line_is_kept_short() -> None:
    event = ev.parse("x" * 1_000_000)
    assert isinstance(event, ev.MalformedEvent) and len(event.line) == 200


def test_the_launcher_reads_a_real_worker_and_stores_what_it_said(tiny_model: Path, triage_file: Path,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    ws = Workspace.open(tmp_path / "ws.duckdb")
    seen: list[ev.Event] = []
    cfg = RunConfig(base_model=str(tiny_model), max_steps=4, eval_every=2, save_every=2, precision="fp32", threads=1)
    res = run_training(ws, cfg, data=triage_file, on_event=seen.append)
    assert res.status == "done", res.error
    assert [type(e) for e in seen] == [
        ev.PhaseStarted, ev.TrainingStarted, ev.PhaseStarted, ev.EvalLogged,  # load, start, untuned evaluation
        ev.StepLogged, ev.StepLogged, ev.PhaseStarted, ev.EvalLogged, ev.CheckpointSaved,
        ev.StepLogged, ev.StepLogged, ev.PhaseStarted, ev.EvalLogged, ev.CheckpointSaved,
        ev.RunFinished,
    ]  # fmt: skip
    start, done = seen[1], seen[-1]
    assert isinstance(start, ev.TrainingStarted) and isinstance(done, ev.RunFinished)
    assert start.total_steps == 4 and start.n_train == 48 and start.hardware["device"] == "cpu"
    assert (res.steps_done, res.best_step, res.adapter_path) == (done.step, done.best_step, done.adapter_path)
    # The stored metric stream reads back as the events that wrote it (less what run_metrics does not keep).
    live = [replace(e, total_steps=None) if isinstance(e, ev.StepLogged) else replace(e, best=None)
            for e in seen if isinstance(e, ev.StepLogged | ev.EvalLogged)]  # fmt: skip
    assert sorted(store.metric_events(ws, res.run_id), key=_order) == sorted(live, key=_order)
    run = store.get_run(ws, res.run_id)
    assert run["n_train"] == 48 and run["steps_done"] == 4 and run["best_step"] == done.best_step
    ws.close()


def _order(e: ev.Event) -> tuple[int, int]:
    assert isinstance(e, ev.StepLogged | ev.EvalLogged)
    return e.step, isinstance(e, ev.EvalLogged)


def _child_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """Make the worker subprocess run ``code`` first (a sitecustomize on its PYTHONPATH), as a library might."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os\n" + code)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in [str(site), os.environ.get("PYTHONPATH")] if p))


def test_junk_on_the_workers_stdout_is_reported_and_the_run_goes_on(
    tiny_model: Path, triage_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before typed events a `done` without its fields ended in a KeyError in the parent, after the run.
    _child_prints(tmp_path, monkeypatch, 'os.write(1, b\'loading weights...\\n{"event": "done", "step": 1}\\n\')\n')
    ws = Workspace.open(tmp_path / "ws.duckdb")
    seen: list[ev.Event] = []
    cfg = RunConfig(base_model=str(tiny_model), max_steps=2, eval_every=10, precision="fp32", threads=1)
    res = run_training(ws, cfg, data=triage_file, on_event=seen.append)
    assert res.status == "done" and res.steps_done == 2 and res.error is None
    bad = [e for e in seen if isinstance(e, ev.MalformedEvent)]
    assert [e.line for e in bad] == ["loading weights...", '{"event": "done", "step": 1}']
    assert "not JSON" in bad[0].reason and "'done' event lacks field 'final_loss'" in bad[1].reason
    log = (Path(store.get_run(ws, res.run_id)["out_dir"]) / "worker.log").read_text()
    assert "[launcher] worker stdout line 2: 'done' event lacks field 'final_loss'" in log
    ws.close()


def test_a_worker_that_dies_after_junk_fails_the_run_with_that_reason(
    triage_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _child_prints(tmp_path, monkeypatch, 'os.write(1, b\'{"event": "step", "step": 1}\\n\')\nos._exit(3)\n')
    ws = Workspace.open(tmp_path / "ws.duckdb")
    res = run_training(ws, RunConfig(base_model="unused"), data=triage_file)
    assert res.status == "failed"
    assert res.error is not None and res.error.startswith(
        "unreadable worker output (stdout line 1: 'step' event lacks field 'loss'); see "
    )
    assert store.get_run(ws, res.run_id)["error"] == res.error
    ws.close()


class _Screen(App[None]):
    def __init__(self, ws: Workspace) -> None:
        super().__init__()
        self.ws = ws

    def on_mount(self) -> None:
        self.push_screen(TrainingScreen(self.ws))


async def test_rows_written_the_old_way_draw_the_loss_curve(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path / "ws.duckdb")
    run_id = store.create_run(ws, RunConfig(), dataset_version=None, group_id=None)
    now = datetime.now()
    with ws.transaction() as cur:  # exactly the rows the dict-event store wrote (schema v6), one a broken one
        cur.executemany(
            "INSERT INTO run_metrics (run_id, step, phase, loss, eval_loss, lr, tokens_per_s, eta_s, epoch, "
            "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[run_id, 0, "eval", None, 3.0, None, None, None, None, now],
             [run_id, 1, "train", 2.5, None, 0.002, 700.0, 9.0, 0.5, now],
             [run_id, 2, "train", 2.0, None, 0.001, 710.0, 0.0, 1.0, now],
             [run_id, 2, "eval", None, 2.1, None, None, None, None, now],
             [run_id, 3, "train", None, None, None, None, None, None, now]],
        )  # fmt: skip
    got = store.metric_events(ws, run_id)
    assert got[:4] == [ev.EvalLogged(0, 3.0), ev.StepLogged(1, 2.5, 0.002, 700.0, 9.0, 0.5),
                       ev.StepLogged(2, 2.0, 0.001, 710.0, 0.0, 1.0), ev.EvalLogged(2, 2.1)]  # fmt: skip
    assert isinstance(got[4], ev.MalformedEvent) and "'step' event field 'loss' is null, not float" in got[4].reason
    app = _Screen(ws)
    async with app.run_test(size=(140, 45)) as pilot:
        for _ in range(3):
            await pilot.pause()
            await app.workers.wait_for_complete()
        curve = app.screen.query_one(LossCurve)
        assert curve.train_pts == [(1, 2.5), (2, 2.0)] and curve.eval_pts == [(0, 3.0), (2, 2.1)]
        assert curve.title == f"loss (run {run_id})"
    ws.close()
