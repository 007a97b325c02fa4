"""Keys shared by the screens that show a record with its ``RecordView``: step through its teachers' answers (``t``)
and pick the answer a diff is drawn against (``d``). One definition for the Records and Review screens."""

from __future__ import annotations

from textual.screen import Screen

from studio.widgets.record_view import RecordView


class TeacherActions(Screen[None]):
    """``action_next_teacher`` and ``action_diff_base`` on the screen's ``RecordView`` (bindings stay on each
    screen: their ids name the screen)."""

    def action_next_teacher(self) -> None:
        name = self.query_one(RecordView).next_teacher()
        self.notify(f"teacher: {name}" if name else "this record has one teacher's answer")

    def action_diff_base(self) -> None:
        name = self.query_one(RecordView).next_base()
        if name:
            self.notify(f"diff against: {name}")
