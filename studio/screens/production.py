"""Production: the served student live (the gateway's log, refreshed every few seconds): traffic, route shares and
fallback per slice, shadow agreement, the accuracy estimate, drift, latency, cost, alarms, and the re-distill plan an
alarm proposes (one key, after a confirmation).

Three thread workers, each posting one message: the setup (the workspace's bar, run, prices and training sample,
embedded once: ``train.monitor.setup.build_setup``), the traffic refresh (the log read incrementally; aggregates only
reach the widgets, never log rows) and the drift test (embeddings and classifiers: every ``DRIFT_EVERY_S`` or on ``d``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker, WorkerState

from curation.progress import Progress
from curation.workspace import Workspace
from studio.failures import LoudWorkers
from studio.widgets.modals import ConfirmModal
from train.monitor.monitor import Monitor, MonitorReport, parse_window
from train.monitor.pace import DEFAULT_WINDOW, DRIFT_EVERY_S, REFRESH_S
from train.monitor.plan import PlanResult, RedistillPlan, apply_plan, propose
from train.monitor.setup import MonitorSetup, build_setup
from train.monitor.text import SLICE_HEADERS, alarm_lines, slice_cells, summary_lines
from train.serve.settings import logs_dir

WINDOWS = (DEFAULT_WINDOW, "15m", "24h", "all")  # `w` cycles through them


@dataclass
class SetupBuilt(Message):
    setup: MonitorSetup


@dataclass
class ProductionRefreshed(Message):
    """A new report and the plan its alarms propose (``drift`` True: after a drift test)."""

    report: MonitorReport
    plan: RedistillPlan | None
    drift: bool = False


@dataclass
class PlanApplied(Message):
    result: PlanResult


@dataclass
class SetupProgressed(Message):
    text: str


class ProductionScreen(LoudWorkers, Screen[None]):
    """The gateway's traffic and the student's health, live."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh", id="production.refresh"),
        Binding("d", "test_drift", "Test drift now", id="production.drift"),
        Binding("w", "next_window", "Window", id="production.window"),
        Binding("p", "show_plan", "Re-distill plan", id="production.plan"),
        Binding("R", "redistill", "Re-distill (import logs)", id="production.redistill"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.window_text = WINDOWS[0]
        self.monitor: Monitor | None = None
        self.report: MonitorReport | None = None
        self.plan: RedistillPlan | None = None
        self._drift_at = 0.0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading the workspace…", id="prod-summary")
        yield DataTable(id="prod-slices", cursor_type="row", zebra_stripes=True)
        yield Static("", id="prod-details")
        yield Static("", id="prod-alarms")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#prod-slices", DataTable)
        for h in SLICE_HEADERS:
            table.add_column(h, key=h)
        self._build_setup()
        self._timer = self.set_interval(REFRESH_S, self._tick)

    def on_screen_suspend(self) -> None:
        self._timer.pause()  # another screen is in front: nothing to show the refresh on

    def on_screen_resume(self) -> None:
        self._timer.resume()
        if self.monitor is not None:
            self._refresh()

    # -- workers ---------------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="production-setup", exit_on_error=False)
    def _build_setup(self) -> None:
        def progress(p: Progress) -> None:
            self.post_message(SetupProgressed(f"embedding the training sample: {p.done:,.0f} of {p.total or 0:,.0f}"))

        self.post_message(SetupBuilt(build_setup(self.workspace, progress=progress)))

    @work(thread=True, exclusive=True, group="production-traffic", exit_on_error=False)
    def _refresh(self) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        monitor.refresh()
        report = monitor.report()
        self.post_message(ProductionRefreshed(report, propose(report, monitor.logs, self.workspace)))

    @work(thread=True, exclusive=True, group="production-drift", exit_on_error=False)
    def _test_drift(self) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        monitor.test_drift()
        monitor.refresh()
        report = monitor.report()
        self.post_message(ProductionRefreshed(report, propose(report, monitor.logs, self.workspace), drift=True))

    @work(thread=True, exclusive=True, group="production-plan", exit_on_error=False)
    def _apply(self, plan: RedistillPlan) -> None:
        self.post_message(PlanApplied(apply_plan(self.workspace, plan)))

    # -- messages --------------------------------------------------------------------------------------------

    def on_setup_progressed(self, message: SetupProgressed) -> None:
        self.query_one("#prod-summary", Static).update(message.text)

    def on_setup_built(self, message: SetupBuilt) -> None:
        self._start(message.setup)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.group == "production-setup":
            self.query_one("#prod-summary", Static).update(f"could not read the workspace: {event.worker.error}")

    def _start(self, setup: MonitorSetup) -> None:
        self.monitor = Monitor(setup, logs_dir(self.workspace.artifacts_dir), parse_window(self.window_text),
                               workspace=self.workspace)  # fmt: skip
        self._refresh()
        self.action_test_drift()

    def on_production_refreshed(self, message: ProductionRefreshed) -> None:
        if message.report.window != (self.monitor.window.describe() if self.monitor else None):
            return  # made before the window changed
        self.report = r = message.report
        self.plan = message.plan
        lines = summary_lines(r)
        self.query_one("#prod-summary", Static).update(Text(lines[0], style="bold"))
        table = self.query_one("#prod-slices", DataTable)
        row = table.cursor_row
        table.clear()
        for cells in slice_cells(r):
            table.add_row(*cells, key=cells[0])
        table.move_cursor(row=min(row, table.row_count - 1))
        self.query_one("#prod-details", Static).update("\n".join(lines[1:]))
        alarms = Text()
        for line in alarm_lines(r):
            alarms.append(line + "\n", style="bold red" if line.startswith("ALARM") else "yellow")
        if self.plan is not None:
            alarms.append("p shows the re-distill plan · R runs it (after a confirmation)", style="italic")
        self.query_one("#prod-alarms", Static).update(alarms)

    def on_plan_applied(self, message: PlanApplied) -> None:
        n = sum(r["imported"] for r in message.result.imports)
        self.notify(f"imported {len(message.result.imports)} log file(s): {n:,} new record(s). Next: "
                    f"{message.result.next_step}", title="Re-distill", timeout=20)  # fmt: skip
        self.action_refresh()

    # -- actions ---------------------------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.monitor is None:
            return
        self._refresh()
        if time.monotonic() - self._drift_at >= DRIFT_EVERY_S:
            self.action_test_drift()

    def action_refresh(self) -> None:
        """Read the log now."""
        self._refresh()

    def action_test_drift(self) -> None:
        """Embed the newest live prompts and test them against the training sample."""
        if self.monitor is None:
            self.notify("still reading the workspace", severity="warning")
            return
        self._drift_at = time.monotonic()
        self._test_drift()

    def action_next_window(self) -> None:
        """Cycle the window: last hour, 15 minutes, 24 hours, everything."""
        self.window_text = WINDOWS[(WINDOWS.index(self.window_text) + 1) % len(WINDOWS)]
        if self.monitor is not None:
            self._start(self.monitor.setup)  # a new reader for the new window (a sliding one forgot older rows)
        self.notify(f"window: {parse_window(self.window_text).describe()}")

    def action_show_plan(self) -> None:
        """Show what re-distilling would do."""
        if self.plan is None:
            self.notify("no alarm: nothing to re-distill")
            return
        self.notify("\n".join(self.plan.describe()), title="Re-distill plan", timeout=30, markup=False)

    def action_redistill(self) -> None:
        """Run the plan after a confirmation: import the logs as new batches, then say the next step."""
        plan = self.plan
        if plan is None:
            self.notify("no alarm: nothing to re-distill")
            return
        question = "\n".join([*plan.describe(), "", "Run it now?"])
        self.app.push_screen(ConfirmModal(question), lambda ok: self._apply(plan) if ok else None)
