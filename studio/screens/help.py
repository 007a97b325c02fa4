"""Help: every key binding of the app, the screens and the current screen, with descriptions."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def _binding_rows(table: Table, bindings: list[Binding | tuple], app_key_display) -> None:  # type: ignore[no-untyped-def]
    for b in bindings:
        if not isinstance(b, Binding):
            b = Binding(*b)
        keys = ", ".join(app_key_display(Binding(k, b.action)) for k in b.key.split(","))
        table.add_row(keys, b.description or b.action, Text(b.id or "", style="dim"))


class HelpScreen(ModalScreen[None]):
    """All bindings, grouped: global, screens, then each registered screen's own."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def __init__(self, current: Screen | None = None) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog help"):
            yield Static(self._render_help(), id="help-body")

    def _render_help(self) -> Table:
        app = self.app
        outer = Table.grid(padding=(1, 0))
        key_display = app.get_key_display

        def section(title: str, bindings: list) -> None:  # type: ignore[type-arg]
            t = Table(title=title, title_justify="left", title_style="bold", box=None, padding=(0, 2))
            t.add_column("key", style="bold cyan", no_wrap=True)
            t.add_column("action")
            t.add_column("id")
            _binding_rows(t, bindings, key_display)
            outer.add_row(t)

        section("Global", list(type(app).BINDINGS))
        specs = getattr(app, "screen_specs", [])
        section("Screens", [Binding(s.hotkey, f"switch_mode('{s.key}')", f"{s.title}: {s.description}") for s in specs])
        seen: set[type] = set()
        if self.current is not None:
            # The current screen with its focused widgets' bindings (e.g. the record list's movement keys).
            # Plus the screen's own, including those disabled right now (esc-to-cancel while nothing runs).
            active = [a.binding for a in self.current.active_bindings.values() if a.node is not app]
            active += [b if isinstance(b, Binding) else Binding(*b) for b in getattr(self.current, "BINDINGS", [])]
            unique = list({(b.action, b.description): b for b in active if b.description}.values())
            section(f"{type(self.current).__name__} (current)", unique)
            seen.add(type(self.current))
        for cls in [s.screen_class for s in specs if s.screen_class is not None]:
            if cls in seen or not getattr(cls, "BINDINGS", None):
                continue
            seen.add(cls)
            section(cls.__name__, list(cls.BINDINGS))
        outer.add_row(Text("ctrl+p opens the command palette with every action; esc closes this help.", style="dim"))
        return outer

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
