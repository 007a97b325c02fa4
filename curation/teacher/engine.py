"""The generation engine: a bounded pool of threads sending requests, with cache, budget and ledger.

HTTP waits happen outside the workspace's write lock; each answer is committed on its own as it arrives.
Records asking the exact same thing (same model, messages, parameters) share one request. Before a request is
sent its worst-case cost (input bytes as tokens plus the output cap) is reserved against the budget, so the
budget is never exceeded even with many requests in flight.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from curation.errors import UserError
from curation.progress import Progress, ProgressFn
from curation.teacher.client import CallOutcome, call_chat, make_client, request_params
from curation.teacher.config import TeacherConfig, get_teacher, require_terms
from curation.teacher.selection import Selection, select_records
from curation.teacher.store import (
    Finished,
    cache_key,
    cached_answers,
    finish_run,
    start_run,
    write_finished,
    write_many,
)
from curation.workspace import Workspace

# A wrong key, model or base URL: stop the run instead of failing every record one by one.
FATAL_STATUS = {401, 403, 404}
LINGER_S = 0.1  # how long the writer waits to group answers into one transaction
GROUP_MAX = 512


@dataclass
class GenerateResult:
    """What a run did. ``status``: done | cancelled | budget (stopped before exceeding it) | failed (the provider
    refused the key, the model or the URL: every further request would fail the same way)."""

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
        self.results: queue.Queue[tuple[_Group, CallOutcome] | None] = queue.Queue()
        self.write_error: BaseException | None = None

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
    client = make_client(cfg, concurrency)  # reads the key now: a missing key fails before anything is written
    sel = selection or Selection()
    params = request_params(cfg)
    groups: dict[str, _Group] = {}
    for rid, messages in select_records(ws, teacher, sel):
        key = cache_key(cfg.model, messages, params)
        groups.setdefault(key, _Group(key, messages, [])).record_ids.append(rid)
    run_id = start_run(ws, teacher, kind, sel.describe(), budget_usd)
    res = GenerateResult(run_id, teacher, total=sum(len(g.record_ids) for g in groups.values()))
    run = _Run(ws, cfg, res, budget_usd)

    def tick(detail: str = "") -> None:  # from the writer thread (and this one at start and end)
        if progress is not None:
            d = f"done {res.done} failed {res.failed} cached {res.cached} ${res.cost_usd:.4f}" + (
                f" {detail}" if detail else ""
            )
            progress(Progress("generate", res.done + res.failed + res.cached, res.total, d))

    # Cache hits first: no request, no cost.
    hits = cached_answers(ws, list(groups))
    if hits:
        with ws.transaction() as cur:
            items = [(key, ans, groups.pop(key).record_ids, None) for key, ans in hits.items()]
            res.cached += write_many(cur, teacher, items, mode="cache", run_id=run_id)
    tick()

    rng = random.Random()  # one for the run: seeding one per request showed in the profile

    def work(g: _Group) -> None:
        if cancel is not None and cancel.is_set():
            with run.lock:
                run.stop = run.stop or "cancelled"
            return
        est = estimate_cost(cfg, g.messages)
        if not run.reserve(est):
            return
        out = call_chat(client, cfg, g.messages, params, cancel=cancel, rng=rng)
        with run.lock:  # the real cost replaces the reservation the moment the answer is in
            run.reserved -= est
            res.requests += 1
            if out.answer is None and out.http_status in FATAL_STATUS:
                run.stop = "failed"
            res.cost_usd += out.answer.cost_usd if out.answer else 0.0
        run.results.put((g, out))

    writer = threading.Thread(target=_write_loop, args=(run, kind, tick), name="teacher-writer", daemon=True)
    writer.start()
    try:
        with ThreadPoolExecutor(max_workers=concurrency or cfg.concurrency, thread_name_prefix="teacher") as pool:
            list(pool.map(work, list(groups.values())))
    finally:
        client.close()
        run.results.put(None)
        writer.join()
    if run.write_error is not None:
        raise run.write_error
    if cancel is not None and cancel.is_set():
        run.stop = "cancelled"
    res.status = run.stop or "done"
    finish_run(ws, run_id, res.status, res.done, res.failed, res.cached, res.cost_usd)
    tick(res.status)
    return res


def _write_loop(run: _Run, kind: str, tick: Callable[[], None]) -> None:
    """Commit answers as they arrive, in groups: after the first answer the writer lingers ``LINGER_S`` for more,
    then commits them all in one transaction. A DuckDB write transaction costs ~10 ms of CPU whatever its size, so
    one per answer would cap throughput on a busy machine; a kill loses at most the answers of the last linger."""
    finished = False
    while not finished:
        items = [run.results.get()]
        deadline = time.monotonic() + LINGER_S
        while items[-1] is not None and len(items) < GROUP_MAX:
            try:
                items.append(run.results.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        batch = [i for i in items if i is not None]
        finished = len(batch) < len(items)
        if not batch or run.write_error is not None:
            continue
        try:
            _commit(run, batch, kind)
        except BaseException as exc:  # surfaced by generate(); stop sending more
            run.write_error = exc
            with run.lock:
                run.stop = "failed"
        tick()


def _commit(run: _Run, batch: list[tuple[_Group, CallOutcome]], kind: str) -> None:
    """Store finished requests (success: cache + outputs + ledger; failure: ledger) in one transaction."""
    cfg, res = run.cfg, run.res
    items = [Finished(g.key, g.record_ids, out.answer, out.http_status, out.attempts, out.error) for g, out in batch]
    with run.ws.transaction() as cur:
        n = write_finished(cur, teacher=cfg.name, model=cfg.model, kind=kind, run_id=res.run_id, items=items)
    with run.lock:
        res.done += n
        for g, out in batch:
            if out.answer is None:
                res.failed += len(g.record_ids)
                if len(res.errors) < 5 and out.error and out.error not in res.errors:
                    res.errors.append(out.error)


__all__ = ["GenerateResult", "Selection", "estimate_cost", "generate"]
