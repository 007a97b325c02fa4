from __future__ import annotations

import json
import math

import pytest

from curation.datasets import version_members
from curation.errors import UserError
from curation.filters import answer_prob, answer_span, run_filter
from curation.rebalance import snapshot_version
from curation.verifiers import Verifier


def test_verifiers_from_spec():
    ok = '{"intent": "billing_issue", "urgency": "low"}'
    assert Verifier.from_spec({"type": "json"}).check(ok).ok
    assert not Verifier.from_spec({"type": "json"}).check("intent: billing").ok
    schema = {"type": "object", "required": ["intent", "urgency"], "properties": {"urgency": {"enum": ["low", "high"]}}}
    v = Verifier.from_spec({"type": "json_schema", "schema": schema})
    assert v.check(ok).ok
    bad = v.check('{"intent": "x", "urgency": "soon"}')
    assert not bad.ok and "urgency" in bad.reason
    lab = Verifier.from_spec({"type": "label", "field": "intent", "allowed": ["billing_issue", "delivery"]})
    assert lab.check(ok).ok and not lab.check('{"intent": "refund"}').ok
    assert Verifier.from_spec({"type": "regex", "pattern": "[a-z_]+", "field": "intent"}).check(ok).ok
    em = Verifier.from_spec({"type": "exact_match", "field": "intent", "normalize": True})
    assert em.check(ok, '{"intent": "Billing_Issue "}').ok
    assert em.check(ok, "billing_issue").ok  # a bare-label reference
    assert not em.check(ok, '{"intent": "delivery"}').ok
    assert em.check(ok, None).ok  # no reference: nothing to fail
    with pytest.raises(UserError):
        Verifier.from_spec({"type": "nope"})


def test_answer_prob_uses_only_the_field_tokens():
    text = '{"intent": "billing_issue", "urgency": "low"}'
    assert text[slice(*answer_span(text, "intent"))] == "billing_issue"
    toks = [text[i : i + 3] for i in range(0, len(text), 3)]
    lps = [{"token": t, "logprob": -0.01} for t in toks]
    covering = [k for k in range(len(toks)) if 3 * k < 26 and 3 * k + 3 > 12]
    for k in covering:
        lps[k]["logprob"] = -0.5
    assert answer_prob(lps, "intent") == pytest.approx(math.exp(-0.5 * len(covering)))
    assert answer_prob(lps, "missing") is None


def test_confidence_filter_to_review_respects_human_decisions(ws):
    low = [r[0] for r in ws.query("SELECT record_id FROM records WHERE mean_logprob < -0.5 ORDER BY 1")]
    assert len(low) == 3
    with ws.transaction() as cur:  # a human already accepted one low-confidence answer
        cur.execute("INSERT INTO reviews VALUES (?, 'accepted', NULL, NULL, NULL, 'ann', now())", [low[0]])
    spec = {"kind": "confidence", "metric": "mean_logprob", "min": -0.5}
    preview = run_filter(ws, "lowconf", spec, "review")
    assert (preview.n_failed, preview.n_to_queue, preview.n_protected) == (3, 2, 1)
    assert ws.scalar("SELECT count(*) FROM filter_runs") == 0  # a preview stores nothing
    rep = run_filter(ws, "lowconf", spec, "review", apply=True)
    assert rep.run_id is not None
    assert ws.query("SELECT record_id, status, reason FROM reviews ORDER BY 1") == [
        (low[0], "accepted", None),
        (low[1], "needs_review", "lowconf"),
        (low[2], "needs_review", "lowconf"),
    ]
    ev = ws.query("SELECT record_id, action, reviewer FROM review_events ORDER BY 1")
    assert ev == [(low[1], "queue", "filter:lowconf"), (low[2], "queue", "filter:lowconf")]


def test_answer_prob_filter_and_drop_policy_excludes_from_versions(ws):
    rep = run_filter(
        ws,
        "intent-conf",
        {"kind": "confidence", "metric": "answer_prob", "field": "intent", "min": 0.5},
        "drop",
        apply=True,
    )
    assert rep.n_failed == 3 and rep.n_unscored == 0
    info = snapshot_version(ws, "v")
    assert info.n_train == 26 - 3
    failed = {s["record_id"] for s in rep.sample}
    assert failed.isdisjoint(m.record_id for m in version_members(ws, "v"))


def test_verifier_filter_keep_policy_only_records(ws):
    with ws.transaction() as cur:
        cur.execute("UPDATE records SET response = 'not json' WHERE record_id = 5")
    rep = run_filter(ws, "json", {"kind": "verifier", "verifier": {"type": "json"}}, "keep", apply=True)
    assert rep.n_failed == 1 and rep.sample[0]["record_id"] == 5
    assert snapshot_version(ws, "v").n_train == 26
    assert json.loads(ws.scalar("SELECT CAST(spec AS VARCHAR) FROM filter_runs"))["kind"] == "verifier"


def test_review_policy_keeps_failing_records_out_until_accepted(ws):
    from curation.pool import load_pool
    from curation.review import accept

    low = [r[0] for r in ws.query("SELECT record_id FROM records WHERE mean_logprob < -0.5 ORDER BY 1")]
    before = {rid for rid, _ in load_pool(ws).train}
    assert set(low) <= before
    run_filter(ws, "lowconf", {"kind": "confidence", "metric": "mean_logprob", "min": -0.5}, "review", apply=True)
    pool = load_pool(ws)
    assert {rid for rid, _ in pool.train} == before - set(low)
    assert pool.excluded == {"pending_review": 3}
    accept(ws, low[1])  # a human accepts one: it is eligible again
    assert {rid for rid, _ in load_pool(ws).train} == before - {low[0], low[2]}
