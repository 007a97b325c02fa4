"""v12: phase-1 baselines and the payback estimate.

- ``quality_bars.requests_per_day``: the traffic the payback estimate assumes when the user gives it (NULL: measured
  from the imported logs' ``logged_at``).
- ``baseline_prompts``: the prompt each baseline was evaluated with (system prompt, few-shot template, the examples
  chosen per held-out prompt, or the model asked), so the one that worked can be exported. Written by
  ``train.baseline_prompts``; the newest row of a name is current, and each row names the evaluation it produced.
"""

from __future__ import annotations

import duckdb

VERSION = 12
DESCRIPTION = "baselines: their prompts; requests per day on the quality bar"


def apply(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        ALTER TABLE quality_bars ADD COLUMN requests_per_day DOUBLE;
        CREATE SEQUENCE baseline_prompt_seq START 1;
        CREATE TABLE baseline_prompts (
            prompt_id BIGINT PRIMARY KEY DEFAULT nextval('baseline_prompt_seq'),
            name VARCHAR NOT NULL,              -- zero-shot | few-shot-k4 | model:TEACHER
            eval_id BIGINT,                     -- the evaluation (kind 'baseline:' || name) it produced
            dataset_version VARCHAR,
            spec JSON NOT NULL,                 -- system prompts, template, examples, items (see train.baselines)
            created_at TIMESTAMP NOT NULL
        );
        """
    )
