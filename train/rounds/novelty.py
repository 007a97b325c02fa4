"""Whether a round's new inputs repeat what the workspace has: each new record against every older one (and the
new ones among themselves), by dedupe's own definitions (``curation.dedupe``: the same normalised prompt, or
semantic similarity at the threshold where ``curation.near_dupes``' token rule finds no meaningful difference),
without storing a workspace-wide dedupe run.

A round whose version had no dedupe used to run one over the whole workspace and store it (every later pool
inherits it); on the sample after `distill demo`, split and rebalance, that preview is blocked by the rare-slice
guard (security; it would remove 2,514 records in all), so the round stopped before a single new input was checked.
This asks only the question the round has: is this new input new?
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from curation.dedupe import DEDUPE, DEFAULT_THRESHOLD, normalised_hash
from curation.effective import effective_sql
from curation.near_dupes import why_different
from curation.neighbors import cross_pairs, self_pairs
from curation.progress import ProgressFn, check_cancel
from curation.workspace import Workspace


def older_near_duplicates(
    ws: Workspace,
    new_ids: Sequence[int],
    *,
    threshold: float | None = DEFAULT_THRESHOLD,
    model: str | None = None,
    token_check: bool = DEDUPE.default("token_check"),
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> dict[int, int]:
    """New record -> a record it duplicates: an older one (any record not in ``new_ids`` and not rejected), or a
    new one with a smaller id. ``threshold`` None: exact (normalised) matches only."""
    if not new_ids:
        return {}
    base, params = effective_sql(ws)
    rows = ws.query(f"SELECT record_id, coalesce(prompt, '') FROM ({base}) e WHERE status <> 'rejected' "
                    "ORDER BY record_id", params)  # fmt: skip
    fresh = set(new_ids)
    new = [(int(r), str(p)) for r, p in rows if int(r) in fresh]
    old = [(int(r), str(p)) for r, p in rows if int(r) not in fresh]
    found: dict[int, int] = {}
    seen: dict[str, int] = {normalised_hash(p): r for r, p in old}
    for rid, p in new:
        h = normalised_hash(p)
        if h in seen:
            found[rid] = seen[h]
        else:
            seen[h] = rid
    if threshold is None:
        return found
    check_cancel(cancel)
    from curation.embeddings import embed_texts

    rest = [(r, p) for r, p in new if r not in found]
    if not rest:
        return found
    nv = embed_texts(ws, [p for _, p in rest], model=model, progress=progress, cancel=cancel)
    candidates: list[tuple[int, int]] = []  # (new index, matched record)
    if old:
        ov = embed_texts(ws, [p for _, p in old], model=model, progress=progress, cancel=cancel)
        cp = cross_pairs(nv, ov, threshold)
        candidates += [(i, old[j][0]) for i, j in zip(cp.i.tolist(), cp.j.tolist(), strict=True)]
    sp = self_pairs(np.asarray(nv), threshold, cancel=cancel)
    candidates += [(max(i, j), rest[min(i, j)][0]) for i, j, s in zip(sp.i.tolist(), sp.j.tolist(), sp.sim.tolist(),
                                                                     strict=True) if s >= threshold]  # fmt: skip
    prompt = dict(rows)
    for i, other in sorted(candidates):
        rid, text = rest[i]
        if rid in found or (token_check and why_different(text, str(prompt[other])) is not None):
            continue
        found[rid] = other
    return found
