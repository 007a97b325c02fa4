"""Rounds on the evaluation screen: the round form (a modal built from ``train.rounds.options.ROUND``, with the
plan and its estimated teacher cost previewed before anything runs) and the round panel (the history with each
slice's interval per round, the stop signal, and the round running in a worker: progress per step, cancel).

The worker calls ``train.rounds.run.next_round``, the function `distill round next` calls; a round stopped by a
cancel, its budget or a failure is continued by starting it again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from curation.errors import UserError
from curation.progress import Progress
from curation.workspace import Workspace
from studio.failures import LoudWorkers
from studio.widgets.option_form import OptionForm
from train.rounds.history import RoundHistory, round_history
from train.rounds.options import ROUND
from train.rounds.run import RoundResult, StepEvent, next_round, nothing_to_do, pending
from train.rounds.store import get_steps
from train.rounds.text import PLAN_HEADERS, chart_lines, history_rows, plan_head, plan_lines, plan_rows, verdict_lines


def plan_text(ws: Workspace, values: dict[str, Any]) -> str:
    """The plan of the round `round next` would run with ``values`` (resolved here), as the CLI's --dry-run shows."""
    v = ROUND.resolve(ws, values)
    plan, rnd = pending(ws, v)
    why = nothing_to_do(plan) if rnd is None else None
    if why is not None:
        return why
    steps = get_steps(ws, int(rnd["round_id"])) if rnd is not None else {}
    cells = [[str(c) for c in PLAN_HEADERS]] + [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in r]
                                                for r in plan_rows(plan)]  # fmt: skip
    widths = [max(len(r[i]) for r in cells) for i in range(len(PLAN_HEADERS))]
    rows = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in cells]  # fmt: skip
    return "\n".join([plan_head(plan, rnd), *rows, *plan_lines(plan, steps)])


@dataclass
class PlanShown(Message):
    text: str


class RoundScreen(LoudWorkers, ModalScreen[dict[str, Any] | None]):
    """The round's options and its plan; ctrl+s starts it (dismisses with the typed values), esc closes."""

    AUTO_FOCUS = "#round-n"  # nothing had focus: "10" typed on opening went nowhere (new inputs is what one changes)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "start", "Start round", id="round.start"),
        Binding("ctrl+p", "preview", "Preview plan", id="round.preview"),
        Binding("escape", "close", "Close", id="round.close"),
    ]
    DEFAULT_CSS = """
    RoundScreen #round-box { width: 90%; height: 90%; border: round $accent; padding: 0 1; background: $surface; }
    RoundScreen #round-plan { height: auto; margin: 1 0; }
    """

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="round-box"):
            yield Static("Next round: new inputs where the student fails, retrain, evaluate", classes="title")
            yield OptionForm(ROUND, prefix="round", inline_help=False)
            yield Static("planning ...", id="round-plan")
            with Horizontal():
                yield Button("Start (ctrl+s)", id="round-start", variant="primary")
                yield Button("Preview (ctrl+p)", id="round-preview")
                yield Button("Close", id="round-close")

    def on_mount(self) -> None:
        self.action_preview()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"round-start": self.action_start, "round-preview": self.action_preview}.get(
            event.button.id or "", self.action_close
        )()

    @on(OptionForm.Submitted)
    def _submitted(self) -> None:
        self.action_preview()

    def _values(self) -> dict[str, Any] | None:
        try:
            return self.query_one(OptionForm).values()
        except UserError as exc:
            self.query_one("#round-plan", Static).update(Text(str(exc), style="red"))
            return None

    def action_preview(self) -> None:
        values = self._values()
        if values is not None:
            self._plan(values)

    @work(thread=True, exclusive=True, group="round-plan", exit_on_error=False)
    def _plan(self, values: dict[str, Any]) -> None:
        try:
            text = plan_text(self.workspace, values)
        except UserError as exc:
            text = f"cannot plan a round: {exc}"
        self.post_message(PlanShown(text))

    def on_plan_shown(self, message: PlanShown) -> None:
        self.query_one("#round-plan", Static).update(Text(message.text))

    def action_start(self) -> None:
        values = self._values()
        if values is not None:
            self.dismiss(values)

    def action_close(self) -> None:
        self.dismiss(None)


@dataclass
class HistoryLoaded(Message):
    history: RoundHistory


@dataclass
class RoundProgressed(Message):
    text: str


@dataclass
class RoundStepped(Message):
    event: StepEvent


@dataclass
class RoundFinished(Message):
    """A round ended (its result), or could not run (an error); bubbles to the screen, which reloads."""

    result: RoundResult | None
    error: str | None = None


class RoundPanel(LoudWorkers, VerticalScroll):
    """The round history (each slice's 95% interval per round on a 0..1 axis), the stop signal, and a running
    round's step and progress."""

    DEFAULT_CSS = """
    RoundPanel { width: 1fr; padding: 0 1; }
    RoundPanel #round-status { color: $accent; }
    """

    def __init__(self, workspace: Workspace, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.workspace = workspace
        self.cancel_event: threading.Event | None = None
        self.history: RoundHistory | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="round-status")
        yield Static("", id="round-history")

    def on_mount(self) -> None:
        self.border_title = "rounds"
        self.reload()

    @property
    def running(self) -> bool:
        return self.cancel_event is not None

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="round-history", exit_on_error=False)
    def _load(self) -> None:
        self.post_message(HistoryLoaded(round_history(self.workspace)))

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        self.history = message.history
        self._show(message.history)

    def on_resize(self) -> None:
        if self.history is not None:  # the chart's width follows the panel's (0 before the first layout)
            self._show(self.history)

    def _show(self, h: RoundHistory) -> None:
        if not h.entries:
            text = Text("no rounds yet: n plans the next one from the newest evaluation", style="dim")
        else:
            text = Text()
            *setback, stop = verdict_lines(h)
            for line in setback:
                text.append(line + "\n", style="bold red")
            text.append(stop + "\n", style="bold yellow" if h.stop is not None else "dim")
            for r in history_rows(h):
                usd = f" ${r[7]}" if r[7] else ""
                change = f" ({r[5]})" if r[5] else ""
                score = "-" if r[4] is None else f"{r[4]:.3f}"
                text.append(f"round {r[0]} {r[1]} eval {r[2] or '-'} {r[3] or ''}: {score}{change}"
                            f"{' +' + str(r[6]) + ' records' if r[6] else ''}{usd}\n")  # fmt: skip
            width = max(12, min(40, self.size.width - 30))
            text.append("\n".join(chart_lines(h, width)), style="")
        self.query_one("#round-history", Static).update(text)

    def start(self, values: dict[str, Any]) -> bool:
        """Run (or continue) a round in a worker; False when one is running already."""
        if self.running:
            return False
        self.cancel_event = threading.Event()
        self.query_one("#round-status", Static).update("starting the round ...")
        self._run(values, self.cancel_event)
        return True

    def cancel(self) -> bool:
        """Ask the running round to stop (it stops within its current step); False when none runs."""
        if self.cancel_event is None:
            return False
        self.cancel_event.set()
        self.query_one("#round-status", Static).update("cancelling the round ...")
        return True

    @work(thread=True, exclusive=True, group="round-run", exit_on_error=False)
    def _run(self, values: dict[str, Any], cancel: threading.Event) -> None:
        last = [0.0]

        def progress(p: Progress) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.25:  # batched by time, as the other screens do
                last[0] = now
                self.post_message(RoundProgressed(p.text()))

        try:
            v = ROUND.resolve(self.workspace, values)
            res = next_round(self.workspace, v, progress=progress, cancel=cancel,
                             on_step=lambda e: self.post_message(RoundStepped(e)))  # fmt: skip
        except UserError as exc:
            self.post_message(RoundFinished(None, str(exc)))
            return
        self.post_message(RoundFinished(res))

    def on_round_progressed(self, message: RoundProgressed) -> None:
        self.query_one("#round-status", Static).update(message.text)

    def on_round_stepped(self, message: RoundStepped) -> None:
        self.query_one("#round-status", Static).update(message.event.text())
        if message.event.status not in ("started", "skipped"):
            self.reload()

    def on_round_finished(self, message: RoundFinished) -> None:
        self.cancel_event = None
        r = message.result
        if r is None:
            text = Text(f"round not run: {message.error}", style="red")
        elif r.status == "done":
            text = Text(f"round {r.number} done: version {r.version} (+{r.n_added}), run {r.run_id}, evaluation "
                        f"{r.eval_id}; teacher ${r.cost.cost_usd:.4f} over {r.cost.requests} requests", style="green")  # fmt: skip
        else:
            where = f" at {r.steps[-1].step}" if r.steps else ""
            text = Text(f"round {r.number} {r.status}{where}{': ' + r.error if r.error else ''}; n continues it",
                        style="yellow")  # fmt: skip
        self.query_one("#round-status", Static).update(text)
        self.reload()
