"""Hard labels vs soft labels (a few temperatures and alphas), constrained decoding on and off, on the sample.

    nice python bench/soft_labels_bench.py [--steps 16] [--batch 8] [--limit 35] [--model smollm2]
                                           [--configs hard,soft-t2] [--keep DIR]

The sample logs (sample_data/production_logs.jsonl.gz) are imported into a temporary workspace and curated with
the product's steps: exact dedupe, a drop filter on invalid JSON, a frozen 15% held-out split (stratified by slice),
a snapshot version. The quality bar: exact:intent, plus a label verifier naming the sample's intents (the label
set). Every configuration trains the same student on the same version for the same step budget, seeded (one run
each), through the product's launcher (``train.launcher.run_training``), and is evaluated by
``train.evaluate.evaluate_model`` on the same held-out rows twice: free, and with answers kept inside the label
set (``--constrain-labels trie``). Printed per configuration: score vs the teacher (the bar's primary metric) with a
Wilson 95% interval, score vs the references, the share of answers naming an intent outside the set, and the
expected calibration error (10 bins) of the student's probability for the intent it gave, judged against the
reference where there is one, else the teacher; then the same score per slice. The configurations:
  hard       labels as curated (the teacher's answers), soft labels off (the product default before this bench)
  hard-ref   candidates with alpha 0: the hard term alone, on the reference's intent where there is one
  soft-t1    candidates, T 1, alpha 0.5
  soft-t2    candidates, T 2, alpha 0.5
  soft-t4    candidates, T 4, alpha 0.5
  soft-t2-s  candidates, T 2, alpha 0.8 -> 0.2 over the run
"""

from __future__ import annotations

import argparse
import math
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


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n. (Replace with the evaluation's intervals once they are on main.)"""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def ece(conf: list[float], correct: list[bool], bins: int = 10) -> float:
    """Expected calibration error: per equal-width confidence bin, |accuracy - mean confidence| weighted by size."""
    total = 0.0
    for b in range(bins):
        idx = [i for i, c in enumerate(conf) if (b / bins < c <= (b + 1) / bins) or (b == 0 and c == 0)]
        if idx:
            acc = sum(correct[i] for i in idx) / len(idx)
            total += abs(acc - sum(conf[i] for i in idx) / len(idx)) * len(idx)
    return total / max(1, len(conf))


def curate(ws: Any, sample: Path) -> str:
    """Import the sample and make the version every configuration trains on; return its name."""
    from curation.dedupe import apply_dedupe, find_duplicates
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


def confidences(model: Any, tok: Any, rows: list[dict], device: str) -> list[float | None]:
    """The student's probability of the intent it wrote: the product of its probabilities of the tokens that spell
    the value, given the prompt and the answer before them (one forward pass per answer, batched)."""
    import torch

    from curation.filters import answer_span
    from train.data import prompt_text

    out: list[float | None] = []
    for s in range(0, len(rows), 16):
        chunk = rows[s : s + 16]
        for r in chunk:
            span = answer_span(r["answer"], "intent")
            if span is None:
                out.append(None)
                continue
            prompt = prompt_text(tok, r["messages"])
            p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
            enc = tok(r["answer"], add_special_tokens=False, return_offsets_mapping=True)
            ids = p_ids + enc["input_ids"]
            with torch.inference_mode():
                lp = torch.log_softmax(model(input_ids=torch.tensor([ids], device=device)).logits[0].float(), -1)
            total = 0.0
            for j, (a, b) in enumerate(enc["offset_mapping"]):
                if b > span[0] and a < span[1]:
                    k = len(p_ids) + j
                    total += float(lp[k - 1, ids[k]])
            out.append(math.exp(total))
    return out


def measure(
    ws: Any, run: dict, bar: Any, args: argparse.Namespace, constrain: str | None, student: tuple
) -> dict[str, Any]:
    """One evaluation of a run's best adapter (``student``: it loaded for the confidences) and the numbers the bench
    prints."""
    from curation.soft_labels import field_value, reference_value
    from train.data import load_examples
    from train.evaluate import evaluate_model

    res = evaluate_model(ws, base_model=run["base_model"], data_path=run["data_path"], bar=bar,
                         adapter_path=run["adapter_path"], run_id=run["run_id"], limit=args.limit,
                         max_new_tokens=args.max_new_tokens, batch_size=16, constrain=constrain)  # fmt: skip
    items = ws.query_dicts(
        "SELECT record_id, slice, student_output, teacher_output, reference FROM eval_items WHERE eval_id = ?",
        [res.eval_id],
    )
    held = {e.record_id: e for e in load_examples(run["data_path"]) if e.split != "train"}
    labels = set(bar.label_spec().labels or [])
    model, tok, dev = student
    rows = [{"messages": held[it["record_id"]].prompt_messages, "answer": it["student_output"]} for it in items]
    conf = confidences(model, tok, rows, dev)
    said = [field_value(it["student_output"], "intent") for it in items]
    truth = [reference_value(it["reference"], "intent") or field_value(it["teacher_output"], "intent") for it in items]
    pairs = [(c, s == t) for c, s, t in zip(conf, said, truth, strict=True) if c is not None and s is not None]
    refs = [(s, reference_value(it["reference"], "intent")) for s, it in zip(said, items, strict=True)
            if it["reference"] is not None]  # fmt: skip
    return {
        "overall": (res.overall.score, res.overall.n),
        "slices": {s.slice: (s.score, s.n) for s in res.slices},
        "vs_ref": (sum(a == b for a, b in refs) / len(refs) if refs else float("nan"), len(refs)),
        "invalid": sum(s not in labels for s in said) / max(1, len(said)),
        "ece": ece([c for c, _ in pairs], [k for _, k in pairs]),
        "changed": (res.constrain or {}).get("changed", 0),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=16, help="optimizer steps per run (the fixed budget)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--limit", type=int, default=35, help="held-out rows evaluated (round-robin over slices)")
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
    from train.generate import load_for_inference
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
              f"seed {args.seed}; evaluation: {args.limit} held-out rows (round-robin over slices), primary metric "
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
            student = load_for_inference(run["base_model"], run["adapter_path"])
            results[name] = {"train_s": train_s, "n_soft": soft, "loss": r.best_eval_loss,
                             "alpha": format_alpha((cfg.soft_alpha, cfg.soft_alpha_end)),
                             "off": measure(ws, run, bar, args, None, student),
                             "on": measure(ws, run, bar, args, "trie", student)}  # fmt: skip
            del student
            o = results[name]
            print(f"  {name}: trained in {train_s:.0f} s (+ evaluations {time.perf_counter() - t1 - train_s:.0f} s), "
                  f"held-out loss {r.best_eval_loss:.4f}, score "
                  f"{o['off']['overall'][0]:.3f} free / {o['on']['overall'][0]:.3f} constrained", flush=True)  # fmt: skip
        report(results, args)
        print(f"\ntotal {time.perf_counter() - t0:.0f} s")
        ws.close()


def _cell(score: float, n: int) -> str:
    lo, hi = wilson(score * n, n)
    return f"{score:.3f} [{lo:.2f},{hi:.2f}]"


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    """The comparison tables."""
    print()
    head = (f"{'config':<10}{'rows soft':>10}{'alpha':>9}{'loss':>8}  {'decoding':<12}{'score vs teacher [95%]':<24}"
            f"{'vs ref (n)':<13}{'outside set':>12}{'ECE':>7}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for name, o in results.items():
        for mode in ("off", "on"):
            m = o[mode]
            lead = (f"{name:<10}{o['n_soft'] if o['n_soft'] is not None else '-':>10}{o['alpha'] if o['n_soft'] is not None else '-':>9}"
                    f"{o['loss']:>8.4f}") if mode == "off" else " " * 37  # fmt: skip
            label = "free" if mode == "off" else f"trie ({m['changed']} chg)"
            print(f"{lead}  {label:<12}{_cell(*m['overall']):<24}{m['vs_ref'][0]:.3f} ({m['vs_ref'][1]:<3})  "
                  f"{m['invalid']:>11.3f}{m['ece']:>7.3f}")  # fmt: skip
    slices = sorted({s for o in results.values() for s in o["off"]["slices"]})
    print()
    print("score vs teacher per slice [Wilson 95%], free / constrained")
    for name, o in results.items():
        print(f"{name}:")
        for s in slices:
            f_, c_ = o["off"]["slices"].get(s), o["on"]["slices"].get(s)
            if f_ and c_:
                print(f"  {s:<14} n={f_[1]:<4} {_cell(*f_):<22} / {_cell(*c_)}")


if __name__ == "__main__":
    main()
