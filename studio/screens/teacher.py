"""Teacher generation from the studio: pick a teacher and a selection, run it in the background, watch, cancel;
synthetic inputs for a weak slice; and adding a teacher.

The fields are generated from ``curation.teacher.options`` (GENERATE, SYNTH, TEACHERS_ADD: the declarations
``distill generate``, ``distill synth run`` and ``distill teachers add`` take their flags from). The workers call ``curation.teacher.engine.generate`` and
``curation.teacher.synth.synth_inputs``, the same functions as the CLI; answers are committed as they arrive, so a
cancel keeps what was received and a later run finishes the rest.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, ProgressBar, Static
from textual.worker import Worker, WorkerState

from curation.errors import UserError
from curation.progress import Progress
from curation.teacher.budget import possibly_billed_text
from curation.teacher.config import list_teachers, save_teacher
from curation.teacher.engine import GenerateResult, generate
from curation.teacher.options import GENERATE, SYNTH, TEACHERS_ADD, selection_from_options, teacher_from_options
from curation.teacher.synth import SliceShare, SynthResult, synth_inputs, synthetic_share
from curation.workspace import Workspace
from studio.failures import LoudWorkers
from studio.widgets.option_form import OptionForm

NO_TEACHER = Text(
    "No teacher yet: add one under 'Add a teacher' below (or `distill teachers add` in a shell; `distill demo` "
    "registers the offline sample teacher).",
    style="yellow",
)
SYNTH_FIELDS = SYNTH.without("teacher")  # the teacher is the one picked for generation, above
# A served student as teacher (--from-run) needs the running gateway's address: the CLI finds it.
ADD_FIELDS = TEACHERS_ADD.without("from_run")


@dataclass
class TeachersLoaded(Message):
    """The configured teachers, as (label, name) options."""

    options: list[tuple[str, str]]


@dataclass
class TeacherAdded(Message):
    """A teacher was saved (``notes``: what it still needs), or an error naming an option."""

    name: str | None
    notes: list[str]
    error: str | None = None
    option: str | None = None


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
    option: str | None = None  # the option an error names


@dataclass
class SynthFinished(Message):
    """A synthetic-input run ended: what it made, or an error."""

    result: SynthResult | None
    error: str | None = None
    option: str | None = None


class TeacherScreen(LoudWorkers, Screen[None]):
    """Generate teacher answers for a selection of records in a background worker."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "start", "Generate", id="teacher.start"),
        Binding("ctrl+n", "synth", "Synthesize inputs", id="teacher.synth"),
        Binding("escape", "cancel_run", "Cancel run", id="teacher.cancel"),
        Binding("ctrl+o", "add_teacher", "Add teacher", id="teacher.add"),
    ]
    DEFAULT_CSS = """
    TeacherScreen #teacher-body { height: 1fr; padding: 0 1; }
    TeacherScreen .row { height: auto; margin: 1 0 0 0; }
    TeacherScreen .row Button { margin: 0 2 0 0; }
    TeacherScreen Static { height: auto; }
    """

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self._cancel: threading.Event | None = None
        self._pick: str | None = None  # the teacher to select once the list is reloaded (one just added)

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="teacher-body"):
            yield Static("Generate teacher answers", classes="section-title")
            yield OptionForm(GENERATE, prefix="gen", id="teacher-generate")
            with Horizontal(classes="row"):
                yield Button("Generate", variant="primary", id="teacher-start")
                yield Button("Cancel", variant="error", id="teacher-cancel", disabled=True)
            yield ProgressBar(total=100, show_eta=False, id="teacher-progress")
            yield Static("done 0 failed 0 cached 0 $0.0000", id="teacher-counts")
            yield Static("", id="teacher-summary")
            yield Static("Synthetic inputs for a weak slice (with the teacher above)", classes="section-title")
            yield OptionForm(SYNTH_FIELDS, prefix="synth", id="teacher-synth-form")
            with Horizontal(classes="row"):
                yield Button("Synthesize", id="teacher-synth")
            yield Static("", id="teacher-synthetic")
            yield Static("Add a teacher (any OpenAI-compatible endpoint; the key stays in the environment)",
                         classes="section-title")  # fmt: skip
            yield OptionForm(ADD_FIELDS, prefix="add", id="teacher-add-form")
            with Horizontal(classes="row"):
                yield Button("Add teacher", id="teacher-add")
            yield Static("", id="teacher-add-result")
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
        form = self.query_one("#teacher-generate", OptionForm)
        form.set_choices("teacher", message.options)
        if self._pick is not None:
            form.set_value("teacher", self._pick)
            self._pick = None
        if not message.options:
            self.query_one("#teacher-summary", Static).update(NO_TEACHER)

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
        elif event.button.id == "teacher-synth":
            self.action_synth()
        elif event.button.id == "teacher-add":
            self.action_add_teacher()

    def on_option_form_submitted(self, message: OptionForm.Submitted) -> None:
        if message.form.id == "teacher-add-form":  # Enter in one of its fields
            self.action_add_teacher()

    def action_add_teacher(self) -> None:
        """Save the teacher the 'Add a teacher' fields describe (``distill teachers add``)."""
        form = self.query_one("#teacher-add-form", OptionForm)
        try:
            values = form.values()
        except UserError as exc:
            self._focus_option(form, getattr(exc, "option", None))
            self.notify(str(exc), title="Add a teacher", severity="error", markup=False)
            return
        self._add(values)

    @staticmethod
    def _focus_option(form: OptionForm, option: str | None) -> None:
        # The field to fix, scrolled into view (ctrl+o from the top of the screen left it below the fold).
        if option in form.options.names:
            form.field(option).focus()

    @work(thread=True, exclusive=True, group="teacher-add", exit_on_error=False)
    def _add(self, values: dict[str, Any]) -> None:
        try:
            cfg = teacher_from_options(values)
            save_teacher(self.workspace, cfg, replace=values["replace"])
        except UserError as exc:
            self.post_message(TeacherAdded(None, [], str(exc), getattr(exc, "option", None)))
            return
        notes = [] if cfg.terms_ack else ["generation is refused until its terms are acknowledged (tick 'Terms allow "
                                          "training' and 'Replace', then add it again)"]  # fmt: skip
        if cfg.api_key_env and not os.environ.get(cfg.api_key_env):
            notes.append(f"${cfg.api_key_env} is not set in the studio's environment: set it and restart the studio "
                         "before generating")  # fmt: skip
        self.post_message(TeacherAdded(cfg.name, notes))

    def on_teacher_added(self, message: TeacherAdded) -> None:
        result = self.query_one("#teacher-add-result", Static)
        if message.name is None:
            form = self.query_one("#teacher-add-form", OptionForm)
            if message.option in form.options.names:
                form.show_error(message.option, message.error)
            self._focus_option(form, message.option)
            result.update(Text(message.error or "", style="red"))
            self.notify(message.error or "", title="Add a teacher", severity="error", markup=False)
            return
        result.update(Text("\n".join([f"teacher {message.name} saved; picked above for generation", *message.notes]),
                           style="yellow" if message.notes else "green"))  # fmt: skip
        self.notify(f"teacher {message.name} saved", title="Add a teacher")
        self._pick = message.name
        self.query_one("#teacher-summary", Static).update("")
        self._load_teachers()

    def _begin(self, text: str) -> threading.Event | None:
        if self._cancel is not None:
            self.notify("a run is going", severity="warning")
            return None
        self._cancel = threading.Event()
        self.query_one("#teacher-start", Button).disabled = True
        self.query_one("#teacher-synth", Button).disabled = True
        self.query_one("#teacher-cancel", Button).disabled = False
        self.query_one("#teacher-summary", Static).update(text)
        return self._cancel

    def _end(self) -> None:
        self._cancel = None
        self.query_one("#teacher-start", Button).disabled = False
        self.query_one("#teacher-synth", Button).disabled = False
        self.query_one("#teacher-cancel", Button).disabled = True

    def action_start(self) -> None:
        """Start generating with the chosen teacher and selection."""
        try:
            values = self.query_one("#teacher-generate", OptionForm).values()
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        cancel = self._begin(f"generating with {values['teacher']} …")
        if cancel is not None:
            self._run(values, cancel)

    def action_synth(self) -> None:
        """Ask the chosen teacher for new prompts in the style of a slice."""
        try:
            teacher = GENERATE["teacher"].parse(self.query_one("#teacher-generate", OptionForm).raw("teacher"))
            values = {"teacher": teacher, **self.query_one("#teacher-synth-form", OptionForm).values()}
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        cancel = self._begin(f"asking {teacher} for {values['n']} new prompts in {values['slice']!r} …")
        if cancel is not None:
            self._synth(values, cancel)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # With no run going, esc is not ours: it falls through to the app (leave a text field).
        return self._cancel is not None if action == "cancel_run" else True

    def action_cancel_run(self) -> None:
        """Stop sending; requests in flight finish and are kept."""
        if self._cancel is not None:
            self._cancel.set()
            self.query_one("#teacher-summary", Static).update("cancelling: waiting for requests in flight …")

    @work(thread=True, exclusive=True, group="teacher-generate", exit_on_error=False)
    def _run(self, values: dict[str, Any], cancel: threading.Event) -> None:
        last = [0.0]

        def progress(p: Progress) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1 or (p.total is not None and p.done >= p.total):
                last[0] = now
                self.post_message(GenerationProgressed(p.done, p.total, p.detail))

        try:
            v = GENERATE.resolve(self.workspace, values)  # the teacher must exist: the CLI's check
            res = generate(self.workspace, v["teacher"], selection_from_options(v), budget_usd=v["budget"],
                           concurrency=v["concurrency"], progress=progress, cancel=cancel)  # fmt: skip
        except UserError as exc:
            self.post_message(GenerationFinished(None, str(exc), getattr(exc, "option", None)))
            return
        self.post_message(GenerationFinished(res))

    @work(thread=True, exclusive=True, group="teacher-generate", exit_on_error=False)
    def _synth(self, values: dict[str, Any], cancel: threading.Event) -> None:
        try:
            v = SYNTH.resolve(self.workspace, values)
            res = synth_inputs(self.workspace, v["teacher"], v["slice"], v["n"], n_examples=v["examples"],
                               cancel=cancel)  # fmt: skip
        except UserError as exc:
            self.post_message(SynthFinished(None, str(exc), getattr(exc, "option", None)))
            return
        self.post_message(SynthFinished(res))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # An unexpected failure is reported by the app (LoudWorkers); the run controls must come back.
        if event.state is WorkerState.ERROR and event.worker.group == "teacher-generate":
            self._end()
            self.query_one("#teacher-summary", Static).update(
                Text("the run failed (the error notification says why)", style="red")
            )

    def on_generation_progressed(self, message: GenerationProgressed) -> None:
        bar = self.query_one("#teacher-progress", ProgressBar)
        bar.update(total=message.total or None, progress=message.done)
        self.query_one("#teacher-counts", Static).update(message.detail)

    def on_generation_finished(self, message: GenerationFinished) -> None:
        self._end()
        summary = self.query_one("#teacher-summary", Static)
        if message.result is None:
            if message.option:
                self.query_one("#teacher-generate", OptionForm).show_error(message.option, message.error)
            summary.update(Text(message.error or "", style="red"))
            self.notify(message.error or "generation failed", title="Teacher", severity="error", markup=False)
            return
        r = message.result
        self._load_shares()
        summary.update(f"run {r.run_id} {r.status}: {r.done} generated, {r.cached} from cache, {r.failed} failed, "
                       f"${r.cost_usd:.4f}{possibly_billed_text(r.possibly_billed_usd)}"
                       + (f"\nfirst error: {r.errors[0]}" if r.errors else ""))  # fmt: skip

    def on_synth_finished(self, message: SynthFinished) -> None:
        self._end()
        summary = self.query_one("#teacher-summary", Static)
        if message.result is None:
            form = self.query_one("#teacher-synth-form", OptionForm)
            if message.option in form.options.names:
                form.show_error(message.option, message.error)
            summary.update(Text(message.error or "", style="red"))
            return
        r = message.result
        self._load_shares()
        summary.update(f"slice {r.slice}: {r.n_inserted} new synthetic prompts (asked {r.n_requested}, "
                       f"{r.n_duplicates} duplicates dropped, {r.n_unparsed} unusable), ${r.cost_usd:.4f}"
                       f"{possibly_billed_text(r.possibly_billed_usd)}; generate answers them")  # fmt: skip
