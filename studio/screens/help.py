"""Help: every key binding of the app, the screens and the current screen, with descriptions and ids.

The ids are what a keymap file names (``studio.keymap``): the help says where that file is and lists the id of
every binding in the studio, widgets and dialogs included, with the keys in effect after the keymap.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from studio.keymap import KEYMAP_ENV, Keymap, keymap_path, studio_bindings


def _keymap_help(path: Path, remapped: dict[str, str]) -> Text:
    state = f"{len(remapped)} binding(s) remapped" if remapped else ("no binding remapped" if path.exists() else
                                                                      "no such file yet")  # fmt: skip
    return Text.assemble(
        ("Keymap\n", "bold"),
        f"Change any key above by its id in {path} ({state}; ${KEYMAP_ENV} names another file).\n",
        "TOML, one line per binding, several keys separated by commas:\n",
        ('  "records.open" = "o,enter"\n  "app.help" = "f2"\n', "cyan"),
        ("A bad line is reported when the studio starts; the other lines still apply.", "dim"),
    )


def _binding_rows(table: Table, bindings: list[Binding | tuple], app_key_display, keymap: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    for b in bindings:
        if not isinstance(b, Binding):
            b = Binding(*b)
        key = keymap.get(b.id, b.key) if b.id else b.key
        keys = ", ".join(app_key_display(Binding(k, b.action)) for k in key.split(","))
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
        keymap: Keymap | None = getattr(app, "keymap", None)
        remapped = keymap.bindings if keymap is not None else {}

        def section(title: str, bindings: list) -> None:  # type: ignore[type-arg]
            t = Table(title=title, title_justify="left", title_style="bold", box=None, padding=(0, 2))
            t.add_column("key", style="bold cyan", no_wrap=True)
            t.add_column("action")
            t.add_column("id")
            _binding_rows(t, bindings, key_display, remapped)
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
        # Widgets and dialogs: their keys work only where they have focus, but a keymap may name them too.
        shown = {c.__name__ for c in seen} | {type(app).__name__}
        for name, bindings in studio_bindings().items():
            if name not in shown:
                section(name, bindings)
        outer.add_row(Text("ctrl+p opens the command palette with every action; esc closes this help.", style="dim"))
        outer.add_row(_keymap_help(keymap.path if keymap is not None else keymap_path(), remapped))
        return outer

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
