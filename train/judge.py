"""LLM-as-judge: a teacher configured in the workspace grades each student answer against the teacher's answer.

Requests go through ``curation.teacher`` (its client: key from the environment variable the teacher config names,
retries with backoff, redacted errors). Every grade request is content-addressed in ``teacher_cache``, so judging
the same answers again costs nothing, and every request that ended gets a ``teacher_ledger`` row (kind 'judge').
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from curation.progress import ProgressFn, report
from curation.teacher import store as tstore
from curation.teacher.client import CallOutcome, call_chat, make_client
from curation.teacher.config import TeacherConfig, get_teacher
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
_WRITE_EVERY = 32  # grades per transaction: a crash loses little, the write lock is taken rarely
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


def judge_items(
    ws: Workspace,
    spec: dict[str, Any],
    task: str,
    items: Sequence[Item],
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[float | None], JudgeReport]:
    """Grade every item's student answer against its teacher answer; None where the judge gave no usable grade."""
    cfg = get_teacher(ws, spec["teacher"])
    keyed = []
    for it in items:
        msgs = judge_messages(task, it.prompt, it.teacher, it.student)
        keyed.append((tstore.cache_key(cfg.model, msgs, JUDGE_PARAMS), msgs))
    answers: dict[str, str | None] = {
        k: a.response for k, a in tstore.cached_answers(ws, [k for k, _ in keyed]).items()
    }
    n_cached = sum(1 for k, _ in keyed if k in answers)
    todo = {k: m for k, m in keyed if k not in answers}  # identical requests are sent once
    report(progress, cancel, "judge", 0, len(todo), f"{n_cached} cached")
    failed, cost = _send_all(ws, cfg, todo, answers, progress, cancel)
    grades = [parse_grade(answers.get(k)) for k, _ in keyed]
    n_unparsed = sum(1 for (k, _), g in zip(keyed, grades, strict=True) if g is None and answers.get(k) is not None)
    return grades, JudgeReport(cfg.name, len(items), len(todo), n_cached, failed, n_unparsed, cost)


def _send_all(
    ws: Workspace,
    cfg: TeacherConfig,
    todo: dict[str, list[dict[str, str]]],
    answers: dict[str, str | None],
    progress: ProgressFn | None,
    cancel: threading.Event | None,
) -> tuple[int, float]:
    """Send the uncached requests on ``cfg.concurrency`` threads; cache and ledger them as they end."""
    if not todo:
        return 0, 0.0
    client = make_client(cfg)
    failed, cost, done = 0, 0.0, 0
    pending_rows: list[tuple[str, CallOutcome]] = []
    keys = iter(todo)
    with ThreadPoolExecutor(max_workers=cfg.concurrency) as pool:
        running: dict[Future[CallOutcome], str] = {}

        def submit_next() -> None:
            k = next(keys, None)
            if k is not None and not (cancel is not None and cancel.is_set()):
                running[pool.submit(call_chat, client, cfg, todo[k], JUDGE_PARAMS, cancel=cancel)] = k

        for _ in range(cfg.concurrency):
            submit_next()
        try:
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    k = running.pop(fut)
                    out = fut.result()
                    pending_rows.append((k, out))
                    if out.answer is None:
                        failed += 1
                    else:
                        answers[k] = out.answer.response
                        cost += out.answer.cost_usd
                    done += 1
                    submit_next()
                if len(pending_rows) >= _WRITE_EVERY:
                    _write(ws, cfg, pending_rows)
                    pending_rows = []
                report(progress, cancel, "judge", done, len(todo))
        finally:
            _write(ws, cfg, pending_rows)  # what was paid for is kept even when cancelled
    return failed, cost


def _write(ws: Workspace, cfg: TeacherConfig, rows: list[tuple[str, CallOutcome]]) -> None:
    if not rows:
        return
    ok = [(k, o.answer) for k, o in rows if o.answer is not None]
    ledger = [
        [None, cfg.name, "judge", k, "ok" if o.answer else "failed", o.http_status, o.attempts,
         o.answer.prompt_tokens if o.answer else None, o.answer.completion_tokens if o.answer else None,
         o.answer.cost_usd if o.answer else 0.0, o.answer.latency_ms if o.answer else None, o.error]
        for k, o in rows
    ]  # fmt: skip
    with ws.transaction() as cur:
        tstore.put_cache_many(cur, cfg.model, ok)  # type: ignore[arg-type]
        tstore.add_ledger_many(cur, ledger)
