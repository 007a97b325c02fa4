"""Dedupe benchmark: embedding throughput, ANN search at 100k, cache re-runs, and precision/recall.

Full size (2 cores, quiet: ~10 minutes, most of it the exact-search baseline of step 2):
    PYTHONPATH=. nice -n 10 /work/venv/bin/python bench/dedupe_bench.py --n-texts 2000 --n 100000
Quick: ``--n-texts 800 --n 30000`` (~3 minutes); ``--steps 3`` skips the exact baseline.

1. Embeddings/s: our pipeline (hash, cache lookup, encode, cache write) vs a bare sentence-transformers
   ``encode`` of the same texts with the same model, dtype and batch size, in the same process (target >= 0.95x).
   Also bf16 vs fp32: speed and cosine agreement (auto picks bf16 only where the CPU has native bf16).
2. Near-duplicate search for ``--n`` vectors: the clustered join (our default above 20k) vs exact search, time and recall of
   the pairs >= threshold (target <= 10 s, recall >= 0.99). Encoding 100k texts on 2 cores takes ~5 minutes, so
   the 100k vectors are synthetic but shaped like real ones: mixtures of real MiniLM embeddings of the texts from
   step 1 plus noise, with 5% planted near-duplicates (noisy copies, cosine ~0.93-0.99).
3. Re-run with the cache: the same 100k synthetic prompts as records whose vectors are in the cache; time of
   ``embed_texts`` (all hits) and of a full semantic ``find_duplicates`` preview (target <= 10 s for 100k).
4. Precision / recall of ``find_duplicates`` (pairs in one cluster) on two labelled sets, the token rule
   (``curation.near_dupes``) against the rule before it (only the numbers a text mentions must match), at the
   default threshold and around it: bench/paraphrase_set.py (paraphrases that should merge, near-miss families
   that should not) and bench/template_set.py (parts-catalogue lines, order tickets and yes/no statements one
   meaningful token apart: LH / RH, a part noun, a number, a unit, a negation; variants by case, punctuation,
   word order and typos that should merge). ``--steps 4`` runs only this (~2 minutes).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import curation.dedupe as dedupe_module
from bench.paraphrase_set import GROUPS as PARAPHRASES
from bench.template_set import GROUPS as TEMPLATES
from curation.dedupe import DEFAULT_THRESHOLD, find_duplicates
from curation.embeddings import _write_cache, embed_texts, encode, load_model, native_bf16, resolve_model, text_hash
from curation.neighbors import self_pairs
from curation.records import finish_batch, insert_records, new_batch
from curation.workspace import Workspace

PRODUCTS = "headphones blender backpack laptop stand desk lamp smart watch kettle router phone case monitor".split()
ISSUES = [
    "arrived broken",
    "stopped working after a week",
    "is missing a part",
    "was delivered to the wrong address",
    "makes a loud noise",
    "does not turn on",
    "was charged twice",
    "has no refund yet",
    "came in the wrong colour",
]
OPENERS = ["", "Hi, ", "Hello team, ", "Urgent: ", "Quick question: ", "Please help, "]
CLOSERS = [
    "",
    " Thanks.",
    " This is urgent.",
    " I've tried twice already.",
    " Can you help?",
    " Order placed last month.",
]


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    """Ticket-like texts (distinct), from seeded templates."""
    rng = np.random.default_rng(seed)
    out: set[str] = set()
    while len(out) < n:
        p, i = rng.choice(PRODUCTS), rng.choice(ISSUES)
        o, c = rng.choice(OPENERS), rng.choice(CLOSERS)
        out.add(f"{o}My {p} {i}.{c} Ref {int(rng.integers(100, 10_000_000))}")
    return sorted(out)


def timed(fn, *a, **k):
    t = time.perf_counter()
    r = fn(*a, **k)
    return r, time.perf_counter() - t


def bench_throughput(texts: list[str], tmp: Path) -> np.ndarray:
    ref = resolve_model(None)  # auto: bf16 where the CPU computes it natively, else fp32
    model = load_model(ref)
    encode(ref, texts[:64])  # warm up
    # Other jobs share this machine: run (bare, ours) side by side in several rounds on fresh text halves and
    # fresh workspaces, and report the median of the per-round ratios (neighbouring runs see similar load).
    ratios, bare_rates, our_rates = [], [], []
    vecs = None
    rounds = 4
    order: list[str] = []
    for r in range(rounds):
        part = texts[r::rounds]
        ws = Workspace.open(tmp / f"thr{r}.duckdb")
        if r % 2:  # alternate which side goes first
            v, to = timed(embed_texts, ws, part)
            _, tb = timed(model.encode, part, batch_size=64, convert_to_numpy=True)
        else:
            _, tb = timed(model.encode, part, batch_size=64, convert_to_numpy=True)
            v, to = timed(embed_texts, ws, part)
        _, t_cached = timed(embed_texts, ws, part)
        ws.close()
        vecs = v if vecs is None else np.vstack([vecs, v])
        order.extend(part)
        ratios.append(tb / to)
        bare_rates.append(len(part) / tb)
        our_rates.append(len(part) / to)
    n = len(texts)
    print(
        f"[1] embeddings/s on {n} texts in {rounds} rounds ({ref.dtype} (auto), batch 64): "
        f"ours {np.median(our_rates):,.0f}/s vs bare encode {np.median(bare_rates):,.0f}/s "
        f"-> median ratio {np.median(ratios):.3f} (rounds "
        f"{', '.join(f'{x:.2f}' for x in ratios)}; target >= 0.95); cached re-run {len(part) / t_cached:,.0f}/s"
    )
    # The load on a shared box swamps the ratio above; the pipeline's own cost is measurable exactly: run
    # embed_texts with encoding replaced by a lookup of vectors computed already, on a fresh workspace.
    import curation.embeddings as emb

    known = dict(zip(order, vecs, strict=True))
    real_encode = emb.encode
    emb.encode = lambda _ref, ts, batch_size=64: np.stack([known[t] for t in ts])
    try:
        ws = Workspace.open(tmp / "overhead.duckdb")
        _, t_over = timed(embed_texts, ws, texts)
        ws.close()
    finally:
        emb.encode = real_encode
    t_bare = n / np.median(bare_rates)
    print(
        f"    pipeline overhead without encoding (hash, cache lookup, cache write): {t_over * 1000:.0f} ms for {n} "
        f"texts = {100 * t_over / t_bare:.2f}% of the bare encode time "
        f"-> expected ratio {t_bare / (t_bare + t_over):.3f}"
    )
    fp, bf = resolve_model(None, "fp32"), resolve_model(None, "bf16")
    sub = texts[:256]
    v32, t32 = timed(encode, fp, sub)
    v16, t16 = timed(encode, bf, sub)
    cos = np.sum(v32 * v16, axis=1)
    print(
        f"    bf16 vs fp32 on {len(sub)} texts: {len(sub) / t16:,.0f}/s vs {len(sub) / t32:,.0f}/s "
        f"({t32 / t16:.2f}x); cosine min {cos.min():.4f}, mean {cos.mean():.4f} (need >= 0.99); native bf16 on this "
        f"CPU: {native_bf16()}, so auto = {ref.dtype}"
    )
    return vecs


def synthetic_vectors(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` vectors shaped like real embeddings, 5% of them noisy copies of others (planted near-duplicates)."""
    rng = np.random.default_rng(seed)
    dim = real.shape[1]
    base_n = int(n * 0.95)
    a = real[rng.integers(0, len(real), base_n)]
    b = real[rng.integers(0, len(real), base_n)]
    v = a + rng.uniform(0.3, 1.0, (base_n, 1)) * b + rng.normal(0, 0.035, (base_n, dim))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    src = v[rng.integers(0, base_n, n - base_n)]
    d = src + rng.normal(0, rng.uniform(0.004, 0.012, (n - base_n, 1)), (n - base_n, dim))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    out = np.vstack([v, d]).astype(np.float32)
    return out[rng.permutation(n)]


def knn_pairs(sims: np.ndarray, idx: np.ndarray, start: int, thr: float, k: int) -> set[tuple[int, int]]:
    """Pairs >= thr among each query's k nearest neighbours (rows ``start...`` of a search result)."""
    sims, idx = sims[:, : k + 1], idx[:, : k + 1]
    rows = np.repeat(np.arange(start, start + len(sims)), k + 1)
    cols, sv = idx.reshape(-1), sims.reshape(-1)
    m = (cols >= 0) & (cols != rows) & (sv >= thr)
    return set(zip(np.minimum(rows[m], cols[m]).tolist(), np.maximum(rows[m], cols[m]).tolist(), strict=True))


def bench_ann(vecs: np.ndarray, thr: float) -> None:
    import faiss

    from curation.neighbors import LIST_SIZE, PROBES, components

    n = len(vecs)
    truth16: set[tuple[int, int]] = set()
    truth_all: set[tuple[int, int]] = set()
    t = time.perf_counter()
    flat = faiss.IndexFlatIP(vecs.shape[1])
    flat.add(vecs)
    for s in range(0, n, 8192):
        sims, idx = flat.search(vecs[s : s + 8192], 65)
        truth16 |= knn_pairs(sims, idx, s, thr, 16)
        truth_all |= knn_pairs(sims, idx, s, thr, 64)  # (almost) every pair >= thr: few vectors have 64 such
    t_exact = time.perf_counter() - t
    pairs, t_ann = timed(self_pairs, vecs, thr, exact=False)
    got = set(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True))
    lab = components(n, pairs.i, pairs.j)
    joined = sum(1 for a, b in truth_all if lab[a] == lab[b]) / max(1, len(truth_all))
    print(
        f"[2] near-duplicate search, {n:,} synthetic vectors, cosine >= {thr}: clustered join (k-means lists of "
        f"~{LIST_SIZE}, {PROBES} probes) "
        f"{t_ann:.1f} s vs exact search {t_exact:.1f} s ({t_exact / t_ann:.1f}x faster); pair recall vs exact top-16 "
        f"{len(got & truth16) / max(1, len(truth16)):.4f} ({len(truth16):,} pairs); {joined:.4f} of all "
        f"{len(truth_all):,} pairs >= {thr} end up in one cluster (targets <= 10 s, recall >= 0.99)"
    )


def bench_cache_rerun(vecs: np.ndarray, tmp: Path) -> None:
    n = len(vecs)
    texts = [f"synthetic prompt {i}" for i in range(n)]
    ws = Workspace.open(tmp / "rerun.duckdb")
    ref = resolve_model(None)
    for s in range(0, n, 20_000):
        _write_cache(ws, ref.model_id, [text_hash(t) for t in texts[s : s + 20_000]], vecs[s : s + 20_000])
    with ws.transaction() as cur:  # bulk records straight in SQL (insert_records is per-row)
        b = new_batch(cur, "bench", "log")
        cur.execute(
            "INSERT INTO records (batch_id, messages, prompt, response, slice, content_hash) "
            "SELECT ?, json('[]'), 'synthetic prompt ' || i, '{}', 's' || (i % 7), md5(i::VARCHAR) FROM range(?) t(i)",
            [b, n],
        )
        finish_batch(cur, b, n_lines=n, n_imported=n, n_duplicates=0, n_quarantined=0)
    _, t_embed = timed(embed_texts, ws, texts)
    res, t_full = timed(find_duplicates, ws, kind="semantic", threshold=DEFAULT_THRESHOLD, token_check=False)
    ws.close()
    print(
        f"[3] re-run with the cache, {n:,} prompts: embed_texts (all cached) {t_embed:.1f} s; full semantic dedupe "
        f"preview {t_full:.1f} s ({res.method}, {len(res.clusters):,} clusters) (target <= 10 s)"
    )


class SameNumbers:
    """The near-duplicate rule before the token rule: only the numbers a text mentions had to match."""

    def __init__(self, texts: list[str]) -> None:
        self.nums = [tuple(sorted(re.findall(r"\d+", t))) for t in texts]

    def reason(self, i: int, j: int) -> str | None:
        return None if self.nums[i] == self.nums[j] else "number"


def quality(ws: Workspace, groups: list[list[str]], thr: float, rule: type | None) -> tuple[float, float, int, int]:
    """(precision, recall, predicted pairs, true pairs) of a semantic dedupe of ``groups``' texts (inserted once)."""
    ids = [r for (r,) in ws.query("SELECT record_id FROM records ORDER BY record_id")]
    group_of = dict(zip(ids, [g for g, group in enumerate(groups) for _ in group], strict=True))
    truth = {(a, b) for a, b in combinations(ids, 2) if group_of[a] == group_of[b]}
    real = dedupe_module.TokenRule
    dedupe_module.TokenRule = rule or real  # the old rule, swapped in for the comparison only
    try:
        res = find_duplicates(ws, kind="semantic", threshold=thr, rare_share=0, answers="ignore")
    finally:
        dedupe_module.TokenRule = real
    pred = {(min(a, b), max(a, b)) for c in res.clusters for a, b in combinations(c, 2)}
    tp = len(pred & truth)
    return tp / max(1, len(pred)), tp / max(1, len(truth)), len(pred), len(truth)


def bench_quality(tmp: Path) -> None:
    for name, groups in (("paraphrase set", PARAPHRASES), ("templates that must stay apart", TEMPLATES)):
        ws = Workspace.open(tmp / f"quality-{len(groups)}.duckdb")
        rows = [
            {"messages": [{"role": "user", "content": t}], "response": "{}", "slice": "x"} for g in groups for t in g
        ]
        with ws.transaction() as cur:
            insert_records(cur, new_batch(cur, name, "log"), rows)
        n_pairs = sum(len(g) * (len(g) - 1) // 2 for g in groups)
        print(f"    {name} ({len(rows)} texts, {len(groups)} groups, {n_pairs} duplicate pairs):")
        for thr in sorted({DEFAULT_THRESHOLD, 0.8, 0.9, 0.95}):
            old = quality(ws, groups, thr, SameNumbers)
            new = quality(ws, groups, thr, None)
            mark = "  <- default" if thr == DEFAULT_THRESHOLD else ""
            print(
                f"      threshold {thr:.2f}: same numbers (old) precision {old[0]:.3f} recall {old[1]:.3f} "
                f"({old[2]} pairs) | token rule (new) precision {new[0]:.3f} recall {new[1]:.3f} ({new[2]} pairs){mark}"
            )
        ws.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-texts", type=int, default=2000)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    ap.add_argument("--steps", default="1234", help="which steps to run, e.g. 4 (default all; 2 and 3 need 1)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "1" in args.steps or "2" in args.steps or "3" in args.steps:
            real = bench_throughput(synthetic_texts(args.n_texts), tmp)
        if "2" in args.steps or "3" in args.steps:
            vecs = synthetic_vectors(real, args.n)
            if "2" in args.steps:
                bench_ann(vecs, args.threshold)
            if "3" in args.steps:
                bench_cache_rerun(vecs, tmp)
        if "4" in args.steps:
            print("[4] dedupe precision / recall (pairs in one cluster) on two labelled sets, old rule vs token rule:")
            bench_quality(tmp)


if __name__ == "__main__":
    main()
