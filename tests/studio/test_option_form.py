"""The generated form on its own: defaults filled in, typed values back, the option's error beside its field,
Tab from field to field in declaration order, Enter submits, esc leaves a Select or a Checkbox."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Checkbox, Input, Label, Select, Static

from curation.dedupe import DEDUPE
from curation.errors import UserError
from studio.widgets.option_form import OptionForm


class FormApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.submitted = 0

    def compose(self) -> ComposeResult:
        yield OptionForm(DEDUPE, prefix="d")

    def on_option_form_submitted(self, message: OptionForm.Submitted) -> None:
        self.submitted += 1


async def test_form_fields_defaults_errors_and_keys() -> None:
    app = FormApp()
    async with app.run_test(size=(160, 40)) as pilot:
        form = app.query_one(OptionForm)
        assert [str(lbl.render()) for lbl in form.query(Label)] == [o.label for o in DEDUPE]
        assert isinstance(form.field("kind"), Select) and isinstance(form.field("force"), Checkbox)
        assert form.query_one("#d-threshold", Input).value == "0.85"
        assert form.values() == DEDUPE.parse({})  # the declared defaults, typed

        form.focus_first()
        await pilot.pause()
        seen = []
        for _ in DEDUPE:
            seen.append(app.focused.id if app.focused else None)
            await pilot.press("tab")
        assert seen == [form.field_id(o.name) for o in DEDUPE]

        form.field("threshold").focus()
        await pilot.press("end", "backspace", "backspace", "backspace", "backspace", *"1.5")
        await pilot.pause()
        error = str(form.query_one("#d-threshold-error", Static).render())
        assert error == "Threshold (--threshold): must be <= 1, got 1.5"
        with pytest.raises(UserError, match=r"^Threshold \(--threshold\): must be <= 1, got 1\.5$"):
            form.values()
        await pilot.press("backspace", "backspace", "backspace", *"0.9", "enter")
        await pilot.pause()
        assert app.submitted == 1 and not form.query_one("#d-threshold-error", Static).has_class("-shown")
        assert form.values()["threshold"] == 0.9

        form.field("force").focus()
        await pilot.press("space")
        assert form.values()["force"] is True
        await pilot.press("escape")  # leaves the checkbox (the app's esc only leaves text fields)
        assert app.focused is None
