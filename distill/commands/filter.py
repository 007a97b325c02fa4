"""``distill filter``: confidence and verifier filters over teacher answers (``--dry-run`` stores nothing)."""

from __future__ import annotations

import argparse

from curation.filters import FILTER, filter_spec, list_filter_runs, run_filter
from distill.common import RAW, add_dry_run, add_json_flag, open_workspace, read_options
from distill.output import CliProgress, print_json, print_table

EXAMPLES = """examples:
  distill filter lowconf --confidence min_logprob --min -2.5 --dry-run   # how many fail?
  distill filter intent-p --confidence answer_prob --field intent --min 0.8 --dry-run
  distill filter valid --verifier '{"type": "json"}' --policy drop
  distill filter labels --verifier-file labels.json --policy review
  distill filter --list"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("filter", parents=[common], formatter_class=RAW, help="confidence and verifier filters",
                       epilog=EXAMPLES)  # fmt: skip
    FILTER.add_to_parser(p)
    p.add_argument("--list", action="store_true", help="list stored filter runs")
    add_dry_run(p, "preview only; store nothing, queue nothing")
    add_json_flag(p)
    p.set_defaults(func=cmd_filter)


def cmd_filter(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        if args.list or not args.name:
            runs = list_filter_runs(ws)
            print_json(runs) if args.json else print_table(
                ["run", "name", "policy", "checked", "failed", "queued", "spec"],
                [[r["run_id"], r["name"], r["policy"], r["n_checked"], r["n_failed"], r["n_queued"], r["spec"]]
                 for r in runs],
            )  # fmt: skip
            return 0
        v = read_options(FILTER, args, ws)
        spec = filter_spec(v)
        prog = CliProgress(not args.json)
        rep = run_filter(ws, v["name"], spec, v["policy"], apply=not args.dry_run, slicing=v["slicing"], progress=prog)
        prog.close()
    if args.json:
        print_json(rep)
        return 0
    print(f"filter {rep.name} ({rep.policy}): {rep.n_failed:,} of {rep.n_checked:,} fail"
          + (f"; {rep.n_unscored:,} had no logprobs (not judged)" if rep.n_unscored else ""))  # fmt: skip
    if rep.range_hint:
        print(rep.range_hint)
    print_table(["slice", "checked", "failed"], rep.per_slice)
    for s in rep.sample[:5]:
        print(f"  #{s['record_id']} {s['reason']}: {s['prompt'][:70]!r}")
    if rep.policy == "review":
        print(f"{'would queue' if args.dry_run else 'queued'} {rep.n_to_queue:,} for review; "
              f"{rep.n_protected:,} left alone (a human already accepted/rejected them)")  # fmt: skip
    print("dry run: nothing stored" if args.dry_run else f"stored filter run {rep.run_id}")
    return 0
