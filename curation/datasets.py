"""Dataset versions: named, immutable snapshots of which records train a student, with what weight.

A version stores each member's side (train/heldout), effective slice, weight, duplication count and the
effective response text *as it was at creation* (so later review edits never change a version), plus the
recipe (operations and parameters) that made it. ``export_training_file`` is the contract the training
backend reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.effective import effective_sql
from curation.errors import UserError
from curation.lazy import lazy_module
from curation.soft_labels import LabelSpec, soft_columns
from curation.workspace import Workspace

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq
else:
    pa, pq = lazy_module("pyarrow"), lazy_module("pyarrow.parquet")  # when a version is written (see curation.lazy)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Member:
    """One record in a version."""

    record_id: int
    side: str  # train | heldout
    slice: str
    weight: float = 1.0
    copies: int = 1


@dataclass(frozen=True)
class ChosenAnswer:
    """The answer a teacher policy gives a member: whose, the text, and (a vote) the share of teachers agreeing."""

    teacher: str
    response: str
    agreement: float | None = None


def _chosen_columns(ids: Sequence[int], answers: Mapping[int, ChosenAnswer]) -> dict[str, pa.Array]:
    got = [answers.get(i) for i in ids]
    return {
        "teacher": pa.array([a.teacher if a else None for a in got], pa.string()),
        "chosen": pa.array([a.response if a else None for a in got], pa.string()),
        "agreement": pa.array([a.agreement if a else None for a in got], pa.float64()),
    }


@dataclass
class VersionInfo:
    """A stored version's summary."""

    name: str
    created_at: datetime
    recipe: list[dict[str, Any]]
    split: str | None
    n_train: int  # training rows as training receives them: one per copy (versions before 2026-12 counted records)
    n_heldout: int
    shares: dict[str, float]


def weighted_shares(members: Sequence[Member]) -> dict[str, float]:
    """Share of each slice in the train side, counting weight x copies."""
    acc: dict[str, float] = {}
    for m in members:
        if m.side == "train":
            acc[m.slice] = acc.get(m.slice, 0.0) + m.weight * m.copies
    total = sum(acc.values()) or 1.0
    return {k: v / total for k, v in sorted(acc.items(), key=lambda kv: -kv[1])}


def create_version(
    ws: Workspace,
    name: str,
    members: Sequence[Member],
    recipe: list[dict[str, Any]],
    *,
    split: str | None,
    slicing: str | None = None,
    answers: Mapping[int, ChosenAnswer] | None = None,
    in_transaction: Callable[[Any], None] | None = None,
) -> VersionInfo:
    """Write a new immutable version, snapshotting each member's effective response now, or the teacher's answer
    ``answers`` names for it (a teacher policy, ``train.teacher_policy``). ``in_transaction(cursor)`` runs inside the
    version's transaction (the vote queues its disagreements for review in the same write)."""
    if not _NAME_RE.match(name):
        raise UserError(f"version name {name!r}: start with a letter or digit; letters, digits, _ . - (max 64)")
    if not members:
        raise UserError("a dataset version needs at least one record")
    ids = [m.record_id for m in members]
    if len(set(ids)) != len(ids):
        raise UserError("a record appears twice in the version (use copies for duplication)")
    shares = weighted_shares(members)
    tbl = pa.table(
        {
            "record_id": pa.array(ids, pa.int64()),
            "side": pa.array([m.side for m in members], pa.string()),
            "slice": pa.array([m.slice for m in members], pa.string()),
            "weight": pa.array([float(m.weight) for m in members], pa.float64()),
            "copies": pa.array([int(m.copies) for m in members], pa.int32()),
            **_chosen_columns(ids, answers or {}),
        }
    )
    base, params = effective_sql(ws, slicing)
    now = datetime.now()
    with ws.transaction() as cur:
        if cur.execute("SELECT count(*) FROM dataset_versions WHERE name = ?", [name]).fetchall()[0][0]:
            raise UserError(f"dataset version {name!r} already exists (versions are immutable; pick a new name)")
        cur.register("_members", tbl)
        bad = cur.execute(
            f"SELECT count(*) FROM _members m JOIN ({base}) e USING (record_id) "
            "WHERE e.response IS NULL OR e.status = 'rejected'",
            params,
        ).fetchall()[0][0]
        if bad:
            raise UserError(f"{bad} records have no response or were rejected; they cannot be in a version")
        cur.execute(
            "INSERT INTO dataset_members (version, record_id, side, slice, weight, copies, response, teacher, "
            "agreement) SELECT ?, m.record_id, m.side, m.slice, m.weight, m.copies, coalesce(m.chosen, e.response), "
            f"m.teacher, m.agreement FROM _members m JOIN ({base}) e USING (record_id)",
            [name, *params],
        )
        cur.unregister("_members")
        n_train = sum(m.copies for m in members if m.side == "train")  # what export_training_file writes
        n_heldout = sum(1 for m in members if m.side != "train")
        cur.execute(
            "INSERT INTO dataset_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
            [name, now, json.dumps(recipe), split, n_train, n_heldout, json.dumps(shares)],
        )
        if in_transaction is not None:
            in_transaction(cur)
    return VersionInfo(name, now, recipe, split, n_train, n_heldout, shares)


def describe_rows(ws: Workspace, name: str) -> str:
    """What training receives from a version, in words: rows, the records behind them, copies and weights."""
    info = get_version(ws, name)
    records, rows, weighted, lo, hi = ws.query(
        "SELECT count(*), coalesce(sum(copies), 0), count(*) FILTER (WHERE weight <> 1), "
        "min(weight) FILTER (WHERE weight <> 1), max(weight) FILTER (WHERE weight <> 1) "
        "FROM dataset_members WHERE version = ? AND side = 'train'",
        [name],
    )[0]
    parts = [f"{int(records):,} records"]
    if rows > records:
        parts.append(f"{int(rows - records):,} extra copies")
    if weighted:
        span = f"x{lo:g}" if lo == hi else f"x{lo:g}-x{hi:g}"
        parts.append(f"{int(weighted):,} weighted {span} on the loss")
    return f"{int(rows):,} training rows ({', '.join(parts)}), {info.n_heldout:,} held-out"


def get_version(ws: Workspace, name: str) -> VersionInfo:
    """A version's summary (UserError if unknown)."""
    rows = ws.query(
        "SELECT name, created_at, CAST(recipe AS VARCHAR), split, n_train, n_heldout, CAST(shares AS VARCHAR) "
        "FROM dataset_versions WHERE name = ?",
        [name],
    )
    if not rows:
        raise UserError(f"no dataset version named {name!r} (see `distill versions list`)")
    n, c, r, s, nt, nh, sh = rows[0]
    return VersionInfo(str(n), c, json.loads(r), s, int(nt), int(nh), json.loads(sh))


def list_versions(ws: Workspace) -> list[VersionInfo]:
    """Every version, newest first."""
    names = [r[0] for r in ws.query("SELECT name FROM dataset_versions ORDER BY created_at DESC, name")]
    return [get_version(ws, n) for n in names]


def version_members(ws: Workspace, name: str) -> list[Member]:
    """The members of a version, ordered by side then record id."""
    get_version(ws, name)
    rows = ws.query(
        "SELECT record_id, side, slice, weight, copies FROM dataset_members WHERE version = ? ORDER BY side DESC, 1",
        [name],
    )
    return [Member(int(r), str(s), str(sl), float(w), int(c)) for r, s, sl, w, c in rows]


def member_rows(ws: Workspace, name: str, side: str | None = None) -> pa.Table:
    """Members joined with their conversation (messages before the teacher turn) and reference, as Arrow; with the
    teacher a policy chose and the vote's agreement (NULL without a policy)."""
    get_version(ws, name)
    where = "AND m.side = $side" if side else ""
    params: dict[str, Any] = {"name": name, **({"side": side} if side else {})}
    cur = ws.cursor()
    try:
        return cur.sql(
            "SELECT m.record_id, m.side, m.slice, m.weight, m.copies, m.response, CAST(r.messages AS VARCHAR) AS "
            "messages, r.reference, m.teacher, m.agreement FROM dataset_members m JOIN records r USING (record_id) "
            f"WHERE m.version = $name {where} ORDER BY m.side DESC, m.record_id",
            params=params,
        ).to_arrow_table()
    finally:
        cur.close()


def full_conversation(messages_json: str, response: str) -> list[dict[str, str]]:
    """The prompt turns plus the final assistant turn (the snapshotted effective response), content as text."""
    from curation.records import content_text

    msgs = [
        {"role": str(m.get("role", "user")), "content": content_text(m.get("content"))}
        for m in json.loads(messages_json)
    ]
    msgs.append({"role": "assistant", "content": response})
    return msgs


@cache
def training_schema() -> pa.Schema:
    """The columns of the Parquet file training reads."""
    return pa.schema(
        [
            ("record_id", pa.int64()),
            ("split", pa.string()),
            ("slice", pa.string()),
            ("weight", pa.float64()),
            ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("teacher_response", pa.string()),
            ("reference", pa.string()),
        ]
    )


@cache
def soft_schema() -> pa.Schema:
    """The columns a soft-label run's file adds (``curation.soft_labels``; read by ``train.data``)."""
    lp = pa.struct([("token", pa.string()), ("logprob", pa.float64())])
    return pa.schema(
        [
            ("label_field", pa.string()),
            ("candidates", pa.list_(pa.struct([("value", pa.string()), ("answer", pa.string()),
                                               ("prob", pa.float64()), ("hard", pa.bool_())]))),
            ("teacher_tokens", pa.list_(pa.struct([*lp, ("top", pa.list_(lp))]))),
        ]
    )  # fmt: skip


def export_training_file(
    ws: Workspace,
    version_name: str,
    path: str | Path,
    *,
    labels: LabelSpec | None = None,
    teacher_tokens: bool = False,
) -> Path:
    """Write the version as the Parquet file training reads (one row per copy; held-out rows have split='heldout').

    With ``labels`` (the checkable field) or ``teacher_tokens``, the file also carries what soft-label training
    needs (``soft_schema()``, computed by ``curation.soft_labels``): the candidate answers with the teachers'
    probabilities, and the teacher's token logprobs of the curated answer where it is the teacher's own."""
    tbl = member_rows(ws, version_name)
    soft = labels is not None or teacher_tokens
    schema = pa.schema([*training_schema(), *soft_schema()]) if soft else training_schema()
    out: dict[str, list[Any]] = {f.name: [] for f in schema}
    rows = tbl.to_pylist()
    extra = soft_columns(ws, rows, labels, teacher_tokens) if soft else []
    for i, row in enumerate(rows):
        conv = full_conversation(row["messages"], row["response"])
        for _ in range(max(1, int(row["copies"]))):
            out["record_id"].append(row["record_id"])
            out["split"].append(row["side"])
            out["slice"].append(row["slice"])
            out["weight"].append(float(row["weight"]))
            out["messages"].append(conv)
            out["teacher_response"].append(row["response"])
            out["reference"].append(row["reference"])
            for k, v in (extra[i] if soft else {}).items():
                out[k].append(v)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(out, schema=schema), p)
    return p
