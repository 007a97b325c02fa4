"""Run groups: several base models (e.g. two student sizes) trained on the same data and compared side by side."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from curation.progress import ProgressFn, check_cancel
from curation.workspace import Workspace
from train import store
from train.config import RunConfig
from train.evaluate import EvalResult, evaluate_run
from train.launcher import EventFn, RunResult, run_training


@dataclass
class GroupResult:
    group_id: int
    runs: list[RunResult]
    evaluations: dict[int, list[EvalResult]]  # run_id -> [tuned, baseline]


def train_group(
    ws: Workspace,
    models: list[str],
    cfg: RunConfig,
    *,
    dataset_version: str | None = None,
    data: str | Path | None = None,
    evaluate: bool = False,
    name: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    on_event: EventFn | None = None,
    eval_kwargs: dict[str, Any] | None = None,
) -> GroupResult:
    """Train one run per base model, one after the other (they would only fight over the same cores), on the same
    data and hyperparameters; evaluate each finished run (and its baseline) when ``evaluate``."""
    group_id = store.create_group(ws, name or " vs ".join(models))
    runs: list[RunResult] = []
    evals: dict[int, list[EvalResult]] = {}
    for model in models:
        check_cancel(cancel)
        res = run_training(ws, replace(cfg, base_model=model, target_modules=list(cfg.target_modules)),
                           dataset_version=dataset_version, data=data, group_id=group_id, progress=progress,
                           cancel=cancel, on_event=on_event)  # fmt: skip
        runs.append(res)
        if res.status == "cancelled":
            break
        if evaluate and res.status == "done":
            evals[res.run_id] = evaluate_run(ws, res.run_id, progress=progress, cancel=cancel, **(eval_kwargs or {}))
    return GroupResult(group_id, runs, evals)


def compare_group(ws: Workspace, group_id: int) -> list[dict[str, Any]]:
    """One row per run of the group: training outcome and its newest tuned and baseline evaluation."""
    return ws.query_dicts(
        "SELECT r.run_id, r.base_model, r.status, r.steps_done, r.best_eval_loss, "
        "t.eval_id, t.score, t.gap, t.passed, t.latency_p95_ms, t.throughput_rps, t.cost_per_1k, "
        "b.score AS baseline_score "
        "FROM runs r "
        "LEFT JOIN (SELECT * FROM evaluations WHERE kind = 'tuned' AND eval_set = 'heldout' "
        "  QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY eval_id DESC) = 1) t ON t.run_id = r.run_id "
        "LEFT JOIN (SELECT * FROM evaluations WHERE kind = 'baseline' AND eval_set = 'heldout' "
        "  QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY eval_id DESC) = 1) b ON b.run_id = r.run_id "
        "WHERE r.group_id = ? ORDER BY r.run_id",
        [group_id],
    )
