"""Curation screen: pick an operation, preview it, then apply it in a worker with progress and cancel.

Standalone: ``CurationScreen(workspace)``. Each operation's parameters are a form generated from its option
declaration (``studio.widgets.option_form``; the CLI's flags come from the same one). Keys: ``p`` preview, ``a``
apply the shown preview, ``e`` edit the parameters (Tab between fields, enter previews), ``escape`` cancel the
running work (or leave a field). Every preview and apply runs in a thread worker that checks the values against the
workspace and calls the plain ``curation`` functions; results come back as messages, and widgets are only touched on
the event loop.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Header, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from curation.errors import Cancelled, UserError
from curation.progress import Progress
from curation.workspace import Workspace
from studio.failures import LoudWorkers
from studio.screens.curation_ops import OPERATIONS, Operation
from studio.widgets.option_form import OptionForm


@dataclass
class ProgressReported(Message):
    """A worker's progress (merged: only the latest matters)."""

    stage: str
    done: float
    total: float | None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ProgressReported)


@dataclass
class PreviewComputed(Message):
    op: str
    state: Any
    renderable: Any
    params: dict[str, Any]  # the form's values, as parsed (to notice a change before apply)
    resolved: dict[str, Any]  # after the workspace checks (what preview and apply use)


@dataclass
class OperationApplied(Message):
    op: str
    summary: str


@dataclass
class OperationFailed(Message):
    op: str
    error: str
    cancelled: bool = False
    option: str | None = None  # the option an OptionError names: its field shows the message


@dataclass
class NewestVersionFound(Message):
    """The newest dataset version (prefilled in Export's empty version field)."""

    name: str


class CurationScreen(LoudWorkers, Screen[None]):
    """Slices, rebalance, dedupe, held-out split, filters and export, each previewed before it applies."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "preview", "Preview", id="curation.preview"),
        Binding("a", "apply", "Apply", id="curation.apply"),
        Binding("escape", "cancel", "Cancel", id="curation.cancel"),
        Binding("e", "edit_params", "Parameters", id="curation.params"),
        Binding("d", "distribution", "Distribution", id="curation.distribution"),
    ]
    DEFAULT_CSS = """
    CurationScreen #cur-ops { width: 24; border: round $primary; }
    CurationScreen #cur-forms { height: auto; max-height: 60%; margin: 0 0 1 0; }
    CurationScreen #cur-help { color: $text-muted; }
    CurationScreen #cur-status { height: 2; }
    CurationScreen #cur-preview { border: round $secondary; }
    """

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.ops = {o.key: o for o in OPERATIONS}
        self.current: Operation = OPERATIONS[0]
        self.previewed: PreviewComputed | None = None
        self.cancel_event: threading.Event | None = None
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            yield OptionList(*[Option(o.title, id=o.key) for o in OPERATIONS], id="cur-ops")
            with Vertical():
                yield Static(self.current.help, id="cur-help")
                with ContentSwitcher(initial=f"cur-form-{self.current.key}", id="cur-forms"):
                    for o in OPERATIONS:
                        yield OptionForm(o.options, prefix=f"cur-{o.key}", id=f"cur-form-{o.key}")
                yield Static("p: preview  a: apply  esc: cancel", id="cur-status")
                yield ProgressBar(id="cur-progress", show_eta=False)
                with VerticalScroll(id="cur-preview"):
                    yield Static("", id="cur-preview-body")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#cur-ops", OptionList).focus()

    # -- selection and parameters ------------------------------------------------------------------------

    def form(self, key: str | None = None) -> OptionForm:
        """The parameter form of an operation (the highlighted one by default)."""
        return self.query_one(f"#cur-form-{key or self.current.key}", OptionForm)

    @on(OptionList.OptionHighlighted, "#cur-ops")
    def _op_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.current = self.ops[str(event.option.id)]
        self.query_one("#cur-forms", ContentSwitcher).current = f"cur-form-{self.current.key}"
        self.query_one("#cur-help", Static).update(self.current.help)
        self.previewed = None
        self.query_one("#cur-preview-body", Static).update("")
        self._status(f"{self.current.title}: e edits the parameters, p previews")
        if self.current.key == "export" and not self.form("export").raw("version"):
            self._find_newest_version()

    @on(OptionList.OptionSelected, "#cur-ops")
    def _op_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_preview()

    @on(OptionForm.Submitted)
    def _params_submitted(self) -> None:
        self.action_preview()

    def action_edit_params(self) -> None:
        self.form().focus_first()

    def _status(self, text: str) -> None:
        self.query_one("#cur-status", Static).update(text)

    # -- actions -------------------------------------------------------------------------------------------

    def action_preview(self) -> None:
        """Compute the preview of the highlighted operation in a worker."""
        if self.busy:
            self._status("busy: esc cancels the running work")
            return
        try:
            params = self.form().values()
        except UserError as exc:
            self._status(f"error: {exc}")
            return
        self.previewed = None
        # Back to the list, so that ``a`` applies (instead of typing into a field) and the arrows pick an operation.
        self.query_one("#cur-ops", OptionList).focus()
        self._start(f"previewing {self.current.title}...")
        self._run_preview(self.current, params, self.cancel_event)

    def action_apply(self) -> None:
        """Apply the preview on screen (only a preview of the current operation and parameters)."""
        pv = self.previewed
        if self.busy or pv is None or pv.op != self.current.key:
            self._status("preview first (p), then apply (a)")
            return
        try:
            changed = self.form().values() != pv.params
        except UserError:
            changed = True
        if changed:
            self._status("parameters changed since the preview: preview again (p)")
            return
        self._start(f"applying {self.current.title}...")
        self._run_apply(self.current, pv.state, pv.resolved, self.cancel_event)

    # Which form field the distribution view's threshold goes into, per operation.
    DISTRIBUTIONS: ClassVar[dict[str, tuple[str, str]]] = {"dedupe": ("dedupe", "threshold"),
                                                           "filter": ("confidence", "min")}  # fmt: skip

    def action_distribution(self) -> None:
        """Open the distribution of the highlighted operation (dedupe: similarity; filter: confidence), to choose
        its threshold by looking; the threshold chosen there fills the form."""
        got = self.DISTRIBUTIONS.get(self.current.key)
        if got is None:
            self._status("d shows a distribution for Dedupe (similarity) and Filter (confidence)")
            return
        if self.busy:
            self._status("busy: esc cancels the running work")
            return
        try:
            values = self.form().values()
        except UserError as exc:
            self._status(f"error: {exc}")
            return
        try:
            values = self.current.options.resolve(self.workspace, values)  # split, slicing as the preview has them
        except (UserError, ValueError) as exc:
            self._status(f"error: {exc}")
            return
        kind, name = got
        op = self.current.key
        if kind == "dedupe" and values.get("kind") != "semantic":
            self._status("the similarity distribution is for semantic dedupe: set kind to semantic")
            return

        def chosen(value: float | None) -> None:
            if value is None:
                return
            self.form(op).set_value(name, f"{value:g}")
            self._status(f"{name} set to {value:g} from the distribution: p previews it")

        from studio.screens.distribution import DistributionScreen

        self.app.push_screen(DistributionScreen(self.workspace, kind, values), chosen)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # With nothing running, esc is not ours: it falls through to the app (leave the parameters field).
        return bool(self.busy) if action == "cancel" else True

    def action_cancel(self) -> None:
        """Ask the running worker to stop (its transaction rolls back)."""
        if self.cancel_event is not None and self.busy:
            self.cancel_event.set()
            self._status("cancelling...")

    def _start(self, text: str) -> None:
        self.busy = True
        self.cancel_event = threading.Event()
        self.query_one("#cur-progress", ProgressBar).update(total=None, progress=0)
        self._status(text)

    def _progress_fn(self, cancel: threading.Event):
        last = [0.0]

        def progress(p: Progress) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1 or (p.total and p.done >= p.total):
                last[0] = now
                self.post_message(ProgressReported(p.stage, p.done, p.total))

        return progress

    # -- workers -------------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="curation")
    def _run_preview(self, op: Operation, params: dict[str, Any], cancel: threading.Event) -> None:
        try:
            resolved = op.options.resolve(self.workspace, params)  # the CLI runs the same workspace checks
            state, renderable = op.preview(self.workspace, resolved, self._progress_fn(cancel), cancel)
            self.post_message(PreviewComputed(op.key, state, renderable, params, resolved))
        except Cancelled:
            self.post_message(OperationFailed(op.key, "cancelled", cancelled=True))
        except (UserError, ValueError, KeyError) as exc:
            self.post_message(OperationFailed(op.key, str(exc), option=getattr(exc, "option", None)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="curation")
    def _run_apply(self, op: Operation, state: Any, resolved: dict[str, Any], cancel: threading.Event) -> None:
        try:
            if cancel.is_set():
                raise Cancelled()
            self.post_message(OperationApplied(op.key, op.apply(self.workspace, state, resolved)))
        except Cancelled:
            self.post_message(OperationFailed(op.key, "cancelled", cancelled=True))
        except (UserError, ValueError, KeyError) as exc:
            self.post_message(OperationFailed(op.key, str(exc), option=getattr(exc, "option", None)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="curation-versions")
    def _find_newest_version(self) -> None:
        from curation.datasets import list_versions

        vs = sorted(list_versions(self.workspace), key=lambda v: v.created_at, reverse=True)
        if vs:
            self.post_message(NewestVersionFound(vs[0].name))

    # -- results -------------------------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # An unexpected failure is reported by the app (LoudWorkers); the screen must not stay "busy".
        if event.state is WorkerState.ERROR and event.worker.group == "curation":
            self.busy = False
            self.query_one("#cur-progress", ProgressBar).update(total=1, progress=0)
            self._status("failed; nothing was changed (the error notification says why)")

    def on_progress_reported(self, m: ProgressReported) -> None:
        bar = self.query_one("#cur-progress", ProgressBar)
        bar.update(total=m.total or None, progress=m.done)
        self._status(f"{m.stage} {m.done:,.0f}" + (f"/{m.total:,.0f}" if m.total else "") + "  (esc cancels)")

    def on_preview_computed(self, m: PreviewComputed) -> None:
        self.busy = False
        self.previewed = m
        self.query_one("#cur-preview-body", Static).update(m.renderable)
        self.query_one("#cur-progress", ProgressBar).update(total=1, progress=1)
        self._status(f"preview of {self.ops[m.op].title} ready: a applies it")

    def on_operation_applied(self, m: OperationApplied) -> None:
        self.busy = False
        self.previewed = None
        self.query_one("#cur-progress", ProgressBar).update(total=1, progress=1)
        self._status(f"done: {m.summary}")
        self.notify(m.summary, title=self.ops[m.op].title)

    def on_newest_version_found(self, m: NewestVersionFound) -> None:
        form = self.form("export")
        if not form.raw("version"):
            form.set_value("version", m.name)

    def on_operation_failed(self, m: OperationFailed) -> None:
        self.busy = False
        if m.option is not None and m.option in self.form(m.op).options.names:
            self.form(m.op).show_error(m.option, m.error)
        self._status("cancelled; nothing was changed" if m.cancelled else f"error: {m.error}")
        if not m.cancelled:
            self.notify(m.error, title=self.ops[m.op].title, severity="error")
