"""Training and generation throughput of the student, each side in a fresh subprocess (peak memory per side).

    nice python bench/train_bench.py [--model smollm2] [--steps 8] [--batch 8] [--gen 64] [--gen-batch 32]
                                     [--new-tokens 48]

Training: our loop (train.trainer: assistant-only weighted loss, logits at answer positions only, length-grouped
batches, LoRA dropout masks from a fast bit generator) vs a plain transformers
``Trainer`` + peft with the same model, examples (same token ids and labels), batch size, LoRA config, precision
and step count. Tokens/s counts real (non-padding) tokens over the timed steps; one warm-up forward/backward runs
first on each side so neither pays the allocator's first-step cost. Targets: ours / Trainer >= 1.5x.
Generation: greedy answers (HF ``generate`` with its KV cache, inference mode, stop at EOS) for the held-out
prompts through ``train.generate.generate``: batches of ``--gen-batch`` length-sorted, left-padded prompts vs the
same function at batch 1 (one request at a time: no padding at all). Target >= 5x.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = (
    "order parcel charged twice refund account login password app crash invoice subscription cancel late "
    "address tracking card payment declined please help urgent since days customer support broken"
).split()
INTENTS = ["shipping", "billing", "login", "bug", "cancel"]


def make_data(path: Path, n_train: int, n_held: int, seed: int = 0) -> Path:
    """Support-ticket-like examples of varied length (5-90 words), as a training file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    rows = []
    for i in range(n_train + n_held):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 90)))
        ans = json.dumps({"intent": rng.choice(INTENTS), "urgency": rng.choice(["low", "high"])})
        rows.append({"record_id": i, "split": "train" if i < n_train else "heldout", "slice": "s", "weight": 1.0,
                     "messages": [{"role": "system", "content": "Classify the ticket. Answer as JSON."},
                                  {"role": "user", "content": text}, {"role": "assistant", "content": ans}],
                     "teacher_response": ans, "reference": None})  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup(args: argparse.Namespace) -> tuple:
    import torch

    from train.config import RunConfig
    from train.data import collate, encode_all, load_examples, weighted_loss
    from train.trainer import add_lora, load_student

    torch.manual_seed(0)
    tok, base, _ = load_student(args.model, "cpu")
    cfg = RunConfig(base_model=args.model, batch_size=args.batch, max_steps=args.steps, precision="fp32")
    model = add_lora(base, cfg)
    train_ex = [e for e in load_examples(args.data) if e.split == "train"]
    enc = encode_all(tok, train_ex, cfg.max_length)
    # Warm-up: one forward/backward so the first timed step does not carry the allocator's start-up cost.
    b = collate(enc[:2], tok.pad_token_id)  # small, so the warm-up does not set either side's peak memory
    weighted_loss(model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits, b["labels"],
                  b["weights"]).backward()  # fmt: skip
    model.zero_grad(set_to_none=True)
    return tok, model, cfg, enc


def part_ours(args: argparse.Namespace) -> dict:
    import torch

    from train.data import batch_order, collate, forward_loss
    from train.lora_dropout import use_fast_dropout

    tok, model, cfg, enc = _setup(args)
    use_fast_dropout(model, 0)  # as train.trainer.train does
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate)
    batches = batch_order([len(e.input_ids) for e in enc], cfg.batch_size, 0, 0, True)[: args.steps]
    tokens = 0
    t0 = time.perf_counter()
    for idx in batches:  # the loop of train.trainer.train, minus events and checkpoints
        b = collate([enc[i] for i in idx], tok.pad_token_id)
        loss = forward_loss(model, b)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(b["attention_mask"].sum())
    dt = time.perf_counter() - t0
    return {"tokens": tokens, "seconds": dt, "tokens_per_s": tokens / dt, "peak_rss_mib": peak_rss_mib()}


def part_trainer(args: argparse.Namespace) -> dict:
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    tok, model, cfg, enc = _setup(args)
    ds = [{"input_ids": e.input_ids, "labels": e.labels, "attention_mask": [1] * len(e.input_ids)} for e in enc]
    tokens = sum(len(e.input_ids) for e in enc)
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(output_dir=out, per_device_train_batch_size=args.batch, max_steps=args.steps,
                                  learning_rate=cfg.learning_rate, report_to=[], save_strategy="no", logging_steps=1000,
                                  use_cpu=True, dataloader_num_workers=0, max_grad_norm=1.0, seed=0,
                                  disable_tqdm=True)  # fmt: skip
        trainer = Trainer(model=model, args=targs, train_dataset=ds,
                          data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100))  # fmt: skip
        t0 = time.perf_counter()
        trainer.train()
        dt = time.perf_counter() - t0
    # One epoch (steps x batch = examples): the Trainer sees every example once, in its own random order.
    return {"tokens": tokens, "seconds": dt, "tokens_per_s": tokens / dt, "peak_rss_mib": peak_rss_mib()}


def part_generate(args: argparse.Namespace) -> dict:
    from train.data import load_examples, prompt_text
    from train.generate import generate, load_for_inference

    model, tok, dev = load_for_inference(args.model, precision=args.precision)
    held = [e for e in load_examples(args.data) if e.split != "train"][: args.gen]
    prompts = [prompt_text(tok, e.prompt_messages) for e in held]
    generate(model, tok, prompts[:2], batch_size=2, max_new_tokens=4, device=dev)  # warm-up
    out = {}
    for name, bs in (("batched", args.gen_batch), ("single", 1)):
        t0 = time.perf_counter()
        gens = generate(model, tok, prompts, batch_size=bs, max_new_tokens=args.new_tokens, device=dev)
        dt = time.perf_counter() - t0
        out[name] = {"requests_per_s": len(gens) / dt, "tokens_per_s": sum(g.new_tokens for g in gens) / dt}
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def run_part(name: str, args: argparse.Namespace, extra: list[str] | None = None) -> dict:
    cmd = [sys.executable, __file__, "--part", name, "--data", str(args.data), "--model", args.model,
           "--steps", str(args.steps), "--batch", str(args.batch), "--gen", str(args.gen),
           "--new-tokens", str(args.new_tokens), "--gen-batch", str(args.gen_batch), *(extra or [])]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{name} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--gen", type=int, default=64, help="prompts for the generation benchmark")
    p.add_argument("--gen-batch", type=int, default=32, help="generation batch size of the batched side")
    p.add_argument("--new-tokens", type=int, default=48, help="answer length cap (a triage JSON answer is ~40)")
    p.add_argument("--precision", default="auto", help="generation precision (auto: fp32 on CPU, bf16 on GPU)")
    p.add_argument("--only", choices=["train", "gen"], help="run one of the two benchmarks")
    p.add_argument("--part", choices=["ours", "trainer", "generate"], help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.part:
        fn = {"ours": part_ours, "trainer": part_trainer, "generate": part_generate}[args.part]
        print(json.dumps(fn(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        # steps x batch examples: one epoch, so both sides see exactly the same examples once
        args.data = make_data(Path(tmp) / "bench.parquet", args.steps * args.batch, args.gen)
        from train.models import resolve_model

        resolve_model(args.model)  # convert once, outside the timings
        if args.only in (None, "train"):
            ours, hf = run_part("ours", args), run_part("trainer", args)
            n = args.steps * args.batch
            print(f"model {args.model}, {n} examples (5-90 words), batch {args.batch}, {args.steps} steps, fp32")
            print(f"{'training':<28}{'tokens/s':>10}{'peak RSS MiB':>14}")
            print(f"{'ours (length-grouped)':<28}{ours['tokens_per_s']:>10.0f}{ours['peak_rss_mib']:>14.0f}")
            print(f"{'transformers Trainer+peft':<28}{hf['tokens_per_s']:>10.0f}{hf['peak_rss_mib']:>14.0f}")
            print(
                f"ratio ours / Trainer: {ours['tokens_per_s'] / hf['tokens_per_s']:.2f}x (target >= 1.5x)", flush=True
            )
        if args.only in (None, "gen"):
            gen = run_part("generate", args, ["--precision", args.precision])
            b, s = gen["batched"], gen["single"]
            print(f"generation ({args.gen} prompts, batch {args.gen_batch}, {args.new_tokens} new tokens, "
                  f"precision {args.precision}): batched {b['requests_per_s']:.2f} req/s ({b['tokens_per_s']:.0f} "
                  f"tok/s), one at a time {s['requests_per_s']:.2f} req/s ({s['tokens_per_s']:.0f} tok/s), "
                  f"peak RSS {gen['peak_rss_mib']:.0f} MiB")  # fmt: skip
            print(f"ratio batched / one at a time: {b['requests_per_s'] / s['requests_per_s']:.2f}x (target >= 5x)")


if __name__ == "__main__":
    main()
