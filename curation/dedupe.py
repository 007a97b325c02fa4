"""Exact and semantic de-duplication of prompts, with a keep rule and a guard for rare slices.

Exact: a hash of the normalised prompt (case, Unicode form, whitespace and punctuation folded).
Semantic: cached sentence embeddings of the prompt, neighbours via faiss, pairs at or above the threshold that
pass the token rule (``curation.near_dupes``: no number, negation, qualifier ... differs) joined into clusters.
With answers that must agree (``curation.label_conflicts``), only pairs whose teacher answers agree merge; a
cluster of near-duplicate prompts with different answers is a label conflict, queued for review when applied.
In each group of agreeing members one record is kept: an accepted review first, then the highest teacher
confidence (mean token logprob), then the earliest. Held-out records are frozen: they are always kept, and
train records clustered with one are removed as leaks. ``find_duplicates`` only previews; ``apply_dedupe``
stores the run (records are never deleted; dataset versions leave removed records out).
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from curation.effective import effective_sql, resolve_slicing
from curation.embeddings import EMBEDDING_MODEL
from curation.label_conflicts import (
    ANSWERS,
    LABEL_FIELD,
    LabelConflict,
    conflict_of,
    labels_of,
    resolve_rule,
    split_by_answer,
)
from curation.lazy import lazy_module
from curation.near_dupes import TokenRule
from curation.neighbors import Pairs, components, self_pairs
from curation.options import ChoiceOption, FlagOption, FloatOption, OptionSet
from curation.pool_options import SLICING, SPLIT
from curation.progress import ProgressFn, report
from curation.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_module("numpy")  # loaded when a dedupe runs: the CLI reads DEDUPE at every start

# The parameters of a dedupe, declared once for the CLI flags, the studio form and the defaults below.
THRESHOLD = FloatOption(
    name="threshold",
    # bench/dedupe_bench.py: best F1 on the paraphrase set (0.9: precision 1.0, recall 0.29)
    default=0.85,
    minimum=0,
    exclusive_minimum=True,
    maximum=1,
    required=True,
    help="cosine similarity for near-duplicates",
)
DEDUPE = OptionSet(
    "dedupe",
    (
        ChoiceOption(
            name="kind",
            choices=("semantic", "exact"),
            default="semantic",
            required=True,
            help="semantic (embeddings) or exact (normalised text hash)",
            shortcuts={"--exact": ("exact", "normalised text hash only (no embeddings)")},
        ),
        THRESHOLD,
        EMBEDDING_MODEL,
        SLICING,
        SPLIT,
        FloatOption(
            name="rare_share",
            default=0.05,
            minimum=0,
            maximum=1,
            required=True,
            help="a slice below this share is rare",
        ),
        FloatOption(
            name="max_rare_removal",
            default=0.3,
            minimum=0,
            maximum=1,
            required=True,
            help="refuse to remove more than this share of a rare slice",
        ),
        FlagOption(
            name="token_check",
            default=True,
            flag="--similarity-only",
            help="keep near-duplicates apart when they differ in a token that carries meaning (a number or code, a "
            "negation, LH/RH and other qualifiers or opposites, a unit; any content word of a line without function "
            "words, as in a parts catalogue); --similarity-only merges on similarity alone",
        ),
        ANSWERS,
        LABEL_FIELD,
        FlagOption(name="force", help="apply even when a rare slice would lose too much"),
    ),
)
DEFAULT_THRESHOLD: float = THRESHOLD.default
CONFLICT_REASON = "label conflict: near-duplicate prompts answered differently"
PREVIEW_BAND = 0.05  # show pairs this far below the threshold in the preview
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Text folded for exact matching: NFKC, lower case, punctuation dropped, whitespace collapsed."""
    t = unicodedata.normalize("NFKC", text or "").casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", t)).strip()


def normalised_hash(text: str) -> str:
    """md5 of the normalised text."""
    return hashlib.md5(normalise(text).encode("utf-8")).hexdigest()


@dataclass
class PairExample:
    """A pair of prompts and their similarity, for the preview."""

    a: int
    b: int
    similarity: float
    prompt_a: str
    prompt_b: str
    reason: str = ""  # why the token rule keeps them apart (empty: it does not)


@dataclass
class SliceRemoval:
    """How much dedupe would remove from one slice."""

    slice: str
    n: int
    removed: int
    rate: float
    rare: bool
    blocked: bool


@dataclass
class DedupeResult:
    """A previewed dedupe: clusters, what each member's fate is, and per-slice removal."""

    kind: str
    threshold: float | None
    model: str | None
    n_records: int
    clusters: list[list[int]]
    kept: dict[int, tuple[bool, str]]  # record_id -> (kept, reason) for members of clusters
    per_slice: list[SliceRemoval]
    above: list[PairExample] = field(default_factory=list)
    below: list[PairExample] = field(default_factory=list)
    method: str = ""
    split: str | None = None
    params: dict = field(default_factory=dict)
    kept_apart: dict[str, int] = field(default_factory=dict)  # pairs >= threshold the token rule kept apart, by why
    apart: list[PairExample] = field(default_factory=list)  # examples of them, most similar first
    answer_rule: str = ""  # what decides on answers (said in the preview)
    conflicts: list[LabelConflict] = field(default_factory=list)  # near-duplicate prompts with different answers

    @property
    def n_removed(self) -> int:
        return sum(1 for k, _ in self.kept.values() if not k)

    @property
    def blocked(self) -> list[str]:
        return [s.slice for s in self.per_slice if s.blocked]


def _keep_order(row: dict) -> tuple:
    # Keep rule: accepted review, then highest teacher confidence, then earliest (then lowest id for ties).
    mean = row["mean_logprob"]
    return (
        0 if row["status"] == "accepted" else 1,
        -(mean if mean is not None else -np.inf),
        row["seen_at"] or datetime.max,
        row["record_id"],
    )


def dedupe_rows(ws: Workspace, slicing: str | None, split: str | None) -> list[dict[str, Any]]:
    """The records a dedupe reads (every one not rejected, as it is now), in id order, with their split side."""
    base, params = effective_sql(ws, slicing)
    side = "'train'"
    if split:
        side = (
            "coalesce((SELECT side FROM split_members sm WHERE sm.split = ? AND sm.record_id = e.record_id), 'train')"
        )
        params = [*params, split]
    return ws.query_dicts(
        "SELECT e.record_id, e.slice, e.prompt, e.response, e.status, e.mean_logprob, e.seen_at, "
        f"{side} AS side FROM ({base}) e WHERE e.status <> 'rejected' ORDER BY record_id",
        params,
    )


def hash_groups(hashes: list[str]) -> tuple[dict[str, int], list[int], list[int]]:
    """Exact duplicates among ``normalised_hash`` values: the first index of each, and an edge (first, later) per
    repeat."""
    first: dict[str, int] = {}
    ei: list[int] = []
    ej: list[int] = []
    for idx, h in enumerate(hashes):
        if h in first:
            ei.append(first[h])
            ej.append(idx)
        else:
            first[h] = idx
    return first, ei, ej


def find_duplicates(
    ws: Workspace,
    *,
    kind: str = DEDUPE.default("kind"),
    threshold: float = DEFAULT_THRESHOLD,
    model: str | None = None,
    slicing: str | None = None,
    split: str | None = None,
    rare_share: float = DEDUPE.default("rare_share"),
    max_rare_removal: float = DEDUPE.default("max_rare_removal"),
    exact_search: bool | None = None,
    token_check: bool = DEDUPE.default("token_check"),
    answers: str = DEDUPE.default("answers"),
    label_field: str | None = None,
    bar_label: tuple[bool, str | None] | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> DedupeResult:
    """Preview a dedupe over every non-rejected record. Nothing is stored.

    ``bar_label`` is what the quality bar says about labels (``train.bars.bar_label``: labelled, field); it decides
    ``answers="auto"``."""
    DEDUPE["kind"].check(kind)
    THRESHOLD.check(threshold)
    slicing = resolve_slicing(ws, slicing)  # recorded with the run
    rows = dedupe_rows(ws, slicing, split)
    n = len(rows)
    report(progress, cancel, "dedupe", 0, n)
    texts = [r["prompt"] or "" for r in rows]
    hashes = [normalised_hash(t) for t in texts]
    # Exact duplicates are edges in both modes.
    first, ei, ej = hash_groups(hashes)
    pairs = Pairs(np.array(ei, dtype=np.int64), np.array(ej, dtype=np.int64), np.ones(len(ei), np.float32), "hash")
    above: list[PairExample] = []
    below: list[PairExample] = []
    apart_ex: list[PairExample] = []
    kept_apart: dict[str, int] = {}
    method = "hash"
    if kind == "semantic" and n > 1:
        from curation.embeddings import embed_texts

        # One vector per normalised text: exact duplicates are joined by hash already, and logs repeat a lot.
        reps = np.array(sorted(first.values()), dtype=np.int64)
        vecs = embed_texts(ws, [texts[k] for k in reps], model=model, progress=progress, cancel=cancel)
        cand = self_pairs(vecs, threshold - PREVIEW_BAND, exact=exact_search, progress=progress, cancel=cancel)
        cand = Pairs(reps[cand.i], reps[cand.j], cand.sim, cand.method)
        method = cand.method
        apart = np.zeros(len(cand.i), dtype=bool)
        if token_check:
            rule = TokenRule(texts)
            why = [rule.reason(a, b) for a, b in zip(cand.i.tolist(), cand.j.tolist(), strict=True)]
            apart = np.array([w is not None for w in why], dtype=bool)
            for k in np.where(apart & (cand.sim >= threshold))[0].tolist():
                kept_apart[why[k]] = kept_apart.get(why[k], 0) + 1
            apart_ex = _examples(rows, cand, np.where(apart & (cand.sim >= threshold))[0], lowest=False, why=why)
        hit = (cand.sim >= threshold) & ~apart
        near = (~hit) & ~apart & (hashes_differ(hashes, cand))
        pairs = Pairs(
            np.concatenate([pairs.i, cand.i[hit]]),
            np.concatenate([pairs.j, cand.j[hit]]),
            np.concatenate([pairs.sim, cand.sim[hit]]),
            method,
        )
        above = _examples(rows, cand, np.where(hit & hashes_differ(hashes, cand))[0], lowest=True)
        below = _examples(rows, cand, np.where(near)[0], lowest=False)
    responses = [r["response"] for r in rows]
    ans = resolve_rule(answers, label_field, bar_label, responses)
    answer_labels = labels_of(ans, responses) if ans.agree else []
    labels = components(n, pairs.i, pairs.j)
    groups: dict[int, list[int]] = {}
    for idx, lab in enumerate(labels.tolist()):
        groups.setdefault(lab, []).append(idx)
    clusters: list[list[int]] = []
    kept: dict[int, tuple[bool, str]] = {}
    conflicts: list[LabelConflict] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        clusters.append([rows[m]["record_id"] for m in members])
        held = [m for m in members if rows[m]["side"] == "heldout"]
        if held:  # frozen held-out: keep every held-out member, drop the train ones as leaks
            for m in members:
                is_held = rows[m]["side"] == "heldout"
                kept[rows[m]["record_id"]] = (is_held, "held-out" if is_held else "leak: near-duplicate of held-out")
            continue
        # Clusters of near-duplicate prompts are what is stored (and kept on one side of a split); inside one whose
        # answers disagree, each answer's group keeps one record and the kept ones go to review.
        parts = split_by_answer(members, answer_labels) if ans.agree else [members]
        for part in parts:
            ordered = sorted(part, key=lambda m: _keep_order(rows[m]))
            top = rows[ordered[0]]
            why_kept = "accepted" if top["status"] == "accepted" else "most confident / earliest"
            kept[top["record_id"]] = (True, why_kept if len(parts) == 1 else "label conflict: kept for review")
            for m in ordered[1:]:
                kept[rows[m]["record_id"]] = (False, f"duplicate of {top['record_id']}")
        if len(parts) > 1 and (c := conflict_of(rows, members, answer_labels, kept)) is not None:
            conflicts.append(c)
    per_slice = _per_slice(rows, kept, rare_share, max_rare_removal)
    report(progress, cancel, "dedupe", n, n)
    return DedupeResult(
        kind,
        threshold if kind == "semantic" else None,
        model,
        n,
        clusters,
        kept,
        per_slice,
        above,
        below,
        method,
        split,
        {
            "rare_share": rare_share,
            "max_rare_removal": max_rare_removal,
            "slicing": slicing,
            "token_check": token_check,
            "answers": answers,
            "label_field": ans.field,
            "answers_agree": ans.agree,
        },
        kept_apart,
        apart_ex,
        ans.why,
        conflicts,
    )


def hashes_differ(hashes: list[str], cand: Pairs) -> np.ndarray:
    """Mask of candidate pairs that are not already exact duplicates (more telling in a preview)."""
    return np.array([hashes[a] != hashes[b] for a, b in zip(cand.i.tolist(), cand.j.tolist(), strict=True)], dtype=bool)


def _examples(
    rows: list[dict], cand: Pairs, idx: np.ndarray, *, lowest: bool, limit: int = 5, why: list | None = None
) -> list[PairExample]:
    order = idx[np.argsort(cand.sim[idx])]
    if not lowest:
        order = order[::-1]
    out = []
    for k in order[:limit].tolist():
        a, b = rows[int(cand.i[k])], rows[int(cand.j[k])]
        reason = (why[k] or "") if why is not None else ""
        out.append(
            PairExample(
                a["record_id"], b["record_id"], float(cand.sim[k]), a["prompt"] or "", b["prompt"] or "", reason
            )
        )
    return out


def _per_slice(rows: list[dict], kept: dict, rare_share: float, max_rare: float) -> list[SliceRemoval]:
    n_by: dict[str, int] = {}
    rm_by: dict[str, int] = {}
    for r in rows:
        n_by[r["slice"]] = n_by.get(r["slice"], 0) + 1
        if not kept.get(r["record_id"], (True, ""))[0]:
            rm_by[r["slice"]] = rm_by.get(r["slice"], 0) + 1
    total = sum(n_by.values()) or 1
    out = []
    for s, c in sorted(n_by.items(), key=lambda kv: -kv[1]):
        rm = rm_by.get(s, 0)
        rare = c / total < rare_share
        out.append(SliceRemoval(s, c, rm, rm / c, rare, rare and rm / c > max_rare))
    return out
