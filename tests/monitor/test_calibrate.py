"""Calibrating a run on its held-out evaluation, storing the gateway's thresholds, and the monitor's label-free
accuracy estimate on live traffic calibrated that way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from curation.errors import UserError
from curation.workspace import Workspace
from tests.monitor.logfix import answer, log_line, minutes, write_log
from tests.monitor.wsfix import build_served_workspace
from train.calibration import CALIBRATION_SETTING, THRESHOLDS_SETTING, scaled
from train.monitor.calibrate import calibrate_run, describe, store_calibration, teacher_correct
from train.monitor.monitor import Monitor, Window
from train.monitor.setup import build_setup
from train.serve.settings import logs_dir
from train.store import insert_evaluation

PRIMARY = "exact:intent"


def heldout(ws: Workspace, run_id: int, seed: int = 0) -> None:
    """A tuned evaluation of 600 items: right with probability confidence ** 2 (an over-confident student); every
    third item has a reference, which the teacher misses one time in ten."""
    rng = np.random.default_rng(seed)
    items = []
    for k in range(600):
        conf = float(rng.uniform(0.05, 1.0))
        ok = float(rng.uniform() < conf**2)
        s: dict = {"vs_teacher": ok}
        if k % 3 == 0:
            s.update(vs_reference=ok, teacher_vs_reference=float(k % 30 != 0))
        items.append({"record_id": k, "slice": "billing" if k % 2 else "shipping", "prompt": "p",
                      "student_output": "s", "teacher_output": "t", "reference": None,
                      "scores": json.dumps({PRIMARY: s}), "agree": bool(ok), "latency_ms": 1.0,
                      "confidence": conf, "correct": ok})  # fmt: skip
    evaluation = {"run_id": run_id, "kind": "tuned", "base_model": "m", "n_items": len(items), "summary": "{}",
                  "created_at": "2026-12-01 00:00:00"}  # fmt: skip
    insert_evaluation(ws, evaluation, [], items)


@pytest.fixture
def ws(tmp_path: Path):  # type: ignore[no-untyped-def]
    w = Workspace.open(build_served_workspace(tmp_path / "ws.duckdb"))
    yield w
    w.close()  # (a no-op when the test closed it)


def test_teacher_correct_follows_the_students_yardstick() -> None:
    assert teacher_correct({"vs_teacher": 0.0, "vs_reference": 0.0, "teacher_vs_reference": 0.0}, False) == 0.0
    assert teacher_correct({"vs_teacher": 0.0, "teacher": 1.0}, True) == 1.0
    assert teacher_correct({"vs_teacher": 1.0}, False) == 1.0


def test_calibrate_run_stores_thresholds_that_meet_each_bar(ws: Workspace) -> None:
    with pytest.raises(UserError, match="no evaluation to calibrate on"):
        calibrate_run(ws, 1)
    heldout(ws, 1)
    eval_id, cal = calibrate_run(ws, 1)
    assert cal.n_items == 600 and cal.temperature == pytest.approx(0.5, rel=0.25)  # c ** 2 = c ** (1 / 0.5)
    assert cal.log_loss_after < cal.log_loss_before and cal.ece_after < cal.ece_before
    for s in cal.slices:
        assert s.quality >= min(0.8, s.curve[-1]["quality"]) - 1e-12 and 0 < s.student_share < 1
    store_calibration(ws, 1, eval_id, cal)
    doc = ws.get_setting(THRESHOLDS_SETTING)
    assert doc == {"default": cal.overall.threshold, "temperature": cal.temperature,
                   "slices": {"billing": cal.slices[0].threshold, "shipping": cal.slices[1].threshold}}  # fmt: skip
    assert ws.get_setting(CALIBRATION_SETTING)["run_id"] == 1
    text = "\n".join(describe(1, eval_id, cal))
    assert "routing curve, billing" in text and "<- chosen" in text and f"temperature {cal.temperature:.3f}" in text
    with pytest.raises(UserError, match="no run 9"):
        calibrate_run(ws, 9)


def test_monitor_estimates_live_accuracy_from_the_calibration(ws: Workspace) -> None:
    heldout(ws, 1)
    eval_id, cal = calibrate_run(ws, 1)
    store_calibration(ws, 1, eval_id, cal)
    # live shadow traffic: the student is right (agrees with the teacher) with probability raw confidence ** 2; the
    # gateway logs the confidence after the stored temperature
    rng = np.random.default_rng(5)
    lines = []
    for k in range(400):
        raw = float(rng.beta(2, 2))
        right = rng.uniform() < raw**2
        lines.append(log_line(f"ticket {k}", slice_name="billing", student=answer("refund" if right else "other"),
                              teacher=answer("refund"), confidence=scaled(raw, cal.temperature), at=minutes(k)))  # fmt: skip
    write_log(logs_dir(ws.artifacts_dir), lines)
    setup = build_setup(ws, drift=False)
    assert setup.calibration is not None and not [n for n in setup.notes if "calibration" in n]
    m = Monitor(setup, logs_dir(ws.artifacts_dir), Window())
    billing = m.refresh().slices[0]
    measured = billing.agreement.value
    assert billing.estimated_accuracy is not None and measured is not None
    assert abs(billing.estimated_accuracy - measured) < 0.06
    assert billing.agreement.low <= billing.estimated_accuracy <= billing.agreement.high


def test_distill_serve_calibrate(ws: Workspace) -> None:
    import subprocess
    import sys

    heldout(ws, 1)
    path = str(ws.path)
    ws.close()  # the CLI opens the workspace itself

    def distill(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "distill", "serve", *args, "-w", path], capture_output=True,
                              text=True, timeout=600)  # fmt: skip

    r = distill("calibrate", "1", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["run_id"] == 1 and set(doc["thresholds"]["slices"]) == {"billing", "shipping"}
    text = distill("calibrate", "1")
    assert text.returncode == 0 and "routing curve, shipping" in text.stdout and "<- chosen" in text.stdout
    with Workspace.open(path) as again:
        assert again.get_setting(THRESHOLDS_SETTING) == doc["thresholds"]
        from train.monitor.setup import load_snapshot

        snap = load_snapshot(again.artifacts_dir)  # for the monitor while the gateway holds the workspace
        assert snap.calibration is not None and snap.run_id == 1 and snap.training is not None
    for args, message in ((("calibrate", "x"), "give a run id"), (("calibrate", "1", "--mode", "shadow"), "--mode"),
                          (("control", "1"), "unexpected '1'")):  # fmt: skip
        r = distill(*args)
        assert r.returncode == 1 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_the_running_gateways_run_is_the_one_monitored(ws: Workspace) -> None:
    import os
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from train.config import RunConfig
    from train.serve.control import write_state
    from train.store import create_run, update_run

    update_run(ws, create_run(ws, RunConfig(), dataset_version="prod-v1", group_id=None), status="done")  # run 2
    assert build_setup(ws, drift=False).run_id == 2  # no gateway: the newest finished run

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"pid": os.getpid()}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        write_state(ws.artifacts_dir, {"pid": os.getpid(), "port": server.server_port, "run_id": 1, "token": "t"})
        assert build_setup(ws, drift=False).run_id == 1  # the gateway serves run 1
    finally:
        server.shutdown()
