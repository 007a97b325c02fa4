"""Which examples to keep when a slice is sized down: the most typical member of each k-means cluster of the prompts.

``select_typical(vecs, k, seed)`` clusters a slice's prompt embeddings into ``k`` groups (spherical k-means, seeded)
and keeps from each the member nearest its centroid, so the kept examples spread over the slice's modes in
proportion to their mass and none of them is an outlier. Measured on banking77 (77 intents as slices, prompts
sized down per intent, the test split as held-out; mean over slices of each held-out prompt's cosine to its
nearest kept example, and the 1-NN intent accuracy over the kept examples as a proxy of what a student learns):

    kept per slice   random (3 seeds)   k-center greedy    typicality (this)   facility location
    10%              0.805 / 0.841      0.775 / 0.796      0.837 / 0.883       0.845 / 0.893
    25%              0.849 / 0.887      0.825 / 0.853      0.861 / 0.895       0.866 / 0.905
    50%              0.874 / 0.906      0.866 / 0.901      0.877 / 0.913       0.881 / 0.911

(measured with faiss's random seeds; the seeds are k-means++ since, see ``_plus_plus``). On the sample,
``bench/coverage_bench.py`` (uniform target, exact budget, one seeded run each, random -> coverage, held-out):
cover 0.930 -> 0.956 at 700 rows and 0.952 -> 0.958 at 1,400; 1-NN intent accuracy 0.915 -> 0.916 and
0.914 -> 0.917; a nearest-centroid student 0.878 -> 0.934 and 0.904 -> 0.867 (billing 0.806 -> 0.677: typical
members pull an intent's centroid towards its dense core). Only the down-sampled slices (billing, shipping) differ.
k-center greedy (farthest point first) covers the worst case and spends the budget on outliers: worse than random.
Facility location (greedy on the sum of nearest similarities) is slightly better still but needs the slice's
n x n similarities; typicality costs one k-means per slice. Above ``KMEANS_MAX`` clusters the slice is split into
``KMEANS_MAX`` clusters first, each keeping its share (largest remainder), chosen the same way inside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from curation.lazy import lazy_module
from curation.options import ChoiceOption

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_module("numpy")  # loaded when a slice is sized down: the CLI reads SELECT at every start

SELECT = ChoiceOption(
    name="select",
    choices=("coverage", "random"),
    default="coverage",
    required=True,
    help="which examples a slice keeps when sized down: the most typical of each k-means cluster of its prompts "
    "(coverage) or a seeded random sample",
)
KMEANS_MAX = 1024  # clusters in one k-means; a larger selection is made cluster by cluster
KMEANS_ITER = 20


def largest_remainder(want: dict[str, float], total: int, cap: dict[str, int] | None = None) -> dict[str, int]:
    """Whole numbers near ``want`` that sum to exactly ``total`` (each at most ``cap``): floors first, then one
    more for the largest remainders. ``total`` must not exceed the sum of the caps."""
    cap = cap or {k: total for k in want}
    out = {k: min(int(np.floor(v + 1e-9)), cap[k]) for k, v in want.items()}
    left = total - sum(out.values())
    order = sorted(want, key=lambda k: (-(want[k] - np.floor(want[k] + 1e-9)), -want[k], k))
    while left > 0:
        moved = False
        for k in order:
            if left and out[k] < cap[k]:
                out[k] += 1
                left -= 1
                moved = True
        if not moved:
            raise ValueError(f"cannot place {left} more (every cap reached)")
    return out


def _plus_plus(vecs: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means++ seeds (each next one drawn with probability ~ squared cosine distance to the nearest so far): with
    faiss's default (k random rows) five equal, well-separated modes got two seeds in one mode and kept 4 of 5."""
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(vecs)))]
    dist = np.maximum(1.0 - vecs @ vecs[chosen[0]], 0.0) ** 2
    for _ in range(1, k):
        total = float(dist.sum())
        nxt = int(rng.choice(len(vecs), p=dist / total)) if total > 0 else int(rng.integers(len(vecs)))
        chosen.append(nxt)
        dist = np.minimum(dist, np.maximum(1.0 - vecs @ vecs[nxt], 0.0) ** 2)
    return np.ascontiguousarray(vecs[chosen])


def _kmeans(vecs: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(similarity of each vector to each centroid, each vector's cluster)."""
    import faiss

    km = faiss.Kmeans(vecs.shape[1], k, niter=KMEANS_ITER, seed=seed, spherical=True, verbose=False,
                      min_points_per_centroid=1)  # fmt: skip
    km.train(vecs, init_centroids=_plus_plus(vecs, k, seed))
    sims = vecs @ km.centroids.T
    return sims, sims.argmax(axis=1)


def select_typical(vecs: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Indexes (sorted) of ``k`` rows of ``vecs`` (L2-normalised) that cover them: one per k-means cluster, the
    member nearest its centroid; clusters left empty are made up by the rows least covered so far."""
    n = len(vecs)
    if k >= n:
        return np.arange(n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    if k > KMEANS_MAX:
        _, assign = _kmeans(vecs, KMEANS_MAX, seed)
        members = {c: np.nonzero(assign == c)[0] for c in np.unique(assign).tolist()}
        share = largest_remainder(
            {c: k * len(m) / n for c, m in members.items()}, k, {c: len(m) for c, m in members.items()}
        )
        parts = [m[select_typical(vecs[m], share[c], seed)] for c, m in members.items() if share[c]]
        return np.sort(np.concatenate(parts))
    sims, assign = _kmeans(vecs, k, seed)
    chosen: list[int] = []
    for c in range(k):
        m = np.nonzero(assign == c)[0]
        if len(m):
            chosen.append(int(m[np.argmax(sims[m, c])]))
    if len(chosen) < k:  # empty clusters: add the rows farthest from everything chosen
        best = (vecs @ vecs[chosen].T).max(axis=1)
        best[chosen] = np.inf
        while len(chosen) < k:
            nxt = int(np.argmin(best))
            chosen.append(nxt)
            best = np.maximum(best, vecs @ vecs[nxt])
            best[nxt] = np.inf
    return np.sort(np.array(chosen, dtype=np.int64))


def nearest_similarity(queries: np.ndarray, kept: np.ndarray) -> float:
    """Mean over ``queries`` of the cosine to the nearest row of ``kept``: how well the kept examples cover them."""
    if len(queries) == 0 or len(kept) == 0:
        return 0.0
    return float((queries @ kept.T).max(axis=1).mean())
