"""v1: records, import batches and quarantined lines."""

from __future__ import annotations

import duckdb

VERSION = 1
DESCRIPTION = "records, import batches, quarantine"


def apply(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE schema_migrations (
            version INTEGER PRIMARY KEY,
            description VARCHAR NOT NULL,
            applied_at TIMESTAMP NOT NULL
        );
        CREATE SEQUENCE import_batch_seq START 1;
        CREATE TABLE import_batches (
            batch_id INTEGER PRIMARY KEY,
            source_file VARCHAR NOT NULL,       -- absolute path as given at import time
            format VARCHAR NOT NULL,            -- log | batch | finetune | table
            options JSON,                       -- slice field, column mapping, companion file...
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            n_lines BIGINT,                     -- lines (or rows) read
            n_imported BIGINT,
            n_duplicates BIGINT,                -- already in the workspace (content hash)
            n_quarantined BIGINT,
            warnings JSON,                      -- list of strings (BOM stripped, ...)
            status VARCHAR NOT NULL DEFAULT 'done'   -- done | undone
        );
        CREATE SEQUENCE record_seq START 1;
        CREATE TABLE records (
            record_id BIGINT PRIMARY KEY DEFAULT nextval('record_seq'),
            batch_id INTEGER NOT NULL,
            source_file VARCHAR,
            source_line BIGINT,                 -- 1-based line (JSONL) or data row (CSV/Parquet)
            messages JSON NOT NULL,             -- the conversation up to the teacher turn: [{role, content}, ...]
            prompt VARCHAR,                     -- text of the last user message, for display, search, embedding
            response VARCHAR,                   -- the teacher's answer (NULL when not generated yet)
            response_logprobs JSON,             -- [{token, logprob, top_logprobs: [{token, logprob}]}] or NULL
            teacher_model VARCHAR,
            finish_reason VARCHAR,
            slice VARCHAR NOT NULL DEFAULT '(none)',
            reference VARCHAR,                  -- a reference answer when the log carries one
            metadata JSON,
            request_params JSON,                -- temperature, max_tokens... from the logged request
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            latency_ms DOUBLE,
            logged_at TIMESTAMP,                -- when production saw it
            content_hash VARCHAR NOT NULL,      -- md5 over messages, response and metadata: re-import adds nothing
            origin VARCHAR NOT NULL DEFAULT 'import',   -- import | synthetic
            imported_at TIMESTAMP NOT NULL DEFAULT now()
        );
        CREATE TABLE quarantine (
            batch_id INTEGER NOT NULL,
            source_file VARCHAR NOT NULL,
            line_no BIGINT NOT NULL,            -- 0 when the whole file is at fault (empty, unreadable)
            field VARCHAR,                      -- the offending field path, when one is to blame
            reason VARCHAR NOT NULL,
            raw VARCHAR,                        -- the first 2,000 characters of the line (as decoded, or escaped)
            raw_bytes BIGINT
        );
        """
    )
