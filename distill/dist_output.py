"""The CLI's distributions before a decision: ``distill dedupe --distribution`` and ``distill filter
--distribution`` (text histograms and tables of cut-offs; the studio shows the same numbers as charts)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from distill.output import pct, print_table

if TYPE_CHECKING:  # numpy comes with them: loaded when a distribution is shown, not at every CLI start
    from curation.confidence_dist import ConfidenceDistribution
    from curation.similarity_dist import SimilarityDistribution
    from curation.workspace import Workspace

BAR_WIDTH = 40
CUTOFF_STEP = 0.05  # thresholds the CLI's dedupe table lists (the studio moves by 0.01)


def text_bars(rows: list[tuple[str, int]], *, marks: set[int] | None = None, width: int = BAR_WIDTH) -> list[str]:
    """A compact horizontal bar chart: one line per row, the bar scaled to the largest count (``marks``: rows to
    flag with ``<``, e.g. where a threshold falls)."""
    top = max((n for _, n in rows), default=0) or 1
    lw = max((len(label) for label, _ in rows), default=0)
    nw = max((len(f"{n:,}") for _, n in rows), default=1)
    out = []
    for k, (label, n) in enumerate(rows):
        bar = "#" * round(width * n / top) if n else ""
        if n and not bar:
            bar = "."
        out.append(f"  {label:>{lw}}  {n:>{nw},}  {bar}" + ("  <" if marks and k in marks else ""))
    return out


def print_similarity(ws: Workspace, dist: SimilarityDistribution, threshold: float, examples: int) -> None:
    """Histogram of nearest-neighbour similarity (all records, then per slice), removal per threshold, and
    ``examples`` pairs of every band."""
    from curation.similarity_dist import band_page

    print(f"nearest-neighbour similarity of {dist.n_records:,} prompts ({dist.method} search, pairs from "
          f"{dist.floor:.2f}; each record counted once, at its most similar other record):")  # fmt: skip
    bands = dist.bands()
    rows = [(b.label, b.n_records) for b in bands] + [(f"< {dist.floor:.2f}", int((dist.nn_sim < dist.floor).sum()))]
    marks = {k for k, b in enumerate(bands) if b.lo <= threshold < b.hi or (threshold >= 1 and b.hi >= 1)}
    print("\n".join(text_bars(rows, marks=marks)) + f"\n  (< marks the band of the threshold {threshold:g})")
    print()
    sl = dist.slices
    per = [[b.label, *dist.band_counts(b).tolist()] for b in bands]
    print_table(["nearest", *sl], per, title="records by their nearest neighbour's similarity, per slice:")
    print()
    sizes = dist.slice_sizes()
    grid = sorted({round(dist.floor + CUTOFF_STEP * k, 2) for k in range(int((1 - dist.floor) / CUTOFF_STEP) + 1)
                   if dist.floor + CUTOFF_STEP * k < 1} | {round(threshold, 2)})  # fmt: skip
    table = []
    for t in grid:
        rm = dist.removed_at(t)
        total = sum(rm.values())
        table.append([f"{t:.2f}" + (" <" if abs(t - threshold) < 1e-9 else ""), total, pct(total / dist.n_records),
                      *[f"{rm[s]:,} ({pct(rm[s] / sizes[k])})" for k, s in enumerate(sl)]])  # fmt: skip
    print_table(["threshold", "removes", "share", *sl], table,
                title="what each threshold would remove (one record kept per cluster; < = --threshold):")  # fmt: skip
    if examples:
        print()
        print(
            f"example pairs per band ({examples} each, a seeded sample; 'apart' = kept apart whatever the threshold):"
        )
        for b in bands:
            page = band_page(ws, dist, b, 0, examples)
            print(f"  {b.label}: {b.n_pairs:,} pairs" + (f", {b.n_apart:,} kept apart" if b.n_apart else ""))
            for p in page:
                tag = "exact" if p.exact else (f"apart: {p.apart}" if p.apart else "")
                print(f"    {p.similarity:.3f} {tag:<14} #{p.a} {p.prompt_a[:55]!r}  ~  #{p.b} {p.prompt_b[:55]!r}")


def similarity_json(dist: SimilarityDistribution, threshold: float) -> dict[str, Any]:
    """The distribution as one JSON document (histogram per slice, removal per 0.01 threshold, bands)."""
    return {
        "n_records": dist.n_records,
        "floor": dist.floor,
        "method": dist.method,
        "threshold": threshold,
        "histogram": {"(all)": dist.histogram(), **{s: dist.histogram(s) for s in dist.slices}},
        "removed": {f"{t:.2f}": dist.removed_at(t) for t in sorted(dist.removed)},
        "bands": dist.bands(),
    }


def print_confidence(dist: ConfidenceDistribution, cutoff: float | None) -> None:
    """Histogram per slice, the bands with their review sample's error rates, and the table of cut-offs."""
    from curation.confidence_dist import fmt

    print(f"{dist.metric}" + (f" of {dist.field}" if dist.field else "") + f" over {dist.n_scored:,} answers "
          "(not rejected, not edited)" + (f"; {dist.n_unscored:,} cannot be scored" if dist.n_unscored else "") + ":")  # fmt: skip
    hist = dist.histogram()
    marks = {k for k, (lo, hi, _) in enumerate(hist) if cutoff is not None and lo <= cutoff < hi}
    print("\n".join(text_bars([(f"{fmt(lo)}..{fmt(hi)}", n) for lo, hi, n in hist], marks=marks)))
    if cutoff is not None:
        print(f"  (< marks the bin of --min {cutoff:g})")
    print()
    print_table(
        ["band", "answers", "share", "sampled", "reviewed", "wrong", "error rate [95% CI]"],
        [[b.label, b.n, pct(b.n / dist.n_scored), b.sampled, b.reviewed, b.wrong, _rate(b)] for b in dist.bands],
        title="bands (quantiles of the measure) and the teacher's error rate in each, from the review sample:",
    )
    if not any(b.reviewed for b in dist.bands):
        print("no reviewed sample yet: --review-sample queues a few dozen answers per band for review "
              "(rejected or edited = wrong), then run this again")  # fmt: skip
    print()
    rows = []
    for r in dist.cutoffs([cutoff] if cutoff is not None else None):
        est = [_est(r.errors_removed), _est(r.good_lost)] if r.errors_removed else ["-", "-"]
        rows.append([fmt(r.cutoff) + (" <" if cutoff is not None and abs(r.cutoff - cutoff) < 1e-12 else ""),
                     r.dropped, pct(r.dropped / dist.n_scored), *est, *[r.per_slice[s] for s in dist.slices]])  # fmt: skip
    print_table(["--min", "fails", "share", "errors removed", "good lost", *dist.slices], rows,
                title="what each cut-off would fail (per slice; estimates from the bands' error rates):")  # fmt: skip


def _rate(b: Any) -> str:
    if b.rate is None:
        return "-"
    lo, hi = b.interval
    return f"{pct(b.rate)} [{pct(lo)}-{pct(hi)}]"


def _est(x: tuple[float, float, float] | None) -> str:
    if x is None:
        return "-"
    return f"~{x[0]:,.0f} ({x[1]:,.0f}-{x[2]:,.0f})"


def add_distribution_flags(p: argparse.ArgumentParser, what: str) -> None:
    """``--distribution``: show the distribution before deciding (nothing is stored)."""
    p.add_argument("--distribution", action="store_true",
                   help=f"show the {what} distribution per slice and what each cut-off would do; stores nothing")  # fmt: skip
