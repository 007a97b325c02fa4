"""The generation engine: a bounded pool of threads sending requests, with cache, budget and ledger.

HTTP waits happen outside the workspace's write lock; each answer is committed on its own as it arrives.
Records asking the exact same thing (same model, messages, parameters) share one request. Before a request is
sent its worst-case cost (input bytes as tokens plus the output cap) is reserved against the budget, so the
budget is never exceeded even with many requests in flight.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from curation.errors import UserError
from curation.progress import Progress, ProgressFn
from curation.teacher.client import CallOutcome, call_chat, make_client, request_params
from curation.teacher.config import TeacherConfig, get_teacher, require_terms
from curation.teacher.selection import Selection, select_records
from curation.teacher.store import (
    add_ledger,
    cache_key,
    cached_answers,
    finish_run,
    put_cache,
    start_run,
    write_outputs,
)
from curation.workspace import Workspace


@dataclass
class GenerateResult:
    """What a run did. ``status``: done | cancelled | budget (stopped before exceeding it)."""

    run_id: int
    teacher: str
    total: int = 0
    done: int = 0
    failed: int = 0
    cached: int = 0
    requests: int = 0
    cost_usd: float = 0.0
    status: str = "done"
    errors: list[str] = field(default_factory=list)


def estimate_cost(cfg: TeacherConfig, messages: list[dict[str, Any]]) -> float:
    """An upper bound on one request's cost: every input byte a token (plus framing), the full output cap."""
    n_in = 16 + sum(8 + len(str(m.get("content") or "").encode()) for m in messages)
    return cfg.cost(n_in, cfg.max_output_tokens)


@dataclass
class _Group:
    key: str
    messages: list[dict[str, Any]]
    record_ids: list[int]


class _Run:
    """Shared state of one run's worker threads (all counters under ``lock``)."""

    def __init__(self, ws: Workspace, cfg: TeacherConfig, res: GenerateResult, budget: float | None) -> None:
        self.ws, self.cfg, self.res, self.budget = ws, cfg, res, budget
        self.lock = threading.Lock()
        self.reserved = 0.0
        self.stop: str | None = None

    def reserve(self, est: float) -> bool:
        with self.lock:
            if self.stop is not None:
                return False
            if self.budget is not None and self.res.cost_usd + self.reserved + est > self.budget + 1e-12:
                self.stop = "budget"
                return False
            self.reserved += est
            return True


def generate(
    ws: Workspace,
    teacher: str,
    selection: Selection | None = None,
    *,
    budget_usd: float | None = None,
    concurrency: int | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    kind: str = "generate",
) -> GenerateResult:
    """Generate ``teacher``'s answers for the selected records; safe to stop and run again."""
    cfg = get_teacher(ws, teacher)
    require_terms(cfg)
    if budget_usd is not None and budget_usd < 0:
        raise UserError("--budget must be >= 0")
    client = make_client(cfg)  # reads the key now: a missing key fails before anything is written
    sel = selection or Selection()
    params = request_params(cfg)
    groups: dict[str, _Group] = {}
    for rid, messages in select_records(ws, teacher, sel):
        key = cache_key(cfg.model, messages, params)
        groups.setdefault(key, _Group(key, messages, [])).record_ids.append(rid)
    run_id = start_run(ws, teacher, kind, sel.describe(), budget_usd)
    res = GenerateResult(run_id, teacher, total=sum(len(g.record_ids) for g in groups.values()))
    run = _Run(ws, cfg, res, budget_usd)

    def tick(detail: str = "") -> None:
        if progress is not None:
            d = f"done {res.done} failed {res.failed} cached {res.cached} ${res.cost_usd:.4f}" + (
                f" {detail}" if detail else ""
            )
            progress(Progress("generate", res.done + res.failed + res.cached, res.total, d))

    # Cache hits first: no request, no cost.
    hits = cached_answers(ws, list(groups))
    if hits:
        with ws.transaction() as cur:
            for key, ans in hits.items():
                g = groups.pop(key)
                res.cached += write_outputs(cur, teacher, key, ans, g.record_ids, mode="cache", run_id=run_id,
                                            paid_record=None)  # fmt: skip
    tick()

    def work(g: _Group) -> None:
        if cancel is not None and cancel.is_set():
            with run.lock:
                run.stop = run.stop or "cancelled"
            return
        est = estimate_cost(cfg, g.messages)
        if not run.reserve(est):
            return
        try:
            out = call_chat(client, cfg, g.messages, params, cancel=cancel, rng=random.Random())
            _commit(run, g, out, kind)
        finally:
            with run.lock:
                run.reserved -= est
        tick()

    try:
        with ThreadPoolExecutor(max_workers=concurrency or cfg.concurrency, thread_name_prefix="teacher") as pool:
            list(pool.map(work, list(groups.values())))
    finally:
        client.close()
    if cancel is not None and cancel.is_set():
        run.stop = "cancelled"
    res.status = run.stop or "done"
    finish_run(ws, run_id, res.status, res.done, res.failed, res.cached, res.cost_usd)
    tick(res.status)
    return res


def _commit(run: _Run, g: _Group, out: CallOutcome, kind: str) -> None:
    """Store one finished request (success: cache + outputs + ledger in one transaction; failure: ledger)."""
    cfg, res = run.cfg, run.res
    with run.ws.transaction() as cur:
        if out.answer is not None:
            a = out.answer
            put_cache(cur, g.key, cfg.model, a)
            n = write_outputs(cur, cfg.name, g.key, a, g.record_ids, mode="sync", run_id=res.run_id,
                              paid_record=g.record_ids[0])  # fmt: skip
            add_ledger(cur, run_id=res.run_id, teacher=cfg.name, kind=kind, key=g.key, status="ok",
                       attempts=out.attempts, http_status=out.http_status, prompt_tokens=a.prompt_tokens,
                       completion_tokens=a.completion_tokens, cost_usd=a.cost_usd, latency_ms=a.latency_ms)  # fmt: skip
        else:
            n = 0
            add_ledger(cur, run_id=res.run_id, teacher=cfg.name, kind=kind, key=g.key, status="failed",
                       attempts=out.attempts, http_status=out.http_status, error=out.error)  # fmt: skip
    with run.lock:
        res.requests += 1
        if out.answer is not None:
            res.done += n
            res.cost_usd += out.answer.cost_usd
        else:
            res.failed += len(g.record_ids)
            if len(res.errors) < 5 and out.error:
                res.errors.append(out.error)


__all__ = ["GenerateResult", "Selection", "estimate_cost", "generate"]
