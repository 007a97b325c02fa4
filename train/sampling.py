"""A limited evaluation (``--limit N``) takes a seeded random sample stratified by slice and by the answer's label,
never the first rows in file order (a file sorted by date or by label would otherwise decide what is measured).

Slices share the sample equally (water-filling: a slice smaller than its share gives the rest to the others), so a
small evaluation still covers every slice, rare ones included, and gives each slice's interval about the same
width. Inside a slice the labels share its part in proportion to their counts, with at least one item per label
while there is room, so the slice's score stays representative of its own mix. Items are then drawn at random
within each (slice, label) stratum. The same examples, limit and seed always give the same sample.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def label_field(metrics: Sequence[dict[str, Any]]) -> tuple[bool, str | None]:
    """Whether the bar's metrics name a label, and its field: the first of ``exact:FIELD``,
    ``label_in_set[:FIELD]``, ``verifier:label[:FIELD]`` or ``verifier:exact_match:FIELD``. A label metric without
    a field labels the whole answer (field None); an exact match on the whole answer is free text, not a label."""
    for spec in metrics:
        kind = spec.get("kind")
        if kind == "json_field":
            return True, spec["field"]
        if kind == "label_in_set":
            return True, spec.get("field")
        if kind == "verifier":
            v = spec.get("verifier") or {}
            if v.get("type") == "label" or (v.get("type") == "exact_match" and v.get("field")):
                return True, v.get("field")
    return False, None


def _one_each(keys: list[str], total: int, rng: random.Random) -> dict[str, int]:
    """One place each for a random ``total`` of the groups (fewer places than groups)."""
    lucky = set(rng.sample(keys, total))
    return {k: int(k in lucky) for k in keys}


def _water_fill(sizes: dict[str, int], total: int, rng: random.Random) -> dict[str, int]:
    """Split ``total`` into equal shares capped by each group's size; what a small group cannot take goes to the
    others. With fewer places than groups, a random choice of groups gets one each."""
    keys = sorted(sizes)
    if total < len(keys):
        return _one_each(keys, total, rng)
    share = dict.fromkeys(keys, 0)
    left, open_keys = total, [k for k in keys if sizes[k] > 0]
    while left > 0 and open_keys:
        each = max(1, left // len(open_keys))
        for k in rng.sample(open_keys, len(open_keys)):  # who gets the odd ones is random, not alphabetical
            take = min(each, sizes[k] - share[k], left)
            share[k] += take
            left -= take
        open_keys = [k for k in open_keys if share[k] < sizes[k]]
    return share


def _proportional(sizes: dict[str, int], total: int, rng: random.Random) -> dict[str, int]:
    """Split ``total`` in proportion to the sizes (largest remainder), at least one per group while there is room."""
    keys = sorted(sizes)
    if total < len(keys):
        return _one_each(keys, total, rng)
    share = dict.fromkeys(keys, 1)
    rest, room = total - len(keys), {k: sizes[k] - 1 for k in keys}
    pool = sum(room.values())
    if rest <= 0 or pool <= 0:
        return share
    exact = {k: rest * room[k] / pool for k in keys}
    for k in keys:
        share[k] += int(exact[k])
    order = sorted(keys, key=lambda k: (-(exact[k] - int(exact[k])), rng.random()))
    for k in order[: rest - sum(int(v) for v in exact.values())]:
        share[k] += 1
    return share


def stratified_sample(
    items: Sequence[T],
    limit: int | None,
    *,
    slice_of: Callable[[T], str],
    label_of: Callable[[T], str] | None = None,
    seed: int = 0,
) -> list[T]:
    """At most ``limit`` of ``items``: a seeded random sample stratified by slice (equal shares) and, with
    ``label_of``, by label within each slice (proportional, every label while there is room). No limit = all of
    them; the sample keeps the items' original order."""
    if limit is None or limit >= len(items):
        return list(items)
    rng = random.Random(seed)
    strata: dict[str, dict[str, list[int]]] = {}
    for i, it in enumerate(items):
        label = label_of(it) if label_of is not None else ""
        strata.setdefault(slice_of(it), {}).setdefault(label, []).append(i)
    per_slice = _water_fill({s: sum(len(v) for v in labels.values()) for s, labels in strata.items()}, limit, rng)
    chosen: list[int] = []
    for s in sorted(strata):
        labels = strata[s]
        per_label = _proportional({k: len(v) for k, v in labels.items()}, per_slice[s], rng)
        for k in sorted(labels):
            chosen.extend(rng.sample(labels[k], per_label[k]))
    return [items[i] for i in sorted(chosen)]
