"""Team review: assignments of a queue to named reviewers (with an overlap reviewed twice), each reviewer's
progress, agreement per slice (Cohen's kappa for two reviewers, Fleiss' kappa for more), conflicts, comments, and
the label sets offered for relabels and reject reasons.

Decisions themselves go through ``curation.review`` (one event each, by reviewer); a reviewer's verdict on a record
is their last accept/reject/edit not undone (``curation.reviewer_sql.REVIEWER_DECISIONS``). Assignments and
comments are this module's tables (schema v16).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from curation.browse import ALL_RECORDS, RecordFilter, records_from, select_filtered
from curation.errors import UserError
from curation.option_lists import ListOption
from curation.options import ChoiceOption, FloatOption, IntOption, OptionSet, TextOption
from curation.reviewer_sql import CONFLICT_IDS, REVIEWER_DECISIONS
from curation.workspace import Workspace

ASSIGN_MODES = ("round_robin", "slice")
# `distill review assign` (flags generated from this declaration; ``assign`` takes its defaults from it).
ASSIGN = OptionSet(
    "review assign",
    (
        ListOption(name="reviewers", required=True, repeat=False, metavar="NAME,NAME", help="who reviews"),
        ChoiceOption(name="by", choices=ASSIGN_MODES, default="round_robin", required=True,
                     help="round_robin: a stable shuffle dealt in turn; slice: whole slices, largest first"),
        FloatOption(name="overlap", default=0.0, minimum=0, maximum=1, required=True,
                    help="share of records also given to a second reviewer (agreement)"),
        IntOption(name="seed", default=0, required=True, help="the shuffle and overlap draw"),
        ListOption(name="slices", flag="--slice", metavar="SLICE", help="only these slices (default all records)"),
        TextOption(name="where", metavar="SQL", help="only records matching this condition (the studio's columns)"),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class AssignResult:
    """What one ``assign`` did."""

    assignment_id: int
    records: int
    overlap: int  # records given to a second reviewer
    per_reviewer: dict[str, int] = field(default_factory=dict)


def _draw(record_id: int, seed: int) -> float:
    """A stable uniform draw in [0, 1) per record (the same split on every run with the same seed)."""
    digest = hashlib.blake2b(f"{seed}:{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _names(reviewers: list[str]) -> list[str]:
    names = list(dict.fromkeys(r.strip() for r in reviewers if r and r.strip()))
    if not names:
        raise UserError("name at least one reviewer (--reviewers alice,bob)")
    return names


def assign(
    ws: Workspace,
    reviewers: list[str],
    filt: RecordFilter = ALL_RECORDS,
    *,
    by: str = ASSIGN.default("by"),
    overlap: float = ASSIGN.default("overlap"),
    seed: int = ASSIGN.default("seed"),
) -> AssignResult:
    """Split the records of ``filt`` between ``reviewers``: ``round_robin`` (a stable shuffle dealt in turn) or
    ``slice`` (whole slices, largest first, each to the reviewer with the fewest records so far); a share
    ``overlap`` (0..1) of the records also goes to the next reviewer, for agreement. Replaces the earlier assignment
    of those records; one transaction."""
    names = _names(reviewers)
    if by not in ASSIGN_MODES:
        raise UserError(f"unknown assignment mode {by!r}; choose one of {', '.join(ASSIGN_MODES)}")
    if not 0 <= overlap <= 1:
        raise UserError(f"overlap must be between 0 and 1, got {overlap}")
    if overlap > 0 and len(names) < 2:
        raise UserError("an overlap needs at least two reviewers")
    sql, params = select_filtered(ws, filt, "record_id, slice")
    rows = [(int(r[0]), str(r[1])) for r in ws.query(sql, params)]
    if not rows:
        raise UserError(f"no record matches {filt.describe()}")
    primary: dict[int, int] = {}
    if by == "round_robin":
        for i, (rid, _) in enumerate(sorted(rows, key=lambda r: _draw(r[0], seed))):
            primary[rid] = i % len(names)
    else:
        sizes = Counter(s for _, s in rows)
        load = [0] * len(names)
        owner: dict[str, int] = {}
        for name, n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
            owner[name] = min(range(len(names)), key=lambda k: (load[k], k))
            load[owner[name]] += n
        primary = {rid: owner[s] for rid, s in rows}
    now = datetime.now()
    out: list[tuple[int, str, bool]] = []
    for rid, _ in rows:
        twice = overlap > 0 and _draw(rid, seed + 1) < overlap
        out.append((rid, names[primary[rid]], twice))
        if twice:
            out.append((rid, names[(primary[rid] + 1) % len(names)], True))
    import pyarrow as pa

    table = pa.table({"record_id": pa.array([r[0] for r in out], pa.int64()),
                      "reviewer": [r[1] for r in out], "overlap": [r[2] for r in out]})  # fmt: skip
    with ws.transaction() as cur:
        assignment_id = int(cur.execute("SELECT coalesce(max(assignment_id), 0) + 1 FROM review_assignments")
                            .fetchall()[0][0])  # fmt: skip
        cur.register("_assigned", table)
        try:
            cur.execute("DELETE FROM review_assignments WHERE record_id IN (SELECT record_id FROM _assigned)")
            cur.execute(
                "INSERT INTO review_assignments (assignment_id, record_id, reviewer, overlap, assigned_at) "
                "SELECT ?, record_id, reviewer, overlap, ? FROM _assigned",
                [assignment_id, now],
            )
        finally:
            cur.unregister("_assigned")
    per = Counter(r[1] for r in out)
    return AssignResult(assignment_id, len(rows), sum(1 for r in out if r[2]) // 2, dict(sorted(per.items())))


def has_assignments(ws: Workspace, reviewer: str) -> bool:
    """Whether ``reviewer`` has any record assigned."""
    return bool(ws.scalar("SELECT count(*) FROM (SELECT 1 FROM review_assignments WHERE reviewer = ? LIMIT 1)",
                          [reviewer]))  # fmt: skip


def assigned_reviewers(ws: Workspace) -> list[str]:
    """Everyone with an assignment, alphabetically."""
    return [r[0] for r in ws.query("SELECT DISTINCT reviewer FROM review_assignments ORDER BY 1")]


@dataclass(frozen=True)
class ReviewerProgress:
    """One reviewer's work in one slice: assigned, decided (of those assigned), and verdicts given anywhere."""

    slice: str
    reviewer: str
    assigned: int
    done: int
    accepted: int
    rejected: int

    @property
    def left(self) -> int:
        return max(0, self.assigned - self.done)


def progress_by_reviewer(ws: Workspace) -> list[ReviewerProgress]:
    """Per (effective) slice and reviewer: assignments and verdicts, for `distill review` and the studio."""
    frm, params = records_from(ws)
    rows = ws.query(
        f"""
        WITH d AS ({REVIEWER_DECISIONS}),
        people AS (SELECT record_id, reviewer FROM review_assignments UNION SELECT record_id, reviewer FROM d)
        SELECT b.slice, p.reviewer,
               count(*) FILTER (WHERE a.record_id IS NOT NULL),
               count(*) FILTER (WHERE a.record_id IS NOT NULL AND d.decision IS NOT NULL),
               count(*) FILTER (WHERE d.decision = 'accepted'), count(*) FILTER (WHERE d.decision = 'rejected')
        FROM people p JOIN {frm} ON b.record_id = p.record_id
        LEFT JOIN review_assignments a ON a.record_id = p.record_id AND a.reviewer = p.reviewer
        LEFT JOIN d ON d.record_id = p.record_id AND d.reviewer = p.reviewer
        GROUP BY 1, 2 ORDER BY 1, 2""",
        params,
    )
    return [ReviewerProgress(str(r[0]), str(r[1]), *(int(x) for x in r[2:])) for r in rows]


@dataclass(frozen=True)
class SliceAgreement:
    """Agreement between reviewers on the records of one slice that two or more of them decided."""

    slice: str
    reviewers: tuple[str, ...]
    items: int  # records with two or more verdicts
    observed: float | None  # share of pairs of verdicts that agree
    kappa: float | None  # None when undefined (no items, or every verdict the same category)
    method: str  # "cohen" (two reviewers), "fleiss" (more), "-" (none)
    conflicts: int  # records whose verdicts differ


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items (None when chance agreement is 1)."""
    if not pairs:
        return None
    n = len(pairs)
    po = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    pe = sum(first[k] * second[k] for k in set(first) | set(second)) / (n * n)
    return None if pe >= 1 else (po - pe) / (1 - pe)


def fleiss_kappa(items: list[list[str]]) -> float | None:
    """Fleiss' kappa over items rated by two or more raters each (counts may differ per item: each item's agreement
    is over its own rater pairs, category shares over all ratings)."""
    items = [i for i in items if len(i) >= 2]
    if not items:
        return None
    totals: Counter[str] = Counter()
    p_items = []
    for labels in items:
        c = Counter(labels)
        totals.update(c)
        n = len(labels)
        p_items.append((sum(v * v for v in c.values()) - n) / (n * (n - 1)))
    n_all = sum(totals.values())
    pe = sum((v / n_all) ** 2 for v in totals.values())
    p_bar = sum(p_items) / len(p_items)
    return None if pe >= 1 else (p_bar - pe) / (1 - pe)


def agreement_by_slice(ws: Workspace) -> list[SliceAgreement]:
    """Per slice: kappa over the records two or more reviewers decided (accepted vs rejected)."""
    frm, params = records_from(ws)
    rows = ws.query(
        f"""WITH d AS ({REVIEWER_DECISIONS}),
        multi AS (SELECT record_id FROM d GROUP BY record_id HAVING count(*) >= 2)
        SELECT b.slice, d.record_id, d.reviewer, d.decision FROM d JOIN multi USING (record_id)
        JOIN {frm} ON b.record_id = d.record_id ORDER BY 1, 2, 3""",
        params,
    )
    by_slice: dict[str, dict[int, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    for slice_, rid, reviewer, decision in rows:
        by_slice[str(slice_)][int(rid)][str(reviewer)] = str(decision)
    out = []
    for slice_, recs in sorted(by_slice.items()):
        people = tuple(sorted({p for r in recs.values() for p in r}))
        labels = [list(r.values()) for r in recs.values()]
        conflicts = sum(len(set(x)) > 1 for x in labels)
        pairs_total = sum(len(x) * (len(x) - 1) / 2 for x in labels)
        agree = sum(sum(v * (v - 1) / 2 for v in Counter(x).values()) for x in labels)
        observed = agree / pairs_total if pairs_total else None
        if len(people) == 2:
            a, b = people
            kappa, method = cohen_kappa([(r[a], r[b]) for r in recs.values()]), "cohen"
        else:
            kappa, method = fleiss_kappa(labels), "fleiss"
        out.append(SliceAgreement(slice_, people, len(recs), observed, kappa, method, conflicts))
    return out


def count_conflicts(ws: Workspace) -> int:
    """Records whose reviewers' verdicts differ."""
    return int(ws.scalar(f"SELECT count(*) FROM ({CONFLICT_IDS})"))


# -- comments -------------------------------------------------------------------------------------------------


def add_comment(ws: Workspace, record_id: int, reviewer: str, body: str) -> int:
    """Store a comment on a record; returns its id."""
    if not body or not body.strip():
        raise UserError("a comment cannot be empty")
    with ws.transaction() as cur:
        if not cur.execute("SELECT 1 FROM records WHERE record_id = ?", [int(record_id)]).fetchall():
            raise UserError(f"no record {record_id}")
        return int(cur.execute(
            "INSERT INTO review_comments (record_id, reviewer, body, created_at) VALUES (?, ?, ?, ?) "
            "RETURNING comment_id", [int(record_id), reviewer, body.strip(), datetime.now()]).fetchall()[0][0])  # fmt: skip


# -- label sets -----------------------------------------------------------------------------------------------


def label_choices(ws: Workspace, kind: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The fixed set offered for a relabel (``kind='slice'``: every slice now) or a reject reason
    (``kind='reason'``: every earlier reason, most used first), plus ``extra`` (e.g. the quality bar's verifier
    labels, which the caller reads from ``train.bars``); no duplicates."""
    if kind == "slice":
        frm, params = records_from(ws)
        found = [r[0] for r in ws.query(f"SELECT DISTINCT slice FROM {frm} WHERE slice IS NOT NULL ORDER BY 1", params)]
    elif kind == "reason":
        found = [r[0] for r in ws.query(
            "SELECT reason FROM review_events WHERE action = 'reject' AND NOT undone AND reason IS NOT NULL "
            "GROUP BY reason ORDER BY count(*) DESC, reason LIMIT 200")]  # fmt: skip
    else:
        raise UserError(f"unknown label set {kind!r}; use slice or reason")
    return list(dict.fromkeys([*found, *extra]))


def export_decisions(ws: Workspace, out: Any) -> int:
    """Write every reviewer's current verdict as JSON lines (record, slice, reviewer, decision, reason, when, the
    record's folded status, whether it is in conflict) to the text stream ``out``; returns the lines written."""
    frm, params = records_from(ws)
    cur = ws.cursor()
    try:
        cur.execute(
            f"""WITH d AS ({REVIEWER_DECISIONS}), c AS ({CONFLICT_IDS})
            SELECT d.record_id, b.slice, d.reviewer, d.decision, d.reason, d.decided_at, b.status,
                   d.record_id IN (SELECT record_id FROM c) AS conflict
            FROM d JOIN {frm} ON b.record_id = d.record_id ORDER BY d.record_id, d.reviewer""",
            params,
        )
        names = ("record_id", "slice", "reviewer", "decision", "reason", "decided_at", "status", "conflict")
        n = 0
        while batch := cur.fetchmany(5000):
            for row in batch:
                item = dict(zip(names, row, strict=True))
                item["decided_at"] = item["decided_at"].isoformat() if item["decided_at"] else None
                out.write(json.dumps(item, ensure_ascii=False) + "\n")
                n += 1
        return n
    finally:
        cur.close()
