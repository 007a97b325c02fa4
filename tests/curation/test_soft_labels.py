"""Soft labels in curation: candidate answers from a teacher's stored token logprobs (top alternatives at the tokens
that decide a field's value), several teachers' votes, review edits, references, and the training-file export."""

from __future__ import annotations

import json
import math
from datetime import datetime

import pyarrow.parquet as pq
import pytest

from curation.datasets import export_training_file
from curation.soft_labels import LabelSpec, candidates, label_set, logprob_distribution, replace_value
from curation.workspace import Workspace

LABELS = ["billing", "billing_dispute", "login", "shipping"]


def lp(token: str, logprob: float, *alts: tuple[str, float]) -> dict:
    """One token in the OpenAI shape: the chosen token first among its top alternatives."""
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()),
            "top_logprobs": [{"token": token, "logprob": logprob}, *({"token": a, "logprob": v} for a, v in alts)]}  # fmt: skip


def answer_tokens(*middle: dict) -> list[dict]:
    """``{"intent": "<middle>", "urgency": "low"}`` as tokens, the value's tokens given."""
    return [lp('{"', -0.01), lp("intent", -0.01), lp('":', -0.01), lp(' "', -0.01), *middle,
            lp('",', -0.01, ('"}', -3.0)), lp(' "', -0.01), lp("urgency", -0.01), lp('":', -0.01),
            lp(' "', -0.01), lp("low", -0.1, ("high", -2.5)), lp('"}', -0.01)]  # fmt: skip


def test_distribution_from_the_deciding_tokens_top_alternatives() -> None:
    # "bill" + "ing": at "bill" the runners-up are "log" (login) and "ship" (shipping); "\n" fits no label. "bill"
    # still fits billing and billing_dispute, so "ing" decides too: its runner-up "ing_dispute" names the other; so
    # does the closing quote (billing could still go on), whose runner-up '"}' closes it as well.
    toks = answer_tokens(lp("bill", -0.5, ("log", -1.5), ("ship", -2.0), ("\n", -4.0)),
                         lp("ing", -0.2, ("ing_dispute", -1.8)))  # fmt: skip
    text = "".join(t["token"] for t in toks)
    assert json.loads(text) == {"intent": "billing", "urgency": "low"}
    d = logprob_distribution(toks, "intent", LABELS)
    mass = {"login": math.exp(-1.5), "shipping": math.exp(-2.0),
            "billing_dispute": math.exp(-0.5) * math.exp(-1.8),
            "billing": math.exp(-0.5) * math.exp(-0.2) * (math.exp(-0.01) + math.exp(-3.0))}  # fmt: skip
    total = sum(mass.values())
    assert d == pytest.approx({k: v / total for k, v in mass.items()})
    # The urgency field is decided at "low" alone (its alternative "high" spells a label of that field).
    assert logprob_distribution(toks, "urgency", ["low", "high"]) == pytest.approx(
        {
            "low": math.exp(-0.1) / (math.exp(-0.1) + math.exp(-2.5)),
            "high": math.exp(-2.5) / (math.exp(-0.1) + math.exp(-2.5)),
        }
    )


def test_a_token_that_opens_the_quote_and_the_value_together() -> None:
    # '"log' holds the opening quote; its alternatives must keep the quote: '"ship' counts, 'ship' cannot follow.
    toks = [lp('{"', -0.01), lp("intent", -0.01), lp('":', -0.01), lp(" ", -0.01),
            lp('"log', -0.3, ('"ship', -1.4), ("ship", -2.0)), lp("in", -0.01), lp('"}', -0.01)]  # fmt: skip
    d = logprob_distribution(toks, "intent", LABELS)
    assert set(d) == {"login", "shipping"}
    assert d["shipping"] == pytest.approx(math.exp(-1.4) / (math.exp(-1.4) + math.exp(-0.3)))
    assert logprob_distribution(toks[:3], "intent", LABELS) is None  # no value: no distribution


def test_candidates_teachers_votes_edits_and_references() -> None:
    toks = answer_tokens(lp("log", -0.4, ("ship", -1.2)), lp("in", -0.01))
    answer = "".join(t["token"] for t in toks)
    spec = LabelSpec("intent", tuple(LABELS))
    one = candidates(answer, None, [(answer, toks)], spec, LABELS)
    assert [c.value for c in one] == ["login", "shipping"] and sum(c.prob for c in one) == pytest.approx(1.0)
    assert [c.hard for c in one] == [True, False] and one[0].answer == answer
    assert one[1].answer == answer.replace('"login"', '"shipping"')  # every other character kept
    p_login = one[0].prob

    # A second teacher without logprobs votes for shipping: the mean of the two teachers' distributions.
    other = json.dumps({"intent": "shipping", "urgency": "low"})
    two = {c.value: c.prob for c in candidates(answer, None, [(answer, toks), (other, None)], spec, LABELS)}
    assert two == pytest.approx({"login": p_login / 2, "shipping": (1 - p_login) / 2 + 0.5})
    # A reference names the hard target, even one no teacher considered.
    ref = {c.value: c.hard for c in candidates(answer, '{"intent": "billing"}', [(answer, toks)], spec, LABELS)}
    assert ref == {"login": False, "shipping": False, "billing": True}
    # A reviewer's edit to another value: the reviewer is certain.
    edited = json.dumps({"intent": "billing", "urgency": "low"})
    assert [(c.value, c.prob, c.hard) for c in candidates(edited, None, [(answer, toks)], spec, LABELS,
                                                           edited=True)] == [("billing", 1.0, True)]  # fmt: skip
    assert candidates("not json", None, [(answer, toks)], spec, LABELS) == []
    assert replace_value('{"a": {"intent": "x"}, "intent": "y"}', "intent", "z") is None  # ambiguous key: refuse
    assert label_set(LabelSpec("intent"), ['{"intent": "b"}', "a", None, '{"other": 1}']) == ["a", "b"]


def test_export_carries_candidates_from_stored_logprobs_and_other_teachers(tmp_path) -> None:
    from curation.rebalance import snapshot_version
    from curation.records import finish_batch, insert_records, new_batch

    toks = answer_tokens(lp("log", -0.4, ("ship", -1.2)), lp("in", -0.01))
    answer = "".join(t["token"] for t in toks)
    plain = json.dumps({"intent": "billing", "urgency": "high"})
    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        with ws.transaction() as cur:
            b = new_batch(cur, "x.jsonl", "log")
            ids = insert_records(cur, b, [
                {"messages": [{"role": "user", "content": "cannot sign in"}], "response": answer,
                 "response_logprobs": toks, "reference": '{"intent": "login"}'},
                {"messages": [{"role": "user", "content": "charged twice"}], "response": plain},
            ])  # fmt: skip
            finish_batch(cur, b, n_lines=2, n_imported=2, n_duplicates=0, n_quarantined=0)
            cur.execute(
                "INSERT INTO teacher_outputs (record_id, teacher, model, cache_key, response, cost_usd, mode, "
                "created_at) VALUES (?, 'second', 'm2', 'k', ?, 0, 'sync', ?)",
                [ids[1], json.dumps({"intent": "shipping", "urgency": "high"}), datetime.now()],
            )
        snapshot_version(ws, "v1")
        plain_file = export_training_file(ws, "v1", tmp_path / "plain.parquet")
        soft_file = export_training_file(ws, "v1", tmp_path / "soft.parquet", labels=LabelSpec("intent"),
                                         teacher_tokens=True)  # fmt: skip
    assert "candidates" not in pq.read_schema(plain_file).names  # the plain contract is unchanged
    rows = {r["record_id"]: r for r in pq.read_table(soft_file).to_pylist()}
    first, second = rows[ids[0]], rows[ids[1]]
    assert first["label_field"] == "intent"
    assert [(c["value"], c["hard"]) for c in first["candidates"]] == [("login", True)]  # labels: the references'
    assert [t["token"] for t in first["teacher_tokens"]] == [t["token"] for t in toks]
    assert {c["value"]: c["prob"] for c in second["candidates"]} == {"billing": 0.5, "shipping": 0.5}
    assert second["teacher_tokens"] is None
