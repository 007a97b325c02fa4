"""Oversample weak slices: more weight, more copies (capped), or a request to the teacher for new inputs.

Weight and duplication make a new dataset version from an existing one (versions are immutable); a request
for new inputs inserts ``input_requests`` rows (slice, n, reason) that the teacher fulfils. This module owns
``input_requests``: the evaluation's "more inputs for this failing slice" and synth's fulfilment go through it.
Which slices are weak is the caller's to say (e.g. ``train.store.failing_slices``); curation never reads the
training tables.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import duckdb

from curation.datasets import Member, VersionInfo, create_version, get_version, version_members, weighted_shares
from curation.errors import UserError
from curation.option_lists import SharesOption
from curation.options import FlagOption, FloatOption, IntOption, OptionSet, TextOption
from curation.rebalance import MAX_FACTOR, UPSAMPLE_MODE
from curation.workspace import Workspace

OVERSAMPLE = OptionSet(
    "oversample",
    (
        TextOption(
            name="base",
            flag="--from",
            label="From version",
            metavar="VERSION",
            help="dataset version to oversample (with --factor)",
        ),
        SharesOption(
            name="factor", minimum=0, exclusive_minimum=True, help="multiply a slice's weight (or copies) by X"
        ),
        UPSAMPLE_MODE,
        replace(MAX_FACTOR, name="cap", flag="--cap", label="", help="cap on the factor"),
        TextOption(name="name", metavar="VERSION", help="write the oversampled version under this name"),
        SharesOption(name="request", integer=True, minimum=1, help="queue N new teacher inputs for a slice"),
        TextOption(name="reason", default="oversample", help="why the inputs are requested (kept with the request)"),
        FlagOption(name="flagged", help="the slices that failed their bar in the latest evaluation"),
        IntOption(
            name="eval_id",
            flag="--eval",
            label="Evaluation",
            metavar="ID",
            help="with --flagged: this evaluation instead of the latest",
        ),
        FloatOption(
            name="factor_each", minimum=0, exclusive_minimum=True, help="with --flagged: factor for each flagged slice"
        ),
        IntOption(name="request_each", minimum=1, help="with --flagged: new inputs for each flagged slice"),
    ),
)


def expand_flagged(values: dict[str, Any], failing: list[str]) -> dict[str, Any]:
    """With ``flagged``: add ``factor_each`` / ``request_each`` for each slice of ``failing`` (the slices that failed
    their bar, as the caller read them from the evaluation: ``train.store.failing_slices``)."""
    if not values.get("flagged"):
        return values
    if not failing:
        raise OVERSAMPLE["flagged"].error("no slice failed its bar in the evaluation (or no evaluation yet)")
    out = dict(values)
    if values.get("factor_each"):
        out["factor"] = {**(values.get("factor") or {}), **{s: values["factor_each"] for s in failing}}
    if values.get("request_each"):
        out["request"] = {**(values.get("request") or {}), **{s: values["request_each"] for s in failing}}
    return out


@dataclass
class OversamplePlan:
    """Per-slice factors applied to a base version's train side."""

    base: str
    mode: str
    factors: dict[str, float]
    cap: float
    members: list[Member]
    before: dict[str, float]
    after: dict[str, float]
    counts: dict[str, int]


def plan_oversample(
    ws: Workspace,
    base: str,
    factors: dict[str, float],
    *,
    mode: str = UPSAMPLE_MODE.default,
    cap: float = OVERSAMPLE.default("cap"),
) -> OversamplePlan:
    """Multiply the weight (or copies, rounded) of the named slices' train records by a factor, capped."""
    UPSAMPLE_MODE.check(mode)
    OVERSAMPLE["cap"].check(cap)
    if not factors:
        raise OVERSAMPLE["factor"].error("name at least one slice to oversample")
    members = version_members(ws, base)
    present = {m.slice for m in members if m.side == "train"}
    unknown = sorted(set(factors) - present)
    if unknown:
        raise UserError(f"slice(s) not in version {base!r}: {', '.join(unknown)}")
    out: list[Member] = []
    for m in members:
        f = min(float(factors.get(m.slice, 1.0)), cap) if m.side == "train" else 1.0
        if f <= 0:
            raise UserError("factors must be > 0")
        if f == 1.0:
            out.append(m)
        elif mode == "weight":
            out.append(Member(m.record_id, m.side, m.slice, round(m.weight * f, 6), m.copies))
        else:
            out.append(Member(m.record_id, m.side, m.slice, m.weight, max(1, round(m.copies * f))))
    counts: dict[str, int] = {}
    for m in members:
        if m.side == "train":
            counts[m.slice] = counts.get(m.slice, 0) + 1
    return OversamplePlan(base, mode, factors, cap, out, weighted_shares(members), weighted_shares(out), counts)


def apply_oversample(ws: Workspace, plan: OversamplePlan, name: str) -> VersionInfo:
    """Write the oversampled version; its recipe is the base recipe plus this step."""
    info = get_version(ws, plan.base)
    step = {"op": "oversample", "base": plan.base, "mode": plan.mode, "factors": plan.factors, "cap": plan.cap}
    return create_version(ws, name, plan.members, [*info.recipe, step], split=info.split)


def request_inputs(
    ws: Workspace, wanted: dict[str, int], *, reason: str = OVERSAMPLE.default("reason"), dry_run: bool = False
) -> list[int]:
    """Queue requests for ``n`` new teacher inputs per slice; returns the request ids (empty on a dry run)."""
    if any(n <= 0 for n in wanted.values()):
        raise UserError("the number of new inputs must be > 0")
    if dry_run or not wanted:
        return []
    ids = []
    with ws.transaction() as cur:
        for s, n in wanted.items():
            ids.append(
                int(
                    cur.execute(
                        "INSERT INTO input_requests (slice, n, reason, created_at) VALUES (?, ?, ?, ?) "
                        "RETURNING request_id",
                        [s, int(n), reason, datetime.now()],
                    ).fetchall()[0][0]
                )
            )
    return ids


def close_request(cur: duckdb.DuckDBPyConnection, request_id: int, n_generated: int) -> None:
    """Inside the caller's transaction (the one that inserts the new inputs): mark a request done with ``n_generated``
    more inputs made for it."""
    cur.execute(
        "UPDATE input_requests SET status = 'done', fulfilled_at = ?, n_generated = n_generated + ? "
        "WHERE request_id = ?",
        [datetime.now(), int(n_generated), int(request_id)],
    )


def open_requests(ws: Workspace) -> list[dict]:
    """Open input requests, oldest first."""
    return ws.query_dicts(
        "SELECT request_id, slice, n, reason, status, created_at, n_generated FROM input_requests "
        "WHERE status = 'open' ORDER BY request_id"
    )
