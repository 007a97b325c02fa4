"""Evaluation: the per-slice table coloured against the quality bar, the lift over the untuned baseline, and a
disagreements browser (student and teacher side by side, differences highlighted). Also edits the bar, runs an
evaluation of the newest finished run (``e``: its options first, ``studio.screens.eval_form``), sends a failing slice
to curation's oversampling, and runs the next round (``n``: the round form, then the round in the round panel, which
shows the history and the stop signal).
"""

from __future__ import annotations

import difflib
import re
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from curation.errors import UserError
from curation.progress import Progress
from curation.workspace import Workspace
from studio.failures import LoudWorkers
from studio.screens.bar_editor import BarSaved, QualityBarScreen
from studio.screens.baselines import BaselinesFinished, BaselinesProgressed, BaselinesRunner
from studio.screens.eval_form import EvaluateForm
from studio.screens.evaluation_view import MACRO_KEY, SLICE_COLUMNS, num, slice_rows, summary_text
from studio.screens.rounds import RoundFinished, RoundPanel, RoundScreen
from studio.widgets.reliability_chart import ReliabilityChart
from train import evaluate as E
from train.bars import get_bar
from train.config import eval_kwargs
from train.store import latest_finished_run

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


def diff_texts(student: str, teacher: str) -> tuple[Text, Text]:
    """Both answers with the words that differ highlighted (red: only the student's, green: only the teacher's)."""
    a, b = _TOKEN.findall(student), _TOKEN.findall(teacher)
    left, right = Text(), Text()
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            left.append("".join(a[i1:i2]))
            right.append("".join(b[j1:j2]))
        else:
            left.append("".join(a[i1:i2]), style="bold white on dark_red")
            right.append("".join(b[j1:j2]), style="bold white on dark_green")
    return left, right


# What an empty screen says (it was blank, with no hint of how to fill it).
NO_EVALUATIONS = (
    "No evaluation yet. Set the quality bar first (b), run the baselines (l: does an untuned student or a cheaper "
    "model already meet it?), train a student on the Training screen (7), then press e to evaluate the newest "
    "finished run against the bar (or `distill eval RUN`)."
)


@dataclass
class EvaluationsLoaded(Message):
    evaluations: list[dict[str, Any]]


@dataclass
class EvaluationLoaded(Message):
    evaluation: dict[str, Any]
    baseline: dict[str, Any] | None
    heldout: dict[str, Any] | None = None  # a gold-set evaluation's held-out counterpart


@dataclass
class DisagreementsLoaded(Message):
    slice_name: str | None
    rows: list[dict[str, Any]]
    total: int


@dataclass
class EvaluationProgressed(Message):
    text: str


@dataclass
class EvaluationFinished(Message):
    error: str | None


class EvaluationScreen(BaselinesRunner, LoudWorkers, Screen[None]):
    """Per-slice verdicts against the bar, and the disagreements behind them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "evaluate", "Evaluate newest run", id="evaluation.evaluate"),
        Binding("l", "baselines", "Baselines (before training)", id="evaluation.baselines"),
        Binding("b", "edit_bar", "Quality bar", id="evaluation.bar"),
        Binding("o", "oversample", "Oversample slice", id="evaluation.oversample"),
        Binding("n", "next_round", "Next round", id="evaluation.round"),
        Binding("x", "cancel", "Cancel eval / round", id="evaluation.cancel"),
        Binding("r", "refresh", "Refresh", id="evaluation.refresh"),
    ]
    PAGE = 100

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.eval_id: int | None = None
        self.slice_name: str | None = None
        self._cancel: threading.Event | None = None
        self._rows: list[dict[str, Any]] = []
        self._evaluation: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="evaluation-body"):
            yield Static("", id="eval-status")
            with Horizontal(id="eval-top"):
                yield DataTable(id="evaluations", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="slices", cursor_type="row")
            with Horizontal(id="eval-middle"):
                with VerticalScroll(id="eval-summary-box"):
                    yield Static("", id="eval-summary")
                yield RoundPanel(self.workspace, id="rounds")
                yield ReliabilityChart(id="reliability")
            with Horizontal(id="eval-bottom"):
                yield DataTable(id="disagreements", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="eval-student"):
                    yield Static("", id="eval-student-text")
                with VerticalScroll(id="eval-teacher"):
                    yield Static("", id="eval-teacher-text")
        yield Footer()

    def on_mount(self) -> None:
        # verdict and score first: the list gets a quarter of 160 columns, which cut it after "kind" and "set"
        cols = {"evaluations": ("eval", "pass", "score", "run", "kind", "set", "model", "n", "gap"),
                "slices": SLICE_COLUMNS, "disagreements": ("slice", "record", "prompt")}  # fmt: skip
        for table_id, keys in cols.items():
            table = self.query_one(f"#{table_id}", DataTable)
            for key in keys:
                table.add_column(key, key=key)
        self.action_refresh()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    # -- actions ----------------------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self._load_evaluations()

    def action_edit_bar(self) -> None:
        self.app.push_screen(QualityBarScreen(self.workspace, get_bar(self.workspace)))

    def on_bar_saved(self, message: BarSaved) -> None:
        self.notify(f"quality bar #{message.bar_id} saved; new evaluations are judged against it")

    def action_evaluate(self) -> None:
        if self._cancel is not None:
            return
        run_id = latest_finished_run(self.workspace)
        if run_id is None:
            self.notify("no finished run to evaluate yet", severity="warning")
            return

        def start(values: dict[str, Any] | None) -> None:
            if values is not None and self._cancel is None:
                self._cancel = threading.Event()
                self._evaluate(int(run_id), values)

        self.app.push_screen(EvaluateForm(self.workspace, int(run_id)), start)

    def action_cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
        self.cancel_baselines()
        self.query_one(RoundPanel).cancel()

    def action_next_round(self) -> None:
        """The round form; started, the round runs in the round panel."""
        panel = self.query_one(RoundPanel)
        if panel.running:
            self.notify("a round is running (x cancels it)", severity="warning")
            return

        def start(values: dict[str, Any] | None) -> None:
            if values is not None:
                panel.start(values)

        self.app.push_screen(RoundScreen(self.workspace), start)

    def on_round_finished(self, message: RoundFinished) -> None:
        r = message.result
        if r is None or r.status != "done":
            self.notify(message.error or f"round {r.number if r else ''} {r.status if r else ''}".strip(),
                        severity="warning")  # fmt: skip
        self._load_evaluations()

    def action_oversample(self) -> None:
        if self.eval_id is None or self.slice_name is None:
            self.notify("select a slice first", severity="warning")
            return
        req = E.request_more_inputs(self.workspace, self.eval_id, self.slice_name, 50)
        self.notify(f"asked the teacher for 50 more inputs in {self.slice_name!r} (request {req})")

    # -- workers ----------------------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="evaluation-list", exit_on_error=False)
    def _load_evaluations(self) -> None:
        self.post_message(EvaluationsLoaded(E.list_evaluations(self.workspace)))

    @work(thread=True, exclusive=True, group="evaluation-detail", exit_on_error=False)
    def _load_evaluation(self, eval_id: int) -> None:
        base_id, held_id = E.baseline_for(self.workspace, eval_id), E.heldout_for(self.workspace, eval_id)
        base = E.get_evaluation(self.workspace, base_id) if base_id not in (None, eval_id) else None
        held = E.get_evaluation(self.workspace, held_id) if held_id is not None else None
        self.post_message(EvaluationLoaded(E.get_evaluation(self.workspace, eval_id), base, held))

    @work(thread=True, exclusive=True, group="evaluation-items", exit_on_error=False)
    def _load_disagreements(self, eval_id: int, slice_name: str | None) -> None:
        rows = E.disagreements(self.workspace, eval_id, slice_name=slice_name, limit=self.PAGE)
        self.post_message(DisagreementsLoaded(slice_name, rows, E.count_disagreements(self.workspace, eval_id,
                                                                                     slice_name)))  # fmt: skip

    @work(thread=True, exclusive=True, group="evaluation-run", exit_on_error=False)
    def _evaluate(self, run_id: int, values: dict[str, Any]) -> None:
        def progress(p: Progress) -> None:
            self.post_message(EvaluationProgressed(f"evaluating run {run_id}: {p.text()}"))

        try:
            E.evaluate_run(self.workspace, run_id, progress=progress, cancel=self._cancel, **eval_kwargs(values))
            self.post_message(EvaluationFinished(None))
        except UserError as exc:
            self.post_message(EvaluationFinished(str(exc)))
        except Exception as exc:  # Cancelled included: nothing was stored
            self.post_message(EvaluationFinished(f"{type(exc).__name__}: {exc}"))

    # -- messages ---------------------------------------------------------------------------------------------

    def on_evaluation_progressed(self, message: EvaluationProgressed) -> None:
        self.query_one("#eval-status", Static).update(message.text)

    def on_evaluation_finished(self, message: EvaluationFinished) -> None:
        self._cancel = None
        self.query_one("#eval-status", Static).update(message.error or "evaluation stored")
        if message.error:
            self.notify(message.error, severity="error")
        self._load_evaluations()

    def on_baselines_progressed(self, message: BaselinesProgressed) -> None:
        self.query_one("#eval-status", Static).update(message.text)

    def on_baselines_finished(self, message: BaselinesFinished) -> None:
        self.baselines_finished()
        self.query_one("#eval-status", Static).update(message.error or message.outcome or "")
        self.notify(message.error or message.outcome or "", severity="error" if message.error else "information")
        self._load_evaluations()

    def on_evaluations_loaded(self, message: EvaluationsLoaded) -> None:
        table = self.query_one("#evaluations", DataTable)
        table.clear()
        if not message.evaluations and self._cancel is None:
            self.query_one("#eval-status", Static).update(NO_EVALUATIONS)
        for e in message.evaluations:
            verdict = Text("PASS", style="green") if e["passed"] else Text("FAIL", style="red")
            table.add_row(e["eval_id"], verdict, num(e["score"]), e["run_id"] or "", e["kind"], e["eval_set"],
                          e["base_model"], e["n_items"], num(e["gap"]), key=str(e["eval_id"]))  # fmt: skip

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        if key is None:
            return
        if event.data_table.id == "evaluations":
            self.eval_id = int(key)
            self._load_evaluation(self.eval_id)
            self._load_disagreements(self.eval_id, None)
        elif event.data_table.id == "slices" and self.eval_id is not None:
            self.slice_name = None if key in ("(all)", MACRO_KEY) else key
            self._load_disagreements(self.eval_id, self.slice_name)
            self._show_reliability()
        elif event.data_table.id == "disagreements":
            self._show_item(int(key))

    def on_evaluation_loaded(self, message: EvaluationLoaded) -> None:
        self._evaluation = message.evaluation
        table = self.query_one("#slices", DataTable)
        table.clear()
        for key, cells in slice_rows(message.evaluation, message.baseline):
            table.add_row(*cells, key=key)
        self.query_one("#eval-summary", Static).update(summary_text(message.evaluation, message.heldout))
        self._show_reliability()

    def _show_reliability(self) -> None:
        """The reliability chart of the selected slice, or of every item."""
        ev = self._evaluation
        if ev is None:
            return
        s = next((x for x in ev["slices"] if x["slice"] == self.slice_name), None) or ev["overall"]
        self.query_one(ReliabilityChart).show(s.get("reliability") or [], s.get("ece"), self.slice_name or "all items")

    def on_disagreements_loaded(self, message: DisagreementsLoaded) -> None:
        self._rows = message.rows
        table = self.query_one("#disagreements", DataTable)
        table.clear()
        for i, r in enumerate(message.rows):
            where = r["record_id"] if r["record_id"] is not None else f"line {r['source_line']}"
            table.add_row(r["slice"], where, (r["prompt"] or "")[:60], key=str(i))
        shown = f"{len(message.rows)} of {message.total}" if message.total > len(message.rows) else str(message.total)
        table.border_title = f"disagreements: {shown}"
        if not message.rows:
            self.query_one("#eval-student-text", Static).update("")
            self.query_one("#eval-teacher-text", Static).update("")

    def _show_item(self, index: int) -> None:
        if index >= len(self._rows):
            return
        r = self._rows[index]
        left, right = diff_texts(r["student_output"] or "", r["teacher_output"] or "")
        head = Text(f"{r['prompt']}\n\n", style="dim")
        self.query_one("#eval-student-text", Static).update(Text.assemble(head, Text("student\n", "bold"), left))
        ref = Text(f"\n\nreference: {r['reference']}", style="italic") if r["reference"] else Text()
        self.query_one("#eval-teacher-text", Static).update(Text.assemble(Text("teacher\n", "bold"), right, ref))
