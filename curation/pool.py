"""The candidate pool every curation operation starts from.

Records are read as they are now (``curation.effective``: effective slice, response and review status under the
slicing given, by default the active one). A record is *eligible* for a
dataset version when it has an effective response, is not rejected, was not removed by the latest dedupe run
of each kind, did not fail a ``drop`` filter (latest run per filter name), is not waiting for review after failing a
``review`` filter (until a human accepts it), and does not leak into a held-out split.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from curation.effective import effective_sql, resolve_slicing
from curation.workspace import Workspace

DEFAULT_SPLIT = "heldout"  # the split `distill split make` freezes, and the one every operation respects by default


def split_exists(ws: Workspace, name: str) -> bool:
    return bool(ws.scalar("SELECT count(*) FROM splits WHERE name = ?", [name]))


def latest_dedupe_runs(ws: Workspace) -> list[int]:
    """The latest dedupe run of each kind (exact, semantic)."""
    rows = ws.query("SELECT max(run_id) FROM dedupe_runs GROUP BY kind ORDER BY 1")
    return [int(r[0]) for r in rows]


def latest_drop_filter_runs(ws: Workspace, policy: str = "drop") -> list[int]:
    """The latest run of each named filter whose policy is ``policy`` (``drop`` or ``review``)."""
    rows = ws.query(
        "SELECT run_id FROM filter_runs f WHERE policy = ? "
        "AND run_id = (SELECT max(run_id) FROM filter_runs g WHERE g.name = f.name) ORDER BY 1",
        [policy],
    )
    return [int(r[0]) for r in rows]


@dataclass
class Pool:
    """Eligible records split by side, with how many were excluded and why."""

    train: list[tuple[int, str]] = field(default_factory=list)  # (record_id, slice)
    heldout: list[tuple[int, str]] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)
    dedupe_runs: list[int] = field(default_factory=list)
    filter_runs: list[int] = field(default_factory=list)
    review_runs: list[int] = field(default_factory=list)  # failed records wait for a human accept
    split: str | None = None
    slicing: str | None = None
    reasons: dict[int, str] = field(default_factory=dict)  # why each record asked about was left out


def load_pool(
    ws: Workspace,
    *,
    slicing: str | None = None,
    split: str | None = None,
    dedupe_runs: list[int] | None = None,
    filter_runs: list[int] | None = None,
    explain: Collection[int] = (),
) -> Pool:
    """Eligible records. ``None`` for runs means the latest ones; pass ``[]`` to ignore dedupe or filters.

    ``slicing`` None = the active slicing; ``Pool.slicing`` holds the one applied. ``explain``: records whose reason
    for being left out, if they are, goes into ``Pool.reasons``.
    """
    slicing = resolve_slicing(ws, slicing)
    dd = latest_dedupe_runs(ws) if dedupe_runs is None else dedupe_runs
    fr = latest_drop_filter_runs(ws) if filter_runs is None else filter_runs
    rr = latest_drop_filter_runs(ws, "review") if filter_runs is None else []
    base, params = effective_sql(ws, slicing)
    side_sql = "'train'"
    if split:
        side_sql = (
            "coalesce((SELECT side FROM split_members sm WHERE sm.split = ? AND sm.record_id = e.record_id), 'train')"
        )
        params = [*params, split]
    # Leak guard: a train record sharing a dedupe cluster with a held-out record is excluded.
    leak_sql = "false"
    leak_params: list[Any] = []
    if split and dd:
        leak_sql = """side = 'train' AND record_id IN (
            SELECT m.record_id FROM dedupe_members m JOIN dedupe_members h
              ON h.run_id = m.run_id AND h.cluster_id = m.cluster_id AND h.record_id <> m.record_id
            JOIN split_members sm ON sm.record_id = h.record_id AND sm.split = ? AND sm.side = 'heldout'
            WHERE m.run_id IN (SELECT unnest(?)))"""
        leak_params = [split, dd]
    sql = f"""
        WITH e AS ({base}),
        s AS (SELECT e.*, {side_sql} AS side FROM e)
        SELECT record_id, slice, side,
          CASE WHEN response IS NULL THEN 'no_response'
               WHEN status = 'rejected' THEN 'rejected'
               WHEN side = 'train' AND record_id IN (SELECT record_id FROM dedupe_members
                    WHERE NOT kept AND run_id IN (SELECT unnest(?))) THEN 'duplicate'
               WHEN record_id IN (SELECT record_id FROM filter_results
                    WHERE NOT ok AND run_id IN (SELECT unnest(?))) THEN 'filtered'
               WHEN status <> 'accepted' AND record_id IN (SELECT record_id FROM filter_results
                    WHERE NOT ok AND run_id IN (SELECT unnest(?))) THEN 'pending_review'
               WHEN {leak_sql} THEN 'leak'
               ELSE NULL END AS why
        FROM s ORDER BY record_id
    """
    # Params in textual order: slicing, side (split), then dedupe runs, filter runs, review runs, leak params.
    rows = ws.query(sql, [*params, dd, fr, rr, *leak_params])
    pool = Pool(dedupe_runs=dd, filter_runs=fr, review_runs=rr, split=split, slicing=slicing)
    wanted = set(explain)
    for rid, slc, side, why in rows:
        if why is not None:
            pool.excluded[why] = pool.excluded.get(why, 0) + 1
            if rid in wanted:
                pool.reasons[int(rid)] = str(why)
        elif side == "heldout":
            pool.heldout.append((int(rid), str(slc)))
        else:
            pool.train.append((int(rid), str(slc)))
    return pool
