"""The review screen's team side (a mixin of ``ReviewScreen``): the reviewer's name, the queues (to review, mine,
conflicts), splitting the queue between reviewers, comments, guidelines and the fixed label sets. The domain work is
``curation.team``'s; this holds only what the screen does with it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from textual import work
from textual.message import Message
from textual.widgets import Markdown, Select

from curation import team
from curation.browse import PENDING, RecordFilter, count_records
from curation.errors import UserError
from studio.failures import LoudWorkers
from studio.reviewer import remember_reviewer
from studio.widgets.assign_dialog import AssignModal
from studio.widgets.filter_bar import STATUS_CHOICES, FilterBar
from studio.widgets.modals import PromptModal
from train.bars import get_bar

GUIDELINES_MISSING = "No guidelines yet: the quality bar's task text is shown here (`distill bar set --task ...`)."


@dataclass
class Assigned(Message):
    """An assignment finished (or failed with ``error``)."""

    result: team.AssignResult | None
    error: str | None = None


class TeamReview(LoudWorkers):
    """Team review for ``ReviewScreen`` (which provides ``workspace``, ``filter``, ``reviewer``, ``current``,
    ``restart`` and ``_show``)."""

    workspace: Any
    filter: RecordFilter
    reviewer: str
    current: Any
    _default_queue: bool
    _start_key: Any

    def _named(self, name: str | None) -> None:
        app: Any = self.app
        app.ask_reviewer = False
        if not name:
            return
        app.reviewer = name
        problem = remember_reviewer(name)
        if problem:
            self.notify(problem, severity="warning")
        self._start_as(name)

    def _start_as(self, reviewer: str) -> None:
        """Review as ``reviewer``: their own queue when they have assignments (on the review screen itself)."""
        self.reviewer = reviewer
        if self._default_queue and team.has_assignments(self.workspace, reviewer):
            self._set_queue("mine")
        self.restart(self._start_key)

    # -- queues ---------------------------------------------------------------------------------------------

    QUEUES = ("to review", "mine", "conflicts")

    def queue_name(self) -> str:
        """Which queue the filter is: the reviewer's assignments, the conflicts, or every record left."""
        return "mine" if self.filter.pending_for else "conflicts" if self.filter.conflicts else "to review"

    def _set_queue(self, name: str) -> None:
        base = self.query_one(FilterBar).current()
        statuses = PENDING if name == "to review" else ()  # in "mine", another reviewer's verdict must not hide it
        self.filter = dataclasses.replace(base, statuses=statuses, pending_for=self.reviewer if name == "mine" else None,
                                          conflicts=name == "conflicts")  # fmt: skip
        status = self.query_one("#f-status", Select)
        with self.prevent(Select.Changed):
            status.value = next(i for i, (_, v) in enumerate(STATUS_CHOICES) if v == statuses)

    def action_cycle_queue(self) -> None:
        """To review → my assignments (when I have some) → conflicts → to review."""
        mine = team.has_assignments(self.workspace, self.reviewer)
        names = [q for q in self.QUEUES if q != "mine" or mine]
        nxt = names[(names.index(self.queue_name()) + 1) % len(names)] if self.queue_name() in names else names[0]
        self._set_queue(nxt)
        self.notify(f"queue: {nxt}" + (f" ({self.reviewer}'s assignments)" if nxt == "mine" else ""))
        self.restart()

    def action_assign(self) -> None:
        """Split the records of this filter between named reviewers (with an overlap reviewed twice)."""
        records = dataclasses.replace(self.filter, pending_for=None, conflicts=False)
        n = count_records(self.workspace, records)
        if n == 0:
            self.notify("no record matches the filter", severity="warning")
            return
        self.app.push_screen(AssignModal(records.describe(), n), lambda v: self._assign(records, v) if v else None)

    @work(thread=True, exclusive=True, group="review-bulk", exit_on_error=False)
    def _assign(self, records: RecordFilter, values: dict[str, Any]) -> None:
        try:
            result = team.assign(self.workspace, values["reviewers"], records, by=values["by"],
                                 overlap=values["overlap"], seed=values["seed"])  # fmt: skip
        except UserError as exc:
            self.post_message(Assigned(None, str(exc)))
            return
        self.post_message(Assigned(result))

    def on_assigned(self, message: Assigned) -> None:
        r = message.result
        if r is None:
            self.notify(message.error or "assignment failed", severity="error")
            return
        per = ", ".join(f"{k} {n:,}" for k, n in r.per_reviewer.items())
        self.notify(f"assigned {r.records:,} record(s), {r.overlap:,} twice: {per}")
        if self.reviewer in r.per_reviewer:
            self._set_queue("mine")
            self.restart()

    def _labels(self, kind: str) -> list[str]:
        """The fixed set for a relabel (slices) or a reject reason (earlier reasons, then the bar's labels)."""
        bar = get_bar(self.workspace) if kind == "reason" else None
        return team.label_choices(self.workspace, kind, bar.labels() if bar else ())

    def action_comment(self) -> None:
        """Comment on this record (every reviewer sees it in the record's detail)."""
        if self.current is None:
            return
        self.app.push_screen(PromptModal(f"Comment on record {self.current.record_id}:"), self._commented)

    def _commented(self, body: str | None) -> None:
        if body and self.current is not None:
            team.add_comment(self.workspace, self.current.record_id, self.reviewer, body)
            self._show(self.current)

    def action_guidelines(self) -> None:
        """Show or hide the guidelines: the quality bar's task text (markdown)."""
        guide = self.query_one("#review-guide")
        guide.display = not guide.display
        self.query_one("#review-progress").display = not guide.display
        if guide.display:
            bar = get_bar(self.workspace)
            text = bar.task if bar else GUIDELINES_MISSING
            self.query_one("#review-guide-text", Markdown).update(f"## Guidelines\n\n{text}")
