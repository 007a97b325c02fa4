"""Baselines from the studio, before any training: a form (which dataset version, the untuned student, few-shot k,
cheaper models as workspace teachers) and ``BaselinesRunner``, the evaluation screen's part that runs them in a
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
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from curation.errors import UserError
from curation.progress import Progress
from curation.workspace import Workspace
from studio.failures import LoudWorkers


@dataclass
class BaselineRequest:
    """What to run: ``ks`` empty = no few-shot; ``models`` = workspace teacher names."""

    version: str | None
    student: str
    zero_shot: bool = True
    ks: tuple[int, ...] = ()
    models: tuple[str, ...] = ()
    limit: int | None = None


def request_from_fields(values: dict[str, str], zero_shot: bool = True) -> BaselineRequest:
    """Parse the form; ``UserError`` names the field at fault."""
    from train.baselines import parse_ks

    ks = parse_ks(values["bl-k"]) if values.get("bl-k", "").strip() else ()
    models = tuple(m.strip() for m in values.get("bl-models", "").split(",") if m.strip())
    limit_text = values.get("bl-limit", "").strip()
    try:
        limit = int(limit_text) if limit_text else None
    except ValueError:
        raise UserError(f"held-out rows: {limit_text!r} is not a whole number") from None
    if limit is not None and limit < 1:
        raise UserError("held-out rows: give at least 1, or leave it empty for all")
    student = values.get("bl-student", "").strip() or "smollm2"
    return BaselineRequest(values.get("bl-version", "").strip() or None, student, zero_shot, ks, models, limit)


class BaselineForm(ModalScreen[BaselineRequest | None]):
    """Ask for the baselines to run."""

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
        from train.baselines import DEFAULT_K, K_CHOICES

        version = self.workspace.scalar("SELECT name FROM dataset_versions ORDER BY created_at DESC, name LIMIT 1")
        teachers = ", ".join(t.name for t in list_teachers(self.workspace)) or "(none; add one on the teacher screen)"
        fields = [
            ("bl-version", "Dataset version (its held-out split)", version or ""),
            ("bl-student", "Untuned student", "smollm2"),
            ("bl-k", f"Few-shot k, or several to compare ({','.join(map(str, K_CHOICES))}); empty = none",
             str(DEFAULT_K)),
            ("bl-models", f"Cheaper models: workspace teachers, comma-separated (known: {teachers})", ""),
            ("bl-limit", "Held-out rows (empty = all; a limit is spread over slices)", ""),
        ]  # fmt: skip
        with VerticalScroll(classes="dialog"):
            yield Static("Baselines before training: does an untuned student or a cheaper model already meet the bar?",
                         classes="title")  # fmt: skip
            for fid, label, value in fields:
                yield Label(label)
                yield Input(value=value, id=fid)
                if fid == "bl-student":
                    yield Checkbox("Zero-shot", value=True, id="bl-zero")
            with Horizontal(classes="buttons"):
                yield Button("Run", id="bl-run", variant="primary")
                yield Button("Close", id="bl-close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_run() if event.button.id == "bl-run" else self.action_close()

    def action_run(self) -> None:
        values = {i.id or "": i.value for i in self.query(Input)}
        try:
            req = request_from_fields(values, self.query_one("#bl-zero", Checkbox).value)
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        self.dismiss(req)

    def action_close(self) -> None:
        self.dismiss(None)


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

    def _start_baselines(self, req: BaselineRequest | None) -> None:
        if req is not None and self._baselines_cancel is None:
            self._baselines_cancel = threading.Event()
            self._run_baselines(req, self._baselines_cancel)

    @work(thread=True, exclusive=True, group="baselines", exit_on_error=False)
    def _run_baselines(self, req: BaselineRequest, cancel: threading.Event) -> None:
        from train.baselines import run_baselines

        def progress(p: Progress) -> None:
            frac = f" {p.fraction * 100:.0f}%" if p.fraction is not None else ""
            self.post_message(BaselinesProgressed(f"baselines: {p.stage}{frac}"))  # type: ignore[attr-defined]

        post: Any = self.post_message  # type: ignore[attr-defined]
        try:
            rep = run_baselines(self.workspace, req.version, student=req.student, zero_shot=req.zero_shot, ks=req.ks,
                                models=req.models, limit=req.limit, progress=progress, cancel=cancel)  # fmt: skip
            post(BaselinesFinished(None, rep.message))
        except UserError as exc:
            post(BaselinesFinished(str(exc)))
        except Exception as exc:  # Cancelled included: the baselines that finished are stored
            post(BaselinesFinished(f"{type(exc).__name__}: {exc}"))

    def baselines_finished(self) -> None:
        """Call from the screen's ``on_baselines_finished``: another run may start."""
        self._baselines_cancel = None
