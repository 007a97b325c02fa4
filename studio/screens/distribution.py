"""Distributions before decisions: the dedupe threshold or the confidence cut-off chosen by looking.

``DistributionScreen(workspace, kind, values)`` with kind ``dedupe`` (nearest-neighbour similarity,
``curation.similarity_dist``) or ``confidence`` (a filter's confidence measure, ``curation.confidence_dist``),
opened from the curation screen (``d`` on Dedupe or Filter) with that form's values. The distribution is computed
once in a thread worker (progress, esc cancels); moving the threshold (left/right) then only reads what it computed:
the chart's marker, the removal (or failures) per slice and, for confidence, the estimated errors removed and good
answers lost. The bands list (up/down) shows a page of example pairs or answers of the highlighted band, read from
the workspace a page at a time (``[``/``]`` page). ``s`` queues the confidence review sample; ``r`` reloads after
reviewing; ``u`` dismisses with the threshold, which the curation form takes.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.table import Table
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option
from textual_plotext import PlotextPlot

from curation.errors import Cancelled, UserError
from curation.progress import Progress
from curation.workspace import Workspace
from studio.failures import LoudWorkers

PAGE = 8


@dataclass
class DistributionComputed(Message):
    dist: Any


@dataclass
class DistributionProgressed(Message):
    stage: str
    done: float
    total: float | None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DistributionProgressed)


@dataclass
class DistributionFailed(Message):
    error: str


@dataclass
class BandPageFetched(Message):
    band: int
    page: int
    rows: list[Any]


@dataclass
class SampleQueued(Message):
    queued: dict[str, int]


class DistributionScreen(LoudWorkers, Screen[float | None]):
    """A histogram with a movable threshold, what it would remove per slice, and example bands."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Lower", id="distribution.lower"),
        Binding("right", "move(1)", "Higher", id="distribution.higher"),
        Binding("left_square_bracket", "page(-1)", "Prev page", id="distribution.prev_page"),
        Binding("right_square_bracket", "page(1)", "Next page", id="distribution.next_page"),
        Binding("v", "cycle_slice", "Slice", id="distribution.slice"),
        Binding("u", "use", "Use threshold", id="distribution.use"),
        Binding("s", "sample", "Review sample", id="distribution.sample"),
        Binding("r", "reload", "Reload", id="distribution.reload"),
        Binding("escape", "close", "Cancel / back", id="distribution.close"),
    ]
    DEFAULT_CSS = """
    DistributionScreen #dist-top { height: 18; }
    DistributionScreen #dist-chart { width: 1fr; }
    DistributionScreen #dist-cut { width: 1fr; border: round $secondary; }
    DistributionScreen #dist-bands { width: 44; height: 1fr; border: round $primary; }
    DistributionScreen #dist-examples { width: 1fr; height: 1fr; border: round $secondary; }
    DistributionScreen #dist-status { height: 1; }
    """

    def __init__(self, workspace: Workspace, kind: str, values: dict[str, Any]) -> None:
        super().__init__()
        self.workspace = workspace
        self.kind = kind  # dedupe | confidence
        self.values = values
        self.dist: Any = None
        self.steps: list[float] = []
        self.step = 0
        self.band = 0
        self.page = 0
        self.rows: list[Any] = []
        self.cancel_event = threading.Event()
        self.busy = False
        self.summary = ""  # what the threshold shown does (the cut-off table's title)
        self.slice_view: str | None = None  # the chart's slice (None: every record)

    @property
    def threshold(self) -> float | None:
        """The threshold (dedupe) or cut-off (confidence) the view shows."""
        return self.steps[self.step] if self.steps else None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="dist-title")
        yield ProgressBar(id="dist-progress", show_eta=False)
        with Horizontal(id="dist-top"):
            yield PlotextPlot(id="dist-chart")
            yield Static("", id="dist-cut")
        with Horizontal():
            yield OptionList(id="dist-bands")
            with Vertical(id="dist-examples"):
                yield Static("", id="dist-examples-body")
        yield Static("", id="dist-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#dist-bands", OptionList).focus()
        self._load()

    # -- work ------------------------------------------------------------------------------------------------

    def _load(self) -> None:
        self.busy = True
        self.cancel_event = threading.Event()
        self._status("computing the distribution... (esc cancels)")
        self._compute(self.cancel_event)

    def _progress(self, p: Progress) -> None:
        self.post_message(DistributionProgressed(p.stage, p.done, p.total))

    @work(thread=True, exclusive=True, exit_on_error=False, group="distribution")
    def _compute(self, cancel: threading.Event) -> None:
        v = self.values
        try:
            if self.kind == "dedupe":
                from curation.similarity_dist import similarity_distribution
                from train.bars import bar_label

                v = {k: v[k] for k in ("model", "slicing", "split", "token_check", "answers", "label_field")}
                dist = similarity_distribution(self.workspace, **v, bar_label=bar_label(self.workspace),
                                               progress=self._progress, cancel=cancel)  # fmt: skip
            else:
                from curation.confidence_dist import confidence_distribution

                dist = confidence_distribution(self.workspace, v.get("confidence") or "mean_logprob",
                                               field=v.get("field"), slicing=v.get("slicing"),
                                               progress=self._progress, cancel=cancel)  # fmt: skip
            self.post_message(DistributionComputed(dist))
        except Cancelled:
            self.post_message(DistributionFailed("cancelled"))
        except UserError as exc:
            self.post_message(DistributionFailed(str(exc)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="distribution-page")
    def _fetch_page(self, band: int, page: int) -> None:
        if self.kind == "dedupe":
            from curation.similarity_dist import band_page

            rows = band_page(self.workspace, self.dist, self.dist.bands()[band], page, PAGE)
        else:
            from curation.confidence_dist import band_records

            rows = band_records(self.workspace, self.dist, band, page, PAGE)
        self.post_message(BandPageFetched(band, page, rows))

    # Its own group: the reload it asks for (exclusive in "distribution") must not cancel it while it returns.
    @work(thread=True, exit_on_error=False, group="distribution-sample")
    def _queue_sample(self) -> None:
        from curation.confidence_dist import queue_review_sample

        try:
            self.post_message(SampleQueued(queue_review_sample(self.workspace, self.dist)))
        except UserError as exc:
            self.post_message(DistributionFailed(str(exc)))

    # -- messages --------------------------------------------------------------------------------------------

    def on_distribution_progressed(self, m: DistributionProgressed) -> None:
        self.query_one("#dist-progress", ProgressBar).update(total=m.total or None, progress=m.done)
        self._status(f"{m.stage} {m.done:,.0f}" + (f"/{m.total:,.0f}" if m.total else "") + "  (esc cancels)")

    def on_distribution_computed(self, m: DistributionComputed) -> None:
        self.busy = False
        self.dist = m.dist
        self.query_one("#dist-progress", ProgressBar).update(total=1, progress=1)
        if self.kind == "dedupe":
            from curation.similarity_dist import grid_key

            self.steps = sorted(m.dist.removed)
            want = grid_key(float(self.values["threshold"]))
        else:
            self.steps = sorted(m.dist.drops)
            mn = self.values.get("min")
            want = float(mn) if mn is not None else (m.dist.bands[1].lo if len(m.dist.bands) > 1 else self.steps[0])
        self.step = min(range(len(self.steps)), key=lambda k: abs(self.steps[k] - want))
        bands = self.query_one("#dist-bands", OptionList)
        bands.clear_options()
        bands.add_options([Option(self._band_label(k), id=str(k)) for k in range(self._n_bands())])
        bands.highlighted = 0
        self._redraw()
        self._status("left/right move the threshold, up/down pick a band, [ ] page, u uses the threshold")

    def on_distribution_failed(self, m: DistributionFailed) -> None:
        self.busy = False
        self._status(f"error: {m.error}" if m.error != "cancelled" else "cancelled: esc goes back")
        if m.error != "cancelled":
            self.notify(m.error, title="Distribution", severity="error")

    def on_band_page_fetched(self, m: BandPageFetched) -> None:
        if (m.band, m.page) != (self.band, self.page):
            return
        self.rows = m.rows
        self.query_one("#dist-examples-body", Static).update(self._examples_table())

    def on_sample_queued(self, m: SampleQueued) -> None:
        self.busy = False
        n = sum(m.queued.values())
        self.notify(f"queued {n:,} answers for review; review them (Review screen), then r reloads")
        self._load()

    @on(OptionList.OptionHighlighted, "#dist-bands")
    def _band_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.band, self.page = int(str(event.option.id)), 0
        if self.dist is not None:
            self._fetch_page(self.band, self.page)

    # -- actions ---------------------------------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        """Move the threshold one step (0.01 for similarity; a bin or band edge for confidence)."""
        if not self.steps:
            return
        self.step = max(0, min(len(self.steps) - 1, self.step + delta))
        self._redraw()

    def action_page(self, delta: int) -> None:
        """The band's next or previous page of examples."""
        if self.dist is None or (delta > 0 and len(self.rows) < PAGE):
            return
        self.page = max(0, self.page + delta)
        self._fetch_page(self.band, self.page)

    def action_cycle_slice(self) -> None:
        """Chart the next slice (all records, then each slice in turn)."""
        if self.dist is None:
            return
        order = [None, *self.dist.slices]
        self.slice_view = order[(order.index(self.slice_view) + 1) % len(order)]
        self._redraw()

    def action_use(self) -> None:
        """Back to the curation form with this threshold."""
        if self.threshold is not None:
            self.dismiss(self.threshold)

    def action_sample(self) -> None:
        """Queue the review sample per confidence band."""
        if self.kind != "confidence" or self.dist is None or self.busy:
            self._status("the review sample is for confidence distributions (open it from Filter)")
            return
        self.busy = True
        self._status("queueing the review sample...")
        self._queue_sample()

    def action_reload(self) -> None:
        """Compute again (after reviewing the sample)."""
        if not self.busy:
            self._load()

    def action_close(self) -> None:
        """Cancel the running work, else go back without a threshold."""
        if self.busy:
            self.cancel_event.set()
            self._status("cancelling...")
            return
        self.dismiss(None)

    # -- drawing ---------------------------------------------------------------------------------------------

    def _status(self, text: str) -> None:
        self.query_one("#dist-status", Static).update(text)

    def _n_bands(self) -> int:
        return len(self.dist.bands()) if self.kind == "dedupe" else len(self.dist.bands)

    def _band_label(self, k: int) -> str:
        if self.kind == "dedupe":
            b = self.dist.bands()[k]
            return f"{b.label}  {b.n_records:>6,} rec {b.n_pairs:>7,} pairs"
        b = self.dist.bands[k]
        rate = "" if b.rate is None else f" {100 * b.rate:.0f}% wrong"
        return f"{b.label:<17}{b.n:>6,}  rev {b.reviewed}/{b.sampled}{rate}"

    def _redraw(self) -> None:
        d, t = self.dist, self.threshold
        if d is None or t is None:
            return
        plt = self.query_one("#dist-chart", PlotextPlot).plt
        plt.clear_data()
        plt.clear_figure()
        if self.kind == "dedupe":
            hist = d.histogram(self.slice_view)[1:]  # from the floor up
            # Exact duplicates pile up at 1.0 (4,470 of 5,000 on the sample): on a linear axis the bins a threshold
            # decides would not show. plotext's log axis fails on empty bins, so the bars are log10(n + 1).
            plt.bar([round(lo, 2) for lo, _, _ in hist], [math.log10(n + 1) for _, _, n in hist], width=0.008)
            plt.ylabel("log10(records + 1)")
            plt.title(f"{self._what()} by nearest-neighbour similarity; threshold {t:.2f} (v: slice)")
            per = d.removed_at(t)
            sizes = dict(zip(d.slices, d.slice_sizes().tolist(), strict=True))
            title = f"threshold {t:.2f} removes {sum(per.values()):,} of {d.n_records:,}"
            rows = [[s, f"{sizes[s]:,}", f"{per[s]:,}", f"{100 * per[s] / sizes[s]:.1f}%"] for s in d.slices]
            table = _table(title, ["slice", "records", "removed", "share"], rows)
        else:
            hist = d.histogram(self.slice_view)
            plt.bar([lo for lo, _, _ in hist], [n for _, _, n in hist], width=(hist[0][1] - hist[0][0]) * 0.8)
            plt.title(f"{d.metric}: {self._what()} per bin; --min {t:g} (v: slice)")
            from curation.confidence_dist import fmt

            row = d.cutoffs([t])
            cur = next(r for r in row if abs(r.cutoff - t) < 1e-12)
            title = f"--min {fmt(t)} fails {cur.dropped:,} of {d.n_scored:,}"
            if cur.errors_removed is not None:
                e, g = cur.errors_removed, cur.good_lost
                title += f"\nerrors removed ~{e[0]:,.0f} ({e[1]:,.0f}-{e[2]:,.0f}), good lost ~{g[0]:,.0f}"
            table = _table(title, ["slice", "fails"], [[s, f"{cur.per_slice[s]:,}"] for s in d.slices])
        self.summary = title
        plt.vline(t, "red")
        self.query_one("#dist-chart", PlotextPlot).refresh()
        self.query_one("#dist-cut", Static).update(table)
        self.query_one("#dist-title", Static).update(self._title())

    def _what(self) -> str:
        return "all records" if self.slice_view is None else f"slice {self.slice_view}"

    def _title(self) -> str:
        d = self.dist
        if self.kind == "dedupe":
            return (f"Dedupe: nearest-neighbour similarity of {d.n_records:,} prompts ({d.method}); "
                    "pick the threshold just above the highest band whose pairs are different requests")  # fmt: skip
        return (f"Filter: {d.metric} of {d.n_scored:,} answers; s queues a review sample per band, r reloads "
                "with the error rates; pick the cut-off where errors removed outweigh good answers lost")  # fmt: skip

    def _examples_table(self) -> Table:
        if self.kind == "dedupe":
            b = self.dist.bands()[self.band]
            t = _table(f"band {b.label}: pairs {self.page * PAGE + 1}-{self.page * PAGE + len(self.rows)} of "
                       f"{b.n_pairs:,} ([ ] page)", ["sim", "kept apart", "prompt a", "prompt b"], [])  # fmt: skip
            for p in self.rows:
                t.add_row(f"{p.similarity:.3f}", "exact" if p.exact else p.apart, p.prompt_a[:60], p.prompt_b[:60])
            return t
        b = self.dist.bands[self.band]
        t = _table(f"band {b.label}: answers {self.page * PAGE + 1}-{self.page * PAGE + len(self.rows)} of {b.n:,} "
                   "([ ] page; * = in the review sample)",
                   ["score", "status", "prompt", "answer"], [])  # fmt: skip
        for r in self.rows:
            t.add_row(f"{r.score:.3g}", r.status + (" *" if r.sampled else ""), r.prompt[:80], r.response[:120])
        return t


def _table(title: str, headers: list[str], rows: list[list[str]]) -> Table:
    t = Table(title=title, title_justify="left", expand=True)
    for h in headers:
        t.add_column(h, overflow="fold")
    for r in rows:
        t.add_row(*r)
    return t
