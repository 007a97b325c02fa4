"""Typed option declarations: every operation declares its parameters once, and both front-ends are built from them.

An ``Option`` carries a name, a type, a default, help text and its validation (range, choices, and optionally a
``resolve`` step that checks the value against a workspace: the split must exist, the teacher must be configured).
``Option.add_to_parser`` adds the CLI flag (derived once from the name), and ``studio.widgets.option_form`` builds a
labelled, validated field from the same object. Both front-ends parse a raw value with ``Option.parse``, so a bad
value gets the same one-line ``OptionError`` everywhere: ``Threshold (--threshold): must be <= 1, got 1.5``.

Values: ``None`` (absent) means the default; a blank string means "no value" (an error for a required option).
No Textual here (curation never imports it); the widget side lives in ``studio/widgets/option_form.py``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from curation.errors import UserError

if TYPE_CHECKING:
    from curation.workspace import Workspace

Resolver = Callable[["Workspace", Any], Any]


class OptionError(UserError):
    """A bad option value; ``option`` is the option's name (the studio shows the message next to that field)."""

    def __init__(self, option: Option, problem: str) -> None:
        super().__init__(f"{option.label} ({option.cli_name}): {problem}")
        self.option = option.name


def _blank(raw: Any) -> bool:
    return isinstance(raw, str) and not raw.strip()


def num_text(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True, kw_only=True)
class Option:
    """One parameter of an operation.

    ``name`` is the keyword the operation's function takes (and the studio field's id); the CLI flag is
    ``--name-with-dashes`` unless ``flag`` says otherwise. ``shortcuts`` are extra CLI flags that store a raw value
    into the same option (``--exact`` for ``--kind exact``); the studio reaches those values through the field.
    ``resolve(ws, value)`` runs after parsing in both front-ends: it checks the value against the workspace and may
    replace it (a blank split becomes the frozen 'heldout' split when there is one).
    """

    name: str
    help: str
    default: Any = None
    label: str = ""
    flag: str = ""
    metavar: str | None = None
    required: bool = False
    positional: bool = False
    shortcuts: Mapping[str, tuple[Any, str]] = field(default_factory=dict)
    resolve: Resolver | None = None
    placeholder: str = ""

    widget: ClassVar[str] = "input"  # input | select | checkbox (studio/widgets/option_form.py)

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " ").capitalize())
        if not self.flag and not self.positional:
            object.__setattr__(self, "flag", "--" + self.name.replace("_", "-"))

    @property
    def cli_name(self) -> str:
        """How the CLI spells it: ``--max-factor``, or the metavar of a positional (``VERSION``)."""
        return self.flag if not self.positional else (self.metavar or self.name.upper())

    def error(self, problem: str) -> OptionError:
        """The one error format for this option, in the CLI and the studio alike."""
        return OptionError(self, problem)

    def parse(self, raw: Any) -> Any:
        """A raw value (CLI string, studio text, or an already typed value) -> the typed, validated value."""
        if raw is None:
            raw = self.default
        if raw is None or _blank(raw):
            if self.required:
                raise self.error("a value is required")
            return None
        value = self.convert(raw)
        self.check(value)
        return value

    def convert(self, raw: Any) -> Any:
        """Raw -> typed (raise ``self.error`` when it cannot be read)."""
        return raw.strip() if isinstance(raw, str) else raw

    def check(self, value: Any) -> None:
        """Validate a typed value (range, choices)."""

    def to_text(self, value: Any) -> str:
        """A typed value as the studio's text field shows it."""
        return "" if value is None else str(value)

    @property
    def hint(self) -> str:
        """Placeholder text of the studio's field: what a value looks like."""
        return self.placeholder or self.metavar or ""

    def cli_help(self) -> str:
        """Help text with the default, derived once from the declaration."""
        if self.default is None or self.default is False or self.default == ():
            return self.help
        return f"{self.help} (default {self.to_text(self.default)})"

    def argparse_kwargs(self) -> dict[str, Any]:
        """Extra ``add_argument`` keywords of this type (values stay raw strings: ``parse`` reads them)."""
        return {"metavar": self.metavar}

    def add_to_parser(self, parser: argparse.ArgumentParser | Any) -> None:
        """Add the flag (or positional) and its shortcuts; the parsed namespace holds raw values under ``name``."""
        kw = {"help": self.cli_help(), "default": self.default, **self.argparse_kwargs()}
        if self.positional:
            kw["metavar"] = self.cli_name
            parser.add_argument(self.name, nargs=None if self.required else "?", **kw)
        else:
            if self.required and self.default is None:
                kw["required"] = True
            parser.add_argument(self.flag, dest=self.name, **kw)
        for flag, (const, text) in self.shortcuts.items():
            parser.add_argument(flag, dest=self.name, action="store_const", const=const, help=text)


@dataclass(frozen=True, kw_only=True)
class TextOption(Option):
    """Free text; ``convert`` (e.g. ``json.loads``) turns it into a typed value, a ValueError into an error."""

    read: Callable[[str], Any] | None = None
    write: Callable[[Any], str] | None = None

    def convert(self, raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        if self.read is None:
            return raw.strip()
        try:
            return self.read(raw.strip())
        except ValueError as exc:
            raise self.error(str(exc).splitlines()[0]) from None

    def to_text(self, value: Any) -> str:
        if value is None:
            return ""
        return self.write(value) if self.write and not isinstance(value, str) else str(value)


@dataclass(frozen=True, kw_only=True)
class _NumberOption(Option):
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    def check(self, value: Any) -> None:
        lo, hi = self.minimum, self.maximum
        if lo is not None and (value <= lo if self.exclusive_minimum else value < lo):
            raise self.error(f"must be {'>' if self.exclusive_minimum else '>='} {num_text(lo)}, got {num_text(value)}")
        if hi is not None and (value >= hi if self.exclusive_maximum else value > hi):
            raise self.error(f"must be {'<' if self.exclusive_maximum else '<='} {num_text(hi)}, got {num_text(value)}")

    def to_text(self, value: Any) -> str:
        return "" if value is None else num_text(value)


@dataclass(frozen=True, kw_only=True)
class IntOption(_NumberOption):
    """A whole number, optionally within [minimum, maximum]."""

    def convert(self, raw: Any) -> int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        try:
            return int(str(raw).strip())
        except ValueError:
            raise self.error(f"expected a whole number, got {raw!r}") from None

    def argparse_kwargs(self) -> dict[str, Any]:
        return {"metavar": self.metavar or "N"}


@dataclass(frozen=True, kw_only=True)
class FloatOption(_NumberOption):
    """A number, optionally within a range (``exclusive_*`` makes a bound open)."""

    def convert(self, raw: Any) -> float:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            value = float(raw)
        else:
            try:
                value = float(str(raw).strip())
            except ValueError:
                raise self.error(f"expected a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise self.error(f"expected a finite number, got {raw!r}")
        return value

    def argparse_kwargs(self) -> dict[str, Any]:
        return {"metavar": self.metavar or "X"}


@dataclass(frozen=True, kw_only=True)
class ChoiceOption(Option):
    """One of ``choices``; no choices = filled in at run time (the studio's teacher list), checked by ``resolve``."""

    choices: tuple[str, ...] = ()
    widget: ClassVar[str] = "select"

    def check(self, value: Any) -> None:
        if self.choices and value not in self.choices:
            raise self.error(f"must be one of {', '.join(self.choices)}, got {value!r}")

    def argparse_kwargs(self) -> dict[str, Any]:
        return {"metavar": self.metavar or ("{" + ",".join(self.choices) + "}" if self.choices else None)}


@dataclass(frozen=True, kw_only=True)
class FlagOption(Option):
    """On or off. The CLI flag flips the default (``--any-numbers`` turns ``numbers_must_match`` off)."""

    default: bool = False
    widget: ClassVar[str] = "checkbox"

    def parse(self, raw: Any) -> bool:
        if raw is None or _blank(raw):
            return bool(self.default)
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("yes", "true", "on", "1"):
            return True
        if text in ("no", "false", "off", "0"):
            return False
        raise self.error(f"expected yes or no, got {raw!r}")

    def to_text(self, value: Any) -> str:
        return "yes" if value else "no"

    def add_to_parser(self, parser: argparse.ArgumentParser | Any) -> None:
        action = "store_false" if self.default else "store_true"
        parser.add_argument(self.flag, dest=self.name, action=action, help=self.help)


@dataclass(frozen=True, kw_only=True)
class DateTimeOption(Option):
    """An ISO date or date-time (``2026-01-01``, ``2026-01-01T12:00``)."""

    def convert(self, raw: Any) -> datetime:
        if isinstance(raw, datetime):
            return raw
        try:
            return datetime.fromisoformat(str(raw).strip())
        except ValueError:
            raise self.error(f"expected an ISO date such as 2026-01-31, got {raw!r}") from None

    def to_text(self, value: Any) -> str:
        return "" if value is None else value.isoformat()

    @property
    def hint(self) -> str:
        return self.placeholder or "2026-01-31"

    def argparse_kwargs(self) -> dict[str, Any]:
        return {"metavar": self.metavar or "ISO"}


@dataclass(frozen=True)
class OptionSet:
    """The parameters of one operation, in the order the CLI help and the studio form show them."""

    operation: str
    options: tuple[Option, ...]

    def __post_init__(self) -> None:
        names = [o.name for o in self.options]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.operation}: duplicate option names")

    def __getitem__(self, name: str) -> Option:
        for o in self.options:
            if o.name == name:
                return o
        raise KeyError(name)

    def __iter__(self) -> Iterator[Option]:
        return iter(self.options)

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.options]

    def default(self, name: str) -> Any:
        """The declared default of one option (what the operation's function uses as its own default)."""
        return self[name].default

    def only(self, *names: str, operation: str | None = None) -> OptionSet:
        """A subset, in this set's order."""
        return OptionSet(operation or self.operation, tuple(o for o in self.options if o.name in names))

    def without(self, *names: str, operation: str | None = None) -> OptionSet:
        """All but ``names``, in this set's order."""
        return OptionSet(operation or self.operation, tuple(o for o in self.options if o.name not in names))

    def add_to_parser(self, parser: argparse.ArgumentParser | Any) -> None:
        """Add every option's flag to an argparse (sub)parser."""
        for o in self.options:
            o.add_to_parser(parser)

    def parse(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Raw values by name (missing = default) -> typed values; the first bad one raises its ``OptionError``."""
        return {o.name: o.parse(raw.get(o.name)) for o in self.options}

    def errors(self, raw: Mapping[str, Any]) -> dict[str, str]:
        """Every bad value's message by option name (the studio marks each field)."""
        out: dict[str, str] = {}
        for o in self.options:
            try:
                o.parse(raw.get(o.name))
            except UserError as exc:
                out[o.name] = str(exc)
        return out

    def from_args(self, args: argparse.Namespace) -> dict[str, Any]:
        """Typed values from a namespace built by a parser this set was added to."""
        return self.parse({o.name: getattr(args, o.name, None) for o in self.options})

    def resolve(self, ws: Workspace, values: Mapping[str, Any]) -> dict[str, Any]:
        """Run every option's workspace check (in both front-ends, after ``parse``); returns the resolved values."""
        out = dict(values)
        for o in self.options:
            if o.resolve is not None and o.name in out:
                out[o.name] = o.resolve(ws, out[o.name])
        return out


def omit(values: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """``values`` without ``names`` (options that feed another step than the function being called)."""
    return {k: v for k, v in values.items() if k not in names}
