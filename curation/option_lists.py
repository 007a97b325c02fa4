"""Options with several values: a list (``--model a --model b``, ``a, b``) and a number per slice
(``billing=0.3,security=0.1``: the one syntax for shares, factors and counts, CLI and studio).

The CLI flag may be repeated; the studio's field takes the same text. See ``curation.options`` for the rest.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from curation.errors import UserError
from curation.options import Option, num_text


@dataclass(frozen=True, kw_only=True)
class ListOption(Option):
    """Several values: repeat the CLI flag or separate them (``split``, default commas); the studio takes the text."""

    item: Callable[[str], Any] = str
    write_item: Callable[[Any], str] = str
    split: Callable[[str], list[str]] | None = None
    repeat: bool = True  # the CLI flag may be given several times

    def _parts(self, text: str) -> list[str]:
        if self.split is not None:
            return [p for p in self.split(text) if p.strip()]
        return [p.strip() for p in text.split(",") if p.strip()]

    def convert(self, raw: Any) -> list[Any]:
        texts = [raw] if isinstance(raw, str) else list(raw)
        out: list[Any] = []
        for t in texts:
            for part in self._parts(t) if isinstance(t, str) else [t]:
                try:
                    out.append(self.item(part) if isinstance(part, str) else part)
                except UserError as exc:
                    raise self.error(f"{part!r}: {exc}") from None
                except ValueError:
                    raise self.error(f"cannot read {part!r}") from None
        if not out and self.required:
            raise self.error("a value is required")
        return out

    def parse(self, raw: Any) -> Any:
        value = super().parse(raw)
        return value or None  # nothing listed = not given

    def to_text(self, value: Any) -> str:
        return "" if value is None else ", ".join(self.write_item(v) for v in value)

    def add_to_parser(self, parser: argparse.ArgumentParser | Any) -> None:
        # ``append`` would add to a non-empty default, so the default is filled in by ``parse`` (None = default).
        kw: dict[str, Any] = {"help": self.cli_help(), "default": None, "metavar": self.metavar}
        if self.repeat:
            kw["action"] = "append"
        parser.add_argument(self.flag, dest=self.name, **kw)
        for flag, (const, text) in self.shortcuts.items():  # as Option.add_to_parser: ``--no-few-shot`` stores ""
            parser.add_argument(flag, dest=self.name, action="store_const", const=const, help=text)


@dataclass(frozen=True, kw_only=True)
class SharesOption(ListOption):
    """A number per slice: ``billing=0.3,security=0.1`` (the one syntax, CLI and studio); repeatable on the CLI."""

    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False

    def convert(self, raw: Any) -> dict[str, float | int]:
        if isinstance(raw, Mapping):
            pairs = list(raw.items())
        else:
            pairs = []
            for t in [raw] if isinstance(raw, str) else list(raw):
                for part in (p.strip() for p in str(t).split(",")):
                    if not part:
                        continue
                    key, sep, val = part.rpartition("=")
                    if not sep or not key.strip():
                        raise self.error(f"expected SLICE={'N' if self.integer else 'X'}, got {part!r}")
                    pairs.append((key.strip(), val.strip()))
        out: dict[str, float | int] = {}
        for key, val in pairs:
            try:
                num = int(val) if self.integer else float(val)
            except (TypeError, ValueError):
                raise self.error(f"{key}: expected {'a whole number' if self.integer else 'a number'}, "
                                 f"got {val!r}") from None  # fmt: skip
            lo, hi = self.minimum, self.maximum
            if lo is not None and (num <= lo if self.exclusive_minimum else num < lo):
                raise self.error(f"{key}: must be {'>' if self.exclusive_minimum else '>='} {num_text(lo)}, got {val}")
            if hi is not None and num > hi:
                raise self.error(f"{key}: must be <= {num_text(hi)}, got {val}")
            out[key] = num
        if not out:
            if self.required:
                raise self.error("a value is required")
            return {}
        return out

    def parse(self, raw: Any) -> Any:
        value = super().parse(raw)
        return value or None

    def to_text(self, value: Any) -> str:
        return "" if not value else ",".join(f"{k}={num_text(v)}" for k, v in value.items())

    @property
    def hint(self) -> str:
        return self.placeholder or ("slice=N,other=N" if self.integer else "slice=X,other=Y")

    def argparse_kwargs(self) -> dict[str, Any]:
        return {"metavar": self.metavar or ("SLICE=N[,...]" if self.integer else "SLICE=X[,...]")}

    def add_to_parser(self, parser: argparse.ArgumentParser | Any) -> None:
        parser.add_argument(self.flag, dest=self.name, action="append", default=None, help=self.cli_help(),
                            **self.argparse_kwargs())  # fmt: skip
