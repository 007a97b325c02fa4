"""Drift of live prompts vs the training version, on real MiniLM embeddings of the sample's tickets: a stream from
another topic alarms, a stream from the same distribution does not."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from curation.workspace import Workspace
from tests.monitor.logfix import answer, log_line, minutes, write_log
from tests.monitor.wsfix import N_TRAIN, VERSION, build_served_workspace, sample_prompts
from train.monitor.drift import MIN_DRIFT_N, auc_of, drift_test, permutation_p
from train.monitor.monitor import Monitor, Window
from train.monitor.setup import build_setup, load_snapshot
from train.serve.settings import logs_dir


def shadow_lines(prompts: list[str], slice_name: str, start: float = 0) -> list[dict]:
    return [log_line(p, slice_name=slice_name, student=answer("x"), teacher=answer("x"), at=minutes(start + k))
            for k, p in enumerate(prompts)]  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    path = build_served_workspace(tmp_path_factory.mktemp("served") / "ws.duckdb")
    ws = Workspace.open(path)
    yield ws
    ws.close()


def _drift(ws: Workspace, lines: list[dict], folder: str) -> dict:
    logs = ws.artifacts_dir / folder
    write_log(logs, lines)
    setup = build_setup(ws)
    m = Monitor(setup, logs, Window(), workspace=ws)
    m.refresh()
    m.test_drift()
    return {"report": m.report(), "monitor": m, **{d.slice: d for d in m.drift}}


def test_same_distribution_does_not_alarm(served: Workspace) -> None:
    p = sample_prompts()
    lines = shadow_lines(p["billing"][N_TRAIN : N_TRAIN + 60], "billing")
    lines += shadow_lines(p["shipping"][N_TRAIN : N_TRAIN + 60], "shipping", 100)
    r = _drift(served, lines, "same")
    for name in ("billing", "shipping", "(all)"):
        d = r[name]
        assert d.auc is not None and not d.drifted(0.6), d
        assert d.no_neighbour is not None and d.no_neighbour < 0.2
        assert not d.new_slice
    assert not [a for a in r["report"].alarms if a.kind == "drift"]


def test_a_stream_from_another_topic_alarms(served: Workspace) -> None:
    p = sample_prompts()
    lines = shadow_lines(p["technical"][:60], "billing")  # "billing" traffic that is really technical questions
    lines += shadow_lines(p["shipping"][N_TRAIN : N_TRAIN + 60], "shipping", 100)
    lines += shadow_lines(p["account"][:40], "account", 200)  # a slice the student never trained on
    r = _drift(served, lines, "drifted")
    billing, shipping, account = r["billing"], r["shipping"], r["account"]
    assert billing.auc > 0.9 and billing.p_value < 0.01 and billing.auc_low > 0.6 and billing.drifted(0.6)
    assert billing.no_neighbour > 0.5
    assert not shipping.drifted(0.6)
    assert account.new_slice and account.drifted(0.6) and account.n_reference == len(r["monitor"].setup.training.slices)
    alarms = {(a.kind, a.slice) for a in r["report"].alarms if a.level == "alarm"}
    assert ("drift", "billing") in alarms and ("drift", "account") in alarms and ("drift", "shipping") not in alarms


def test_snapshot_serves_the_monitor_when_the_workspace_is_busy(served: Workspace) -> None:
    build_setup(served)
    snap = load_snapshot(served.artifacts_dir)
    assert snap.from_snapshot and snap.version == VERSION and snap.run_id == 1 and snap.bar is not None
    assert snap.training is not None and snap.training.vectors.shape[0] == 2 * (N_TRAIN - N_TRAIN // 10)
    assert snap.pricing.teacher is not None and snap.pricing.teacher.price_in_per_m == 2.5
    assert snap.training.teacher_models == {"gpt-4o-2024-08-06": 2 * N_TRAIN}
    logs = logs_dir(served.artifacts_dir)
    write_log(logs, shadow_lines(sample_prompts()["technical"][:40], "billing"))
    m = Monitor(snap, logs, Window())  # no workspace: live prompts embedded without the cache
    m.refresh()
    assert m.test_drift()[1].slice == "billing" and m.drift[1].drifted(0.6)


def test_auc_and_permutation_by_hand() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert auc_of(np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), labels) == 1.0
    assert auc_of(np.array([0.5] * 6), labels) == 0.5
    assert auc_of(np.array([0.1, 0.8, 0.3, 0.7, 0.2, 0.9]), labels) == pytest.approx(6 / 9)
    assert permutation_p(np.arange(200.0), np.r_[np.zeros(100), np.ones(100)]) < 0.002
    rng = np.random.default_rng(3)
    same = drift_test("x", rng.normal(size=(80, 16)), rng.normal(size=(80, 16)))
    shifted = drift_test("x", rng.normal(size=(80, 16)), rng.normal(size=(80, 16)) + 0.6)
    assert not same.drifted(0.6) and shifted.drifted(0.6)
    few = drift_test("x", rng.normal(size=(80, 16)), rng.normal(size=(MIN_DRIFT_N - 1, 16)))
    assert few.auc is None and "too few" in (few.note or "")
