"""Workspace rows of rounds and their steps (this module is the only writer of ``rounds`` and ``round_steps``;
see ``curation.table_owners``), and the reads the runner and the history need."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from curation.effective import effective_sql
from curation.workspace import Workspace

# A round that ended without being done; `distill round next` continues the newest of them.
UNFINISHED = ("running", "cancelled", "budget", "failed")


def create_round(ws: Workspace, plan: dict[str, Any], options: dict[str, Any]) -> int:
    """Record a new round (status running) from its plan (``RoundPlan.to_dict``); return its id."""
    with ws.transaction() as cur:
        return int(cur.execute(
            "INSERT INTO rounds (number, base_eval_id, base_run_id, base_version, teacher, options, plan, status, "
            "version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?) RETURNING round_id",
            [plan["number"], plan["base_eval_id"], plan["base_run_id"], plan["base_version"], plan["teacher"],
             json.dumps(options, default=str), json.dumps(plan), plan["version"], datetime.now()],
        ).fetchall()[0][0])  # fmt: skip


def update_round(ws: Workspace, round_id: int, **cols: Any) -> None:
    """Set columns of a round (``options`` as a dict)."""
    if "options" in cols:
        cols["options"] = json.dumps(cols["options"], default=str)
    sets = ", ".join(f"{k} = ?" for k in cols)
    with ws.transaction() as cur:
        cur.execute(f"UPDATE rounds SET {sets} WHERE round_id = ?", [*cols.values(), round_id])


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row["options"], row["plan"] = json.loads(row["options"]), json.loads(row["plan"])
    return row


def get_round(ws: Workspace, round_id: int) -> dict[str, Any]:
    """One round with its options and plan decoded."""
    return _decode(ws.query_dicts("SELECT * FROM rounds WHERE round_id = ?", [round_id])[0])


def unfinished_round(ws: Workspace) -> dict[str, Any] | None:
    """The newest round that was started and not done (killed, cancelled, out of budget, failed), if any."""
    rows = ws.query_dicts(
        "SELECT * FROM rounds WHERE status IN (SELECT unnest(?)) ORDER BY round_id DESC LIMIT 1", [list(UNFINISHED)]
    )
    return _decode(rows[0]) if rows else None


def list_rounds(ws: Workspace) -> list[dict[str, Any]]:
    """Every round but abandoned ones, oldest first."""
    return [_decode(r) for r in ws.query_dicts("SELECT * FROM rounds WHERE status <> 'abandoned' ORDER BY round_id")]


def round_of_eval(ws: Workspace, eval_id: int) -> int | None:
    """The number of the done round whose evaluation this is, or None."""
    n = ws.scalar("SELECT max(number) FROM rounds WHERE eval_id = ? AND status = 'done'", [eval_id])
    return None if n is None else int(n)


def get_steps(ws: Workspace, round_id: int) -> dict[str, dict[str, Any]]:
    """A round's steps by name (status, outputs decoded, detail, times)."""
    rows = ws.query_dicts("SELECT * FROM round_steps WHERE round_id = ? ORDER BY position", [round_id])
    return {r["step"]: {**r, "outputs": json.loads(r["outputs"])} for r in rows}


def start_step(ws: Workspace, round_id: int, step: str, position: int) -> None:
    """Mark a step running (a new row, or the row of an earlier attempt, whose outputs are kept)."""
    now = datetime.now()
    with ws.transaction() as cur:
        if cur.execute("SELECT count(*) FROM round_steps WHERE round_id = ? AND step = ?", [round_id, step]).fetchall()[
            0
        ][0]:
            cur.execute("UPDATE round_steps SET status = 'running', started_at = ?, finished_at = NULL, detail = NULL "
                        "WHERE round_id = ? AND step = ?", [now, round_id, step])  # fmt: skip
        else:
            cur.execute("INSERT INTO round_steps VALUES (?, ?, ?, 'running', '{}', NULL, ?, NULL)",
                        [round_id, step, position, now])  # fmt: skip


def update_step(
    ws: Workspace,
    round_id: int,
    step: str,
    *,
    outputs: dict[str, Any] | None = None,
    status: str | None = None,
    detail: str | None = None,
) -> None:
    """Record a step's outputs so far and, with ``status``, how it ended (done | cancelled | budget | failed)."""
    cols: dict[str, Any] = {}
    if outputs is not None:
        cols["outputs"] = json.dumps(outputs)
    if status is not None:
        cols.update(status=status, finished_at=datetime.now())
    if detail is not None:
        cols["detail"] = detail
    sets = ", ".join(f"{k} = ?" for k in cols)
    with ws.transaction() as cur:
        cur.execute(f"UPDATE round_steps SET {sets} WHERE round_id = ? AND step = ?", [*cols.values(), round_id, step])


def round_records(ws: Workspace, round_id: int) -> dict[str, list[int]]:
    """The records a round's synth inserted, by slice (found by the round id stored with their batches, so a kill
    between the insert and the step's record loses none)."""
    base, params = effective_sql(ws)
    rows = ws.query(
        f"SELECT e.slice, list(e.record_id ORDER BY e.record_id) FROM ({base}) e JOIN import_batches b USING (batch_id) "
        "WHERE b.format = 'synthetic' AND b.status = 'done' AND CAST(b.options->>'round' AS BIGINT) = ? GROUP BY 1",
        [*params, round_id],
    )
    return {str(s): [int(i) for i in ids] for s, ids in rows}
