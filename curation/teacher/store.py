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
    return write_many(cur, teacher, [(key, ans, record_ids, paid_record)], mode=mode, run_id=run_id)


OutputItem = tuple[str, Answer, list[int], int | None]  # cache key, answer, records asking it, the record that paid


def write_many(
    cur: duckdb.DuckDBPyConnection, teacher: str, items: list[OutputItem], *, mode: str, run_id: int | None
) -> int:
    """``write_outputs`` for many answers in a fixed number of statements (group commit); returns outputs written."""
    now = datetime.now()
    rows: list[Any] = []
    for key, ans, record_ids, paid in items:
        lp = compact_json(ans.logprobs)
        mean, low = logprob_stats(ans.logprobs)
        for rid in record_ids:
            rows.append([rid, ans.served_model, key, ans.response, lp, mean, low, ans.finish_reason,
                         ans.prompt_tokens, ans.completion_tokens, ans.cost_usd if rid == paid else 0.0,
                         ans.latency_ms])  # fmt: skip
    if not rows:
        return 0
    ids = [r[0] for r in rows]
    values = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in rows)
    n = cur.execute(
        f"""INSERT INTO teacher_outputs (record_id, teacher, model, cache_key, response, response_logprobs,
            mean_logprob, min_logprob, finish_reason, prompt_tokens, completion_tokens, cost_usd, latency_ms, mode,
            run_id, created_at)
        SELECT DISTINCT ON (v.rid) v.rid, ?, v.model, v.ck, v.resp, CAST(v.lp AS JSON), v.mean, v.low, v.fin, v.pt,
            v.ct, v.cost, v.lat, ?, ?, ?
        FROM (VALUES {values}) v(rid, model, ck, resp, lp, mean, low, fin, pt, ct, cost, lat)
        WHERE v.rid NOT IN (SELECT record_id FROM teacher_outputs WHERE teacher = ? AND record_id IN (SELECT unnest(?)))
          AND v.rid IN (SELECT record_id FROM records WHERE record_id IN (SELECT unnest(?)))""",
        [teacher, mode, run_id, now, *[x for r in rows for x in r], teacher, ids, ids],
    ).fetchall()[0][0]
    # Curation sees one response per record: the first teacher to answer fills it.
    values = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in rows)
    cur.execute(
        f"""UPDATE records SET response = v.resp, response_logprobs = CAST(v.lp AS JSON), teacher_model = v.model,
            finish_reason = v.fin, prompt_tokens = v.pt, completion_tokens = v.ct, latency_ms = v.lat,
            mean_logprob = v.mean, min_logprob = v.low
        FROM (VALUES {values}) v(rid, model, resp, lp, mean, low, fin, pt, ct, lat)
        WHERE records.record_id = v.rid AND records.response IS NULL""",
        [x for r in rows for x in (r[0], r[1], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[11])],
    )
    return int(n)


def logprob_stats(logprobs: list[dict[str, Any]] | None) -> tuple[float | None, float | None]:
    """Mean and minimum token logprob (what ``MEAN_LOGPROB_SQL``/``MIN_LOGPROB_SQL`` compute), or Nones."""
    vals = [float(t["logprob"]) for t in logprobs or [] if isinstance(t.get("logprob"), int | float)]
    if not vals:
        return None, None
    return sum(vals) / len(vals), min(vals)


def put_cache(cur: duckdb.DuckDBPyConnection, key: str, model: str, ans: Answer) -> None:
    """Store a paid answer under its content key (first one wins)."""
    put_cache_many(cur, model, [(key, ans)])


def put_cache_many(cur: duckdb.DuckDBPyConnection, model: str, items: list[tuple[str, Answer]]) -> None:
    """``put_cache`` for many answers in one statement."""
    if not items:
        return
    now = datetime.now()
    params = [x for key, a in items for x in (key, model, a.served_model, a.response, compact_json(a.logprobs),
              a.finish_reason, a.prompt_tokens, a.completion_tokens, a.cost_usd, a.latency_ms, now)]  # fmt: skip
    values = ", ".join("(?, ?, ?, ?, CAST(? AS JSON), ?, ?, ?, ?, ?, ?)" for _ in items)
    cur.execute(
        "INSERT INTO teacher_cache (cache_key, model, served_model, response, response_logprobs, finish_reason, "
        f"prompt_tokens, completion_tokens, cost_usd, latency_ms, created_at) VALUES {values} ON CONFLICT DO NOTHING",
        params,
    )


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
    add_ledger_many(cur, [[run_id, teacher, kind, key, status, http_status, attempts, prompt_tokens,
                           completion_tokens, cost_usd, latency_ms, error]])  # fmt: skip


LEDGER_COLS = (
    "run_id, teacher, kind, cache_key, status, http_status, attempts, prompt_tokens, completion_tokens, cost_usd, "
    "latency_ms, error"
)


def add_ledger_many(cur: duckdb.DuckDBPyConnection, rows: list[list[Any]]) -> None:
    """Ledger rows (values in ``LEDGER_COLS`` order) in one statement."""
    if not rows:
        return
    now = datetime.now()
    values = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in rows)
    cur.execute(
        f"INSERT INTO teacher_ledger ({LEDGER_COLS}, created_at) VALUES {values}",
        [x for r in rows for x in (*r, now)],
    )


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
