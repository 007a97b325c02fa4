"""Reliability chart of an evaluation: per confidence bin, the student's accuracy next to its mean confidence, with
how many items fell in the bin. A calibrated student's two bars match; the gap, weighted by the counts, is the ECE.
"""

from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot


def bin_label(b: dict[str, Any]) -> str:
    """A bin's x label: its upper edge and its count (``<=0.9 n=12``)."""
    return f"<={b['high']:.1f} n={b['n']}"


class ReliabilityChart(PlotextPlot):
    """Accuracy (green) and mean confidence (blue) per confidence bin of one slice or the whole evaluation; empty
    bins are left out; the ECE is in the title."""

    def on_mount(self) -> None:
        self.bins: list[dict[str, Any]] = []
        self.ece: float | None = None
        self.title = "reliability"
        self.redraw()

    def show(self, bins: list[dict[str, Any]], ece: float | None, what: str) -> None:
        """Draw ``bins`` (``train.stats.ReliabilityBin`` as dicts) of ``what`` (a slice name or "all items")."""
        self.bins = [b for b in bins if b["n"]]
        self.ece = ece
        if not self.bins:
            self.title = f"reliability of {what}: no confidences (an evaluation from before they were stored)"
        else:
            self.title = f"reliability of {what}: ECE {ece:.3f}" if ece is not None else f"reliability of {what}"
        self.redraw()

    def redraw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.title(self.title)
        if self.bins:
            plt.multiple_bar([bin_label(b) for b in self.bins],
                             [[b["accuracy"] for b in self.bins], [b["confidence"] for b in self.bins]],
                             labels=["accuracy", "confidence"], color=["green", "blue"])  # fmt: skip
            plt.ylim(0, 1)
        self.refresh()
