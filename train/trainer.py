"""The LoRA training loop run inside the worker subprocess.

Why our own loop rather than ``transformers.Trainer``: assistant-only loss with per-record weights, length-grouped
batches and bf16 autocast on CPU with no per-step overhead (bench/train_bench.py measures the difference), and
events we stream as JSON lines. Checkpoints are written atomically; a killed run resumes from the newest one.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from train import events as ev
from train.config import SOFT_MODES, RunConfig
from train.data import Encoded, Example, batch_order, collate, encode_all, forward_loss, load_examples
from train.lora_dropout import use_fast_dropout
from train.models import resolve_model
from train.sampling import stratified_sample
from train.soft import SoftEncoded, alpha_at, encode_soft, soft_batch, soft_forward_loss

Emit = Callable[[ev.Event], None]


def pick_device(requested: str) -> str:
    """``cuda`` when asked for or available under ``auto``, else ``cpu``."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def pick_precision(requested: str, device: str) -> str:
    """``bf16`` or ``fp32`` for autocast."""
    if requested != "auto":
        return requested
    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    # Measured on the 2-core AVX512-BF16 box (torch 2.13, SmolLM2-135M, LoRA, batch 8 x 133 tokens, same batch
    # alternated in one process): fp32 4.7 s/step, bf16 autocast 15 s/step, bf16 base weights 7-8 s/step.
    # So CPU training defaults to fp32; ask for bf16 explicitly to try it on other CPUs.
    return "fp32"


def autocast(device: str, precision: str) -> Any:
    """An autocast context for bf16, or a no-op for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return nullcontext()


def hardware_info(device: str, precision: str) -> dict[str, Any]:
    """What the run ran on, recorded with it."""
    info: dict[str, Any] = {
        "device": device,
        "precision": precision,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def load_student(base_model: str, device: str) -> tuple[Any, Any, str]:
    """Tokenizer, base model (fp32 weights on ``device``) and the resolved path."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(base_model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)
    return tokenizer, model, path


def add_lora(model: Any, cfg: RunConfig) -> Any:
    """Wrap the model with LoRA adapters on ``cfg.target_modules`` (all linear layers if none of them exist)."""
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets: list[str] | str = [t for t in cfg.target_modules if t in names] or "all-linear"
    lora = LoraConfig(
        task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=targets,
    )  # fmt: skip
    return get_peft_model(model, lora)


def eval_loss(model: Any, data: list[Encoded], cfg: RunConfig, pad_id: int, device: str, precision: str) -> float:
    """Unweighted mean answer-token loss over the held-out examples (batched by length)."""
    model.eval()
    order = sorted(range(len(data)), key=lambda i: len(data[i].input_ids))
    total, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(order), cfg.batch_size):
            items = [Encoded(data[i].input_ids, data[i].labels, 1.0) for i in order[s : s + cfg.batch_size]]
            b = {k: v.to(device) for k, v in collate(items, pad_id).items()}
            with autocast(device, precision):
                total += float(forward_loss(model, b)) * len(items)
            n += len(items)
    model.train()
    return total / max(n, 1)


def _save_adapter(model: Any, dest: Path, tokenizer: Any, extra: dict[str, Any] | None = None) -> None:
    # Written beside and renamed into place, so a kill mid-save leaves the previous checkpoint intact.
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if extra is not None:
        torch.save(extra, tmp / "state.pt")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    found = sorted((out_dir / "checkpoints").glob("step-*[0-9]"))
    found = [p for p in found if (p / "state.pt").exists()]
    return found[-1] if found else None


def train(cfg: RunConfig, emit: Emit) -> ev.RunFinished:
    """Train LoRA adapters as ``cfg`` says, emitting events (``train.events``); return the final one."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    precision = pick_precision(cfg.precision, device)
    emit(ev.PhaseStarted("load"))
    tokenizer, base, model_path = load_student(cfg.base_model, device)
    model = add_lora(base, cfg)
    dropout_rng = use_fast_dropout(model, cfg.seed)
    examples = load_examples(cfg.data_path)
    train_ex = [e for e in examples if e.split == "train"]
    held_ex = stratified_sample([e for e in examples if e.split != "train"], cfg.eval_max_examples,
                                slice_of=lambda e: e.slice, seed=cfg.seed)  # fmt: skip
    if not train_ex:
        raise ValueError("the training file has no rows with split = 'train'")
    train_data = encode_all(tokenizer, train_ex, cfg.max_length)
    held_data = encode_all(tokenizer, held_ex, cfg.max_length)
    soft_data = encode_soft_all(tokenizer, train_ex, cfg)
    pad_id = int(tokenizer.pad_token_id)
    steps_per_epoch = math.ceil(len(train_data) / cfg.batch_size)
    total = max(1, min(cfg.max_steps, math.ceil(cfg.epochs * steps_per_epoch)))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    def lr_factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / (cfg.warmup_steps + 1)
        return max(0.0, (total - step) / max(1, total - cfg.warmup_steps))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    state = {"step": 0, "best_eval_loss": None, "best_step": None, "bad_evals": 0}
    ckpt = latest_checkpoint(out)
    if ckpt is not None:
        saved = torch.load(ckpt / "state.pt", weights_only=False)
        set_peft_model_state_dict(model, load_file(ckpt / "adapter_model.safetensors"))
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        state = saved["state"]
        torch.set_rng_state(saved["rng"])
        if dropout_rng is not None and saved.get("dropout_rng"):
            dropout_rng.state = saved["dropout_rng"]
        emit(ev.RunResumed(step=state["step"], checkpoint=str(ckpt)))
    emit(ev.TrainingStarted(
        total_steps=total, n_train=len(train_data), n_heldout=len(held_data), model_path=model_path,
        hardware=hardware_info(device, precision), trainable_params=sum(p.numel() for p in params),
        n_soft=sum(1 for s in soft_data if s.has_soft) if soft_data is not None else None,
    ))  # fmt: skip
    model.train()
    stopped_early = False
    loss_val = float("nan")
    started = time.monotonic()
    first_step = state["step"]
    epoch_batches: dict[int, list[list[int]]] = {}
    lengths = [len(e.input_ids) for e in train_data]

    def do_eval(step: int) -> bool:
        """Evaluate, keep the best adapter; True when patience has run out."""
        if not held_data:
            return False
        emit(ev.PhaseStarted("eval", step))
        el = eval_loss(model, held_data, cfg, pad_id, device, precision)
        better = state["best_eval_loss"] is None or el < state["best_eval_loss"]
        if better:
            state.update(best_eval_loss=el, best_step=step, bad_evals=0)
            _save_adapter(model, out / "best", tokenizer)
        else:
            state["bad_evals"] += 1
        emit(ev.EvalLogged(step=step, eval_loss=el, best=better))
        return state["bad_evals"] >= cfg.patience

    if state["step"] == 0 and held_data:
        do_eval(0)  # the untuned held-out loss, so the curve starts at the baseline
    while state["step"] < total:
        step = state["step"]
        epoch = step // steps_per_epoch
        if epoch not in epoch_batches:
            epoch_batches = {epoch: batch_order(lengths, cfg.batch_size, cfg.seed, epoch, cfg.group_by_length)}
        idx = epoch_batches[epoch][step % steps_per_epoch]
        t0 = time.monotonic()
        if soft_data is None:
            b = {k: v.to(device) for k, v in collate([train_data[i] for i in idx], pad_id).items()}
            with autocast(device, precision):
                loss = forward_loss(model, b)
        else:
            sb = soft_batch([soft_data[i] for i in idx], pad_id)
            sb.batch = b = {k: v.to(device) for k, v in sb.batch.items()}
            alpha = alpha_at(step, total, cfg.soft_alpha, cfg.soft_alpha_end)
            with autocast(device, precision):
                loss = soft_forward_loss(model, sb, alpha, cfg.soft_temperature)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        dt = time.monotonic() - t0
        loss_val = float(loss.detach())
        state["step"] = step = step + 1
        per_step = (time.monotonic() - started) / (step - first_step)
        emit(ev.StepLogged(
            step=step, total_steps=total, loss=loss_val, lr=float(sched.get_last_lr()[0]),
            tokens_per_s=int(b["attention_mask"].sum()) / max(dt, 1e-9), eta_s=per_step * (total - step),
            epoch=step / steps_per_epoch,
        ))  # fmt: skip
        stop = False
        if step % cfg.eval_every == 0 or step == total:
            stop = do_eval(step)
        if step % cfg.save_every == 0 or step == total or stop:
            save_checkpoint(model, tokenizer, opt, sched, state, out, cfg.keep_checkpoints, dropout_rng)
            emit(ev.CheckpointSaved(step))
        if stop:
            stopped_early = True
            break
    if not held_data:
        _save_adapter(model, out / "best", tokenizer)
        state.update(best_step=state["step"])
    merged = merge_best(model_path, out, device) if cfg.merge else None
    done = ev.RunFinished(
        step=state["step"], final_loss=loss_val, best_step=state["best_step"], best_eval_loss=state["best_eval_loss"],
        adapter_path=str(out / "best"), merged_path=merged, stopped_early=stopped_early, n_train=len(train_data),
        n_heldout=len(held_data),
    )  # fmt: skip
    emit(done)
    return done


def encode_soft_all(tokenizer: Any, train_ex: list[Example], cfg: RunConfig) -> list[SoftEncoded] | None:
    """The training rows as soft-label sequences (``train.soft``), or None when soft labels are off. Raises
    ``ValueError`` when no row has a soft target: the file was not exported for soft labels, or (tokens) the
    teacher's tokens are not the student's."""
    if cfg.soft_labels == "off":
        return None
    if cfg.soft_labels not in SOFT_MODES:
        raise ValueError(f"soft_labels must be one of {', '.join(SOFT_MODES)}, not {cfg.soft_labels!r}")
    out = [encode_soft(tokenizer, e, cfg.soft_labels, cfg.max_length, cfg.soft_max_candidates) for e in train_ex]
    if not any(s.has_soft for s in out):
        why = ("no row has two candidate answers (train on a dataset version so the export computes them from the "
               "teachers' logprobs)" if cfg.soft_labels == "candidates" else
               "no row's teacher tokens are the student's tokens (token-level distillation needs a teacher with the "
               "student's tokenizer; use candidates)")  # fmt: skip
        raise ValueError(f"soft labels ({cfg.soft_labels}): {why}")
    return out


def save_checkpoint(
    model: Any,
    tokenizer: Any,
    opt: Any,
    sched: Any,
    state: dict,
    out: Path,
    keep: int,
    dropout_rng: np.random.PCG64 | None = None,
) -> Path:
    """Adapter + optimizer + scheduler + loop state + RNG states; keep the newest ``keep`` checkpoints."""
    dest = out / "checkpoints" / f"step-{state['step']:06d}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    extra = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "state": dict(state),
             "rng": torch.get_rng_state(), "dropout_rng": dropout_rng.state if dropout_rng is not None else None}  # fmt: skip
    _save_adapter(model, dest, tokenizer, extra)
    for old in sorted((out / "checkpoints").glob("step-*[0-9]"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return dest


def merge_best(model_path: str, out: Path, device: str) -> str:
    """Merge the best adapter into a copy of the base model (a plain transformers folder); return its path."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(out / "best")).merge_and_unload()
    dest = out / "merged"
    merged.save_pretrained(dest)
    AutoTokenizer.from_pretrained(str(out / "best")).save_pretrained(dest)
    return str(dest)
