"""Helpers for train tests: a tiny byte-level BPE tokenizer and a tiny random Llama (built in well under a second),
and synthetic triage training files with known answers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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
