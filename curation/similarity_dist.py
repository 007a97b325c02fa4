"""Nearest-neighbour similarity before a dedupe decision: a histogram per slice, what each threshold would remove,
and example pairs from every similarity band.

Computed once over the same candidates a dedupe uses (the prompts ``curation.dedupe`` reads, its normalised hash for
exact duplicates, the cached embeddings and ``neighbors.self_pairs``, its rule for pairs kept apart, its keep rule),
from a lower ``floor`` (0.70) so that every threshold above it can be judged without searching again: each vector's
k nearest neighbours above the floor include those above any higher threshold. The removal at each threshold on a
0.01 grid is computed here too (connected components of the pairs at or above it, one record kept per cluster as
``find_duplicates`` keeps it; held-out members kept and train members of their clusters removed), so a studio view
can move the threshold without new work. When answers must agree (``curation.label_conflicts``, resolved as the
dedupe resolves it), a cluster whose known answers disagree keeps one record per answer, as the dedupe keeps them.

The pairs stay as index arrays; the prompts of a page of pairs are read from the workspace when shown.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curation.dedupe import DEDUPE, _keep_order, dedupe_rows, hash_groups, normalised_hash
from curation.effective import resolve_slicing
from curation.errors import UserError
from curation.label_conflicts import NO_LABEL, labels_of, resolve_rule
from curation.near_dupes import TokenRule
from curation.neighbors import components, self_pairs
from curation.progress import ProgressFn, report
from curation.workspace import Workspace

FLOOR = 0.70  # lowest similarity looked at; the data leads weighed 0.80-0.90, MiniLM paraphrases sit >= 0.75
STEP = 0.01  # the threshold grid of the cut-off table (and the studio's step)
BAND = 0.05  # width of an example band
PAGE = 10  # pairs per page of a band


@dataclass
class PairRow:
    """One candidate pair as shown: both prompts, the similarity, and what the dedupe does with it."""

    a: int
    b: int
    similarity: float
    prompt_a: str
    prompt_b: str
    slice_a: str
    slice_b: str
    exact: bool  # same normalised text
    apart: str  # why the rule keeps them apart whatever the threshold ("" when it does not)


@dataclass
class Band:
    """A similarity band [lo, hi) with its candidate pairs."""

    lo: float
    hi: float
    n_pairs: int
    n_apart: int
    n_records: int  # records whose nearest neighbour lies in the band

    @property
    def label(self) -> str:
        return f"{self.lo:.2f}-{self.hi:.2f}"


@dataclass
class SimilarityDistribution:
    """Nearest-neighbour similarity of every record, the candidate pairs, and the removal per threshold."""

    n_records: int
    model: str | None
    method: str
    floor: float
    slices: list[str]
    record_ids: np.ndarray  # per row
    slice_idx: np.ndarray  # per row: index into ``slices``
    nn_sim: np.ndarray  # per row: similarity of its nearest neighbour (0 when none reaches the floor)
    pair_i: np.ndarray  # candidate pairs as row indices, ordered for browsing (seeded shuffle)
    pair_j: np.ndarray
    pair_sim: np.ndarray
    pair_exact: np.ndarray
    pair_apart: list[str]
    keep_rank: np.ndarray  # per row: its place in the dedupe's keep order (lowest kept)
    heldout: np.ndarray  # per row: on the held-out side of the split (always kept)
    answer: np.ndarray | None  # per row: answer label code when answers must agree (-1: none), else None
    removed: dict[float, np.ndarray] = field(default_factory=dict)  # threshold -> removed per slice
    params: dict = field(default_factory=dict)

    def slice_sizes(self) -> np.ndarray:
        """Records per slice (in ``slices`` order)."""
        return np.bincount(self.slice_idx, minlength=len(self.slices))

    def removed_at(self, threshold: float) -> dict[str, int]:
        """Records a dedupe at ``threshold`` would remove, per slice (the grid's nearest threshold at or below)."""
        key = grid_key(threshold)
        got = self.removed.get(key)
        if got is None:
            got = self.removed[key] = self._removal(key)
        return {s: int(n) for s, n in zip(self.slices, got.tolist(), strict=True)}

    def histogram(self, slice_name: str | None = None, width: float = STEP) -> list[tuple[float, float, int]]:
        """Records by nearest-neighbour similarity in bins of ``width`` from the floor to 1 (one slice or all);
        the first bin, from 0 to the floor, holds the records with no neighbour at or above the floor."""
        sims = self.nn_sim if slice_name is None else self.nn_sim[self.slice_idx == self.slices.index(slice_name)]
        bins = np.concatenate([[0.0, self.floor], _edges(self.floor, width)])
        counts = np.histogram(np.clip(sims, 0.0, 1.0), bins=bins)[0]
        return [
            (lo, hi, int(c)) for lo, hi, c in zip(bins[:-1].tolist(), bins[1:].tolist(), counts.tolist(), strict=True)
        ]

    def bands(self, width: float = BAND) -> list[Band]:
        """The similarity bands from the floor to 1, highest first, with their pairs and records."""
        out = []
        edges = _edges(self.floor, width)
        lows = np.concatenate([[self.floor], edges[:-1]])
        apart = np.array([bool(x) for x in self.pair_apart], dtype=bool)
        for lo, hi in zip(lows.tolist(), edges.tolist(), strict=True):
            if hi <= lo:
                continue
            inb = _in_band(self.pair_sim, lo, hi)
            nn = int(_in_band(self.nn_sim, lo, hi).sum())
            out.append(Band(round(lo, 4), round(hi, 4), int(inb.sum()), int((inb & apart).sum()), nn))
        return out[::-1]

    def band_counts(self, band: Band) -> np.ndarray:
        """Records per slice whose nearest neighbour lies in the band."""
        return np.bincount(self.slice_idx[_in_band(self.nn_sim, band.lo, band.hi)], minlength=len(self.slices))

    def band_pairs(self, band: Band) -> np.ndarray:
        """Indices of the band's pairs in browsing order: first those the threshold decides (a seeded sample
        order), then those kept apart whatever the threshold, then exact duplicates."""
        idx = np.nonzero(_in_band(self.pair_sim, band.lo, band.hi))[0]
        apart = np.array([bool(self.pair_apart[k]) for k in idx.tolist()], dtype=bool)
        kind = np.where(self.pair_exact[idx], 2, np.where(apart, 1, 0))
        return idx[np.argsort(kind, kind="stable")]

    def _removal(self, threshold: float) -> np.ndarray:
        n = self.n_records
        apart = np.array([bool(x) for x in self.pair_apart], dtype=bool)
        hit = (self.pair_sim >= threshold - 1e-6) & (self.pair_exact | ~apart)
        lab = components(n, self.pair_i[hit], self.pair_j[hit])
        rank, held = self.keep_rank, self.heldout
        comp_held = np.zeros(n, dtype=bool)
        np.logical_or.at(comp_held, lab, held)
        size = np.bincount(lab, minlength=n)
        group = lab
        if self.answer is not None:
            # As ``label_conflicts.split_by_answer``: a cluster whose known answers disagree keeps one per answer.
            code = self.answer
            known = np.unique(lab[code >= 0] * (code.max() + 2) + code[code >= 0]) // (code.max() + 2)
            split = np.bincount(known, minlength=n) >= 2
            group = np.where(split[lab], n + lab * (code.max() + 2) + code + 1, lab)
            group = np.unique(group, return_inverse=True)[1]
        best = np.full(len(group), np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(best, group, rank)
        gone = (size[lab] > 1) & np.where(comp_held[lab], ~held, rank != best[group])
        return np.bincount(self.slice_idx[gone], minlength=len(self.slices))


def grid_key(threshold: float) -> float:
    """A threshold on the 0.01 grid (the nearest at or below, so a removal is never understated by rounding up)."""
    return round(np.floor(threshold / STEP + 1e-6) * STEP, 2)


def _edges(floor: float, width: float) -> np.ndarray:
    """Upper bin edges from the floor to 1 in steps of ``width``."""
    k = round((1.0 - floor) / width)
    return np.round(floor + width * np.arange(1, k + 1), 4)


def _in_band(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    # The top band holds 1.0 (exact duplicates).
    return (x >= lo - 1e-6) & ((x < hi - 1e-6) | (hi >= 1.0))


def _apart(texts: list[str], i: np.ndarray, j: np.ndarray, token_check: bool) -> list[str]:
    """Why the dedupe keeps each pair apart whatever the threshold (its token rule, ``curation.near_dupes``)."""
    if not token_check:
        return [""] * len(i)
    rule = TokenRule(texts)
    return [rule.reason(a, b) or "" for a, b in zip(i.tolist(), j.tolist(), strict=True)]


def _answer_codes(labels: list[str]) -> np.ndarray:
    """Each row's answer label as an integer (-1 = no answer, which agrees with any)."""
    codes: dict[str, int] = {}
    return np.array([-1 if x == NO_LABEL else codes.setdefault(x, len(codes)) for x in labels], dtype=np.int64)


def similarity_distribution(
    ws: Workspace,
    *,
    model: str | None = None,
    slicing: str | None = None,
    split: str | None = None,
    token_check: bool = DEDUPE.default("token_check"),
    answers: str = DEDUPE.default("answers"),
    label_field: str | None = None,
    bar_label: tuple[bool, str | None] | None = None,
    floor: float = FLOOR,
    exact_search: bool | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> SimilarityDistribution:
    """Nearest-neighbour similarities, candidate pairs from ``floor`` up, and the removal at every 0.01 threshold
    (over the records a dedupe reads: every non-rejected one)."""
    from curation.embeddings import embed_texts

    slicing = resolve_slicing(ws, slicing)
    rows = dedupe_rows(ws, slicing, split)  # the records a dedupe reads
    n = len(rows)
    if n < 2:
        raise UserError("a similarity distribution needs at least two records that are not rejected")
    report(progress, cancel, "similarity", 0, n)
    texts = [r["prompt"] or "" for r in rows]
    first, ei, ej = hash_groups([normalised_hash(t) for t in texts])
    reps = np.array(sorted(first.values()), dtype=np.int64)
    vecs = embed_texts(ws, [texts[k] for k in reps], model=model, progress=progress, cancel=cancel)
    cand = self_pairs(vecs, floor, exact=exact_search, progress=progress, cancel=cancel)
    ci, cj = reps[cand.i], reps[cand.j]
    pi = np.concatenate([np.array(ei, dtype=np.int64), ci])
    pj = np.concatenate([np.array(ej, dtype=np.int64), cj])
    ps = np.concatenate([np.ones(len(ei), np.float32), cand.sim.astype(np.float32)])
    pe = np.concatenate([np.ones(len(ei), bool), np.zeros(len(ci), bool)])
    apart = [""] * len(ei) + _apart(texts, ci, cj, token_check)
    responses = [r["response"] for r in rows]
    rule = resolve_rule(answers, label_field, bar_label, responses)  # as find_duplicates resolves it
    nn = np.zeros(n, dtype=np.float32)
    np.maximum.at(nn, pi, ps)
    np.maximum.at(nn, pj, ps)
    order = np.random.default_rng(seed).permutation(len(pi))  # browsing order: a fair sample of every band
    sizes = Counter(r["slice"] for r in rows)
    names = sorted(sizes, key=lambda s: (-sizes[s], s))
    index = {s: k for k, s in enumerate(names)}
    rank = np.empty(n, dtype=np.int64)
    rank[np.array(sorted(range(n), key=lambda m: _keep_order(rows[m])), dtype=np.int64)] = np.arange(n)
    dist = SimilarityDistribution(
        n,
        model,
        cand.method,
        floor,
        names,
        np.array([r["record_id"] for r in rows], dtype=np.int64),
        np.array([index[r["slice"]] for r in rows], dtype=np.int32),
        nn,
        pi[order],
        pj[order],
        ps[order],
        pe[order],
        [apart[k] for k in order.tolist()],
        rank,
        np.array([r["side"] == "heldout" for r in rows], dtype=bool),
        _answer_codes(labels_of(rule, responses)) if rule.agree else None,
        params={"slicing": slicing, "split": split, "token_check": token_check, "answer_rule": rule.why},
    )
    grid = np.round(np.arange(floor, 1.0 + 1e-9, STEP), 2).tolist()
    for k, t in enumerate(grid):
        report(progress, cancel, "removal per threshold", k, len(grid))
        dist.removed_at(t)
    report(progress, cancel, "similarity", n, n)
    return dist


def pair_rows(ws: Workspace, dist: SimilarityDistribution, idx: np.ndarray) -> list[PairRow]:
    """The pairs at ``idx`` with both prompts (read from the workspace for these records only)."""
    idx = np.asarray(idx, dtype=np.int64)
    ids = sorted({int(dist.record_ids[k]) for k in np.concatenate([dist.pair_i[idx], dist.pair_j[idx]]).tolist()})
    prompts = dict(ws.query("SELECT record_id, prompt FROM records WHERE record_id IN (SELECT unnest(?))", [ids]))
    out = []
    for k in idx.tolist():
        a, b = int(dist.pair_i[k]), int(dist.pair_j[k])
        ra, rb = int(dist.record_ids[a]), int(dist.record_ids[b])
        out.append(PairRow(ra, rb, float(dist.pair_sim[k]), prompts.get(ra) or "", prompts.get(rb) or "",
                           dist.slices[dist.slice_idx[a]], dist.slices[dist.slice_idx[b]], bool(dist.pair_exact[k]),
                           dist.pair_apart[k]))  # fmt: skip
    return out


def band_page(
    ws: Workspace, dist: SimilarityDistribution, band: Band, page: int = 0, size: int = PAGE
) -> list[PairRow]:
    """One page of a band's pairs (a seeded sample order, so the first page is already representative)."""
    idx = dist.band_pairs(band)
    return pair_rows(ws, dist, idx[page * size : (page + 1) * size])


def write_pairs(
    ws: Workspace,
    dist: SimilarityDistribution,
    path: str | Path,
    *,
    threshold: float | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Every candidate pair (from the floor up, most similar first) as JSON lines with both texts and the score;
    ``merged`` says whether a dedupe at ``threshold`` joins the pair. Written to ``path.partial``, then renamed."""
    path = Path(path).expanduser()
    tmp = path.with_name(path.name + ".partial")
    order = np.argsort(-dist.pair_sim, kind="stable")
    chunk = 5000
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for s0 in range(0, len(order), chunk):
                report(progress, cancel, "writing pairs", s0, len(order))
                for p in pair_rows(ws, dist, order[s0 : s0 + chunk]):
                    row = {"a": p.a, "b": p.b, "similarity": round(p.similarity, 4), "prompt_a": p.prompt_a,
                           "prompt_b": p.prompt_b, "slice_a": p.slice_a, "slice_b": p.slice_b, "exact": p.exact,
                           "kept_apart": p.apart or None}  # fmt: skip
                    if threshold is not None:
                        row["merged"] = p.exact or (not p.apart and p.similarity >= threshold - 1e-6)
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    report(progress, cancel, "writing pairs", len(order), len(order))
    return len(order)
