"""v15: rounds, the loop from an evaluation's failing slices back to the data and a new evaluation.

- ``rounds``: one row per round: the evaluation it starts from (and that evaluation's run and dataset version), the
  teacher, the options and the plan (failing slices, their wrong items as seed prompts, new inputs and weight per
  slice, the estimated teacher cost), its status and what it made (version, run, evaluation, records added).
- ``round_steps``: one row per step of a round (synth, generate, filter, dedupe, version, train, evaluate) with its
  status and outputs (batches and records, teacher runs, filter and dedupe runs, version, run id, eval id), so a
  round killed or cancelled halfway continues from its first unfinished step.

Written by ``train.rounds.store``. (v11 is records.active_slice; v12-v14 and v16-v17 are assigned to other features.)
"""

from __future__ import annotations

import duckdb

VERSION = 15
DESCRIPTION = "rounds: failing slices -> seeded synthetic inputs -> teacher answers -> new version -> train -> evaluate"


def apply(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE SEQUENCE round_seq START 1;
        CREATE TABLE rounds (
            round_id BIGINT PRIMARY KEY DEFAULT nextval('round_seq'),
            number INTEGER NOT NULL,            -- 1 + the number of the round whose evaluation it starts from
            base_eval_id BIGINT NOT NULL,       -- the tuned held-out evaluation it starts from
            base_run_id BIGINT NOT NULL,
            base_version VARCHAR NOT NULL,
            teacher VARCHAR NOT NULL,
            options JSON NOT NULL,              -- the ROUND options it was started with (budget may be raised)
            plan JSON NOT NULL,                 -- slices, seed records, new inputs and weights, estimated cost
            status VARCHAR NOT NULL,            -- running | done | cancelled | budget | failed | abandoned
            version VARCHAR,                    -- the dataset version it made
            run_id BIGINT,                      -- the run it trained
            eval_id BIGINT,                     -- the tuned held-out evaluation of that run
            n_added INTEGER,                    -- new records that entered the version
            error VARCHAR,
            created_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP
        );
        CREATE TABLE round_steps (
            round_id BIGINT NOT NULL,
            step VARCHAR NOT NULL,              -- synth | generate | filter | dedupe | version | train | evaluate
            position INTEGER NOT NULL,          -- its place in the round, from 1
            status VARCHAR NOT NULL,            -- running | done | cancelled | budget | failed
            outputs JSON NOT NULL,              -- what the step made (ids of batches, runs, version, evaluation)
            detail VARCHAR,                     -- one line for people: counts, or the error
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP
        );
        """
    )
