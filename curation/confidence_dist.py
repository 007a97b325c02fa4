"""A confidence measure before a filter decision: its histogram per slice, what each cut-off drops per slice, and
the teacher's error rate per confidence band measured on a small review sample.

Production logs carry no ground truth, so the error rate per band comes from people: ``queue_review_sample`` queues
a few dozen records of every band for review (seeded, records a human already decided left out; queued as the
review queue's other machine flags are, reviewer ``confidence-sample:METRIC``), and ``confidence_distribution``
reads back what the reviewers decided about them: rejected or edited = the teacher was wrong, accepted = right. Each
band's error rate gets a 95% Wilson interval; a cut-off at a band edge then removes an estimated number of errors
and loses an estimated number of good examples (band size x rate, summed over the bands below it).

Bands are cut at quantiles of the measure (the lowest 5%, 5-15%, 15-30%, 30-50%, the top half), rounded to two
significant digits, so that every band has records and the edges are numbers one can type as ``--min``.
The score is ``curation.filters.teacher_score`` (the filter's own); counts are aggregated in DuckDB (for
``answer_prob``, which needs the answer's token logprobs, over an Arrow table of the scores computed once).
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curation.effective import effective_sql, resolve_slicing
from curation.errors import UserError
from curation.filters import FILTER, teacher_score
from curation.intervals import wilson
from curation.progress import ProgressFn, report
from curation.review import queue_records
from curation.workspace import Workspace

BAND_QUANTILES = (0.05, 0.15, 0.30, 0.50)  # errors gather in the low tail: narrower bands there
SAMPLE_PER_BAND = 30  # a Wilson interval at 30 items and 10% errors is about +-11 points
SAMPLE_SOURCE = "confidence-sample"
TARGET_BINS = 25  # a histogram of 20-25 bins: one screen on a terminal
_CHUNK = 20_000


@dataclass
class ConfidenceBand:
    """Records with lo <= score < hi, and what the review sample says about them."""

    lo: float
    hi: float
    n: int  # records the filter would judge (scored, not edited, not rejected)
    sampled: int = 0
    reviewed: int = 0
    wrong: int = 0
    interval: tuple[float, float] | None = None

    @property
    def rate(self) -> float | None:
        return self.wrong / self.reviewed if self.reviewed else None

    @property
    def label(self) -> str:
        return f"{fmt(self.lo)} .. {fmt(self.hi)}"


@dataclass
class CutoffRow:
    """What ``--min cutoff`` would do: drops per slice, and the estimated errors removed / good examples lost."""

    cutoff: float
    dropped: int
    per_slice: dict[str, int]
    errors_removed: tuple[float, float, float] | None = None  # estimate, low, high
    good_lost: tuple[float, float, float] | None = None


@dataclass
class ConfidenceDistribution:
    """Histogram per slice, cut-offs and bands of one confidence metric."""

    metric: str
    field: str | None
    slicing: str | None
    n_scored: int
    n_unscored: int
    slices: list[str]
    bin_edges: list[float]
    bin_counts: np.ndarray  # (bins, slices)
    drops: dict[float, np.ndarray]  # cut-off -> records below it per slice (bin edges and band edges)
    bands: list[ConfidenceBand] = field(default_factory=list)
    scores: Any = None  # answer_prob: the Arrow table of (record_id, score) the queries read

    def histogram(self, slice_name: str | None = None) -> list[tuple[float, float, int]]:
        """Records per bin (one slice or all)."""
        col = self.bin_counts.sum(axis=1) if slice_name is None else self.bin_counts[:, self.slices.index(slice_name)]
        e = self.bin_edges
        return [(e[k], e[k + 1], int(c)) for k, c in enumerate(col.tolist())]

    def dropped_at(self, cutoff: float) -> dict[str, int]:
        """Records a filter with ``--min cutoff`` fails, per slice (a bin or band edge; else the edge below)."""
        keys = sorted(self.drops)
        k = max([c for c in keys if c <= cutoff + 1e-12], default=keys[0])
        return {s: int(n) for s, n in zip(self.slices, self.drops[k].tolist(), strict=True)}

    def cutoffs(self, extra: list[float] | None = None) -> list[CutoffRow]:
        """The table of cut-offs: every band edge (and ``extra`` ones), with the estimates where reviews allow."""
        edges = sorted({b.lo for b in self.bands[1:]} | set(extra or []))
        out = []
        for c in edges:
            per = self.dropped_at(c)
            row = CutoffRow(c, sum(per.values()), per)
            below = [b for b in self.bands if b.hi <= c + 1e-12]
            if below and all(b.interval is not None for b in self.bands) and c in {b.lo for b in self.bands}:
                est = [sum(b.n * (b.rate or 0.0) for b in below)]
                est += [sum(b.n * b.interval[k] for b in below if b.interval) for k in (0, 1)]
                row.errors_removed = (est[0], est[1], est[2])
                row.good_lost = (row.dropped - est[0], max(0.0, row.dropped - est[2]), row.dropped - est[1])
            out.append(row)
        return out


def fmt(x: float) -> str:
    """A score as typed on the command line."""
    if math.isinf(x):
        return "-inf" if x < 0 else "max"
    return f"{x:.3g}"


def _nice_step(span: float, bins: int = TARGET_BINS) -> float:
    raw = span / bins if span > 0 else 1.0
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def _round2(x: float) -> float:
    """Two significant digits (a cut-off one can type)."""
    if x == 0:
        return 0.0
    return round(x, 1 - math.floor(math.log10(abs(x))))


@contextmanager
def _scored(ws: Workspace, metric: str, field_path: str | None, slicing: str | None, scores: Any) -> Iterator[tuple]:
    """A cursor and the SQL of (record_id, slice, status, edited, score) over records with an answer; the score is
    the teacher's (edited answers keep theirs, for the review sample)."""
    base, params = effective_sql(ws, slicing)
    cur = ws.cursor()
    try:
        if metric == "answer_prob":
            cur.register("_conf_scores", scores)
            sql = (f"SELECT e.record_id, e.slice, e.status, e.edited, s.score FROM ({base}) e "
                   "LEFT JOIN _conf_scores s USING (record_id) WHERE e.response IS NOT NULL")  # fmt: skip
        else:
            sql = f"SELECT e.record_id, e.slice, e.status, e.edited, e.{metric} AS score FROM ({base}) e " \
                  "WHERE e.response IS NOT NULL"  # fmt: skip
        yield cur, sql, params
    finally:
        cur.close()


def _answer_scores(ws: Workspace, field_path: str, progress: ProgressFn | None, cancel: threading.Event | None) -> Any:
    import pyarrow as pa

    n = int(ws.scalar("SELECT count(*) FROM records WHERE response_logprobs IS NOT NULL") or 0)
    ids: list[int] = []
    vals: list[float | None] = []
    cur = ws.cursor()
    try:
        res = cur.execute("SELECT record_id, CAST(response_logprobs AS VARCHAR) FROM records "
                          "WHERE response_logprobs IS NOT NULL")  # fmt: skip
        while batch := res.fetchmany(_CHUNK):
            report(progress, cancel, "scoring answers", len(ids), n)
            for rid, lps in batch:
                ids.append(int(rid))
                vals.append(teacher_score("answer_prob", field_path, None, None, lps))
    finally:
        cur.close()
    return pa.table({"record_id": pa.array(ids, pa.int64()), "score": pa.array(vals, pa.float64())})


def confidence_distribution(
    ws: Workspace,
    metric: str = "mean_logprob",
    *,
    field: str | None = None,
    slicing: str | None = None,
    extra_cutoffs: list[float] | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ConfidenceDistribution:
    """The histogram, cut-offs and bands of ``metric`` over the records a filter judges, with the review sample's
    error rate per band."""
    FILTER["confidence"].check(metric)
    if metric == "answer_prob" and not field:
        raise FILTER["field"].error("answer_prob needs the labelled field (e.g. intent)")
    slicing = resolve_slicing(ws, slicing)
    report(progress, cancel, f"{metric} distribution", 0, 3)
    scores = _answer_scores(ws, field or "", progress, cancel) if metric == "answer_prob" else None
    judged = "status <> 'rejected' AND NOT edited"  # what a filter judges
    with _scored(ws, metric, field, slicing, scores) as (cur, sql, params):
        # Band edges are quantiles over every answered record, reviewed ones included: a review changes no
        # teacher score, so the sample's members stay in the band they were drawn from.
        lo, hi, n_scored, n_unscored, all_lo, all_hi, *qs = cur.execute(
            f"SELECT min(score) FILTER (WHERE {judged}), max(score) FILTER (WHERE {judged}), "
            f"count(score) FILTER (WHERE {judged}), count(*) FILTER (WHERE {judged}) - count(score) FILTER (WHERE "
            f"{judged}), min(score), max(score), "
            f"{', '.join(f'quantile_cont(score, {q})' for q in BAND_QUANTILES)} FROM ({sql})",
            params,
        ).fetchall()[0]
        if not n_scored:
            raise UserError(f"no answer has a {metric} score (the teacher's token logprobs are needed)")
        names = [r[0] for r in cur.execute(f"SELECT slice FROM ({sql}) WHERE {judged} AND score IS NOT NULL "
                                           "GROUP BY slice ORDER BY count(*) DESC, slice", params).fetchall()]  # fmt: skip
        report(progress, cancel, f"{metric} distribution", 1, 3)
        step = _nice_step(hi - lo)
        first = math.floor(lo / step) * step
        nb = max(1, math.ceil((hi - first) / step + 1e-9))
        edges = [round(first + k * step, 10) for k in range(nb + 1)]
        counts = np.zeros((nb, len(names)), dtype=np.int64)
        index = {s: k for k, s in enumerate(names)}
        for slc, b, c in cur.execute(
            f"SELECT slice, least(CAST(floor((score - ?) / ?) AS BIGINT), ?) AS b, count(*) FROM ({sql}) "
            f"WHERE {judged} AND score IS NOT NULL GROUP BY ALL",
            [first, step, nb - 1, *params],
        ).fetchall():
            counts[int(b), index[slc]] += int(c)
        band_edges = sorted({_round2(q) for q in qs if q is not None and all_lo < _round2(q) <= all_hi})
        cuts = sorted(set(edges) | set(band_edges) | set(extra_cutoffs or []))
        drops = {c: np.zeros(len(names), dtype=np.int64) for c in cuts}
        for c, slc, k in cur.execute(
            f"SELECT c.cut, e.slice, count(*) FROM (SELECT * FROM ({sql}) WHERE {judged}) e, "
            "(SELECT unnest(?::DOUBLE[]) AS cut) c WHERE e.score < c.cut GROUP BY ALL",
            [*params, cuts],
        ).fetchall():
            drops[float(c)][index[slc]] = int(k)
        report(progress, cancel, f"{metric} distribution", 2, 3)
        bounds = [-math.inf, *band_edges, math.inf]
        bands = [ConfidenceBand(a, b, 0) for a, b in itertools.pairwise(bounds)]
        _fill_bands(cur, sql, params, judged, metric, bands)
    report(progress, cancel, f"{metric} distribution", 3, 3)
    return ConfidenceDistribution(metric, field, slicing, int(n_scored), int(n_unscored), names, edges, counts,
                                  drops, bands, scores)  # fmt: skip


def _band_case(bands: list[ConfidenceBand]) -> str:
    inner = " ".join(f"WHEN score < {b.hi!r} THEN {k}" for k, b in enumerate(bands[:-1]))
    return f"CASE {inner} ELSE {len(bands) - 1} END" if inner else "0"


def _fill_bands(cur: Any, sql: str, params: list, judged: str, metric: str, bands: list[ConfidenceBand]) -> None:
    case = _band_case(bands)
    for k, n in cur.execute(f"SELECT {case}, count(*) FROM ({sql}) WHERE {judged} AND score IS NOT NULL GROUP BY 1",
                            params).fetchall():  # fmt: skip
        bands[k].n = int(n)
    for k, sampled, reviewed, wrong in cur.execute(
        f"SELECT {case}, count(*), count(*) FILTER (WHERE status IN ('accepted', 'rejected')), "
        "count(*) FILTER (WHERE status = 'rejected' OR (status = 'accepted' AND edited)) "
        f"FROM ({sql}) WHERE score IS NOT NULL AND record_id IN ({_SAMPLED}) GROUP BY 1",
        [*params, sample_source(metric)],
    ).fetchall():
        b = bands[k]
        b.sampled, b.reviewed, b.wrong = int(sampled), int(reviewed), int(wrong)
        b.interval = wilson(b.wrong, b.reviewed)


_SAMPLED = "SELECT record_id FROM review_events WHERE reviewer = ? AND action = 'queue' AND NOT undone"


def sample_source(metric: str) -> str:
    """The reviewer name a metric's review sample is queued under (how its members are found again)."""
    return f"{SAMPLE_SOURCE}:{metric}"


def queue_review_sample(
    ws: Workspace, dist: ConfidenceDistribution, per_band: int = SAMPLE_PER_BAND, *, seed: int = 0
) -> dict[str, int]:
    """Queue up to ``per_band`` records of every band for review (topping up an earlier sample; records a human
    already accepted or rejected are left out), in one transaction. Returns the number queued per band."""
    if per_band < 1:
        raise UserError(f"per band: must be at least 1, got {per_band}")
    queued: dict[str, int] = {}
    picks: list[int] = []
    with _scored(ws, dist.metric, dist.field, dist.slicing, dist.scores) as (rcur, sql, params):
        case = _band_case(dist.bands)
        for k, b in enumerate(dist.bands):
            rows = rcur.execute(
                f"SELECT record_id FROM ({sql}) WHERE score IS NOT NULL AND NOT edited "
                f"AND status NOT IN ('accepted', 'rejected') AND ({case}) = ? AND record_id NOT IN ({_SAMPLED}) "
                "ORDER BY hash(record_id + ?) LIMIT ?",
                [*params, k, sample_source(dist.metric), seed, max(0, per_band - b.sampled)],
            ).fetchall()
            queued[b.label] = len(rows)
            picks += [int(r[0]) for r in rows]
    with ws.transaction() as cur:
        queue_records(cur, sorted(picks), f"confidence sample ({dist.metric})", sample_source(dist.metric))
    return queued


@dataclass
class BandRecord:
    """One answer of a band as the studio lists it."""

    record_id: int
    slice: str
    score: float
    status: str
    sampled: bool
    prompt: str
    response: str


def band_records(
    ws: Workspace, dist: ConfidenceDistribution, band: int, page: int = 0, size: int = 10, *, seed: int = 0
) -> list[BandRecord]:
    """One page of a band's answers, the review sample's members first, then a seeded sample order."""
    with _scored(ws, dist.metric, dist.field, dist.slicing, dist.scores) as (cur, sql, params):
        base, bparams = effective_sql(ws, dist.slicing)
        rows = cur.execute(
            f"SELECT s.record_id, s.slice, s.score, s.status, s.record_id IN ({_SAMPLED}) AS sampled, e.prompt, "
            f"e.response FROM ({sql}) s JOIN ({base}) e USING (record_id) "
            f"WHERE s.score IS NOT NULL AND ({_band_case(dist.bands)}) = ? "
            "ORDER BY sampled DESC, hash(s.record_id + ?) LIMIT ? OFFSET ?",
            [sample_source(dist.metric), *params, *bparams, band, seed, size, page * size],
        ).fetchall()
    return [BandRecord(int(r[0]), str(r[1]), float(r[2]), str(r[3]), bool(r[4]), r[5] or "", r[6] or "") for r in rows]
