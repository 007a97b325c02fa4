"""v16: team review: who reviews which record (assignments, with an overlap reviewed twice) and comments on records.

A reviewer's decisions stay in ``review_events`` (its ``reviewer`` column); agreement and conflicts are read from
there, so nothing here copies a decision.
"""

from __future__ import annotations

import duckdb

VERSION = 16
DESCRIPTION = "review assignments and comments"


def apply(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        -- One row per (record, reviewer) to review it; a record in the overlap has two or more rows.
        CREATE TABLE review_assignments (
            assignment_id BIGINT NOT NULL,    -- one `assign` call (a later one replaces the rows it covers)
            record_id BIGINT NOT NULL,
            reviewer VARCHAR NOT NULL,
            overlap BOOLEAN NOT NULL,         -- part of the share reviewed twice (for agreement)
            assigned_at TIMESTAMP NOT NULL
        );
        CREATE SEQUENCE review_comment_seq START 1;
        CREATE TABLE review_comments (
            comment_id BIGINT PRIMARY KEY DEFAULT nextval('review_comment_seq'),
            record_id BIGINT NOT NULL,
            reviewer VARCHAR NOT NULL,
            body VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL
        );
        """
    )
