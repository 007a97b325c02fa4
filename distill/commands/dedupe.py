"""``distill dedupe``: exact / semantic de-duplication, previewed first (``--dry-run`` stores nothing)."""

from __future__ import annotations

import argparse

from curation.dedupe import DEDUPE, apply_dedupe, find_duplicates, list_runs
from curation.options import omit
from distill.common import RAW, add_dry_run, add_json_flag, open_workspace, read_options
from distill.output import CliProgress, pct, print_json, print_table

EXAMPLES = """examples:
  distill dedupe --exact
  distill dedupe --dry-run            # semantic, threshold {threshold:g}: pairs near the threshold, removal per slice
  distill dedupe --threshold 0.93 --force
  distill dedupe --list"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("dedupe", parents=[common], formatter_class=RAW, help="exact / semantic de-duplication",
                       epilog=EXAMPLES.format(threshold=DEDUPE.default("threshold")))  # fmt: skip
    DEDUPE.add_to_parser(p)
    p.add_argument("--list", action="store_true", help="list stored dedupe runs")
    add_dry_run(p, "preview only; store nothing")
    add_json_flag(p)
    p.set_defaults(func=cmd_dedupe)


def cmd_dedupe(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        if args.list:
            runs = list_runs(ws)
            print_json(runs) if args.json else print_table(
                list(runs[0]) if runs else ["run_id"], [list(r.values()) for r in runs]
            )
            return 0
        v = read_options(DEDUPE, args, ws)
        prog = CliProgress(not args.json)
        res = find_duplicates(ws, **omit(v, "force"), progress=prog)
        prog.close()
        run_id = None if args.dry_run else apply_dedupe(ws, res, force=v["force"])
    if args.json:
        print_json({"kind": res.kind, "threshold": res.threshold, "method": res.method, "n_records": res.n_records,
                    "n_clusters": len(res.clusters), "n_removed": res.n_removed, "per_slice": res.per_slice,
                    "above": res.above, "below": res.below, "blocked": res.blocked, "run_id": run_id})  # fmt: skip
        return 0
    print(f"{res.kind} dedupe over {res.n_records:,} records ({res.method}): {len(res.clusters):,} clusters, "
          f"{res.n_removed:,} would be removed")  # fmt: skip
    print_table(
        ["slice", "records", "removed", "rate", "rare", "blocked"],
        [[s.slice, s.n, s.removed, pct(s.rate), "rare" if s.rare else "", "BLOCKED" if s.blocked else ""]
         for s in res.per_slice],
    )  # fmt: skip
    for title, pairs in (("just above the threshold (merged)", res.above), ("just below (kept apart)", res.below)):
        if pairs:
            print(title + ":")
            for pr in pairs:
                print(f"  {pr.similarity:.3f}  #{pr.a} {pr.prompt_a[:60]!r}  ~  #{pr.b} {pr.prompt_b[:60]!r}")
    print(f"stored dedupe run {run_id}" if run_id else "dry run: nothing stored")
    return 0
