"""LLM-as-judge: a teacher configured in the workspace grades each student answer against the teacher's answer.

Requests go through the teacher request path (``curation.teacher.requests``: the terms acknowledgement, the key
from the environment variable the teacher config names, the session's thread pool, retries with backoff, redacted
errors). Every grade request is content-addressed in ``teacher_cache``, so judging the same answers again costs
nothing, and every request that ended gets a ``teacher_ledger`` row (kind 'judge').
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from curation.progress import ProgressFn, check_cancel
from curation.teacher.requests import TeacherRequest, TeacherSession, teacher_ready
from curation.workspace import Workspace
from train.scoring import Item

SCALE = 5
JUDGE_SYSTEM = (
    "You are a strict grader of a small model's answers. The reference answer comes from a strong model and is "
    f"taken as correct. Grade how well the candidate answer does the task compared with the reference, from 1 "
    f"(wrong or unusable) to {SCALE} (as good as the reference: same decision, same facts, right format). "
    'Reply with JSON only: {"score": <1-5>, "reason": "<one short sentence>"}.'
)
JUDGE_PARAMS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 96}
PURPOSE = "judge"
_NUM = r"(\d+(?:\.\d+)?)"
_LABELLED = re.compile(rf"(?:score|grade|rating)\W{{0,3}}\s*{_NUM}(?:\s*(?:/|out of)\s*{_NUM})?", re.I)
_ALONE = re.compile(rf"^\W*{_NUM}\s*(?:(?:/|out of)\s*{_NUM})?\W*$", re.I)
_RATIO = re.compile(rf"\b{_NUM}\s*(?:/|out of)\s*{_NUM}\b", re.I)


@dataclass
class JudgeReport:
    """What judging cost: requests sent, answers from the cache, failures, grades that did not parse, USD."""

    teacher: str
    n_items: int
    n_requests: int
    n_cached: int
    n_failed: int
    n_unparsed: int
    cost_usd: float
    possibly_billed_usd: float = 0.0  # worst case of attempts abandoned after a timeout (the provider may bill them)
    status: str = "done"  # done | budget (stopped before exceeding it) | failed (key, model or URL refused)


def judge_messages(task: str, prompt: str, reference: str, candidate: str) -> list[dict[str, str]]:
    """The grading conversation for one answer."""
    user = (
        f"Task: {task}\n\nInput:\n{prompt}\n\nReference answer:\n{reference}\n\nCandidate answer:\n{candidate}\n\n"
        f"Grade the candidate from 1 to {SCALE}."
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def _scaled(value: float, out_of: float | None) -> float | None:
    # "x/5" is a grade on our 1..5 scale (1 is the bottom), other denominators a plain fraction ("7/10").
    if out_of and out_of != SCALE:
        frac = value / out_of
        return frac if 0.0 <= frac <= 1.0 else None
    if 1.0 <= value <= SCALE:
        return (value - 1.0) / (SCALE - 1.0)
    return None


def parse_grade(text: str | None) -> float | None:
    """A grade in [0, 1] from the judge's reply, or None. Accepts ``{"score": 4}`` (also fenced or inside prose),
    ``Score: 4/5``, ``8 out of 10``, a bare ``4``; 1..5 (or x/5) maps to 0..1, other ``x/y`` to x/y."""
    if not text:
        return None
    t = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    for cand in [t, *re.findall(r"\{[^{}]*\}", t)]:
        try:
            doc = json.loads(cand)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(doc, dict):
            v = next((doc[k] for k in ("score", "grade", "rating") if k in doc), None)
            if isinstance(v, int | float) and not isinstance(v, bool):
                return _scaled(float(v), None)
            if isinstance(v, str):
                return parse_grade(v)
    for rx in (_LABELLED, _ALONE, _RATIO):
        m = rx.search(t)
        if m:
            return _scaled(float(m.group(1)), float(m.group(2)) if m.group(2) else None)
    return None


def check_judges(ws: Workspace, metrics: Sequence[dict[str, Any]]) -> None:
    """Refuse up front (before an evaluation generates anything) when a judge metric's teacher cannot be used:
    unknown, terms not acknowledged, or no key in the environment."""
    for spec in metrics:
        if spec.get("kind") == "judge":
            teacher_ready(ws, spec["teacher"])


def judge_items(
    ws: Workspace,
    spec: dict[str, Any],
    task: str,
    items: Sequence[Item],
    *,
    budget_usd: float | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[float | None], JudgeReport]:
    """Grade every item's student answer against its teacher answer; None where the judge gave no usable grade
    (or the budget stopped before its request). Identical grading requests are sent once; what was paid for is
    kept even when cancelled (then ``Cancelled`` is raised)."""
    requests = [TeacherRequest(judge_messages(task, it.prompt, it.teacher, it.student), JUDGE_PARAMS) for it in items]
    with TeacherSession(ws, spec["teacher"], budget_usd=budget_usd, progress=progress, cancel=cancel) as session:
        rep = session.send(PURPOSE, requests)
    check_cancel(cancel)
    answers = [r.answer.response if r.answer else None for r in rep.results]
    grades = [parse_grade(a) for a in answers]
    n_unparsed = sum(1 for a, g in zip(answers, grades, strict=True) if g is None and a is not None)
    return grades, JudgeReport(session.cfg.name, len(items), rep.requests, rep.cached, rep.failed_requests,
                               n_unparsed, rep.cost_usd, rep.possibly_billed_usd, rep.status)  # fmt: skip
