"""Training core on a tiny random Llama: labels, weights, batching, loss falls, run recording, cancel and resume."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from trainfix import triage_rows, write_parquet

from curation.workspace import Workspace
from train import events as ev
from train import store
from train.config import RunConfig
from train.data import IGNORE, Encoded, batch_order, collate, encode, load_examples, weighted_loss
from train.launcher import execute_run, run_training, start_run
from train.trainer import latest_checkpoint, train


def test_labels_cover_only_the_assistant_answer(tiny_model: Path, triage_file: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    ex = load_examples(triage_file)[0]
    ids, labels = encode(tok, ex, max_length=256)
    answer_ids = [t for t in labels if t != IGNORE]
    assert tok.decode(answer_ids) == ex.answer + "<|im_end|>\n"
    assert labels[: len(ids) - len(answer_ids)] == [IGNORE] * (len(ids) - len(answer_ids))
    short_ids, short_labels = encode(tok, ex, max_length=len(answer_ids) + 20)
    assert len(short_ids) == len(answer_ids) + 20  # prompt cut from the left, answer kept whole
    assert [t for t in short_labels if t != IGNORE] == answer_ids


def test_weighted_loss_scales_each_example_by_its_weight() -> None:
    logits = torch.zeros(2, 3, 4)
    logits[0, 0, 1] = 2.0  # example 0 predicts its label well, example 1 is uniform
    labels = torch.tensor([[IGNORE, 1, IGNORE], [IGNORE, 2, IGNORE]])
    lp = torch.log_softmax(logits, dim=-1)
    l0, l1 = -float(lp[0, 0, 1]), -float(lp[1, 0, 2])
    got = weighted_loss(logits, labels, torch.tensor([1.0, 3.0]))
    assert float(got) == pytest.approx((l0 + 3 * l1) / 2, rel=1e-6)
    assert float(weighted_loss(logits, labels, torch.tensor([0.0, 1.0]))) == pytest.approx(l1 / 2, rel=1e-6)


def test_batches_are_grouped_by_length_and_deterministic() -> None:
    lengths = [(i * 37) % 101 + 5 for i in range(256)]
    batches = batch_order(lengths, 8, seed=3, epoch=0, group_by_length=True)
    assert sorted(i for b in batches for i in b) == list(range(256))
    assert batches == batch_order(lengths, 8, seed=3, epoch=0, group_by_length=True)
    assert batches != batch_order(lengths, 8, seed=3, epoch=1, group_by_length=True)

    def padding(bs: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in bs)

    assert padding(batches) * 4 < padding(batch_order(lengths, 8, seed=3, epoch=0, group_by_length=False))
    batch = collate([Encoded([5, 6, 7], [IGNORE, 6, 7], 2.0), Encoded([8], [8], 1.0)], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [8, IGNORE, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_training_lowers_the_heldout_loss_and_saves_a_peft_adapter(tiny_model: Path, triage_file: Path,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    events: list[ev.Event] = []
    cfg = RunConfig(base_model=str(tiny_model), data_path=str(triage_file), out_dir=str(tmp_path / "run"),
                    max_steps=40, epochs=10, eval_every=10, save_every=20, learning_rate=1e-2,
                    target_modules=["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"],
                    precision="fp32")  # fmt: skip
    done = train(cfg, events.append)
    evals = [e.eval_loss for e in events if isinstance(e, ev.EvalLogged)]
    assert len(evals) == 5  # step 0 (untuned) and every 10 steps
    assert evals[-1] < evals[0] - 0.5
    assert done.best_step == 40 and done.best_eval_loss == min(evals)
    steps = [e for e in events if isinstance(e, ev.StepLogged)]
    assert [e.step for e in steps] == list(range(1, 41))
    assert all(e.tokens_per_s > 0 and e.eta_s >= 0 for e in steps)

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    best = Path(done.adapter_path)
    assert (best / "adapter_config.json").exists() and (best / "adapter_model.safetensors").exists()
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), str(best))
    assert any("lora_A" in n for n, _ in tuned.named_parameters())


def test_early_stopping_keeps_the_best_checkpoint(tiny_model: Path, triage_file: Path, tmp_path: Path) -> None:
    events: list[ev.Event] = []
    # A learning rate this high makes the held-out loss blow up after the first steps.
    cfg = RunConfig(base_model=str(tiny_model), data_path=str(triage_file), out_dir=str(tmp_path / "run"),
                    max_steps=60, epochs=50, eval_every=2, patience=2, learning_rate=3.0, warmup_steps=0,
                    lora_dropout=0.0, precision="fp32", merge=True)  # fmt: skip
    done = train(cfg, events.append)
    evals = [(e.step, e.eval_loss) for e in events if isinstance(e, ev.EvalLogged)]
    assert done.stopped_early and done.step < 60
    best_step, best_loss = min(evals, key=lambda s: s[1])
    assert done.best_step == best_step and done.best_eval_loss == best_loss
    assert [s for s, _ in evals][-1] == done.step and done.step - best_step == 2 * 2
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(done.merged_path)  # a plain model folder, no peft needed
    assert not any("lora" in n for n, _ in merged.named_parameters())
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[q], base.state_dict()[q])  # the adapter is folded in


def test_run_in_subprocess_is_recorded_cancelled_and_resumed(tiny_model: Path, tmp_path: Path) -> None:
    data = write_parquet(triage_rows(64, 8), tmp_path / "train.parquet")
    ws = Workspace.open(tmp_path / "ws.duckdb")
    cancel = threading.Event()
    seen: list[ev.Event] = []

    def on_event(e: ev.Event) -> None:
        seen.append(e)
        if isinstance(e, ev.CheckpointSaved):
            cancel.set()  # kill the worker right after its first checkpoint

    cfg = RunConfig(base_model=str(tiny_model), max_steps=600, epochs=100, batch_size=4, eval_every=10_000,
                    save_every=5, precision="fp32", threads=1)  # fmt: skip
    first = run_training(ws, cfg, data=data, cancel=cancel, on_event=on_event)
    assert first.status == "cancelled" and 5 <= first.steps_done < 600
    run = store.get_run(ws, first.run_id)
    assert run["status"] == "cancelled" and run["hardware"]["device"] == "cpu" and run["n_train"] == 64
    ckpt = latest_checkpoint(Path(run["out_dir"]))
    assert ckpt is not None
    ckpt_step = int(ckpt.name.split("-")[1])

    # Resume with fewer steps so the test stays short; the worker picks up the newest checkpoint.
    cfg2 = RunConfig.load(Path(run["out_dir"]) / "run.json")
    cfg2.max_steps = ckpt_step + 6
    cfg2.save(Path(run["out_dir"]) / "run.json")
    resumed: list[ev.Event] = []
    second = execute_run(ws, first.run_id, on_event=resumed.append)
    assert second.status == "done" and second.steps_done == ckpt_step + 6
    assert resumed[1] == ev.RunResumed(ckpt_step, str(ckpt))
    assert [e.step for e in resumed if isinstance(e, ev.StepLogged)] == list(range(ckpt_step + 1, ckpt_step + 7))
    steps = [m["step"] for m in store.run_metrics(ws, first.run_id) if m["phase"] == "train"]
    assert steps == list(range(1, ckpt_step + 7))  # no step recorded twice
    assert store.get_run(ws, first.run_id)["status"] == "done"
    ws.close()


def test_bad_data_fails_the_run_with_a_message(tiny_model: Path, tmp_path: Path) -> None:
    rows = triage_rows(4, 0)
    for r in rows:
        r["split"] = "heldout"
    data = write_parquet(rows, tmp_path / "train.parquet")
    ws = Workspace.open(tmp_path / "ws.duckdb")
    res = run_training(ws, RunConfig(base_model=str(tiny_model)), data=data)
    assert res.status == "failed" and "split = 'train'" in (res.error or "")
    with pytest.raises(Exception, match="no training file"):
        start_run(ws, RunConfig(base_model=str(tiny_model)), data=tmp_path / "missing.parquet")
    ws.close()


def test_loss_from_answer_positions_equals_the_full_logits_loss(tiny_model: Path, triage_file: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from train.data import encode_all, forward_loss

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    items = encode_all(tok, load_examples(triage_file)[:6], 256)
    items[0].weight = 2.5
    b = collate(items, tok.pad_token_id)
    full = weighted_loss(model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits, b["labels"],
                         b["weights"])  # fmt: skip
    assert float(forward_loss(model, b)) == pytest.approx(float(full), rel=1e-5)


def test_padded_batch_loss_equals_each_example_alone(tiny_model: Path, triage_file: Path) -> None:
    """forward_loss runs right-padded batches without an attention mask: the loss must be what every example gives
    unpadded, on its own (the mask-free causal path and the answer-only logits change nothing)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from train.data import encode_all, forward_loss

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    enc = encode_all(tok, load_examples(triage_file)[:6], 128)
    enc[0].weight, enc[3].weight = 2.0, 0.5
    assert len({len(e.input_ids) for e in enc}) > 1  # really padded
    with torch.no_grad():
        batched = float(forward_loss(model, collate(enc, tok.pad_token_id)))
        alone = [float(forward_loss(model, collate([e], tok.pad_token_id))) for e in enc]
    assert batched == pytest.approx(sum(alone) / len(alone), rel=1e-4)
