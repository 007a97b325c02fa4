"""Rounds on the bundled sample with the offline teacher: round 0 (the first student) vs round 1 vs round 2, per
slice with 95% intervals, and what each round cost in teacher requests, dollars and minutes.

    nice python bench/rounds_bench.py [--model smollm2] [--steps 40] [--train-size 300] [--heldout-share 0.04]
                                      [--eval-limit 140] [-n 30] [--budget 0.25] [--rounds 2] [--tiny] [--keep DIR]

Setup, as a data lead would do it (timed apart from the rounds): import the 5,000 sample logs; a semantic dedupe
(forced past the rare-slice guard, as the sample README expects); a frozen held-out split (``--heldout-share`` per
slice); a drop filter on the teacher's confidence in its intent (answer_prob < 0.5: the logged teacher's seeded
mistakes); version v1 = the production mix of ``--train-size`` short tickets (under 240 characters, so steps stay
short on a CPU) plus the whole held-out side; the bar: the teacher's intent on 80% of items, 90% on security.
Round 0 trains ``--steps`` steps of LoRA on v1 and evaluates on a stratified sample of ``--eval-limit`` held-out
items; each round is ``train.rounds.run.next_round`` with ``-n`` new inputs per failing slice and ``--budget`` USD,
started as `distill round next` starts it. The offline teacher runs as `distill demo` starts it (a local server,
registered as teacher ``offline``, priced like gpt-4o-mini). ``--tiny``: a random 2-layer student and a few items,
to check the bench runs (minutes), not to measure anything.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHORT_TICKET = 240  # characters: keeps a CPU step of SmolLM2-135M at batch 8 to seconds


def _timed(label: str, times: dict[str, float], fn: Any, *a: Any, **kw: Any) -> Any:
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    times[label] = time.perf_counter() - t0
    print(f"  {label}: {times[label]:.1f} s", flush=True)
    return out


def setup(ws: Any, args: argparse.Namespace, model: str) -> tuple[dict[str, float], int]:
    """Import, dedupe, split, filter, version v1, bar, round 0 (train + evaluate); returns times and the eval id."""
    from curation.dedupe import find_duplicates
    from curation.dedupe_runs import apply_dedupe
    from curation.filters import run_filter
    from curation.importing import import_file
    from curation.rebalance import Target, apply_rebalance, plan_rebalance
    from curation.splits import freeze_split, plan_split
    from sample_data import LOGS
    from train.bars import QualityBar, set_bar
    from train.config import RunConfig
    from train.evaluate import evaluate_run
    from train.launcher import run_training

    times: dict[str, float] = {}
    n = _timed("import", times, import_file, ws, LOGS).n_imported
    dd = _timed("dedupe", times, find_duplicates, ws, kind="semantic")
    apply_dedupe(ws, dd, force=True)
    split = plan_split(ws, share=args.heldout_share, seed=0, threshold=None)
    freeze_split(ws, split)
    spec = {"kind": "confidence", "metric": "answer_prob", "field": "intent", "min": 0.5}
    run_filter(ws, "intent-confidence", spec, "drop", apply=True)
    plan = plan_rebalance(ws, Target("production"), budget=args.train_size, seed=0, split="heldout")
    short = {int(r) for (r,) in ws.query("SELECT record_id FROM records WHERE length(prompt) < ?", [SHORT_TICKET])}
    plan.members = [m for m in plan.members if m.side == "heldout" or m.record_id in short]
    v1 = apply_rebalance(ws, plan, "v1")
    set_bar(ws, QualityBar(task="triage support tickets as JSON", metrics=[{"kind": "json_field", "field": "intent"}],
                           threshold=0.8, slice_bars={"security": 0.9}))  # fmt: skip
    print(f"  {n:,} records; {dd.n_removed:,} near-duplicates removed; v1: {v1.n_train} train, {v1.n_heldout} held-out",
          flush=True)  # fmt: skip
    cfg = RunConfig(base_model=model, max_steps=args.steps, batch_size=8, learning_rate=3e-3, eval_every=10,
                    eval_max_examples=16, max_length=192)  # fmt: skip
    res = _timed("round 0 train", times, run_training, ws, cfg, dataset_version="v1")
    if res.status != "done":
        raise SystemExit(f"round 0 training {res.status}: {res.error}")
    (ev,) = _timed("round 0 evaluate", times, evaluate_run, ws, res.run_id, baseline=False, limit=args.eval_limit,
                   max_new_tokens=args.new_tokens)  # fmt: skip
    return times, ev.eval_id


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--steps", type=int, default=40, help="training steps per round (batch 8)")
    ap.add_argument("--train-size", type=int, default=300, help="train records of v1 (before the short-ticket cut)")
    ap.add_argument("--heldout-share", type=float, default=0.04)
    ap.add_argument(
        "--eval-limit", type=int, default=140, help="held-out items evaluated (stratified, same each round)"
    )
    ap.add_argument("--new-tokens", type=int, default=64, help="tokens generated per answer")
    ap.add_argument("-n", type=int, default=30, help="new inputs per failing slice per round")
    ap.add_argument("--budget", type=float, default=0.25, help="teacher budget per round, USD")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="a random 2-layer student, few steps and items: a quick check")
    ap.add_argument("--keep", metavar="DIR", help="keep the workspace in DIR (default: a temporary folder)")
    args = ap.parse_args()
    if args.tiny:
        args.steps, args.train_size, args.eval_limit, args.new_tokens, args.n = 2, 60, 21, 16, 4

    from curation.workspace import Workspace
    from distill.commands.studio import register_offline_teacher
    from sample_data.offline_teacher import process as offline
    from train.models import resolve_model
    from train.rounds.history import round_history
    from train.rounds.options import ROUND
    from train.rounds.run import next_round
    from train.rounds.text import chart_lines

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rounds-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    if args.tiny:
        from tests.train.trainfix import build_tiny_model

        model = str(build_tiny_model(folder / "tiny-llama"))
    else:
        model = str(resolve_model(args.model))
    ws = Workspace.open(folder / "bench.duckdb")
    running, _ = offline.start(ws.artifacts_dir, port=0)
    try:
        cfg = register_offline_teacher(ws, running)
        print(f"rounds bench: student {args.model if not args.tiny else 'tiny random llama'}, teacher {cfg.name} "
              f"({cfg.model} at {cfg.base_url}, ${cfg.price_in_per_m:g}/${cfg.price_out_per_m:g} per 1M tokens), "
              f"{args.steps} steps x batch 8 per round, {args.eval_limit} held-out items, -n {args.n} per failing "
              f"slice, budget ${args.budget:g} per round; workspace {folder}", flush=True)  # fmt: skip
        print("setup:", flush=True)
        times, _ = setup(ws, args, model)
        walls: dict[int, float] = {}
        for _ in range(args.rounds):
            values = ROUND.resolve(ws, ROUND.parse({"n": args.n, "budget": args.budget,
                                                    "max_new_tokens": args.new_tokens}))  # fmt: skip
            t0 = time.perf_counter()
            res = next_round(ws, values, on_step=lambda e: print("  " + e.text(), flush=True))
            walls[res.number] = time.perf_counter() - t0
            print(f"round {res.number}: {res.status} in {walls[res.number]:.0f} s", flush=True)
            if res.status != "done":
                break
        report(round_history(ws), walls, times)
        print("\n95% intervals on a 0..1 axis (| the bar):")
        for line in chart_lines(round_history(ws)):
            print("  " + line)
    finally:
        offline.stop(ws.artifacts_dir)
        ws.close()


def report(h: Any, walls: dict[int, float], times: dict[str, float]) -> None:
    """The per-slice table (rounds side by side) and what each round cost."""
    from distill.output import print_table
    from train.rounds.text import slice_table, verdict_lines

    print()
    headers, rows = slice_table(h)
    rows.append(["(all)", "", *(f"{e.score:.3f}" + (f" {e.delta:+.3f}" if e.delta is not None else "")
                                for e in h.entries if e.slices)])  # fmt: skip
    print_table(headers, rows, title="per slice: score [95% CI] (vs the teacher's intent) and change from the round "
                "before (* = beyond its interval); (all): every item pooled")  # fmt: skip
    print()
    table = []
    for e in h.entries:
        if e.round_id is None:
            wall = times.get("round 0 train", 0) + times.get("round 0 evaluate", 0)
            table.append([0, "-", "-", "-", "-", f"{wall / 60:.1f}"])
            continue
        c = e.cost
        assert c is not None
        table.append([e.number, e.n_added, c.requests, f"{c.cost_usd:.4f}", f"{e.step_s or 0:.0f}",
                      f"{walls.get(e.number, 0) / 60:.1f}"])  # fmt: skip
    print_table(["round", "examples added", "teacher requests", "teacher $", "step s", "wall min"], table,
                title="per round (round 0: training and evaluating the first student)")  # fmt: skip
    print("\n".join(verdict_lines(h)))


if __name__ == "__main__":
    main()
