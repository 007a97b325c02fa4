"""Persisting teacher work: the content-addressed cache, outputs per record, the cost ledger and runs.

Every successful answer is committed in its own short transaction the moment it arrives (kill -9 loses at most
the requests in flight). The cache row, the outputs of every record asking the same thing, the ledger entry and
the fill of ``records.response`` for records without one are written together, so they never disagree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from curation.migrations.m0002_confidence_settings import MEAN_LOGPROB_SQL, MIN_LOGPROB_SQL
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


def cached_answers(ws: Workspace, keys: list[str]) -> dict[str, Answer]:
    """The cache rows for ``keys`` that exist."""
    if not keys:
        return {}
    rows = ws.query(
        "SELECT cache_key, served_model, response, response_logprobs, finish_reason, prompt_tokens, "
        "completion_tokens, cost_usd, latency_ms FROM teacher_cache WHERE cache_key IN (SELECT unnest(?))",
        [keys],
    )
    return {
        r[0]: Answer(r[1], r[2], json.loads(r[3]) if r[3] else None, r[4], r[5] or 0, r[6] or 0, r[7], r[8] or 0.0)
        for r in rows
    }


def write_outputs(
    cur: duckdb.DuckDBPyConnection,
    teacher: str,
    key: str,
    ans: Answer,
    record_ids: list[int],
    *,
    mode: str,
    run_id: int | None,
    paid_record: int | None,
) -> int:
    """Attach ``ans`` to each record (one output per teacher: existing ones are kept) and fill empty responses.

    ``paid_record`` carries the request's cost; the others (same content) cost 0. Returns outputs written.
    """
    now = datetime.now()
    lp = compact_json(ans.logprobs)
    written = 0
    for rid in record_ids:
        cost = ans.cost_usd if rid == paid_record else 0.0
        n = cur.execute(
            """INSERT INTO teacher_outputs (record_id, teacher, model, cache_key, response, response_logprobs,
                mean_logprob, min_logprob, finish_reason, prompt_tokens, completion_tokens, cost_usd, latency_ms,
                mode, run_id, created_at)
            SELECT ?, ?, ?, ?, ?, CAST(? AS JSON), NULL, NULL, ?, ?, ?, ?, ?, ?, ?, ?
            WHERE NOT EXISTS (SELECT 1 FROM teacher_outputs WHERE record_id = ? AND teacher = ?)
              AND EXISTS (SELECT 1 FROM records WHERE record_id = ?)""",
            [rid, teacher, ans.served_model, key, ans.response, lp, ans.finish_reason, ans.prompt_tokens,
             ans.completion_tokens, cost, ans.latency_ms, mode, run_id, now, rid, teacher, rid],
        ).fetchall()[0][0]  # fmt: skip
        written += int(n)
    if record_ids:
        ids = list(record_ids)
        cur.execute(
            "UPDATE teacher_outputs SET mean_logprob = "
            + MEAN_LOGPROB_SQL
            + ", min_logprob = "
            + MIN_LOGPROB_SQL
            + " WHERE teacher = ? AND record_id IN (SELECT unnest(?)) AND response_logprobs IS NOT NULL "
            "AND mean_logprob IS NULL",
            [teacher, ids],
        )
        # Curation sees one response per record: the first teacher to answer fills it.
        cur.execute(
            """UPDATE records SET response = o.response, response_logprobs = o.response_logprobs,
                teacher_model = o.model, finish_reason = o.finish_reason, prompt_tokens = o.prompt_tokens,
                completion_tokens = o.completion_tokens, latency_ms = o.latency_ms,
                mean_logprob = o.mean_logprob, min_logprob = o.min_logprob
            FROM teacher_outputs o
            WHERE o.record_id = records.record_id AND o.teacher = ? AND records.response IS NULL
              AND records.record_id IN (SELECT unnest(?))""",
            [teacher, ids],
        )
    return written


def put_cache(cur: duckdb.DuckDBPyConnection, key: str, model: str, ans: Answer) -> None:
    """Store a paid answer under its content key (first one wins)."""
    cur.execute(
        """INSERT INTO teacher_cache (cache_key, model, served_model, response, response_logprobs, finish_reason,
            prompt_tokens, completion_tokens, cost_usd, latency_ms, created_at)
        VALUES (?, ?, ?, ?, CAST(? AS JSON), ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
        [key, model, ans.served_model, ans.response, compact_json(ans.logprobs), ans.finish_reason,
         ans.prompt_tokens, ans.completion_tokens, ans.cost_usd, ans.latency_ms, datetime.now()],
    )  # fmt: skip


def add_ledger(
    cur: duckdb.DuckDBPyConnection,
    *,
    run_id: int | None,
    teacher: str,
    kind: str,
    key: str | None,
    status: str,
    attempts: int,
    http_status: int | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    cost_usd: float = 0.0,
    latency_ms: float | None = None,
    error: str | None = None,
) -> None:
    """One ledger row per request that ended. ``error`` must already be redacted."""
    cur.execute(
        """INSERT INTO teacher_ledger (run_id, teacher, kind, cache_key, status, http_status, attempts,
            prompt_tokens, completion_tokens, cost_usd, latency_ms, error, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [run_id, teacher, kind, key, status, http_status, attempts, prompt_tokens, completion_tokens, cost_usd,
         latency_ms, error, datetime.now()],
    )  # fmt: skip


def start_run(ws: Workspace, teacher: str, kind: str, selection: dict[str, Any], budget: float | None) -> int:
    """Open a run row and return its id."""
    with ws.transaction() as cur:
        run_id = int(cur.execute("SELECT nextval('teacher_run_seq')").fetchall()[0][0])
        cur.execute(
            "INSERT INTO teacher_runs (run_id, teacher, kind, selection, budget_usd, started_at) VALUES (?,?,?,?,?,?)",
            [run_id, teacher, kind, compact_json(selection), budget, datetime.now()],
        )
    return run_id


def finish_run(ws: Workspace, run_id: int, status: str, done: int, failed: int, cached: int, cost: float) -> None:
    """Close a run row with its final counts."""
    with ws.transaction() as cur:
        cur.execute(
            "UPDATE teacher_runs SET finished_at = ?, status = ?, n_done = ?, n_failed = ?, n_cached = ?, "
            "cost_usd = ? WHERE run_id = ?",
            [datetime.now(), status, done, failed, cached, cost, run_id],
        )


def ledger_summary(ws: Workspace, teacher: str | None = None) -> dict[str, Any]:
    """Requests, failures, tokens and USD spent (all teachers, or one)."""
    where, params = ("WHERE teacher = ?", [teacher]) if teacher else ("", [])
    row = ws.query(
        "SELECT count(*), count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status <> 'ok'), "
        f"coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), coalesce(sum(cost_usd), 0) "
        f"FROM teacher_ledger {where}",
        params,
    )[0]
    keys = ("requests", "ok", "failed", "prompt_tokens", "completion_tokens", "cost_usd")
    return dict(zip(keys, row, strict=True))
