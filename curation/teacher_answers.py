"""Every teacher's answer to a record: the one definition of "a teacher's output" that readers go through.

A record's own answer (``records.response``, the teacher named by ``records.teacher_model``, or ``UNNAMED``) and every
row of ``teacher_outputs`` (answers asked through a teacher's API, and other teachers' imported answers that
``curation.importing.attach`` put beside the record). When a teacher's API answer also filled the record's empty
response (``curation.teacher.store``), the two are one answer and count once, under the teacher's name.

The record detail and the review queue show these side by side, teacher policies for a dataset version
(``train.teacher_policy``) choose among them, and soft labels (``curation.soft_labels``) average them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from curation.workspace import Workspace

UNNAMED = "(unnamed)"  # the teacher of an answer imported with no model field and no --teacher

TEACHER_ANSWERS_SQL = f"""
SELECT o.record_id, o.teacher, o.response, o.response_logprobs, exp(o.mean_logprob) AS confidence, false AS own
FROM teacher_outputs o WHERE o.response IS NOT NULL
UNION ALL
SELECT r.record_id, coalesce(r.teacher_model, '{UNNAMED}') AS teacher, r.response, r.response_logprobs,
    exp(r.mean_logprob) AS confidence, true AS own
FROM records r
WHERE r.response IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM teacher_outputs o WHERE o.record_id = r.record_id
        AND (o.teacher = r.teacher_model OR (o.model = r.teacher_model AND o.response = r.response))
)
"""

# Records whose teachers gave different answers (compared with surrounding space ignored): the review queue's
# "teachers disagree first" order sorts by this count of distinct answers.
DISTINCT_ANSWERS_SQL = (
    f"(SELECT count(DISTINCT trim(t.response)) FROM ({TEACHER_ANSWERS_SQL}) t WHERE t.record_id = {{rid}})"
)


@dataclass(frozen=True)
class TeacherAnswer:
    """One teacher's answer to a record; ``own``: it is the record's imported answer."""

    teacher: str
    response: str
    confidence: float | None
    own: bool


def record_answers(ws: Workspace, record_id: int) -> list[TeacherAnswer]:
    """Every teacher's answer to one record, the record's own first, then by teacher name."""
    rows = ws.query(
        f"SELECT teacher, response, confidence, own FROM ({TEACHER_ANSWERS_SQL}) WHERE record_id = ? "
        "ORDER BY own DESC, teacher",
        [record_id],
    )
    return [TeacherAnswer(str(t), str(r), None if c is None else float(c), bool(o)) for t, r, c, o in rows]


def teacher_names(ws: Workspace) -> list[tuple[str, int]]:
    """Each teacher with answers in the workspace and how many records it answered, most first."""
    rows = ws.query(
        f"SELECT teacher, count(DISTINCT record_id) FROM ({TEACHER_ANSWERS_SQL}) GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    return [(str(t), int(n)) for t, n in rows]


def word_diff(a: str, b: str) -> list[tuple[str, str]]:
    """A word diff of two answers as (op, words): op ``=`` both, ``-`` only in ``a``, ``+`` only in ``b``."""
    wa, wb = a.split(), b.split()
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=wa, b=wb, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(("=", " ".join(wa[i1:i2])))
            continue
        if i2 > i1:
            out.append(("-", " ".join(wa[i1:i2])))
        if j2 > j1:
            out.append(("+", " ".join(wb[j1:j2])))
    return out
