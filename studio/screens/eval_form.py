"""The evaluation screen's ``e``: ask how to evaluate the newest finished run before it starts, with the fields of
``train.config.EVAL`` (the flags of `distill eval`: limit, seed, tokens, batch, the untuned twin, label constraint).

``e`` used to start at once with every default: every held-out row for the tuned model and again for its untuned
base (2 x 567 answers on the sample: over an hour of a 2-core CPU, where 40 rows took ~4 minutes), with no way to
set a limit from the studio.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Static

from curation.workspace import Workspace
from studio.widgets.form_dialog import FormDialog
from studio.widgets.option_form import OptionForm
from train.config import EVAL


def run_hint(ws: Workspace, run_id: int) -> str:
    """What is evaluated and on how many held-out rows (to size the limit)."""
    found = ws.query_dicts(
        "SELECT r.base_model, r.dataset_version, v.n_heldout FROM runs r "
        "LEFT JOIN dataset_versions v ON v.name = r.dataset_version WHERE r.run_id = ?",
        [run_id],
    )
    if not found:
        return f"run {run_id}"
    row = found[0]
    rows = f"{row['n_heldout']:,} held-out rows" if row["n_heldout"] is not None else "its held-out rows"
    return (f"run {run_id} ({row['base_model']}, {row['dataset_version'] or 'a training file'}): each model answers "
            f"{rows} unless Limit says fewer; the untuned base model (Baseline) answers them again")  # fmt: skip


class EvaluateForm(FormDialog):
    """Evaluation options for one run; dismissed with the typed values (``eval_kwargs`` turns them into keywords)."""

    AUTO_FOCUS = "#ev-limit"  # the field a CPU user changes first
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "run", "Evaluate", id="evaluate_form.run"),
        Binding("escape", "close", "Close", id="evaluate_form.close"),
    ]

    def __init__(self, workspace: Workspace, run_id: int) -> None:
        super().__init__()
        self.workspace = workspace
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Static(f"Evaluate run {self.run_id} against the quality bar (ctrl+s starts, x cancels)",
                         classes="title")  # fmt: skip
            yield OptionForm(EVAL, prefix="ev", inline_help=False)
            yield Static(run_hint(self.workspace, self.run_id), id="ev-hint", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Evaluate", id="ev-run", variant="primary")
                yield Button("Close", id="ev-close")
