"""v13: monitoring thresholds on the quality bar, read by ``distill monitor`` and the studio's Production screen.

- ``max_drift_auc``: the largest ROC AUC a domain classifier may reach telling live inputs from the training
  version's (0.5 = indistinguishable);
- ``max_fallback_rate``: the largest share of the student's requests that may go back to the teacher;
- ``min_agreement``: the smallest student-teacher agreement in shadow (NULL: each slice's own bar).

Written by ``train.bars``. Bars stored before keep NULL in the first two, which reads as the defaults
(``train.bars.DEFAULT_MAX_DRIFT_AUC``, ``DEFAULT_MAX_FALLBACK_RATE``).
"""

from __future__ import annotations

import duckdb

VERSION = 13
DESCRIPTION = "quality bar monitoring thresholds: drift AUC, fallback rate, agreement"


def apply(con: duckdb.DuckDBPyConnection) -> None:
    for column in ("max_drift_auc", "max_fallback_rate", "min_agreement"):
        con.execute(f"ALTER TABLE quality_bars ADD COLUMN {column} DOUBLE")
