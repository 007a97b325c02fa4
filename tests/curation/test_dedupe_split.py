from __future__ import annotations

import pytest

from curation.datasets import version_members
from curation.dedupe import find_duplicates, normalise
from curation.dedupe_runs import apply_dedupe
from curation.embeddings import EmbedStats, embed_texts
from curation.errors import UserError
from curation.rebalance import snapshot_version
from curation.records import insert_records, new_batch
from curation.splits import check_leakage, freeze_split, plan_split


def _add(ws, prompts, slc="billing"):
    rows = [{"messages": [{"role": "user", "content": p}], "response": '{"intent":"x"}', "slice": slc} for p in prompts]
    with ws.transaction() as cur:
        return insert_records(cur, new_batch(cur, "later.jsonl", "log"), rows)


def test_normalise_folds_case_space_punctuation():
    assert normalise("  Hello,   WORLD!! ") == normalise("hello world")


def test_exact_dedupe_keeps_most_confident(ws):
    ids = _add(
        ws,
        ["I was charged twice for my subscription this month!!", "i was charged TWICE for my subscription this month"],
    )
    res = find_duplicates(ws, kind="exact")
    cluster = next(c for c in res.clusters if ids[0] in c)
    assert len(cluster) == 3  # the two new ones + the original ticket
    kept = [r for r in cluster if res.kept[r][0]]
    assert kept == [1]  # the original has logprobs (mean ~ log 0.97), the new ones none
    run = apply_dedupe(ws, res)
    assert ws.scalar("SELECT n_removed FROM dedupe_runs WHERE run_id = ?", [run]) == 2


def test_keep_rule_prefers_accepted_review(ws):
    ids = _add(ws, ["I was charged twice for my subscription this month."])
    with ws.transaction() as cur:
        cur.execute("INSERT INTO reviews VALUES (?, 'accepted', NULL, NULL, NULL, 'ann', now())", [ids[0]])
    res = find_duplicates(ws, kind="exact")
    assert res.kept[ids[0]] == (True, "accepted") and res.kept[1][0] is False


def test_semantic_dedupe_finds_paraphrases_and_shows_preview(ws, minilm):
    res = find_duplicates(ws, kind="semantic", threshold=0.88)
    pairs = {frozenset(c) for c in res.clusters}
    assert frozenset({1, 2}) in pairs  # charged twice / billed two times
    assert frozenset({13, 14}) in pairs  # password wrong / password incorrect
    assert all(p.similarity >= 0.88 for p in res.above)
    assert all(0.83 <= p.similarity < 0.88 for p in res.below)
    assert res.n_removed == 2
    rates = {s.slice: s.rate for s in res.per_slice}
    assert rates["billing"] == pytest.approx(1 / 12)


def test_rare_slice_guard_refuses_unless_forced(ws, minilm):
    _add(ws, ["Someone accessed my account from another country!"], slc="security")
    res = find_duplicates(ws, kind="exact", rare_share=0.2, max_rare_removal=0.2)
    assert res.blocked == ["security"]
    with pytest.raises(UserError, match="rare"):
        apply_dedupe(ws, res)
    apply_dedupe(ws, res, force=True)


def test_embedding_cache_computes_once(ws, minilm):
    texts = ["alpha beta", "gamma delta", "alpha beta"]
    st = EmbedStats()
    a = embed_texts(ws, texts, stats=st)
    assert (st.n_unique, st.n_encoded) == (2, 2)
    b = embed_texts(ws, texts, stats=st)
    assert st.n_encoded == 0 and st.n_cached == 2
    assert a.shape == (3, 384) and abs(float(a[0] @ b[2]) - 1) < 1e-3


def test_split_is_stratified_cluster_whole_and_frozen(ws, minilm):
    plan = plan_split(ws, share=0.25, seed=3, threshold=0.88)
    per = {s: (n, h) for s, n, h, _ in plan.per_slice}
    assert per["security"][1] == 1 and per["billing"][1] in (3, 4)  # 25% of 12, +1 when a pair goes whole
    held = set(plan.heldout)
    assert ({1, 2} <= held) or not ({1, 2} & held)  # the paraphrase pair never straddles
    freeze_split(ws, plan)
    assert check_leakage(ws, threshold=0.88) == []
    with pytest.raises(UserError, match="frozen"):
        plan_split(ws, share=0.5)
    assert plan_split(ws, name="other", share=0.25, seed=3, threshold=0.88).heldout == plan.heldout  # seeded


def test_leakage_check_and_dedupe_keep_split_frozen(ws, minilm):
    plan = plan_split(ws, share=0.25, seed=3, threshold=0.88)
    freeze_split(ws, plan)
    h = plan.heldout[0]
    prompt = ws.scalar("SELECT prompt FROM records WHERE record_id = ?", [h])
    (leak_id,) = _add(ws, [prompt + " ??"], slc="billing")  # arrives after the split: a leak
    leaks = check_leakage(ws, threshold=0.88)
    assert (h, leak_id, "exact") == (leaks[0].heldout_id, leaks[0].train_id, leaks[0].kind)
    assert {lp.train_id for lp in leaks} == {leak_id}  # (also semantic to h's paraphrase when it is held out)
    res = find_duplicates(ws, kind="semantic", threshold=0.88, split="heldout")
    assert res.kept[h] == (True, "held-out") and res.kept[leak_id][0] is False
    apply_dedupe(ws, res)
    snapshot_version(ws, "v", split="heldout")
    sides = {m.record_id: m.side for m in version_members(ws, "v")}
    assert leak_id not in sides
    assert {r for r, s in sides.items() if s == "heldout"} == set(plan.heldout)


def test_cancelled_embedding_keeps_finished_chunks(ws, minilm, monkeypatch):
    import threading

    import curation.embeddings as emb

    monkeypatch.setattr(emb, "ENCODE_CHUNK", 2)
    cancel = threading.Event()
    seen: list[float] = []

    def progress(p):
        seen.append(p.done)
        if p.done >= 2:
            cancel.set()  # stop after the first chunk is stored

    from curation.errors import Cancelled

    with pytest.raises(Cancelled):
        embed_texts(ws, ["one two", "three four", "five six", "seven eight"], progress=progress, cancel=cancel)
    assert ws.scalar("SELECT count(*) FROM embeddings") == 2


def test_clustered_join_finds_the_near_duplicates_exact_search_finds() -> None:
    """The search used above 20k vectors, on a small clustered set: the pairs exact search finds above the threshold,
    true similarities, i < j, no self pairs, and a crowd of near-identical vectors capped at k pairs per vector."""
    import numpy as np

    from curation.neighbors import clustered_pairs, self_pairs

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(40, 64))
    base = centres[rng.integers(0, 40, 3000)] + rng.normal(0, 0.9, (3000, 64))
    dups = base[rng.integers(0, 3000, 300)] + rng.normal(0, 0.05, (300, 64))  # planted near-duplicates
    crowd = np.tile(base[:1], (200, 1)) + rng.normal(0, 0.01, (200, 64))  # 200 copies of one prompt
    vecs = np.vstack([base, dups, crowd]).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    exact = self_pairs(vecs, 0.9, exact=True, k=16)
    got = clustered_pairs(vecs, 0.9, k=16)
    assert got.method == "clustered" and len(exact.i) > 300
    assert (got.i < got.j).all() and (got.sim >= 0.9).all()
    np.testing.assert_allclose(got.sim, np.einsum("ij,ij->i", vecs[got.i], vecs[got.j]), rtol=1e-5)
    found = set(zip(got.i.tolist(), got.j.tolist(), strict=True))
    truth = set(zip(exact.i.tolist(), exact.j.tolist(), strict=True))
    assert len(found & truth) / len(truth) >= 0.99
    in_crowd = (got.i >= 3300) & (got.j >= 3300)
    assert 0 < in_crowd.sum() <= 200 * 16 * 3 < 200 * 199 // 2  # k per vector and probed list, not all pairs
    assert self_pairs(vecs, 0.9, exact=False).method == "clustered"
