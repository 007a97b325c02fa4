"""A dialog around one ``OptionForm``: run it (ctrl+s, Enter in a field, or the button whose id ends in ``-run``)
to dismiss with the typed values, a bad value marked on its field; close it (Esc, the other button) for None."""

from __future__ import annotations

from typing import Any

from textual.screen import ModalScreen
from textual.widgets import Button

from curation.errors import UserError
from studio.widgets.option_form import OptionForm


class FormDialog(ModalScreen[dict[str, Any] | None]):
    """Subclasses compose the form and two buttons (``*-run``, ``*-close``) and bind ctrl+s / escape to ``run`` /
    ``close`` (their binding ids name the dialog)."""

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_run() if (event.button.id or "").endswith("-run") else self.action_close()

    def on_option_form_submitted(self, event: OptionForm.Submitted) -> None:
        self.action_run()

    def action_run(self) -> None:
        form = self.query_one(OptionForm)
        try:
            values = form.values()
        except UserError as exc:
            form.show_exception(exc)
            self.notify(str(exc), severity="error")
            return
        self.dismiss(values)

    def action_close(self) -> None:
        self.dismiss(None)
