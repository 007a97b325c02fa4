"""The token rule of near-duplicate decisions, and dedupe that knows about answers."""

from __future__ import annotations

import json

import pytest

from curation.dedupe import CONFLICT_REASON, find_duplicates
from curation.dedupe_runs import apply_dedupe
from curation.near_dupes import edit_distance, why_different
from curation.records import insert_records, new_batch

# Near-identical templates that are different requests: (a, b, why the rule keeps them apart).
APART = [
    ("TAIL LAMP BODY SIDE LH", "TAIL LAMP BODY SIDE RH", "qualifier"),
    ("TAIL LAMP BODY SIDE", "TAIL DOOR SIDE", "catalogue word"),
    ("TAIL LAMP SIDE", "TAIL LAMP BODY SIDE", "catalogue word"),
    ("RADIATOR HOSE UPPER", "RADIATOR HOSE", "qualifier"),
    ("BOLT M8 X 20 MM", "BOLT M8 X 25 MM", "number"),
    ("BRAKE HOSE 300 MM", "BRAKE HOSE 300 CM", "unit"),
    ("Order #48213 has not arrived yet", "Order #77120 has not arrived yet", "number"),
    ("I can log in to my account", "I can't log in to my account", "negation"),
    ("The payment went through", "The payment never went through", "negation"),
    ("Please turn the alarm on", "Please turn the alarm off", "opposite"),
]
# The same request written differently: case, punctuation, typos, inflection, function words, synonyms.
SAME = [
    ("TAIL LAMP BODY SIDE LH", "tail lamp body side, LH"),
    ("TAIL LAMP BODY SIDE LH", "LH TAIL LAMP BODY SIDE"),
    ("WINDOW REGULATOR", "WINDOW REGULATRO"),
    ("How do I reset my password?", "how can i reset my pasword"),
    ("I can't log in, it says my password is wrong.", "I cannot sign in because it says the password is incorrect."),
    ("Do you ship to Norway?", "Is shipping to Norway possible?"),
    ("The headphones arrived broken, the box was crushed.", "Hi, the headphones arrived borken, box was crushed"),
]


@pytest.mark.parametrize(("a", "b", "why"), APART)
def test_a_token_that_carries_meaning_keeps_texts_apart(a: str, b: str, why: str) -> None:
    assert why_different(a, b) == why


@pytest.mark.parametrize(("a", "b"), SAME)
def test_noise_does_not(a: str, b: str) -> None:
    assert why_different(a, b) is None


def test_edit_distance_counts_a_swap_as_one() -> None:
    assert edit_distance("borken", "broken") == 1 and edit_distance("lh", "rh") == 1
    assert edit_distance("lamp", "door") == 3  # capped: surely more than 2


def _add(ws, pairs: list[tuple[str, str]], slc: str = "parts") -> list[int]:
    rows = [{"messages": [{"role": "user", "content": p}], "response": r, "slice": slc} for p, r in pairs]
    with ws.transaction() as cur:
        return insert_records(cur, new_batch(cur, "more.jsonl", "log"), rows)


def test_templates_are_not_merged_at_the_default_threshold(ws, minilm):
    """Catalogue lines and tickets one meaningful token apart: similar enough to merge on embeddings alone, kept
    apart by the rule; the same line in other case, punctuation or word order still merges."""
    texts = list(dict.fromkeys(t for a, b, _ in APART for t in (a, b)))
    id_of = dict(zip(texts, _add(ws, [(t, "{}") for t in texts]), strict=True))
    variant = _add(ws, [("tail lamp body side, LH", "{}"), ("LH TAIL LAMP BODY SIDE", "{}")])
    res = find_duplicates(ws, kind="semantic", rare_share=0)
    merged = [set(c) for c in res.clusters]
    for a, b, _ in APART:
        assert not any({id_of[a], id_of[b]} <= c for c in merged), (a, b)
    lh, rh = id_of["TAIL LAMP BODY SIDE LH"], id_of["TAIL LAMP BODY SIDE RH"]
    assert {lh, *variant} in merged  # LH with its variants, RH on its own
    assert res.kept_apart.get("qualifier", 0) >= 1 and res.apart and res.apart[0].reason
    off = find_duplicates(ws, kind="semantic", rare_share=0, token_check=False)  # embeddings alone merge them
    assert any({lh, rh} <= set(c) for c in off.clusters)


def _intent(label: str) -> str:
    return json.dumps({"intent": label, "summary": "..."})


def test_near_duplicates_with_different_answers_go_to_review(ws, minilm):
    ids = _add(
        ws,
        [
            ("How do I top up my card with Apple Pay?", _intent("top_up_by_card")),
            ("How can I top up my card with Apple Pay", _intent("apple_pay")),
            ("how do i top up my card with apple pay??", _intent("top_up_by_card")),
        ],
        slc="billing",
    )
    res = find_duplicates(ws, kind="semantic", answers="agree", label_field="intent", rare_share=0)
    (conflict,) = res.conflicts
    assert set(conflict.record_ids) == set(ids)
    assert {a.label for a in conflict.answers} == {"top_up_by_card", "apple_pay"}
    assert res.kept[ids[0]][0] and res.kept[ids[1]][0] and not res.kept[ids[2]][0]  # same answer: one kept
    assert sorted(conflict.to_review) == [ids[0], ids[1]]
    assert "agree on field 'intent'" in res.answer_rule
    run = apply_dedupe(ws, res)
    queued = ws.query("SELECT record_id, reason FROM review_events WHERE action = 'queue' ORDER BY record_id", [])
    assert queued == [
        (ids[0], f"{CONFLICT_REASON} (dedupe run {run})"),
        (ids[1], f"{CONFLICT_REASON} (dedupe run {run})"),
    ]
    assert ws.scalar("SELECT status FROM reviews WHERE record_id = ?", [ids[1]]) == "needs_review"
    ignore = find_duplicates(ws, kind="semantic", answers="ignore", rare_share=0)
    assert not ignore.conflicts and sum(not ignore.kept[i][0] for i in ids) == 2  # prompts alone: one of three


def test_answers_auto_follows_the_bar_then_the_answers(ws, minilm):
    ids = _add(ws, [("Where is my parcel #1?", _intent("delivery")), ("where is my parcel #1", _intent("refund"))])
    free = find_duplicates(ws, kind="exact")  # JSON answers with a summary: free text, prompts alone decide
    assert not free.conflicts and "prompts alone" in free.answer_rule
    bar = find_duplicates(ws, kind="exact", bar_label=(True, "intent"))
    assert [set(c.record_ids) for c in bar.conflicts] == [set(ids)] and "quality bar" in bar.answer_rule
    with ws.transaction() as cur:  # answers that are labels themselves (a routing log): auto compares them
        cur.execute("UPDATE records SET response = CASE WHEN record_id = ? THEN 'refund' ELSE 'delivery' END", [ids[1]])
    labels = find_duplicates(ws, kind="exact")
    assert "look like labels" in labels.answer_rule
    assert [set(c.record_ids) for c in labels.conflicts] == [set(ids)]
