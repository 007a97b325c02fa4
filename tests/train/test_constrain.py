"""Answers inside the label set: the prefix constraint never lets a label outside the set through (random scores and
a tiny random model), and scoring replaces an outside label with the student's most likely one."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import torch

from train.constrain import LabelConstraint, score_labels
from train.data import Example, prompt_text
from train.generate import generate

# Labels the tiny tokenizer splits in different ways: whole words of its corpus, pieces, a shared prefix, and one
# with characters it never saw together.
LABELS = ["billing", "login", "shipping", "bill_dispute", "zebra_crossing"]


def _tiny(tiny_model: Path) -> tuple:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.padding_side = "left"
    return tok, AutoModelForCausalLM.from_pretrained(tiny_model).eval()


def _value(text: str, closed: bool = True) -> str | None:
    """The intent value written (up to its closing quote; or to the end, unless ``closed``)."""
    m = re.search(r'"intent":\s*"([^"]*)("|$)', text)
    return m.group(1) if m and (m.group(2) or not closed) else None


def test_random_walks_under_the_constraint_end_on_a_label(tiny_model: Path) -> None:
    tok, _ = _tiny(tiny_model)
    c = LabelConstraint(tok, "intent", LABELS)
    rng = random.Random(0)
    seen = set()
    for _ in range(300):
        text = '{"intent": '
        for _step in range(40):
            rest = c.rest(text)
            if rest is None:
                break
            allowed = c.allowed(rest)
            assert allowed, f"no way on from {rest!r}"
            text += tok.decode([rng.choice(allowed)])
        seen.add(_value(text))
    assert seen == set(LABELS)  # every label reachable, nothing else


class Opening:
    """Open the field's value first (a random model would never), then let the model go on: a logits processor for
    a batch whose generated tokens start at ``width``."""

    def __init__(self, tok: object, width: int) -> None:
        self.ids = tok('{"intent": "', add_special_tokens=False)["input_ids"]  # type: ignore[operator]
        self.width = width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        k = input_ids.shape[1] - self.width
        if k < len(self.ids):
            scores[:] = float("-inf")
            scores[:, self.ids[k]] = 0.0
        return scores


def _prompts(tok: object, n: int) -> list[str]:
    rng = random.Random(1)
    return [prompt_text(tok, [{"role": "user", "content": " ".join(rng.choice(LABELS) for _ in range(6))}])
            for _ in range(n)]  # fmt: skip


def test_generation_with_the_constraint_stays_in_the_label_set(tiny_model: Path) -> None:
    """A tiny random model forced to open the field: unconstrained it names anything, constrained only labels."""
    from transformers import LogitsProcessorList

    tok, model = _tiny(tiny_model)
    c = LabelConstraint(tok, "intent", LABELS)
    prompts = _prompts(tok, 12)

    def run(constrained: bool) -> list[str]:
        def procs(width: int) -> LogitsProcessorList:
            out = LogitsProcessorList([Opening(tok, width)])
            if constrained:
                out.extend(c.processor(width))
            return out

        gens = generate(model, tok, prompts, batch_size=4, max_new_tokens=24, logits_processor=procs)
        return [g.text for g in gens]

    free, kept = run(False), [_value(t) for t in run(True)]
    assert all(_value(t, closed=False) is not None for t in free)  # the value was opened...
    assert not {_value(t, closed=False) for t in free} & set(LABELS)  # ...and without the constraint, no label
    assert all(v in LABELS for v in kept), kept


def test_a_served_local_student_keeps_its_answers_in_the_label_set(tiny_model: Path, tmp_path: Path) -> None:
    import pytest
    from transformers import LogitsProcessorList

    from curation.errors import UserError
    from curation.workspace import Workspace
    from train.bars import QualityBar, set_bar
    from train.serve.batching import StudentJob
    from train.serve.server import served_labels
    from train.serve.settings import ServeConfig, StudentSpec
    from train.serve.student import LocalStudent

    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        local = StudentSpec(None, str(tiny_model), None, None, None, None)
        set_bar(ws, QualityBar(task="t", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.5))
        with pytest.raises(UserError, match="no label set"):  # no label metric, no run whose references name some
            served_labels(ws, ServeConfig(constrain_labels=True), local)
        set_bar(ws, QualityBar(task="t", threshold=0.5, metrics=[{"kind": "json_field", "field": "intent"}, {
            "kind": "verifier", "verifier": {"type": "label", "field": "intent", "allowed": LABELS}}]))  # fmt: skip
        field, labels = served_labels(ws, ServeConfig(constrain_labels=True), local)
        remote = StudentSpec(None, None, None, "http://127.0.0.1:1/v1", "m", None)
        with pytest.raises(UserError, match="local student"):
            served_labels(ws, ServeConfig(constrain_labels=True), remote)
    assert (field, labels) == ("intent", LABELS)
    tok, model = _tiny(tiny_model)
    c = LabelConstraint(tok, field, labels)
    student = LocalStudent(model, tok, "cpu", "s", max_batch=4, wait_ms=0, timeout_s=60,
                           logits_processor=lambda w: LogitsProcessorList([Opening(tok, w), *c.processor(w)]))  # fmt: skip
    try:
        gens = student._run([StudentJob(p, 24) for p in _prompts(tok, 4)])
    finally:
        student.close()
    assert all(_value(g.text) in LABELS for g in gens), [g.text for g in gens]


def test_scoring_replaces_an_outside_label_with_the_most_likely_one(tiny_model: Path) -> None:
    from train.data import IGNORE, encode

    tok, model = _tiny(tiny_model)
    tok.padding_side = "right"
    msgs = [{"role": "user", "content": "charged twice"}, {"role": "assistant", "content": ""}]
    ex = Example(1, "heldout", "s", 1.0, msgs, None, None)
    inside = json.dumps({"intent": "login", "urgency": "low"})
    assert score_labels(model, tok, ex.with_answer(inside), "intent", LABELS) == inside
    outside = json.dumps({"intent": "weather", "urgency": "low"})
    got = score_labels(model, tok, ex.with_answer(outside), "intent", LABELS, batch_size=2)

    def loglik(answer: str) -> float:
        ids, labels = encode(tok, ex.with_answer(answer), 256)
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], dim=-1)
        return sum(float(lp[k - 1, ids[k]]) for k in range(1, len(ids)) if labels[k] != IGNORE)

    best = max(LABELS, key=lambda lab: loglik(json.dumps({"intent": lab, "urgency": "low"})))
    assert got == json.dumps({"intent": best, "urgency": "low"})
