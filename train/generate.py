"""Batched greedy generation for evaluation: the student (base + optional LoRA adapter, merged for speed)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import torch

from curation.progress import ProgressFn, report
from train.trainer import pick_device, pick_precision


@dataclass
class Generation:
    """One answer with what it cost: latency is the wall time of the batch it was generated in."""

    text: str
    latency_ms: float
    new_tokens: int


def load_for_inference(
    base_model: str, adapter_path: str | None = None, device: str = "auto", precision: str = "auto"
) -> tuple[Any, Any, str]:
    """Model (adapter merged, bf16 weights where bf16 is native), tokenizer and the device."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from train.models import resolve_model

    dev = pick_device(device)
    path = resolve_model(base_model)
    tokenizer = AutoTokenizer.from_pretrained(adapter_path or path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # generation continues every row at the same position
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_path).merge_and_unload()
    if inference_precision(precision, dev) == "bf16":
        model = model.to(torch.bfloat16)
    model.to(dev).eval()
    return model, tokenizer, dev


def inference_precision(requested: str, device: str) -> str:
    """bf16 weights on GPUs; on CPUs fp32 unless asked: measured on the 2-core AVX512-BF16 box (SmolLM2-135M, 16
    prompts of ~130 tokens, 20 new tokens), bf16 weights gave 65 tok/s batched and 21 one at a time vs fp32 73
    and 24, so the FIELD_NOTES' bf16 gain did not reproduce."""
    return pick_precision(requested, device)


def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    *,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    device: str = "cpu",
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> list[Generation]:
    """Greedy answers for ``prompts`` (in their order), generated in batches of similar length (left-padded, so
    every row continues at the same position; a batch stops when all its rows have ended)."""
    ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]  # once; batches are built from these
    order = sorted(range(len(prompts)), key=lambda i: len(ids[i]))
    out: list[Generation | None] = [None] * len(prompts)
    stop_ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else None
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    done = 0
    for s in range(0, len(order), batch_size):
        report(progress, cancel, "generate", done, len(prompts))
        idx = order[s : s + batch_size]
        width = max(len(ids[i]) for i in idx)
        input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            n = len(ids[i])
            input_ids[row, width - n :] = torch.tensor(ids[i])
            mask[row, width - n :] = 1
        t0 = time.perf_counter()
        with torch.inference_mode():
            seq = model.generate(
                input_ids=input_ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
                do_sample=False, eos_token_id=stop_ids, pad_token_id=pad,
            )  # fmt: skip
        ms = (time.perf_counter() - t0) * 1000
        new = seq[:, width:].tolist()
        for row, i in enumerate(idx):
            toks = new[row]
            n = next((k + 1 for k, t in enumerate(toks) if stop_ids and t in stop_ids), len(toks))
            out[i] = Generation(tokenizer.decode(toks[:n], skip_special_tokens=True).strip(), ms, n)
        done += len(idx)
    report(progress, cancel, "generate", done, len(prompts))
    return [g for g in out if g is not None]
