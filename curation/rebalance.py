"""Rebalance the training side towards a target slice distribution, as a seeded, reproducible plan.

Targets: the production distribution (slices of imported log records, optionally within a time window),
explicit shares, or a minimum count per slice. Over-represented slices are down-sampled (seeded), under-
represented ones up-weighted or duplicated (capped). Applying writes a new dataset version; records are never
changed or deleted. The held-out side is carried over untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from curation.datasets import Member, VersionInfo, create_version
from curation.effective import effective_sql
from curation.errors import UserError
from curation.option_lists import SharesOption
from curation.options import ChoiceOption, DateTimeOption, FloatOption, IntOption, OptionSet, TextOption
from curation.pool import Pool, load_pool
from curation.pool_options import SLICING, SPLIT
from curation.slices import shares_array, total_variation
from curation.workspace import Workspace

# How under-represented slices grow, and by how much at most: shared with ``curation.oversample``.
UPSAMPLE_MODE = ChoiceOption(name="mode", choices=("weight", "duplicate"), default="weight", required=True,
                             help="how to up-sample: a higher weight, or duplicate copies")  # fmt: skip
MAX_FACTOR = FloatOption(name="max_factor", default=5.0, minimum=1, required=True, help="cap on up-sampling")
REBALANCE = OptionSet(
    "rebalance",
    (
        ChoiceOption(
            name="to",
            choices=("production", "shares", "min-count"),
            default="production",
            required=True,
            help="target: shares of all imported logs (production), explicit --shares, or --min-count per slice",
        ),
        SharesOption(name="shares", minimum=0, maximum=1, help="with --to shares: target share per slice"),
        IntOption(name="min_count", minimum=1, help="with --to min-count: at least this many per slice"),
        DateTimeOption(name="since", help="production window start (logged_at)"),
        DateTimeOption(name="until", help="production window end"),
        UPSAMPLE_MODE,
        MAX_FACTOR,
        IntOption(name="seed", default=0, required=True, help="random seed of the down-sampling"),
        IntOption(name="size", minimum=1, help="train size to aim for (default: the eligible pool)"),
        TextOption(name="name", metavar="VERSION", help="write the plan as this dataset version"),
        SLICING,
        SPLIT,
    ),
)


@dataclass
class Target:
    """What distribution to aim for: ``production`` | ``shares`` | ``min_count``."""

    kind: str
    shares: dict[str, float] = field(default_factory=dict)
    min_count: int = 0
    since: datetime | None = None
    until: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "shares": self.shares or None,
            "min_count": self.min_count or None,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


@dataclass
class SliceRow:
    """Before/after of one slice in the plan."""

    slice: str
    before_n: int
    before_share: float
    target_share: float
    after_n: int  # distinct records kept
    after_weighted: float  # sum of weight x copies
    after_share: float
    action: str  # keep | down-sample | up-weight | duplicate | missing


@dataclass
class RebalancePlan:
    """A seeded plan; ``members`` is what a version made from it would contain."""

    target: Target
    mode: str
    max_factor: float
    seed: int
    size: int
    rows: list[SliceRow]
    tv_before: float
    tv_after: float
    members: list[Member]
    pool: Pool
    warnings: list[str]


def production_shares(ws: Workspace, *, slicing: str | None = None, since=None, until=None) -> dict[str, float]:
    """Slice shares among imported production records (any response state), optionally within a time window."""
    base, params = effective_sql(ws, slicing)
    where, wp = ["origin = 'import'"], []
    if since is not None:
        where.append("seen_at >= ?")
        wp.append(since)
    if until is not None:
        where.append("seen_at < ?")
        wp.append(until)
    rows = ws.query(f"SELECT slice, count(*) FROM ({base}) WHERE {' AND '.join(where)} GROUP BY 1", [*params, *wp])
    if not rows:
        raise UserError("no imported production records in that window to take a distribution from")
    return shares_array({str(s): float(n) for s, n in rows})


def _target_counts(target: Target, counts: dict[str, int], size: int, prod: dict[str, float]) -> dict[str, float]:
    if target.kind == "min_count":
        return {s: float(max(c, target.min_count)) for s, c in counts.items()}
    if target.kind == "production":
        shares = prod
    elif target.kind == "shares":
        listed = {s: float(v) for s, v in target.shares.items()}
        rest = 1.0 - sum(listed.values())
        if rest < -1e-9 or any(v < 0 for v in listed.values()):
            raise UserError("explicit shares must be >= 0 and sum to at most 1")
        unlisted = {s: c for s, c in counts.items() if s not in listed}
        tot = sum(unlisted.values()) or 1
        shares = {**{s: max(rest, 0.0) * c / tot for s, c in unlisted.items()}, **listed}
    else:
        raise UserError(f"unknown target {target.kind!r} (production, shares, min_count)")
    return {s: shares.get(s, 0.0) * size for s in set(counts) | set(shares)}


SNAPSHOT = OptionSet("versions snapshot", (SLICING, SPLIT))  # ``snapshot_version``: the pool as it is


def target_from_options(values: dict[str, Any]) -> Target:
    """Parsed rebalance options -> the target (``--to shares`` needs shares, ``--to min-count`` a count)."""
    to = REBALANCE["to"]
    kind = "min_count" if values["to"] == "min-count" else values["to"]
    if kind == "shares" and not values.get("shares"):
        raise REBALANCE["shares"].error(f"needed when {to.label} ({to.flag}) is shares")
    if kind == "min_count" and not values.get("min_count"):
        raise REBALANCE["min_count"].error(f"needed when {to.label} ({to.flag}) is min-count")
    return Target(kind, shares=dict(values.get("shares") or {}), min_count=values.get("min_count") or 0,
                  since=values.get("since"), until=values.get("until"))  # fmt: skip


def plan_from_options(ws: Workspace, values: dict[str, Any]) -> RebalancePlan:
    """The plan for parsed and resolved rebalance options (what the CLI and the studio both preview)."""
    return plan_rebalance(ws, target_from_options(values), mode=values["mode"], max_factor=values["max_factor"],
                          seed=values["seed"], size=values.get("size"), slicing=values.get("slicing"),
                          split=values.get("split"))  # fmt: skip


def plan_rebalance(
    ws: Workspace,
    target: Target,
    *,
    mode: str = UPSAMPLE_MODE.default,
    max_factor: float = MAX_FACTOR.default,
    seed: int = REBALANCE.default("seed"),
    size: int | None = None,
    slicing: str | None = None,
    split: str | None = None,
    pool: Pool | None = None,
) -> RebalancePlan:
    """Plan the train side for ``target``. ``mode``: ``weight`` (up-weight) or ``duplicate`` (copies, capped)."""
    UPSAMPLE_MODE.check(mode)
    MAX_FACTOR.check(max_factor)
    pool = pool or load_pool(ws, slicing=slicing, split=split)
    by_slice: dict[str, list[int]] = {}
    for rid, s in pool.train:
        by_slice.setdefault(s, []).append(rid)
    counts = {s: len(v) for s, v in by_slice.items()}
    n = sum(counts.values())
    if n == 0:
        raise UserError("no eligible training records (need a response, not rejected/removed)")
    size = int(size or n)
    prod = (
        production_shares(ws, slicing=slicing, since=target.since, until=target.until)
        if target.kind == "production"
        else {}
    )
    want = _target_counts(target, counts, size, prod)
    target_shares = shares_array(want)
    import numpy as np  # here: the CLI reads REBALANCE's options at every start

    rng = np.random.default_rng(seed)
    members: list[Member] = []
    rows: list[SliceRow] = []
    warnings: list[str] = []
    for s in sorted(set(counts) | set(want)):
        ids = sorted(by_slice.get(s, []))
        c, t = len(ids), want.get(s, 0.0)
        if c == 0:
            if t >= 0.5:
                warnings.append(f"slice {s!r} has no eligible records; queue new inputs (distill oversample --request)")
            rows.append(SliceRow(s, 0, 0.0, target_shares.get(s, 0.0), 0, 0.0, 0.0, "missing"))
            continue
        chosen: list[Member] = []
        if t < c - 0.5:  # down-sample without replacement
            k = round(t)
            pick = sorted(rng.choice(ids, size=k, replace=False).tolist()) if k else []
            chosen = [Member(r, "train", s) for r in pick]
            action = "down-sample"
        elif t > c + 0.5:
            factor = min(t / c, max_factor)
            if factor >= max_factor - 1e-9 and t / c > max_factor:
                warnings.append(
                    f"slice {s!r} capped at {max_factor:g}x (target needs {t / c:.1f}x); consider new inputs"
                )
            if mode == "weight":
                chosen = [Member(r, "train", s, weight=round(factor, 6)) for r in ids]
                action = "up-weight"
            else:
                total = round(factor * c)
                base, extra = divmod(total, c)
                bonus = set(rng.choice(ids, size=extra, replace=False).tolist()) if extra else set()
                chosen = [Member(r, "train", s, copies=base + (1 if r in bonus else 0)) for r in ids]
                action = "duplicate"
        else:
            chosen = [Member(r, "train", s) for r in ids]
            action = "keep"
        members.extend(chosen)
        weighted = sum(m.weight * m.copies for m in chosen)
        rows.append(SliceRow(s, c, c / n, target_shares.get(s, 0.0), len(chosen), weighted, 0.0, action))
    total_w = sum(r.after_weighted for r in rows) or 1.0
    for r in rows:
        r.after_share = r.after_weighted / total_w
    rows.sort(key=lambda r: -r.before_n)
    before = {r.slice: r.before_share for r in rows}
    after = {r.slice: r.after_share for r in rows}
    members.extend(Member(rid, "heldout", s) for rid, s in pool.heldout)
    return RebalancePlan(
        target,
        mode,
        max_factor,
        seed,
        size,
        rows,
        total_variation(before, target_shares),
        total_variation(after, target_shares),
        members,
        pool,
        warnings,
    )


def pool_recipe(pool: Pool) -> list[dict[str, Any]]:
    """Recipe steps describing how the pool was selected."""
    return [
        {"op": "select", "slicing": pool.slicing, "excluded": pool.excluded},
        {"op": "dedupe", "runs": pool.dedupe_runs},
        {"op": "filter", "drop_runs": pool.filter_runs, "review_runs": pool.review_runs},
        {"op": "split", "split": pool.split},
    ]


def apply_rebalance(ws: Workspace, plan: RebalancePlan, name: str) -> VersionInfo:
    """Write the plan as a new dataset version (records are untouched)."""
    step = {
        "op": "rebalance",
        "target": plan.target.as_dict(),
        "mode": plan.mode,
        "max_factor": plan.max_factor,
        "seed": plan.seed,
        "size": plan.size,
        "tv_before": round(plan.tv_before, 6),
        "tv_after": round(plan.tv_after, 6),
    }
    return create_version(
        ws, name, plan.members, [*pool_recipe(plan.pool), step], split=plan.pool.split, slicing=plan.pool.slicing
    )


def snapshot_version(ws: Workspace, name: str, *, slicing: str | None = None, split: str | None = None) -> VersionInfo:
    """A version of the whole eligible pool as it is (weight 1), with no rebalancing."""
    pool = load_pool(ws, slicing=slicing, split=split)
    members = [Member(r, "train", s) for r, s in pool.train] + [Member(r, "heldout", s) for r, s in pool.heldout]
    return create_version(ws, name, members, [*pool_recipe(pool), {"op": "snapshot"}], split=split, slicing=slicing)
