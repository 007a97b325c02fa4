"""The user's keymap: a TOML file of ``binding_id = "keys"`` lines applied with ``App.set_keymap``, as Posting does.

Every ``Binding`` in the studio has an id (``records.open``, ``app.help``); the help screen lists them all.
The file is ``$DISTILL_KEYMAP``, else ``<config dir>/keymap.toml`` with the config dir ``$XDG_CONFIG_HOME/distill``
or ``~/.config/distill``. Ids contain dots, which TOML reads as nested tables, so ``records.open = "o"``,
``"records.open" = "o"`` and ``[records]`` + ``open = "o"`` all mean the same. A bad file never stops the studio:
``load_keymap`` returns what it could read plus one line per problem (file, line, id) for the app to show.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from textual.binding import Binding
from textual.dom import DOMNode

import studio

KEYMAP_ENV = "DISTILL_KEYMAP"
KEYMAP_FILE = "keymap.toml"


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the studio's user settings live: ``$XDG_CONFIG_HOME/distill``, else ``~/.config/distill``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base).expanduser() / "distill"


def keymap_path(env: Mapping[str, str] | None = None) -> Path:
    """The keymap file the studio reads: ``$DISTILL_KEYMAP`` if set, else ``<config dir>/keymap.toml``."""
    env = os.environ if env is None else env
    chosen = env.get(KEYMAP_ENV)
    return Path(chosen).expanduser() if chosen else config_dir(env) / KEYMAP_FILE


def studio_bindings() -> dict[str, list[Binding]]:
    """Every studio class with bindings of its own (screens, widgets, dialogs, the app), by class name."""
    found: dict[str, list[Binding]] = {}
    for info in pkgutil.walk_packages(studio.__path__, "studio."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, DOMNode) and obj.__module__ == module.__name__:
                own = [b if isinstance(b, Binding) else Binding(*b) for b in obj.__dict__.get("BINDINGS", [])]
                if own:
                    found[obj.__name__] = own
    return found


def binding_ids() -> set[str]:
    """The ids a keymap may name."""
    return {b.id for bindings in studio_bindings().values() for b in bindings if b.id}


@dataclass
class Keymap:
    """What a keymap file asked for (``bindings``: id -> keys) and what was wrong with it (one line each)."""

    path: Path
    bindings: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _flatten(table: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _line_of(text: str, binding_id: str) -> int | None:
    """The line that sets ``binding_id`` (whole dotted id first, then its last part under a table header)."""
    for name in (binding_id, binding_id.rsplit(".", 1)[-1]):
        pattern = re.compile(rf"^[ \t]*[\"']?{re.escape(name)}[\"']?[ \t]*=", re.MULTILINE)
        if m := pattern.search(text):
            return text.count("\n", 0, m.start()) + 1
    return None


def load_keymap(path: Path, known: set[str]) -> Keymap:
    """Read ``path`` into a ``Keymap``. A missing file is no keymap (a problem only when it is not the default
    location, i.e. someone named it, e.g. in ``$DISTILL_KEYMAP``); unreadable TOML, an unknown id or a value that is
    not a key string are problems, and the valid lines still apply."""
    result = Keymap(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if path != config_dir() / KEYMAP_FILE:
            result.problems.append(f"{path}: no such keymap file")
        return result
    except (OSError, UnicodeDecodeError) as exc:
        result.problems.append(f"{path}: cannot read the keymap: {exc}")
        return result
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line N, column M)"
        result.problems.append(f"{path}: not valid TOML: {exc}")
        return result
    for binding_id, keys in _flatten(table).items():
        line = _line_of(text, binding_id)
        where = f"{path}:{line}" if line else str(path)
        if binding_id not in known:
            result.problems.append(f"{where}: unknown binding id {binding_id!r} (f1 lists the ids)")
        elif not isinstance(keys, str) or not keys.strip():
            result.problems.append(f'{where}: {binding_id}: keys must be a string such as "ctrl+j" or "j,down"')
        else:
            result.bindings[binding_id] = ",".join(k.strip() for k in keys.split(","))
    return result
