"""Import a file from the studio: pick it, see the detected format and a preview, choose the slice field, import."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, DirectoryTree, Footer, Header, Input, Label, ProgressBar, Select, Static
from textual.worker import Worker, WorkerState

from curation.errors import Cancelled, UserError
from curation.importing import Detection, ImportResult, detect_format, import_file, preview
from curation.progress import Progress
from curation.workspace import Workspace
from studio.failures import LoudWorkers

NO_SLICE = "(no slice field)"


@dataclass
class Detected(Message):
    """Format detection and the preview of a file."""

    detection: Detection
    rows: list[dict]


@dataclass
class ImportProgressed(Message):
    """The import moved on (posted at most every 0.1 s)."""

    fraction: float | None
    stage: str


@dataclass
class ImportFinished(Message):
    """The import ended: a result, a cancellation (nothing changed) or an error."""

    result: ImportResult | None
    cancelled: bool = False
    error: str | None = None


class ImportScreen(LoudWorkers, Screen[None]):
    """Choose a file, check it, import it in the background."""

    # The tree, not the path field: digits are screen hotkeys unless a text field is being edited (they typed into
    # the path when someone came here with 4 and went on with 5). A studio that opens on Import (a new, empty
    # workspace) focuses the path instead: typing a path is the one thing to do there.
    AUTO_FOCUS = "#import-tree"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+o", "check", "Check file", id="import.check"),
        Binding("ctrl+r", "start", "Import", id="import.start"),
        # escape, not ctrl+c: Textual uses ctrl+c for copy (and in the path Input).
        Binding("escape", "cancel_import", "Cancel import", id="import.cancel"),
    ]

    def __init__(self, workspace: Workspace, start_dir: str | Path = ".") -> None:
        super().__init__()
        self.workspace = workspace
        self.start_dir = Path(start_dir)
        self.detection: Detection | None = None
        self._cancel: threading.Event | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="import-body"):
            yield DirectoryTree(self.start_dir, id="import-tree")
            with Vertical(id="import-right"):
                with Horizontal(classes="row"):
                    yield Input(placeholder="path to a .jsonl, .jsonl.gz, .csv or .parquet file", id="import-path")
                    yield Button("Check", id="import-check")
                yield Static("pick a file", id="import-detected")
                with Horizontal(classes="row"):
                    yield Label("slice field ")
                    yield Select([(NO_SLICE, NO_SLICE)], value=NO_SLICE, allow_blank=False, id="import-slice")
                    yield Button("Import", variant="primary", id="import-start", disabled=True)
                    yield Button("Cancel", variant="error", id="import-cancel", disabled=True)
                yield ProgressBar(total=100, show_eta=False, id="import-progress")
                yield DataTable(id="import-preview", zebra_stripes=True)
                yield Static("", id="import-summary")
        yield Footer()

    def on_mount(self) -> None:
        if getattr(self.app, "start", None) == "import":
            self.query_one("#import-path", Input).focus()
        table = self.query_one("#import-preview", DataTable)
        for key in ("line", "slice", "prompt", "response", "problem"):
            table.add_column(key, key=key)

    # -- choosing and checking -----------------------------------------------------------------------------

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#import-path", Input).value = str(event.path)
        self.action_check()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_check()

    def action_check(self) -> None:
        """Detect the format of the chosen file and preview its first records."""
        raw = self.query_one("#import-path", Input).value.strip()
        if not raw:
            self.notify("type a path or pick a file", severity="warning")
            return
        self.query_one("#import-detected", Static).update(f"checking {raw} …")
        self._detect(Path(raw).expanduser(), self._slice_field())

    @work(thread=True, exclusive=True, group="import-detect", exit_on_error=False)
    def _detect(self, path: Path, slice_field: str | None) -> None:
        try:
            if not path.is_file():
                raise UserError(f"{path} is not a file")
            det = detect_format(path)
            rows = preview(path, fmt=det.format, slice_field=slice_field or det.slice_field, limit=20)
        except (UserError, OSError) as exc:
            self.post_message(ImportFinished(None, error=str(exc)))
            return
        self.post_message(Detected(det, rows))

    def _slice_field(self) -> str | None:
        value = self.query_one("#import-slice", Select).value
        return None if value in (NO_SLICE, Select.BLANK) else str(value)

    def on_detected(self, message: Detected) -> None:
        det = message.detection
        first = self.detection is None or self.detection.path != det.path
        self.detection = det
        text = f"[b]{det.path.name}[/b]: format [cyan]{det.format}[/cyan]" + (" (gzip)" if det.compressed else "")
        if det.batch_input:
            text += f", requests from {det.batch_input.name}"
        if det.problem:
            text += f"\n[red]{det.problem}[/red]"
        self.query_one("#import-detected", Static).update(text)
        if first:
            select = self.query_one("#import-slice", Select)
            options = [(NO_SLICE, NO_SLICE)] + [(f, f) for f in det.fields]
            select.set_options(options)
            select.value = det.slice_field if det.slice_field in det.fields else NO_SLICE
        table = self.query_one("#import-preview", DataTable)
        table.clear()
        for r in message.rows:
            prompt = " ".join(str(r.get("prompt") or "").split())[:60]
            response = " ".join(str(r.get("response") or "").split())[:50]
            table.add_row(r.get("line_no"), r.get("slice") or "", prompt, response, r.get("error") or "")
        self.query_one("#import-start", Button).disabled = False

    def on_select_changed(self, event: Select.Changed) -> None:
        if self.detection is not None and event.select.id == "import-slice":
            self._detect(self.detection.path, self._slice_field())

    # -- importing -----------------------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "import-check":
            self.action_check()
        elif event.button.id == "import-start":
            self.action_start()
        elif event.button.id == "import-cancel":
            self.action_cancel_import()

    def action_start(self) -> None:
        """Import the checked file in a background worker."""
        if self.detection is None or self._cancel is not None:
            return
        self._cancel = threading.Event()
        self.query_one("#import-start", Button).disabled = True
        self.query_one("#import-cancel", Button).disabled = False
        self.query_one("#import-progress", ProgressBar).update(total=100, progress=0)
        self.query_one("#import-summary", Static).update("importing …")
        self._import(self.detection, self._slice_field(), self._cancel)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # With no import running, esc is not ours: it falls through to the app (leave the path field).
        return self._cancel is not None if action == "cancel_import" else True

    def action_cancel_import(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.query_one("#import-summary", Static).update("cancelling …")

    @work(thread=True, exclusive=True, group="import-run", exit_on_error=False)
    def _import(self, det: Detection, slice_field: str | None, cancel: threading.Event) -> None:
        last = 0.0

        def progress(p: Progress) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= 0.1 or (p.fraction or 0) >= 1:  # batch updates: the UI needs no more
                last = now
                self.post_message(ImportProgressed(p.fraction, p.stage))

        try:
            result = import_file(
                self.workspace, det.path, fmt=det.format, slice_field=slice_field, progress=progress, cancel=cancel
            )
        except Cancelled:
            self.post_message(ImportFinished(None, cancelled=True))
            return
        except UserError as exc:
            self.post_message(ImportFinished(None, error=str(exc)))
            return
        self.post_message(ImportFinished(result))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # An unexpected failure is reported by the app (LoudWorkers); the controls must not stay "importing".
        if event.state is WorkerState.ERROR and event.worker.group == "import-run":
            self._cancel = None
            self.query_one("#import-start", Button).disabled = self.detection is None
            self.query_one("#import-cancel", Button).disabled = True
            self.query_one("#import-summary", Static).update(Text("import failed; nothing was changed", style="red"))

    def on_import_progressed(self, message: ImportProgressed) -> None:
        if message.fraction is not None:
            self.query_one("#import-progress", ProgressBar).update(progress=message.fraction * 100)

    def on_import_finished(self, message: ImportFinished) -> None:
        self._cancel = None
        self.query_one("#import-start", Button).disabled = self.detection is None
        self.query_one("#import-cancel", Button).disabled = True
        summary = self.query_one("#import-summary", Static)
        if message.cancelled:
            summary.update("[yellow]import cancelled; nothing was changed[/yellow]")
        elif message.error:
            summary.update(Text(message.error, style="red"))
            self.notify(message.error, title="Import", severity="error", markup=False)
        elif message.result is not None:
            r = message.result
            self.query_one("#import-progress", ProgressBar).update(progress=100)
            lines = [
                f"[green]batch {r.batch_id}[/green]: {r.n_imported:,} imported of {r.n_lines:,} lines, "
                f"{r.n_duplicates:,} duplicates, {r.n_quarantined:,} quarantined"
            ]
            lines += [
                f"  line {q.get('line_no')}: {q.get('field') or ''} {q.get('reason')}" for q in r.quarantine_sample
            ]
            lines += [f"  warning: {w}" for w in r.warnings]
            summary.update("\n".join(lines))
            self.app.post_message(DataChanged())


@dataclass
class DataChanged(Message):
    """Records were added or removed: screens showing counts should reload."""
