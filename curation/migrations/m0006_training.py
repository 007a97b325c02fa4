"""v6: quality bars, training runs (grouped), their metric streams, evaluations with per-slice and per-item results.

Written by ``train.store`` (the parent process; the training subprocess never opens the workspace).
"""

from __future__ import annotations

import duckdb

VERSION = 6
DESCRIPTION = "quality bars, runs, run metrics, evaluations"


def apply(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE SEQUENCE quality_bar_seq START 1;
        -- Every edit of a bar is a new row; the newest row per name is the current bar, and each evaluation
        -- keeps the bar_id it was judged against.
        CREATE TABLE quality_bars (
            bar_id BIGINT PRIMARY KEY DEFAULT nextval('quality_bar_seq'),
            name VARCHAR NOT NULL,
            task VARCHAR NOT NULL,              -- what the student must do, in words
            metrics JSON NOT NULL,              -- [{kind, field?, labels?, ...}], the first is the primary metric
            threshold DOUBLE NOT NULL,          -- overall bar on the primary metric
            slice_bars JSON NOT NULL,           -- {slice: threshold} for the critical slices
            max_gap DOUBLE,                     -- acceptable gap to the teacher on the primary metric
            max_latency_p95_ms DOUBLE,
            max_cost_per_1k DOUBLE,             -- student cost per 1,000 requests, in the teacher price's currency
            teacher_price_per_1k DOUBLE,        -- what the teacher costs per 1,000 requests
            student_price_per_hour DOUBLE,      -- what the student's machine costs per hour
            created_at TIMESTAMP NOT NULL
        );
        CREATE SEQUENCE run_group_seq START 1;
        CREATE TABLE run_groups (
            group_id BIGINT PRIMARY KEY DEFAULT nextval('run_group_seq'),
            name VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL
        );
        CREATE SEQUENCE run_seq START 1;
        CREATE TABLE runs (
            run_id BIGINT PRIMARY KEY DEFAULT nextval('run_seq'),
            group_id BIGINT,
            base_model VARCHAR NOT NULL,        -- as asked ('smollm2', a folder, a hub id)
            dataset_version VARCHAR,            -- curation dataset version name, NULL when trained from a file
            data_path VARCHAR NOT NULL,         -- the exported training file the worker read
            out_dir VARCHAR NOT NULL,           -- artifacts/runs/<run_id>
            config JSON NOT NULL,
            hardware JSON,
            status VARCHAR NOT NULL,            -- running | done | failed | cancelled
            created_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            n_train INTEGER,
            n_heldout INTEGER,
            steps_done INTEGER,
            best_step INTEGER,
            best_eval_loss DOUBLE,
            final_loss DOUBLE,
            adapter_path VARCHAR,               -- best checkpoint, PEFT format
            merged_path VARCHAR,
            stopped_early BOOLEAN,
            error VARCHAR
        );
        -- The worker's JSON lines, one row per step or evaluation of the held-out loss.
        CREATE TABLE run_metrics (
            run_id BIGINT NOT NULL,
            step INTEGER NOT NULL,
            phase VARCHAR NOT NULL,             -- train | eval
            loss DOUBLE,
            eval_loss DOUBLE,
            lr DOUBLE,
            tokens_per_s DOUBLE,
            eta_s DOUBLE,
            epoch DOUBLE,
            recorded_at TIMESTAMP NOT NULL
        );
        CREATE SEQUENCE evaluation_seq START 1;
        CREATE TABLE evaluations (
            eval_id BIGINT PRIMARY KEY DEFAULT nextval('evaluation_seq'),
            run_id BIGINT,                      -- NULL for an evaluation of a model outside a run
            kind VARCHAR NOT NULL,              -- tuned | baseline
            base_model VARCHAR NOT NULL,
            adapter_path VARCHAR,
            bar_id BIGINT,
            data_path VARCHAR,
            n_items INTEGER NOT NULL,
            score DOUBLE,                       -- primary metric vs the teacher, all held-out items
            gap DOUBLE,
            passed BOOLEAN,
            summary JSON NOT NULL,              -- every metric overall, checks against the bar
            latency_p50_ms DOUBLE,
            latency_p95_ms DOUBLE,
            throughput_rps DOUBLE,
            tokens_per_s DOUBLE,
            cost_per_1k DOUBLE,
            teacher_cost_per_1k DOUBLE,
            created_at TIMESTAMP NOT NULL
        );
        CREATE TABLE eval_slices (
            eval_id BIGINT NOT NULL,
            slice VARCHAR NOT NULL,
            n INTEGER NOT NULL,
            score DOUBLE,                       -- primary metric vs the teacher
            student_vs_reference DOUBLE,        -- primary metric vs reference answers (NULL: none in slice)
            teacher_vs_reference DOUBLE,
            gap DOUBLE,                         -- teacher minus student
            bar DOUBLE,                         -- the threshold that applied
            passed BOOLEAN,
            metrics JSON NOT NULL               -- every metric for this slice
        );
        -- Every generated answer; disagreements are the rows with agree = false.
        CREATE TABLE eval_items (
            eval_id BIGINT NOT NULL,
            record_id BIGINT,
            slice VARCHAR NOT NULL,
            prompt VARCHAR,
            student_output VARCHAR,
            teacher_output VARCHAR,
            reference VARCHAR,
            scores JSON NOT NULL,
            agree BOOLEAN NOT NULL,
            latency_ms DOUBLE
        );
        """
    )
