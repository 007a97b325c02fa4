"""Every round at a glance, and when to stop.

The history starts at the evaluation the first round started from (round 0) and has one entry per round after it:
per slice the score with its 95% Wilson interval (as the evaluation stored it), the change from the evaluation the
round started from and whether the score left that evaluation's interval ("moved beyond noise"), the round's
teacher cost from the ledger (its synth and generate runs; an LLM judge's grading apart), the records it added and
the time its steps took. The stop signal reads the newest evaluation: every slice passes; the last round lifted no
slice above its interval (a fall is no progress); or most of a failing slice's remaining errors are items the teacher also gets wrong
(more rounds of the teacher's answers cannot teach those).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from curation.teacher.store import ledger_summary
from curation.workspace import Workspace
from train.rounds.options import HISTORY, MIN_ERRORS
from train.rounds.plan import wrong_sql
from train.rounds.store import get_steps, list_rounds, unfinished_round

TEACHER_STEPS = ("synth", "generate")


@dataclass
class RoundCost:
    """What a round's teacher requests cost (ledger rows of its teacher runs), and its evaluation's judging."""

    cost_usd: float = 0.0
    possibly_billed_usd: float = 0.0
    requests: int = 0
    judge_usd: float = 0.0


def round_cost(ws: Workspace, round_id: int) -> RoundCost:
    """The ledger's sum over the teacher runs a round's steps recorded (they are recorded before anything is sent,
    so a killed step's requests count too), plus what its evaluation's judges cost."""
    steps = get_steps(ws, round_id)
    runs = [r for s in TEACHER_STEPS for r in steps.get(s, {}).get("outputs", {}).get("teacher_runs", [])]
    led = ledger_summary(ws, run_ids=runs)
    judge = 0.0
    eval_id = steps.get("evaluate", {}).get("outputs", {}).get("eval_id")
    if eval_id is not None:
        summary = json.loads(ws.scalar("SELECT CAST(summary AS VARCHAR) FROM evaluations WHERE eval_id = ?", [eval_id]))
        judge = sum(float(j.get("cost_usd") or 0.0) for j in (summary.get("judges") or {}).values())
    return RoundCost(float(led["cost_usd"]), float(led["possibly_billed_usd"]), int(led["requests"]), judge)


@dataclass
class SliceResult:
    """One slice in one evaluation of the history."""

    slice: str
    n: int
    score: float
    low: float | None
    high: float | None
    bar: float
    passed: bool
    delta: float | None = None  # vs the evaluation the round started from
    moved: bool | None = None  # the score left that evaluation's 95% interval


@dataclass
class HistoryEntry:
    """Round 0 (the start) or one round: its evaluation per slice and what it cost and added."""

    number: int
    round_id: int | None
    status: str
    eval_id: int | None
    version: str | None
    slices: list[SliceResult] = field(default_factory=list)
    score: float | None = None
    delta: float | None = None
    n_added: int = 0
    cost: RoundCost | None = None
    step_s: float | None = None  # the time its steps took (the last attempt of each)
    current_step: str | None = None  # where an unfinished round stopped


@dataclass(frozen=True)
class StopSignal:
    """Why to stop adding rounds: ``reasons`` among passed | no_change | teacher_errors, and one message."""

    reasons: tuple[str, ...]
    message: str


@dataclass
class RoundHistory:
    entries: list[HistoryEntry]
    stop: StopSignal | None


def _slices(ws: Workspace, eval_id: int) -> list[SliceResult]:
    rows = ws.query("SELECT slice, n, score, score_low, score_high, bar, passed FROM eval_slices WHERE eval_id = ? "
                    "ORDER BY slice", [eval_id])  # fmt: skip
    return [SliceResult(str(s), int(n), float(sc), lo, hi, float(b), bool(p)) for s, n, sc, lo, hi, b, p in rows]


def compare(base: list[SliceResult], now: list[SliceResult]) -> list[SliceResult]:
    """``now`` with each slice's change from ``base`` and whether it left ``base``'s interval."""
    before = {s.slice: s for s in base}
    for s in now:
        b = before.get(s.slice)
        if b is not None:
            s.delta = s.score - b.score
            s.moved = None if b.low is None or b.high is None else not (b.low <= s.score <= b.high)
    return now


def _overall(ws: Workspace, eval_id: int) -> float | None:
    v = ws.scalar("SELECT score FROM evaluations WHERE eval_id = ?", [eval_id])
    return None if v is None else float(v)


def _step_seconds(steps: dict[str, dict[str, Any]]) -> float:
    return sum((s["finished_at"] - s["started_at"]).total_seconds() for s in steps.values() if s["finished_at"])


def round_history(ws: Workspace, teacher_share: float = HISTORY.default("teacher_share")) -> RoundHistory:
    """Every round (abandoned ones left out) after the evaluation the first one started from, and the stop signal
    of the newest evaluation among them."""
    rounds = list_rounds(ws)
    if not rounds:
        return RoundHistory([], None)
    first = rounds[0]
    start = HistoryEntry(int(first["number"]) - 1, None, "start", int(first["base_eval_id"]), first["base_version"],
                         _slices(ws, int(first["base_eval_id"])), _overall(ws, int(first["base_eval_id"])))  # fmt: skip
    entries = [start]
    for r in rounds:
        steps = get_steps(ws, int(r["round_id"]))
        e = HistoryEntry(int(r["number"]), int(r["round_id"]), str(r["status"]), r["eval_id"], r["version"],
                         n_added=int(r["n_added"] or 0), cost=round_cost(ws, int(r["round_id"])),
                         step_s=_step_seconds(steps))  # fmt: skip
        if r["eval_id"] is not None:
            e.slices = compare(_slices(ws, int(r["base_eval_id"])), _slices(ws, int(r["eval_id"])))
            e.score = _overall(ws, int(r["eval_id"]))
            base = _overall(ws, int(r["base_eval_id"]))
            e.delta = None if e.score is None or base is None else e.score - base
        else:
            e.current_step = next((name for name, s in steps.items() if s["status"] != "done"), None)
        entries.append(e)
    last = next((e for e in reversed(entries) if e.eval_id is not None and e.slices), None)
    stop = None
    if last is not None:
        stop = stop_signal(last, teacher_also_wrong(ws, int(last.eval_id or 0)), teacher_share)
    return RoundHistory(entries, stop)


def teacher_also_wrong(ws: Workspace, eval_id: int) -> dict[str, tuple[int, int]]:
    """Per failing slice of an evaluation: (remaining errors the teacher also gets wrong, remaining errors where
    that can be told). Told by the primary metric's score of the teacher's answer against the reference (for a
    check metric, the check on the teacher's answer)."""
    summary = json.loads(ws.scalar("SELECT CAST(summary AS VARCHAR) FROM evaluations WHERE eval_id = ?", [eval_id]))
    primary = summary.get("primary_metric")
    rows = ws.query(
        f"SELECT i.slice, CAST(i.scores AS VARCHAR) FROM eval_items i JOIN eval_slices s ON s.eval_id = i.eval_id "
        f"AND s.slice = i.slice WHERE i.eval_id = ? AND NOT s.passed AND {wrong_sql('i.')}",
        [eval_id],
    )
    out: dict[str, list[int]] = {}
    for slice_, scores in rows:
        sc = json.loads(scores).get(primary) or {}
        teacher = sc.get("teacher_vs_reference", sc.get("teacher"))
        if teacher is None:
            continue
        c = out.setdefault(str(slice_), [0, 0])
        c[0] += int(teacher < 1.0 - 1e-9)
        c[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def stop_signal(
    last: HistoryEntry, errors: dict[str, tuple[int, int]], teacher_share: float = HISTORY.default("teacher_share")
) -> StopSignal | None:
    """The stop signal of the newest evaluation of the history (pure: tested on hand-made histories).

    ``last``: its entry (slices with their change from where its round started); ``errors``: per failing slice,
    (remaining errors the teacher also gets wrong, remaining errors where that can be told)."""
    if last.slices and all(s.passed for s in last.slices):
        when = f"after round {last.number}" if last.number > 0 else "already"
        return StopSignal(("passed",), f"stop: every slice passes its bar {when}")
    reasons, parts = [], []
    # Only a rise counts as progress: a slice that fell beyond its interval is no reason to go on.
    if last.number > 0 and last.slices and not any(s.moved and (s.delta or 0) > 0 for s in last.slices):
        reasons.append("no_change")
        fell = [f"{s.slice} {s.delta:+.3f}" for s in last.slices if s.moved and (s.delta or 0) < 0]
        parts.append(f"round {last.number} lifted no slice beyond its interval"
                     + (f" ({', '.join(fell)} fell beyond it)" if fell else ""))  # fmt: skip
    shares = sorted(((wrong / told, s) for s, (wrong, told) in errors.items() if told >= MIN_ERRORS and
                     wrong / told >= teacher_share - 1e-12), reverse=True)  # fmt: skip
    if shares:
        reasons.append("teacher_errors")
        share, s = shares[0]
        also = ", ".join(f"{x} {v:.0%}" for v, x in shares[1:])
        parts.append(f"{share:.0%} of the remaining errors in {s} are items the teacher also gets wrong"
                     + (f" (also {also})" if also else ""))  # fmt: skip
    return StopSignal(tuple(reasons), "stop: " + "; ".join(parts)) if parts else None


@dataclass(frozen=True)
class RoundSummary:
    """Rounds in one line for the checklist: how many are done, one that is unfinished, the stop signal."""

    rounds_done: int
    last_number: int | None
    unfinished: str | None
    stop: str | None

    def text(self) -> str:
        if self.rounds_done == 0 and self.unfinished is None:
            return "no round yet (distill round next, or n on the evaluation screen)"
        parts = [f"{self.rounds_done} round(s) done" + (f", the last is round {self.last_number}"
                                                         if self.last_number is not None else "")]  # fmt: skip
        if self.unfinished:
            parts.append(self.unfinished)
        if self.stop:
            parts.append(self.stop)
        return "; ".join(parts)


def round_summary(ws: Workspace) -> RoundSummary:
    """The rounds of this workspace in one line (what the checklist's "rounds" item shows)."""
    h = round_history(ws)
    done = [e for e in h.entries if e.round_id is not None and e.status == "done"]
    rnd = unfinished_round(ws)
    unfinished = None
    if rnd is not None:
        steps = get_steps(ws, int(rnd["round_id"]))
        at = next((n for n, s in steps.items() if s["status"] != "done"), None)
        unfinished = (f"round {rnd['number']} is {rnd['status']}" + (f" at step {at}" if at else "")
                      + "; `distill round next` continues it")  # fmt: skip
    return RoundSummary(len(done), done[-1].number if done else None, unfinished,
                        h.stop.message if h.stop else None)  # fmt: skip
