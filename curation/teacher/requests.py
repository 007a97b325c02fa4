"""The one path every teacher request takes: terms, cache, budget, retries, ledger, progress and cancel.

A ``TeacherSession`` is one teacher at work: opening it checks the terms acknowledgement and reads the key (a
refusal comes before anything is written); it holds one openai client whose pool keeps a connection per request in
flight, a thread pool of the teacher's concurrency, one budget and one group-commit writer. ``send(purpose,
requests)`` is the one function that sends: identical requests are grouped by their content key, cache hits are
answered at no cost, the rest go through the pool, each reserving its worst-case cost before it is sent
(``budget.py``) and retried by ``client.call_chat``; a 401/403/404 stops the session (every further request would
fail the same way). Finished requests go to the writer (``writer.py``), which commits cache, outputs, records and
ledger in groups (``store.write_finished``); HTTP never holds the write lock. ``ask`` is one request answered in the
calling thread (a gateway's fallback); ``admit`` plans requests for another transport (the Batch API).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from curation.progress import Progress, ProgressFn
from curation.teacher.budget import Budget, estimate_cost
from curation.teacher.client import call_chat, make_client, request_params
from curation.teacher.config import TeacherConfig, api_key, get_teacher, require_terms
from curation.teacher.store import Answer, Finished, cache_key, cached_answers, write_finished, write_many
from curation.teacher.writer import GroupWriter
from curation.workspace import Workspace

# What a request is sent for; stored as the ledger's ``kind``. A new user of the path adds its purpose here.
PURPOSES = ("generate", "synth", "judge", "batch", "serve", "baseline")
FATAL_STATUS = {401, 403, 404}  # a wrong key, model or base URL: stop instead of failing every request alike


def teacher_ready(ws: Workspace, name: str) -> TeacherConfig:
    """The teacher called ``name``, checked for use: its terms were acknowledged and its key is set."""
    cfg = get_teacher(ws, name)
    require_terms(cfg)
    api_key(cfg)
    return cfg


@dataclass
class TeacherRequest:
    """One thing to ask: a conversation, its sampling parameters (None: the teacher's own) and the records that
    take the answer as their teacher output (none for synthetic inputs, grades or a served request)."""

    messages: list[dict[str, Any]]
    params: dict[str, Any] | None = None
    record_ids: list[int] = field(default_factory=list)


@dataclass(eq=False)
class RequestResult:
    """One distinct request of a send and how it ended; identical requests share it (same key, sent once).

    ``source``: ``cache`` (answered from the cache: nothing sent, nothing paid) | ``sent`` (an HTTP request ended;
    ``answer`` is None if it failed for good) | ``queued`` (admitted for another transport) | ``skipped`` (not
    sent: ``error`` says why). ``units``: records asking it (at least 1), what progress and reports count."""

    key: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    record_ids: list[int]
    units: int = 0
    source: str = "skipped"
    answer: Answer | None = None
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None
    timeouts: int = 0
    possibly_billed_usd: float = 0.0


@dataclass
class SendReport:
    """What one send did, in units (records, or requests without records). ``status``: done | cancelled | budget
    (stopped before exceeding it) | failed (the provider refused the key, the model or the URL)."""

    purpose: str
    total: int = 0
    done: int = 0
    cached: int = 0
    failed: int = 0
    requests: int = 0  # HTTP requests that ended (one ledger row each)
    failed_requests: int = 0
    cost_usd: float = 0.0
    possibly_billed_usd: float = 0.0  # worst case of attempts abandoned after a timeout
    status: str = "done"
    errors: list[str] = field(default_factory=list)
    results: list[RequestResult] = field(default_factory=list, repr=False)  # one per request given, in order


_Item = tuple[RequestResult, SendReport, int | None]  # a finished request, its send and its run


class TeacherSession:
    """One teacher at work (a run, a judge pass, a round, a gateway's lifetime); close it (or use ``with``)."""

    def __init__(
        self,
        ws: Workspace,
        teacher: str,
        *,
        budget_usd: float | None = None,
        concurrency: int | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.ws = ws
        self.cfg = teacher_ready(ws, teacher)
        self.budget = Budget(budget_usd)
        self.concurrency = concurrency or self.cfg.concurrency
        self.progress, self.cancel = progress, cancel
        self.stop: str | None = None  # why nothing more is sent: budget | cancelled | failed
        self._lock = threading.Lock()  # reports' counters, stop, lazy start
        self._client = make_client(self.cfg, self.concurrency)
        self._rng = random.Random()  # one per session: seeding one per request showed in the profile
        self._pool: ThreadPoolExecutor | None = None
        self._writer: GroupWriter[_Item] | None = None
        self._uncommitted: dict[str, Answer] = {}  # answered, waiting for the writer: already a cache hit

    def send(self, purpose: str, requests: Sequence[TeacherRequest], *, run_id: int | None = None) -> SendReport:
        """Send ``requests`` for ``purpose`` and return once every answer is committed; safe to stop and repeat."""
        rep, todo = self._plan(purpose, requests, run_id)
        self._tick(rep)
        if todo:
            pool, writer = self._start()
            list(pool.map(lambda r: self._send_one(r, rep, run_id), todo))
            writer.flush()
            if writer.error is not None:
                raise writer.error
        if self.cancel is not None and self.cancel.is_set():
            self._halt("cancelled")
            rep.status = "cancelled"
        else:
            rep.status = self.stop or "done"
        self._tick(rep, rep.status)
        return rep

    def ask(
        self, purpose: str, messages: list[dict[str, Any]], params: dict[str, Any] | None = None, *, cache: bool = True
    ) -> RequestResult:
        """One request answered in the calling thread (from the cache, or sent now; ``cache=False`` always sends:
        a sampled request wants a fresh sample), with logprobs when the params ask for them. Its ledger row is
        committed by the writer within its linger (``close`` flushes)."""
        rep, todo = self._plan(purpose, [TeacherRequest(messages, params)], None, cache=cache)
        if todo:
            self._start()
            self._send_one(todo[0], rep, None)
        return rep.results[0]

    def admit(self, purpose: str, requests: Sequence[TeacherRequest]) -> SendReport:
        """Plan ``requests`` for a transport of the caller's (the Batch API): cache hits are answered and written
        now, the rest reserve their worst case at batch prices and come back ``queued`` (``skipped`` where the
        budget has no room). The caller sends the queued ones and ledgers them with ``store.write_finished``."""
        rep, todo = self._plan(purpose, requests, None)
        for r in todo:
            if self.stop is None and self.budget.reserve(estimate_cost(self.cfg, r.messages, r.params, batch=True)):
                r.source = "queued"
            else:
                r.error = "not sent: " + self._halt("budget")
        rep.status = self.stop or "done"
        return rep

    def resume(self) -> None:
        """Send again after a stop for ``failed`` (a refused key or an unreachable server): a long-lived session,
        a gateway's, retries once the server may be back. A budget or cancel stop stays."""
        with self._lock:
            if self.stop == "failed":
                self.stop = None

    def close(self) -> None:
        """Commit what is queued, stop the threads and close the client."""
        if self._pool is not None:
            self._pool.shutdown()
        if self._writer is not None:
            self._writer.close()
        self._client.close()

    def __enter__(self) -> TeacherSession:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- the stages ------------------------------------------------------------------------------------------
    def _plan(
        self, purpose: str, requests: Sequence[TeacherRequest], run_id: int | None, *, cache: bool = True
    ) -> tuple[SendReport, list[RequestResult]]:
        """Group identical requests by content key and answer the cached ones (unless ``cache`` is off); return what
        is left to send."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown teacher request purpose {purpose!r}")
        rep = SendReport(purpose)
        by_key: dict[str, RequestResult] = {}
        own = request_params(self.cfg)  # made once: most requests use the teacher's own parameters
        for rq in requests:
            params = own if rq.params is None else request_params(self.cfg, rq.params)
            key = cache_key(self.cfg.model, rq.messages, params)
            r = by_key.get(key) or by_key.setdefault(key, RequestResult(key, rq.messages, params, []))
            r.record_ids.extend(rq.record_ids)
            r.units += max(1, len(rq.record_ids))
            rep.results.append(r)
        rep.total = sum(r.units for r in by_key.values())
        if not cache:
            return rep, list(by_key.values())
        hits = cached_answers(self.ws, list(by_key))
        with self._lock:
            hits.update({k: a for k, a in self._uncommitted.items() if k in by_key and k not in hits})
        for key, ans in hits.items():
            by_key[key].answer, by_key[key].source = ans, "cache"
        outputs = [(k, a, by_key[k].record_ids, None) for k, a in hits.items() if by_key[k].record_ids]
        if outputs:
            with self.ws.transaction() as cur:
                rep.cached += write_many(cur, self.cfg.name, outputs, mode="cache", run_id=run_id)
        rep.cached += sum(by_key[k].units for k in hits if not by_key[k].record_ids)
        return rep, [r for r in by_key.values() if r.source != "cache"]

    def _send_one(self, r: RequestResult, rep: SendReport, run_id: int | None) -> None:
        """Reserve, send (with retries), settle the budget and queue the result for the writer."""
        if self.cancel is not None and self.cancel.is_set():
            r.error = "not sent: " + self._halt("cancelled")
            return
        est = estimate_cost(self.cfg, r.messages, r.params)
        if self.stop is not None or not self.budget.reserve(est):
            r.error = "not sent: " + self._halt("budget")
            return
        held = [est]

        def retry_timeout() -> bool:  # the abandoned attempt keeps its reservation; the retry needs its own
            if self.budget.reserve(est):
                held.append(est)
                return True
            self._halt("budget")
            return False

        out = call_chat(self._client, self.cfg, r.messages, r.params, cancel=self.cancel, rng=self._rng,
                        retry_timeout=retry_timeout)  # fmt: skip
        r.source, r.answer, r.attempts, r.http_status = "sent", out.answer, out.attempts, out.http_status
        r.error, r.timeouts, r.possibly_billed_usd = out.error, out.timeouts, out.timeouts * est
        cost = out.answer.cost_usd if out.answer else 0.0
        self.budget.settle(sum(held), cost, r.possibly_billed_usd)  # the real cost replaces the reservation now
        with self._lock:
            rep.requests += 1
            rep.cost_usd += cost
            rep.possibly_billed_usd += r.possibly_billed_usd
            if out.answer is None and (out.http_status in FATAL_STATUS or out.unreachable):
                self.stop = "failed"
            if out.answer is not None:
                self._uncommitted[r.key] = out.answer
        assert self._writer is not None
        self._writer.put((r, rep, run_id))

    def _commit(self, items: list[_Item]) -> None:
        """The writer's work: one transaction for a group of finished requests, then the counters and progress."""
        finished = [Finished(r.key, r.record_ids, r.answer, r.http_status, r.attempts, r.error, rep.purpose, run_id,
                             r.timeouts, r.possibly_billed_usd) for r, rep, run_id in items]  # fmt: skip
        try:
            with self.ws.transaction() as cur:
                written = write_finished(cur, teacher=self.cfg.name, model=self.cfg.model, items=finished)
        except BaseException:
            self._halt("failed")
            raise
        reports: dict[int, SendReport] = {}
        with self._lock:
            for r, rep, _ in items:
                reports[id(rep)] = rep
                self._uncommitted.pop(r.key, None)
                if r.answer is None:
                    rep.failed += r.units
                    rep.failed_requests += 1
                    if len(rep.errors) < 5 and r.error and r.error not in rep.errors:
                        rep.errors.append(r.error)
                else:
                    rep.done += written.pop(r.key, 0) if r.record_ids else r.units
        for rep in reports.values():
            self._tick(rep)

    def _start(self) -> tuple[ThreadPoolExecutor, GroupWriter[_Item]]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="teacher")
                self._writer = GroupWriter(self._commit)
            assert self._writer is not None
            return self._pool, self._writer

    def _halt(self, reason: str) -> str:
        with self._lock:
            self.stop = self.stop or reason
            return self.stop

    def _tick(self, rep: SendReport, detail: str = "") -> None:
        if self.progress is not None:
            d = f"done {rep.done} failed {rep.failed} cached {rep.cached} ${rep.cost_usd:.4f}"
            self.progress(Progress(rep.purpose, rep.done + rep.failed + rep.cached, rep.total,
                                   d + (f" {detail}" if detail else "")))  # fmt: skip
