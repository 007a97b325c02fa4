"""``distill baseline``: phase-1 baselines before any training (zero-shot, few-shot, a cheaper model), their list,
and the export of the prompt a baseline used."""

from __future__ import annotations

import argparse
import threading
from dataclasses import asdict
from typing import Any

from distill.common import add_json_flag, open_workspace, read_options
from distill.output import CliProgress, print_json, print_table
from train.baselines import BASELINE, BASELINE_EVAL, baseline_eval_kwargs

RAW = argparse.RawDescriptionHelpFormatter
EXAMPLES = """examples:
  distill baseline                                # zero-shot and few-shot SmolLM2 on the newest version's held-out
  distill baseline --dataset v3 --k 2,4,8         # measure k
  distill baseline --model mini --no-few-shot     # a cheaper model (a workspace teacher) against the bar
  distill baseline list
  distill baseline export few-shot-k4 -o prompt.json   # .json: template + examples; .jsonl: the messages sent

Each baseline is stored as an evaluation (kind baseline:NAME; `distill eval --show ID`, the evaluation screen)."""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("baseline", help="baselines before training: untuned student zero-/few-shot, a cheaper model",
                       parents=[common], formatter_class=RAW, epilog=EXAMPLES)  # fmt: skip
    BASELINE.add_to_parser(p)
    BASELINE_EVAL.add_to_parser(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_baseline)
    bsub = p.add_subparsers(dest="baseline_command", metavar="ACTION")
    ls = bsub.add_parser("list", help="the newest evaluation of each baseline", parents=[common])
    add_json_flag(ls)
    ls.set_defaults(func=cmd_list)
    ex = bsub.add_parser("export", help="write the prompt a baseline used (.json or .jsonl)", parents=[common])
    ex.add_argument("name", help="a baseline: zero-shot, few-shot-k4, model:TEACHER")
    ex.add_argument("-o", "--output", required=True, metavar="FILE", help="FILE.json or FILE.jsonl")
    ex.set_defaults(func=cmd_export)


def cmd_baseline(args: argparse.Namespace) -> int:
    from train.baselines import run_baselines

    progress = CliProgress(enabled=not args.json)
    with open_workspace(args) as ws:
        v = read_options(BASELINE, args, ws)
        kw = baseline_eval_kwargs(read_options(BASELINE_EVAL, args, ws))
        rep = run_baselines(ws, progress=progress, cancel=threading.Event(), **v, **kw)
    progress.close()
    if args.json:
        cheap = rep.cheapest
        print_json({"dataset_version": rep.dataset_version, "n_items": rep.n_items, "message": rep.message,
                    "cheapest": cheap.name if cheap else None,
                    "baselines": [{"name": r.name, "prompt_id": r.prompt_id, "evaluation": asdict(r.evaluation)}
                                  for r in rep.results]})  # fmt: skip
        return 0
    evs = [(r.name, r.evaluation) for r in rep.results]
    rows = []
    for name in [s.slice for s in evs[0][1].slices] + ["(all)"]:
        per = [next((s for s in [*e.slices, e.overall] if s.slice == name), None) for _, e in evs]
        first = next(s for s in per if s is not None)
        rows.append([name, first.n, first.bar, *[_cell(s) for s in per]])
    print_table(["slice", "n", "bar", *[n for n, _ in evs]], rows,
                title=f"baselines on {rep.n_items} held-out items of {rep.dataset_version} (primary metric vs the "
                      f"teacher; * = fails its bar)")  # fmt: skip
    for name, e in evs:
        checks = ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in e.checks.items())
        cost = "-" if e.cost_per_1k is None else f"{e.cost_per_1k:.4f}"
        print(f"{name} (evaluation {e.eval_id}, {e.base_model}): {'PASS' if e.passed else 'FAIL'} ({checks}); "
              f"p95 {_ms(e.latency_p95_ms)}; cost/1k {cost}")  # fmt: skip
    print(rep.message)
    return 0


def _cell(s: Any) -> str:
    return "-" if s is None else f"{s.score:.3f}" + ("" if s.passed else " *")


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f} ms"


def cmd_list(args: argparse.Namespace) -> int:
    from train.baselines import latest_baselines

    with open_workspace(args) as ws:
        rows = latest_baselines(ws)
    if args.json:
        print_json(rows)
        return 0
    print_table(["baseline", "eval", "model", "n", "score", "gap", "pass", "cost/1k", "created"],
                [[r["name"], r["eval_id"], r["base_model"], r["n_items"], r["score"], r["gap"],
                  "PASS" if r["passed"] else "FAIL", r["cost_per_1k"], r["created_at"]] for r in rows])  # fmt: skip
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from train.baseline_prompts import export_prompt

    with open_workspace(args) as ws:
        path = export_prompt(ws, args.name, args.output)
    print(f"wrote the prompt of {args.name} to {path}")
    return 0
