"""`distill review`: team review outside the studio: progress per slice and reviewer, agreement, assignments,
and the export of every reviewer's verdicts as JSON lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curation.browse import RecordFilter
from curation.errors import UserError
from curation.team import ASSIGN, agreement_by_slice, assign, count_conflicts, export_decisions, progress_by_reviewer
from distill.common import RAW, add_json_flag, open_workspace, read_options
from distill.output import print_json, print_table

EXAMPLES = """examples:
  distill review                                        # progress per slice and reviewer, agreement
  distill review assign --reviewers alice,bob --overlap 0.1
  distill review assign --reviewers alice,bob,carol --by slice --slice billing,shipping
  distill review export -o decisions.jsonl               # every reviewer's verdicts (stdout without -o)"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("review", parents=[common], formatter_class=RAW, epilog=EXAMPLES,
                       help="team review: progress per reviewer, agreement, assignments, export")  # fmt: skip
    add_json_flag(p)
    p.set_defaults(func=cmd_status)
    rs = p.add_subparsers(dest="review_cmd", metavar="{status,assign,export}")
    st = rs.add_parser("status", parents=[common], help="progress per slice and reviewer, agreement per slice")
    add_json_flag(st)
    st.set_defaults(func=cmd_status)
    a = rs.add_parser("assign", parents=[common], formatter_class=RAW, epilog=EXAMPLES,
                      help="split records between reviewers (round robin or by slice), with an overlap")  # fmt: skip
    ASSIGN.add_to_parser(a)
    add_json_flag(a)
    a.set_defaults(func=cmd_assign)
    e = rs.add_parser("export", parents=[common], help="every reviewer's verdicts as JSON lines")
    e.add_argument("-o", "--output", metavar="FILE", help="write here (default stdout)")
    e.set_defaults(func=cmd_export)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def cmd_status(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        progress, agreement, conflicts = progress_by_reviewer(ws), agreement_by_slice(ws), count_conflicts(ws)
    if args.json:
        print_json({"progress": progress, "agreement": agreement, "conflicts": conflicts})
        return 0
    if not progress:
        print("no reviewer has decided or been assigned anything yet (distill review assign --reviewers a,b)")
        return 0
    print_table(["slice", "reviewer", "assigned", "done", "left", "accepted", "rejected"],
                [[p.slice, p.reviewer, p.assigned, p.done, p.left, p.accepted, p.rejected] for p in progress],
                title="Progress")  # fmt: skip
    print()
    if agreement:
        print_table(["slice", "reviewers", "items", "observed", "kappa", "method", "conflicts"],
                    [[a.slice, ",".join(a.reviewers), a.items, _num(a.observed), _num(a.kappa), a.method,
                      a.conflicts] for a in agreement], title="Agreement (records two or more reviewers decided)")  # fmt: skip
    else:
        print("Agreement: no record decided by two reviewers yet (an assignment's --overlap gives records to two)")
    print(f"\n{conflicts:,} conflict(s): the studio's review queue shows them (Q cycles to 'conflicts')")
    return 0


def cmd_assign(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        v = read_options(ASSIGN, args, ws)
        filt = RecordFilter(slices=tuple(v["slices"] or ()), where=v["where"])
        r = assign(ws, v["reviewers"], filt, by=v["by"], overlap=v["overlap"], seed=v["seed"])
    if args.json:
        print_json(r)
        return 0
    per = ", ".join(f"{k} {n:,}" for k, n in r.per_reviewer.items())
    print(f"assignment {r.assignment_id}: {r.records:,} records ({r.overlap:,} reviewed twice): {per}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with open_workspace(args) as ws:
        if not args.output:
            n = export_decisions(ws, sys.stdout)
        else:
            out = Path(args.output)
            part = out.with_name(out.name + ".partial")
            try:
                with part.open("w", encoding="utf-8") as fh:
                    n = export_decisions(ws, fh)
                part.replace(out)
            except OSError as exc:
                part.unlink(missing_ok=True)
                raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"exported {n:,} decision(s)" + (f" to {args.output}" if args.output else ""), file=sys.stderr)
    return 0
