"""``distill round next|history|abandon``: from the failing slices of an evaluation back to the data, round by round."""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import asdict
from typing import Any

from distill.common import RAW, add_dry_run, add_json_flag, open_workspace, read_options
from distill.output import CliProgress, print_json, print_table
from train.rounds.options import HISTORY, ROUND

NEXT_EPILOG = """examples:
  distill round next --dry-run              # the plan: failing slices, wrong items, new inputs, weights, cost
  distill round next --budget 2             # run it: synth, generate, filter, dedupe, version, train, evaluate
  distill round next -n 100 --weights equal --teacher gpt4o
  distill round next                        # after a kill or Ctrl-C: continues from the first unfinished step
  distill round next --budget 5             # a round stopped by its budget continues with a larger one
  distill round history                     # every round per slice, with the stop signal

A round starts from the newest tuned held-out evaluation (or --eval). Its new inputs never include a near-duplicate
of a held-out prompt (exact, or semantic at the version's dedupe threshold). exit status: 0 when the round is done,
1 when it stopped (budget, failure; `distill round next` continues it), 130 when cancelled."""
HISTORY_EPILOG = """examples:
  distill round history
  distill round history --json
  distill round history --teacher-share 0.6

Each slice's score with its 95% interval per round, the change from the evaluation the round started from (* =
beyond that evaluation's interval), the teacher cost, the records added, and the stop signal."""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    r = sub.add_parser("round", help="rounds: new inputs where the student fails, retrain, compare", parents=[common],
                       formatter_class=RAW, epilog=NEXT_EPILOG)  # fmt: skip
    rs = r.add_subparsers(dest="round_command", metavar="ACTION", required=True)
    nxt = rs.add_parser("next", help="plan and run the next round (or continue the unfinished one)", parents=[common],
                        formatter_class=RAW, epilog=NEXT_EPILOG)  # fmt: skip
    ROUND.add_to_parser(nxt)
    add_dry_run(nxt, "show the plan and its estimated teacher cost; change nothing")
    add_json_flag(nxt)
    nxt.set_defaults(func=cmd_round_next)
    hist = rs.add_parser("history", help="every round per slice, and the stop signal", parents=[common],
                         formatter_class=RAW, epilog=HISTORY_EPILOG)  # fmt: skip
    HISTORY.add_to_parser(hist)
    add_json_flag(hist)
    hist.set_defaults(func=cmd_round_history)
    ab = rs.add_parser("abandon", help="give up the unfinished round (what it made stays); the next one starts anew",
                       parents=[common])  # fmt: skip
    ab.set_defaults(func=cmd_round_abandon)


def _print_plan(plan: Any, rnd: dict[str, Any] | None, steps: dict[str, Any]) -> None:
    from train.rounds.text import PLAN_HEADERS, plan_head, plan_lines, plan_rows

    print(plan_head(plan, rnd))
    print_table(PLAN_HEADERS, plan_rows(plan))
    for line in plan_lines(plan, steps):
        print(line)


def cmd_round_next(args: argparse.Namespace) -> int:
    from train.rounds.run import next_round, nothing_to_do, pending
    from train.rounds.store import get_steps

    with open_workspace(args) as ws:
        values = read_options(ROUND, args, ws)
        plan, rnd = pending(ws, values)
        steps = get_steps(ws, int(rnd["round_id"])) if rnd is not None else {}
        why = nothing_to_do(plan) if rnd is None else None
        if args.dry_run or why is not None:
            if args.json:
                print_json({"plan": plan.to_dict(), "continues": rnd and rnd["round_id"], "nothing_to_do": why,
                            "steps": {k: {"status": v["status"], "detail": v["detail"]} for k, v in steps.items()}})  # fmt: skip
            elif why is not None:
                print(why)
            else:
                _print_plan(plan, rnd, steps)
            return 0
        if not args.json:
            _print_plan(plan, rnd, steps)
            print()
        progress = CliProgress(enabled=not args.json)
        cancel = threading.Event()

        def on_step(e: Any) -> None:
            progress.close()
            if not args.json:
                print(e.text(), file=sys.stderr, flush=True)

        try:
            res = next_round(ws, values, progress=progress, cancel=cancel, on_step=on_step)
        except KeyboardInterrupt:
            progress.close()
            print(f"round {plan.number} cancelled; `distill round next` continues it from this step", file=sys.stderr)
            return 130
        progress.close()
        if args.json:
            print_json({**asdict(res), "plan": plan.to_dict()})
        else:
            _print_result(ws, res)
    return 0 if res.status == "done" else (130 if res.status == "cancelled" else 1)


def _print_result(ws: Any, res: Any) -> None:
    from curation.teacher.budget import possibly_billed_text
    from train.rounds.history import round_history
    from train.rounds.text import slice_table, verdict_lines

    c = res.cost
    cost = f"teacher ${c.cost_usd:.4f}{possibly_billed_text(c.possibly_billed_usd)} over {c.requests} requests"
    if res.status == "done":
        print(f"round {res.number} done: version {res.version} (+{res.n_added} records), run {res.run_id}, evaluation "
              f"{res.eval_id}; {cost}")  # fmt: skip
    else:
        last = res.steps[-1] if res.steps else None
        where = f" at step {last.step}" if last else ""
        print(f"round {res.number} {res.status}{where}{': ' + res.error if res.error else ''}; {cost}; "
              "`distill round next` continues it" + (" (--budget raises its budget)" if res.status == "budget" else ""))  # fmt: skip
        return
    h = round_history(ws)
    headers, rows = slice_table(h)
    print_table(headers, rows, title="per slice: score [95% CI] and change from the start (* = beyond its interval)")
    print("\n".join(verdict_lines(h)))


def cmd_round_history(args: argparse.Namespace) -> int:
    from train.rounds.history import round_history
    from train.rounds.text import HISTORY_HEADERS, chart_lines, history_rows, slice_table, verdict_lines

    with open_workspace(args) as ws:
        v = read_options(HISTORY, args, ws)
        h = round_history(ws, v["teacher_share"])
    if args.json:
        print_json(asdict(h))
        return 0
    if not h.entries:
        print("no rounds yet: `distill round next --dry-run` shows what the first one would do")
        return 0
    print_table(HISTORY_HEADERS, history_rows(h), title="rounds (round 0: the evaluation the first round started from)")
    print()
    headers, rows = slice_table(h)
    print_table(
        headers, rows, title="per slice: score [95% CI] and change from the round's start (* = beyond its interval)"
    )
    print()
    print("95% intervals on a 0..1 axis (| the bar):")
    for line in chart_lines(h):
        print("  " + line)
    print()
    print("\n".join(verdict_lines(h)))
    return 0


def cmd_round_abandon(args: argparse.Namespace) -> int:
    from train.rounds.run import abandon_round

    with open_workspace(args) as ws:
        n = abandon_round(ws)
    print(f"round {n} abandoned; the next `distill round next` plans a new one" if n is not None
          else "no unfinished round")  # fmt: skip
    return 0
