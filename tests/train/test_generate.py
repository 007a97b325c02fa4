"""Generation's token logprobs and confidence, checked against a teacher-forced forward pass of the same model."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch
from trainfix import triage_rows

from train.data import prompt_text
from train.generate import confidence, generate, load_for_inference


@pytest.fixture(scope="module")
def loaded(tiny_model: Path) -> tuple:
    return load_for_inference(str(tiny_model), None, "cpu", "fp32")


def _prompts(tok, n: int) -> list[str]:
    return [prompt_text(tok, r["messages"][:-1]) for r in triage_rows(n, 0, seed=7)]


def test_logprobs_match_a_forward_pass_and_confidence_is_their_mean(loaded: tuple) -> None:
    model, tok, dev = loaded
    prompts = _prompts(tok, 5)
    gens = generate(model, tok, prompts, batch_size=3, max_new_tokens=12, top_logprobs=3, device=dev)
    for p, g in zip(prompts, gens, strict=True):
        assert g.token_ids and len(g.logprobs) == len(g.token_ids) == len(g.top)
        ids = tok(p, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logits = model(torch.tensor([ids + g.token_ids])).logits[0].float()
        lp = torch.log_softmax(logits[len(ids) - 1 : -1], dim=-1)  # the distribution each generated token came from
        want = [lp[k, t].item() for k, t in enumerate(g.token_ids)]
        assert g.logprobs == pytest.approx(want, abs=1e-4)
        # greedy: the chosen token is the best alternative, and the alternatives come best first
        assert [alts[0][0] for alts in g.top] == g.token_ids
        assert all(a[1] >= b[1] for alts in g.top for a, b in itertools.pairwise(alts))
        assert g.confidence == pytest.approx(math.exp(sum(want) / len(want)), rel=1e-4)
        assert 0 < g.confidence <= 1
        assert g.finish_reason in ("stop", "length")
        content = g.openai_logprobs(tok, 2)
        assert [c["logprob"] for c in content] == g.logprobs
        assert "".join(c["token"] for c in content).strip() == g.text
        assert all(len(c["top_logprobs"]) == 2 and c["top_logprobs"][0]["token"] == c["token"] for c in content)


def test_per_prompt_caps_and_no_alternatives_unless_asked(loaded: tuple) -> None:
    model, tok, dev = loaded
    prompts = _prompts(tok, 2)
    long_, short = generate(model, tok, prompts, batch_size=2, max_new_tokens=[10, 3], device=dev)
    assert len(short.token_ids) <= 3 and len(long_.token_ids) <= 10
    assert short.top == [] and long_.top == []
    if len(short.token_ids) == 3:
        assert short.finish_reason == "length"
    alone = generate(model, tok, prompts[1:], max_new_tokens=3, device=dev)[0]
    assert alone.token_ids == short.token_ids  # a cap cuts the same greedy answer


def test_sampling_still_scores_tokens(loaded: tuple) -> None:
    model, tok, dev = loaded
    torch.manual_seed(0)
    g = generate(model, tok, _prompts(tok, 1), max_new_tokens=6, temperature=1.5, device=dev)[0]
    assert len(g.logprobs) == len(g.token_ids) and all(lp <= 0 for lp in g.logprobs)


def test_confidence_temperature() -> None:
    assert confidence([]) is None
    assert confidence([-1.0, -3.0]) == pytest.approx(math.exp(-2.0))
    assert confidence([-1.0, -3.0], temperature=2.0) == pytest.approx(math.exp(-1.0))
