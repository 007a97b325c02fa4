"""A faster dropout for the LoRA inputs when training on the CPU.

peft puts an ``nn.Dropout`` in front of every adapter (four per layer with q, k, v, o targets). On the CPU its
mask comes from ``bernoulli_``, a scalar Mersenne-Twister loop: profiled on SmolLM2-135M (batch 8 x ~130 tokens),
17% of a training step went to drawing those masks. Here the mask comes from numpy's PCG64 ``random_raw`` (64
random bits per call, four 16-bit draws per word), turned into a float mask of 0 or 1/(1-p) in numpy and applied
with one multiply, which autograd differentiates as dropout's backward (grad x mask). Forward + backward of one
mask: 2.7 ms against 9.3 ms for ``F.dropout``. Same distribution up to p's 16-bit resolution (p = 0.05 is drawn as
3277/65536 = 0.050003), independent masks per module and per step, reproducible from the run's seed; on CUDA the
stock dropout is kept (it is fast there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class FastDropout(nn.Module):
    """Inverted dropout drawing its CPU masks from a shared PCG64 bit generator."""

    def __init__(self, p: float, bitgen: np.random.PCG64) -> None:
        super().__init__()
        self.p = p
        self.bitgen = bitgen
        self.threshold = round(p * 65536)  # a 16-bit draw below this drops the element
        self.keep_scale = np.float32(1.0 / (1.0 - self.threshold / 65536)) if self.threshold < 65536 else np.float32(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, True)
        n = x.numel()
        draws = self.bitgen.random_raw((n + 3) // 4).view(np.uint16)[:n]
        mask = np.where(draws >= self.threshold, self.keep_scale, np.float32(0))
        return x * torch.from_numpy(mask).view(x.shape).to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_fast_dropout(model: Any, seed: int) -> np.random.PCG64 | None:
    """Replace every LoRA ``nn.Dropout`` of a peft model with ``FastDropout`` sharing one bit generator seeded from
    ``seed``; return the generator (its ``state`` goes into checkpoints), or None when the model has no dropout."""
    bitgen = np.random.PCG64(seed)
    replaced = 0
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if not isinstance(drops, nn.ModuleDict):
            continue
        for name, drop in list(drops.items()):
            if isinstance(drop, nn.Dropout) and drop.p > 0:
                fast = FastDropout(drop.p, bitgen)
                fast.train(drop.training)
                drops[name] = fast
                replaced += 1
    return bitgen if replaced else None
