"""Batched generation for evaluation and serving: the student (base + optional LoRA adapter, merged for speed).

Every answer carries the log-probability of each generated token (with its top alternatives when asked) and the
student's confidence, ``exp(mean token logprob)``: the one definition (``confidence``) that evaluation, calibration
and the serving gateway's fallback share.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from curation.progress import ProgressFn, report
from train.trainer import pick_device, pick_precision


def confidence(logprobs: Sequence[float], temperature: float = 1.0) -> float | None:
    """``exp(mean(logprobs) / temperature)``: the probability-like confidence of an answer from its token logprobs
    (temperature < 1 lowers an over-confident student's confidence, > 1 raises it; calibration fits it on held-out).
    None for no tokens."""
    if not logprobs:
        return None
    return math.exp(sum(logprobs) / len(logprobs) / temperature)


@dataclass
class Generation:
    """One answer with what it cost (latency is the wall time of the batch it was generated in) and how sure the
    student was: ``token_ids``/``logprobs`` per generated token (the end-of-turn token left out, as a provider's
    ``logprobs.content`` leaves it out), ``top`` = per token the top alternatives as (token id, logprob), best first
    (empty unless asked for). ``finish_reason``: ``stop`` (end of turn) | ``length`` (the token cap).
    ``prompt_tokens``: the prompt's length in tokens (a served request's usage)."""

    text: str
    latency_ms: float
    new_tokens: int
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top: list[list[tuple[int, float]]] = field(default_factory=list)
    finish_reason: str = "stop"
    prompt_tokens: int = 0

    @property
    def confidence(self) -> float | None:
        """exp(mean logprob of the generated tokens); see ``confidence``."""
        return confidence(self.logprobs)

    def openai_logprobs(self, tokenizer: Any, top_logprobs: int = 0) -> list[dict[str, Any]]:
        """The tokens as OpenAI's ``choices[0].logprobs.content``: ``{token, logprob, bytes, top_logprobs}``."""
        ids = list(self.token_ids) + [t for alts in self.top for t, _ in alts[:top_logprobs]]
        words = tokenizer.batch_decode([[t] for t in ids])  # one call into the Rust tokenizer, not one per token
        texts = dict(zip(ids, words, strict=True))
        out = []
        for k, (tid, lp) in enumerate(zip(self.token_ids, self.logprobs, strict=True)):
            alts = self.top[k][:top_logprobs] if k < len(self.top) else []
            out.append({"token": texts[tid], "logprob": lp, "bytes": list(texts[tid].encode()),
                        "top_logprobs": [{"token": texts[a], "logprob": alp, "bytes": list(texts[a].encode())}
                                         for a, alp in alts]})  # fmt: skip
        return out


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
    max_new_tokens: int | Sequence[int] = 64,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_logprobs: int = 0,
    device: str = "cpu",
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    logits_processor: Callable[[int], Any] | None = None,
) -> list[Generation]:
    """Answers for ``prompts`` (in their order), generated in batches of similar length (left-padded, so every row
    continues at the same position; a batch stops when all its rows have ended). Greedy at ``temperature`` 0, else
    sampled (with ``top_p``). ``max_new_tokens`` may be one cap per prompt (a batch runs to its largest; each answer
    is cut at its own). Token logprobs are the model's own distribution (raw logits, whatever the sampling
    temperature), with the ``top_logprobs`` best alternatives per token when asked; they are computed from the
    logits ``generate`` keeps per step (steps x rows x vocabulary floats: 63 MB for 8 rows of 40 tokens on
    SmolLM2's 49k vocabulary). ``logits_processor``: given a batch's prompt width (where its generated tokens
    start), the transformers logits processor(s) for it (``train.constrain.LabelConstraint.processor``); the
    logprobs stay the model's own, before any processor."""
    caps = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]  # once; batches are built from these
    order = sorted(range(len(prompts)), key=lambda i: len(ids[i]))
    out: list[Generation | None] = [None] * len(prompts)
    stop_ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else None
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    sampling: dict[str, Any] = {"do_sample": False}
    if temperature > 0:
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}  # no top-k, as OpenAI
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
            res = model.generate(
                input_ids=input_ids.to(device), attention_mask=mask.to(device),
                max_new_tokens=max(caps[i] for i in idx), eos_token_id=stop_ids, pad_token_id=pad,
                output_logits=True, return_dict_in_generate=True, **sampling,
                logits_processor=logits_processor(width) if logits_processor is not None else None,
            )  # fmt: skip
            new_t = res.sequences[:, width:]
            chosen, top = _token_logprobs(res.logits, new_t, top_logprobs)
        ms = (time.perf_counter() - t0) * 1000
        new = new_t.tolist()
        for row, i in enumerate(idx):
            toks = new[row][: caps[i]]
            end = next((k for k, t in enumerate(toks) if stop_ids and t in stop_ids), None)
            n = len(toks) if end is None else end  # answer tokens, the end-of-turn token left out
            out[i] = Generation(
                tokenizer.decode(toks[:n], skip_special_tokens=True).strip(), ms,
                n + (end is not None), toks[:n], chosen[row][:n], top[row][:n] if top else [],
                "length" if end is None else "stop", len(ids[i]),
            )  # fmt: skip
        done += len(idx)
    report(progress, cancel, "generate", done, len(prompts))
    return [g for g in out if g is not None]


def _token_logprobs(
    logits: Sequence[torch.Tensor], tokens: torch.Tensor, k: int
) -> tuple[list[list[float]], list[list[list[tuple[int, float]]]]]:
    """Per row: the logprob of each chosen token, and (``k`` > 0) per token its ``k`` best as (id, logprob).
    One step at a time (a (rows, vocab) log-softmax each), so no (steps, rows, vocab) copy is made."""
    chosen, top_ids, top_lps = [], [], []
    for t, step in enumerate(logits):
        lp = torch.log_softmax(step.float(), dim=-1)
        chosen.append(lp.gather(1, tokens[:, t : t + 1]).squeeze(1))
        if k > 0:
            v, i = lp.topk(k, dim=-1)
            top_ids.append(i)
            top_lps.append(v)
    rows = torch.stack(chosen, 1).tolist() if chosen else [[] for _ in range(tokens.shape[0])]
    if k <= 0 or not top_ids:
        return rows, []
    ti, tv = torch.stack(top_ids, 1).tolist(), torch.stack(top_lps, 1).tolist()  # (rows, steps, k)
    return rows, [[list(zip(i, v, strict=True)) for i, v in zip(ti[r], tv[r], strict=True)] for r in range(len(ti))]
