"""Coverage-keeping selection: which examples a slice keeps when it is sized down."""

from __future__ import annotations

import numpy as np
import pytest

from curation.coverage import largest_remainder, nearest_similarity, select_typical
from curation.rebalance import Target, plan_rebalance


def _modes(sizes: list[int], dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    vecs = centres[labels] + 0.05 * rng.normal(size=(len(labels), dim))
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32), labels


def test_typical_selection_keeps_every_mode_that_random_misses() -> None:
    vecs, labels = _modes([12, 12, 12, 12, 12])
    kept = select_typical(vecs, 5, seed=0)
    assert len(kept) == 5 and set(labels[kept].tolist()) == {0, 1, 2, 3, 4}
    rand = np.random.default_rng(0).choice(len(vecs), size=5, replace=False)
    assert len(set(labels[rand].tolist())) < 5
    assert nearest_similarity(vecs, vecs[kept]) > nearest_similarity(vecs, vecs[rand])
    assert select_typical(vecs, 5, seed=0).tolist() == kept.tolist()  # seeded


def test_largest_remainder_sums_exactly_and_respects_caps() -> None:
    out = largest_remainder({"a": 3.4, "b": 3.3, "c": 3.3}, 10)
    assert sum(out.values()) == 10 and out["a"] == 4
    assert largest_remainder({"a": 5.0, "b": 5.0}, 10, {"a": 2, "b": 100}) == {"a": 2, "b": 8}
    with pytest.raises(ValueError):
        largest_remainder({"a": 5.0}, 10, {"a": 2})


def test_rebalance_keeps_typical_prompts_when_a_slice_is_sized_down(ws, minilm) -> None:
    plan = plan_rebalance(ws, Target("uniform"), budget=16, seed=0)
    assert plan.select == "coverage" and plan.train_rows == 16
    billing = sorted(m.record_id for m in plan.members if m.slice == "billing")
    assert len(billing) == 5  # uniform 16: security 2 and shipping 4 at capacity, 5 each for the others
    # Records 1 and 2 are paraphrases ("charged twice" / "billed two times"): one cluster keeps one of them.
    assert not {1, 2} <= set(billing)
    again = plan_rebalance(ws, Target("uniform"), budget=16, seed=0)
    assert sorted(m.record_id for m in again.members if m.slice == "billing") == billing
