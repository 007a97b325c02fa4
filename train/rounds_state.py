"""What the rounds have done so far, for the checklist: read from the ``rounds`` table (``train.rounds`` writes it,
schema v15) and nothing else. A workspace whose schema has no ``rounds`` table yet, or that never ran a round, reads
as "no rounds"; nothing here starts, continues or judges a round.
"""

from __future__ import annotations

from dataclasses import dataclass

from curation.workspace import Workspace

FINISHED = "done"  # a round's status once its evaluation is stored (others: running, cancelled, budget, failed, ...)


@dataclass(frozen=True)
class RoundsState:
    """How many rounds ran and the newest one: its number, status, and the evaluation it ended with."""

    rounds: int = 0
    done: int = 0
    number: int | None = None  # the newest round's number
    status: str | None = None
    eval_id: int | None = None  # the newest round's evaluation (None until it finished)
    passed: bool | None = None  # whether that evaluation clears the bar
    stop: str | None = None  # the stop signal's message when the rounds' history gives one


def rounds_state(ws: Workspace) -> RoundsState:
    """The rounds as the ``rounds`` table shows them (empty when the table does not exist yet)."""
    if not ws.table_exists("rounds"):
        return RoundsState()
    rows = ws.query(
        "SELECT r.number, r.status, r.eval_id, e.passed, count(*) OVER (), "
        "count(*) FILTER (WHERE r.status = ?) OVER () FROM rounds r LEFT JOIN evaluations e USING (eval_id) "
        "ORDER BY r.round_id DESC LIMIT 1",
        [FINISHED],
    )
    if not rows:
        return RoundsState()
    number, status, eval_id, passed, n, done = rows[0]
    return RoundsState(int(n), int(done), int(number), str(status), eval_id, None if passed is None else bool(passed))
