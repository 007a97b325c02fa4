"""The curation operations the studio offers: parameters, a preview and an apply step for each.

Pure functions over ``curation`` (no widgets): each preview returns ``(state, renderable)`` and runs in a
worker thread with the screen's progress callback and cancel event; ``apply`` turns the previewed state into a
change and returns a one-line summary. The renderables are Rich tables, built off the event loop.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from curation.errors import UserError
from curation.progress import ProgressFn
from curation.workspace import Workspace

Preview = Callable[[Workspace, dict[str, str], ProgressFn, threading.Event], tuple[Any, Any]]
Apply = Callable[[Workspace, Any, dict[str, str]], str]


@dataclass(frozen=True)
class Operation:
    """One curation operation as the studio shows it."""

    key: str
    title: str
    defaults: str  # "key=value ..." shown in the parameter input
    preview: Preview
    apply: Apply
    help: str


def parse_params(text: str) -> dict[str, str]:
    """``"a=1 b='x y'"`` -> {"a": "1", "b": "x y"}."""
    out: dict[str, str] = {}
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise UserError(f"parameters: {exc}") from None
    for tok in tokens:
        k, sep, v = tok.partition("=")
        if not sep:
            raise UserError(f"parameter {tok!r}: expected key=value")
        out[k.strip()] = v
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _table(title: str, headers: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title, title_justify="left", expand=False)
    for h in headers:
        t.add_column(h, justify="right" if h not in ("slice", "action", "prompt", "reason") else "left")
    for r in rows:
        t.add_row(*[x if isinstance(x, str) else f"{x:,}" if isinstance(x, int) else f"{x:.3f}" for x in r])
    return t


def _yes(v: str | None) -> bool:
    return (v or "").lower() in ("yes", "true", "1")


def _split(ws: Workspace, p: dict[str, str]) -> str | None:
    from curation.splits import split_exists

    name = p.get("split", "heldout")
    return name if name and split_exists(ws, name) else None


def _slicing(ws: Workspace, p: dict[str, str]) -> str | None:
    from curation.pool import active_slicing

    return p.get("slicing") or active_slicing(ws)


# -- slices ----------------------------------------------------------------------------------------------------


def preview_slices(ws, p, progress, cancel):
    from curation import slices as sl

    if p.get("field"):
        rows = sl.preview_expr(ws, sl.field_expr(p["field"]))
        total = sum(n for _, n in rows) or 1
        return p, _table(
            f"slices by {p['field']} (apply stores it as {p.get('name') or '?'} and uses it)",
            ["slice", "records", "share"],
            [[s, n, _pct(n / total)] for s, n in rows],
        )
    shares = sl.slice_shares(ws, _slicing(ws, p))
    return p, _table(
        "current slices",
        ["slice", "records", "share", "with response"],
        [[s.slice, s.n, _pct(s.share), s.n_with_response] for s in shares],
    )


def apply_slices(ws, state, p) -> str:
    from curation import slices as sl

    if not p.get("field") or not p.get("name"):
        raise UserError("give field=PATH name=NAME to store a slicing")
    n = sl.define_by_field(ws, p["name"], p["field"])
    sl.use_slicing(ws, p["name"])
    return f"slicing {p['name']} stored ({n:,} records) and in use"


# -- rebalance -------------------------------------------------------------------------------------------------


def preview_rebalance(ws, p, progress, cancel):
    from curation.rebalance import Target, plan_rebalance

    kind = p.get("target", "production")
    shares = {k: float(v) for k, _, v in (x.partition(":") for x in p.get("shares", "").split(",") if x)}
    from datetime import datetime

    since, until = p.get("since"), p.get("until")
    target = Target(
        kind,
        shares=shares,
        min_count=int(p.get("min_count", "0") or 0),
        since=datetime.fromisoformat(since) if since else None,
        until=datetime.fromisoformat(until) if until else None,
    )
    plan = plan_rebalance(
        ws,
        target,
        mode=p.get("mode", "weight"),
        max_factor=float(p.get("max_factor", "5")),
        seed=int(p.get("seed", "0")),
        slicing=_slicing(ws, p),
        split=_split(ws, p),
    )
    t = _table(
        f"rebalance to {kind}: total variation {plan.tv_before:.3f} -> {plan.tv_after:.3f}",
        ["slice", "before", "before %", "target %", "after", "after %", "action"],
        [
            [r.slice, r.before_n, _pct(r.before_share), _pct(r.target_share), r.after_n, _pct(r.after_share), r.action]
            for r in plan.rows
        ],
    )
    note = Text(
        f"held-out {len(plan.pool.heldout):,} (split {plan.pool.split or 'none'}); excluded "
        f"{plan.pool.excluded or 'none'}; records without a response need the teacher first\n"
        + "\n".join(f"warning: {w}" for w in plan.warnings)
    )
    return plan, Group(t, note)


def apply_rebalance_op(ws, plan, p) -> str:
    from curation.rebalance import apply_rebalance

    info = apply_rebalance(ws, plan, p.get("name") or "rebalanced")
    return f"wrote dataset version {info.name}: {info.n_train:,} train, {info.n_heldout:,} held-out"


# -- dedupe ----------------------------------------------------------------------------------------------------


def preview_dedupe(ws, p, progress, cancel):
    from curation.dedupe import find_duplicates

    res = find_duplicates(
        ws,
        kind=p.get("kind", "semantic"),
        threshold=float(p.get("threshold", "0.85")),
        slicing=_slicing(ws, p),
        split=_split(ws, p),
        progress=progress,
        cancel=cancel,
    )
    t = _table(
        f"{res.kind} dedupe: {len(res.clusters):,} clusters, {res.n_removed:,} to remove ({res.method})",
        ["slice", "records", "removed", "rate", "guard"],
        [
            [s.slice, s.n, s.removed, _pct(s.rate), "BLOCKED (rare)" if s.blocked else ("rare" if s.rare else "")]
            for s in res.per_slice
        ],
    )
    pairs = _table(
        "pairs just above / below the threshold",
        ["sim", "side", "prompt"],
        [
            [x.similarity, side, f"{x.prompt_a[:50]!r} ~ {x.prompt_b[:50]!r}"]
            for side, xs in (("above", res.above), ("below", res.below))
            for x in xs
        ],
    )
    return res, Group(t, pairs)


def apply_dedupe_op(ws, res, p) -> str:
    from curation.dedupe import apply_dedupe

    run = apply_dedupe(ws, res, force=_yes(p.get("force")))
    return f"stored dedupe run {run}: {res.n_removed:,} records left out of new versions"


# -- split -----------------------------------------------------------------------------------------------------


def preview_split(ws, p, progress, cancel):
    from curation.splits import plan_split

    thr = p.get("threshold", "0.85")
    plan = plan_split(
        ws,
        name=p.get("name", "heldout"),
        share=float(p.get("share", "0.1")),
        seed=int(p.get("seed", "0")),
        threshold=float(thr) if thr not in ("", "none") else None,
        slicing=_slicing(ws, p),
        progress=progress,
        cancel=cancel,
    )
    return plan, _table(
        f"held-out {len(plan.heldout):,} / train {len(plan.train):,} ({plan.n_clusters_joined:,} clusters kept whole)",
        ["slice", "eligible", "held-out", "share"],
        [[s, n, h, _pct(h / n if n else 0)] for s, n, h in plan.per_slice],
    )


def apply_split(ws, plan, p) -> str:
    from curation.splits import freeze_split

    freeze_split(ws, plan, slicing=_slicing(ws, p))
    return f"split {plan.name} frozen: {len(plan.heldout):,} held-out"


# -- filter ----------------------------------------------------------------------------------------------------


def _filter_spec(p: dict[str, str]) -> dict[str, Any]:
    import json

    if "verifier" in p:
        return {"kind": "verifier", "verifier": json.loads(p["verifier"])}
    return {
        "kind": "confidence",
        "metric": p.get("metric", "answer_prob"),
        "field": p.get("field") or None,
        "min": float(p.get("min", "0.5")),
    }


def preview_filter(ws, p, progress, cancel):
    from curation.filters import run_filter

    rep = run_filter(
        ws,
        p.get("name", "filter"),
        _filter_spec(p),
        p.get("policy", "review"),
        slicing=_slicing(ws, p),
        progress=progress,
        cancel=cancel,
    )
    t = _table(
        f"{rep.name}: {rep.n_failed:,} of {rep.n_checked:,} fail; policy {rep.policy} -> queue {rep.n_to_queue:,}"
        f", {rep.n_protected:,} human decisions kept",
        ["slice", "checked", "failed"],
        [list(r) for r in rep.per_slice],
    )
    sample = _table(
        "failing examples",
        ["record", "reason", "prompt"],
        [[str(s["record_id"]), s["reason"], s["prompt"][:70]] for s in rep.sample],
    )
    return rep, Group(t, sample)


def apply_filter(ws, rep, p) -> str:
    from curation.filters import run_filter

    done = run_filter(ws, rep.name, _filter_spec(p), rep.policy, apply=True, slicing=_slicing(ws, p))
    return f"filter run {done.run_id}: {done.n_failed:,} failed, {done.n_to_queue:,} queued for review"


# -- versions and export ---------------------------------------------------------------------------------------


def preview_export(ws, p, progress, cancel):
    from curation.datasets import list_versions

    vs = list_versions(ws)
    name = p.get("version") or (vs[0].name if vs else "")
    rows = [
        [
            v.name + (" <" if v.name == name else ""),
            v.n_train,
            v.n_heldout,
            v.split or "-",
            " > ".join(s["op"] for s in v.recipe),
        ]
        for v in vs
    ]
    return name, _table(
        f"export {name or '(no version yet)'} as {p.get('format', 'openai')}",
        ["version", "train", "held-out", "split", "recipe"],
        rows,
    )


def apply_export(ws, name, p) -> str:
    from curation.export import export_version

    if not name:
        raise UserError("no dataset version to export (rebalance or snapshot first)")
    res = export_version(
        ws,
        name,
        p.get("out") or None,
        fmt=p.get("format", "openai"),
        include_notes=_yes(p.get("notes")),
        include_metadata=_yes(p.get("metadata")),
    )
    return "; ".join(f"{s}: {res.lines[s]:,} lines -> {f}" for s, f in res.files.items()) + (
        f" ({'; '.join(res.warnings)})" if res.warnings else ""
    )


# In the order a data lead goes through them.
OPERATIONS: list[Operation] = [
    Operation(
        "slices",
        "Slices",
        "field=metadata.product_area name=area",
        preview_slices,
        apply_slices,
        "shares per slice; apply stores a slicing by field and uses it",
    ),
    Operation(
        "dedupe",
        "Dedupe",
        "kind=semantic threshold=0.85 force=no",
        preview_dedupe,
        apply_dedupe_op,
        "exact or semantic near-duplicates; keeps accepted, then confident, then earliest",
    ),
    Operation(
        "split",
        "Held-out split",
        "name=heldout share=0.1 seed=0 threshold=0.85",
        preview_split,
        apply_split,
        "stratified by slice, whole clusters, frozen once made",
    ),
    Operation(
        "filter",
        "Filter",
        "name=intent-conf metric=answer_prob field=intent min=0.5 policy=review",
        preview_filter,
        apply_filter,
        "metric=mean_logprob|min_logprob|answer_prob (field=) min=X, or verifier='{...}'; policy=drop|review|keep",
    ),
    Operation(
        "rebalance",
        "Rebalance",
        "target=production mode=weight max_factor=5 seed=0 name=prod-v1",
        preview_rebalance,
        apply_rebalance_op,
        "targets: production (since=/until= ISO window) | shares (shares=a:0.3,b:0.2) | min_count; writes a version",
    ),
    Operation(
        "export",
        "Export",
        "format=openai",
        preview_export,
        apply_export,
        "version=NAME format=openai|jsonl|parquet out=DIR; notes=yes / metadata=yes to include them",
    ),
]
