"""``distill split make | check | list``: a frozen, stratified held-out split and its leakage check."""

from __future__ import annotations

import argparse

from curation.splits import SPLIT_CHECK, SPLIT_MAKE, check_leakage, freeze_split, list_splits, plan_split, split_kwargs
from distill.common import RAW, add_dry_run, add_json_flag, open_workspace, read_options
from distill.output import CliProgress, pct, print_json, print_table

EXAMPLES = """examples:
  distill split make --share 0.1 --seed 0 --dry-run
  distill split make                 # freezes split 'heldout'
  distill split check                # exit 1 when held-out leaks into train
  distill split list"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("split", parents=[common], formatter_class=RAW, help="frozen held-out split; leakage check",
                       epilog=EXAMPLES)  # fmt: skip
    add_json_flag(p)
    p.set_defaults(func=cmd_list, action=None)
    sp = p.add_subparsers(dest="action", metavar="ACTION")
    make = sp.add_parser("make", parents=[common], help="plan and freeze a stratified held-out split")
    SPLIT_MAKE.add_to_parser(make)
    add_dry_run(make, "preview only; freeze nothing")
    add_json_flag(make)
    make.set_defaults(func=cmd_make)
    check = sp.add_parser("check", parents=[common], help="held-out/train near-duplicate pairs")
    SPLIT_CHECK.add_to_parser(check)
    add_json_flag(check)
    check.set_defaults(func=cmd_check)
    ls = sp.add_parser("list", parents=[common], help="stored splits")
    add_json_flag(ls)
    ls.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        rows = list_splits(ws)
    print_json(rows) if args.json else print_table(
        ["name", "train", "held-out", "params", "created"],
        [[r["name"], r["n_train"], r["n_heldout"], r["params"], r["created_at"]] for r in rows],
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        v = split_kwargs(read_options(SPLIT_CHECK, args, ws))
        prog = CliProgress(not args.json)
        leaks = check_leakage(ws, v["name"], threshold=v["threshold"], model=v["model"], progress=prog)
        prog.close()
    if args.json:
        print_json({"split": v["name"], "leaks": leaks})
    else:
        for lp in leaks[:20]:
            print(f"  held-out #{lp.heldout_id} ~ train #{lp.train_id}  {lp.kind} {lp.similarity:.3f}")
        print(f"{len(leaks)} leaking pairs" + (" (run `distill dedupe` to drop the train side)" if leaks else ""))
    return 1 if leaks else 0


def cmd_make(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        v = split_kwargs(read_options(SPLIT_MAKE, args, ws))
        prog = CliProgress(not args.json)
        plan = plan_split(ws, **v, progress=prog)
        prog.close()
        if not args.dry_run:
            freeze_split(ws, plan, model=v["model"], slicing=v["slicing"])
    if args.json:
        print_json({"name": plan.name, "n_heldout": len(plan.heldout), "n_train": len(plan.train),
                    "per_slice": plan.per_slice, "dry_run": args.dry_run})  # fmt: skip
        return 0
    print_table(["slice", "usable", "held-out", "share", "not usable"],
                [[s, n, h, pct(h / n if n else 0), x] for s, n, h, x in plan.per_slice])  # fmt: skip
    print("usable: what a version could train on; not usable: removed as duplicates, filtered, rejected or without "
          "a response (they stay on their near-duplicates' side)")  # fmt: skip
    print(f"{len(plan.heldout)} held-out / {len(plan.train)} train; {plan.n_clusters_joined} near-duplicate "
          "clusters kept on one side")  # fmt: skip
    print("dry run: nothing stored" if args.dry_run else f"split {plan.name!r} frozen")
    return 0
