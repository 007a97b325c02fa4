"""Output helpers shared by subcommands: JSON documents, plain tables, progress on stderr."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from curation.progress import Progress


def _default(o: Any) -> Any:
    if isinstance(o, datetime | date):
        return o.isoformat()
    if hasattr(o, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(o)
    return str(o)


def pct(x: float) -> str:
    """A share as a percentage with one decimal."""
    return f"{100 * x:.1f}%"


def print_json(doc: Any) -> None:
    """Print one JSON document to stdout."""
    sys.stdout.write(json.dumps(doc, default=_default, indent=2, ensure_ascii=False) + "\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A plain aligned table (numbers right-aligned) on stdout."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    numeric = [all(isinstance(r[i], int | float) or r[i] is None for r in rows) and rows for i in range(len(headers))]
    if title:
        print(title)

    def line(vals: Sequence[str]) -> str:
        out = [v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(vals)]
        return "  ".join(out).rstrip()

    print(line(list(headers)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return str(v)


class CliProgress:
    """Progress on stderr: a redrawn line on a terminal, a line every few seconds otherwise; silent with --json."""

    def __init__(self, enabled: bool = True, every_s: float = 2.0) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.every_s = every_s if not self.tty else 0.1
        self._last = 0.0
        self._started = time.monotonic()
        self._stage: str | None = None  # the elapsed time counts from the start of the current stage
        self._printed = False

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if p.stage != self._stage:  # e.g. `distill train --eval`: train, then generate for the evaluation
            self._stage, self._started, self._last = p.stage, now, 0.0
        done = p.fraction is not None and p.fraction >= 1.0
        if now - self._last < self.every_s and not done:
            return
        self._last = now
        elapsed = now - self._started
        if p.fraction is not None:
            width = 30
            filled = int(width * p.fraction)
            bar = "#" * filled + "-" * (width - filled)
            text = f"{p.stage} [{bar}] {p.fraction * 100:5.1f}% {p.detail} ({elapsed:.1f}s)"
        else:
            text = f"{p.stage} {p.done:,.0f} {p.detail} ({elapsed:.1f}s)"
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + text)
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
        self._printed = True

    def close(self) -> None:
        """End the progress line (on a terminal)."""
        if self.enabled and self.tty and self._printed:
            sys.stderr.write("\n")
            sys.stderr.flush()
