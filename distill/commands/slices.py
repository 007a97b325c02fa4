"""``distill slices [define | use | list]``: slice shares, and slicings by field, SQL expression or clusters."""

from __future__ import annotations

import argparse

from curation import slices as sl
from distill.common import RAW, add_dry_run, add_json_flag, open_workspace, read_options
from distill.output import CliProgress, pct, print_json, print_table

EXAMPLES = """examples:
  distill slices                                   # shares per slice
  distill slices define area --field metadata.product_area --dry-run
  distill slices define topics --clusters 12 --seed 0
  distill slices define len --sql "CASE WHEN length(prompt) > 200 THEN 'long' ELSE 'short' END"
  distill slices use area                          # curation uses it from now on
  distill slices list"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("slices", parents=[common], formatter_class=RAW, help="slice shares; define slicings",
                       epilog=EXAMPLES)  # fmt: skip
    add_json_flag(p)
    sl.SLICES.add_to_parser(p)
    p.set_defaults(func=cmd_shares, action=None)
    ss = p.add_subparsers(dest="action", metavar="ACTION")
    d = ss.add_parser("define", parents=[common], help="define a slicing by field, SQL or clusters")
    sl.SLICES_DEFINE.add_to_parser(d)
    add_dry_run(d)
    add_json_flag(d)
    d.set_defaults(func=cmd_define)
    u = ss.add_parser("use", parents=[common], help="make a slicing the default ('-' = records' own slice)")
    u.add_argument("name")
    add_json_flag(u)
    u.set_defaults(func=cmd_use)
    li = ss.add_parser("list", parents=[common], help="stored slicings")
    add_json_flag(li)
    li.set_defaults(func=cmd_list)


def cmd_shares(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        slicing = read_options(sl.SLICES, args, ws)["slicing"]
        shares = sl.slice_shares(ws, slicing)
    if args.json:
        print_json({"slicing": slicing, "slices": shares})
    else:
        print_table(["slice", "records", "share", "with response"],
                    [[s.slice, s.n, pct(s.share), s.n_with_response] for s in shares],
                    title="slicing: " + (slicing or "records' own slice"))  # fmt: skip
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        rows = sl.list_slicings(ws)
    if args.json:
        print_json(rows)
    else:
        print_table(["name", "kind", "slices", "active", "spec"],
                    [[r["name"], r["kind"], r["n_slices"], "*" if r["active"] else "", r["spec"]] for r in rows])  # fmt: skip
    return 0


def cmd_use(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        sl.use_slicing(ws, None if args.name == "-" else args.name)
    print("active slicing: " + (args.name if args.name != "-" else "records' own slice"))
    return 0


def cmd_define(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        v = read_options(sl.SLICES_DEFINE, args, ws)
        prog = CliProgress(not args.json)
        preview = sl.preview_definition(ws, v, progress=prog)
        prog.close()
        if not args.dry_run:
            sl.store_definition(ws, preview)
    total = sum(n for _, n in preview.rows) or 1
    if args.json:
        print_json({"name": preview.name, "dry_run": args.dry_run,
                    "slices": [{"slice": s, "n": n} for s, n in preview.rows]})  # fmt: skip
        return 0
    print_table(["slice", "records", "share"], [[s, n, pct(n / total)] for s, n in preview.rows],
                title=f"slicing {preview.name}" + (" (dry run: nothing stored)" if args.dry_run else " (stored)"))  # fmt: skip
    return 0
