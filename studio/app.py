"""The Distill Studio app: a registry of screens over one open workspace.

Mounting a screen is one line in ``SCREENS``: a key, a title, a hotkey and a factory taking the workspace.
The registry drives the screen switcher (one Textual mode per screen), the command palette and the help.
The app never opens DuckDB: it receives an open ``Workspace`` and hands it to screens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Input, TextArea

from curation.browse import RecordFilter
from curation.workspace import Workspace
from studio.screens.curation import CurationScreen
from studio.screens.evaluation import EvaluationScreen
from studio.screens.help import HelpScreen
from studio.screens.import_file import DataChanged, ImportScreen
from studio.screens.overview import OverviewScreen
from studio.screens.records import RecordsScreen
from studio.screens.review import ReviewScreen
from studio.screens.teacher import TeacherScreen
from studio.screens.training import TrainingScreen


@dataclass(frozen=True)
class ScreenSpec:
    """One top-level screen: ``factory(workspace)`` builds it; ``hotkey`` switches to it."""

    key: str
    title: str
    hotkey: str
    factory: Callable[[Workspace], Screen[Any]]
    description: str = ""

    @property
    def screen_class(self) -> type | None:
        """The screen class when the factory is one (for the help screen's binding lists)."""
        return self.factory if isinstance(self.factory, type) else None


SCREENS: list[ScreenSpec] = [
    ScreenSpec("overview", "Overview", "1", OverviewScreen, "counts, slices, batches, quarantine"),
    ScreenSpec("records", "Records", "2", RecordsScreen, "browse, sort and filter records"),
    ScreenSpec("review", "Review", "3", ReviewScreen, "review queue: accept, reject, edit, relabel"),
    ScreenSpec("import", "Import", "4", ImportScreen, "import a file into the workspace"),
    ScreenSpec("curation", "Curation", "5", CurationScreen, "slices, rebalance, dedupe, split, filters, versions"),
    ScreenSpec("teacher", "Teacher", "6", TeacherScreen, "generate teacher outputs and synthetic inputs"),
    ScreenSpec("training", "Training", "7", TrainingScreen, "launch and follow LoRA training runs"),
    ScreenSpec("evaluation", "Evaluation", "8", EvaluationScreen, "student vs teacher per slice, against the bar"),
]


class DistillStudio(App[None]):
    """Browse, slice and review a workspace of any size."""

    TITLE = "Distill Studio"
    CSS_PATH = "studio.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1,question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        # Screen hotkeys are plain digits (so Inputs can take digits); esc leaves a text field to use them.
        Binding("escape", "leave_input", "Leave text field", show=False, id="app.leave_input"),
    ]

    def __init__(self, workspace: Workspace, *, screens: Iterable[ScreenSpec] | None = None, start: str = "overview"):
        super().__init__()
        self.workspace = workspace
        self.screen_specs = list(screens if screens is not None else SCREENS)
        self.start = start
        self.data_version = 0
        for spec in self.screen_specs:
            self.add_mode(spec.key, partial(spec.factory, workspace))
            self.bind(spec.hotkey, f"switch_mode('{spec.key}')", description=spec.title, show=False)
        self.sub_title = workspace.path.name

    def on_mount(self) -> None:
        self.switch_mode(self.start)

    def action_help(self) -> None:
        """Show every binding."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_leave_input(self) -> None:
        """Take focus out of a text field (screens without their own esc action) so hotkeys work again."""
        if isinstance(self.focused, Input | TextArea):
            self.screen.set_focus(None)

    def open_review(self, filt: RecordFilter, order: str, start_key: tuple[Any, ...] | None) -> None:
        """Review the records of ``filt`` (pushed over the current screen; ``b`` goes back)."""
        self.push_screen(ReviewScreen(self.workspace, filt, order, start_key))

    def on_data_changed(self, message: DataChanged) -> None:
        self.data_version += 1

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette: every screen, every action of the current screen, then Textual's own."""
        for spec in self.screen_specs:
            yield SystemCommand(f"Go to {spec.title}", spec.description, partial(self.switch_mode, spec.key))
        seen: set[str] = set()
        for active in screen.active_bindings.values():
            b = active.binding
            if not b.description or b.action in seen or b.action.startswith("switch_mode"):
                continue
            seen.add(b.action)
            where = type(active.node).__name__
            help_text = f"{where} · key {self.get_key_display(b)}" + (f" · {b.id}" if b.id else "")
            yield SystemCommand(b.description, help_text, partial(self.run_action, b.action, active.node))
        yield from super().get_system_commands(screen)


def run_studio(workspace: Workspace, start: str = "overview") -> None:
    """Run the studio on an open workspace (blocks until the user quits)."""
    DistillStudio(workspace, start=start).run()
