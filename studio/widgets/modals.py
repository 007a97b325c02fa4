"""Small modal dialogs: confirm, one-line prompt, multi-line editor, a failure's traceback. Each dismisses with its
answer."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static, TextArea

from studio.failures import Failure


class ConfirmModal(ModalScreen[bool]):
    """Yes / no. ``y`` or Enter confirms, ``n`` or Escape declines."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, id="question")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", variant="primary", id="yes")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class PromptModal(ModalScreen[str | None]):
    """One line of text (a reject reason, a slice name). Enter submits, Escape cancels.

    An empty answer keeps the dialog open with a hint: dismissing it silently would look like the action was taken
    (a reviewer pressing r then Enter would believe the record rejected)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]
    HINT = "enter confirms · esc cancels"

    def __init__(self, title: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text)
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")
            yield Label(self.HINT, id="prompt-hint", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            self.query_one("#prompt-hint", Label).update("[b]type something first[/b] · esc cancels")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class EditModal(ModalScreen[str | None]):
    """Edit a response in a text area. Ctrl+S saves, Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="edit.save"),
        Binding("escape", "cancel", "Cancel", id="edit.cancel"),
    ]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog editor"):
            yield Label(f"{self.title_text}  (ctrl+s save · esc cancel)")
            yield TextArea(self.text, language=None, id="edit-area", soft_wrap=True)

    def on_mount(self) -> None:
        area = self.query_one(TextArea)
        area.cursor_blink = False
        area.focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TracebackModal(ModalScreen[None]):
    """The traceback of a failed worker (the app's ``show_error``), already scrubbed of API keys."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close", id="traceback.close")]

    def __init__(self, failure: Failure) -> None:
        super().__init__()
        self.failure = failure

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog traceback"):
            yield Label(Text(self.failure.message, style="bold red"), id="traceback-message")
            with VerticalScroll():
                yield Static(Text(self.failure.traceback or ""), id="traceback-text")
            yield Label("esc closes", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)


class LabelModal(PromptModal):
    """A label from a fixed set (a slice, a reject reason), completed as it is typed (→ accepts the
    suggestion). A label outside the set asks for a confirmation first: a typo (``secruity``) would otherwise make a
    new slice in every chart."""

    HINT = "enter confirms · → completes · esc cancels"

    def __init__(self, title: str, choices: list[str], value: str = "", placeholder: str = "") -> None:
        super().__init__(title, value, placeholder)
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text)
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input",
                        suggester=SuggestFromList(self.choices, case_sensitive=False))  # fmt: skip
            shown = ", ".join(self.choices[:12]) + (f" … ({len(self.choices)})" if len(self.choices) > 12 else "")
            yield Label(Text(f"known: {shown}" if self.choices else "no labels yet"), id="prompt-known", classes="hint")
            yield Label(self.HINT, id="prompt-hint", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.prevent_default()  # PromptModal's handler would dismiss with the raw text
        value = event.value.strip()
        if not value:
            self.query_one("#prompt-hint", Label).update("[b]type something first[/b] · esc cancels")
            return
        known = {c.casefold(): c for c in self.choices}
        if value.casefold() in known:
            self.dismiss(known[value.casefold()])
            return
        question = f"{value!r} is a new label (not one of the {len(self.choices)} known). Use it?"

        def answered(ok: bool | None) -> None:
            if ok:
                self.dismiss(value)  # not returned: the callback's caller would await it from this screen

        self.app.push_screen(ConfirmModal(question), answered)
