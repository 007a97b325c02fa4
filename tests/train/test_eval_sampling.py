"""``--limit N``: a seeded random sample stratified by slice and by the answer's label, never the first rows."""

from __future__ import annotations

import json
from collections import Counter

from curation.verifiers import answer_label
from train.bars import QualityBar
from train.data import Example
from train.evaluate import sample_examples
from train.sampling import label_field, stratified_sample

# File order: slice by slice, label by label, so "the first N rows" would be one slice and one label.
MIX = {"a": {"billing": 50, "refund": 10}, "b": {"login": 20, "reset": 5}, "c": {"late": 4, "lost": 1}}


def examples() -> list[Example]:
    out = []
    for s, labels in MIX.items():
        for label, n in labels.items():
            for _ in range(n):
                answer = json.dumps({"intent": label.upper() if len(out) % 2 else label})  # case must not matter
                out.append(Example(len(out) + 1, "heldout", s, 1.0, [{"role": "user", "content": "q"},
                                   {"role": "assistant", "content": answer}], answer, None))  # fmt: skip
    return out


BAR = QualityBar(task="t", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.5)


def strata(xs: list[Example]) -> Counter:
    return Counter((e.slice, answer_label(e.teacher, "intent")) for e in xs)


def test_limit_covers_every_slice_and_label_and_is_seeded() -> None:
    rows = examples()
    first = sample_examples(rows, BAR, 15, seed=0)
    assert len(first) == 15 and set(strata(first)) == {(s, k) for s, ls in MIX.items() for k in ls}
    per_slice = Counter(e.slice for e in first)
    assert per_slice == {"a": 5, "b": 5, "c": 5}  # equal shares; c has exactly 5
    assert sample_examples(rows, BAR, 15, seed=0) == first  # the same seed, the same sample
    assert sample_examples(rows, BAR, 15, seed=1) != first
    assert first != rows[:15] and [e.record_id for e in first] == sorted(e.record_id for e in first)
    # Inside a slice, labels share in proportion with one each at least: a = 1 + round(3 x 49/58) billing, 1 refund
    assert strata(first)[("a", "billing")] == 4 and strata(first)[("a", "refund")] == 1


def test_water_filling_gives_a_small_slice_s_leftover_to_the_others() -> None:
    picked = Counter(e.slice for e in sample_examples(examples(), BAR, 40, seed=3))
    assert picked == {"c": 5, "a": 18, "b": 17} or picked == {"c": 5, "a": 17, "b": 18}


def test_fewer_places_than_slices_and_no_limit() -> None:
    rows = examples()
    for seed in range(20):  # fewer places than slices, or than a slice's labels: exactly the limit, never more
        two = stratified_sample(rows, 2, slice_of=lambda e: e.slice, seed=seed)
        assert len(two) == 2 and len({e.slice for e in two}) == 2
        three = sample_examples(rows, BAR, 3, seed=seed)  # one per slice, one of its labels
        assert len(three) == 3 and {e.slice for e in three} == {"a", "b", "c"}
    assert sample_examples(rows, BAR, None, seed=0) == rows
    assert sample_examples(rows, BAR, 10_000, seed=0) == rows


def test_label_field_comes_from_the_bar() -> None:
    assert label_field([{"kind": "valid_json"}, {"kind": "json_field", "field": "intent"}]) == (True, "intent")
    assert label_field([{"kind": "label_in_set", "field": None, "labels": ["y", "n"]}]) == (True, None)
    verifier = {"kind": "verifier", "verifier": {"type": "exact_match", "field": "a.b"}}
    assert label_field([verifier]) == (True, "a.b")
    assert label_field([{"kind": "verifier", "verifier": {"type": "exact_match"}}]) == (False, None)
    assert label_field([{"kind": "json_f1"}]) == (False, None)
    assert answer_label('{"a": {"b": " X "}}', "a.b") == "x" and answer_label("not json", "a") == "(none)"
    # without a label metric the sample is stratified by slice only
    plain = sample_examples(examples(), QualityBar(task="t", metrics=[{"kind": "json_f1"}], threshold=0.5), 6, 0)
    assert Counter(e.slice for e in plain) == {"a": 2, "b": 2, "c": 2}
