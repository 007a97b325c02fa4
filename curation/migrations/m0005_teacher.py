"""v5: teachers, their outputs side by side, the content-addressed request cache, the cost ledger, runs, batch jobs.

API keys are never stored: a teacher names the environment variable that holds its key.
"""

from __future__ import annotations

import duckdb

VERSION = 5
DESCRIPTION = "teachers, teacher outputs, request cache, cost ledger, runs, batch jobs"


def apply(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE teachers (
            name VARCHAR PRIMARY KEY,
            base_url VARCHAR NOT NULL,
            model VARCHAR NOT NULL,             -- the pinned version string sent to the provider
            api_key_env VARCHAR NOT NULL,       -- NAME of the environment variable with the key (never the key)
            params JSON NOT NULL,               -- sampling parameters: temperature, max_tokens, top_logprobs...
            price_in_per_m DOUBLE NOT NULL,     -- USD per 1M input tokens
            price_out_per_m DOUBLE NOT NULL,    -- USD per 1M output tokens
            batch_discount DOUBLE NOT NULL DEFAULT 0.5,   -- Batch API price factor
            terms_ack BOOLEAN NOT NULL DEFAULT false,     -- provider terms allow training on outputs
            terms_ack_at TIMESTAMP,
            concurrency INTEGER NOT NULL DEFAULT 8,
            timeout_s DOUBLE NOT NULL DEFAULT 60,
            max_retries INTEGER NOT NULL DEFAULT 6,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL
        );
        -- One answer per (record, teacher): several teachers side by side.
        CREATE TABLE teacher_outputs (
            record_id BIGINT NOT NULL,
            teacher VARCHAR NOT NULL,
            model VARCHAR NOT NULL,             -- the version the provider says it served
            cache_key VARCHAR NOT NULL,
            response VARCHAR,
            response_logprobs JSON,             -- [{token, logprob, top_logprobs: [{token, logprob}]}]
            mean_logprob DOUBLE,
            min_logprob DOUBLE,
            finish_reason VARCHAR,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost_usd DOUBLE NOT NULL,           -- what this answer cost (0 when it came from the cache)
            latency_ms DOUBLE,
            mode VARCHAR NOT NULL,              -- sync | batch | cache
            run_id BIGINT,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (record_id, teacher)
        );
        -- Content-addressed: sha256 over model, messages and parameters. A hit is never paid for again.
        CREATE TABLE teacher_cache (
            cache_key VARCHAR PRIMARY KEY,
            model VARCHAR NOT NULL,
            served_model VARCHAR,
            response VARCHAR,
            response_logprobs JSON,
            finish_reason VARCHAR,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost_usd DOUBLE NOT NULL,
            latency_ms DOUBLE,
            created_at TIMESTAMP NOT NULL
        );
        CREATE SEQUENCE teacher_run_seq START 1;
        CREATE TABLE teacher_runs (
            run_id BIGINT PRIMARY KEY,
            teacher VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,              -- generate | synth | batch
            selection JSON,
            budget_usd DOUBLE,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            status VARCHAR NOT NULL DEFAULT 'running',   -- running | done | cancelled | budget | failed
            n_done INTEGER NOT NULL DEFAULT 0,
            n_failed INTEGER NOT NULL DEFAULT 0,
            n_cached INTEGER NOT NULL DEFAULT 0,
            cost_usd DOUBLE NOT NULL DEFAULT 0
        );
        CREATE SEQUENCE teacher_ledger_seq START 1;
        -- One row per HTTP request that ended (success or final failure). Errors are stored redacted.
        CREATE TABLE teacher_ledger (
            entry_id BIGINT PRIMARY KEY DEFAULT nextval('teacher_ledger_seq'),
            run_id BIGINT,
            teacher VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,              -- generate | synth | batch
            cache_key VARCHAR,
            status VARCHAR NOT NULL,            -- ok | failed
            http_status INTEGER,
            attempts INTEGER NOT NULL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost_usd DOUBLE NOT NULL,
            latency_ms DOUBLE,
            error VARCHAR,
            created_at TIMESTAMP NOT NULL
        );
        CREATE SEQUENCE teacher_batch_seq START 1;
        CREATE TABLE teacher_batches (
            job_id BIGINT PRIMARY KEY,
            teacher VARCHAR NOT NULL,
            provider_batch_id VARCHAR,          -- set once created: resume by this id after a restart
            input_file_id VARCHAR,
            output_file_id VARCHAR,
            error_file_id VARCHAR,
            input_path VARCHAR NOT NULL,
            output_path VARCHAR,
            n_requests INTEGER NOT NULL,
            status VARCHAR NOT NULL,            -- written | uploaded | submitted | <provider status> | collected
            import_batch_id INTEGER,
            n_attached INTEGER,
            error VARCHAR,
            created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL
        );
        """
    )
