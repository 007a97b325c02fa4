"""Teacher policies for a dataset version: whose answer each member trains on when several teachers answered.

- ``teacher``: one named teacher's answer for every member (members it did not answer keep their own answer);
- ``specialist``: per slice, the teacher with the best mean score on the bar's primary metric over the slice's
  members it can be scored on (against the references, or a check that needs none), shown as a table first;
- ``vote``: for checkable answers, the majority over teachers (on the bar's label field when it names one, else the
  whole answer, case and surrounding space ignored); the share of teachers agreeing is stored as the member's
  ``agreement``; members where the teachers disagree go to review, and a tie keeps the record's own answer.

Teachers' answers come from ``curation.teacher_answers`` (the one definition); the version is written by
``curation.datasets.create_version`` with the recipe naming the policy and, for a specialist, each slice's teacher.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from curation import datasets as ds
from curation.errors import UserError
from curation.soft_labels import field_value
from curation.teacher_answers import TEACHER_ANSWERS_SQL
from curation.workspace import Workspace
from train.bars import QualityBar
from train.metrics import score

POLICIES = ("teacher", "specialist", "vote")
VOTE_REASON = "teachers disagree"


@dataclass
class SliceChoice:
    """One slice under the specialist policy: each teacher's mean score (and how many it was scored on)."""

    slice: str
    scores: dict[str, tuple[float, int]]
    chosen: str | None  # None: no teacher could be scored here; members keep their own answers


@dataclass
class PolicyPlan:
    """What a policy would do to a version, before it is written."""

    policy: str
    base: str
    teacher: str | None = None
    slices: list[SliceChoice] = field(default_factory=list)
    answers: dict[int, ds.ChosenAnswer] = field(default_factory=dict)
    to_review: list[int] = field(default_factory=list)  # vote: members whose teachers disagree
    ties: int = 0
    n_members: int = 0

    def recipe_step(self) -> dict[str, Any]:
        """The recipe entry recording the policy (``versions show`` prints it)."""
        step: dict[str, Any] = {"op": "teacher_policy", "policy": self.policy, "from": self.base}
        if self.teacher:
            step["teacher"] = self.teacher
        if self.slices:
            step["slices"] = {s.slice: s.chosen for s in self.slices}
        if self.policy == "vote":
            step.update(disagree=len(self.to_review), ties=self.ties)
        return step


def _answers(ws: Workspace, base: str) -> dict[int, list[tuple[str, str]]]:
    """Per member of ``base``, every teacher's (name, answer): the record's own first."""
    rows = ws.query(
        f"SELECT t.record_id, t.teacher, t.response FROM ({TEACHER_ANSWERS_SQL}) t "
        "JOIN dataset_members m ON m.record_id = t.record_id AND m.version = ? ORDER BY t.record_id, t.own DESC, 2",
        [base],
    )
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for rid, teacher, resp in rows:
        out[int(rid)].append((str(teacher), str(resp)))
    return out


def plan_policy(ws: Workspace, base: str, policy: str, *, teacher: str | None = None,
                bar: QualityBar | None = None) -> PolicyPlan:  # fmt: skip
    """What ``policy`` would give each member of version ``base`` (nothing is written)."""
    if policy not in POLICIES:
        raise UserError(f"unknown teacher policy {policy!r}; choose one of {', '.join(POLICIES)}")
    members = ds.version_members(ws, base)
    answers = _answers(ws, base)
    plan = PolicyPlan(policy, base, n_members=len(members))
    if policy == "teacher":
        if not teacher:
            raise UserError("the teacher policy needs --teacher NAME")
        plan.teacher = teacher
        for rid, got in answers.items():
            for name, resp in got:
                if name == teacher:
                    plan.answers[rid] = ds.ChosenAnswer(name, resp)
        if not plan.answers:
            known = sorted({n for got in answers.values() for n, _ in got})
            raise UserError(
                f"no member of {base!r} has an answer from teacher {teacher!r} (teachers: {', '.join(known)})"
            )
    elif policy == "specialist":
        if bar is None:
            raise UserError(
                "the specialist policy scores teachers on the quality bar's metric: set one (distill bar set)"
            )
        _specialist(ws, plan, members, answers, bar)
    else:
        _vote(plan, answers, bar)
    return plan


def _specialist(ws: Workspace, plan: PolicyPlan, members: list[ds.Member], answers: dict[int, list[tuple[str, str]]],
                bar: QualityBar) -> None:  # fmt: skip
    spec = bar.primary
    if spec["kind"] == "judge":
        raise UserError("the specialist policy needs a primary metric scored without a judge (references or a check)")
    refs = dict(ws.query("SELECT record_id, reference FROM records WHERE record_id IN "
                         "(SELECT record_id FROM dataset_members WHERE version = ?)", [plan.base]))  # fmt: skip
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    by_slice: dict[str, list[int]] = defaultdict(list)
    for m in members:
        by_slice[m.slice].append(m.record_id)
        for name, resp in answers.get(m.record_id, []):
            s = score(spec, resp, refs.get(m.record_id), refs.get(m.record_id))
            if s is not None:
                sums[m.slice][name].append(s)
    for sl in sorted(by_slice):
        scores = {t: (sum(v) / len(v), len(v)) for t, v in sorted(sums[sl].items())}
        # Best mean; on a tie, the teacher scored on more members, then the name (a stable choice).
        chosen = min(scores, key=lambda t: (-scores[t][0], -scores[t][1], t)) if scores else None
        plan.slices.append(SliceChoice(sl, scores, chosen))
        if chosen is None:
            continue
        for rid in by_slice[sl]:
            for name, resp in answers.get(rid, []):
                if name == chosen:
                    plan.answers[rid] = ds.ChosenAnswer(name, resp)


def _vote(plan: PolicyPlan, answers: dict[int, list[tuple[str, str]]], bar: QualityBar | None) -> None:
    spec = bar.label_spec() if bar is not None else None

    def key(text: str) -> str | None:
        v = field_value(text, spec.field) if spec is not None else text
        return None if v is None else " ".join(v.split()).casefold()

    for rid, got in answers.items():
        keys = [(name, resp, key(resp)) for name, resp in got]
        counts = Counter(k for _, _, k in keys if k is not None)
        if not counts:
            continue
        ranked = counts.most_common()
        if len(ranked) > 1:
            plan.to_review.append(rid)
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            plan.ties += 1
            continue
        win = ranked[0][0]
        name, resp = next((n, r) for n, r, k in keys if k == win)
        plan.answers[rid] = ds.ChosenAnswer(name, resp, ranked[0][1] / len(keys))


def apply_policy(ws: Workspace, plan: PolicyPlan, name: str) -> ds.VersionInfo:
    """Write version ``name``: ``plan.base``'s members with the policy's answers; the vote's disagreements are queued
    for review in the same transaction (records a reviewer already accepted or rejected stay as they are)."""
    from curation.review import queue_records

    def queue(cur: Any) -> None:
        if plan.to_review:
            decided = {r for (r,) in cur.execute(
                "SELECT record_id FROM reviews WHERE status IN ('accepted', 'rejected')").fetchall()}  # fmt: skip
            queue_records(cur, [r for r in plan.to_review if r not in decided], VOTE_REASON, "teacher-vote")

    base = ds.get_version(ws, plan.base)
    return ds.create_version(ws, name, ds.version_members(ws, plan.base), [*base.recipe, plan.recipe_step()],
                             split=base.split, answers=plan.answers, in_transaction=queue)  # fmt: skip
