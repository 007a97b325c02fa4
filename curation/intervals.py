"""Confidence intervals for proportions, shared by curation (error rate per confidence band) and train (scores).

The one definition of the Wilson score interval; ``train.stats`` re-exports it for the evaluation statistics.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the normal quantile at 0.975: two-sided 95%


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion ``successes / n``; None for n = 0."""
    if n <= 0:
        return None
    p = min(1.0, max(0.0, successes / n))
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)
