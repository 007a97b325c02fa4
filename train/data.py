"""Training files in, token batches out: assistant-only labels, record weights, length-grouped batches.

A training file (Parquet or JSONL) has one row per example: record_id, split ('train' | 'heldout'), slice, weight,
messages (the whole conversation, ending with the curated assistant answer), teacher_response, reference; and, in a
file exported for soft-label training (``curation.datasets.soft_schema``), label_field, candidates and
teacher_tokens (``train.soft`` reads them).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.errors import UserError

if TYPE_CHECKING:
    import torch  # imported where tensors are made: the studio and the CLI read examples without it (~1-3 s)

IGNORE = -100


@dataclass
class Example:
    """One row of a training file."""

    record_id: int | None
    split: str
    slice: str
    weight: float
    messages: list[dict[str, str]]
    teacher_response: str | None
    reference: str | None
    candidates: list[dict[str, Any]] | None = None  # value, answer, prob, hard (curation.soft_labels.Candidate)
    teacher_tokens: list[dict[str, Any]] | None = None  # token, logprob, top [{token, logprob}] of the answer

    @property
    def prompt_messages(self) -> list[dict[str, str]]:
        """The conversation before the final assistant answer (what the student sees)."""
        return self.messages[:-1]

    @property
    def answer(self) -> str:
        """The curated final assistant answer (the training target)."""
        return self.messages[-1]["content"]

    def with_answer(self, answer: str) -> Example:
        """The same example with another final assistant answer (a soft-label candidate)."""
        return replace(self, messages=[*self.messages[:-1], {"role": "assistant", "content": answer}])

    @property
    def teacher(self) -> str:
        """The teacher's output to compare the student with (the curated answer if the raw one is absent)."""
        return self.teacher_response if self.teacher_response is not None else self.answer


def load_examples(path: str | Path) -> list[Example]:
    """Read a Parquet or JSONL training file; raise ``UserError`` on a file that does not fit the contract."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"no training file at {p}")
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(p).to_pylist()
    else:
        with p.open(encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
    out = []
    for i, r in enumerate(rows):
        msgs = r.get("messages")
        if not msgs or msgs[-1].get("role") != "assistant":
            raise UserError(f"{p.name} row {i + 1}: messages must end with the assistant answer")
        out.append(
            Example(
                record_id=r.get("record_id"),
                split=r.get("split") or "train",
                slice=r.get("slice") or "(none)",
                weight=float(r["weight"]) if r.get("weight") is not None else 1.0,
                messages=[{"role": m["role"], "content": m.get("content") or ""} for m in msgs],
                teacher_response=r.get("teacher_response"),
                reference=r.get("reference"),
                candidates=r.get("candidates") or None,
                teacher_tokens=r.get("teacher_tokens") or None,
            )
        )
    return out


def _plain_prompt(messages: list[dict[str, str]]) -> str:
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "


def prompt_text(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The text the student is given for generation (chat template with the assistant header, if any)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return _plain_prompt(messages)


def completion_text(tokenizer: Any, ex: Example) -> str:
    """The answer as the chat template renders it after the prompt (including its end-of-turn marker)."""
    if getattr(tokenizer, "chat_template", None):
        full = tokenizer.apply_chat_template(ex.messages, tokenize=False)
        prefix = prompt_text(tokenizer, ex.prompt_messages)
        if full.startswith(prefix):
            return full[len(prefix) :]
    return ex.answer + (tokenizer.eos_token or "")


def encode(tokenizer: Any, ex: Example, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids and labels; labels are IGNORE on prompt tokens so the loss covers the answer only."""
    p_ids = tokenizer(prompt_text(tokenizer, ex.prompt_messages), add_special_tokens=False)["input_ids"]
    c_ids = tokenizer(completion_text(tokenizer, ex), add_special_tokens=False)["input_ids"]
    c_ids = c_ids[: max(1, max_length - 16)]
    room = max_length - len(c_ids)
    # Cut the prompt from the left: the instruction's end and the latest turn matter most.
    p_ids = p_ids[-room:] if room > 0 else []
    return p_ids + c_ids, [IGNORE] * len(p_ids) + list(c_ids)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    weight: float


def encode_all(tokenizer: Any, examples: list[Example], max_length: int) -> list[Encoded]:
    """Encode every example (train or held-out)."""
    out = []
    for ex in examples:
        ids, labels = encode(tokenizer, ex, max_length)
        out.append(Encoded(ids, labels, ex.weight))
    return out


def batch_order(lengths: list[int], batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[list[int]]:
    """Batches of indices for one epoch. Grouped by length: shuffle, sort within mega-batches of 32 batches, then
    shuffle the batches, so padding stays small while the order stays random. Deterministic in (seed, epoch)."""
    rng = random.Random(seed * 100_003 + epoch)
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    if group_by_length:
        mega = batch_size * 32
        idx = [i for s in range(0, len(idx), mega) for i in sorted(idx[s : s + mega], key=lambda j: -lengths[j])]
    batches = [idx[s : s + batch_size] for s in range(0, len(idx), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


def collate(items: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors: input_ids, attention_mask, labels (IGNORE on padding), weights."""
    import torch

    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    weights = torch.tensor([e.weight for e in items], dtype=torch.float32)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "weights": weights}


def weighted_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over examples of (record weight x mean token loss over the example's answer tokens)."""
    import torch

    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    tok = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1), ignore_index=IGNORE, reduction="none"
    ).view(shift_labels.shape)
    n_tok = (shift_labels != IGNORE).sum(dim=1).clamp(min=1)
    per_example = tok.sum(dim=1) / n_tok
    return (per_example * weights.to(per_example.device)).mean()


def answer_positions(labels: torch.Tensor) -> torch.Tensor:
    """Sequence positions whose next token is an answer token in any row: the only logits the loss needs."""
    return (labels[:, 1:] != IGNORE).any(dim=0).nonzero().squeeze(1)


def answer_logits(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Vocabulary logits (fp32) of a right-padded batch (``collate``) only at answer positions: logits [B, P, V],
    the token each predicts [B, P] (IGNORE where that row has no answer token) and the positions [P]. The answer
    is a small part of each sequence, and the LM head over a 49k vocabulary is a fifth of the compute and most of
    the memory."""
    idx = answer_positions(batch["labels"])
    # No attention mask: rows are right-padded, so under the causal mask a real token never sees a pad (pads come
    # after it) and its positions start at 0 as without padding. The outputs at real tokens are the same, and
    # attention takes the plain causal path instead of building and applying a padded 4-D mask.
    logits = model(input_ids=batch["input_ids"], logits_to_keep=idx).logits
    return logits.float(), batch["labels"][:, idx + 1], idx


def forward_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The weighted answer-only loss of a right-padded batch (``collate``), computing vocabulary logits only at
    answer positions (``answer_logits``)."""
    import torch

    logits, targets, _ = answer_logits(model, batch)
    tok = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE, reduction="none"
    ).view(targets.shape)
    per_example = tok.sum(dim=1) / (targets != IGNORE).sum(dim=1).clamp(min=1)
    return (per_example * batch["weights"].to(per_example.device)).mean()


def write_examples(examples: list[Example], path: str | Path) -> Path:
    """Write examples as a training file (Parquet, the columns ``load_examples`` reads back): the evaluation input
    of a prompt variant, e.g. a few-shot baseline's held-out rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curation.datasets import training_schema

    rows = [{"record_id": e.record_id, "split": e.split, "slice": e.slice, "weight": e.weight, "messages": e.messages,
             "teacher_response": e.teacher_response, "reference": e.reference} for e in examples]  # fmt: skip
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=training_schema()), p)
    return p
