"""Hard labels vs soft labels (a few temperatures and alphas), constrained decoding on and off, on the sample.

    nice python bench/soft_labels_bench.py [--steps 16] [--batch 8] [--limit 35] [--model smollm2]
                                           [--configs hard,soft-t2] [--keep DIR]

The sample logs (sample_data/production_logs.jsonl.gz) are imported into a temporary workspace and curated with
the product's steps: exact dedupe, a drop filter on invalid JSON, a frozen 15% held-out split (stratified by slice),
a snapshot version. The quality bar: exact:intent, plus a label verifier naming the sample's intents (the label
set). Every configuration trains the same student on the same version for the same step budget, seeded (one run
each), through the product's launcher (``train.launcher.run_training``), and is evaluated by
``train.evaluate.evaluate_model`` on the same held-out rows twice: free, and with answers kept inside the label
set (``--constrain-labels trie``), on a seeded sample stratified by slice and label. Printed per configuration:
the score vs the teacher (the bar's primary metric) with its 95% Wilson interval, the score vs the references, the
share of answers naming an intent outside the set, and the evaluation's expected calibration error (the student's
confidence = exp(mean token logprob) of its answer vs its score); then the score and ECE per slice. Intervals and
calibration are the evaluation's own (``train.stats``). The configurations:
  hard       labels as curated (the teacher's answers), soft labels off (the product default before this bench)
  hard-ref   candidates with alpha 0: the hard term alone, on the reference's intent where there is one
  soft-t1    candidates, T 1, alpha 0.5
  soft-t2    candidates, T 2, alpha 0.5
  soft-t4    candidates, T 4, alpha 0.5
  soft-t2-s  candidates, T 2, alpha 0.8 -> 0.2 over the run
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

CONFIGS: dict[str, dict[str, Any]] = {
    "hard": {"soft_labels": "off"},
    "hard-ref": {"soft_labels": "candidates", "soft_alpha": 0.0},
    "soft-t1": {"soft_labels": "candidates", "soft_temperature": 1.0, "soft_alpha": 0.5},
    "soft-t2": {"soft_labels": "candidates", "soft_temperature": 2.0, "soft_alpha": 0.5},
    "soft-t4": {"soft_labels": "candidates", "soft_temperature": 4.0, "soft_alpha": 0.5},
    "soft-t2-s": {"soft_labels": "candidates", "soft_temperature": 2.0, "soft_alpha": 0.8, "soft_alpha_end": 0.2},
}


def curate(ws: Any, sample: Path) -> str:
    """Import the sample and make the version every configuration trains on; return its name."""
    from curation.dedupe import find_duplicates
    from curation.dedupe_runs import apply_dedupe
    from curation.filters import run_filter
    from curation.importing.load import import_file
    from curation.rebalance import snapshot_version
    from curation.splits import freeze_split, plan_split

    import_file(ws, sample)
    apply_dedupe(ws, find_duplicates(ws, kind="exact"))
    run_filter(ws, "valid-json", {"kind": "verifier", "verifier": {"type": "json"}}, "drop", apply=True)
    freeze_split(ws, plan_split(ws, share=0.15, seed=0, threshold=None))
    snapshot_version(ws, "v1", split="heldout")
    return "v1"


def soft_rows(data_path: str) -> int:
    """Training rows with a soft target (two or more candidate answers)."""
    import pyarrow.parquet as pq

    t = pq.read_table(data_path, columns=["split", "candidates"]).to_pylist()
    return sum(1 for r in t if r["split"] == "train" and r["candidates"] and len(r["candidates"]) > 1)


def measure(
    ws: Any, run: dict, bar: Any, args: argparse.Namespace, constrain: str | None, models: dict
) -> dict[str, Any]:
    """One evaluation of a run's best adapter (``train.evaluate.evaluate_model``: intervals and calibration are the
    evaluation's own) and the share of answers naming an intent outside the label set."""
    from curation.soft_labels import field_value
    from train.evaluate import evaluate_model

    res = evaluate_model(ws, base_model=run["base_model"], data_path=run["data_path"], bar=bar,
                         adapter_path=run["adapter_path"], run_id=run["run_id"], limit=args.limit, seed=args.seed,
                         max_new_tokens=args.max_new_tokens, constrain=constrain, models=models)  # fmt: skip
    said = [field_value(t, "intent") for (t,) in ws.query(
        "SELECT student_output FROM eval_items WHERE eval_id = ?", [res.eval_id])]  # fmt: skip
    n_ref = ws.scalar("SELECT count(*) FROM eval_items WHERE eval_id = ? AND reference IS NOT NULL", [res.eval_id])
    labels = set(bar.label_spec().labels or [])
    return {"res": res, "n_ref": n_ref, "invalid": sum(v not in labels for v in said) / max(1, len(said)),
            "changed": (res.constrain or {}).get("changed", 0)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=16, help="optimizer steps per run (the fixed budget)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--limit", type=int, default=35, help="held-out rows evaluated (stratified by slice and label)")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--model", default="smollm2")
    p.add_argument("--seed", type=int, default=0)
    # One thread: on the shared 2-core box (load 14) two torch threads spin-waiting on each other made a step
    # of the first attempt at this bench take ~100 s instead of ~5.
    p.add_argument("--threads", type=int, default=1, help="torch threads for training and evaluation (0: torch's)")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {', '.join(CONFIGS)}")
    p.add_argument("--keep", type=Path, help="keep the workspace in this folder (default: a temporary one)")
    args = p.parse_args()
    names = [c for c in args.configs.split(",") if c]
    unknown = set(names) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"unknown configs: {', '.join(sorted(unknown))}")

    from curation.workspace import Workspace
    from sample_data.templates import INTENTS
    from train import store
    from train.bars import QualityBar, set_bar
    from train.config import RunConfig, format_alpha
    from train.launcher import run_training
    from train.models import resolve_model

    resolve_model(args.model)  # convert once, outside the timings
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        ws = Workspace.open(folder / "bench.duckdb")
        t0 = time.perf_counter()
        version = curate(ws, ROOT / "sample_data" / "production_logs.jsonl.gz")
        bar = set_bar(ws, QualityBar(task="triage tickets as JSON", threshold=0.8, metrics=[
            {"kind": "json_field", "field": "intent"},
            {"kind": "verifier", "verifier": {"type": "label", "field": "intent", "allowed": list(INTENTS),
                                              "normalize": True}}]))  # fmt: skip
        n_train, n_held = ws.query(
            "SELECT count(*) FILTER (side = 'train'), count(*) FILTER (side = 'heldout') FROM dataset_members "
            "WHERE version = ?",
            [version],
        )[0]
        print(f"sample -> exact dedupe, json drop filter, 15% held-out split -> {version}: {n_train} train / "
              f"{n_held} held-out records ({time.perf_counter() - t0:.0f} s)")  # fmt: skip
        print(f"model {args.model}, {args.steps} steps x batch {args.batch}, lr {RunConfig().learning_rate:g}, "
              f"seed {args.seed}; evaluation: {args.limit} held-out rows (stratified by slice and label), primary metric "
              f"exact:intent vs the teacher; label set: {len(INTENTS)} intents", flush=True)  # fmt: skip
        results: dict[str, dict[str, Any]] = {}
        for name in names:
            # The held-out loss only picks the best adapter (untuned vs the end of the budget): 16 rows do.
            cfg = RunConfig(base_model=args.model, max_steps=args.steps, epochs=100, batch_size=args.batch,
                            seed=args.seed, eval_every=args.steps, save_every=args.steps, eval_max_examples=16,
                            threads=args.threads, **CONFIGS[name])  # fmt: skip
            t1 = time.perf_counter()
            r = run_training(ws, cfg, dataset_version=version)
            if r.status != "done":
                raise SystemExit(f"{name}: run {r.run_id} {r.status}: {r.error}")
            train_s = time.perf_counter() - t1
            run = store.get_run(ws, r.run_id)
            soft = soft_rows(run["data_path"]) if cfg.soft_labels != "off" else None
            models: dict = {}  # the student loads once for both evaluations
            results[name] = {"train_s": train_s, "n_soft": soft, "loss": r.best_eval_loss,
                             "alpha": format_alpha((cfg.soft_alpha, cfg.soft_alpha_end)),
                             "off": measure(ws, run, bar, args, None, models),
                             "on": measure(ws, run, bar, args, "trie", models)}  # fmt: skip
            models.clear()
            o = results[name]
            print(f"  {name}: trained in {train_s:.0f} s (+ evaluations {time.perf_counter() - t1 - train_s:.0f} s), "
                  f"held-out loss {r.best_eval_loss:.4f}, score "
                  f"{o['off']['res'].overall.score:.3f} free / {o['on']['res'].overall.score:.3f} constrained",
                  flush=True)  # fmt: skip
            if name != names[-1]:  # the tables so far: a run cut short on a busy machine still shows them
                report(results, args)
        report(results, args)
        print(f"\ntotal {time.perf_counter() - t0:.0f} s")
        ws.close()


def _cell(s: Any) -> str:
    from train.stats import interval_text

    return interval_text(s.score, s.score_low, s.score_high)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    """The comparison tables."""
    print()
    head = (f"{'config':<10}{'soft rows':>10}{'alpha':>9}{'loss':>8}  {'decoding':<14}{'vs teacher [95% CI]':<22}"
            f"{'vs ref (n)':<14}{'outside set':>12}{'ECE':>7}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for name, o in results.items():
        for mode in ("off", "on"):
            m, res = o[mode], o[mode]["res"]
            soft = o["n_soft"] is not None
            lead = (f"{name:<10}{o['n_soft'] if soft else '-':>10}{o['alpha'] if soft else '-':>9}{o['loss']:>8.4f}"
                    if mode == "off" else " " * 37)  # fmt: skip
            label = "free" if mode == "off" else f"trie ({m['changed']} chg)"
            print(f"{lead}  {label:<14}{_cell(res.overall):<22}{_num(res.overall.student_vs_reference)} "
                  f"({m['n_ref']:<3})   {m['invalid']:>11.3f}{_num(res.overall.ece):>7}")  # fmt: skip
    print()
    print("vs teacher per slice [95% CI] (ECE), free / constrained")
    for name, o in results.items():
        print(f"{name}:")
        on = {s.slice: s for s in o["on"]["res"].slices}
        for s in o["off"]["res"].slices:
            c = on.get(s.slice)
            if c is not None:
                print(f"  {s.slice:<14} n={s.n:<4} {_cell(s):<20} ({_num(s.ece)}) / {_cell(c):<20} ({_num(c.ece)})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
