"""Plain-text lines about an evaluation, shared by the CLI and the studio (one wording for both).

An evaluation here is a dict with the keys of ``asdict(EvalResult)``, which ``get_evaluation`` also returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from train.stats import resolve_text


def is_gold(doc: dict[str, Any]) -> bool:
    return doc.get("eval_set", "heldout") == "gold"


def set_name(doc: dict[str, Any]) -> str:
    """What was evaluated: ``held-out split`` or ``gold set FILE``."""
    return f"gold set {Path(doc['data_path']).name}" if is_gold(doc) else "held-out split"


def notes(doc: dict[str, Any]) -> list[str]:
    """Where more items would resolve a slice, how the items were sampled, and what to know about a gold set."""
    out = []
    for s in [*doc["slices"], doc["overall"]]:
        hint = resolve_text(s.get("more_items"), "gold" if is_gold(doc) else "held-out")
        if hint:
            out.append(f"{s['slice']}: {hint}")
    sample = doc.get("sample") or {}
    if sample.get("limit") is not None and sample["limit"] < sample.get("of", 0):
        out.append(f"sample: {doc['n_items']:,} of {sample['of']:,} rows, stratified by slice and label "
                   f"(seed {sample['seed']})")  # fmt: skip
    if doc.get("note"):
        out.append(f"note: {doc['note']}")
    if c := doc.get("constrain"):
        out.append(f"answers kept inside {c['labels']} labels of {c['field']!r} ({c['mode']}): {c['changed']} changed")
    return out


def cost_text(doc: dict[str, Any]) -> str:
    """Wall time, tokens, overall tokens/s and peak memory of an evaluation."""
    if doc.get("wall_s") is None:
        return "not recorded (an evaluation from before v10)"
    gpu = f", GPU peak {doc['peak_gpu_mb']:,.0f} MiB" if doc.get("peak_gpu_mb") is not None else ""
    return (f"wall {doc['wall_s']:.1f} s, {doc['new_tokens'] or 0:,} tokens, {doc['overall_tokens_per_s'] or 0:.1f} "
            f"tok/s overall ({doc['tokens_per_s'] or 0:.1f} while generating), peak RSS "
            f"{doc['peak_rss_mb'] or 0:,.0f} MiB{gpu}")  # fmt: skip
