"""The quality bar editor (the evaluation screen's ``b``): the ``BAR`` fields but its name, with the metric sources
the workspace offers; saving stores a new version of the bar (old evaluations keep the bar they were judged by)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from curation.errors import UserError
from curation.workspace import Workspace
from studio.widgets.option_form import OptionForm
from train.bars import BAR, QualityBar, bar_from_options, set_bar


@dataclass
class BarSaved(Message):
    bar_id: int


EDITOR = BAR.without("name", operation="bar editor")  # the bar's name is the one being edited


def _fid(name: str) -> str:
    return "bar-" + name.replace("_", "-")  # OptionForm(prefix="bar") gives the fields these ids


def bar_to_fields(bar: QualityBar | None) -> dict[str, str]:
    """The bar as the editor's field texts (a starting point when there is no bar yet)."""
    if bar is None:
        return {"bar-metrics": "exact:intent, valid_json", "bar-threshold": "0.8"}
    return {_fid(o.name): o.to_text(getattr(bar, o.name)) for o in EDITOR}


def metric_sources(ws: Workspace) -> str:
    """What judge:TEACHER and verifier:@FILTER can name in this workspace (a few rows each)."""
    from curation.filters import list_filter_runs
    from curation.teacher.config import list_teachers

    teachers = [t.name for t in list_teachers(ws)]
    filters = sorted({f["name"] for f in list_filter_runs(ws) if json.loads(f["spec"]).get("kind") == "verifier"})
    return (f"teachers: {', '.join(teachers) or '(none yet: `distill teachers add` adds one)'}   "
            f"verifier filters: {', '.join(filters) or '(none yet)'}")  # fmt: skip


def bar_from_fields(values: dict[str, str], name: str = "default") -> QualityBar:
    """Parse the editor's texts into a bar with the declared options (``train.bars.BAR``, as `distill bar set`);
    the ``OptionError`` names the field at fault."""
    v = EDITOR.parse({o.name: values.get(_fid(o.name), "") for o in EDITOR})
    bar = bar_from_options(None, {**v, "name": name})
    if not any(m.get("filter") for m in bar.metrics):  # a verifier:@FILTER is looked up (and checked) by set_bar
        bar.validate()
    return bar


def _typed(fields: dict[str, str]) -> dict[str, str]:
    return {o.name: fields[_fid(o.name)] for o in EDITOR if _fid(o.name) in fields}


class QualityBarScreen(ModalScreen[int | None]):
    """Edit the quality bar; saving stores a new version (old evaluations keep the bar they were judged by)."""

    AUTO_FOCUS = "#bar-task"  # the form is typed into top to bottom

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save bar", id="bar.save"),
        Binding("escape", "close", "Close", id="bar.close"),
    ]

    def __init__(self, workspace: Workspace, bar: QualityBar | None) -> None:
        super().__init__()
        self.workspace = workspace
        self.bar = bar

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="bar-editor"):
            yield Static("Quality bar: set it before training; every evaluation reports against it", classes="title")
            yield OptionForm(EDITOR, prefix="bar", values=_typed(bar_to_fields(self.bar)), inline_help=False)
            yield Static(metric_sources(self.workspace), id="bar-sources", classes="hint")
            with Horizontal():
                yield Button("Save", id="bar-save", variant="primary")
                yield Button("Close", id="bar-close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "bar-save":
            self.action_save()
        else:
            self.action_close()

    def action_save(self) -> None:
        form = self.query_one(OptionForm)
        try:
            values = {_fid(k): v for k, v in form.raw_values().items()}
            bar = set_bar(self.workspace, bar_from_fields(values, self.bar.name if self.bar else "default"))
        except UserError as exc:
            form.show_exception(exc)
            self.notify(str(exc), severity="error")
            return
        self.app.screen_stack[-2].post_message(BarSaved(int(bar.bar_id or 0)))
        self.dismiss(bar.bar_id)

    def action_close(self) -> None:
        self.dismiss(None)
