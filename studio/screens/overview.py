"""Overview: headline counts, the slice distribution (vs a dataset version), import batches and the quarantine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from curation.overview import DatasetComparison, Overview, dataset_comparison, quarantine_page, workspace_overview
from curation.workspace import Workspace
from studio.failures import LoudWorkers
from studio.widgets.slice_chart import slice_chart


@dataclass
class OverviewLoaded(Message):
    """Fresh numbers for the overview."""

    overview: Overview
    quarantine: list[dict]
    comparison: DatasetComparison | None = None


FILE_WIDTH = 22  # the batches table's file column (the full path is in `distill batches`)


class OverviewScreen(LoudWorkers, Screen[None]):
    """What is in the workspace."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh", id="overview.refresh"),
        Binding("b", "focus_batches", "Batches", id="overview.batches"),
        Binding("x", "focus_quarantine", "Quarantine", id="overview.quarantine"),
        Binding("v", "next_version", "Compare next version", id="overview.version"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.version: str | None = None  # dataset version the chart compares with; None = the newest
        self.comparison: DatasetComparison | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="overview-body"):
            with VerticalScroll(id="overview-left"):
                yield Static("loading…", id="overview-counts")
                yield Static("", id="overview-chart")
            with Vertical(id="overview-right"):
                yield Static("Import batches", classes="section-title")
                yield DataTable(id="batches", cursor_type="row", zebra_stripes=True)
                yield Static("Quarantine", id="quarantine-title", classes="section-title")
                yield DataTable(id="quarantine", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        batches = self.query_one("#batches", DataTable)
        # Status second and the file name cut: all eight columns took 86 cells of the pane's 78 at 160 columns, and
        # the status (the one to read) was the column cut off.
        for key in ("batch", "status", "file", "format", "lines", "imported", "dupes", "bad"):
            batches.add_column(key, key=key)
        quarantine = self.query_one("#quarantine", DataTable)
        for key in ("batch", "line", "field", "reason", "raw"):
            quarantine.add_column(key, key=key)
        self.action_refresh()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="overview", exit_on_error=False)
    def _load(self) -> None:
        o = workspace_overview(self.workspace)
        comparison = dataset_comparison(self.workspace, o.slices, self.version)
        self.post_message(OverviewLoaded(o, quarantine_page(self.workspace), comparison))

    def action_next_version(self) -> None:
        """Compare production with the next older dataset version (wrapping round to the newest)."""
        c = self.comparison
        if c is None or len(c.versions) < 2:
            self.notify("only one dataset version" if c else "no dataset version yet", severity="warning")
            return
        self.version = c.versions[(c.versions.index(c.version) + 1) % len(c.versions)]
        self.action_refresh()

    def on_overview_loaded(self, message: OverviewLoaded) -> None:
        o = message.overview
        self.comparison = message.comparison
        counts = Text()
        counts.append(f"{self.workspace.path.name}\n", style="bold")
        for label, value in (
            ("records", o.records),
            ("with a teacher response", o.with_response),
            ("reviewed", o.reviewed),
            ("accepted", o.accepted),
            ("rejected", o.rejected),
            ("synthetic inputs", sum(s.synthetic for s in o.slices)),
            ("slices", len(o.slices)),
            ("import batches", len(o.batches)),
            ("quarantined lines", o.quarantined),
        ):
            counts.append(f"{value:>12,}  ", style="bold cyan")
            counts.append(label + "\n")
        self.query_one("#overview-counts", Static).update(counts)
        self.query_one("#overview-chart", Static).update(slice_chart(o.slices, message.comparison))
        batches = self.query_one("#batches", DataTable)
        batches.clear()
        for b in o.batches:
            name = str(b["source_file"]).rsplit("/", 1)[-1]
            batches.add_row(
                b["batch_id"],
                b["status"],
                name if len(name) <= FILE_WIDTH else name[: FILE_WIDTH - 1] + "…",
                b["format"],
                b["n_lines"],
                b["n_imported"],
                b["n_duplicates"],
                b["n_quarantined"],
            )
        quarantine = self.query_one("#quarantine", DataTable)
        quarantine.clear()
        for q in message.quarantine:
            raw = " ".join(str(q["raw"] or "").split())[:80]
            quarantine.add_row(q["batch_id"], q["line_no"], q["field"] or "", q["reason"], raw)
        shown = len(message.quarantine)
        more = f" (first {shown:,})" if shown < o.quarantined else ""
        self.query_one("#quarantine-title", Static).update(f"Quarantine: {o.quarantined:,} bad line(s){more}")

    def action_focus_batches(self) -> None:
        self.query_one("#batches").focus()

    def action_focus_quarantine(self) -> None:
        self.query_one("#quarantine").focus()
