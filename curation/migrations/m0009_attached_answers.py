"""v9: answers imported for prompts already in the workspace attach to those records (``attached_answers``).

An import whose answer has the same request (conversation) as an earlier record without an answer fills that record
instead of adding a second copy of the prompt (a Batch output imported after its input, say). Each such answer is
one row here: which import brought it, which record it filled, the answer line's content hash (importing the same
line again adds nothing), and the record's answer columns as they were, which ``undo-import`` puts back.
"""

from __future__ import annotations

import duckdb

VERSION = 9
DESCRIPTION = "attached_answers: imported answers that filled earlier records, for dedupe and undo"

# The record columns an attached answer fills (curation.importing.attach.ANSWER_COLUMNS), with their types.
PREVIOUS_TYPE = (
    "STRUCT(response VARCHAR, response_logprobs JSON, teacher_model VARCHAR, finish_reason VARCHAR, "
    "prompt_tokens INTEGER, completion_tokens INTEGER, latency_ms DOUBLE, mean_logprob DOUBLE, min_logprob DOUBLE)"
)


def apply(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        CREATE TABLE attached_answers (
            batch_id INTEGER NOT NULL,          -- the import the answer came from
            record_id BIGINT NOT NULL,          -- the earlier record it filled
            source_line BIGINT,                 -- the answer's line (or element) in that import's file
            content_hash VARCHAR NOT NULL,      -- the answer line's content hash: importing it again adds nothing
            previous {PREVIOUS_TYPE} NOT NULL   -- the record's answer columns before, put back by undo-import
        );
        """
    )
