"""Checklist: the project's seven phases, each item measured from the workspace (``train.checklist``), never ticked
by hand. Refreshed from a thread worker on every visit; enter on an open item goes to the screen that closes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from curation.workspace import Workspace
from studio.failures import LoudWorkers
from train.checklist import ItemResult, run

STATE_TEXT = {"ok": Text("done", style="bold green"), "open": Text("open", style="bold yellow"),
              "n/a": Text("n/a", style="dim")}  # fmt: skip


@dataclass
class ChecklistLoaded(Message):
    items: list[ItemResult]


class ChecklistScreen(LoudWorkers, Screen[None]):
    """Where the project stands, phase by phase, and what closes each open item."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh", id="checklist.refresh"),
        # enter on a row does the same (the table's row selection); a screen binding of enter would clash with Input.
        Binding("g", "open_item", "Go to its screen", id="checklist.open"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.items: list[ItemResult] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="checklist-body"):
            yield Static("measuring…", id="checklist-status")
            yield DataTable(id="checklist", cursor_type="row", zebra_stripes=True)
            yield Static("", id="checklist-next")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#checklist", DataTable)
        for key in ("state", "item", "detail"):
            table.add_column(key, key=key)
        self.action_refresh()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="checklist", exit_on_error=False)
    def _load(self) -> None:
        self.post_message(ChecklistLoaded(run(self.workspace)))

    def on_checklist_loaded(self, message: ChecklistLoaded) -> None:
        self.items = message.items
        table = self.query_one("#checklist", DataTable)
        row = table.cursor_row
        table.clear()
        phase = None
        for n, it in enumerate(self.items):
            if it.phase != phase:
                phase = it.phase
                table.add_row(Text(""), Text(phase.upper(), style="bold"), Text(""), key=f"phase:{phase}")
            table.add_row(STATE_TEXT[it.state], it.title, it.detail, key=str(n))
        table.move_cursor(row=min(row, table.row_count - 1))
        n_open = sum(i.state == "open" for i in self.items)
        self.query_one("#checklist-status", Static).update(
            f"{len(self.items) - n_open} of {len(self.items)} items done, {n_open} open — measured from the "
            f"workspace; r refreshes, enter (or g) goes to the screen that closes an item"
        )

    def _selected(self) -> ItemResult | None:
        table = self.query_one("#checklist", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return None if key is None or key.startswith("phase:") else self.items[int(key)]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        it = self._selected()
        text = "" if it is None else (f"next: {it.next_step}" if it.next_step else f"{it.title}: {it.detail}")
        if it is not None and it.screen:
            text += f"   (enter: {it.screen} screen)"
        self.query_one("#checklist-next", Static).update(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_item()

    def action_open_item(self) -> None:
        """Go to the screen where the highlighted item is closed (when the app has it)."""
        it = self._selected()
        if it is None or not it.screen:
            return
        modes = {s.key for s in getattr(self.app, "screen_specs", [])}
        if it.screen in modes:
            self.app.switch_mode(it.screen)
        else:
            self.notify(f"{it.title}: {it.next_step or it.detail}")
