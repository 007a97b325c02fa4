"""``distill versions [show | snapshot | list]``: immutable dataset versions and their recipes."""

from __future__ import annotations

import argparse
import json

from curation import datasets as ds
from curation.pool import load_pool
from curation.rebalance import SNAPSHOT, snapshot_version
from distill.common import RAW, add_dry_run, add_json_flag, open_workspace, read_options
from distill.output import pct, print_json, print_table

EXAMPLES = """examples:
  distill versions
  distill versions show prod-v1
  distill versions snapshot all-v1   # the whole eligible pool, weight 1"""


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
    print("recipe:\n" + json.dumps(info.recipe, indent=2))
    return 0


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
