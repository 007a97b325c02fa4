"""``distill checklist``: the seven phases of a distillation project, each item measured from the workspace."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from distill.common import add_json_flag, open_workspace
from distill.output import print_json

MARK = {"ok": "[x]", "open": "[ ]", "n/a": "[-]"}
EXAMPLES = """examples:
  distill checklist
  distill checklist --dataset v3 --json

Nothing is ticked by hand: each item reads the workspace (bar, baselines, versions, splits, runs, evaluations,
rounds, the gateway's logs). An open item ends with the command that closes it. `distill train` warns about open
items of "define success" and "data"; `distill train --strict` refuses to start while any is open."""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("checklist", help="the project's phases and what is still open, measured from the workspace",
                       parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=EXAMPLES)  # fmt: skip
    p.add_argument("--dataset", metavar="VERSION", help="judge this dataset version (default: the newest)")
    add_json_flag(p)
    p.set_defaults(func=cmd_checklist)


def cmd_checklist(args: argparse.Namespace) -> int:
    from train.checklist import run

    with open_workspace(args) as ws:
        items = run(ws, version=args.dataset)
    if args.json:
        print_json([asdict(i) for i in items])
        return 0
    phase = None
    for n, it in enumerate(items):
        if it.phase != phase:
            phase = it.phase
            print(f"{'' if n == 0 else chr(10)}{phase}")
        line = f"  {MARK[it.state]} {it.title}: {it.detail}"
        print(line + (f"\n        -> {it.next_step}" if it.next_step else ""))
    n_open = sum(i.state == "open" for i in items)
    print(f"\n{len(items) - n_open} of {len(items)} items done, {n_open} open")
    return 0
