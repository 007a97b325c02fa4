"""``distill bar``, ``distill train``, ``distill runs``, ``distill eval``: quality bar, LoRA runs, evaluations."""

from __future__ import annotations

import argparse
import threading
from dataclasses import asdict
from typing import Any

from curation.errors import UserError
from distill.common import add_json_flag, open_workspace, read_options
from distill.eval_output import print_evaluation, print_evaluation_list, print_gold_beside_heldout, print_totals
from distill.output import CliProgress, print_json, print_table
from train.bars import BAR
from train.checklist_core import STRICT
from train.config import EVAL, TRAIN, config_from_options, eval_kwargs

RAW = argparse.RawDescriptionHelpFormatter


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    bar = sub.add_parser("bar", help="set or show the quality bar (before training)", parents=[common],
                         formatter_class=RAW, epilog=BAR_EXAMPLES)  # fmt: skip
    bsub = bar.add_subparsers(dest="bar_command", metavar="ACTION", required=True)
    bset = bsub.add_parser("set", help="set the bar (options not given keep their current value)", parents=[common],
                           formatter_class=RAW, epilog=BAR_EXAMPLES)  # fmt: skip
    BAR.add_to_parser(bset)
    add_json_flag(bset)
    bset.set_defaults(func=cmd_bar_set)
    bshow = bsub.add_parser("show", help="show the current bar and the payback estimate", parents=[common])
    BAR.only("name").add_to_parser(bshow)
    add_json_flag(bshow)
    bshow.set_defaults(func=cmd_bar_show)

    tr = sub.add_parser("train", help="train a LoRA student (in a subprocess) on a dataset version or file",
                        parents=[common], formatter_class=RAW, epilog=TRAIN_EXAMPLES)  # fmt: skip
    src = tr.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", metavar="VERSION", help="curation dataset version to train on")
    src.add_argument("--data", metavar="FILE", help="training file (Parquet/JSONL with the training-file columns)")
    src.add_argument("--resume", type=int, metavar="RUN", help="resume a cancelled or killed run")
    TRAIN.add_to_parser(tr)
    tr.add_argument("--eval", action="store_true", help="evaluate against the bar (and the baseline) afterwards")
    STRICT.add_to_parser(tr)
    EVAL.add_to_parser(tr)
    add_json_flag(tr)
    tr.set_defaults(func=cmd_train)

    runs = sub.add_parser("runs", help="list training runs, or show one", parents=[common], formatter_class=RAW,
                          epilog="examples:\n  distill runs\n  distill runs 3 --json")  # fmt: skip
    runs.add_argument("run", type=int, nargs="?", help="a run id to show in detail")
    add_json_flag(runs)
    runs.set_defaults(func=cmd_runs)

    ev = sub.add_parser("eval", help="evaluate a run against the bar, or show an evaluation", parents=[common],
                        formatter_class=RAW, epilog=EVAL_EXAMPLES)  # fmt: skip
    what = ev.add_mutually_exclusive_group(required=True)
    what.add_argument("run", type=int, nargs="?", help="run id to evaluate (tuned + untuned baseline)")
    what.add_argument("--show", type=int, metavar="EVAL", help="show a stored evaluation")
    ev.add_argument("--disagreements", action="store_true", help="with --show: list student/teacher disagreements")
    ev.add_argument("--slice", help="with --disagreements: only this slice")
    ev.add_argument("--data", metavar="FILE",
                    help="also evaluate on an external gold set: any file `distill import` reads, with references")  # fmt: skip
    ev.add_argument("--reference-field", metavar="PATH", help="with --data: field path (or column) of the reference")
    ev.add_argument("--slice-field", metavar="PATH", help="with --data: field path (or column) of the slice")
    ev.add_argument("--format", metavar="FORMAT", help="with --data: the file's format, if detection guesses wrong")
    ev.add_argument("--prompt-col", metavar="COL", help="with --data, a table: the column holding the prompt")
    ev.add_argument("--response-col", metavar="COL",
                    help="with --data, a table: the column holding the teacher's answer (else the reference stands in)")  # fmt: skip
    EVAL.add_to_parser(ev)
    add_json_flag(ev)
    ev.set_defaults(func=cmd_eval)


BAR_EXAMPLES = """examples:
  distill bar set --task "triage tickets as JSON" --metric exact:intent --metric valid_json \\
      --threshold 0.8 --slice-bar billing=0.9 --max-gap 0.1 --max-latency-ms 800 --teacher-price 2.5
  distill bar set --threshold 0.9           # change one thing, keep the rest
  distill bar set --metric exact:intent --metric verifier:label:intent=refund|login_issue|other \
      --metric verifier:@valid-json --metric judge:gpt4o   # curation verifiers; a teacher grades answers
  distill bar show --json"""
TRAIN_EXAMPLES = """examples:
  distill train --dataset v3 --eval                      # SmolLM2-135M, evaluate vs bar + baseline
  distill train --data train.parquet --steps 30 --lr 1e-3
  distill train --data train.parquet --model smollm2 --model ./my-360m --eval   # run group, side by side
  distill train --resume 4                               # after a cancel or a kill
  distill train --dataset v3 --soft-labels candidates --temperature 2 --alpha 0.8:0.2   # teachers' probabilities"""
EVAL_EXAMPLES = """examples:
  distill eval 4                                 # tuned + baseline, per-slice table vs the bar
  distill eval 4 --data gold.csv --reference-field label --slice-field area   # and on a gold set, side by side
  distill eval 4 --limit 200 --seed 1            # a seeded sample stratified by slice and answer label
  distill eval --show 7 --json
  distill eval --show 7 --disagreements --slice billing
  distill eval 4 --constrain-labels trie         # answers only inside the bar's label set

Every slice shows n, the score with its 95% Wilson interval, the paired difference to the teacher (Newcombe),
micro and macro averages, the calibration error, and how many more items would resolve +-3 points where the
interval holds the bar. exit status: 0 when the tuned student passes the bar (on the gold set too, with --data),
1 when it fails it (or on an error)."""


def cmd_bar_set(args: argparse.Namespace) -> int:
    from train.bars import bar_from_options, get_bar, set_bar

    with open_workspace(args) as ws:
        v = read_options(BAR, args, ws)
        bar = set_bar(ws, bar_from_options(get_bar(ws, v["name"]), v))
    _print_bar(bar.to_dict(), args.json)
    return 0


def cmd_bar_show(args: argparse.Namespace) -> int:
    from train.bars import require_bar
    from train.payback import describe, payback

    with open_workspace(args) as ws:
        bar = require_bar(ws, BAR.only("name").from_args(args)["name"])
        est = payback(ws, bar)
    if args.json:
        print_json({**bar.to_dict(), "payback": est})
        return 0
    _print_bar(bar.to_dict(), False)
    for line in describe(est):
        print(line)
    return 0


def _print_bar(d: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(d)
        return
    from train.metrics import metric_name

    print(f"quality bar {d['name']!r} (#{d['bar_id']}): {d['task']}")
    print(f"  metrics:   {', '.join(metric_name(m) for m in d['metrics'])} (primary: {metric_name(d['metrics'][0])})")
    print(f"  threshold: {d['threshold']}   max gap to teacher: {d['max_gap']}")
    for s, v in sorted(d["slice_bars"].items()):
        print(f"  slice {s}: {v}")
    print(f"  p95 latency <= {d['max_latency_p95_ms']} ms   cost/1k <= {d['max_cost_per_1k']}   "
          f"teacher/1k = {d['teacher_price_per_1k']}   student/hour = {d['student_price_per_hour']}   "
          f"requests/day = {d['requests_per_day'] if d['requests_per_day'] is not None else '(from the logs)'}")  # fmt: skip
    agreement = "each slice's bar" if d["min_agreement"] is None else d["min_agreement"]
    print(f"  monitoring: drift AUC <= {d['max_drift_auc']}   fallback rate <= {d['max_fallback_rate']}   "
          f"agreement >= {agreement}")  # fmt: skip


def cmd_train(args: argparse.Namespace) -> int:
    from train.evaluate import evaluate_run
    from train.groups import compare_group, train_group
    from train.launcher import execute_run, run_training

    progress = CliProgress(enabled=not args.json)
    cancel = threading.Event()
    with open_workspace(args) as ws:
        evals: dict[int, list[Any]] = {}
        ev = eval_kwargs(read_options(EVAL, args, ws))
        if args.resume is not None:
            results = [execute_run(ws, args.resume, progress=progress, cancel=cancel)]
            group = None
        else:
            cfg, models = config_from_options(read_options(TRAIN, args, ws))
            # After the options are read: a bad value is the one error line, not after the checklist's warnings.
            check_before_training(ws, args.dataset, strict=STRICT.from_args(args)["strict"])
            if args.eval:
                from train.bars import require_bar

                require_bar(ws)  # fail before training, not after
            if len(models) > 1:
                g = train_group(ws, models, cfg, dataset_version=args.dataset, data=args.data, evaluate=args.eval,
                                progress=progress, cancel=cancel, eval_kwargs=ev)  # fmt: skip
                results, group, evals = g.runs, g.group_id, g.evaluations
            else:
                results = [run_training(ws, cfg, dataset_version=args.dataset, data=args.data, progress=progress,
                                        cancel=cancel)]  # fmt: skip
                group = None
        progress.close()
        if args.eval and group is None and results[0].status == "done":
            evals[results[0].run_id] = evaluate_run(ws, results[0].run_id, progress=progress, **ev)
            progress.close()
        if args.json:
            print_json({"runs": [asdict(r) for r in results], "group_id": group,
                        "evaluations": {k: [_eval_doc(e) for e in v] for k, v in evals.items()}})  # fmt: skip
        else:
            for r in results:
                line = f"run {r.run_id}: {r.status} after {r.steps_done} steps"
                if r.status == "done":
                    line += (
                        f"; best step {r.best_step} (held-out loss {_f(r.best_eval_loss)}), adapter {r.adapter_path}"
                    )
                elif r.status == "cancelled":
                    line += f"; resume with `distill train --resume {r.run_id}`"
                else:
                    line += f": {r.error}"
                print(line)
            for pair in evals.values():
                print_evaluation(asdict(pair[0]), asdict(pair[1]) if len(pair) > 1 else None)
            if group is not None:
                rows = compare_group(ws, group)
                print_table(["run", "model", "status", "best loss", "score", "baseline", "gap", "p95 ms", "pass"],
                            [[r["run_id"], r["base_model"], r["status"], r["best_eval_loss"], r["score"],
                              r["baseline_score"], r["gap"], r["latency_p95_ms"], r["passed"]] for r in rows],
                            title=f"run group {group}")  # fmt: skip
    return 0 if all(r.status == "done" for r in results) else 1


def check_before_training(ws: Any, version: str | None, *, strict: bool) -> None:
    """Warn (on stderr) about open checklist items of 'define success' and 'data'; with ``strict``, refuse."""
    import sys

    from train.checklist import open_items

    items = open_items(ws, version=version)
    for it in items:
        print(f"checklist: {it.phase} / {it.title}: {it.detail} (-> {it.next_step})", file=sys.stderr)
    if items and strict:
        raise UserError(f"{len(items)} checklist items of 'define success' and 'data' are open (`distill checklist`); "
                        "--strict refuses to train")  # fmt: skip


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _eval_doc(e: Any) -> dict[str, Any]:
    return asdict(e)


def cmd_runs(args: argparse.Namespace) -> int:
    from train import store

    with open_workspace(args) as ws:
        if args.run is not None:
            run = store.get_run(ws, args.run)
            run["metrics"] = store.run_metrics(ws, args.run)
            if args.json:
                print_json(run)
                return 0
            for k in ("run_id", "group_id", "base_model", "dataset_version", "status", "steps_done", "best_step",
                      "best_eval_loss", "final_loss", "adapter_path", "error"):  # fmt: skip
                print(f"{k:16} {run[k] if run[k] is not None else '-'}")
            evals = [m for m in run["metrics"] if m["phase"] == "eval"]
            print_table(["step", "held-out loss"], [[m["step"], m["eval_loss"]] for m in evals], title="held-out loss")
            from train.evaluate import list_evaluations

            print_evaluation_list(list_evaluations(ws, args.run), title="evaluations (`distill eval --show EVAL`)")
            return 0
        rows = store.list_runs(ws)
        if args.json:
            print_json(rows)
            return 0
        print_table(["run", "group", "model", "dataset", "status", "steps", "best loss", "eval score", "created"],
                    [[r["run_id"], r["group_id"], r["base_model"], r["dataset_version"], r["status"], r["steps_done"],
                      r["best_eval_loss"], r["eval_score"], r["created_at"]] for r in rows])  # fmt: skip
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from train import evaluate as E

    with open_workspace(args) as ws:
        kw = eval_kwargs(read_options(EVAL, args, ws))
        if args.show is not None:
            if args.disagreements:
                rows = E.disagreements(ws, args.show, slice_name=args.slice, limit=kw["limit"] or 50)
                if args.json:
                    print_json(rows)
                else:
                    for r in rows:
                        where = f"record {r['record_id']}" if r["record_id"] is not None else f"line {r['source_line']}"
                        print(f"[{r['slice']}] {where}: {r['prompt'][:100]}")
                        print(f"  student: {r['student_output'][:200]}\n  teacher: {r['teacher_output'][:200]}")
                return 0
            ev = E.get_evaluation(ws, args.show)
            if args.json:
                print_json(ev)
                return 0
            base_id, held_id = E.baseline_for(ws, args.show), E.heldout_for(ws, args.show)
            print_evaluation(ev, E.get_evaluation(ws, base_id) if base_id not in (None, args.show) else None)
            if held_id is not None:
                print_gold_beside_heldout(E.get_evaluation(ws, held_id), ev)
            return 0
        gold = None
        if args.data:
            from train.gold import load_gold_set

            cols = {k: v for k, v in (("prompt", args.prompt_col), ("response", args.response_col)) if v}
            gold = load_gold_set(args.data, reference_field=args.reference_field, slice_field=args.slice_field,
                                 fmt=args.format, columns=cols)  # fmt: skip
        progress = CliProgress(enabled=not args.json)
        results = E.evaluate_run(ws, args.run, gold=gold, progress=progress, **kw)
        progress.close()
        docs = [_eval_doc(e) for e in results]
        if args.json:
            print_json(docs)
        else:
            _print_results(docs)
    return 0 if all(e.passed for e in results if e.kind == "tuned") else 1


def _print_results(docs: list[dict[str, Any]]) -> None:
    """Each set's tuned table (with its baseline), the gold set beside the held-out split, then the totals."""
    for eval_set in ("heldout", "gold"):
        tuned = next((d for d in docs if d["eval_set"] == eval_set and d["kind"] == "tuned"), None)
        base = next((d for d in docs if d["eval_set"] == eval_set and d["kind"] == "baseline"), None)
        if tuned is not None:
            print_evaluation(tuned, base)
            print()
    held, gold = ({d["eval_set"]: d for d in docs if d["kind"] == "tuned"}.get(k) for k in ("heldout", "gold"))
    if held is not None and gold is not None:
        print_gold_beside_heldout(held, gold)
    print_totals(docs)
