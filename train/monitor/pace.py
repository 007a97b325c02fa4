"""How far back and how often the monitor looks: plain constants, so that `distill` (which declares
`distill monitor --since/--watch` at every start) need not load the monitor and its numpy and pyarrow."""

from __future__ import annotations

DEFAULT_WINDOW = "1h"  # what `distill monitor` and the Production screen show first
REFRESH_S = 3  # how often --watch and the screen read the log again (only appended lines are read)
DRIFT_EVERY_S = 60  # how often they re-test drift (embeddings and classifiers: seconds of CPU)
