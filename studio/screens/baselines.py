"""Baselines from the studio, before any training: a form built from the declared options (``train.baselines.BASELINE``
and the evaluation's limit and seed: the same fields, defaults and messages as `distill baseline`) and ``BaselinesRunner``, the evaluation screen's part that runs them in a
thread worker (``train.baselines.run_baselines``) and posts ``BaselinesProgressed``/``BaselinesFinished``; the
evaluations it stores show in the screen's list like any other."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Static

from curation.errors import UserError
from curation.options import OptionSet, omit
from curation.progress import Progress
from curation.workspace import Workspace
from studio.failures import LoudWorkers
from studio.widgets.form_dialog import FormDialog
from studio.widgets.option_form import OptionForm
from train.baselines import BASELINE, BASELINE_EVAL, baseline_eval_kwargs

FORM = OptionSet("baselines", (*BASELINE, *BASELINE_EVAL.only("limit", "seed")))  # the form's fields


class BaselineForm(FormDialog):
    """Ask for the baselines to run; dismissed with the typed values (the workspace checks run in the worker)."""

    AUTO_FOCUS = "#bl-version"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "run", "Run baselines", id="baselines.run"),
        Binding("escape", "close", "Close", id="baselines.close"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace

    def compose(self) -> ComposeResult:
        from curation.teacher.config import list_teachers

        version = self.workspace.scalar("SELECT name FROM dataset_versions ORDER BY created_at DESC, name LIMIT 1")
        teachers = ", ".join(t.name for t in list_teachers(self.workspace)) or "(none; add one on the teacher screen)"
        with VerticalScroll(classes="dialog"):
            yield Static("Baselines before training: does an untuned student or a cheaper model already meet the bar?",
                         classes="title")  # fmt: skip
            yield OptionForm(FORM, prefix="bl", values={"version": version or ""}, inline_help=False)
            yield Static(f"teachers: {teachers}", id="bl-teachers", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Run", id="bl-run", variant="primary")
                yield Button("Close", id="bl-close")


@dataclass
class BaselinesProgressed(Message):
    text: str


@dataclass
class BaselinesFinished(Message):
    error: str | None
    outcome: str | None = None  # what the baselines mean (``BaselineReport.message``), when they ran


class BaselinesRunner(LoudWorkers):
    """Mixed into a screen with a ``workspace``: ``action_baselines`` asks with the form, then runs the baselines in a
    thread worker; ``cancel_baselines`` stops them (evaluations already stored stay)."""

    workspace: Workspace
    _baselines_cancel: threading.Event | None = None

    def action_baselines(self) -> None:
        """Ask which baselines to run (untuned student zero-/few-shot, cheaper models), then run them."""
        if self._baselines_cancel is None:
            self.app.push_screen(BaselineForm(self.workspace), self._start_baselines)  # type: ignore[attr-defined]

    def cancel_baselines(self) -> bool:
        """Stop running baselines; False when none run."""
        if self._baselines_cancel is None:
            return False
        self._baselines_cancel.set()
        return True

    def _start_baselines(self, values: dict[str, Any] | None) -> None:
        if values is not None and self._baselines_cancel is None:
            self._baselines_cancel = threading.Event()
            self._run_baselines(values, self._baselines_cancel)

    @work(thread=True, exclusive=True, group="baselines", exit_on_error=False)
    def _run_baselines(self, values: dict[str, Any], cancel: threading.Event) -> None:
        from train.baselines import run_baselines

        current = [""]  # the baseline running: its own stages ("load model", "generate") do not name it

        def progress(p: Progress) -> None:
            if p.stage.startswith("baseline "):
                current[0] = p.stage.removeprefix("baseline ")
            head = f"baselines ({current[0]})" if current[0] else "baselines"
            self.post_message(BaselinesProgressed(f"{head}: {p.text()}"))  # type: ignore[attr-defined]

        post: Any = self.post_message  # type: ignore[attr-defined]
        try:
            v = BASELINE.resolve(self.workspace, {k: v for k, v in values.items() if k in BASELINE.names})
            kw = baseline_eval_kwargs({**BASELINE_EVAL.parse({}), **omit(values, *BASELINE.names)})
            rep = run_baselines(self.workspace, progress=progress, cancel=cancel, **v, **kw)
            post(BaselinesFinished(None, rep.message))
        except UserError as exc:
            post(BaselinesFinished(str(exc)))
        except Exception as exc:  # Cancelled included: the baselines that finished are stored
            post(BaselinesFinished(f"{type(exc).__name__}: {exc}"))

    def baselines_finished(self) -> None:
        """Call from the screen's ``on_baselines_finished``: another run may start."""
        self._baselines_cancel = None
