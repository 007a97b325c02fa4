"""Soft-label training on a tiny random Llama: the loss against hand-computed values (candidates and tokens), the
temperature and alpha schedule, and resume of a soft-label run repeating the uninterrupted one."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from trainfix import soft_rows, write_soft_parquet

from curation.errors import UserError
from train import events as ev
from train.config import TRAIN, RunConfig, format_alpha, parse_alpha
from train.data import IGNORE, Encoded, collate, encode, forward_loss, load_examples
from train.soft import alpha_at, encode_soft, soft_batch, soft_forward_loss, soften


def _tiny(tiny_model: Path) -> tuple:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model), AutoModelForCausalLM.from_pretrained(tiny_model).eval()


def _by_hand(model: object, ids: list[int], labels: list[int]) -> tuple[torch.Tensor, list[int]]:
    """Full-sequence log-softmax (every position, no tricks) and the answer positions it predicts."""
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), dim=-1)
    return lp, [k for k in range(1, len(ids)) if labels[k] != IGNORE]


def test_candidate_loss_equals_the_hand_computed_value(tiny_model: Path, tmp_path: Path) -> None:
    tok, model = _tiny(tiny_model)
    ex = load_examples(write_soft_parquet(soft_rows(2, 0), tmp_path / "soft.parquet"))[1]
    assert [c["prob"] for c in ex.candidates] == [0.7, 0.3]
    item = encode_soft(tok, ex, "candidates", 256, 4)
    with torch.no_grad():
        got = float(soft_forward_loss(model, soft_batch([item], tok.pad_token_id), alpha=0.25, temperature=2.0))

    seq, n = [], []
    for c in ex.candidates:  # each candidate: the student's log-likelihood of the whole answer, by hand
        ids, labels = encode(tok, ex.with_answer(c["answer"]), 256)
        lp, pos = _by_hand(model, ids, labels)
        seq.append(sum(float(lp[k - 1, ids[k]]) for k in pos))
        n.append(len(pos))
    t = [0.7**0.5, 0.3**0.5]  # temperature 2: p^(1/2), renormalised
    t = [x / sum(t) for x in t]
    z = math.log(sum(math.exp(s) for s in seq))
    soft = -sum(ti * (s - z) for ti, s in zip(t, seq, strict=True))
    hard = -seq[0] / n[0]  # candidate 0 is the hard target (the teacher's answer; this row has no reference)
    assert ex.reference is None
    assert got == pytest.approx(0.25 * soft + 0.75 * hard, rel=1e-5)
    assert soft > 0 and abs(soft - hard) > 0.1  # both terms matter in the check


def test_rows_without_a_soft_target_train_on_the_hard_label_at_full_weight(tiny_model: Path, tmp_path: Path) -> None:
    tok, model = _tiny(tiny_model)
    rows = soft_rows(3, 0)
    rows[0]["candidates"] = rows[0]["candidates"][:1]  # one candidate: nothing to spread
    rows[1]["candidates"][0]["hard"], rows[1]["candidates"][1]["hard"] = False, True  # a reference names the other
    rows[2]["weight"] = 3.0
    exs = load_examples(write_soft_parquet(rows, tmp_path / "soft.parquet"))
    items = [encode_soft(tok, e, "candidates", 256, 4) for e in exs]
    assert items[0].probs is None and items[1].hard == 1 and items[2].weight == 3.0
    with torch.no_grad():
        one = float(soft_forward_loss(model, soft_batch(items[:1], tok.pad_token_id), 0.9, 1.0))
        plain = float(forward_loss(model, collate([Encoded(*encode(tok, exs[0], 256), 1.0)], tok.pad_token_id)))
        hard_only = float(soft_forward_loss(model, soft_batch(items[1:2], tok.pad_token_id), 0.0, 1.0))
        other = Encoded(*encode(tok, exs[1].with_answer(exs[1].candidates[1]["answer"]), 256), 1.0)
        other_loss = float(forward_loss(model, collate([other], tok.pad_token_id)))
        batch = float(soft_forward_loss(model, soft_batch(items, tok.pad_token_id), 0.5, 1.0))
        alone = [float(soft_forward_loss(model, soft_batch([i], tok.pad_token_id), 0.5, 1.0)) for i in items]
    assert one == pytest.approx(plain, rel=1e-5)  # alpha does not scale a row with no soft target
    assert hard_only == pytest.approx(other_loss, rel=1e-5)  # the hard term is on the hard target
    assert batch == pytest.approx(sum(alone) / 3, rel=1e-4)  # padded together = each alone (weights included)


def test_token_level_loss_with_a_tail_bucket(tiny_model: Path, tmp_path: Path) -> None:
    """Teacher tokens in the student's vocabulary: cross-entropy against the top-2 + tail, by hand."""
    tok, model = _tiny(tiny_model)
    rows = soft_rows(1, 0)
    ex0 = load_examples(write_soft_parquet(rows, tmp_path / "a.parquet"))[0]
    answer_ids = tok(ex0.answer, add_special_tokens=False)["input_ids"]
    other = tok("billing", add_special_tokens=False)["input_ids"][0]
    rows[0]["teacher_tokens"] = [
        {"token": tok.decode([i]), "logprob": -0.2, "top": [{"token": tok.decode([i]), "logprob": -0.2},
                                                           {"token": tok.decode([other]), "logprob": -2.0}]}
        for i in answer_ids
    ]  # fmt: skip
    ex = load_examples(write_soft_parquet(rows, tmp_path / "b.parquet"))[0]
    item = encode_soft(tok, ex, "tokens", 256, 4)
    assert item.tokens is not None and len(item.tokens) == len(answer_ids)
    with torch.no_grad():
        got = float(soft_forward_loss(model, soft_batch([item], tok.pad_token_id), alpha=0.6, temperature=1.5))
    ids, labels = encode(tok, ex, 256)
    lp, pos = _by_hand(model, ids, labels)
    terms = []
    for k in pos[: len(answer_ids)]:
        chosen, p1, p2 = ids[k], math.exp(-0.2), math.exp(-2.0)
        teacher = [p1, p2, 1 - p1 - p2] if chosen != other else [p1, 1 - p1]
        t = [x ** (1 / 1.5) for x in teacher]
        t = [x / sum(t) for x in t]
        top = [chosen, other] if chosen != other else [chosen]
        student = [float(lp[k - 1, i]) for i in top]
        student.append(math.log(1 - sum(math.exp(s) for s in student)))
        terms.append(-sum(a * b for a, b in zip(t, student, strict=True)))
    soft = sum(terms) / len(terms)
    hard = -sum(float(lp[k - 1, ids[k]]) for k in pos) / len(pos)
    assert got == pytest.approx(0.6 * soft + 0.4 * hard, rel=1e-5)

    rows[0]["teacher_tokens"][0]["token"] = "not one token of ours"
    bad = load_examples(write_soft_parquet(rows, tmp_path / "c.parquet"))[0]
    assert encode_soft(tok, bad, "tokens", 256, 4).tokens is None  # another tokenizer: hard label only


def test_temperature_and_alpha_schedule() -> None:
    p = torch.tensor([0.7, 0.2, 0.1, 0.0])
    assert torch.allclose(soften(p, 1.0), p)
    flat, sharp = soften(p, 4.0), soften(p, 0.5)
    assert flat[0] < 0.7 < sharp[0] and flat[3] == 0 == sharp[3]
    assert torch.allclose(
        flat[:3], torch.tensor([0.7, 0.2, 0.1]) ** 0.25 / (torch.tensor([0.7, 0.2, 0.1]) ** 0.25).sum()
    )
    assert alpha_at(0, 11, 0.8, 0.2) == 0.8 and alpha_at(10, 11, 0.8, 0.2) == pytest.approx(0.2)
    assert alpha_at(5, 11, 0.8, 0.2) == pytest.approx(0.5) and alpha_at(7, 11, 0.3, None) == 0.3
    assert parse_alpha("0.8:0.2") == (0.8, 0.2) and parse_alpha("0.5") == (0.5, None)
    assert format_alpha(parse_alpha("0.8:0.2")) == "0.8:0.2"
    for bad in ("1.5", "a", "0.1:0.2:0.3"):
        with pytest.raises(UserError, match=r"Soft-label alpha \(--alpha\): give a number in 0\.\.1"):
            TRAIN["alpha"].parse(bad)
    with pytest.raises(UserError, match=r"--temperature"):
        RunConfig(soft_labels="candidates", soft_temperature=0).check_soft()
    with pytest.raises(UserError, match=r"--alpha"):
        RunConfig(soft_labels="candidates", soft_alpha=0.2, soft_alpha_end=1.2).check_soft()


def _soft_cfg(tiny_model: Path, data: Path, out: Path) -> RunConfig:
    return RunConfig(base_model=str(tiny_model), data_path=str(data), out_dir=str(out), max_steps=8, epochs=10,
                     batch_size=4, eval_every=4, save_every=4, learning_rate=1e-2, precision="fp32", threads=1,
                     soft_labels="candidates", soft_temperature=2.0, soft_alpha=0.8, soft_alpha_end=0.2)  # fmt: skip


def test_soft_run_resumed_repeats_the_uninterrupted_run(tiny_model: Path, tmp_path: Path) -> None:
    from train.trainer import train

    data = write_soft_parquet(soft_rows(24, 8), tmp_path / "soft.parquet")
    whole: list[ev.Event] = []
    train(_soft_cfg(tiny_model, data, tmp_path / "whole"), whole.append)

    class Killed(Exception):
        pass

    def die_after_first_checkpoint(e: ev.Event) -> None:
        if isinstance(e, ev.CheckpointSaved):
            raise Killed

    cfg = _soft_cfg(tiny_model, data, tmp_path / "cut")
    with pytest.raises(Killed):
        train(cfg, die_after_first_checkpoint)
    resumed: list[ev.Event] = []
    train(cfg, resumed.append)
    assert ev.RunResumed(4, str(tmp_path / "cut" / "checkpoints" / "step-000004")) in resumed
    start = next(e for e in whole if isinstance(e, ev.TrainingStarted))
    assert start.n_soft == 24
    losses = {e.step: e.loss for e in whole if isinstance(e, ev.StepLogged)}
    again = {e.step: e.loss for e in resumed if isinstance(e, ev.StepLogged)}
    assert list(again) == [5, 6, 7, 8]
    assert [again[s] for s in again] == [losses[s] for s in again]  # bit for bit
    evals = [(e.step, e.eval_loss) for e in whole if isinstance(e, ev.EvalLogged)]
    assert evals[-1] in [(e.step, e.eval_loss) for e in resumed if isinstance(e, ev.EvalLogged)]


def test_soft_labels_on_a_file_without_them_fail_clearly(tiny_model: Path, tmp_path: Path, triage_file: Path) -> None:
    from train.trainer import train

    cfg = _soft_cfg(tiny_model, triage_file, tmp_path / "run")
    with pytest.raises(ValueError, match="no row has two candidate answers"):
        train(cfg, lambda e: None)
