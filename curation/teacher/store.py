"""Persisting teacher work: the content-addressed cache, outputs per record, the cost ledger and runs.

Every successful answer is committed in its own short transaction the moment it arrives (kill -9 loses at most
the requests in flight). The cache row, the outputs of every record asking the same thing, the ledger entry and
the fill of ``records.response`` for records without one are written together, so they never disagree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

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
    finally:
        cur.unregister("_teacher_out")
    return int(n)


@dataclass
class Finished:
    """One request that ended in a run: its answer (None if it failed for good) and the records asking it."""

    key: str
    record_ids: list[int]
    answer: Answer | None
    http_status: int | None
    attempts: int
    error: str | None  # already redacted


def write_finished(
    cur: duckdb.DuckDBPyConnection, *, teacher: str, model: str, kind: str, run_id: int | None, items: list[Finished]
) -> int:
    """Cache, outputs, empty responses and ledger for many finished requests: one Arrow table, four statements.

    A DuckDB write costs milliseconds of CPU whatever its size, so the engine's group commit goes through here
    rather than through ``put_cache_many`` + ``write_many`` + ``add_ledger_many``. Returns outputs written.
    """
    if not items:
        return 0
    cols: dict[str, list[Any]] = {c: [] for c in ("ck", "rids", "ok", "sm", "resp", "lp", "mean", "low", "fin", "pt",
                                                  "ct", "cost", "lat", "http", "attempts", "err")}  # fmt: skip
    for f in items:
        a = f.answer
        mean, low = logprob_stats(a.logprobs) if a else (None, None)
        row = (f.key, f.record_ids, a is not None, a.served_model if a else None, a.response if a else None,
               a.logprobs_json() if a else None, mean, low, a.finish_reason if a else None,
               a.prompt_tokens if a else None, a.completion_tokens if a else None, a.cost_usd if a else 0.0,
               a.latency_ms if a else None, f.http_status, f.attempts, f.error)  # fmt: skip
        for c, v in zip(cols.values(), row, strict=True):
            c.append(v)
    types = {"rids": pa.list_(pa.int64()), "mean": pa.float64(), "low": pa.float64(), "pt": pa.int64(),
             "ct": pa.int64(), "cost": pa.float64(), "lat": pa.float64(), "http": pa.int32(), "attempts": pa.int32()}  # fmt: skip
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
        n = cur.execute(
            f"""INSERT INTO teacher_outputs (record_id, teacher, model, cache_key, response, response_logprobs,
                mean_logprob, min_logprob, finish_reason, prompt_tokens, completion_tokens, cost_usd, latency_ms, mode,
                run_id, created_at)
            SELECT DISTINCT ON (v.rid) v.rid, ?, v.sm, v.ck, v.resp, CAST(v.lp AS JSON), v.mean, v.low, v.fin, v.pt,
                v.ct, CASE WHEN v.rid = v.paid THEN v.cost ELSE 0.0 END, v.lat, 'sync', ?, ?
            FROM ({per_record}) v SEMI JOIN records r ON r.record_id = v.rid
            WHERE v.rid NOT IN (SELECT record_id FROM teacher_outputs WHERE teacher = ?)""",
            [teacher, run_id, now, teacher],
        ).fetchall()[0][0]
        cur.execute(
            f"""UPDATE records SET response = v.resp, response_logprobs = CAST(v.lp AS JSON), teacher_model = v.sm,
                finish_reason = v.fin, prompt_tokens = v.pt, completion_tokens = v.ct, latency_ms = v.lat,
                mean_logprob = v.mean, min_logprob = v.low
            FROM ({per_record}) v WHERE records.record_id = v.rid AND records.response IS NULL"""
        )
        cur.execute(
            f"INSERT INTO teacher_ledger ({LEDGER_COLS}, created_at) SELECT ?, ?, ?, ck, "
            "CASE WHEN ok THEN 'ok' ELSE 'failed' END, http, attempts, pt, ct, cost, lat, err, ? FROM _teacher_done",
            [run_id, teacher, kind, now],
        )
    finally:
        cur.unregister("_teacher_done")
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
    _arrow(cur, "_teacher_cache_new", {
        "ck": [k for k, _ in items], "sm": [a.served_model for _, a in items], "resp": [a.response for _, a in items],
        "lp": [a.logprobs_json() for _, a in items], "fin": [a.finish_reason for _, a in items],
        "pt": [a.prompt_tokens for _, a in items], "ct": [a.completion_tokens for _, a in items],
        "cost": [a.cost_usd for _, a in items], "lat": [a.latency_ms for _, a in items],
    })  # fmt: skip
    try:
        cur.execute(
            "INSERT INTO teacher_cache (cache_key, model, served_model, response, response_logprobs, finish_reason, "
            "prompt_tokens, completion_tokens, cost_usd, latency_ms, created_at) "
            "SELECT DISTINCT ON (ck) ck, ?, sm, resp, CAST(lp AS JSON), fin, pt, ct, cost, lat, ? "
            "FROM _teacher_cache_new ON CONFLICT DO NOTHING",
            [model, datetime.now()],
        )
    finally:
        cur.unregister("_teacher_cache_new")


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
    names = [c.strip() for c in LEDGER_COLS.split(",")]
    types = [pa.int64(), pa.string(), pa.string(), pa.string(), pa.string(), pa.int32(), pa.int32(), pa.int64(),
             pa.int64(), pa.float64(), pa.float64(), pa.string()]  # fmt: skip
    columns = {n: pa.array([r[i] for r in rows], t) for i, (n, t) in enumerate(zip(names, types, strict=True))}
    _arrow(cur, "_teacher_ledger_new", columns)
    try:
        cur.execute(
            f"INSERT INTO teacher_ledger ({LEDGER_COLS}, created_at) SELECT {LEDGER_COLS}, ? FROM _teacher_ledger_new",
            [datetime.now()],
        )
    finally:
        cur.unregister("_teacher_ledger_new")


_ACTIVE_RUNS: set[int] = set()  # runs of this process still going (the workspace file lock keeps others out)


def start_run(ws: Workspace, teacher: str, kind: str, selection: dict[str, Any], budget: float | None) -> int:
    """Open a run row and return its id. Runs left 'running' by a killed process are closed as 'interrupted'
    first, with the counts and cost their committed answers and ledger rows show."""
    with ws.transaction() as cur:
        cur.execute(
            """UPDATE teacher_runs SET status = 'interrupted',
                n_done = (SELECT count(*) FROM teacher_outputs o WHERE o.run_id = teacher_runs.run_id),
                cost_usd = (SELECT coalesce(sum(cost_usd), 0) FROM teacher_ledger l WHERE l.run_id = teacher_runs.run_id)
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
