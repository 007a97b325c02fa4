"""``distill rebalance``: plan a dataset version whose slice shares match a target; ``--name`` writes it."""

from __future__ import annotations

import argparse

from curation.datasets import describe_rows
from curation.rebalance import REBALANCE, apply_rebalance, plan_from_options
from distill.common import RAW, add_dry_run, add_json_flag, open_workspace, read_options
from distill.output import pct, print_json, print_table

DESCRIPTION = """Plan a dataset version whose slice shares match a target: down-sample over-represented slices,
up-weight (or duplicate) under-represented ones. Seeded; records are never changed or deleted.
Usual order: dedupe -> split make -> filter -> rebalance --name V -> export V."""
EXAMPLES = """examples:
  distill rebalance --to production --dry-run
  distill rebalance --to production --since 2026-01-01 --until 2026-02-01 --name prod-v1
  distill rebalance --to shares --shares billing=0.3,security=0.1 --mode duplicate --name v2
  distill rebalance --to min-count --min-count 50 --max-factor 4 --name v3
  distill rebalance --to uniform --budget 4000 --name v4   (exactly 4,000 training rows, coverage-keeping)"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("rebalance", parents=[common], formatter_class=RAW, help="plan/apply a rebalanced version",
                       description=DESCRIPTION, epilog=EXAMPLES)  # fmt: skip
    REBALANCE.add_to_parser(p)
    add_dry_run(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_rebalance)


def print_plan_rows(rows: list) -> None:
    """The per-slice plan: before and after counts and shares, target share, action."""
    print_table(
        ["slice", "before", "before %", "target %", "records", "rows", "weight", "after %", "action"],
        [[r.slice, r.before_n, pct(r.before_share), pct(r.target_share), r.after_n, r.rows, f"{r.weight:g}",
          pct(r.after_share), r.action] for r in rows],
    )  # fmt: skip


def cmd_rebalance(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        v = read_options(REBALANCE, args, ws)
        plan = plan_from_options(ws, v)
        info = apply_rebalance(ws, plan, v["name"]) if v["name"] and not args.dry_run else None
        written = describe_rows(ws, info.name) if info else ""
    if args.json:
        print_json({"rows": plan.rows, "train_rows": plan.train_rows, "tv_before": plan.tv_before,
                    "tv_after": plan.tv_after, "excluded": plan.pool.excluded, "warnings": plan.warnings,
                    "version": info})  # fmt: skip
        return 0
    print_plan_rows(plan.rows)
    print(f"training rows: {plan.train_rows:,} (one per copy; a weight scales a row's loss)"
          + (f"; down-sampled slices keep {plan.select} picks" if any(r.action == "down-sample" for r in plan.rows)
             else ""))  # fmt: skip
    print(f"distance to target (total variation): before {plan.tv_before:.3f}, after {plan.tv_after:.3f}")
    print(f"held-out: {len(plan.pool.heldout)} records (split {plan.pool.split or 'none'}); excluded: "
          f"{plan.pool.excluded or 'none'}"
          + (" (no_response: those need the teacher first)" if plan.pool.excluded.get("no_response") else ""))  # fmt: skip
    for w in plan.warnings:
        print(f"warning: {w}")
    if info:
        print(f"wrote dataset version {info.name}: {written}")
    else:
        print("dry run: nothing written" + ("" if v["name"] else " (give --name VERSION to write a version)"))
    return 0
