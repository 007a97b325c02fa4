"""The Distill Studio app: a registry of screens over one open workspace.

Mounting a screen is one line in ``SCREENS``: a key, a title, a hotkey and a factory taking the workspace.
The registry drives the screen switcher (one Textual mode per screen), the command palette and the help.
The app never opens DuckDB: it receives an open ``Workspace`` and hands it to screens.

Two app-wide services live here as well: every worker that ends in error becomes a notification (``studio.failures``;
the traceback behind it is one key away, ``app.show_error``), and the user's keymap file is applied at start
(``studio.keymap``; a bad file is a notification, never a failed start).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Input, TextArea

from curation.browse import RecordFilter
from curation.review import reviewer_name
from curation.teacher.config import TeacherConfig, list_teachers
from curation.workspace import Workspace
from studio.failures import Failure, WorkFailed, describe, is_benign
from studio.keymap import Keymap, binding_ids, keymap_path, load_keymap
from studio.reviewer import known_reviewer
from studio.widgets.modals import TracebackModal

if TYPE_CHECKING:
    from studio.screens.import_file import DataChanged


@dataclass(frozen=True)
class ScreenSpec:
    """One top-level screen: ``factory(workspace)`` builds it; ``hotkey`` switches to it.

    ``factory`` may name the class as ``"module:Class"``: it is imported when the screen is first shown, so the
    studio's start imports only the screen it opens on (all eight cost ~0.5 s of imports: training and evaluation
    code, the teacher client, plotext).
    """

    key: str
    title: str
    hotkey: str
    factory: Callable[[Workspace], Screen[Any]] | str
    description: str = ""

    @property
    def screen_class(self) -> type | None:
        """The screen class when the factory is one (imported now if named), for the help screen's binding lists."""
        if isinstance(self.factory, str):
            module, _, name = self.factory.partition(":")
            return getattr(importlib.import_module(module), name)
        return self.factory if isinstance(self.factory, type) else None

    @property
    def class_path(self) -> str | None:
        """``module:Class`` of the screen class, without importing it."""
        if isinstance(self.factory, str):
            return self.factory
        return f"{self.factory.__module__}:{self.factory.__qualname__}" if isinstance(self.factory, type) else None

    def build(self, workspace: Workspace) -> Screen[Any]:
        """A new screen on ``workspace``."""
        factory = self.screen_class if isinstance(self.factory, str) else self.factory
        assert factory is not None
        return factory(workspace)


SCREENS: list[ScreenSpec] = [
    ScreenSpec("overview", "Overview", "1", "studio.screens.overview:OverviewScreen", "counts, slices, batches, quarantine"),
    ScreenSpec("records", "Records", "2", "studio.screens.records:RecordsScreen", "browse, sort and filter records"),
    ScreenSpec("review", "Review", "3", "studio.screens.review:ReviewScreen", "review queue: accept, reject, edit, relabel"),
    ScreenSpec("import", "Import", "4", "studio.screens.import_file:ImportScreen", "import a file into the workspace"),
    ScreenSpec("curation", "Curation", "5", "studio.screens.curation:CurationScreen",
               "slices, rebalance, dedupe, split, filters, versions"),
    ScreenSpec("teacher", "Teacher", "6", "studio.screens.teacher:TeacherScreen",
               "generate teacher outputs and synthetic inputs"),
    ScreenSpec("training", "Training", "7", "studio.screens.training:TrainingScreen",
               "launch and follow LoRA training runs"),
    ScreenSpec("evaluation", "Evaluation", "8", "studio.screens.evaluation:EvaluationScreen",
               "student vs teacher per slice, against the bar"),
    ScreenSpec("checklist", "Checklist", "9", "studio.screens.checklist:ChecklistScreen",
               "the project's phases, measured: what is still open"),
    ScreenSpec("production", "Production", "0", "studio.screens.production:ProductionScreen",
               "the served student live: traffic, drift, alarms"),
]  # fmt: skip


class DistillStudio(App[None]):
    """Browse, slice and review a workspace of any size."""

    TITLE = "Distill Studio"
    CSS_PATH = "studio.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1,question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        # Screen hotkeys are plain digits (so Inputs can take digits); esc leaves a text field to use them.
        Binding("escape", "leave_input", "Leave text field", show=False, id="app.leave_input"),
        Binding("ctrl+t", "show_error", "Traceback of the last error", show=False, id="app.show_error"),
    ]
    # Errors stay up until read or dismissed for this long (Textual's default of 5 s is short for a traceback hint).
    ERROR_TIMEOUT_S = 15

    def __init__(
        self,
        workspace: Workspace,
        *,
        screens: Iterable[ScreenSpec] | None = None,
        start: str = "overview",
        keymap: Path | None = None,
        reviewer: str | None = None,
        ask_reviewer: bool = False,
    ):
        """``keymap``: a keymap file to apply (``run_studio`` passes the user's; tests pass their own or none).
        ``reviewer``: whose decisions these are (default ``curation.review.reviewer_name()``); ``ask_reviewer``: ask
        for the name on the first visit to the review queue and remember it (``studio.reviewer``)."""
        super().__init__()
        self.reviewer = reviewer or reviewer_name()
        self.ask_reviewer = ask_reviewer
        self.workspace = workspace
        self.screen_specs = list(screens if screens is not None else SCREENS)
        self.start = start
        self.data_version = 0
        self.keymap_file = keymap
        self.keymap = Keymap(keymap or keymap_path())
        self.last_failure: Failure | None = None  # the newest one with a traceback (what show_error opens)
        self._teachers: list[TeacherConfig] = []
        for spec in self.screen_specs:
            self.add_mode(spec.key, partial(spec.build, workspace))
            self.bind(spec.hotkey, f"switch_mode('{spec.key}')", description=spec.title, show=False)
        self.sub_title = workspace.path.name

    def on_mount(self) -> None:
        self._teachers = list_teachers(self.workspace)
        if self.keymap_file is not None:
            # The binding ids come from importing every studio module: only when there is a file to check.
            known = binding_ids() if self.keymap_file.exists() else set()
            self.keymap = load_keymap(self.keymap_file, known)
            self.set_keymap(self.keymap.bindings)
            for problem in self.keymap.problems:
                self.notify(problem, title="Keymap", severity="warning", timeout=self.ERROR_TIMEOUT_S, markup=False)
        self.switch_mode(self.start)

    # -- failures ------------------------------------------------------------------------------------------

    def _where(self, node: Any) -> str:
        """The title of the screen a worker's node belongs to (its class name when it is not a registered one)."""
        screen = node if isinstance(node, Screen) else next((n for n in node.ancestors if isinstance(n, Screen)), None)
        if screen is None:
            return type(node).__name__
        path = f"{type(screen).__module__}:{type(screen).__qualname__}"
        return next((spec.title for spec in self.screen_specs if spec.class_path == path), type(screen).__name__)

    def on_work_failed(self, message: WorkFailed) -> None:
        """A worker ended in error: say so, unless its method declared the failure benign."""
        worker = message.worker
        if worker.error is None or is_benign(worker):
            return
        try:  # again: the CLI may have added a teacher (and its key) while the studio is open (one service)
            self._teachers = list_teachers(self.workspace)
        except Exception:
            pass  # the workspace itself failed: redact with the teachers read before
        failure = describe(self._where(worker.node), worker, self._teachers)
        if failure.traceback is None:  # a UserError: its message is the whole story
            self.notify(failure.message, title=failure.where, severity="error", markup=False)
            return
        self.last_failure = failure
        # The key in effect (a keymap may have moved it), spelled as a keymap would write it.
        key = next((k for k, a in self.active_bindings.items() if a.binding.id == "app.show_error"), None)
        hint = f"\n{key} shows the traceback" if key else ""
        self.notify(failure.message + hint, title="Error", severity="error", timeout=self.ERROR_TIMEOUT_S, markup=False)

    def action_show_error(self) -> None:
        """Show the traceback of the last failed worker."""
        if self.last_failure is None:
            self.notify("no error so far")
        elif not isinstance(self.screen, TracebackModal):
            self.push_screen(TracebackModal(self.last_failure))

    def action_help(self) -> None:
        """Show every binding."""
        from studio.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_leave_input(self) -> None:
        """Take focus out of a text field (screens without their own esc action) so hotkeys work again."""
        if isinstance(self.focused, Input | TextArea):
            self.screen.set_focus(None)

    def open_review(self, filt: RecordFilter, order: str, start_key: tuple[Any, ...] | None) -> None:
        """Review the records of ``filt`` (pushed over the current screen; ``b`` goes back)."""
        from studio.screens.review import ReviewScreen

        self.push_screen(ReviewScreen(self.workspace, filt, order, start_key))

    def on_data_changed(self, message: DataChanged) -> None:
        self.data_version += 1

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette: every screen, every action of the current screen, then Textual's own."""
        for spec in self.screen_specs:
            yield SystemCommand(f"Go to {spec.title}", spec.description, partial(self.switch_mode, spec.key))
        seen: set[str] = set()
        titles: set[str] = set()
        for active in screen.active_bindings.values():
            b = active.binding
            if not b.description or b.action in seen or b.action.startswith("switch_mode"):
                continue
            # A widget's own keys (cursor moves) and Textual's unnamed screen keys (tab, ctrl+c, ctrl+p itself) are
            # not commands: every studio binding has an id.
            if not isinstance(active.node, Screen | App) or not b.id:
                continue
            seen.add(b.action)
            titles.add(b.description)
            help_text = f"{type(active.node).__name__} · key {self.get_key_display(b)} · {b.id}"
            yield SystemCommand(b.description, help_text, partial(self.run_action, b.action, active.node))
        yield from (c for c in super().get_system_commands(screen) if c.title not in titles)  # one Quit, not two


def make_studio(workspace: Workspace, start: str = "overview") -> DistillStudio:
    """The studio as a user runs it: their keymap, and their reviewer name (asked once when none is known)."""
    known = known_reviewer()
    return DistillStudio(workspace, start=start, keymap=keymap_path(), reviewer=known, ask_reviewer=known is None)


def run_studio(workspace: Workspace, start: str = "overview") -> None:
    """Run the studio on an open workspace with the user's keymap (blocks until the user quits)."""
    make_studio(workspace, start).run()
