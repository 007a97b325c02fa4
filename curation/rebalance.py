"""Rebalance the training side towards a target slice distribution, as a seeded, reproducible plan.

Targets: the production distribution (slices of imported log records, optionally within a time window),
explicit shares, equal shares (uniform), or a minimum count per slice. Over-represented slices are down-sampled,
under-represented ones up-weighted or duplicated (capped). Which examples a down-sampled slice keeps: the most
typical of each k-means cluster of its prompts (``curation.coverage``; ``--select random`` for a seeded sample).

Sizes: a slice with target share p gets min(capacity, p x W) training rows (capacity = its records, or with
``--mode duplicate`` max-factor copies of them). Without a budget W is the eligible pool's size (as before); with
``--budget N`` W is solved so that the rows sum to exactly N (largest remainder), and a slice at capacity carries
the rest of its share as a weight (weight mode) or falls short of it (duplicate mode, with a warning). Training
receives one row per copy; weights scale a row's loss. Applying writes a new dataset version; records are never
changed or deleted. The held-out side is carried over untouched.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from curation.coverage import SELECT, largest_remainder, select_typical
from curation.datasets import Member, VersionInfo, create_version
from curation.effective import effective_sql
from curation.embeddings import EMBEDDING_MODEL
from curation.errors import UserError
from curation.lazy import lazy_module
from curation.option_lists import SharesOption
from curation.options import ChoiceOption, DateTimeOption, FloatOption, IntOption, OptionSet, TextOption
from curation.pool import Pool, load_pool
from curation.pool_options import SLICING, SPLIT
from curation.progress import ProgressFn
from curation.slices import shares_array, total_variation
from curation.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_module("numpy")  # loaded when a plan is made: the CLI reads REBALANCE's options at every start

# How under-represented slices grow, and by how much at most: shared with ``curation.oversample``.
UPSAMPLE_MODE = ChoiceOption(name="mode", choices=("weight", "duplicate"), default="weight", required=True,
                             help="how to up-sample: a higher weight, or duplicate copies")  # fmt: skip
MAX_FACTOR = FloatOption(name="max_factor", default=5.0, minimum=1, required=True, help="cap on up-sampling")
REBALANCE = OptionSet(
    "rebalance",
    (
        ChoiceOption(
            name="to",
            choices=("production", "shares", "uniform", "min-count"),
            default="production",
            required=True,
            help="target: shares of all imported logs (production), explicit --shares, equal shares (uniform), or "
            "--min-count per slice",
        ),
        SharesOption(name="shares", minimum=0, maximum=1, help="with --to shares: target share per slice"),
        IntOption(name="min_count", minimum=1, help="with --to min-count: at least this many per slice"),
        DateTimeOption(name="since", help="production window start (logged_at)"),
        DateTimeOption(name="until", help="production window end"),
        UPSAMPLE_MODE,
        MAX_FACTOR,
        IntOption(
            name="budget",
            minimum=1,
            help="exactly N training rows, as training receives them (copies count; weights scale a row's loss); "
            "default: as many as the target allows with the eligible pool's size as total weight",
        ),
        SELECT,
        IntOption(name="seed", default=0, required=True, help="random seed of the k-means or random down-sampling"),
        TextOption(name="name", metavar="VERSION", help="write the plan as this dataset version"),
        SLICING,
        SPLIT,
        EMBEDDING_MODEL,
    ),
)


@dataclass
class Target:
    """What distribution to aim for: ``production`` | ``shares`` | ``uniform`` | ``min_count``."""

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
    rows: int = 0  # training rows (one per copy)
    weight: float = 1.0  # weight on each of them


@dataclass
class RebalancePlan:
    """A seeded plan; ``members`` is what a version made from it would contain."""

    target: Target
    mode: str
    max_factor: float
    seed: int
    budget: int | None
    select: str
    rows: list[SliceRow]
    tv_before: float
    tv_after: float
    members: list[Member]
    pool: Pool
    warnings: list[str]

    @property
    def train_rows(self) -> int:
        """Training rows the version will give training (one per copy)."""
        return sum(r.rows for r in self.rows)


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


def _target(target: Target, counts: dict[str, int], prod: dict[str, float]) -> tuple[dict[str, float], float]:
    """Target share per slice, and the total weight it is a share of when no budget is given."""
    n = float(sum(counts.values()))
    if target.kind == "min_count":
        raw = {s: float(max(c, target.min_count)) for s, c in counts.items()}
        return shares_array(raw), sum(raw.values())
    if target.kind == "production":
        return prod, n
    if target.kind == "uniform":
        return {s: 1.0 / len(counts) for s in counts}, n
    if target.kind == "shares":
        listed = {s: float(v) for s, v in target.shares.items()}
        rest = 1.0 - sum(listed.values())
        if rest < -1e-9 or any(v < 0 for v in listed.values()):
            raise UserError("explicit shares must be >= 0 and sum to at most 1")
        unlisted = {s: c for s, c in counts.items() if s not in listed}
        tot = sum(unlisted.values()) or 1
        return {**{s: max(rest, 0.0) * c / tot for s, c in unlisted.items()}, **listed}, n
    raise UserError(f"unknown target {target.kind!r} (production, shares, uniform, min_count)")


def _scale_for(budget: int, shares: dict[str, float], cap: dict[str, int]) -> float:
    """W such that the sum over slices of min(cap, share x W) is ``budget`` (piecewise linear in W: slices reach
    their capacity one by one, in order of cap / share)."""
    usable = sum(cap[s] for s, p in shares.items() if p > 0)
    if budget > usable:
        raise REBALANCE["budget"].error(
            f"{budget:,} training rows is more than this target can fill ({usable:,}: the eligible records of the "
            "slices it names, or with --mode duplicate max-factor copies of them)"
        )
    full, active = 0.0, sum(p for p in shares.values() if p > 0)
    for s in sorted((s for s, p in shares.items() if p > 0), key=lambda s: cap[s] / shares[s]):
        at = cap[s] / shares[s]
        if full + active * at >= budget:
            break
        full += cap[s]
        active -= shares[s]
    return (budget - full) / active if active > 1e-12 else float("inf")


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


def plan_from_options(ws: Workspace, values: dict[str, Any], *, progress: ProgressFn | None = None,
                      cancel: threading.Event | None = None) -> RebalancePlan:  # fmt: skip
    """The plan for parsed and resolved rebalance options (what the CLI and the studio both preview)."""
    return plan_rebalance(ws, target_from_options(values), mode=values["mode"], max_factor=values["max_factor"],
                          seed=values["seed"], budget=values.get("budget"), select=values["select"],
                          slicing=values.get("slicing"), split=values.get("split"), model=values.get("model"),
                          progress=progress, cancel=cancel)  # fmt: skip


def plan_rebalance(
    ws: Workspace,
    target: Target,
    *,
    mode: str = UPSAMPLE_MODE.default,
    max_factor: float = MAX_FACTOR.default,
    seed: int = REBALANCE.default("seed"),
    budget: int | None = None,
    select: str = SELECT.default,
    slicing: str | None = None,
    split: str | None = None,
    model: str | None = None,
    pool: Pool | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> RebalancePlan:
    """Plan the train side for ``target``. ``mode``: ``weight`` (up-weight) or ``duplicate`` (copies, capped);
    ``budget``: exactly that many training rows; ``select``: which records a down-sampled slice keeps."""
    UPSAMPLE_MODE.check(mode)
    MAX_FACTOR.check(max_factor)
    SELECT.check(select)
    pool = pool or load_pool(ws, slicing=slicing, split=split)
    by_slice: dict[str, list[int]] = {}
    for rid, s in pool.train:
        by_slice.setdefault(s, []).append(rid)
    counts = {s: len(v) for s, v in by_slice.items()}
    n = sum(counts.values())
    if n == 0:
        raise UserError("no eligible training records (need a response, not rejected/removed)")
    prod = (
        production_shares(ws, slicing=slicing, since=target.since, until=target.until)
        if target.kind == "production"
        else {}
    )
    shares, total = _target(target, counts, prod)
    slices = sorted(set(counts) | set(shares))
    c = {s: counts.get(s, 0) for s in slices}
    p = {s: shares.get(s, 0.0) for s in slices}
    dup = mode == "duplicate"
    if budget is None:  # as before: the pool's size as total weight, each slice rounded on its own
        want = {s: p[s] * total for s in slices}
        rows_of = {s: min(round(min(max_factor * c[s], want[s])) if dup else c[s], round(want[s])) for s in slices}
    else:
        cap = {s: int(np.floor(max_factor * c[s] + 1e-9)) if dup else c[s] for s in slices}
        scale = _scale_for(budget, p, cap)
        want = {s: p[s] * scale for s in slices}
        rows_of = largest_remainder({s: min(cap[s], want[s]) for s in slices}, budget, cap)
    rng = np.random.default_rng(seed)
    down = {s: rows_of[s] for s in slices if 0 < c[s] and rows_of[s] < c[s]}
    picks = _down_sample(ws, by_slice, down, select, seed, rng, model, progress, cancel)
    target_shares = shares_array(p)
    members: list[Member] = []
    rows: list[SliceRow] = []
    warnings: list[str] = []
    for s in slices:
        ids = sorted(by_slice.get(s, []))
        if not ids:
            if want[s] >= 0.5:
                warnings.append(f"slice {s!r} has no eligible records; queue new inputs (distill oversample --request)")
            rows.append(SliceRow(s, 0, 0.0, target_shares.get(s, 0.0), 0, 0.0, 0.0, "missing"))
            continue
        weight = 1.0
        if s in down:
            chosen = [Member(r, "train", s) for r in picks[s]]
            action = "down-sample"
        elif want[s] > c[s] + 0.5:
            factor = want[s] / c[s]
            if factor > max_factor + 1e-9:
                warnings.append(
                    f"slice {s!r} capped at {max_factor:g}x (target needs {factor:.1f}x); consider new inputs"
                )
            if dup:
                base, extra = divmod(rows_of[s], c[s])
                bonus = set(rng.choice(ids, size=extra, replace=False).tolist()) if extra else set()
                chosen = [Member(r, "train", s, copies=base + (1 if r in bonus else 0)) for r in ids]
                action = "duplicate"
            else:
                weight = round(min(factor, max_factor), 6)
                chosen = [Member(r, "train", s, weight=weight) for r in ids]
                action = "up-weight"
        else:
            chosen = [Member(r, "train", s) for r in ids]
            action = "keep"
        members.extend(chosen)
        weighted = sum(m.weight * m.copies for m in chosen)
        rows.append(SliceRow(s, c[s], c[s] / n, target_shares.get(s, 0.0), len(chosen), weighted, 0.0, action,
                             sum(m.copies for m in chosen), weight))  # fmt: skip
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
        budget,
        select,
        rows,
        total_variation(before, target_shares),
        total_variation(after, target_shares),
        members,
        pool,
        warnings,
    )


def _down_sample(
    ws: Workspace,
    by_slice: dict[str, list[int]],
    keep: dict[str, int],
    select: str,
    seed: int,
    rng: np.random.Generator,
    model: str | None,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
) -> dict[str, list[int]]:
    """The record ids each down-sampled slice keeps (``keep``: how many), sorted."""
    if select == "random":  # the same draws as before coverage selection existed, slice by slice in name order
        return {s: sorted(rng.choice(sorted(by_slice[s]), size=k, replace=False).tolist()) if k else []
                for s, k in sorted(keep.items())}  # fmt: skip
    from curation.embeddings import embed_texts

    ids = [r for s in sorted(keep) for r in sorted(by_slice[s])]
    prompt = dict(ws.query("SELECT record_id, coalesce(prompt, '') FROM records WHERE record_id IN "
                           "(SELECT unnest(?))", [ids]))  # fmt: skip
    vecs = embed_texts(ws, [prompt[r] for r in ids], model=model, progress=progress, cancel=cancel)
    out: dict[str, list[int]] = {}
    at = 0
    for s in sorted(keep):
        members = sorted(by_slice[s])
        block = vecs[at : at + len(members)]
        at += len(members)
        out[s] = [members[k] for k in select_typical(block, keep[s], seed).tolist()]
    return out


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
        "budget": plan.budget,
        "select": plan.select,
        "train_rows": plan.train_rows,
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
