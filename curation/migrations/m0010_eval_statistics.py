"""v10: evaluation statistics, external gold sets, run cost and calibration.

- ``evaluations``: which set was evaluated (``heldout`` or an external ``gold`` file, ``data_path``), the total wall
  time, tokens generated and overall tokens/s, peak memory (process RSS, GPU), and the overall calibration error.
- ``eval_slices``: the score's 95% Wilson interval over the items the metric scored, the paired difference to the
  teacher with its interval, how many more items would resolve +-3 points, the calibration error and the
  reliability bins.
- ``eval_items``: the student's confidence (exp of the mean logprob of its answer tokens), the score it is
  calibrated against (primary metric vs the reference, else vs the teacher), and the line of a gold-set item.

Written by ``train.store``. Rows from before stay as they were (the new columns NULL; ``eval_set`` 'heldout').
(v9 is the import's attached answers.)
"""

from __future__ import annotations

import duckdb

VERSION = 10
DESCRIPTION = "evaluation statistics: intervals, paired differences, gold sets, wall time and memory, calibration"

COLUMNS = {
    "evaluations": (
        "eval_set VARCHAR DEFAULT 'heldout'",  # heldout | gold (data_path names the gold file)
        "wall_s DOUBLE",  # the whole evaluation: model load, generation, scoring, judges
        "new_tokens BIGINT",
        "overall_tokens_per_s DOUBLE",  # new_tokens / wall_s
        "peak_rss_mb DOUBLE",  # the process's peak resident memory when the evaluation ended
        "peak_gpu_mb DOUBLE",  # torch.cuda.max_memory_allocated during the evaluation (NULL on CPU)
        "ece DOUBLE",
    ),
    "eval_slices": (
        "n_scored INTEGER",
        "score_low DOUBLE",
        "score_high DOUBLE",
        "diff DOUBLE",  # student minus teacher on the same items
        "diff_low DOUBLE",
        "diff_high DOUBLE",
        "n_paired INTEGER",
        "more_items INTEGER",  # items more for +-3 points, when the interval holds the slice's bar
        "ece DOUBLE",
        "reliability JSON",  # [{low, high, n, accuracy, confidence}] per confidence bin
    ),
    "eval_items": (
        "confidence DOUBLE",
        "correct DOUBLE",
        "source_line INTEGER",
    ),
}


def apply(con: duckdb.DuckDBPyConnection) -> None:
    for table, columns in COLUMNS.items():
        for column in columns:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
