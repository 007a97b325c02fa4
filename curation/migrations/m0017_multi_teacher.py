"""v17: several teachers' imported answers side by side, and which teacher's answer a version member took.

``teacher_outputs.batch_id``: the import that brought a teacher's answer (NULL: asked through the teacher's API);
an answer to a prompt another teacher already answered attaches to that record as this teacher's output
(``curation.importing.attach``), and ``undo-import`` of that batch removes exactly those.
``dataset_members.teacher`` / ``agreement``: the teacher whose answer a member took under a teacher policy (NULL: the
record's own effective answer) and, for a vote, the share of teachers that gave it.
"""

from __future__ import annotations

import duckdb

VERSION = 17
DESCRIPTION = "teacher_outputs.batch_id (imported teachers' answers); dataset_members.teacher, agreement (policies)"


def apply(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("ALTER TABLE teacher_outputs ADD COLUMN batch_id INTEGER")
    con.execute("ALTER TABLE dataset_members ADD COLUMN teacher VARCHAR")
    con.execute("ALTER TABLE dataset_members ADD COLUMN agreement DOUBLE")
