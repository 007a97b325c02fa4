"""Training: launch a LoRA run (data, base model, hyperparameters), watch its loss live, cancel, resume.

The hyperparameter fields are generated from ``train.config.TRAIN`` (the declaration `distill train`'s flags come
from), with its defaults filled in; several base models (comma-separated) train as a run group.

The run itself is a subprocess (``train.launcher``); a thread worker here reads its events and posts them as
messages, so the event loop only draws. The runs list pages the newest runs from the workspace.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static
from textual_plotext import PlotextPlot

from curation.errors import UserError
from curation.workspace import Workspace
from studio.failures import LoudWorkers
from studio.widgets.option_form import OptionForm
from train import events as ev
from train import store
from train.config import TRAIN, RunConfig, config_from_options
from train.launcher import RunResult, execute_run, run_training


@dataclass
class RunEventReceived(Message):
    """An event of the running worker (``train.events``)."""

    run_id: int | None
    event: ev.Event


@dataclass
class RunFinished(Message):
    result: RunResult | None
    error: str | None = None


@dataclass
class RunsLoaded(Message):
    runs: list[dict[str, Any]]


@dataclass
class VersionsLoaded(Message):
    """Curation's dataset versions, newest first: (name, train rows, held-out rows)."""

    versions: list[tuple[str, int, int]]


@dataclass
class CurveLoaded(Message):
    run_id: int
    metrics: list[ev.Event]


class LossCurve(PlotextPlot):
    """Training loss per step and held-out loss per evaluation."""

    def on_mount(self) -> None:
        self.train_pts: list[tuple[int, float]] = []
        self.eval_pts: list[tuple[int, float]] = []
        self.title = "loss"
        self.redraw()

    def set_events(self, events: list[ev.Event], title: str) -> None:
        """Replace the curve with these events' points (a stored run's metric stream, or [] to clear it)."""
        self.train_pts, self.eval_pts, self.title = [], [], title
        for event in events:
            self._add(event)
        self.redraw()

    def add_event(self, event: ev.Event) -> None:
        if self._add(event):
            self.redraw()

    def _add(self, event: ev.Event) -> bool:
        if isinstance(event, ev.StepLogged):
            self.train_pts.append((event.step, event.loss))
        elif isinstance(event, ev.EvalLogged):
            self.eval_pts.append((event.step, event.eval_loss))
        else:
            return False
        return True

    def redraw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.title(self.title)
        plt.xlabel("step")
        if self.train_pts:
            plt.plot([s for s, _ in self.train_pts], [v for _, v in self.train_pts], label="train")
        if self.eval_pts:
            plt.plot([s for s, _ in self.eval_pts], [v for _, v in self.eval_pts], label="held-out", marker="dot")
        self.refresh()


class TrainingScreen(LoudWorkers, Screen[None]):
    """Launch, watch and cancel training runs."""

    AUTO_FOCUS = "#runs"  # not the dataset field: digits typed there instead of switching screens (tab reaches it)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "start", "Start run", id="training.start"),
        # esc, not ctrl+x/ctrl+u: the form's Inputs take those (cut, delete line) first
        Binding("escape", "cancel_run", "Cancel run", id="training.cancel"),
        Binding("ctrl+o", "resume", "Resume selected", id="training.resume"),
        Binding("ctrl+r", "refresh", "Refresh", id="training.refresh"),
    ]

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self._cancel: threading.Event | None = None
        self._live_run: int | None = None
        self._n_heldout: int | None = None  # the running run's held-out rows (its held-out loss goes over them)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="training-body"):
            with Vertical(id="training-form"):
                yield Label("Dataset version or training file")
                yield Input(placeholder="v3  or  /path/train.parquet", id="train-data")
                yield Static("", id="train-versions", classes="hint")
                yield OptionForm(TRAIN, prefix="train", inline_help=False, id="train-options")
                yield Button("Start", id="train-start", variant="primary")
                yield Button("Cancel", id="train-cancel", variant="error", disabled=True)
                yield Static("", id="train-status")
            with Vertical(id="training-main"):
                yield LossCurve(id="loss-curve")
                yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        for key in ("run", "group", "model", "dataset", "status", "steps", "best loss", "eval score"):
            table.add_column(key, key=key)
        self.action_refresh()
        self._load_versions()

    def on_unmount(self) -> None:
        # A thread worker blocked on the subprocess would keep the app alive after quitting (textual#3966).
        if self._cancel is not None:
            self._cancel.set()

    # -- actions ----------------------------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "train-start":
            self.action_start()
        elif event.button.id == "train-cancel":
            self.action_cancel_run()

    def action_refresh(self) -> None:
        self._load_runs()

    def action_start(self) -> None:
        if self._cancel is not None:
            self.notify("a run is already going; cancel it first", severity="warning")
            return
        try:
            cfg, models, version, data = self._form()
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        self._begin()
        self._train(cfg, models, version, data)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # With no run going, esc is not ours: it falls through to the app (leave a text field).
        return self._cancel is not None if action == "cancel_run" else True

    def action_cancel_run(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self._status("cancelling…")

    def action_resume(self) -> None:
        table = self.query_one("#runs", DataTable)
        if self._cancel is not None or table.row_count == 0:
            return
        run_id = int(table.get_row_at(table.cursor_row)[0])
        self._begin()
        self._resume(run_id)

    def _form(self) -> tuple[RunConfig, list[str], str | None, str | None]:
        src = self.query_one("#train-data", Input).value.strip()
        if not src:
            raise UserError("give a dataset version or a training file")
        cfg, models = config_from_options(self.query_one("#train-options", OptionForm).values())
        return (cfg, models, None, src) if Path(src).expanduser().exists() else (cfg, models, src, None)

    def _begin(self) -> None:
        self._cancel = threading.Event()
        self._live_run = None
        self.query_one("#train-cancel", Button).disabled = False
        self.query_one("#train-start", Button).disabled = True
        self.query_one(LossCurve).set_events([], "loss (starting…)")
        self._status("loading the student…")

    def _status(self, text: str) -> None:
        self.query_one("#train-status", Static).update(text)

    # -- workers ----------------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="training-run", exit_on_error=False)
    def _train(self, cfg: RunConfig, models: list[str], version: str | None, data: str | None) -> None:
        try:
            if len(models) > 1:  # a run group: one run per base model, one after the other
                from train.groups import train_group

                runs = train_group(self.workspace, models, cfg, dataset_version=version, data=data,
                                   cancel=self._cancel,
                                   on_event=lambda e: self.post_message(RunEventReceived(None, e))).runs  # fmt: skip
                self.post_message(RunFinished(runs[-1]))
                return
            res = run_training(self.workspace, cfg, dataset_version=version, data=data, cancel=self._cancel,
                               on_event=lambda e: self.post_message(RunEventReceived(None, e)))  # fmt: skip
            self.post_message(RunFinished(res))
        except Exception as exc:  # shown to the user; the run row already says failed
            self.post_message(RunFinished(None, str(exc)))

    @work(thread=True, exclusive=True, group="training-run", exit_on_error=False)
    def _resume(self, run_id: int) -> None:
        try:
            res = execute_run(self.workspace, run_id, cancel=self._cancel,
                              on_event=lambda e: self.post_message(RunEventReceived(run_id, e)))  # fmt: skip
            self.post_message(RunFinished(res))
        except Exception as exc:
            self.post_message(RunFinished(None, str(exc)))

    @work(thread=True, exclusive=True, group="training-list", exit_on_error=False)
    def _load_runs(self) -> None:
        self.post_message(RunsLoaded(store.list_runs(self.workspace)))

    @work(thread=True, exclusive=True, group="training-versions", exit_on_error=False)
    def _load_versions(self) -> None:
        from curation.datasets import list_versions

        vs = sorted(list_versions(self.workspace), key=lambda v: v.created_at, reverse=True)
        self.post_message(VersionsLoaded([(v.name, v.n_train, v.n_heldout) for v in vs]))

    def on_versions_loaded(self, message: VersionsLoaded) -> None:
        vs = message.versions
        hint = ", ".join(f"{n} ({t} train / {h} held-out)" for n, t, h in vs[:6]) if vs else "none yet (curation)"
        self.query_one("#train-versions", Static).update(f"dataset versions: {hint}")
        data = self.query_one("#train-data", Input)
        if vs and not data.value:
            data.value = vs[0][0]  # the newest version: the usual thing to train on

    @work(thread=True, exclusive=True, group="training-curve", exit_on_error=False)
    def _load_curve(self, run_id: int) -> None:
        self.post_message(CurveLoaded(run_id, store.metric_events(self.workspace, run_id)))

    # -- messages ---------------------------------------------------------------------------------------------

    def on_run_event_received(self, message: RunEventReceived) -> None:
        e = message.event
        curve = self.query_one(LossCurve)
        curve.add_event(e)
        match e:
            case ev.TrainingStarted():
                self._n_heldout = e.n_heldout
                self._load_runs()
                soft = f", {e.n_soft} with soft labels" if e.n_soft is not None else ""
                curve.title = f"loss ({Path(e.model_path).name}, {e.n_train} examples{soft}, {e.total_steps} steps)"
            case ev.RunResumed():
                self._load_curve(message.run_id or 0)
            case ev.StepLogged():
                self._status(f"step {e.step}/{e.total_steps or '?'}  loss {e.loss:.3f}\n"
                             f"{e.tokens_per_s:.0f} tok/s  eta {e.eta_s:.0f} s")  # fmt: skip
            case ev.PhaseStarted(phase="eval"):  # "eval…" alone sat for minutes on the sample's 567 rows (CPU)
                rows = f" over {self._n_heldout:,} held-out rows" if self._n_heldout is not None else ""
                self._status(f"held-out loss at step {e.step}{rows}…")
            case ev.PhaseStarted():
                self._status(f"{e.phase}…")
            case ev.RunFailed():
                self._status(f"error: {e.message}")
            case ev.MalformedEvent():
                self._status(f"unreadable worker output: {e.reason}")

    def on_run_finished(self, message: RunFinished) -> None:
        self._cancel = None
        self.query_one("#train-cancel", Button).disabled = True
        self.query_one("#train-start", Button).disabled = False
        r = message.result
        if r is None:
            self._status(f"failed: {message.error}")
            self.notify(message.error or "training failed", severity="error")
        elif r.status == "done":
            self._status(f"run {r.run_id} done: best step {r.best_step}, held-out loss {r.best_eval_loss or 0:.3f}")
            self.notify(f"run {r.run_id} finished; evaluate it on the evaluation screen")
        else:
            self._status(f"run {r.run_id} {r.status} at step {r.steps_done}" + (f": {r.error}" if r.error else ""))
        self._load_runs()

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        table = self.query_one("#runs", DataTable)
        table.clear()
        for r in message.runs:
            table.add_row(r["run_id"], r["group_id"] or "", r["base_model"], r["dataset_version"] or "file",
                          r["status"], r["steps_done"] or 0, _num(r["best_eval_loss"]), _num(r["eval_score"]),
                          key=str(r["run_id"]))  # fmt: skip

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self._cancel is None and event.row_key.value is not None:
            self._load_curve(int(event.row_key.value))

    def on_curve_loaded(self, message: CurveLoaded) -> None:
        self.query_one(LossCurve).set_events(message.metrics, f"loss (run {message.run_id})")


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"
