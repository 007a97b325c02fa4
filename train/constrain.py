"""Answers inside the label set: keep the student's value of a labelled JSON field among the allowed labels.

Two ways (``MODES``):
- ``trie``: while generating, once the answer has written the field's key (``"intent":``), only tokens that keep
  the text a prefix of ``"<label>"`` for some label (or that close one and run on, like ``",``) may follow. It works
  on characters, so it holds however the student's tokenizer splits a label (a quote merged with the first
  word, a label in several pieces); tokens are checked by their decoded text, first character indexed.
- ``score``: generate freely, then an answer whose field value is not a label gets the label under which the student
  finds the whole answer most likely (every label scored as a full sequence, as soft-label training scores
  candidates).
Measured on a 150-intent routing task (FIELD_NOTES): 43-58% of a trained student's wrong answers named an intent
outside the set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import torch

from curation.soft_labels import field_value, replace_value
from train.config import CONSTRAIN_MODES
from train.data import Encoded, Example, answer_logits, collate, encode
from train.soft import sequence_logprobs

MODES = CONSTRAIN_MODES


class LabelConstraint:
    """The token-level constraint of one label field for one tokenizer (``processor`` makes the per-batch
    ``logits_processor`` that ``train.generate.generate`` takes)."""

    def __init__(self, tokenizer: Any, field: str, labels: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.field = field
        self.labels = list(dict.fromkeys(labels))
        key = field.split(".")[-1]
        self._key = re.compile(r'"' + re.escape(key) + r'"\s*:\s*')
        self._targets = ['"' + json.dumps(lab, ensure_ascii=False)[1:-1] + '"' for lab in self.labels]
        self._by_first: dict[str, list[tuple[int, str]]] = {}
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        for tid in range(len(tokenizer)):
            text = "" if tid in special else tokenizer.decode([tid])
            if text and "\ufffd" not in text:  # a piece of a multi-byte character spells no label by itself
                self._by_first.setdefault(text[0], []).append((tid, text))
        self._memo: dict[str, list[int] | None] = {}

    def rest(self, generated: str) -> str | None:
        """The text after the field's key (``None`` before the key, or once the value is closed)."""
        m = self._key.search(generated)
        if m is None:
            return None
        rest = generated[m.end() :]
        return None if any(rest.startswith(t) for t in self._targets) else rest

    def allowed(self, rest: str) -> list[int] | None:
        """Token ids that may follow ``rest`` inside the value; None when ``rest`` already left every label (no
        constraint is possible then)."""
        if rest in self._memo:
            return self._memo[rest]
        live = [t for t in self._targets if t.startswith(rest)]
        out: list[int] | None = None
        if live:
            firsts = {t[len(rest)] for t in live}
            if not rest:
                firsts |= {" ", "\t", "\n"}  # whitespace before the opening quote
            ok = []
            for ch in firsts:
                for tid, text in self._by_first.get(ch, []):
                    probe = rest + text if rest else text.lstrip()
                    if probe and any(t.startswith(probe) or probe.startswith(t) for t in live):
                        ok.append(tid)
            out = sorted(ok) or None
        self._memo[rest] = out
        return out

    def processor(self, prompt_width: int) -> Any:
        """A transformers logits processor for one left-padded batch whose generated tokens start at
        ``prompt_width``: inside the field's value, every token that leaves the label set gets -inf."""
        from transformers import LogitsProcessor, LogitsProcessorList

        outer = self

        class _Proc(LogitsProcessor):
            def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
                for row in range(input_ids.shape[0]):
                    text = outer.tokenizer.decode(input_ids[row, prompt_width:], skip_special_tokens=True)
                    rest = outer.rest(text)
                    ids = outer.allowed(rest) if rest is not None else None
                    if ids is not None:
                        keep = scores[row, ids].clone()
                        scores[row] = float("-inf")
                        scores[row, ids] = keep
                return scores

        return LogitsProcessorList([_Proc()])


def in_set(text: str | None, field: str, labels: Sequence[str]) -> bool:
    """Whether the answer's field value is one of ``labels`` (exactly)."""
    return field_value(text, field) in set(labels)


def score_labels(
    model: Any, tokenizer: Any, example: Example, field: str, labels: Sequence[str], *, device: str = "cpu",
    max_length: int = 1024, batch_size: int = 16,
) -> str:  # fmt: skip
    """The answer of ``example`` (its final assistant turn: the student's answer) with its field value replaced by the
    label under which the student finds the whole answer most likely, each scored as training scores a sequence;
    the answer unchanged when its value is already a label or cannot be replaced."""
    answer = example.answer
    if in_set(answer, field, labels) or field_value(answer, field) is None:
        return answer
    options = [a for lab in labels if (a := replace_value(answer, field, lab)) is not None]
    best, best_lp = answer, float("-inf")
    for s in range(0, len(options), batch_size):
        chunk = options[s : s + batch_size]
        seqs = [Encoded(*encode(tokenizer, example.with_answer(a), max_length), 1.0) for a in chunk]
        b = collate(seqs, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        with torch.inference_mode():
            logits, targets, _ = answer_logits(model, {k: v.to(device) for k, v in b.items()})
            _, seq_lp, _ = sequence_logprobs(logits, targets)
        for a, lp in zip(chunk, seq_lp.tolist(), strict=True):
            if lp > best_lp:
                best, best_lp = a, lp
    return best
