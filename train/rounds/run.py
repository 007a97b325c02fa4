"""Running a round: its steps in order, each recorded when it starts and when it ends, one teacher budget over all
of them, progress per step, a cancel event through every step, and a continued round picking up at its first
unfinished step (`distill round next` after a kill, a cancel, a budget stop or a failure).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from curation.errors import Cancelled, UserError
from curation.progress import Progress, ProgressFn
from curation.teacher.requests import TeacherSession
from curation.workspace import Workspace
from train.rounds.history import RoundCost, round_cost
from train.rounds.plan import RoundPlan, plan_round
from train.rounds.steps import STEP_FUNCS, RoundContext
from train.rounds.store import (
    create_round,
    get_steps,
    start_step,
    unfinished_round,
    update_round,
    update_step,
)


@dataclass(frozen=True)
class StepEvent:
    """A step of a round started or ended. ``status``: started | done | skipped (done before) | cancelled | budget |
    failed."""

    round_id: int
    number: int
    step: str
    position: int
    total: int
    status: str
    detail: str = ""

    def text(self) -> str:
        tail = f": {self.detail}" if self.detail else ""
        return f"round {self.number} step {self.position}/{self.total} {self.step} {self.status}{tail}"


StepFn = Callable[[StepEvent], None]


@dataclass
class RoundResult:
    """How a round ended (done | cancelled | budget | failed) and what it made and cost."""

    round_id: int
    number: int
    status: str
    plan: RoundPlan
    continued: bool
    cost: RoundCost
    version: str | None = None
    run_id: int | None = None
    eval_id: int | None = None
    n_added: int | None = None
    error: str | None = None
    steps: list[StepEvent] = field(default_factory=list)


def pending(ws: Workspace, values: dict[str, Any]) -> tuple[RoundPlan, dict[str, Any] | None]:
    """What `round next` would run: the unfinished round's plan and row, or a new plan (and None). Writes nothing."""
    rnd = unfinished_round(ws)
    if rnd is not None:
        return RoundPlan.from_dict(rnd["plan"]), rnd
    return plan_round(ws, values), None


def nothing_to_do(plan: RoundPlan) -> str | None:
    """Why a planned round has nothing to do, if it has not."""
    if plan.slices:
        return None
    if plan.skipped:
        return (f"the failing slices of evaluation {plan.base_eval_id} ({', '.join(plan.skipped)}) have no wrong item "
                "with a record to seed new inputs from")  # fmt: skip
    return f"every slice of evaluation {plan.base_eval_id} passes its bar: no round needed"


def next_round(
    ws: Workspace,
    values: dict[str, Any],
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    on_step: StepFn | None = None,
) -> RoundResult:
    """Continue the unfinished round, or plan and start a new one (parsed and resolved ``ROUND`` values), and run
    its steps to the end. A continued round keeps its plan and options, except a ``budget`` (the round's total)
    given now."""
    plan, rnd = pending(ws, values)
    if rnd is None:
        why = nothing_to_do(plan)
        if why is not None:
            raise UserError(why)
        options = {k: v for k, v in values.items()}
        round_id = create_round(ws, plan.to_dict(), options)
    else:
        round_id, options = int(rnd["round_id"]), dict(rnd["options"])
        if values.get("budget") is not None:
            options["budget"] = values["budget"]
        update_round(ws, round_id, options=options, status="running", error=None, finished_at=None)
    return _run(ws, round_id, plan, options, rnd is not None, progress, cancel, on_step)


def abandon_round(ws: Workspace) -> int | None:
    """Mark the unfinished round abandoned (what it made stays), so the next `round next` plans a new one."""
    rnd = unfinished_round(ws)
    if rnd is None:
        return None
    update_round(ws, int(rnd["round_id"]), status="abandoned", finished_at=datetime.now())
    return int(rnd["number"])


class _Session:
    """The round's teacher session, opened at the first teacher step with what is left of the round's budget."""

    def __init__(self, ws: Workspace, round_id: int, plan: RoundPlan, budget: float | None,
                 progress: ProgressFn | None, cancel: threading.Event | None) -> None:  # fmt: skip
        self.ws, self.round_id, self.plan, self.budget = ws, round_id, plan, budget
        self.progress, self.cancel = progress, cancel
        self.session: TeacherSession | None = None

    def __call__(self) -> TeacherSession:
        if self.session is None:
            left = None
            if self.budget is not None:
                spent = round_cost(self.ws, self.round_id)
                left = max(0.0, self.budget - spent.cost_usd - spent.possibly_billed_usd)
            self.session = TeacherSession(self.ws, self.plan.teacher, budget_usd=left, progress=self.progress,
                                          cancel=self.cancel)  # fmt: skip
        return self.session

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


def _run(
    ws: Workspace,
    round_id: int,
    plan: RoundPlan,
    options: dict[str, Any],
    continued: bool,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
    on_step: StepFn | None,
) -> RoundResult:
    steps = get_steps(ws, round_id)
    total = len(plan.steps)
    events: list[StepEvent] = []

    def emit(step: str, position: int, status: str, detail: str = "") -> None:
        events.append(StepEvent(round_id, plan.number, step, position, total, status, detail))
        if on_step is not None:
            on_step(events[-1])

    def in_step(p: Progress) -> None:  # an operation's progress, as this round's step
        if progress is not None:
            progress(Progress(f"round {plan.number} {ctx.step}: {p.stage}", p.done, p.total, p.detail))

    session = _Session(ws, round_id, plan, options.get("budget"), in_step, cancel)
    ctx = RoundContext(ws, round_id, plan, options, {k: v["outputs"] for k, v in steps.items()}, session, in_step,
                       cancel)  # fmt: skip
    status, error = "running", None  # still "running" in the finally: something unexpected escaped
    try:
        for position, name in enumerate(plan.steps, 1):
            if steps.get(name, {}).get("status") == "done":
                emit(name, position, "skipped", steps[name]["detail"] or "")
                continue
            ctx.step = name
            start_step(ws, round_id, name, position)
            emit(name, position, "started")
            try:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                outcome = STEP_FUNCS[name](ctx)
            except (Cancelled, KeyboardInterrupt) as exc:
                update_step(ws, round_id, name, status="cancelled", detail="cancelled")
                emit(name, position, "cancelled")
                status = "cancelled"
                if isinstance(exc, KeyboardInterrupt):
                    raise
                break
            except Exception as exc:
                error = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
                update_step(ws, round_id, name, status="failed", detail=error)
                emit(name, position, "failed", error)
                status = "failed"
                if not isinstance(exc, UserError):
                    raise
                break
            ctx.recorded[name] = outcome.outputs
            update_step(ws, round_id, name, outputs=outcome.outputs, status=outcome.stop or "done",
                        detail=outcome.detail)  # fmt: skip
            emit(name, position, outcome.stop or "done", outcome.detail)
            if outcome.stop:
                status = outcome.stop
                break
        else:
            status = "done"
    finally:
        session.close()
        made = {"version": ctx.outputs("version").get("version"), "run_id": ctx.outputs("train").get("run_id"),
                "eval_id": ctx.outputs("evaluate").get("eval_id"), "n_added": ctx.outputs("version").get("added")}  # fmt: skip
        if status == "running":
            status, error = "failed", error or "stopped by an unexpected error"
        update_round(ws, round_id, status=status, error=error, finished_at=datetime.now(),
                     **{k: v for k, v in made.items() if v is not None})  # fmt: skip
    return RoundResult(round_id, plan.number, status, plan, continued, round_cost(ws, round_id), error=error,
                       steps=events, **made)  # fmt: skip
