"""Coverage-keeping selection vs random at the same budget, on the sample (``sample_data/production_logs.jsonl.gz``).

    PYTHONPATH=. nice python bench/coverage_bench.py [--budgets 700,1400] [--seed 0]

The pipeline a user runs: import, exact dedupe, a frozen 20% split, then ``rebalance --to uniform --budget N`` once
with ``--select random`` and once with ``--select coverage`` (one seeded run each, the same seed). Scored per slice on
the held-out side, against the teacher's intent (what the student imitates):
- cover: mean cosine of each held-out prompt to its nearest kept prompt of the same slice (all-MiniLM-L6-v2);
- 1-NN: intent of the nearest kept example (any slice) = the held-out record's intent;
- centroid: a nearest-intent-centroid classifier fitted on the kept examples' embeddings (weights x copies) -
  a small trained student; no language model is trained (the student's fine-tune takes minutes per run on a GPU).
About 2 minutes on 2 cores, most of it embedding the 2,7xx distinct prompts once (then cached in the workspace).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from curation.dedupe import find_duplicates
from curation.dedupe_runs import apply_dedupe
from curation.embeddings import embed_texts
from curation.importing import import_file
from curation.rebalance import Target, plan_rebalance
from curation.splits import freeze_split, plan_split
from curation.verifiers import answer_label
from curation.workspace import Workspace

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "production_logs.jsonl.gz"


def _accuracy(pred: list[str], truth: list[str]) -> float:
    return float(np.mean([p == t for p, t in zip(pred, truth, strict=True)]))


def _scores(vecs: dict[int, np.ndarray], intent: dict[int, str], kept: dict[int, float], held: list[tuple[int, str]],
            slice_of: dict[int, str]) -> dict[str, tuple[float, float, float, int]]:  # fmt: skip
    """Per slice: (cover, 1-NN accuracy, centroid accuracy, held-out n)."""
    ids = sorted(kept)
    kv = np.stack([vecs[r] for r in ids])
    labels = sorted({intent[r] for r in ids})
    cent = np.zeros((len(labels), kv.shape[1]), dtype=np.float64)
    for r, v in zip(ids, kv, strict=True):
        cent[labels.index(intent[r])] += kept[r] * v
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    out: dict[str, tuple[float, float, float, int]] = {}
    for s in sorted({s for _, s in held}):
        hs = [r for r, sl in held if sl == s]
        hv = np.stack([vecs[r] for r in hs])
        same = [k for k, r in enumerate(ids) if slice_of[r] == s]
        cover = float((hv @ kv[same].T).max(axis=1).mean()) if same else 0.0
        nn = [intent[ids[k]] for k in (hv @ kv.T).argmax(axis=1)]
        ce = [labels[k] for k in (hv @ cent.T).argmax(axis=1)]
        truth = [intent[r] for r in hs]
        out[s] = (cover, _accuracy(nn, truth), _accuracy(ce, truth), len(hs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", default="700,1400")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "cov.duckdb")
        import_file(ws, SAMPLE)
        apply_dedupe(ws, find_duplicates(ws, kind="exact"))
        freeze_split(ws, plan_split(ws, name="heldout", share=0.2, seed=args.seed, threshold=None))
        rows = ws.query("SELECT record_id, prompt, response FROM records WHERE response IS NOT NULL")
        ids = [int(r[0]) for r in rows]
        vecs = dict(zip(ids, embed_texts(ws, [r[1] or "" for r in rows]), strict=True))
        intent = {int(r[0]): answer_label(r[2], "intent") for r in rows}
        print(f"sample: {len(ids):,} answered records; exact dedupe applied; 20% held out (seed {args.seed})")
        for budget in (int(b) for b in args.budgets.split(",")):
            res = {}
            for select in ("random", "coverage"):
                plan = plan_rebalance(ws, Target("uniform"), budget=budget, seed=args.seed, select=select,
                                      split="heldout")  # fmt: skip
                kept = {m.record_id: m.weight * m.copies for m in plan.members if m.side == "train"}
                slice_of = {m.record_id: m.slice for m in plan.members}
                held = [(r, s) for r, s in plan.pool.heldout if r in vecs]
                slice_of.update(dict(held))
                res[select] = _scores(vecs, intent, kept, held, slice_of)
                assert plan.train_rows == budget
            print(
                f"\nuniform --budget {budget} (training rows exactly {budget}); held-out per slice, random -> coverage:"
            )
            print(f"  {'slice':<14}{'held':>6}  {'cover':>15}  {'1-NN acc':>15}  {'centroid acc':>15}")
            tot = {k: np.zeros(3) for k in res}
            n = 0
            for s, (c, a, e, h) in res["random"].items():
                c2, a2, e2, _ = res["coverage"][s]
                print(f"  {s:<14}{h:>6}  {c:>6.3f} -> {c2:.3f}  {a:>6.3f} -> {a2:.3f}  {e:>6.3f} -> {e2:.3f}")
                tot["random"] += h * np.array([c, a, e])
                tot["coverage"] += h * np.array([c2, a2, e2])
                n += h
            r_, c_ = tot["random"] / n, tot["coverage"] / n
            print(f"  {'all':<14}{n:>6}  {r_[0]:>6.3f} -> {c_[0]:.3f}  {r_[1]:>6.3f} -> {c_[1]:.3f}  "
                  f"{r_[2]:>6.3f} -> {c_[2]:.3f}")  # fmt: skip
        ws.close()


if __name__ == "__main__":
    main()
