"""A form generated from an operation's option declarations (``curation.options.OptionSet``).

One row per option: its label, a field of its type (Input for text and numbers, Select for choices, Checkbox for
flags) with the declared default filled in, and its help (beside the field, or under the form for the focused field
when the form is narrow). Every change is parsed with the option's own ``parse``, so the error shown next to a field
is the message the CLI prints for the same value. ``values()`` returns the typed values (or raises the first error);
the workspace checks (``OptionSet.resolve``) run in the screen's worker, and ``show_error`` marks their field.

Keys: Tab / shift+Tab move between fields, Enter in a text field posts ``OptionForm.Submitted``, esc leaves a
Select or a Checkbox (text fields leave through the app's esc).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static

from curation.errors import UserError
from curation.options import Option, OptionError, OptionSet


class OptionForm(Vertical, can_focus=False):
    """Labelled, validated fields for every option of ``options``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave_field", "Leave field", show=False, id="option_form.leave"),
    ]
    DEFAULT_CSS = """
    OptionForm { height: auto; }
    OptionForm .opt-row { height: auto; }
    OptionForm .opt-label { width: 22; padding: 0 1 0 0; }
    OptionForm.-narrow .opt-label { width: 16; }
    OptionForm .opt-field { width: 34; }
    OptionForm.-narrow .opt-field { width: 1fr; }
    OptionForm Checkbox.opt-field { border: none; padding: 0; height: 1; }
    OptionForm .opt-help { width: 1fr; color: $text-muted; padding: 0 0 0 1; }
    OptionForm .opt-error { color: $error; height: auto; display: none; }
    OptionForm .opt-error.-shown { display: block; }
    OptionForm #opt-focus-help { color: $text-muted; height: auto; }
    """

    @dataclass
    class Submitted(Message):
        """Enter was pressed in one of the form's text fields."""

        form: OptionForm

        @property
        def control(self) -> OptionForm:
            return self.form

    def __init__(
        self,
        options: OptionSet,
        *,
        prefix: str,
        values: Mapping[str, Any] | None = None,
        choices: Mapping[str, Iterable[str]] | None = None,
        inline_help: bool = True,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.options = options
        self.prefix = prefix
        self.inline_help = inline_help
        self._initial = {o.name: o.default for o in options} | dict(values or {})
        self._choices = {k: list(v) for k, v in (choices or {}).items()}
        if not inline_help:
            self.add_class("-narrow")

    # -- building ----------------------------------------------------------------------------------------------

    def field_id(self, name: str) -> str:
        """The id of an option's field (``<prefix>-<name with dashes>``)."""
        return f"{self.prefix}-{name.replace('_', '-')}"

    def compose(self) -> ComposeResult:
        for opt in self.options:
            with Horizontal(classes="opt-row"):
                yield Label(opt.label, classes="opt-label")
                yield self._field(opt)
                if self.inline_help:
                    yield Static(opt.help, classes="opt-help")
            yield Static("", classes="opt-error", id=f"{self.field_id(opt.name)}-error")
        if not self.inline_help:
            yield Static("", id="opt-focus-help")

    def _field(self, opt: Option) -> Widget:
        fid, value = self.field_id(opt.name), self._initial.get(opt.name)
        if opt.widget == "checkbox":
            return Checkbox("", bool(value), id=fid, classes="opt-field", tooltip=opt.help)
        if opt.widget == "select":
            choices = self._choices.get(opt.name) or list(getattr(opt, "choices", ()))
            return Select([(c, c) for c in choices], value=value if value in choices else Select.NULL,
                          allow_blank=not (opt.required and choices), prompt="(none)" if choices else "(none yet)",
                          id=fid, classes="opt-field", compact=True, tooltip=opt.help)  # fmt: skip
        text = value if isinstance(value, str) else opt.to_text(value)
        return Input(text, placeholder=opt.hint, id=fid, classes="opt-field", compact=True,
                     tooltip=opt.help)  # fmt: skip

    # -- reading and writing -------------------------------------------------------------------------------------

    def field(self, name: str) -> Widget:
        """The field widget of an option."""
        return self.query_one(f"#{self.field_id(name)}")

    def raw(self, name: str) -> Any:
        """The field's raw value: text, a choice ("" for none) or a bool."""
        w = self.field(name)
        if isinstance(w, Select):
            return "" if w.value is Select.NULL else str(w.value)
        return w.value  # Input: str, Checkbox: bool

    def raw_values(self) -> dict[str, Any]:
        return {o.name: self.raw(o.name) for o in self.options}

    def values(self) -> dict[str, Any]:
        """Typed values; marks every bad field and raises the first ``OptionError``."""
        raws = self.raw_values()
        errors = self.options.errors(raws)
        for o in self.options:
            self.show_error(o.name, errors.get(o.name))
        return self.options.parse(raws)

    def set_value(self, name: str, value: Any) -> None:
        """Put a typed value (or text) into a field."""
        w, opt = self.field(name), self.options[name]
        if isinstance(w, Checkbox):
            w.value = bool(opt.parse(value))
        elif isinstance(w, Select):
            w.value = Select.NULL if value in (None, "") else value
        else:
            assert isinstance(w, Input)
            w.value = value if isinstance(value, str) else opt.to_text(value)

    def set_choices(self, name: str, choices: Iterable[str | tuple[str, str]]) -> None:
        """Fill a Select whose choices come from the workspace (teachers); keeps the value when still offered."""
        w = self.field(name)
        assert isinstance(w, Select)
        pairs = [c if isinstance(c, tuple) else (c, c) for c in choices]
        keep = w.value
        w.set_options(pairs)
        values = [v for _, v in pairs]
        if keep in values:
            w.value = keep
        elif values:
            w.value = values[0]

    def show_error(self, name: str, message: str | None) -> None:
        """Show (or clear) the error under an option's field."""
        err = self.query_one(f"#{self.field_id(name)}-error", Static)
        err.update(message or "")
        err.set_class(bool(message), "-shown")

    def show_exception(self, exc: UserError) -> bool:
        """Mark the field an ``OptionError`` names; False when the error names none of this form's options."""
        name = getattr(exc, "option", None)
        if isinstance(exc, OptionError) and name in self.options.names:
            self.show_error(name, str(exc))
            return True
        return False

    def focus_first(self) -> None:
        """Focus the first field."""
        if self.options.options:
            self.field(self.options.options[0].name).focus()

    def _name_of(self, widget: Widget | None) -> str | None:
        prefix = f"{self.prefix}-"
        wid = widget.id if widget is not None else None
        if wid and wid.startswith(prefix):
            name = wid[len(prefix) :].replace("-", "_")
            return name if name in self.options.names else None
        return None

    # -- events --------------------------------------------------------------------------------------------------

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _changed(self, event: Input.Changed | Select.Changed | Checkbox.Changed) -> None:
        name = self._name_of(event.control)
        if name is None:
            return
        try:
            self.options[name].parse(self.raw(name))
            self.show_error(name, None)
        except UserError as exc:
            self.show_error(name, str(exc))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if self._name_of(event.control) is not None:
            event.stop()
            self.post_message(self.Submitted(self))

    def on_descendant_focus(self, event: Any) -> None:
        if self.inline_help:
            return
        name = self._name_of(event.widget)
        if name is not None:
            self.query_one("#opt-focus-help", Static).update(f"{self.options[name].label}: {self.options[name].help}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Text fields leave through the screen's / app's esc (which also cancels running work); a Select or a
        # Checkbox has no esc of its own, so the form takes it.
        if action == "leave_field":
            return isinstance(self.screen.focused, Select | Checkbox)
        return True

    def action_leave_field(self) -> None:
        self.screen.set_focus(None)
