"""Soft-label training: the student learns what the teachers thought of each answer, not only what they answered.

Two modes (``RunConfig.soft_labels``):
- ``candidates``: each training row carries candidate answers that differ only in the checkable field's value, with
  the teachers' probabilities (``curation.soft_labels``). Every candidate is tokenised with the student's tokenizer
  and scored by the student as a full-sequence log-likelihood; normalised over the candidates, that is the
  student's distribution, trained by cross-entropy against the teachers' distribution softened by a temperature.
  Any teacher works, whatever its vocabulary.
- ``tokens``: token-level distillation when teacher and student share a tokenizer (an open teacher served with
  logprobs): at each answer token, cross-entropy against the teacher's top-k tokens plus one tail bucket (the
  teacher's remaining mass vs the student's mass outside those k).

Per row: loss = alpha x soft + (1 - alpha) x hard, where hard is the mean token cross-entropy of the hard target
(the reference's value where there is one, else the curated answer). A row without a soft target (one candidate
only, or teacher tokens that do not line up with the student's) trains on the hard term at full weight: its soft
term would be a constant, and scaling it by (1 - alpha) would only lower its learning rate. ``alpha`` may move
linearly from a start to an end value over the run (``parse_alpha``); the temperature applies to the teacher side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch

from curation.errors import UserError
from train.data import IGNORE, Encoded, Example, answer_logits, collate, encode


def alpha_at(step: int, total: int, start: float, end: float | None) -> float:
    """The weight of the soft term at 0-based ``step`` of ``total``: ``start`` throughout, or linear from ``start``
    (first step) to ``end`` (last step)."""
    if end is None or total <= 1:
        return start
    return start + (end - start) * min(max(step, 0), total - 1) / (total - 1)


def soften(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities raised to 1/T and renormalised over the last dimension (T > 1 flattens, T < 1 sharpens);
    zeros stay zero."""
    if temperature <= 0:
        raise UserError("the soft-label temperature must be > 0")
    logp = torch.log(probs.clamp_min(0.0)) / temperature
    return torch.softmax(logp, dim=-1)


@dataclass
class SoftEncoded:
    """One training row as the sequences its loss scores."""

    seqs: list[Encoded]  # candidates: every candidate answer; tokens: the curated answer (+ the hard target)
    hard: int  # index in ``seqs`` of the hard target
    weight: float
    probs: list[float] | None = None  # candidates: teachers' probability per sequence; None = no soft term
    offset: int = 0  # tokens: the number of prompt tokens of seqs[0]
    tokens: list[tuple[int, list[int], list[float]]] | None = None  # tokens: (answer token index, ids, probs)
    kept: list[str] = field(default_factory=list)  # candidates: the field values of ``seqs``

    @property
    def has_soft(self) -> bool:
        return bool(self.probs) or bool(self.tokens)


def _candidate_rows(ex: Example, max_candidates: int) -> list[dict[str, Any]]:
    """The most probable candidates (the hard target always kept), most probable first."""
    cands = sorted(ex.candidates or [], key=lambda c: -float(c["prob"]))
    kept = cands[:max_candidates]
    hard = next((c for c in cands if c.get("hard")), None)
    if hard is not None and hard not in kept:
        kept = [*kept[: max(0, max_candidates - 1)], hard]
    return kept


def encode_soft(tokenizer: Any, ex: Example, mode: str, max_length: int, max_candidates: int) -> SoftEncoded:
    """The sequences and targets of one training row for soft-label ``mode`` (candidates | tokens)."""
    plain = Encoded(*encode(tokenizer, ex, max_length), ex.weight)
    cands = _candidate_rows(ex, max_candidates)
    if mode == "candidates":
        if not cands:
            return SoftEncoded([plain], 0, ex.weight)
        seqs = [Encoded(*encode(tokenizer, ex.with_answer(c["answer"]), max_length), 1.0) for c in cands]
        hard = next((i for i, c in enumerate(cands) if c.get("hard")), 0)
        total = sum(float(c["prob"]) for c in cands)
        probs = [float(c["prob"]) / total for c in cands] if len(cands) > 1 and total > 0 else None
        return SoftEncoded(seqs, hard, ex.weight, probs=probs, kept=[c["value"] for c in cands])
    seqs, hard = [plain], 0
    target = next((c for c in cands if c.get("hard")), None)
    if target is not None and target["answer"] != ex.answer:
        seqs.append(Encoded(*encode(tokenizer, ex.with_answer(target["answer"]), max_length), 1.0))
        hard = 1
    offset = sum(1 for t in plain.labels if t == IGNORE)
    tokens = align_tokens(tokenizer, ex.teacher_tokens, plain.input_ids[offset:])
    return SoftEncoded(seqs, hard, ex.weight, offset=offset, tokens=tokens)


def align_tokens(
    tokenizer: Any, teacher: list[dict[str, Any]] | None, answer_ids: list[int]
) -> list[tuple[int, list[int], list[float]]] | None:
    """The teacher's top-k per answer token as student token ids and probabilities, or None when the teacher's
    tokens are not the student's (a token that is not one student token, or a sequence that differs)."""
    if not teacher or len(teacher) > len(answer_ids):
        return None
    ids_of = _token_ids(tokenizer)
    out = []
    for j, t in enumerate(teacher):
        tid = ids_of(t["token"])
        if tid is None or tid != answer_ids[j] or t.get("logprob") is None:
            return None
        alts: dict[int, float] = {}
        for a in t.get("top") or []:
            aid = ids_of(a["token"])
            if aid is not None and a.get("logprob") is not None:
                alts[aid] = max(alts.get(aid, 0.0), math.exp(float(a["logprob"])))
        alts.setdefault(tid, math.exp(float(t["logprob"])))
        out.append((j, list(alts), list(alts.values())))
    return out


_IDS: dict[int, Any] = {}


def _token_ids(tokenizer: Any) -> Any:
    """A cached text -> single student token id (None when the text is not exactly one token) for ``tokenizer``."""
    if id(tokenizer) not in _IDS:

        @lru_cache(maxsize=65536)
        def one(text: str) -> int | None:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            return ids[0] if len(ids) == 1 else None

        _IDS.clear()  # one tokenizer per process in practice; never let old ones pile up
        _IDS[id(tokenizer)] = one
    return _IDS[id(tokenizer)]


@dataclass
class SoftBatch:
    """Every sequence of a batch's rows in one right-padded batch, and which rows own which sequences."""

    batch: dict[str, torch.Tensor]
    items: list[SoftEncoded]
    rows: list[list[int]]


def soft_batch(items: list[SoftEncoded], pad_id: int) -> SoftBatch:
    """Collate the sequences of ``items`` (``collate``), remembering each item's rows."""
    seqs, rows = [], []
    for it in items:
        rows.append(list(range(len(seqs), len(seqs) + len(it.seqs))))
        seqs.extend(it.seqs)
    return SoftBatch(collate(seqs, pad_id), items, rows)


def sequence_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """From ``answer_logits``: per-position log-softmax [B, P, V], each row's summed answer-token log-likelihood
    [B] and its number of answer tokens [B]."""
    logp = torch.log_softmax(logits, dim=-1)
    valid = targets != IGNORE
    tok = logp.gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1) * valid
    return logp, tok.sum(dim=1), valid.sum(dim=1).clamp(min=1)


def _token_soft(logp: torch.Tensor, row: int, it: SoftEncoded, where: dict[int, int], t: float) -> torch.Tensor:
    """Mean over the aligned answer tokens of the cross-entropy against the teacher's top-k + tail bucket."""
    assert it.tokens is not None
    terms = []
    for j, ids, ps in it.tokens:
        m = where.get(it.offset + j - 1)  # the logit that predicts answer token j
        if m is None:
            continue
        lq = logp[row, m]
        ids_t = torch.tensor(ids, device=lq.device)
        teacher = torch.tensor([*ps, max(0.0, 1.0 - sum(ps))], device=lq.device)
        target = soften(teacher / teacher.sum(), t)
        tail = torch.logsumexp(lq.index_fill(0, ids_t, float("-inf")), dim=0)
        student = torch.cat([lq[ids_t], tail.unsqueeze(0)])
        terms.append(-(target * student.clamp_min(-1e4)).sum())
    return torch.stack(terms).mean() if terms else torch.zeros((), device=logp.device)


def soft_forward_loss(model: Any, sb: SoftBatch, alpha: float, temperature: float) -> torch.Tensor:
    """Mean over rows of record weight x (alpha x soft + (1 - alpha) x hard); rows without a soft target: hard."""
    logits, targets, idx = answer_logits(model, sb.batch)
    logp, seq_lp, n_tok = sequence_logprobs(logits, targets)
    where = {int(p): m for m, p in enumerate(idx.tolist())}
    losses = []
    for it, rows in zip(sb.items, sb.rows, strict=True):
        h = rows[it.hard]
        hard = -seq_lp[h] / n_tok[h]
        soft = None
        if it.probs:
            target = soften(torch.tensor(it.probs, device=logits.device), temperature)
            soft = -(target * torch.log_softmax(seq_lp[rows], dim=0)).sum()
        elif it.tokens:
            soft = _token_soft(logp, rows[0], it, where, temperature)
        loss = hard if soft is None else alpha * soft + (1.0 - alpha) * hard
        losses.append(loss * it.weight)
    return torch.stack(losses).mean()
