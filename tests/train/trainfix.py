"""Helpers for train tests: a tiny byte-level BPE tokenizer and a tiny random Llama (built in well under a second),
and synthetic triage training files with known answers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curation.workspace import Workspace

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
INTENTS = {
    "billing": ["charged twice", "refund my invoice", "wrong price"],
    "login": ["cannot log in", "reset password", "account locked"],
    "shipping": ["parcel is late", "wrong address", "tracking broken"],
}
SLICES = {"billing": "payments", "login": "accounts", "shipping": "logistics"}


def triage_rows(n: int, heldout: int, seed: int = 0) -> list[dict]:
    """``n`` training rows then ``heldout`` held-out rows: ticket text -> {"intent", "urgency"} JSON answer."""
    rng = random.Random(seed)
    rows = []
    for i in range(n + heldout):
        intent = rng.choice(sorted(INTENTS))
        urgency = rng.choice(["low", "high"])
        text = f"{rng.choice(INTENTS[intent])}, {'please help now' if urgency == 'high' else 'when you can'}"
        answer = json.dumps({"intent": intent, "urgency": urgency})
        messages = [{"role": "system", "content": "Classify the ticket as JSON."}, {"role": "user", "content": text},
                    {"role": "assistant", "content": answer}]  # fmt: skip
        rows.append({"record_id": i + 1, "split": "train" if i < n else "heldout", "slice": SLICES[intent],
                     "weight": 1.0, "messages": messages, "teacher_response": answer,
                     "reference": answer if i % 2 == 0 else None})  # fmt: skip
    return rows


def write_parquet(rows: list[dict], path: Path) -> Path:
    """Write rows with the training-file schema of the curation contract."""
    msg = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    schema = pa.schema([("record_id", pa.int64()), ("split", pa.string()), ("slice", pa.string()),
                        ("weight", pa.float64()), ("messages", msg), ("teacher_response", pa.string()),
                        ("reference", pa.string())])  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def build_tiny_model(dest: Path) -> Path:
    """A 2-layer, 64-wide random Llama with a 400-token byte-level BPE tokenizer trained on the triage texts."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [json.dumps(r["messages"]) for r in triage_rows(200, 0, seed=1)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>",
                                   bos_token="<|im_start|>")  # fmt: skip
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(dest)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=fast.pad_token_id, eos_token_id=fast.eos_token_id,
                         bos_token_id=fast.bos_token_id)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(dest)
    return dest


def triage_workspace(ws: Workspace, n: int) -> list[int]:
    """Insert ``n`` triage records (prompt turns + teacher answer, slice, some references); return their ids."""
    from curation.records import finish_batch, insert_records, new_batch

    rows = [{"messages": r["messages"][:-1], "response": r["teacher_response"], "slice": r["slice"],
             "reference": r["reference"], "teacher_model": "big"} for r in triage_rows(n, 0, seed=3)]  # fmt: skip
    with ws.transaction() as cur:
        b = new_batch(cur, "triage.jsonl", "log")
        ids = insert_records(cur, b, rows)
        finish_batch(cur, b, n_lines=n, n_imported=len(ids), n_duplicates=0, n_quarantined=0)
    return list(ids)


def curate_version(ws: Workspace, name: str, *, share: float = 0.25, edits: int = 1, rejects: int = 1) -> dict:
    """The curation path a data lead takes: review edits and rejections, a frozen stratified held-out split, then a
    rebalanced (up-weighting) dataset version. Returns what the training file must reflect."""
    from curation.rebalance import Target, apply_rebalance, plan_rebalance
    from curation.review import edit, reject
    from curation.splits import freeze_split, plan_split

    plan = plan_split(ws, share=share, seed=0, threshold=None)
    freeze_split(ws, plan)
    train_ids = sorted(plan.train)
    edited = {rid: json.dumps({"intent": "edited", "urgency": "low"}) for rid in train_ids[:edits]}
    for rid, text in edited.items():
        edit(ws, rid, text, reviewer="test")
    rejected = train_ids[edits : edits + rejects]
    for rid in rejected:
        reject(ws, rid, "wrong label", reviewer="test")
    counts = dict(ws.query("SELECT slice, count(*) FROM records GROUP BY slice"))
    rb = plan_rebalance(ws, Target("min_count", min_count=max(counts.values())), mode="weight", max_factor=3.0,
                        split="heldout")  # fmt: skip
    apply_rebalance(ws, rb, name)
    return {"heldout": set(plan.heldout), "edited": edited, "rejected": set(rejected)}


def soft_rows(n: int, heldout: int, seed: int = 0) -> list[dict]:
    """``triage_rows`` with soft-label columns: each row's teacher answer at 0.7 and another intent at 0.3; the hard
    target is the reference's intent where there is one (every other row), else the teacher's."""
    rows = triage_rows(n, heldout, seed)
    for i, r in enumerate(rows):
        answer = r["messages"][-1]["content"]
        doc = json.loads(answer)
        other = sorted(set(INTENTS) - {doc["intent"]})[i % 2]
        r["label_field"] = "intent"
        r["candidates"] = [
            {"value": doc["intent"], "answer": answer, "prob": 0.7, "hard": True},
            {"value": other, "answer": json.dumps({**doc, "intent": other}), "prob": 0.3, "hard": False},
        ]
        r["teacher_tokens"] = None
    return rows


def write_soft_parquet(rows: list[dict], path: Path) -> Path:
    """Write rows with the training-file schema plus curation's soft-label columns."""
    from curation.datasets import soft_schema, training_schema

    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema([*training_schema(), *soft_schema()])), path)
    return path


def logprob_workspace(ws: Workspace, n: int, wrong_every: int = 4) -> list[int]:
    """``n`` triage records whose teacher answers carry OpenAI-shaped token logprobs (the sample generator's): every
    ``wrong_every``-th answer names a wrong intent with a low logprob and the right one among its top alternatives."""
    from curation.records import finish_batch, insert_records, new_batch
    from sample_data.generate import mark_weak, token_logprobs, tokens

    rng = random.Random(5)
    rows = []
    for i, r in enumerate(triage_rows(n, 0, seed=4)):
        right = json.loads(r["teacher_response"])
        said = dict(right)
        weak: set[int] = set()
        alts: dict[int, str] = {}
        if i % wrong_every == 0:
            said["intent"] = sorted(set(INTENTS) - {right["intent"]})[0]
        answer = json.dumps(said)
        if said != right:
            mark_weak(tokens(answer), said["intent"], right["intent"], weak, alts)
        rows.append({"messages": r["messages"][:-1], "response": answer, "slice": r["slice"],
                     "reference": r["reference"], "teacher_model": "big",
                     "response_logprobs": token_logprobs(rng, answer, weak, alts)})  # fmt: skip
    with ws.transaction() as cur:
        b = new_batch(cur, "triage-logprobs.jsonl", "log")
        ids = insert_records(cur, b, rows)
        finish_batch(cur, b, n_lines=n, n_imported=len(ids), n_duplicates=0, n_quarantined=0)
    return list(ids)


TICKETS = {"billing": "please refund the charge on invoice {i}", "login": "password login fails for user {i}",
           "shipping": "package {i} delivery is late"}  # fmt: skip
KEY_ENV, KEY = "DISTILL_TEST_BASELINE_KEY", "sk-test-baseline-0123456789"


def fake_teacher_workspace(path: Path, base_url: str) -> Workspace:
    """Tickets answered as the fake server answers them (so a model baseline through it agrees with the teacher), a
    frozen split and a snapshot version; teacher 'cheap' aimed at the fake server."""
    from curation.rebalance import snapshot_version
    from curation.records import finish_batch, insert_records, new_batch
    from curation.splits import freeze_split, plan_split
    from curation.teacher.config import TeacherConfig, save_teacher
    from tests.teacher.fake_openai import triage_answer
    from train.bars import QualityBar, set_bar

    ws = Workspace.open(path)
    rows = []
    for i in range(30):
        s = sorted(TICKETS)[i % 3]
        text = TICKETS[s].format(i=i)
        msgs = [{"role": "system", "content": "Triage the ticket as JSON."}, {"role": "user", "content": text}]
        rows.append({"messages": msgs, "response": triage_answer(text), "slice": s})
    with ws.transaction() as cur:
        b = new_batch(cur, "t.jsonl", "log")
        ids = insert_records(cur, b, rows)
        finish_batch(cur, b, n_lines=30, n_imported=len(ids), n_duplicates=0, n_quarantined=0)
    freeze_split(ws, plan_split(ws, share=0.3, seed=0, threshold=None))
    snapshot_version(ws, "v1", split="heldout")
    save_teacher(ws, TeacherConfig(name="cheap", base_url=base_url, model="cheap-model-1", api_key_env=KEY_ENV,
                                   price_in_per_m=0.1, price_out_per_m=0.4, terms_ack=True, timeout_s=5.0))  # fmt: skip
    set_bar(ws, QualityBar(task="triage", metrics=[{"kind": "json_field", "field": "intent"}], threshold=0.8))
    return ws
