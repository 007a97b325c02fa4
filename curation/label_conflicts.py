"""Dedupe that knows about answers: near-duplicate prompts merge only when their teacher answers agree.

For a classification-like task (the quality bar compares a label: ``exact:FIELD``, ``label_in_set``,
``verifier:label``, ``verifier:exact_match:FIELD``), two near-identical prompts with different answers are not
one example said twice: one of the answers is wrong, or the prompts differ in what decides the label. Merging them
would keep one answer at random (the most confident); instead they stay apart and go to review as a label conflict,
listed with every answer. For free-text tasks answers always differ in wording, so prompts alone decide.

``--answers auto`` (the default) picks: agree when the bar names a label (its field is compared), or when the
answers look like labels (at most ``LABEL_LIKE_MAX`` distinct answers and at most one per ``LABEL_LIKE_RATIO``
answered records: banking77 has 77 over 10,003); otherwise ignore. The bar lives in ``train``; the front-ends pass
what it says (``train.bars.bar_label``), as they pass failing slices to oversampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from curation.options import ChoiceOption, TextOption
from curation.verifiers import NO_LABEL, answer_label

ANSWERS = ChoiceOption(
    name="answers",
    choices=("auto", "agree", "ignore"),
    default="auto",
    required=True,
    help="agree: merge near-duplicate prompts only when their teacher answers agree (the others go to review as "
    "label conflicts); ignore: prompts alone decide; auto: agree when the quality bar compares a label or the "
    "answers look like labels",
)
LABEL_FIELD = TextOption(
    name="label_field",
    metavar="FIELD",
    help="JSON field of the answer that must agree (default: the quality bar's label field, else the whole answer)",
)
LABEL_LIKE_MAX = 200  # distinct answers at most, for answers to look like labels without a bar
LABEL_LIKE_RATIO = 5  # answered records per distinct answer at least
CONFLICT_SHOWN = 5  # answers listed per conflict


@dataclass(frozen=True)
class AnswerRule:
    """Whether answers must agree, on which field, and why (said in the preview)."""

    agree: bool
    field: str | None
    why: str


def resolve_rule(
    answers: str,
    label_field: str | None,
    bar_label: tuple[bool, str | None] | None,
    responses: Sequence[str | None],
) -> AnswerRule:
    """The rule ``answers`` (auto | agree | ignore) stands for, given the bar's label (labelled, field) and answers."""
    ANSWERS.check(answers)
    labelled, bar_field = bar_label or (False, None)
    fld = label_field or (bar_field if labelled else None)
    on = f"field {fld!r}" if fld else "the whole answer"
    if answers == "ignore":
        return AnswerRule(False, None, "prompts alone decide (answers ignored)")
    if answers == "agree":
        return AnswerRule(True, fld, f"answers must agree on {on}")
    if labelled:
        return AnswerRule(True, fld, f"answers must agree on {on} (the quality bar compares a label)")
    known = [answer_label(r, fld) for r in responses if r is not None]
    distinct = len(set(known))
    if known and distinct <= LABEL_LIKE_MAX and distinct * LABEL_LIKE_RATIO <= len(known):
        return AnswerRule(
            True, fld, f"answers must agree on {on} (they look like labels: {distinct:,} distinct in {len(known):,})"
        )
    return AnswerRule(False, None, f"prompts alone decide (answers are free text: {distinct:,} distinct)")


def labels_of(rule: AnswerRule, responses: Sequence[str | None]) -> list[str]:
    """Each record's answer label under the rule (``(none)`` for no answer: it agrees with any)."""
    return [answer_label(r, rule.field) if r is not None else NO_LABEL for r in responses]


def split_by_answer(members: list[int], labels: Sequence[str]) -> list[list[int]]:
    """A cluster's members (row indexes) grouped by answer label when two known labels differ, else one group.

    Per cluster rather than per pair: a record without an answer agrees with anything, so pairwise agreement would
    chain "a" - (no answer) - "b" into one group."""
    known = {labels[m] for m in members} - {NO_LABEL}
    if len(known) < 2:
        return [members]
    groups: dict[str, list[int]] = {}
    for m in members:
        groups.setdefault(labels[m], []).append(m)
    return list(groups.values())


@dataclass
class ConflictAnswer:
    """One answer in a conflict: its label, the records that gave it, an example prompt and answer."""

    label: str
    record_ids: list[int]
    prompt: str
    response: str


@dataclass
class LabelConflict:
    """A cluster of near-duplicate prompts whose teacher answers disagree."""

    record_ids: list[int]  # every member of the cluster
    answers: list[ConflictAnswer] = field(default_factory=list)
    to_review: list[int] = field(default_factory=list)  # kept members no human accepted yet: a reviewer picks


def conflict_of(rows: list[dict], members: list[int], labels: Sequence[str], kept: dict) -> LabelConflict | None:
    """The conflict in one cluster (row indexes ``members``; ``kept`` by record id, as decided), or None when its
    known answers agree."""
    by_label: dict[str, list[int]] = {}
    for m in members:
        if labels[m] != NO_LABEL:
            by_label.setdefault(labels[m], []).append(m)
    if len(by_label) < 2:
        return None
    ids = [rows[m]["record_id"] for m in members]
    # A human's accept stands (the caller left rejected records out already).
    review = [
        rows[m]["record_id"] for m in members if kept[rows[m]["record_id"]][0] and rows[m]["status"] != "accepted"
    ]
    out = LabelConflict(ids, to_review=review)
    for lab, ms in sorted(by_label.items(), key=lambda kv: -len(kv[1]))[:CONFLICT_SHOWN]:
        first = rows[ms[0]]
        out.answers.append(ConflictAnswer(lab, [rows[m]["record_id"] for m in ms], first["prompt"] or "",
                                          first["response"] or ""))  # fmt: skip
    return out
