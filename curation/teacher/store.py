"""Persisting teacher work: the content-addressed cache, outputs per record, the cost ledger and runs.

Finished requests are committed in groups (``write_finished``, called by the request path's writer thread: kill -9
loses at most the requests in flight and those of the last linger). The cache row, the outputs of every record
asking the same thing, the ledger entries and the fill of ``records.response`` for records without one are written
together, so they never disagree.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from curation import search
from curation.records import compact_json
from curation.workspace import Workspace


def cache_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of model, messages and sampling parameters."""
    doc = json.dumps({"model": model, "messages": messages, "params": params}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


@dataclass
class Answer:
    """One completed request, as stored in the cache."""

    served_model: str
    response: str | None
    logprobs: list[dict[str, Any]] | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    lp_json: str | None = field(default=None, repr=False)  # ``logprobs`` as compact JSON, made once

    def logprobs_json(self) -> str | None:
        """``logprobs`` serialised once (it is written to the cache, the output and the record)."""
        if self.lp_json is None and self.logprobs is not None:
            self.lp_json = compact_json(self.logprobs)
        return self.lp_json


def cached_answers(ws: Workspace, keys: list[str]) -> dict[str, Answer]:
    """The cache rows for ``keys`` that exist."""
    if not keys:
        return {}
    rows = ws.query(
        "SELECT cache_key, served_model, response, CAST(response_logprobs AS VARCHAR), finish_reason, prompt_tokens, "
        "completion_tokens, cost_usd, latency_ms FROM teacher_cache WHERE cache_key IN (SELECT unnest(?))",
        [keys],
    )
    out = {}
    for k, sm, resp, lp, fin, pt, ct, cost, lat in rows:
        out[k] = Answer(sm, resp, json.loads(lp) if lp else None, fin, pt or 0, ct or 0, cost, lat or 0.0, lp_json=lp)
    return out


OutputItem = tuple[str, Answer, list[int], int | None]  # cache key, answer, records asking it, the record that paid


def _arrow(cur: duckdb.DuckDBPyConnection, name: str, columns: dict[str, list[Any]]) -> None:
    """Expose Python columns to SQL as ``name``: one Arrow table instead of thousands of bound parameters."""
    cur.register(name, pa.table(columns))


def write_many(
    cur: duckdb.DuckDBPyConnection, teacher: str, items: list[OutputItem], *, mode: str, run_id: int | None
) -> int:
    """``write_outputs`` for many answers in a fixed number of statements (group commit); returns outputs written."""
    cols: dict[str, list[Any]] = {c: [] for c in ("rid", "model", "ck", "resp", "lp", "mean", "low", "fin", "pt",
                                                  "ct", "cost", "lat")}  # fmt: skip
    for key, ans, record_ids, paid in items:
        lp = ans.logprobs_json()
        mean, low = logprob_stats(ans.logprobs)
        for rid in record_ids:
            row = (rid, ans.served_model, key, ans.response, lp, mean, low, ans.finish_reason, ans.prompt_tokens,
                   ans.completion_tokens, ans.cost_usd if rid == paid else 0.0, ans.latency_ms)  # fmt: skip
            for c, v in zip(cols.values(), row, strict=True):
                c.append(v)
    if not cols["rid"]:
        return 0
    cols["rid"] = pa.array(cols["rid"], pa.int64())
    _arrow(cur, "_teacher_out", cols)
    try:
        n = cur.execute(
            """INSERT INTO teacher_outputs (record_id, teacher, model, cache_key, response, response_logprobs,
                mean_logprob, min_logprob, finish_reason, prompt_tokens, completion_tokens, cost_usd, latency_ms, mode,
                run_id, created_at)
            SELECT DISTINCT ON (v.rid) v.rid, ?, v.model, v.ck, v.resp, CAST(v.lp AS JSON), v.mean, v.low, v.fin, v.pt,
                v.ct, v.cost, v.lat, ?, ?, ?
            FROM _teacher_out v SEMI JOIN records r ON r.record_id = v.rid
            WHERE v.rid NOT IN (SELECT record_id FROM teacher_outputs WHERE teacher = ?)""",
            [teacher, mode, run_id, datetime.now(), teacher],
        ).fetchall()[0][0]
        # Curation sees one response per record: the first teacher to answer fills it.
        cur.execute(
            """UPDATE records SET response = v.resp, response_logprobs = CAST(v.lp AS JSON), teacher_model = v.model,
                finish_reason = v.fin, prompt_tokens = v.pt, completion_tokens = v.ct, latency_ms = v.lat,
                mean_logprob = v.mean, min_logprob = v.low
            FROM _teacher_out v WHERE records.record_id = v.rid AND records.response IS NULL"""
        )
        search.reindex(cur, "SELECT rid FROM _teacher_out")
    finally:
        cur.unregister("_teacher_out")
    return int(n)


@dataclass
class Finished:
    """One request that ended: its answer (None if it failed for good), the records asking it (none for synth,
    judge or a served request), the purpose it was sent for (the ledger's ``kind``) and the attempts abandoned
    after a timeout, with their worst-case cost (``possibly_billed_usd``)."""

    key: str
    record_ids: list[int]
    answer: Answer | None
    http_status: int | None
    attempts: int
    error: str | None  # already redacted
    kind: str = "generate"
    run_id: int | None = None
    timeouts: int = 0
    possibly_billed_usd: float = 0.0


POSSIBLY_BILLED = "possibly_billed"  # ledger status of attempts abandoned after a timeout (cost = worst case)
BILLED_SQL = f"status <> '{POSSIBLY_BILLED}'"  # ledger rows of requests that ended (their real cost)
_ABANDONED = "attempt(s) abandoned after the client's timeout: the provider may bill them (worst-case estimate)"


def write_finished(
    cur: duckdb.DuckDBPyConnection, *, teacher: str, model: str, items: list[Finished], mode: str = "sync"
) -> Counter[str]:
    """Cache, outputs, empty responses and ledger for many finished requests: one Arrow table, five statements.

    A DuckDB write costs milliseconds of CPU whatever its size, so the group commit of the request path
    (``curation.teacher.requests``) and the Batch API's collect both go through here. Every request gets a ledger
    row (``ok`` or ``failed``) and, if attempts of it were abandoned after a timeout, a ``possibly_billed`` row
    with their estimated cost, so the ledger's total is an upper bound. Returns outputs written per cache key.
    """
    if not items:
        return Counter()
    cols: dict[str, list[Any]] = {c: [] for c in ("ck", "rids", "ok", "sm", "resp", "lp", "mean", "low", "fin", "pt",
                                                  "ct", "cost", "lat", "http", "attempts", "err", "kind", "run",
                                                  "tmo", "maybe")}  # fmt: skip
    for f in items:
        a = f.answer
        mean, low = logprob_stats(a.logprobs) if a else (None, None)
        row = (f.key, f.record_ids, a is not None, a.served_model if a else None, a.response if a else None,
               a.logprobs_json() if a else None, mean, low, a.finish_reason if a else None,
               a.prompt_tokens if a else None, a.completion_tokens if a else None, a.cost_usd if a else 0.0,
               a.latency_ms if a else None, f.http_status, f.attempts, f.error, f.kind, f.run_id, f.timeouts,
               f.possibly_billed_usd)  # fmt: skip
        for c, v in zip(cols.values(), row, strict=True):
            c.append(v)
    types = {"rids": pa.list_(pa.int64()), "mean": pa.float64(), "low": pa.float64(), "pt": pa.int64(),
             "ct": pa.int64(), "cost": pa.float64(), "lat": pa.float64(), "http": pa.int32(), "attempts": pa.int32(),
             "run": pa.int64(), "tmo": pa.int32(), "maybe": pa.float64()}  # fmt: skip
    cur.register("_teacher_done", pa.table({c: pa.array(v, types.get(c)) for c, v in cols.items()}))
    now = datetime.now()
    per_record = "SELECT unnest(rids) AS rid, rids[1] AS paid, * FROM _teacher_done WHERE ok"
    try:
        cur.execute(
            "INSERT INTO teacher_cache (cache_key, model, served_model, response, response_logprobs, finish_reason, "
            "prompt_tokens, completion_tokens, cost_usd, latency_ms, created_at) "
            "SELECT DISTINCT ON (ck) ck, ?, sm, resp, CAST(lp AS JSON), fin, pt, ct, cost, lat, ? "
            "FROM _teacher_done WHERE ok ON CONFLICT DO NOTHING",
            [model, now],
        )
        written = cur.execute(
            f"""INSERT INTO teacher_outputs (record_id, teacher, model, cache_key, response, response_logprobs,
                mean_logprob, min_logprob, finish_reason, prompt_tokens, completion_tokens, cost_usd, latency_ms, mode,
                run_id, created_at)
            SELECT DISTINCT ON (v.rid) v.rid, ?, v.sm, v.ck, v.resp, CAST(v.lp AS JSON), v.mean, v.low, v.fin, v.pt,
                v.ct, CASE WHEN v.rid = v.paid THEN v.cost ELSE 0.0 END, v.lat, ?, v.run, ?
            FROM ({per_record}) v SEMI JOIN records r ON r.record_id = v.rid
            WHERE v.rid NOT IN (SELECT record_id FROM teacher_outputs WHERE teacher = ?)
            RETURNING cache_key""",
            [teacher, mode, now, teacher],
        ).fetchall()
        cur.execute(
            f"""UPDATE records SET response = v.resp, response_logprobs = CAST(v.lp AS JSON), teacher_model = v.sm,
                finish_reason = v.fin, prompt_tokens = v.pt, completion_tokens = v.ct, latency_ms = v.lat,
                mean_logprob = v.mean, min_logprob = v.low
            FROM ({per_record}) v WHERE records.record_id = v.rid AND records.response IS NULL"""
        )
        search.reindex(cur, f"SELECT rid FROM ({per_record})")
        cur.execute(
            f"INSERT INTO teacher_ledger ({LEDGER_COLS}, created_at) SELECT run, ?, kind, ck, "
            "CASE WHEN ok THEN 'ok' ELSE 'failed' END, http, attempts, pt, ct, cost, lat, err, ? FROM _teacher_done "
            f"UNION ALL SELECT run, ?, kind, ck, '{POSSIBLY_BILLED}', NULL, tmo, NULL, NULL, maybe, NULL, "
            "tmo || ' ' || ?, ? FROM _teacher_done WHERE tmo > 0",
            [teacher, now, teacher, _ABANDONED, now],
        )
    finally:
        cur.unregister("_teacher_done")
    return Counter(k for (k,) in written)


def logprob_stats(logprobs: list[dict[str, Any]] | None) -> tuple[float | None, float | None]:
    """Mean and minimum token logprob (what ``MEAN_LOGPROB_SQL``/``MIN_LOGPROB_SQL`` compute), or Nones."""
    vals = [float(t["logprob"]) for t in logprobs or [] if isinstance(t.get("logprob"), int | float)]
    if not vals:
        return None, None
    return sum(vals) / len(vals), min(vals)


LEDGER_COLS = (
    "run_id, teacher, kind, cache_key, status, http_status, attempts, prompt_tokens, completion_tokens, cost_usd, "
    "latency_ms, error"
)


_ACTIVE_RUNS: set[int] = set()  # runs of this process still going (the workspace file lock keeps others out)


def start_run(ws: Workspace, teacher: str, kind: str, selection: dict[str, Any], budget: float | None) -> int:
    """Open a run row and return its id. Runs left 'running' by a killed process are closed as 'interrupted'
    first, with the counts and cost their committed answers and ledger rows show."""
    with ws.transaction() as cur:
        cur.execute(
            f"""UPDATE teacher_runs SET status = 'interrupted',
                n_done = (SELECT count(*) FROM teacher_outputs o WHERE o.run_id = teacher_runs.run_id),
                cost_usd = (SELECT coalesce(sum(cost_usd), 0) FROM teacher_ledger l
                    WHERE l.run_id = teacher_runs.run_id AND l.{BILLED_SQL})
            WHERE status = 'running' AND run_id NOT IN (SELECT unnest(?))""",
            [sorted(_ACTIVE_RUNS)],
        )
        run_id = int(cur.execute("SELECT nextval('teacher_run_seq')").fetchall()[0][0])
        cur.execute(
            "INSERT INTO teacher_runs (run_id, teacher, kind, selection, budget_usd, started_at) VALUES (?,?,?,?,?,?)",
            [run_id, teacher, kind, compact_json(selection), budget, datetime.now()],
        )
    _ACTIVE_RUNS.add(run_id)
    return run_id


def finish_run(ws: Workspace, run_id: int, status: str, done: int, failed: int, cached: int, cost: float) -> None:
    """Close a run row with its final counts."""
    _ACTIVE_RUNS.discard(run_id)
    with ws.transaction() as cur:
        cur.execute(
            "UPDATE teacher_runs SET finished_at = ?, status = ?, n_done = ?, n_failed = ?, n_cached = ?, "
            "cost_usd = ? WHERE run_id = ?",
            [datetime.now(), status, done, failed, cached, cost, run_id],
        )


def ledger_summary(ws: Workspace, teacher: str | None = None, run_ids: Sequence[int] | None = None) -> dict[str, Any]:
    """Requests, failures, tokens and USD spent (all teachers, or one; all requests, or those of ``run_ids``).
    ``possibly_billed_usd`` is apart: the worst-case cost of attempts abandoned after a timeout, which the provider
    may or may not bill; spent plus it is an upper bound on the bill."""
    conds, params = [], []
    if teacher:
        conds.append("teacher = ?")
        params.append(teacher)
    if run_ids is not None:
        conds.append("run_id IN (SELECT unnest(?))")
        params.append(list(run_ids))
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
    row = ws.query(
        f"SELECT count(*) FILTER (WHERE {BILLED_SQL}), count(*) FILTER (WHERE status = 'ok'), "
        "count(*) FILTER (WHERE status = 'failed'), coalesce(sum(prompt_tokens), 0), "
        f"coalesce(sum(completion_tokens), 0), coalesce(sum(cost_usd) FILTER (WHERE {BILLED_SQL}), 0), "
        f"coalesce(sum(cost_usd) FILTER (WHERE status = '{POSSIBLY_BILLED}'), 0) FROM teacher_ledger {where}",
        params,
    )[0]
    keys = ("requests", "ok", "failed", "prompt_tokens", "completion_tokens", "cost_usd", "possibly_billed_usd")
    return dict(zip(keys, row, strict=True))
