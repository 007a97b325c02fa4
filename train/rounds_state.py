"""What the rounds have done so far, for the checklist, read through ``train.rounds`` (its store and its history's
stop signal, so the checklist says what `distill round history` says); nothing here starts, continues or judges a
round. A workspace that never ran a round reads as "no rounds".
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
    stop: str | None = None  # the stop signal's message (without its "stop: ") when the rounds' history gives one


def rounds_state(ws: Workspace) -> RoundsState:
    """The rounds as ``train.rounds`` records them (abandoned ones left out), and the history's stop signal."""
    from train.rounds.history import round_history
    from train.rounds.store import list_rounds

    rounds = list_rounds(ws)
    if not rounds:
        return RoundsState()
    last = rounds[-1]
    eval_id = last["eval_id"]
    passed = None if eval_id is None else ws.scalar("SELECT passed FROM evaluations WHERE eval_id = ?", [eval_id])
    stop = round_history(ws).stop
    return RoundsState(len(rounds), sum(r["status"] == FINISHED for r in rounds), int(last["number"]),
                       str(last["status"]), eval_id, None if passed is None else bool(passed),
                       stop.message.removeprefix("stop: ") if stop is not None else None)  # fmt: skip
