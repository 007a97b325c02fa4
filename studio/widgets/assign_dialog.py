"""The dialog that splits the review queue between reviewers: the fields of ``curation.team.ASSIGN`` (the same
declaration `distill review assign` takes its flags from), minus what the queue's filter already says."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from curation.errors import UserError
from curation.team import ASSIGN
from studio.widgets.option_form import OptionForm

FIELDS = ASSIGN.without("slices", "where")  # the records are the queue's: its filter says which


class AssignModal(ModalScreen[dict[str, Any] | None]):
    """Reviewers, mode, overlap, seed for the records of ``describe``; Enter assigns, Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="assign.cancel")]

    def __init__(self, describe: str, count: int) -> None:
        super().__init__()
        self.describe = describe
        self.count = count

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Split {self.count:,} record(s) ({self.describe}) between reviewers")
            yield OptionForm(FIELDS, prefix="assign", inline_help=False, id="assign-form")
            yield Label("enter assigns (replacing these records' earlier assignment) · esc cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one(OptionForm).focus_first()

    def on_option_form_submitted(self, message: OptionForm.Submitted) -> None:
        try:
            values = message.form.values()
        except UserError as exc:
            message.form.show_exception(exc)
            return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)
