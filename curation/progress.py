"""Progress and cancellation plumbing shared by every long operation.

Long operations take ``progress: ProgressFn | None`` and ``cancel: threading.Event | None``.
They call ``report(...)`` at natural checkpoints; ``report`` raises ``Cancelled`` when the event is set,
so the caller's transaction rolls back and nothing half-done is left behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from curation.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """A progress report: ``done`` of ``total`` units (``total`` may be None when unknown)."""

    stage: str
    done: float
    total: float | None = None
    detail: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    def text(self) -> str:
        """One line for a status bar: "generate 16/40 (40%) detail" (a bare percentage said neither how many items
        nor how far a slow step had to go: the studio's baselines showed "generate 0%" for minutes)."""
        count = f" {self.done:,.0f}/{self.total:,.0f} ({self.fraction or 0:.0%})" if self.total else ""
        return f"{self.stage}{count} {self.detail}".rstrip()


ProgressFn = Callable[[Progress], None]


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise ``Cancelled`` if the cancel event is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled()


def report(
    progress: ProgressFn | None,
    cancel: threading.Event | None,
    stage: str,
    done: float,
    total: float | None = None,
    detail: str = "",
) -> None:
    """Check for cancellation, then forward a progress report if anyone listens."""
    check_cancel(cancel)
    if progress is not None:
        progress(Progress(stage, done, total, detail))
