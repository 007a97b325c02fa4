"""The OpenAI Batch API formats on the careful path: an output file joined to its input file by ``custom_id``.

The input's requests are staged once per import (``_batch_in``); each chunk of output lines is joined to them. Every
quarantine reason here is the same text for every line it fits (the id stays in the row's raw line), so
``distill stats`` groups 990 unmatched ids as one reason, not 990.
"""

from __future__ import annotations

from collections import Counter

import duckdb

from curation.importing import sql as S
from curation.importing.lines import iter_line_chunks, quarantine_lines, stage_lines
from curation.importing.plan import ImportPlan

SRC_COLUMNS = ("line_no", "request", "response", "metadata", "timestamp", "latency_ms", "pre_err")
NO_REQUEST = "no request with this custom_id in the Batch input"
NO_INPUT = "no Batch input file to take the request from; pass --batch-input FILE"
NO_RESULT = "no result for this custom_id in the Batch output"
TWICE = "custom_id appears twice in the Batch input (the first is used)"

# The request's metadata, plus the ids that tie the record to its Batch line.
_META = (
    "json_merge_patch(CASE WHEN json_type(body, '$.metadata') = 'OBJECT' THEN json_extract(body, '$.metadata') "
    "ELSE '{}' END, json_object('custom_id', cid, 'batch_request_id', rid))"
)

# A provider answered with a dated snapshot of the model asked for (gpt-4o -> gpt-4o-2024-08-06): the same model.
_SAME_MODEL = (
    "answered = requested OR (starts_with(answered, requested || '-') "
    "AND regexp_full_match(substr(answered, length(requested) + 2), '[0-9]{4}(-[0-9]{2}-[0-9]{2})?|[0-9]{8}'))"
)


def batch_src_sql(plan: ImportPlan) -> str:
    """The ``src`` relation (``SRC_COLUMNS``) over the staged chunk of a Batch input or output file."""
    if plan.fmt == "batch_input":
        return f"""SELECT line_no, body AS request, CAST(NULL AS JSON) AS response, {_META} AS metadata,
            CAST(NULL AS JSON) AS "timestamp", CAST(NULL AS JSON) AS latency_ms,
            CASE WHEN cid IS NULL THEN 'line has no custom_id'
                 WHEN json_type(body) IS DISTINCT FROM 'OBJECT' THEN 'line has no request body' END AS pre_err
            FROM (SELECT line_no, json_extract_string(txt, '$.custom_id') AS cid, NULL AS rid,
                json_extract(txt, '$.body') AS body FROM _lines WHERE line_err IS NULL)"""
    no_input = S.sql_str(NO_REQUEST if plan.batch_input else NO_INPUT)
    return f"""SELECT o.line_no, i.body AS request, CASE WHEN status = 200 THEN out_body END AS response,
        {_META} AS metadata, CAST(NULL AS JSON) AS "timestamp", CAST(NULL AS JSON) AS latency_ms,
        CASE WHEN cid IS NULL THEN 'line has no custom_id'
             WHEN json_type(err) IS DISTINCT FROM 'NULL' AND err IS NOT NULL
                 THEN 'the request failed: ' || {S.error_text_sql("err")}
             WHEN status IS DISTINCT FROM 200 THEN 'the request failed with HTTP ' || coalesce(CAST(status AS VARCHAR), '?')
                 || coalesce(': ' || {S.error_text_sql("json_extract(out_body, '$.error')")}, '')
             WHEN i.cid_in IS NULL THEN {no_input} END AS pre_err
        FROM (SELECT line_no, json_extract_string(txt, '$.custom_id') AS cid, json_extract_string(txt, '$.id') AS rid,
            TRY_CAST(json_extract_string(txt, '$.response.status_code') AS INTEGER) AS status,
            json_extract(txt, '$.response.body') AS out_body, json_extract(txt, '$.error') AS err
            FROM _lines WHERE line_err IS NULL) o
        LEFT JOIN _batch_in i ON i.cid_in = o.cid"""


def stage_batch_inputs(cur: duckdb.DuckDBPyConnection, plan: ImportPlan, batch_id: int) -> int:
    """Stage the Batch input's requests by custom_id (``_batch_in``); bad input lines are quarantined (how many)."""
    cur.execute("CREATE OR REPLACE TEMP TABLE _batch_in (cid_in VARCHAR, body JSON, in_line BIGINT, raw VARCHAR)")
    cur.execute("CREATE OR REPLACE TEMP TABLE _batch_seen (cid VARCHAR)")
    if plan.batch_input is None:
        return 0
    source = str(plan.batch_input)
    n_bad = 0
    for table, _ in iter_line_chunks(plan.batch_input):
        stage_lines(cur, table, plan.max_line_bytes)
        cur.register("_chunk_raw", table)
        n_bad += quarantine_lines(cur, batch_id, source)
        cur.unregister("_chunk_raw")
        cur.execute(
            "INSERT INTO _batch_in SELECT json_extract_string(txt, '$.custom_id'), json_extract(txt, '$.body'), "
            "line_no, left(txt, 2000) FROM _lines WHERE line_err IS NULL"
        )
    repeats = "SELECT in_line FROM (SELECT in_line, row_number() OVER (PARTITION BY cid_in ORDER BY in_line) AS k FROM _batch_in) WHERE k > 1"
    n_bad += cur.execute(
        f"""INSERT INTO quarantine (batch_id, source_file, line_no, field, reason, raw, raw_bytes)
        SELECT {batch_id}, {S.sql_str(source)}, in_line, 'custom_id', {S.sql_str(TWICE)}, raw, NULL
        FROM _batch_in WHERE in_line IN ({repeats})"""
    ).fetchall()[0][0]
    cur.execute(f"DELETE FROM _batch_in WHERE in_line IN ({repeats})")
    return n_bad


def note_seen(cur: duckdb.DuckDBPyConnection) -> None:
    """Remember the custom_ids of the staged output chunk (for ``quarantine_unanswered``)."""
    cur.execute(
        "INSERT INTO _batch_seen SELECT json_extract_string(txt, '$.custom_id') FROM _lines WHERE line_err IS NULL"
    )


def quarantine_unanswered(cur: duckdb.DuckDBPyConnection, plan: ImportPlan, batch_id: int) -> int:
    """Quarantine the input's requests that no output line answered; how many."""
    if plan.batch_input is None:
        return 0
    return cur.execute(
        f"""INSERT INTO quarantine (batch_id, source_file, line_no, field, reason, raw, raw_bytes)
        SELECT {batch_id}, {S.sql_str(str(plan.batch_input))}, in_line, 'custom_id', {S.sql_str(NO_RESULT)}, raw, NULL
        FROM _batch_in WHERE cid_in NOT IN (SELECT cid FROM _batch_seen WHERE cid IS NOT NULL)"""
    ).fetchall()[0][0]


def model_mismatches(cur: duckdb.DuckDBPyConnection) -> Counter[tuple[str, str]]:
    """(requested, answered) model pairs of the parsed chunk's answers that came from another model than asked."""
    rows = cur.execute(
        f"""SELECT requested, answered, count(*) FROM (
            SELECT json_extract_string(request_params, '$.model') AS requested, teacher_model AS answered
            FROM _parsed WHERE err_reason IS NULL)
        WHERE requested IS NOT NULL AND answered IS NOT NULL AND NOT ({_SAME_MODEL})
        GROUP BY ALL"""
    ).fetchall()
    return Counter({(r, a): int(n) for r, a, n in rows})


def model_warning(pairs: Counter[tuple[str, str]]) -> str | None:
    """The batch warning for answers from other models than requested, with counts per pair."""
    if not pairs:
        return None
    listed = ", ".join(f"{r} -> {a}: {n:,}" for (r, a), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{sum(pairs.values()):,} answer(s) came from another model than requested ({listed})"


def drop_staging(cur: duckdb.DuckDBPyConnection) -> None:
    for tmp in ("_batch_in", "_batch_seen"):
        cur.execute(f"DROP TABLE IF EXISTS {tmp}")
