"""A virtual list of records: one line per record, any number of records, paged from the workspace.

Like Toolong's LogLines, the widget is a ``ScrollView`` whose virtual height is the record count and which
renders only the visible lines. Rows come from ``curation.browse.fetch_page`` in a thread worker, moving by
keyset from a cached neighbour when there is one (sequential paging stays cheap at any depth) and by offset
for jumps; lines not loaded yet render as a placeholder until the page arrives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from curation.browse import ALL_RECORDS, RecordFilter, RecordRow, count_records, fetch_page
from curation.errors import UserError
from curation.workspace import Workspace
from studio.failures import LoudWorkers

PAGE = 200
MARGIN = 50  # rows fetched above the viewport, so a page-up after a page-down needs no query
CACHE_LIMIT = 4000

STATUS_MARK = {"unreviewed": " ", "needs_review": "?", "accepted": "✓", "rejected": "✗"}
# What the marks mean, for the legend under the list (the list itself has no room for words).
STATUS_LEGEND = "✓ accepted  ✗ rejected  ? needs review  ✎ edited"
STATUS_STYLE = {
    "unreviewed": Style(),
    "needs_review": Style(color="yellow"),
    "accepted": Style(color="green"),
    "rejected": Style(color="red"),
}


@dataclass
class PageLoaded(Message):
    """A page of rows arrived from the workspace (posted by the loader thread)."""

    generation: int
    start: int
    rows: list[RecordRow]


@dataclass
class CountLoaded(Message):
    """A (new) filter ran: how many records match, and the first page to show."""

    request: int
    total: int
    filter: RecordFilter
    order: str
    start: int
    rows: list[RecordRow]
    keep_cursor: bool


@dataclass
class QueryFailed(Message):
    """The filter could not run (bad SQL); the list keeps showing the previous result."""

    error: str


def _prompt_width(width: int) -> int:
    """The prompt column's width in a line of ``width``: 3/5 of what the id, mark, slice and confidence leave."""
    return max(10, width - 33) * 3 // 5


class RecordList(LoudWorkers, ScrollView, can_focus=True):
    """Records matching a filter, in an order; the cursor row is ``cursor``."""

    DEFAULT_CSS = """
    RecordList { overflow-x: hidden; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False, id="records.up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="records.down"),
        Binding("pageup", "page_up", "Page up", show=False, id="records.page_up"),
        Binding("pagedown,space", "page_down", "Page down", show=False, id="records.page_down"),
        Binding("home,g", "first", "First", show=False, id="records.first"),
        Binding("end,G", "last", "Last", show=False, id="records.last"),
        Binding("enter", "select", "Open", id="records.open"),
    ]

    @dataclass
    class Highlighted(Message):
        """The cursor moved onto a loaded row."""

        row: RecordRow
        index: int

    @dataclass
    class Selected(Message):
        """Enter on a row."""

        row: RecordRow
        index: int

    @dataclass
    class Counted(Message):
        """The list now shows ``total`` records for ``filter``."""

        total: int
        filter: RecordFilter

    def __init__(self, workspace: Workspace, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.workspace = workspace
        self.filter: RecordFilter = ALL_RECORDS
        self.order = "import"
        self.total = 0
        self.cursor = 0
        self._rows: dict[int, RecordRow] = {}
        self._generation = 0  # bumped when the list switches to a new result; stale pages are dropped
        self._request = 0  # bumped on every reload; only the latest one's count is applied
        self._pending: set[int] = set()
        self._announced: int | None = None
        self.cursor_painted: tuple[int, float] = (-1, 0.0)

    # -- data ----------------------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.reload()

    def on_resize(self) -> None:
        self._retitle()

    def _retitle(self) -> None:
        # Column titles in the top border. The title starts two cells right of where a row starts (the border's
        # first cell and a padding space): drop two characters to stay aligned (measured on the snapshot).
        self.border_title = self.header()[2:]

    def reload(self, filt: RecordFilter | None = None, order: str | None = None, *, keep_cursor: bool = False) -> None:
        """Show records for ``filt`` in ``order`` (defaults: current). Counting and the first page run in a thread;
        the list switches over only when they succeed, so a bad filter leaves the current result in place."""
        self._request += 1
        filt = self.filter if filt is None else filt
        order = self.order if order is None else order
        start = max(0, int(self.scroll_offset.y) - MARGIN) if keep_cursor else 0
        self._count(self._request, filt, order, start, keep_cursor)

    @work(thread=True, exclusive=True, group="record-count", exit_on_error=False)
    def _count(self, request: int, filt: RecordFilter, order: str, start: int, keep_cursor: bool) -> None:
        try:
            total = count_records(self.workspace, filt)
            rows = fetch_page(self.workspace, filt, order, offset=start, limit=PAGE)
        except UserError as exc:
            self.post_message(QueryFailed(str(exc)))
            return
        self.post_message(CountLoaded(request, total, filt, order, start, rows, keep_cursor))

    def on_count_loaded(self, message: CountLoaded) -> None:
        if message.request != self._request:
            return
        self._generation += 1
        self.filter, self.order, self.total = message.filter, message.order, message.total
        self._rows = {message.start + i: row for i, row in enumerate(message.rows)}
        self._pending.clear()
        self._announced = None
        self.virtual_size = Size(self.size.width, self.total)
        if message.keep_cursor:
            self.cursor = min(self.cursor, max(0, self.total - 1))
        else:
            self.cursor = 0
            self.scroll_to(y=0, animate=False, immediate=True)
        self.post_message(self.Counted(self.total, self.filter))
        self.refresh()
        self._announce()

    def on_page_loaded(self, message: PageLoaded) -> None:
        if message.generation != self._generation:
            return
        for i, row in enumerate(message.rows):
            self._rows[message.start + i] = row
        self._pending.discard(message.start)
        if len(self._rows) > CACHE_LIMIT:
            self._evict()
        self.refresh()
        self._announce()

    def _evict(self) -> None:
        top = int(self.scroll_offset.y)
        far = sorted(self._rows, key=lambda i: abs(i - top), reverse=True)
        for i in far[: len(self._rows) - CACHE_LIMIT // 2]:
            del self._rows[i]

    def _ensure_loaded(self, first: int, last: int) -> None:
        """Start a fetch if any row in [first, last] is missing, choosing the cheapest way to reach it."""
        missing = [i for i in range(max(0, first), min(self.total, last + 1)) if i not in self._rows]
        if not missing:
            return
        lo, hi = missing[0], missing[-1]
        kwargs: dict[str, Any]
        if hi + 1 in self._rows:  # moving up from loaded rows: keyset backwards
            start = max(0, hi + 1 - PAGE)
            kwargs = {"before": self._rows[hi + 1].key}
        elif lo - 1 in self._rows:  # moving down from loaded rows: keyset forwards
            start = lo
            kwargs = {"after": self._rows[lo - 1].key}
        else:  # a jump: the last rows by reverse order, else by offset
            start = max(0, lo - MARGIN)
            kwargs = {"from_end": True} if start + PAGE >= self.total else {"offset": start}
            if start + PAGE >= self.total:
                start = max(0, self.total - PAGE)
        limit = min(PAGE, self.total - start) if "before" not in kwargs else hi + 1 - start
        if start in self._pending:
            return
        self._pending.add(start)
        self._fetch(self._generation, self.filter, self.order, start, limit, kwargs)

    @work(thread=True, group="record-page", exit_on_error=False)
    def _fetch(
        self, generation: int, filt: RecordFilter, order: str, start: int, limit: int, kwargs: dict[str, Any]
    ) -> None:
        try:
            rows = fetch_page(self.workspace, filt, order, limit=limit, **kwargs)
        except UserError as exc:
            self.post_message(QueryFailed(str(exc)))
            return
        self.post_message(PageLoaded(generation, start, rows))

    # -- rendering -----------------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_offset.y) + y
        width = self.size.width
        if index >= self.total:
            return Strip.blank(width)
        row = self._rows.get(index)
        if row is None:
            self.call_after_refresh(self._ensure_loaded, index, index + self.size.height)
            return Strip([Segment(f"{index + 1:>9}  …".ljust(width)[:width], Style(dim=True))], width)
        selected = index == self.cursor
        if selected:  # when the cursor row last reached the screen with its data (tests and the benchmark read it)
            self.cursor_painted = (index, time.perf_counter())
        base = Style(reverse=True) if selected and self.has_focus else Style(bgcolor="grey23") if selected else Style()
        conf = "  -  " if row.confidence is None else f"{row.confidence:5.2f}"
        prompt = " ".join(row.prompt.split())
        response = " ".join((row.response or "").split())
        mark = STATUS_MARK.get(row.status, "?") + ("✎" if row.edited else " ")
        head = f"{row.record_id:>9} "
        prompt_width = _prompt_width(width)
        segs = [
            Segment(head, base + Style(dim=True)),
            Segment(mark + " ", base + STATUS_STYLE.get(row.status, Style())),
            Segment(f"{row.slice[:14]:<14} ", base + Style(color="cyan")),
            Segment(f"{conf} ", base),
            Segment(prompt[: prompt_width - 1].ljust(prompt_width), base),
            Segment(response, base + Style(dim=True)),
        ]
        return Strip(segs).crop_extend(0, width, base)

    def header(self) -> str:
        """The column titles, laid out as ``render_line`` lays out a row at this width."""
        width = self.size.width  # what render_line lays a row out in
        return f"{'id':>9} {'st':<3}{'slice':<14} {'conf':>5} {'prompt':<{_prompt_width(width)}}response"[:width]

    def _announce(self) -> None:
        row = self._rows.get(self.cursor)
        if row is not None and self._announced != row.record_id:
            self._announced = row.record_id
            self.post_message(self.Highlighted(row, self.cursor))

    def current_row(self) -> RecordRow | None:
        """The row under the cursor, if loaded."""
        return self._rows.get(self.cursor)

    # -- movement ------------------------------------------------------------------------------------------

    def move_to(self, index: int) -> None:
        """Put the cursor on ``index`` and scroll it into view."""
        if self.total == 0:
            return
        self.cursor = max(0, min(index, self.total - 1))
        self._scroll_to_cursor()
        # A new virtual size only becomes scrollable after the next layout: check again then (keys pressed
        # right after a reload would otherwise leave the cursor off screen).
        self.call_after_refresh(self._scroll_to_cursor)
        self.refresh()
        self._ensure_loaded(self.cursor, self.cursor)
        self._prefetch()
        self._announce()

    def _scroll_to_cursor(self) -> None:
        top, height = int(self.scroll_offset.y), self._height()
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def _prefetch(self) -> None:
        """Load the rows a page beyond either edge of the view before they are needed."""
        top, height = int(self.scroll_offset.y), self._height()
        self._ensure_loaded(top, top + height)
        self._ensure_loaded(top + height, top + 2 * height + MARGIN)
        self._ensure_loaded(max(0, top - height - MARGIN), top)

    def action_cursor_up(self) -> None:
        self.move_to(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_to(self.cursor + 1)

    def _height(self) -> int:
        return max(1, self.scrollable_content_region.height)

    def action_page_down(self) -> None:
        height = self._height()
        self.scroll_to(y=int(self.scroll_offset.y) + height, animate=False, immediate=True)
        self.move_to(self.cursor + height)

    def action_page_up(self) -> None:
        height = self._height()
        self.scroll_to(y=max(0, int(self.scroll_offset.y) - height), animate=False, immediate=True)
        self.move_to(self.cursor - height)

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(self.total - 1)

    def action_select(self) -> None:
        row = self.current_row()
        if row is not None:
            self.post_message(self.Selected(row, self.cursor))

    def on_click(self, event: Any) -> None:
        self.move_to(int(self.scroll_offset.y) + event.y)

    def is_settled(self) -> bool:
        """Whether every visible row and the cursor row are loaded (used by tests and the benchmark)."""
        top = int(self.scroll_offset.y)
        last = min(self.total, top + self._height())
        return all(i in self._rows for i in range(top, last)) and (self.total == 0 or self.cursor in self._rows)
