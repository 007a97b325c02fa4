"""v4: curation — slice definitions, embedding cache, dedupe runs, frozen splits, filter results, dataset versions."""

from __future__ import annotations

import duckdb

VERSION = 4
DESCRIPTION = "curation: slicings, embeddings, dedupe, splits, filters, dataset versions"


def apply(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        -- A named way of assigning slices (field path, SQL expression or embedding clusters) and its assignments.
        CREATE TABLE slicings (
            name VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL,            -- field | sql | clusters
            spec JSON NOT NULL,               -- {"field": ...} | {"expr": ...} | {"k", "model", "seed", "names"}
            created_at TIMESTAMP NOT NULL
        );
        CREATE TABLE slicing_assignments (
            slicing VARCHAR NOT NULL,
            record_id BIGINT NOT NULL,
            slice VARCHAR NOT NULL,
            PRIMARY KEY (slicing, record_id)
        );
        -- Sentence embeddings, computed once per (model, text): text_hash = md5 of the exact text embedded.
        CREATE TABLE embeddings (
            model VARCHAR NOT NULL,
            text_hash VARCHAR NOT NULL,
            dim INTEGER NOT NULL,
            vector FLOAT[] NOT NULL,          -- L2-normalised
            PRIMARY KEY (model, text_hash)
        );
        CREATE SEQUENCE dedupe_run_seq START 1;
        CREATE TABLE dedupe_runs (
            run_id BIGINT PRIMARY KEY DEFAULT nextval('dedupe_run_seq'),
            kind VARCHAR NOT NULL,            -- exact | semantic
            model VARCHAR,
            threshold DOUBLE,
            params JSON NOT NULL,
            n_records BIGINT NOT NULL,
            n_clusters BIGINT NOT NULL,
            n_removed BIGINT NOT NULL,
            created_at TIMESTAMP NOT NULL
        );
        -- Members of clusters with >= 2 records; records in no cluster are unique. kept=false = removed by the run.
        CREATE TABLE dedupe_members (
            run_id BIGINT NOT NULL,
            cluster_id BIGINT NOT NULL,
            record_id BIGINT NOT NULL,
            kept BOOLEAN NOT NULL,
            reason VARCHAR,                   -- why kept/removed: keep rule step, held-out, leak
            PRIMARY KEY (run_id, record_id)
        );
        -- Frozen held-out splits: every record that existed at freeze time is on one side; later records are train.
        CREATE TABLE splits (
            name VARCHAR PRIMARY KEY,
            params JSON NOT NULL,             -- share, seed, slicing, cluster source
            n_train BIGINT NOT NULL,
            n_heldout BIGINT NOT NULL,
            created_at TIMESTAMP NOT NULL
        );
        CREATE TABLE split_members (
            split VARCHAR NOT NULL,
            record_id BIGINT NOT NULL,
            side VARCHAR NOT NULL,            -- train | heldout
            PRIMARY KEY (split, record_id)
        );
        CREATE SEQUENCE filter_run_seq START 1;
        CREATE TABLE filter_runs (
            run_id BIGINT PRIMARY KEY DEFAULT nextval('filter_run_seq'),
            name VARCHAR NOT NULL,
            spec JSON NOT NULL,
            policy VARCHAR NOT NULL,          -- drop | review | keep
            n_checked BIGINT NOT NULL,
            n_failed BIGINT NOT NULL,
            n_queued BIGINT NOT NULL,
            created_at TIMESTAMP NOT NULL
        );
        CREATE TABLE filter_results (
            run_id BIGINT NOT NULL,
            record_id BIGINT NOT NULL,
            ok BOOLEAN NOT NULL,
            score DOUBLE,                     -- the confidence measured, when the filter measures one
            reason VARCHAR,
            PRIMARY KEY (run_id, record_id)
        );
        -- Immutable named dataset versions with a snapshot of each member's effective response.
        CREATE TABLE dataset_versions (
            name VARCHAR PRIMARY KEY,
            created_at TIMESTAMP NOT NULL,
            recipe JSON NOT NULL,             -- [{"op": ..., params...}, ...]
            split VARCHAR,                    -- the held-out split used (NULL = no held-out side)
            n_train BIGINT NOT NULL,
            n_heldout BIGINT NOT NULL,
            shares JSON NOT NULL              -- {slice: weighted share of train}
        );
        CREATE TABLE dataset_members (
            version VARCHAR NOT NULL,
            record_id BIGINT NOT NULL,
            side VARCHAR NOT NULL,            -- train | heldout
            slice VARCHAR NOT NULL,           -- effective slice at creation time
            weight DOUBLE NOT NULL,           -- sample weight
            copies INTEGER NOT NULL,          -- duplication count (oversampling by duplication)
            response VARCHAR NOT NULL,        -- effective response (review edits applied) at creation time
            PRIMARY KEY (version, record_id)
        );
        """
    )
