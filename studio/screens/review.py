"""Review queue: one record at a time, keyboard first; every decision is committed as it is made."""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.table import Table
from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Header, Markdown, Static

from curation import review
from curation.browse import ORDERS, PENDING, RecordFilter, RecordRow, count_records, fetch_page, get_record
from curation.errors import UserError
from curation.workspace import Workspace
from studio.failures import benign
from studio.screens.review_bulk import BulkReview
from studio.screens.review_team import TeamReview
from studio.screens.teacher_actions import TeacherActions
from studio.widgets.filter_bar import FilterBar
from studio.widgets.modals import EditModal, LabelModal, PromptModal
from studio.widgets.record_view import RecordView

KEYS_CAPTION = (
    "on every record of the filter: A accept all · X reject all · L relabel all\n"
    "S split between reviewers · Q queue: to review, mine, conflicts\n"
    "m flag for review · / filter · esc back to the queue · b back · ^r refresh · ? all keys"
)


@dataclass
class ProgressLoaded(Message):
    """Reviewed / remaining per slice for the queue's filter."""

    rows: list[review.SliceProgress]
    remaining: int
    flagged: int  # of those, flagged for review (needs_review)


@dataclass
class UndoDone(Message):
    """An undo finished in a thread."""

    result: review.UndoResult


class ReviewScreen(TeamReview, BulkReview, TeacherActions):
    """Walk the records of a filter in an order and decide on each one."""

    AUTO_FOCUS = "#review-record"  # keys are decisions: no input may swallow them until the user asks (/)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n,j", "next", "Next", id="review.next"),
        Binding("p,k", "prev", "Prev", id="review.prev"),
        Binding("a", "accept", "Accept", id="review.accept"),
        Binding("r", "reject", "Reject", id="review.reject"),
        Binding("e", "edit", "Edit", id="review.edit"),
        Binding("E", "edit_external", "Edit in $EDITOR", show=False, id="review.edit_external"),
        Binding("l", "relabel", "Relabel", id="review.relabel"),
        Binding("m", "mark", "Needs review", show=False, id="review.mark"),
        Binding("u", "undo", "Undo", id="review.undo"),
        Binding("o", "cycle_order", "Order", id="review.order"),
        Binding("t", "next_teacher", "Next teacher", id="review.next_teacher"),
        Binding("d", "diff_base", "Diff against", show=False, id="review.diff_base"),
        Binding("T", "use_teacher", "Use teacher's answer", show=False, id="review.use_teacher"),
        Binding("slash", "focus_filter", "Filter", show=False, id="review.filter"),
        Binding("escape", "focus_queue", "Back to queue", show=False, id="review.focus_queue"),
        Binding("b", "back", "Back", show=False, id="review.back"),
        Binding("c", "comment", "Comment", id="review.comment"),
        Binding("g", "guidelines", "Guidelines", id="review.guidelines"),
        Binding("Q", "cycle_queue", "Queue", id="review.queue"),
        Binding("S", "assign", "Split between reviewers", show=False, id="review.assign"),
        Binding("A", "bulk_accept", "Accept all", show=False, id="review.bulk_accept"),
        Binding("X", "bulk_reject", "Reject all", show=False, id="review.bulk_reject"),
        Binding("L", "bulk_relabel", "Relabel all", show=False, id="review.bulk_relabel"),
        Binding("ctrl+r", "refresh", "Refresh", show=False, id="review.refresh"),
    ]

    def __init__(
        self,
        workspace: Workspace,
        filt: RecordFilter | None = None,
        order: str = "queue",
        start_key: tuple[Any, ...] | None = None,
    ) -> None:
        super().__init__()
        self.workspace = workspace
        self.filter = filt if filt is not None else RecordFilter(statuses=PENDING)
        self._default_queue = filt is None  # the mode screen: may become "mine" once the reviewer is known
        self.order = order
        self.current: RecordRow | None = None
        self._start_key = start_key
        self.reviewer = review.reviewer_name()
        self._left = False  # another screen was shown in its place (not a dialog over it)

    def compose(self) -> ComposeResult:
        yield Header()
        yield FilterBar(self.filter, id="filters")
        with Horizontal(id="review-body"):
            yield RecordView(id="review-record")
            yield Static("", id="review-progress")
            with VerticalScroll(id="review-guide"):
                yield Markdown("", id="review-guide-text")
        yield Static("", id="review-status", classes="status-line")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#review-guide").display = False
        app = self.app
        if getattr(app, "ask_reviewer", False):
            app.push_screen(  # once per studio: the answer is remembered for the next start
                PromptModal("Your reviewer name (remembered for next time):", getattr(app, "reviewer", "")),
                self._named,
            )
        self._start_as(getattr(app, "reviewer", None) or self.reviewer)

    def on_screen_suspend(self) -> None:
        # A dialog opened over the screen keeps it on the stack; switching to another screen takes it off.
        self._left = self not in self.app.screen_stack

    def on_screen_resume(self) -> None:
        # Back from another screen: a filter there, the CLI or another studio may have queued or decided records.
        if self._left:
            self._left = False
            self.action_refresh()

    def action_refresh(self) -> None:
        """Reload the queue from the workspace and show its first record (newly flagged records come first)."""
        self.restart()

    # -- navigation ----------------------------------------------------------------------------------------

    def restart(self, key: tuple[Any, ...] | None = None) -> None:
        """Show the first record of the queue (at ``key`` or after it when given)."""
        rows = self._fetch(before=None, at_or_after=key)
        self._show(rows[0] if rows else None)

    def _fetch(
        self, *, after: tuple[Any, ...] | None = None, before: tuple[Any, ...] | None = None, at_or_after: Any = None
    ) -> list[RecordRow]:
        try:
            if at_or_after is not None:  # "at or after": after the key just below it
                at_or_after = (at_or_after[0], at_or_after[1] - 1)
                return fetch_page(self.workspace, self.filter, self.order, after=at_or_after, limit=1)
            return fetch_page(self.workspace, self.filter, self.order, after=after, before=before, limit=1)
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return []

    def _show(self, row: RecordRow | None) -> None:
        self.current = row
        view = self.query_one(RecordView)
        view.show(get_record(self.workspace, row.record_id) if row else None)
        self._refresh_progress()

    def _advance(self) -> None:
        """Move past the current record (it may have left the filter; the order key still places it)."""
        if self.current is None:
            self.restart()
            return
        rows = self._fetch(after=self.current.key)
        if rows:
            self._show(rows[0])
        else:
            self.notify("end of the queue")
            self._show(self.current if self._still_matches(self.current) else None)

    def _still_matches(self, row: RecordRow) -> bool:
        found = self._fetch(at_or_after=row.key)
        return bool(found) and found[0].record_id == row.record_id

    def action_next(self) -> None:
        self._advance()

    def action_prev(self) -> None:
        if self.current is None:
            rows = fetch_page(self.workspace, self.filter, self.order, from_end=True, limit=1)
        else:
            rows = self._fetch(before=self.current.key)
        if rows:
            self._show(rows[0])
        else:
            self.notify("start of the queue")

    def action_cycle_order(self) -> None:
        names = list(ORDERS)
        self.order = names[(names.index(self.order) + 1) % len(names)]
        self.notify(f"order: {ORDERS[self.order][0]}")
        self.restart()

    def action_use_teacher(self) -> None:
        """Make the highlighted teacher's answer the record's answer (an edit, undoable like any)."""
        chosen = self.query_one(RecordView).selected_answer()
        if chosen is None or self.current is None:
            self.notify("this record has one teacher's answer", severity="warning")
            return
        if chosen.response == self._current_response():
            self.notify(f"{chosen.teacher}'s answer is already the record's answer")
            return
        self._decide(review.edit, chosen.response)

    def action_focus_filter(self) -> None:
        self.query_one("#f-text").focus()

    def action_focus_queue(self) -> None:
        self.query_one("#review-record").focus()

    def on_filter_bar_changed(self, message: FilterBar.Changed) -> None:
        # Focus stays in the field: keys typed after Enter must not become decisions (" and" accepted and skipped a
        # record); esc goes back to the queue. The queue (mine, conflicts) is not a field: it stays.
        self.filter = dataclasses.replace(message.filter, pending_for=self.filter.pending_for,
                                          conflicts=self.filter.conflicts)  # fmt: skip
        self.restart()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "Back" only where there is somewhere to go back to (a review pushed from the records browser).
        return len(self.app.screen_stack) > 1 if action == "back" else True

    def action_back(self) -> None:
        """Leave a review pushed from the records browser."""
        if len(self.app.screen_stack) > 1:
            self.dismiss(None)

    # -- single decisions ----------------------------------------------------------------------------------

    def _decide(self, fn: Any, *args: Any) -> None:
        if self.current is None:
            self.notify("nothing to review here", severity="warning")
            return
        try:
            fn(self.workspace, self.current.record_id, *args, reviewer=self.reviewer)
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        self._advance()

    def action_accept(self) -> None:
        self._decide(review.accept)

    def action_mark(self) -> None:
        self._decide(review.queue, "marked in review")

    def action_reject(self) -> None:
        if self.current is None:
            return
        self.app.push_screen(LabelModal("Reject: reason?", self._labels("reason"), placeholder="e.g. wrong intent"),
                             self._rejected)  # fmt: skip

    def _rejected(self, reason: str | None) -> None:
        if reason:
            self._decide(review.reject, reason)

    def action_relabel(self) -> None:
        if self.current is None:
            return
        self.app.push_screen(LabelModal("Move to slice:", self._labels("slice")), self._relabelled)

    def _relabelled(self, new_slice: str | None) -> None:
        if new_slice and self.current is not None and new_slice != self.current.slice:
            self._decide(review.relabel, new_slice)

    def _current_response(self) -> str:
        assert self.current is not None
        return get_record(self.workspace, self.current.record_id).response or ""

    def action_edit(self) -> None:
        if self.current is None:
            return
        text = self._current_response()
        self.app.push_screen(EditModal(f"Edit response of record {self.current.record_id}", text), self._edited)

    def action_edit_external(self) -> None:
        """Edit in $VISUAL / $EDITOR (the app is suspended meanwhile)."""
        if self.current is None:
            return
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
            fh.write(self._current_response())
            path = Path(fh.name)
        try:
            command = [*shlex.split(editor), str(path)]
            try:
                with self.app.suspend():
                    subprocess.run(command, check=False)
            except SuspendNotSupported:  # headless or no terminal to hand over: the editor runs without one
                subprocess.run(command, check=False, stdin=subprocess.DEVNULL, capture_output=True)
            self._edited(path.read_text(encoding="utf-8"))
        finally:
            path.unlink(missing_ok=True)

    def _edited(self, text: str | None) -> None:
        if text is None or self.current is None:
            return
        if text.rstrip("\n") == self._current_response().rstrip("\n"):
            self.notify("no change")
            return
        self._decide(review.edit, text)

    def action_undo(self) -> None:
        """Undo this reviewer's last decision; a bulk one (possibly many rows) is undone in a thread."""
        last = review.last_undoable(self.workspace, reviewer=self.reviewer)
        if last is not None and last["bulk_id"] is not None:
            self._undo_bulk()
            return
        self._undone(review.undo(self.workspace, reviewer=self.reviewer))

    @work(thread=True, exclusive=True, group="review-bulk", exit_on_error=False)
    def _undo_bulk(self) -> None:
        self.post_message(UndoDone(review.undo(self.workspace, reviewer=self.reviewer)))

    def on_undo_done(self, message: UndoDone) -> None:
        self._undone(message.result)

    def _undone(self, result: review.UndoResult) -> None:
        if result.count == 0:
            self.notify("nothing to undo")
            return
        self.notify(f"undid {result.action} on {result.count:,} record(s)")
        if result.count == 1:
            back = RecordFilter(where=f"record_id = {int(result.record_ids[0])}")
            rows = fetch_page(self.workspace, back, self.order, limit=1)
            if rows:
                self._show(rows[0])
                return
        self.restart(self.current.key if self.current else None)

    # -- progress ------------------------------------------------------------------------------------------

    def _refresh_progress(self) -> None:
        status = self.query_one("#review-status", Static)
        cur = f"record {self.current.record_id}" if self.current else "queue empty"
        status.update(f"{cur} · queue {self.queue_name()} · {ORDERS[self.order][0]} · {self.filter.describe()} · "
                      f"reviewer {self.reviewer}")  # fmt: skip
        self._load_progress(self.filter)

    @benign(UserError)  # a filter that cannot run: the record fetch (_fetch) has already said so
    @work(thread=True, exclusive=True, group="review-progress", exit_on_error=False)
    def _load_progress(self, filt: RecordFilter) -> None:
        rows = review.progress_by_slice(self.workspace, dataclasses.replace(filt, statuses=()))
        flagged = (
            count_records(self.workspace, dataclasses.replace(filt, statuses=("needs_review",)))
            if not filt.statuses or "needs_review" in filt.statuses
            else 0
        )
        self.post_message(ProgressLoaded(rows, count_records(self.workspace, filt), flagged))

    def on_progress_loaded(self, message: ProgressLoaded) -> None:
        table = Table("slice", "done", "left", "✓", "✗", box=None, padding=(0, 1), header_style="bold")
        for p in message.rows[:30]:
            table.add_row(p.slice[:18], f"{p.reviewed:,}", f"{p.remaining:,}", f"{p.accepted:,}", f"{p.rejected:,}")
        total = sum(p.total for p in message.rows)
        done = sum(p.reviewed for p in message.rows)
        flagged = f"{message.flagged:,} flagged first · " if message.flagged else ""
        table.title = f"{done:,} / {total:,} reviewed · {flagged}{message.remaining:,} in queue"
        table.caption, table.caption_justify = (
            KEYS_CAPTION,
            "left",
        )  # the keys the footer has no room for at 160 columns
        self.query_one("#review-progress", Static).update(table)
