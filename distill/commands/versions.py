"""``distill versions [show | snapshot | list]``: immutable dataset versions and their recipes."""

from __future__ import annotations

import argparse
import json

from curation import datasets as ds
from curation.pool import load_pool
from curation.rebalance import SNAPSHOT, snapshot_version
from distill.common import RAW, add_dry_run, add_json_flag, open_workspace, read_options
from distill.output import pct, print_json, print_table
from train.bars import get_bar, require_bar
from train.teacher_policy import POLICIES, SliceChoice, apply_policy, plan_policy

EXAMPLES = """examples:
  distill versions
  distill versions show prod-v1
  distill versions snapshot all-v1   # the whole eligible pool, weight 1
  distill versions teachers all-v1 --policy specialist              # per slice, each teacher's score (a table)
  distill versions teachers all-v1 --policy specialist --as spec-v1 # ... and write the version
  distill versions teachers all-v1 --policy vote --as vote-v1       # majority answer; disagreements to review
  distill versions teachers all-v1 --policy teacher --teacher gpt4 --as gpt4-v1"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("versions", parents=[common], formatter_class=RAW, help="dataset versions", epilog=EXAMPLES)
    add_json_flag(p)
    p.set_defaults(func=cmd_list, action=None)
    vs = p.add_subparsers(dest="action", metavar="ACTION")
    s = vs.add_parser("show", parents=[common], help="one version: shares and recipe")
    s.add_argument("name")
    add_json_flag(s)
    s.set_defaults(func=cmd_show)
    s = vs.add_parser("snapshot", parents=[common], help="version of the eligible pool as it is")
    s.add_argument("name")
    SNAPSHOT.add_to_parser(s)
    add_dry_run(s)
    add_json_flag(s)
    s.set_defaults(func=cmd_snapshot)
    s = vs.add_parser("teachers", parents=[common], help="a version with each member's answer chosen among teachers")
    s.add_argument("name", help="the version whose members to take")
    s.add_argument("--policy", choices=POLICIES, required=True, help="teacher: one named teacher; specialist: per "
                   "slice the teacher scoring best on the bar's primary metric; vote: the teachers' majority")  # fmt: skip
    s.add_argument("--teacher", metavar="NAME", help="the teacher of the teacher policy")
    s.add_argument("--bar", metavar="NAME", default="default", help="the quality bar scoring teachers (specialist)")
    s.add_argument("--as", dest="new_name", metavar="NEW", help="write the new version (without it: only show)")
    add_json_flag(s)
    s.set_defaults(func=cmd_teachers)
    s = vs.add_parser("list", parents=[common], help="every version")
    add_json_flag(s)
    s.set_defaults(func=cmd_list)


def cmd_snapshot(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        v = read_options(SNAPSHOT, args, ws)
        if args.dry_run:
            pool = load_pool(ws, slicing=v["slicing"], split=v["split"])
            print(f"would write {args.name}: {len(pool.train)} train, {len(pool.heldout)} held-out; "
                  f"excluded {pool.excluded or 'none'}")  # fmt: skip
            return 0
        info = snapshot_version(ws, args.name, slicing=v["slicing"], split=v["split"])
    print_json(info) if args.json else print(f"wrote {info.name}: {info.n_train} train, {info.n_heldout} held-out")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        info = ds.get_version(ws, args.name)
        rows = ds.describe_rows(ws, args.name)
    if args.json:
        print_json(info)
        return 0
    print(f"{info.name}  created {info.created_at:%Y-%m-%d %H:%M}  split {info.split or '-'}  {rows}")
    print_table(["slice", "weighted share"], [[s, pct(x)] for s, x in info.shares.items()])
    for step in info.recipe:
        if step.get("op") == "teacher_policy" and step.get("slices"):
            print_table(["slice", "teacher"], [[s, t or "- (own answers)"] for s, t in step["slices"].items()])
    print("recipe:\n" + json.dumps(info.recipe, indent=2))
    return 0


def cmd_teachers(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        bar = get_bar(ws, args.bar) if args.policy != "teacher" else None
        if args.policy == "specialist" and bar is None:
            require_bar(ws, args.bar)
        plan = plan_policy(ws, args.name, args.policy, teacher=args.teacher, bar=bar)
        info = apply_policy(ws, plan, args.new_name) if args.new_name else None
    if args.json:
        print_json({"plan": plan.recipe_step(), "slices": plan.slices, "answers": len(plan.answers),
                    "members": plan.n_members, "to_review": len(plan.to_review), "version": info})  # fmt: skip
        return 0
    if plan.slices:
        teachers = sorted({t for s in plan.slices for t in s.scores})
        print(f"{bar.primary_name if bar else ''} per slice and teacher (mean, n); * = chosen")
        rows = [[s.slice, *(_cell(s, t) for t in teachers), s.chosen or "- (own answers)"] for s in plan.slices]
        print_table(["slice", *teachers, "chosen"], rows)
    kept = plan.n_members - len(plan.answers)
    print(f"{args.policy}: {len(plan.answers)} of {plan.n_members} members take a chosen teacher's answer"
          + (f", {kept} keep their own" if kept else ""))  # fmt: skip
    if args.policy == "vote":
        print(f"  teachers disagree on {len(plan.to_review)} (ties: {plan.ties}, kept their own answer)"
              + ("; queued for review" if info and plan.to_review else ""))  # fmt: skip
    if info:
        print(f"wrote {info.name}: {info.n_train} train, {info.n_heldout} held-out")
    else:
        print("(nothing written; add --as NEW to write the version)")
    return 0


def _cell(s: SliceChoice, teacher: str) -> str:
    if teacher not in s.scores:
        return "-"
    mean, n = s.scores[teacher]
    return f"{mean:.3f} ({n}){' *' if teacher == s.chosen else ''}"


def cmd_list(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        vs = ds.list_versions(ws)
    if args.json:
        print_json(vs)
        return 0
    print_table(["name", "created", "split", "train rows", "held-out", "ops"],
                [[v.name, v.created_at, v.split, v.n_train, v.n_heldout, " > ".join(s["op"] for s in v.recipe)]
                 for v in vs])  # fmt: skip
    return 0
