"""Workspace rows for runs, run groups, their metric streams and evaluations (the parent process is the only writer).

This module owns (is the only writer of) ``runs``, ``run_groups``, ``run_metrics``, ``evaluations``, ``eval_slices``
and ``eval_items``; see ``curation.table_owners``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from curation.errors import UserError
from curation.workspace import Workspace
from train import events as ev
from train.config import RunConfig


def create_group(ws: Workspace, name: str) -> int:
    """A run group: several base models trained on the same data, compared side by side."""
    with ws.transaction() as cur:
        return int(cur.execute("INSERT INTO run_groups (name, created_at) VALUES (?, ?) RETURNING group_id",
                               [name, datetime.now()]).fetchall()[0][0])  # fmt: skip


def create_run(ws: Workspace, cfg: RunConfig, *, dataset_version: str | None, group_id: int | None) -> int:
    """Insert a run (status 'running'); its folder is ``artifacts/runs/<run_id>`` (set into ``cfg.out_dir``)."""
    with ws.transaction() as cur:
        run_id = int(cur.execute("SELECT nextval('run_seq')").fetchall()[0][0])
        # Absolute: the worker runs in that folder, so a relative workspace path (-w ws.duckdb) would break it.
        cfg.out_dir = str(run_dir(ws, run_id).resolve())
        cur.execute(
            "INSERT INTO runs (run_id, group_id, base_model, dataset_version, data_path, out_dir, config, status, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?)",
            [run_id, group_id, cfg.base_model, dataset_version, cfg.data_path, cfg.out_dir, cfg.to_json(),
             datetime.now()],
        )  # fmt: skip
    return run_id


def run_dir(ws: Workspace, run_id: int) -> Path:
    return ws.artifacts_dir / "runs" / str(run_id)


def update_run(ws: Workspace, run_id: int, **cols: Any) -> None:
    """Set columns of a run (hardware as JSON)."""
    if "hardware" in cols and not isinstance(cols["hardware"], str):
        cols["hardware"] = json.dumps(cols["hardware"])
    sets = ", ".join(f"{k} = ?" for k in cols)
    with ws.transaction() as cur:
        cur.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [*cols.values(), run_id])


_METRIC_COLUMNS = ("loss", "eval_loss", "lr", "tokens_per_s", "eta_s", "epoch")


def record_metric(ws: Workspace, run_id: int, event: ev.StepLogged | ev.EvalLogged) -> None:
    """Store a step or held-out evaluation of the worker as a ``run_metrics`` row (``metric_events`` reads it)."""
    values = [getattr(event, c, None) for c in _METRIC_COLUMNS]
    with ws.transaction() as cur:
        cur.execute(
            f"INSERT INTO run_metrics {_values(['run_id', 'step', 'phase', *_METRIC_COLUMNS, 'recorded_at'])}",
            [run_id, event.step, event.PHASE, *values, datetime.now()],
        )
        if isinstance(event, ev.StepLogged):
            cur.execute("UPDATE runs SET steps_done = ? WHERE run_id = ?", [event.step, run_id])


def forget_metrics_after(ws: Workspace, run_id: int, step: int) -> None:
    """On resume, drop metric rows past the checkpoint we restart from (those steps are redone)."""
    with ws.transaction() as cur:
        cur.execute("DELETE FROM run_metrics WHERE run_id = ? AND step > ?", [run_id, step])


def get_run(ws: Workspace, run_id: int) -> dict[str, Any]:
    """One run as a dict (config and hardware decoded); ``UserError`` if unknown."""
    rows = ws.query_dicts("SELECT * FROM runs WHERE run_id = ?", [run_id])
    if not rows:
        raise UserError(f"no run {run_id} in this workspace (see `distill runs`)")
    run = rows[0]
    run["config"] = json.loads(run["config"])
    run["hardware"] = json.loads(run["hardware"]) if run["hardware"] else None
    return run


def list_runs(ws: Workspace, limit: int = 200) -> list[dict[str, Any]]:
    """Newest runs first, with their best tuned evaluation score if any."""
    return ws.query_dicts(
        "SELECT r.run_id, r.group_id, r.base_model, r.dataset_version, r.status, r.steps_done, r.best_step, "
        "r.best_eval_loss, r.final_loss, r.created_at, r.finished_at, "
        "(SELECT e.score FROM evaluations e WHERE e.run_id = r.run_id AND e.kind = 'tuned' "
        " AND e.eval_set = 'heldout' ORDER BY e.eval_id DESC LIMIT 1) AS eval_score "
        "FROM runs r ORDER BY r.run_id DESC LIMIT ?",
        [limit],
    )


def run_metrics(ws: Workspace, run_id: int) -> list[dict[str, Any]]:
    """The metric rows of a run in step order (steps before the evaluation at the same step)."""
    return ws.query_dicts(
        f"SELECT step, phase, {', '.join(_METRIC_COLUMNS)} FROM run_metrics WHERE run_id = ? ORDER BY step, phase DESC",
        [run_id],
    )


def metric_events(ws: Workspace, run_id: int) -> list[ev.Event]:
    """The metric stream of a run read back as the events that wrote it (``StepLogged``/``EvalLogged``; a row no
    event could have written, e.g. a train row without a loss, comes back as a ``MalformedEvent``)."""
    return [ev.parse({**row, "event": ev.METRIC_KINDS.get(row["phase"])}) for row in run_metrics(ws, run_id)]


def insert_evaluation(
    ws: Workspace, evaluation: dict[str, Any], slices: list[dict[str, Any]], items: list[dict[str, Any]]
) -> int:
    """Write an evaluation row, its per-slice rows and every item (column -> value dicts) in one transaction; return
    the new eval id (given to the slice and item rows)."""
    with ws.transaction() as cur:
        eval_id = int(cur.execute(
            f"INSERT INTO evaluations {_values(list(evaluation))} RETURNING eval_id",
            list(evaluation.values()),
        ).fetchall()[0][0])  # fmt: skip
        if slices:
            cur.executemany(f"INSERT INTO eval_slices {_values(['eval_id', *slices[0]])}",
                            [[eval_id, *r.values()] for r in slices])  # fmt: skip
        if items:
            cur.executemany(f"INSERT INTO eval_items {_values(['eval_id', *items[0]])}",
                            [[eval_id, *r.values()] for r in items])  # fmt: skip
    return eval_id


def _values(columns: Sequence[str]) -> str:
    """``(a, b) VALUES (?, ?)``: the rest of an INSERT of these columns."""
    return f"({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


def failing_slices(ws: Workspace, eval_id: int | None = None) -> list[str]:
    """Slices that failed their bar in an evaluation (the newest one by default); [] when none ran yet. What
    ``distill oversample --flagged`` hands to curation's oversampling."""
    if eval_id is None:
        eval_id = ws.scalar("SELECT max(eval_id) FROM eval_slices")
        if eval_id is None:
            return []
    rows = ws.query("SELECT DISTINCT slice FROM eval_slices WHERE eval_id = ? AND NOT passed ORDER BY 1", [eval_id])
    return [str(r[0]) for r in rows]


def latest_finished_run(ws: Workspace) -> int | None:
    """The newest run that finished training, or None."""
    run_id = ws.scalar("SELECT max(run_id) FROM runs WHERE status = 'done'")
    return None if run_id is None else int(run_id)
