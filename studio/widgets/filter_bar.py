"""The filter bar shared by the records browser and the review queue: builds a ``RecordFilter``."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Select

from curation.browse import PENDING, RecordFilter
from curation.effective import STATUSES

STATUS_CHOICES: list[tuple[str, tuple[str, ...]]] = [
    ("any status", ()),
    ("to review", PENDING),
    *[(s.replace("_", " "), (s,)) for s in STATUSES],
]


VERIFIER_CHOICES: list[tuple[str, str | None]] = [
    ("any check", None),
    ("check failed", "failed"),
    ("checks passed", "passed"),
]


def _float(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _csv(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


class FilterBar(Horizontal):
    """Slice, status, confidence range, batch, text search and a SQL WHERE box. Enter in any field applies."""

    DEFAULT_CSS = """
    FilterBar { height: auto; }
    FilterBar Input { width: 1fr; }
    FilterBar #f-status { width: 18; }
    FilterBar #f-verifier { width: 19; }
    FilterBar #f-min, FilterBar #f-max, FilterBar #f-batch { width: 10; }
    FilterBar #f-where { width: 2fr; }
    """

    @dataclass
    class Changed(Message):
        """The user applied a new filter."""

        filter: RecordFilter

    def __init__(self, initial: RecordFilter | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.initial = initial or RecordFilter()
        self._last = self.initial

    def compose(self) -> ComposeResult:
        f = self.initial
        status_index = next((i for i, (_, v) in enumerate(STATUS_CHOICES) if v == f.statuses), 0)
        yield Input(",".join(f.slices), placeholder="slice(s)", id="f-slice")
        yield Select(
            [(label, i) for i, (label, _) in enumerate(STATUS_CHOICES)],
            value=status_index,
            allow_blank=False,
            id="f-status",
        )
        yield Select(
            [(label, i) for i, (label, _) in enumerate(VERIFIER_CHOICES)],
            value=next((i for i, (_, v) in enumerate(VERIFIER_CHOICES) if v == f.verifier), 0),
            allow_blank=False,
            id="f-verifier",
        )
        yield Input("" if f.min_confidence is None else str(f.min_confidence), placeholder="conf ≥", id="f-min")
        yield Input("" if f.max_confidence is None else str(f.max_confidence), placeholder="conf ≤", id="f-max")
        yield Input(",".join(map(str, f.batch_ids)), placeholder="batch", id="f-batch")
        yield Input(f.text or "", placeholder="search text", id="f-text")
        yield Input(f.where or "", placeholder="SQL WHERE, e.g. slice = 'billing' AND confidence < 0.6", id="f-where")

    def current(self) -> RecordFilter:
        """The filter the fields describe now."""
        status = self.query_one("#f-status", Select).value
        statuses = STATUS_CHOICES[status][1] if isinstance(status, int) else ()
        verifier = self.query_one("#f-verifier", Select).value
        batches = tuple(int(b) for b in _csv(self.query_one("#f-batch", Input).value) if b.isdigit())
        return RecordFilter(
            slices=_csv(self.query_one("#f-slice", Input).value),
            statuses=statuses,
            min_confidence=_float(self.query_one("#f-min", Input).value),
            max_confidence=_float(self.query_one("#f-max", Input).value),
            batch_ids=batches,
            text=self.query_one("#f-text", Input).value.strip() or None,
            where=self.query_one("#f-where", Input).value.strip() or None,
            verifier=VERIFIER_CHOICES[verifier][1] if isinstance(verifier, int) else None,
        )

    def _apply(self, force: bool) -> None:
        filt = self.current()
        if force or filt != self._last:  # Select reports its initial value on mount: not a change
            self._last = filt
            self.post_message(self.Changed(filt))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._apply(force=True)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._apply(force=False)
