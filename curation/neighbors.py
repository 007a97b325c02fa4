"""Near-neighbour search over normalised vectors with faiss (exact below a size, HNSW above).

Exact search of n x n at 384 dimensions is fine up to ~20k vectors; beyond that an HNSW graph. Measured on the 100k
bench vectors (loaded 2-core box; CPU seconds of build+search, recall of pairs >= 0.85 / >= 0.80 among the exact
top-16): M16/efC40/efS48 28 s, 0.9985/0.9998; M12/efC32/efS48 22 s, 0.9950/0.9994; M12/efC32/efS32 19 s, 0.9926;
M8/efC32/efS24-64 14-23 s but <= 0.989 at 0.85 (tight duplicate groups need more links). IVF-flat (512 lists,
nprobe 6) 23 s at 0.990 (0.80); SQ8/fp16 storage no faster; pairs from the graph's own links: recall 0.66; a blocked
numpy matmul over the upper triangle ~10x slower than HNSW. Hence M12/efC32/efS48 (``bench/dedupe_bench.py``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from curation.progress import ProgressFn, report

EXACT_LIMIT = 20_000
HNSW_M = 12
EF_CONSTRUCTION = 32
EF_SEARCH = 48
SEARCH_CHUNK = 4096


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
    """Every pair (i < j) among each vector's ``k`` nearest neighbours with similarity >= ``min_sim``."""
    n = len(vecs)
    if n < 2:
        e = np.zeros(0, dtype=np.int64)
        return Pairs(e, e, np.zeros(0, dtype=np.float32), "none")
    index = build_index(vecs, exact=exact)
    method = "hnsw" if isinstance(index, _faiss().IndexHNSWFlat) else "exact"
    if method == "hnsw":
        index.hnsw.efSearch = max(ef_search, k)
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
    i = np.concatenate(ii).astype(np.int64)
    j = np.concatenate(jj).astype(np.int64)
    s = np.concatenate(ss).astype(np.float32)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    # Each pair is usually found from both ends: keep one copy (the higher similarity, they are equal in exact).
    key = lo * n + hi
    order = np.lexsort((-s, key))
    key, lo, hi, s = key[order], lo[order], hi[order], s[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    return Pairs(lo[first], hi[first], s[first], method)


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
