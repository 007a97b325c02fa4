"""Near-neighbour search over normalised vectors with faiss and numpy (exact below a size, a clustered join above).

Exact search of n x n at 384 dimensions is fine up to ~20k vectors. Above that, ``self_pairs`` runs a clustered
join: spherical k-means (faiss) on a sample gives ~n/330 centroids; every vector is a member of its nearest centroid's
list and a query of its ``PROBES`` nearest lists; each list is one BLAS product (queries x members), thresholded.
A pair is found when one vector's home list is among the other's nearest lists, as an IVF search with nprobe 3
would find it, but batched per list instead of per query. On the 100k bench vectors (AVX2 2-core box, under load)
it took 7 s at pair recall 0.9996 where HNSW (M12/efC32/efS48, the previous default) took 50 s at 0.9857; HNSW
stays for ``cross_pairs`` (a query set against a base). ``bench/dedupe_bench.py`` measures both against exact.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from curation.lazy import lazy_module
from curation.progress import ProgressFn, check_cancel, report

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_module("numpy")  # loaded by the first search (see curation.lazy)

EXACT_LIMIT = 20_000
HNSW_M = 12
EF_CONSTRUCTION = 32
EF_SEARCH = 48
SEARCH_CHUNK = 4096
LIST_SIZE = 330  # vectors per k-means list in the clustered join
PROBES = 3  # lists each vector is compared against (its nearest centroids)
BLOCK = 4_000_000  # similarities computed per block (16 MB of float32)


@dataclass
class Pairs:
    """Candidate pairs i < j with their cosine similarity (arrays of equal length)."""

    i: np.ndarray
    j: np.ndarray
    sim: np.ndarray
    method: str


def _faiss():
    import faiss

    return faiss


def build_index(
    vecs: np.ndarray, *, exact: bool | None = None, hnsw_m: int = HNSW_M, ef_construction: int = EF_CONSTRUCTION
):
    """An inner-product index over ``vecs``: flat (exact) when small or asked, else HNSW."""
    faiss = _faiss()
    n, dim = vecs.shape
    use_exact = n <= EXACT_LIMIT if exact is None else exact
    if use_exact:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
    index.add(np.ascontiguousarray(vecs, dtype=np.float32))
    return index


def _unique_pairs(i: np.ndarray, j: np.ndarray, s: np.ndarray, n: int, method: str) -> Pairs:
    """Pairs as (low, high), each once (the higher similarity when found twice)."""
    lo, hi = np.minimum(i, j).astype(np.int64), np.maximum(i, j).astype(np.int64)
    key = lo * n + hi
    order = np.lexsort((-s, key))
    key, lo, hi, s = key[order], lo[order], hi[order], s[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    return Pairs(lo[first], hi[first], s[first].astype(np.float32), method)


def self_pairs(
    vecs: np.ndarray,
    min_sim: float,
    *,
    k: int = 16,
    exact: bool | None = None,
    ef_search: int = EF_SEARCH,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Pairs:
    """Every pair (i < j) with similarity >= ``min_sim`` among each vector's ``k`` nearest neighbours (exact search
    up to ``EXACT_LIMIT`` vectors or when ``exact``), else among its ``k`` nearest in each probed list."""
    n = len(vecs)
    if n < 2:
        e = np.zeros(0, dtype=np.int64)
        return Pairs(e, e, np.zeros(0, dtype=np.float32), "none")
    if not (n <= EXACT_LIMIT if exact is None else exact):
        return clustered_pairs(vecs, min_sim, k=k, progress=progress, cancel=cancel)
    index = build_index(vecs, exact=True)
    kk = min(k + 1, n)
    ii, jj, ss = [], [], []
    for start in range(0, n, SEARCH_CHUNK):
        report(progress, cancel, "searching neighbours", start, n)
        q = vecs[start : start + SEARCH_CHUNK]
        sims, idx = index.search(np.ascontiguousarray(q, dtype=np.float32), kk)
        rows = np.repeat(np.arange(start, start + len(q)), kk)
        cols = idx.reshape(-1)
        s = sims.reshape(-1)
        keep = (cols >= 0) & (cols != rows) & (s >= min_sim)
        ii.append(rows[keep])
        jj.append(cols[keep])
        ss.append(s[keep])
    report(progress, cancel, "searching neighbours", n, n)
    return _unique_pairs(np.concatenate(ii), np.concatenate(jj), np.concatenate(ss), n, "exact")


def _lists(vecs: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means centroids of a sample, then each vector's ``PROBES`` nearest centroids (nearest first)."""
    faiss = _faiss()
    n, dim = vecs.shape
    nlist = int(np.clip(n // LIST_SIZE, 2, 4096))
    rng = np.random.default_rng(seed)
    sample = vecs[rng.choice(n, min(n, nlist * 40), replace=False)]  # faiss wants >= 39 points per centroid
    km = faiss.Kmeans(dim, nlist, niter=10, spherical=True, seed=seed, verbose=False)
    km.train(np.ascontiguousarray(sample, dtype=np.float32))
    centroids = faiss.IndexFlatIP(dim)
    centroids.add(km.centroids)
    _, nearest = centroids.search(vecs, min(PROBES, nlist))
    return nearest, np.arange(nlist)


def _group(keys: np.ndarray, owners: np.ndarray, nlist: int) -> tuple[np.ndarray, np.ndarray]:
    """``owners`` ordered by ``keys``, and where each key's run starts (length nlist + 1)."""
    order = np.argsort(keys, kind="stable")
    return owners[order], np.searchsorted(keys[order], np.arange(nlist + 1))


def clustered_pairs(
    vecs: np.ndarray,
    min_sim: float,
    *,
    k: int = 16,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Pairs:
    """Pairs >= ``min_sim`` by the clustered join (see the module docstring); at most ``k`` per vector and list, so
    a huge group of near-identical prompts costs k pairs each rather than all of its pairs."""
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    n = len(vecs)
    report(progress, cancel, "clustering vectors", 0, n)
    nearest, lists = _lists(vecs, seed)
    members, m_at = _group(nearest[:, 0], np.arange(n), len(lists))
    queries, q_at = _group(nearest.reshape(-1), np.repeat(np.arange(n), nearest.shape[1]), len(lists))
    ii, jj, ss = [], [], []
    for c in lists:
        if c % 16 == 0:
            report(progress, cancel, "searching neighbours", int(c), len(lists))
        m, q = members[m_at[c] : m_at[c + 1]], queries[q_at[c] : q_at[c + 1]]
        if len(m) == 0:
            continue
        base = vecs[m].T
        step = max(1, BLOCK // len(m))
        for s0 in range(0, len(q), step):
            check_cancel(cancel)
            qs = q[s0 : s0 + step]
            sims = vecs[qs] @ base
            sims[qs[:, None] == m[None, :]] = -1.0  # a vector is not its own neighbour
            hit = sims >= min_sim
            crowded = hit.sum(axis=1) > k
            if crowded.any():  # keep the k most similar of a crowded row
                rows = np.nonzero(crowded)[0]
                top = np.argpartition(-sims[rows], k - 1, axis=1)[:, :k]
                hit[rows] = False
                hit[rows[:, None], top] = sims[rows[:, None], top] >= min_sim
            r, col = np.nonzero(hit)
            ii.append(qs[r])
            jj.append(m[col])
            ss.append(sims[r, col])
    report(progress, cancel, "searching neighbours", len(lists), len(lists))
    if not ii:
        e = np.zeros(0, dtype=np.int64)
        return Pairs(e, e, np.zeros(0, dtype=np.float32), "clustered")
    return _unique_pairs(np.concatenate(ii), np.concatenate(jj), np.concatenate(ss), n, "clustered")


def cross_pairs(queries: np.ndarray, base: np.ndarray, min_sim: float, *, k: int = 8) -> Pairs:
    """Pairs (query i, base j) with similarity >= ``min_sim`` among each query's ``k`` nearest base vectors."""
    if len(queries) == 0 or len(base) == 0:
        e = np.zeros(0, dtype=np.int64)
        return Pairs(e, e, np.zeros(0, dtype=np.float32), "none")
    index = build_index(base)
    if isinstance(index, _faiss().IndexHNSWFlat):
        index.hnsw.efSearch = max(64, k)
    kk = min(k, len(base))
    ii, jj, ss = [], [], []
    for start in range(0, len(queries), SEARCH_CHUNK):
        q = np.ascontiguousarray(queries[start : start + SEARCH_CHUNK], dtype=np.float32)
        sims, idx = index.search(q, kk)
        rows = np.repeat(np.arange(start, start + len(q)), kk)
        cols, s = idx.reshape(-1), sims.reshape(-1)
        keep = (cols >= 0) & (s >= min_sim)
        ii.append(rows[keep])
        jj.append(cols[keep])
        ss.append(s[keep])
    return Pairs(np.concatenate(ii), np.concatenate(jj), np.concatenate(ss), "exact")


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected-component label per node: the smallest node index of its component.

    Vectorised label propagation with pointer jumping (a few numpy passes instead of a Python union-find loop).
    """
    lab = np.arange(n, dtype=np.int64)
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    if len(i) == 0:
        return lab
    while True:
        m = np.minimum(lab[i], lab[j])
        new = lab.copy()
        np.minimum.at(new, i, m)
        np.minimum.at(new, j, m)
        while True:  # jump to the root of each label chain
            nxt = new[new]
            if np.array_equal(nxt, new):
                break
            new = nxt
        if np.array_equal(new, lab):
            return lab
        lab = new
