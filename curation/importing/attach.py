"""Answers for prompts already in the workspace attach to those records instead of adding new ones.

A prompt can arrive before its answer: a Batch input imported before its output, prompts from a table before a log
of the same prompts answered, synthetic inputs waiting for the teacher. An import's answered records are matched
to earlier records without an answer by their request (the conversation, ``REQUEST_HASH_SQL``); the k-th answer
of a request fills the k-th waiting record of that request, in import order, so repeated prompts pair one to one.
The answer's columns move onto the earlier record and the new copy goes; ``attached_answers`` keeps which import
filled which record, the answer line's content hash (importing it again adds nothing), and the record's columns as
they were, so ``undo-import`` of that import empties exactly what it filled.

An answer to a prompt that already has another teacher's answer (a second teacher's file over the same prompts)
attaches the same way, as that teacher's output (``teacher_outputs``, ``batch_id`` = the import): one record per
prompt with every teacher's answer beside it, so dedupe works on prompts and never counts another teacher's answer
as a duplicate. Answers with no teacher name, or the same teacher's, are imported as usual.
"""

from __future__ import annotations

import duckdb

from curation import search

ANSWER_COLUMNS = (
    "response", "response_logprobs", "teacher_model", "finish_reason", "prompt_tokens", "completion_tokens",
    "latency_ms", "mean_logprob", "min_logprob",
)  # fmt: skip
REQUEST_HASH_SQL = "md5(CAST({m} AS VARCHAR))"


def attach_answers(cur: duckdb.DuckDBPyConnection, batch_id: int) -> tuple[int, int]:
    """Fold the batch's answers into earlier unanswered records with the same request; (attached, duplicates).

    Call inside the import's transaction, after its records are inserted and numbered. Duplicates are answers an
    earlier import already attached (the same line imported again): removed, as exact duplicates are.
    """
    dup = 0
    if cur.execute("SELECT count(*) FROM attached_answers").fetchall()[0][0]:
        dup = cur.execute(
            "DELETE FROM records WHERE batch_id = ? AND content_hash IN "
            "(SELECT content_hash FROM attached_answers WHERE batch_id <> ?)",
            [batch_id, batch_id],
        ).fetchall()[0][0]
    # Another teacher's answers an earlier import attached (the same file imported again) add nothing either.
    dup += cur.execute(
        "DELETE FROM records WHERE batch_id = ? AND content_hash IN "
        "(SELECT cache_key FROM teacher_outputs WHERE batch_id IS NOT NULL AND batch_id <> ?)",
        [batch_id, batch_id],
    ).fetchall()[0][0]
    n = _attach_waiting(cur, batch_id) + _attach_other_teachers(cur, batch_id)
    return n, int(dup)


def _attach_waiting(cur: duckdb.DuckDBPyConnection, batch_id: int) -> int:
    waiting = cur.execute(
        "SELECT count(*) FROM (SELECT 1 FROM records WHERE response IS NULL AND batch_id <> ? LIMIT 1)", [batch_id]
    ).fetchall()[0][0]
    if not waiting:
        return 0
    rh = REQUEST_HASH_SQL.format(m="messages")
    # Candidates first by their prompt text (a column already there, joined against the few waiting records), so a
    # big import hashes only the conversations that may match, not all of its own.
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE _attach AS
        WITH waiting AS (
            SELECT record_id, prompt, messages FROM records WHERE response IS NULL AND batch_id <> ?
        ), answers AS (
            SELECT record_id, source_line, content_hash, prompt, messages FROM records
            WHERE batch_id = ? AND response IS NOT NULL AND prompt IN (SELECT prompt FROM waiting)
        ), new AS (
            SELECT record_id AS new_id, source_line, content_hash, rh,
                row_number() OVER (PARTITION BY rh ORDER BY record_id) AS k
            FROM (SELECT *, {rh} AS rh FROM answers)
        ), old AS (
            SELECT record_id AS old_id, rh, row_number() OVER (PARTITION BY rh ORDER BY record_id) AS k
            FROM (SELECT record_id, {rh} AS rh FROM waiting WHERE prompt IN (SELECT prompt FROM answers))
            WHERE rh IN (SELECT rh FROM new)
        )
        SELECT new_id, old_id, source_line, content_hash FROM new JOIN old USING (rh, k)""",
        [batch_id, batch_id],
    )
    n = cur.execute("SELECT count(*) FROM _attach").fetchall()[0][0]
    if n:
        previous = "{" + ", ".join(f"'{c}': r.{c}" for c in ANSWER_COLUMNS) + "}"
        cur.execute(
            f"""INSERT INTO attached_answers (batch_id, record_id, source_line, content_hash, previous)
            SELECT ?, a.old_id, a.source_line, a.content_hash, {previous}
            FROM _attach a JOIN records r ON r.record_id = a.old_id""",
            [batch_id],
        )
        sets = ", ".join(f"{c} = n.{c}" for c in ANSWER_COLUMNS)
        cur.execute(
            f"""UPDATE records SET {sets}
            FROM (SELECT a.old_id, r.* FROM _attach a JOIN records r ON r.record_id = a.new_id) n
            WHERE records.record_id = n.old_id"""
        )
        search.reindex(cur, "SELECT old_id FROM _attach")
        cur.execute("DELETE FROM records WHERE record_id IN (SELECT new_id FROM _attach)")
    cur.execute("DROP TABLE _attach")
    return int(n)


def _attach_other_teachers(cur: duckdb.DuckDBPyConnection, batch_id: int) -> int:
    """This batch's named teacher's answers to prompts another teacher answered become that record's outputs."""
    rh = REQUEST_HASH_SQL.format(m="messages")
    # The k-th answer of a request pairs with the k-th earlier record of that request without this teacher's answer.
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE _attach AS
        WITH answers AS (
            SELECT record_id, prompt, messages, teacher_model FROM records
            WHERE batch_id = ? AND response IS NOT NULL AND teacher_model IS NOT NULL
        ), new AS (
            SELECT record_id AS new_id, teacher_model AS teacher, rh,
                row_number() OVER (PARTITION BY teacher_model, rh ORDER BY record_id) AS k
            FROM (SELECT *, {rh} AS rh FROM answers)
        ), old AS (
            SELECT old_id, teacher, rh, row_number() OVER (PARTITION BY teacher, rh ORDER BY old_id) AS k
            FROM (
                SELECT r.record_id AS old_id, t.teacher, {REQUEST_HASH_SQL.format(m="r.messages")} AS rh
                FROM records r JOIN (SELECT DISTINCT teacher_model AS teacher, prompt FROM answers) t USING (prompt)
                WHERE r.batch_id <> ? AND r.response IS NOT NULL AND r.teacher_model IS DISTINCT FROM t.teacher
                    AND NOT EXISTS (
                        SELECT 1 FROM teacher_outputs o WHERE o.record_id = r.record_id AND o.teacher = t.teacher
                    )
            )
        )
        SELECT new_id, old_id, teacher FROM new JOIN old USING (teacher, rh, k)""",
        [batch_id, batch_id],
    )
    n = cur.execute("SELECT count(*) FROM _attach").fetchall()[0][0]
    if n:
        cur.execute(
            """INSERT INTO teacher_outputs (record_id, teacher, model, cache_key, response, response_logprobs,
                mean_logprob, min_logprob, finish_reason, prompt_tokens, completion_tokens, cost_usd, latency_ms, mode,
                run_id, created_at, batch_id)
            SELECT a.old_id, a.teacher, a.teacher, r.content_hash, r.response, r.response_logprobs, r.mean_logprob,
                r.min_logprob, r.finish_reason, r.prompt_tokens, r.completion_tokens, 0, r.latency_ms, 'import', NULL,
                now()::TIMESTAMP, ?
            FROM _attach a JOIN records r ON r.record_id = a.new_id""",
            [batch_id],
        )
        cur.execute("DELETE FROM records WHERE record_id IN (SELECT new_id FROM _attach)")
    cur.execute("DROP TABLE _attach")
    return int(n)


def attached_warning(n: int) -> str:
    """The batch warning that says how many answers filled earlier records or joined them as a teacher's."""
    return (
        f"{n:,} answer(s) attached to prompts already in the workspace (undo-import of this batch removes them again)"
    )


def attached_records_sql(batch_id: int) -> str:
    """SQL for the ids of the records that a batch's answers filled."""
    return f"SELECT record_id FROM attached_answers WHERE batch_id = {int(batch_id)}"


def detach_answers(cur: duckdb.DuckDBPyConnection, batch_id: int) -> int:
    """Put back the records a batch's answers filled (undo-import); how many."""
    sets = ", ".join(f"{c} = a.previous.{c}" for c in ANSWER_COLUMNS)
    n = cur.execute(
        f"UPDATE records SET {sets} FROM attached_answers a WHERE a.batch_id = ? AND records.record_id = a.record_id",
        [batch_id],
    ).fetchall()[0][0]
    search.reindex(cur, attached_records_sql(batch_id))
    cur.execute("DELETE FROM attached_answers WHERE batch_id = ?", [batch_id])
    n += cur.execute("DELETE FROM teacher_outputs WHERE batch_id = ?", [batch_id]).fetchall()[0][0]
    return int(n)
