"""The Review screen's bulk decisions: accept, reject or relabel every record matching the filter (A, X, L), after
a confirmation that says how many; one decision, undone as one (u)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import work
from textual.message import Message

from curation import review
from curation.browse import count_records
from curation.errors import UserError
from studio.failures import LoudWorkers
from studio.widgets.modals import ConfirmModal, LabelModal


@dataclass
class BulkDone(Message):
    """A bulk action finished (or failed with ``error``)."""

    decision: review.Decision | None
    error: str | None = None


class BulkReview(LoudWorkers):
    """Mixed into ``ReviewScreen``: uses its ``workspace``, ``filter``, ``reviewer``, ``_labels`` and ``restart``."""

    workspace: Any
    filter: Any
    reviewer: str

    def _confirm_bulk(self, verb: str, run: Any) -> None:
        n = count_records(self.workspace, self.filter)
        if n == 0:
            self.notify("no record matches the filter", severity="warning")
            return
        question = f"{verb} {n:,} record(s) matching {self.filter.describe()}?"
        self.app.push_screen(ConfirmModal(question), lambda ok: self._run_bulk(run) if ok else None)

    def action_bulk_accept(self) -> None:
        self._confirm_bulk("Accept", lambda: review.bulk_accept(self.workspace, self.filter, reviewer=self.reviewer))

    def action_bulk_reject(self) -> None:
        def asked(reason: str | None) -> None:
            if reason:
                self._confirm_bulk(
                    f"Reject ({reason})",
                    lambda: review.bulk_reject(self.workspace, self.filter, reason, reviewer=self.reviewer),
                )

        self.app.push_screen(LabelModal("Reject all matching: reason?", self._labels("reason")), asked)

    def action_bulk_relabel(self) -> None:
        def asked(new_slice: str | None) -> None:
            if new_slice:
                self._confirm_bulk(
                    f"Move to {new_slice!r}",
                    lambda: review.bulk_relabel(self.workspace, self.filter, new_slice, reviewer=self.reviewer),
                )

        self.app.push_screen(LabelModal("Move all matching to slice:", self._labels("slice")), asked)

    @work(thread=True, exclusive=True, group="review-bulk", exit_on_error=False)
    def _run_bulk(self, run: Any) -> None:
        try:
            self.post_message(BulkDone(run()))
        except UserError as exc:
            self.post_message(BulkDone(None, str(exc)))

    def on_bulk_done(self, message: BulkDone) -> None:
        if message.error or message.decision is None:
            self.notify(message.error or "bulk action failed", severity="error")
            return
        d = message.decision
        self.notify(f"{d.action}: {d.count:,} record(s) (u undoes it as one)")
        self.restart()
