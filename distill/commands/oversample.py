"""``distill oversample``: weight or duplicate slices of a version, or queue new inputs for the teacher."""

from __future__ import annotations

import argparse
from typing import Any

from curation.errors import UserError
from curation.oversample import OVERSAMPLE, apply_oversample, expand_flagged, plan_oversample, request_inputs
from distill.common import RAW, add_dry_run, add_json_flag, open_workspace, read_options
from distill.output import pct, print_json, print_table
from train.store import failing_slices

EXAMPLES = """examples:
  distill oversample --from prod-v1 --factor security=3 --name prod-v2
  distill oversample --from prod-v1 --factor security=3 --mode duplicate --cap 4 --dry-run
  distill oversample --request security=200 --reason 'eval: security below bar'
  distill oversample --flagged --request-each 100 --reason 'eval 3'   # slices below their bar"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("oversample", parents=[common], formatter_class=RAW,
                       help="weight/duplicate slices or ask the teacher", epilog=EXAMPLES)  # fmt: skip
    OVERSAMPLE.add_to_parser(p)
    add_dry_run(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_oversample)


def cmd_oversample(args: argparse.Namespace) -> int:
    out: dict[str, Any] = {"dry_run": args.dry_run}
    with open_workspace(args) as ws:
        v = read_options(OVERSAMPLE, args, ws)
        flagged = failing_slices(ws, v["eval_id"]) if v["flagged"] else []  # train's verdict, as slice names
        v = expand_flagged(v, flagged)
        if flagged:
            out["flagged"] = flagged
            if not args.json:
                print(f"slices below their bar: {', '.join(flagged)}")
        if not v["request"] and not v["factor"]:
            raise UserError("give --factor SLICE=X (with --from VERSION) and/or --request SLICE=N "
                            "(or --flagged with --factor-each X / --request-each N)")  # fmt: skip
        if v["request"]:
            ids = request_inputs(ws, v["request"], reason=v["reason"], dry_run=args.dry_run)
            out.update(requests=[{"slice": s, "n": n} for s, n in v["request"].items()], request_ids=ids)
            if not args.json:
                verb = "would queue" if args.dry_run else "queued"
                for s, n in v["request"].items():
                    print(f"{verb} a request for {n} new teacher inputs in slice {s!r} ({v['reason']})")
        if v["factor"]:
            if not v["base"]:
                raise OVERSAMPLE["base"].error("needed with --factor")
            plan = plan_oversample(ws, v["base"], v["factor"], mode=v["mode"], cap=v["cap"])
            info = apply_oversample(ws, plan, v["name"]) if v["name"] and not args.dry_run else None
            out.update(before=plan.before, after=plan.after, version=info)
            if not args.json:
                print_table(["slice", "records", "share before", "share after"],
                            [[s, plan.counts.get(s, 0), pct(plan.before.get(s, 0)), pct(plan.after.get(s, 0))]
                             for s in plan.after])  # fmt: skip
                print(f"wrote dataset version {info.name}" if info else "dry run: nothing written (give --name)")
    if args.json:
        print_json(out)
    return 0
