"""Held-out splits: stratified by slice, frozen once made, and leakage-free.

Every record that exists when a split is made is assigned a side; records imported later are train. Whole
near-duplicate clusters go to one side (exact normalised-prompt matches, the stored dedupe clusters, and, when
``threshold`` is given, semantic neighbours at that similarity), so no cluster straddles the split. A split is
never changed afterwards; ``check_leakage`` reports held-out/train pairs that are near-duplicates (e.g. from
records added later), and dataset versions leave such train records out via dedupe.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from curation.dedupe import DEFAULT_THRESHOLD, THRESHOLD, normalised_hash
from curation.effective import effective_sql, resolve_slicing
from curation.embeddings import EMBEDDING_MODEL
from curation.errors import UserError
from curation.lazy import lazy_module
from curation.near_dupes import TokenRule, why_different
from curation.neighbors import components, cross_pairs, self_pairs
from curation.options import FlagOption, FloatOption, IntOption, OptionSet, TextOption
from curation.pool import DEFAULT_SPLIT, load_pool, split_exists
from curation.pool_options import SLICING
from curation.progress import ProgressFn, report
from curation.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_module("numpy")  # when a split is made: the CLI reads SPLIT's options at every start


def _new_split(ws: Workspace, name: str) -> str:
    if split_exists(ws, name):
        raise SPLIT_MAKE["name"].error(f"split {name!r} is frozen (made before); choose another name")
    return name


def _frozen_split(ws: Workspace, name: str) -> str:
    if not split_exists(ws, name):
        raise SPLIT_CHECK["name"].error(f"no split named {name!r} (make one with `distill split make`)")
    return name


_NO_SEMANTIC = FlagOption(name="no_semantic", help="exact matches only (no embeddings)")
SPLIT_MAKE = OptionSet(
    "split make",
    (
        TextOption(name="name", default=DEFAULT_SPLIT, required=True, help="name of the split", resolve=_new_split),
        FloatOption(
            name="share",
            default=0.1,
            minimum=0,
            maximum=1,
            exclusive_minimum=True,
            exclusive_maximum=True,
            required=True,
            help="held-out share per slice",
        ),
        IntOption(name="seed", default=0, required=True, help="random seed"),
        THRESHOLD,
        _NO_SEMANTIC,
        EMBEDDING_MODEL,
        SLICING,
    ),
)
SPLIT_CHECK = OptionSet(
    "split check",
    (
        TextOption(name="name", default=DEFAULT_SPLIT, required=True, help="the split to check", resolve=_frozen_split),
        THRESHOLD,
        _NO_SEMANTIC,
        EMBEDDING_MODEL,
    ),
)


def split_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """Parsed split options -> keywords of ``plan_split`` / ``check_leakage`` (no_semantic clears the threshold)."""
    out = {k: v for k, v in values.items() if k != "no_semantic"}
    if values.get("no_semantic"):
        out["threshold"] = None
    return out


@dataclass
class SplitPlan:
    """A previewed split: sides per record and counts per slice."""

    name: str
    share: float
    seed: int
    threshold: float | None
    heldout: list[int]
    train: list[int]
    per_slice: list[tuple[str, int, int, int]]  # slice, usable, usable held out, not usable (own column)
    n_clusters_joined: int


@dataclass(frozen=True)
class LeakPair:
    """A held-out record and a train record that are (near-)duplicates."""

    heldout_id: int
    train_id: int
    similarity: float
    kind: str  # exact | semantic


def plan_split(
    ws: Workspace,
    *,
    name: str = DEFAULT_SPLIT,
    share: float = SPLIT_MAKE.default("share"),
    seed: int = SPLIT_MAKE.default("seed"),
    slicing: str | None = None,
    threshold: float | None = DEFAULT_THRESHOLD,
    model: str | None = None,
    min_per_slice: int = 1,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> SplitPlan:
    """Choose held-out records per slice (whole clusters at a time), seeded. Stores nothing."""
    _new_split(ws, name)
    SPLIT_MAKE["share"].check(share)
    base, params = effective_sql(ws, slicing)
    rows = ws.query(f"SELECT record_id, slice, coalesce(prompt, '') FROM ({base}) ORDER BY record_id", params)
    n = len(rows)
    ids = [int(r[0]) for r in rows]
    texts = [str(r[2]) for r in rows]
    # Usable = what the curation pool would train on (not removed as a duplicate, filtered, rejected or unanswered):
    # the others still join clusters (so a held-out record's duplicates stay on its side) but are not counted.
    usable_ids = {rid for rid, _ in load_pool(ws, slicing=slicing).train}
    eligible = [rid in usable_ids for rid in ids]
    index = {rid: k for k, rid in enumerate(ids)}
    ei: list[int] = []
    ej: list[int] = []
    first: dict[str, int] = {}
    for k, t in enumerate(texts):
        h = normalised_hash(t)
        if h in first:
            ei.append(first[h])
            ej.append(k)
        else:
            first[h] = k
    for (cl,) in ws.query("SELECT list(record_id) FROM dedupe_members GROUP BY run_id, cluster_id"):
        ks = [index[r] for r in cl if r in index]
        ei.extend(ks[:1] * (len(ks) - 1))
        ej.extend(ks[1:])
    if threshold is not None and n > 1:
        from curation.embeddings import embed_texts

        vecs = embed_texts(ws, texts, model=model, progress=progress, cancel=cancel)
        p = self_pairs(vecs, threshold, progress=progress, cancel=cancel)
        rule = TokenRule(texts)  # same near-duplicate definition as dedupe
        for a, b in zip(p.i.tolist(), p.j.tolist(), strict=True):
            if rule.reason(a, b) is None:
                ei.append(a)
                ej.append(b)
    labels = components(n, np.array(ei, dtype=np.int64), np.array(ej, dtype=np.int64))
    clusters: dict[int, list[int]] = {}
    for k, lab in enumerate(labels.tolist()):
        clusters.setdefault(lab, []).append(k)
    # A cluster's stratum is the slice of its first usable member; only clusters with a usable member count.
    by_slice: dict[str, list[list[int]]] = {}
    for members in clusters.values():
        first_usable = next((m for m in members if eligible[m]), None)
        if first_usable is not None:
            by_slice.setdefault(str(rows[first_usable][1]), []).append(members)
    rng = np.random.default_rng(seed)
    held: set[int] = set()
    n_strata = 0
    for s in sorted(by_slice):
        units = sorted(by_slice[s], key=lambda m: ids[m[0]])
        n_s = sum(sum(eligible[m] for m in u) for u in units)
        want = round(share * n_s)
        if n_s >= 2:
            want = max(want, min(min_per_slice, n_s - 1))
        got = 0
        for u in (units[i] for i in rng.permutation(len(units))):
            if got >= want:
                break
            size = sum(eligible[m] for m in u)
            if got + size > want and got > 0 and got + size - want > want - got:
                continue  # this cluster would overshoot more than it helps
            held.update(u)
            got += size
        n_strata += 1
        report(progress, cancel, "stratifying", n_strata, len(by_slice))
    # Counted per record in its own slice (a cluster can span slices), so a slice's counts never exceed its records.
    counts: dict[str, list[int]] = {}
    for m in range(n):
        c = counts.setdefault(str(rows[m][1]), [0, 0, 0])
        if eligible[m]:
            c[0] += 1
            c[1] += m in held
        else:
            c[2] += 1
    per_slice = [(s, *c) for s, c in sorted(counts.items())]
    heldout = sorted(ids[m] for m in held)
    train = sorted(ids[m] for m in range(n) if m not in held)
    joined = sum(1 for m in clusters.values() if len(m) > 1)
    return SplitPlan(name, share, seed, threshold, heldout, train, per_slice, joined)


def freeze_split(ws: Workspace, plan: SplitPlan, *, model: str | None = None, slicing: str | None = None) -> None:
    """Store (freeze) a planned split."""
    import pyarrow as pa

    slicing = resolve_slicing(ws, slicing)  # recorded by name (None = the active one)
    params = {"share": plan.share, "seed": plan.seed, "threshold": plan.threshold, "model": model, "slicing": slicing}
    sides = ["heldout"] * len(plan.heldout) + ["train"] * len(plan.train)
    tbl = pa.table({"record_id": pa.array(plan.heldout + plan.train, pa.int64()), "side": pa.array(sides)})
    with ws.transaction() as cur:
        if cur.execute("SELECT count(*) FROM splits WHERE name = ?", [plan.name]).fetchall()[0][0]:
            raise UserError(f"split {plan.name!r} is frozen (made before); choose another name")
        cur.execute(
            "INSERT INTO splits VALUES (?, ?, ?, ?, ?)",
            [plan.name, json.dumps(params), len(plan.train), len(plan.heldout), datetime.now()],
        )
        cur.register("_sp", tbl)
        cur.execute("INSERT INTO split_members SELECT ?, record_id, side FROM _sp", [plan.name])
        cur.unregister("_sp")


def list_splits(ws: Workspace) -> list[dict]:
    """Stored splits."""
    return ws.query_dicts(
        "SELECT name, n_train, n_heldout, CAST(params AS VARCHAR) AS params, created_at FROM splits ORDER BY created_at"
    )


def check_leakage(
    ws: Workspace,
    split: str = DEFAULT_SPLIT,
    *,
    threshold: float | None = DEFAULT_THRESHOLD,
    model: str | None = None,
    record_ids: Sequence[int] | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> list[LeakPair]:
    """Held-out/train pairs that are exact (normalised prompt) or semantic (>= threshold) duplicates.

    Train = every record not on the held-out side, including records added after the split; with ``record_ids``,
    only those of them (a round checks its new inputs before they enter a version).
    """
    _frozen_split(ws, split)
    rows = ws.query(
        "SELECT r.record_id, coalesce(r.prompt, ''), coalesce(sm.side, 'train') FROM records r "
        "LEFT JOIN split_members sm ON sm.record_id = r.record_id AND sm.split = ? ORDER BY r.record_id",
        [split],
    )
    held = [(int(r[0]), str(r[1])) for r in rows if r[2] == "heldout"]
    only = None if record_ids is None else set(record_ids)
    train = [(int(r[0]), str(r[1])) for r in rows if r[2] != "heldout" and (only is None or int(r[0]) in only)]
    leaks: dict[tuple[int, int], LeakPair] = {}
    by_hash: dict[str, list[int]] = {}
    for rid, t in held:
        by_hash.setdefault(normalised_hash(t), []).append(rid)
    for rid, t in train:
        for h in by_hash.get(normalised_hash(t), []):
            leaks[(h, rid)] = LeakPair(h, rid, 1.0, "exact")
    if threshold is not None and held and train:
        from curation.embeddings import embed_texts

        hv = embed_texts(ws, [t for _, t in held], model=model, progress=progress, cancel=cancel)
        tv = embed_texts(ws, [t for _, t in train], model=model, progress=progress, cancel=cancel)
        p = cross_pairs(tv, hv, threshold)
        for a, b, s in zip(p.i.tolist(), p.j.tolist(), p.sim.tolist(), strict=True):
            if why_different(train[a][1], held[b][1]) is not None:
                continue  # same near-duplicate definition as dedupe: a number, negation ... differs
            key = (held[b][0], train[a][0])
            if key not in leaks:
                leaks[key] = LeakPair(key[0], key[1], float(s), "semantic")
    return sorted(leaks.values(), key=lambda lp: (-lp.similarity, lp.heldout_id, lp.train_id))
