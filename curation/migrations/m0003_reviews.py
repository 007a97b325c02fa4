"""v3: review decisions (event log + current state) and requests for new teacher inputs.

Shared contract between the studio (writes reviews), curation (reads them into dataset versions, queues
records for review and asks for new inputs) and the teacher (fulfils input requests).
"""

from __future__ import annotations

import duckdb

VERSION = 3
DESCRIPTION = "reviews, review events, input requests"


def apply(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE SEQUENCE review_event_seq START 1;
        -- Every decision as it was made; undo marks an event undone and recomputes the record's state.
        CREATE TABLE review_events (
            event_id BIGINT PRIMARY KEY DEFAULT nextval('review_event_seq'),
            record_id BIGINT NOT NULL,
            action VARCHAR NOT NULL,          -- accept | reject | edit | relabel | queue | reset
            reason VARCHAR,                   -- reject reason, or why it was queued (filter name)
            new_response VARCHAR,             -- for edit
            new_slice VARCHAR,                -- for relabel
            reviewer VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            bulk_id BIGINT,                   -- events made by one bulk action share it
            undone BOOLEAN NOT NULL DEFAULT false
        );
        -- The current state per record (absent = never looked at).
        CREATE TABLE reviews (
            record_id BIGINT PRIMARY KEY,
            status VARCHAR NOT NULL,          -- needs_review | accepted | rejected
            reason VARCHAR,
            edited_response VARCHAR,          -- NULL unless edited; records.response keeps the teacher's original
            slice_override VARCHAR,           -- NULL unless relabelled
            reviewer VARCHAR,
            updated_at TIMESTAMP NOT NULL
        );
        CREATE SEQUENCE input_request_seq START 1;
        -- "Make N more inputs for this slice" (from oversampling or a failing evaluation), fulfilled by the teacher.
        CREATE TABLE input_requests (
            request_id BIGINT PRIMARY KEY DEFAULT nextval('input_request_seq'),
            slice VARCHAR NOT NULL,
            n INTEGER NOT NULL,
            reason VARCHAR,                   -- e.g. 'oversample', 'eval run 3 failed bar'
            status VARCHAR NOT NULL DEFAULT 'open',   -- open | done | cancelled
            created_at TIMESTAMP NOT NULL,
            fulfilled_at TIMESTAMP,
            n_generated INTEGER NOT NULL DEFAULT 0
        );
        """
    )
