"""The fast LoRA dropout: dropout's distribution and gradient, reproducibility, and its place in a peft model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from trainfix import triage_rows, write_parquet

from train import events as ev
from train.config import RunConfig
from train.lora_dropout import FastDropout, use_fast_dropout
from train.trainer import add_lora, load_student, train


def test_drops_a_fraction_p_and_scales_the_rest() -> None:
    drop = FastDropout(0.1, np.random.PCG64(0))
    x = torch.ones(400, 1000)
    y = drop(x)
    dropped = float((y == 0).float().mean())
    assert dropped == pytest.approx(0.1, abs=0.003)  # 400k draws: 3 standard deviations is ~0.0014
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - drop.threshold / 65536)))
    assert float(y.mean()) == pytest.approx(1.0, abs=0.01)  # inverted dropout keeps the expectation
    drop.eval()
    assert drop(x) is x


def test_gradient_is_the_mask_and_masks_differ_per_call_but_repeat_per_seed() -> None:
    x = torch.randn(64, 96, requires_grad=True)
    a = FastDropout(0.2, np.random.PCG64(7))
    y = a(x)
    y.sum().backward()
    mask = y.detach() / x.detach()
    assert torch.allclose(x.grad, mask, atol=1e-6)
    assert not torch.equal(a(x) == 0, y == 0)  # a fresh mask per call
    b = FastDropout(0.2, np.random.PCG64(7))
    assert torch.equal(b(x.detach()) == 0, y.detach() == 0)  # same seed, same masks
    assert FastDropout(0.0, np.random.PCG64(0))(x) is x


def test_replaces_every_lora_dropout_of_a_peft_model(tiny_model: Path) -> None:
    _, base, _ = load_student(str(tiny_model), "cpu")
    model = add_lora(base, RunConfig(lora_dropout=0.05))
    n_lora = sum(1 for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), torch.nn.ModuleDict))
    bitgen = use_fast_dropout(model, seed=3)
    fast = [m for m in model.modules() if isinstance(m, FastDropout)]
    assert bitgen is not None and len(fast) == n_lora > 0
    assert all(m.bitgen is bitgen for m in fast)  # one stream, so a checkpoint can save and restore it
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    ids = torch.randint(0, 100, (2, 12))
    model.train()
    model(input_ids=ids).logits.sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "lora_A" in n)
    assert use_fast_dropout(add_lora(load_student(str(tiny_model), "cpu")[1], RunConfig(lora_dropout=0.0)), 0) is None


def test_a_resumed_run_repeats_the_uninterrupted_run_exactly(tiny_model: Path, tmp_path: Path) -> None:
    """Checkpoints carry the dropout stream: resuming from step 4 gives the losses of steps 5-8 bit for bit."""
    data = write_parquet(triage_rows(32, 0), tmp_path / "train.parquet")

    def run(out: Path) -> dict[int, float]:
        cfg = RunConfig(base_model=str(tiny_model), data_path=str(data), out_dir=str(out), max_steps=8, epochs=100,
                        batch_size=4, save_every=4, keep_checkpoints=5, lora_dropout=0.3, precision="fp32",
                        threads=1)  # fmt: skip
        events: list[ev.Event] = []
        train(cfg, events.append)
        return {e.step: e.loss for e in events if isinstance(e, ev.StepLogged)}

    full = run(tmp_path / "full")
    resumed_out = tmp_path / "resumed"
    shutil.copytree(tmp_path / "full" / "checkpoints" / "step-000004", resumed_out / "checkpoints" / "step-000004")
    resumed = run(resumed_out)
    assert sorted(resumed) == [5, 6, 7, 8]
    assert resumed == {s: full[s] for s in (5, 6, 7, 8)}
