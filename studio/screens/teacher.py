"""Teacher generation from the studio: pick a teacher and a selection, run it in the background, watch, cancel.

The worker calls ``curation.teacher.engine.generate`` (the same function as ``distill generate``); answers are
committed as they arrive, so a cancel keeps what was received and a later run finishes the rest.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, ProgressBar, Select, Static

from curation.errors import UserError
from curation.progress import Progress
from curation.teacher.config import list_teachers
from curation.teacher.engine import GenerateResult, generate
from curation.teacher.selection import Selection
from curation.teacher.synth import SliceShare, synthetic_share
from curation.workspace import Workspace
from studio.failures import LoudWorkers

MISSING, ALL = "missing", "all"


@dataclass
class TeachersLoaded(Message):
    """The configured teachers, as (label, name) options."""

    options: list[tuple[str, str]]


@dataclass
class SharesLoaded(Message):
    """The synthetic share of the slices that have synthetic records."""

    shares: list[SliceShare]


@dataclass
class GenerationProgressed(Message):
    """Counts so far (posted at most every 0.1 s)."""

    done: float
    total: float | None
    detail: str


@dataclass
class GenerationFinished(Message):
    """The run ended: a result (done, cancelled or stopped by the budget) or an error."""

    result: GenerateResult | None
    error: str | None = None


class TeacherScreen(LoudWorkers, Screen[None]):
    """Generate teacher answers for a selection of records in a background worker."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "start", "Generate", id="teacher.start"),
        Binding("escape", "cancel_run", "Cancel run", id="teacher.cancel"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self._cancel: threading.Event | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="teacher-body"):
            with Horizontal(classes="row"):
                yield Label("teacher ")
                yield Select([], prompt="no teachers yet (distill teachers add)", id="teacher-name")
                yield Label(" records ")
                yield Select([("without a response", MISSING), ("all (side by side)", ALL)], value=MISSING,
                             allow_blank=False, id="teacher-scope")  # fmt: skip
            with Horizontal(classes="row"):
                yield Input(placeholder="slice (optional)", id="teacher-slice")
                yield Input(placeholder="limit (optional)", id="teacher-limit", type="integer")
                yield Input(placeholder="budget USD (optional)", id="teacher-budget", type="number")
            with Horizontal(classes="row"):
                yield Button("Generate", variant="primary", id="teacher-start")
                yield Button("Cancel", variant="error", id="teacher-cancel", disabled=True)
            yield ProgressBar(total=100, show_eta=False, id="teacher-progress")
            yield Static("done 0 failed 0 cached 0 $0.0000", id="teacher-counts")
            yield Static("", id="teacher-summary")
            yield Static("", id="teacher-synthetic")
        yield Footer()

    def on_mount(self) -> None:
        self._load_teachers()
        self._load_shares()

    @work(thread=True, exclusive=True, group="teacher-load", exit_on_error=False)
    def _load_teachers(self) -> None:
        opts = [(f"{t.name} ({t.model})" + ("" if t.terms_ack else " - terms not acked"), t.name)
                for t in list_teachers(self.workspace)]  # fmt: skip
        self.post_message(TeachersLoaded(opts))

    @work(thread=True, exclusive=True, group="teacher-shares", exit_on_error=False)
    def _load_shares(self) -> None:
        self.post_message(SharesLoaded([x for x in synthetic_share(self.workspace) if x.synthetic]))

    def on_teachers_loaded(self, message: TeachersLoaded) -> None:
        select = self.query_one("#teacher-name", Select)
        select.set_options(message.options)
        if message.options:
            select.value = message.options[0][1]

    def on_shares_loaded(self, message: SharesLoaded) -> None:
        shares = ", ".join(f"{x.slice} {x.synthetic}/{x.records} ({x.share:.0%})" for x in message.shares)
        self.query_one("#teacher-synthetic", Static).update(
            f"synthetic share: {shares}" if shares else "no synthetic inputs yet (distill synth run / fulfil)"
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "teacher-start":
            self.action_start()
        elif event.button.id == "teacher-cancel":
            self.action_cancel_run()

    def _selection(self) -> tuple[Selection, float | None]:
        slice_ = self.query_one("#teacher-slice", Input).value.strip() or None
        limit = self.query_one("#teacher-limit", Input).value.strip()
        budget = self.query_one("#teacher-budget", Input).value.strip()
        scope = self.query_one("#teacher-scope", Select).value
        sel = Selection(missing=scope != ALL, slice=slice_, limit=int(limit) if limit else None)
        return sel, float(budget) if budget else None

    def action_start(self) -> None:
        """Start generating with the chosen teacher and selection."""
        name = self.query_one("#teacher-name", Select).value
        if name is Select.BLANK or self._cancel is not None:
            self.notify("pick a teacher first" if self._cancel is None else "a run is going", severity="warning")
            return
        try:
            sel, budget = self._selection()
        except ValueError as exc:
            self.notify(f"bad number: {exc}", severity="error")
            return
        self._cancel = threading.Event()
        self.query_one("#teacher-start", Button).disabled = True
        self.query_one("#teacher-cancel", Button).disabled = False
        self.query_one("#teacher-summary", Static).update(f"generating with {name} …")
        self._run(str(name), sel, budget, self._cancel)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # With no run going, esc is not ours: it falls through to the app (leave a text field).
        return self._cancel is not None if action == "cancel_run" else True

    def action_cancel_run(self) -> None:
        """Stop sending; requests in flight finish and are kept."""
        if self._cancel is not None:
            self._cancel.set()
            self.query_one("#teacher-summary", Static).update("cancelling: waiting for requests in flight …")

    @work(thread=True, exclusive=True, group="teacher-generate", exit_on_error=False)
    def _run(self, name: str, sel: Selection, budget: float | None, cancel: threading.Event) -> None:
        last = [0.0]

        def progress(p: Progress) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1 or (p.total is not None and p.done >= p.total):
                last[0] = now
                self.post_message(GenerationProgressed(p.done, p.total, p.detail))

        try:
            res = generate(self.workspace, name, sel, budget_usd=budget, progress=progress, cancel=cancel)
        except UserError as exc:
            self.post_message(GenerationFinished(None, str(exc)))
            return
        self.post_message(GenerationFinished(res))

    def on_generation_progressed(self, message: GenerationProgressed) -> None:
        bar = self.query_one("#teacher-progress", ProgressBar)
        bar.update(total=message.total or None, progress=message.done)
        self.query_one("#teacher-counts", Static).update(message.detail)

    def on_generation_finished(self, message: GenerationFinished) -> None:
        self._cancel = None
        self.query_one("#teacher-start", Button).disabled = False
        self.query_one("#teacher-cancel", Button).disabled = True
        summary = self.query_one("#teacher-summary", Static)
        if message.result is None:
            summary.update(f"[red]{message.error}[/red]")
            self.notify(message.error or "generation failed", title="Teacher", severity="error", markup=False)
            return
        r = message.result
        self._load_shares()
        summary.update(f"run {r.run_id} {r.status}: {r.done} generated, {r.cached} from cache, {r.failed} failed, "
                       f"${r.cost_usd:.4f}" + (f"\nfirst error: {r.errors[0]}" if r.errors else ""))  # fmt: skip
