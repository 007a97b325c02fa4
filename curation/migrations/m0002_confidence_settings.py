"""v2: per-record teacher confidence (from token logprobs, backfilled) and workspace settings."""

from __future__ import annotations

import duckdb

VERSION = 2
DESCRIPTION = "teacher confidence columns, settings"

# The backfill as it ran when v2 was written; new rows use curation.records.LOGPROB_LIST_SQL (json_transform),
# which gives the same numbers and skips a non-numeric logprob instead of failing.
MEAN_LOGPROB_SQL = "list_avg(CAST(json_extract(response_logprobs, '$[*].logprob') AS DOUBLE[]))"
MIN_LOGPROB_SQL = "list_min(CAST(json_extract(response_logprobs, '$[*].logprob') AS DOUBLE[]))"


def apply(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""
        ALTER TABLE records ADD COLUMN mean_logprob DOUBLE;
        ALTER TABLE records ADD COLUMN min_logprob DOUBLE;
        UPDATE records SET mean_logprob = {MEAN_LOGPROB_SQL}, min_logprob = {MIN_LOGPROB_SQL}
            WHERE response_logprobs IS NOT NULL;
        CREATE TABLE settings (
            key VARCHAR PRIMARY KEY,
            value JSON NOT NULL,
            updated_at TIMESTAMP NOT NULL
        );
        """
    )
