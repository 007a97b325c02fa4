"""Records browser: filter bar, a virtual list of any number of records, and the detail of the highlighted one."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Header, Static

from curation.browse import ORDERS, RecordDetail, get_record
from curation.errors import UserError
from curation.workspace import Workspace
from studio.failures import LoudWorkers, benign
from studio.screens.teacher_actions import TeacherActions
from studio.widgets.filter_bar import FilterBar
from studio.widgets.record_list import STATUS_LEGEND, QueryFailed, RecordList
from studio.widgets.record_view import RecordView

DETAIL_DELAY_S = 0.08


@dataclass
class DetailLoaded(Message):
    """The full record for the detail pane arrived."""

    detail: RecordDetail


class RecordsScreen(LoudWorkers, TeacherActions):
    """Browse, sort and filter records; Enter opens the review queue on the same filter."""

    AUTO_FOCUS = "RecordList"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_filter", "Filter", id="records.filter"),
        Binding("o", "cycle_order", "Order", id="records.order"),
        Binding("escape", "focus_list", "List", show=False, id="records.focus_list"),
        Binding("R", "review_here", "Review these", id="records.review"),
        Binding("t", "next_teacher", "Next teacher", id="records.next_teacher"),
        Binding("d", "diff_base", "Diff against", show=False, id="records.diff_base"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self._detail_timer: Timer | None = None
        self._shown_before = False
        self._filter_field: Widget | None = None  # the field a filter was applied from, until it ran

    def compose(self) -> ComposeResult:
        yield Header()
        yield FilterBar(id="filters")
        with Horizontal(id="records-body"):
            yield RecordList(self.workspace, id="record-list")
            yield RecordView(id="record-view")
        yield Static("", id="records-status", classes="status-line")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RecordList).focus()

    def on_screen_resume(self) -> None:
        # Back from a review or an import: statuses and counts may have changed (the first resume is the mount).
        if self._shown_before:
            self.records.reload(keep_cursor=True)
        self._shown_before = True

    @property
    def records(self) -> RecordList:
        return self.query_one(RecordList)

    def _update_status(self, error: str | None = None) -> None:
        lst = self.records
        pos = f"{lst.cursor + 1:,}" if lst.total else "0"
        text = Text(f"{pos} of {lst.total:,} · {ORDERS[lst.order][0]} · {lst.filter.describe()}   ")
        text.append(STATUS_LEGEND, style="dim")
        if error:
            text = Text.assemble((error, "red"), "  ·  ", text)
        self.query_one("#records-status", Static).update(text)

    def on_filter_bar_changed(self, message: FilterBar.Changed) -> None:
        # The list takes focus only once the filter ran: a bad one leaves the cursor in the field to fix it.
        self._filter_field = self.focused
        self.records.reload(message.filter)

    def on_record_list_counted(self, message: RecordList.Counted) -> None:
        self._update_status()
        if self._filter_field is not None and self.focused is self._filter_field:
            self.records.focus()
        self._filter_field = None

    def on_query_failed(self, message: QueryFailed) -> None:
        self._update_status(message.error)
        self.notify(message.error, severity="error", timeout=6)
        if self._filter_field is not None:
            self._filter_field.focus()

    def on_record_list_highlighted(self, message: RecordList.Highlighted) -> None:
        self._update_status()
        # Debounced: holding a key down should repaint the list at key speed, not render every detail on the way.
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(DETAIL_DELAY_S, partial(self._load_detail, message.row.record_id))

    def on_record_list_selected(self, message: RecordList.Selected) -> None:
        self.action_review_here()

    @benign(UserError)  # the record vanished (an import was undone); the list reload will follow
    @work(thread=True, exclusive=True, group="record-detail", exit_on_error=False)
    def _load_detail(self, record_id: int) -> None:
        self.post_message(DetailLoaded(get_record(self.workspace, record_id)))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        row = self.records.current_row()
        if row is not None and row.record_id == message.detail.record_id:
            self.query_one(RecordView).show(message.detail)

    def action_focus_filter(self) -> None:
        self.query_one("#f-text").focus()

    def action_focus_list(self) -> None:
        self.records.focus()

    def action_cycle_order(self) -> None:
        names = list(ORDERS)
        self.records.reload(order=names[(names.index(self.records.order) + 1) % len(names)])

    def action_review_here(self) -> None:
        """Open the review queue on this filter and order, starting at the highlighted record."""
        row = self.records.current_row()
        self.app.open_review(self.records.filter, self.records.order, row.key if row else None)  # type: ignore[attr-defined]
