"""The curation operations the studio offers: their declared options, a preview and an apply step for each.

Pure functions over ``curation`` (no widgets): each preview takes the parsed and workspace-checked option values
(the same ``OptionSet`` the CLI's flags come from), returns ``(state, renderable)`` and runs in a worker thread
with the screen's progress callback and cancel event; ``apply`` turns the previewed state into a change and returns
a one-line summary. The renderables are Rich tables, built off the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from curation import slices as sl
from curation.datasets import describe_rows
from curation.dedupe import DEDUPE
from curation.export import EXPORT
from curation.filters import FILTER
from curation.options import OptionSet, omit
from curation.oversample import OVERSAMPLE
from curation.progress import ProgressFn
from curation.rebalance import REBALANCE
from curation.splits import SPLIT_MAKE
from curation.workspace import Workspace

Values = dict[str, Any]
Preview = Callable[[Workspace, Values, ProgressFn, threading.Event], tuple[Any, Any]]
Apply = Callable[[Workspace, Any, Values], str]


@dataclass(frozen=True)
class Operation:
    """One curation operation as the studio shows it: a form from ``options``, then preview and apply."""

    key: str
    title: str
    options: OptionSet
    preview: Preview
    apply: Apply
    help: str


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _table(title: str, headers: list[str], rows: list[list[Any]]) -> Table:
    # At least as wide as the title's longest line: a narrow table wrapped its summary line into three short ones.
    t = Table(title=title, title_justify="left", expand=False, min_width=max(map(len, title.splitlines()), default=0))
    for h in headers:
        t.add_column(h, justify="right" if h not in ("slice", "action", "prompt", "reason") else "left")
    for r in rows:
        t.add_row(*[x if isinstance(x, str) else f"{x:,}" if isinstance(x, int) else f"{x:.3f}" for x in r])
    return t


# -- slices ----------------------------------------------------------------------------------------------------


def preview_slices(ws: Workspace, v: Values, progress: ProgressFn, cancel: threading.Event) -> tuple[Any, Any]:
    shares = sl.slice_shares(ws, v["slicing"])
    return v["slicing"], _table(
        f"slices under {v['slicing'] or 'records’ own slice'} (apply makes this slicing the active one)",
        ["slice", "records", "share", "with response"],
        [[s.slice, s.n, _pct(s.share), s.n_with_response] for s in shares],
    )


def apply_slices(ws: Workspace, slicing: str | None, v: Values) -> str:
    sl.use_slicing(ws, slicing)
    return f"active slicing: {slicing or 'records’ own slice'}"


def preview_define(ws: Workspace, v: Values, progress: ProgressFn, cancel: threading.Event) -> tuple[Any, Any]:
    p = sl.preview_definition(ws, v, progress=progress, cancel=cancel)
    total = sum(n for _, n in p.rows) or 1
    return p, _table(
        f"slicing {p.name} by {p.kind} (apply stores it and uses it)",
        ["slice", "records", "share"],
        [[s, n, _pct(n / total)] for s, n in p.rows],
    )


def apply_define(ws: Workspace, p: sl.SlicingPreview, v: Values) -> str:
    n = sl.store_definition(ws, p)
    sl.use_slicing(ws, p.name)
    return f"slicing {p.name} stored ({n:,} records) and in use"


# -- dedupe and split ------------------------------------------------------------------------------------------


def preview_dedupe(ws: Workspace, v: Values, progress: ProgressFn, cancel: threading.Event) -> tuple[Any, Any]:
    from curation.dedupe import find_duplicates
    from train.bars import bar_label

    res = find_duplicates(ws, **omit(v, "force"), bar_label=bar_label(ws), progress=progress, cancel=cancel)
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
    return res, Group(t, pairs, *_apart_and_conflicts(res))


def _apart_and_conflicts(res: Any) -> list[Any]:
    """Pairs the token rule kept apart, what decides on answers, and label conflicts with every answer."""
    out: list[Any] = []
    if res.kept_apart:
        why = ", ".join(f"{k} {n:,}" for k, n in sorted(res.kept_apart.items(), key=lambda kv: -kv[1]))
        out.append(_table(f"kept apart although similar ({why})", ["sim", "reason", "prompt"],
                          [[x.similarity, x.reason, f"{x.prompt_a[:50]!r} ~ {x.prompt_b[:50]!r}"] for x in res.apart]))  # fmt: skip
    out.append(Text(f"answers: {res.answer_rule}"))
    if res.conflicts:
        n = sum(len(c.to_review) for c in res.conflicts)
        out.append(_table(
            f"label conflicts: {len(res.conflicts):,} clusters with different answers; apply queues {n:,} for review",
            ["cluster", "answer", "records", "prompt"],
            [[str(k + 1), a.label[:30], ", ".join(f"#{r}" for r in a.record_ids[:4]), a.prompt[:60]]
             for k, c in enumerate(res.conflicts[:20]) for a in c.answers],
        ))  # fmt: skip
    return out


def apply_dedupe_op(ws: Workspace, res: Any, v: Values) -> str:
    from curation.dedupe_runs import apply_dedupe

    run = apply_dedupe(ws, res, force=v["force"])
    queued = sum(len(c.to_review) for c in res.conflicts)
    return f"stored dedupe run {run}: {res.n_removed:,} records left out of new versions" + (
        f"; {queued:,} label conflicts queued for review" if queued else ""
    )


def preview_split(ws: Workspace, v: Values, progress: ProgressFn, cancel: threading.Event) -> tuple[Any, Any]:
    from curation.splits import plan_split, split_kwargs

    plan = plan_split(ws, **split_kwargs(v), progress=progress, cancel=cancel)
    return plan, _table(
        f"held-out {len(plan.heldout):,} / train {len(plan.train):,} ({plan.n_clusters_joined:,} clusters kept whole)",
        ["slice", "usable", "held-out", "share", "not usable"],
        [[s, n, h, _pct(h / n if n else 0), x] for s, n, h, x in plan.per_slice],
    )


def apply_split(ws: Workspace, plan: Any, v: Values) -> str:
    from curation.splits import freeze_split

    freeze_split(ws, plan, model=v["model"], slicing=v["slicing"])
    return f"split {plan.name} frozen: {len(plan.heldout):,} held-out"


# -- filter ----------------------------------------------------------------------------------------------------


def preview_filter(ws: Workspace, v: Values, progress: ProgressFn, cancel: threading.Event) -> tuple[Any, Any]:
    from curation.filters import filter_spec, run_filter

    if not v["name"]:
        raise FILTER["name"].error("give the filter a name (re-running a name replaces its result)")
    rep = run_filter(ws, v["name"], filter_spec(v), v["policy"], slicing=v["slicing"], progress=progress,
                     cancel=cancel)  # fmt: skip
    t = _table(
        f"{rep.name}: {rep.n_failed:,} of {rep.n_checked:,} fail; policy {rep.policy} -> queue {rep.n_to_queue:,}"
        f", {rep.n_protected:,} human decisions kept" + (f"\n{rep.range_hint}" if rep.range_hint else ""),
        ["slice", "checked", "failed"],
        [list(r) for r in rep.per_slice],
    )
    sample = _table(
        "failing examples",
        ["record", "reason", "prompt"],
        [[str(s["record_id"]), s["reason"], s["prompt"][:70]] for s in rep.sample],
    )
    return rep, Group(t, sample)


def apply_filter(ws: Workspace, rep: Any, v: Values) -> str:
    from curation.filters import filter_spec, run_filter

    done = run_filter(ws, rep.name, filter_spec(v), rep.policy, apply=True, slicing=v["slicing"])
    return f"filter run {done.run_id}: {done.n_failed:,} failed, {done.n_to_queue:,} queued for review"


# -- rebalance and oversample ----------------------------------------------------------------------------------


def preview_rebalance(ws: Workspace, v: Values, progress: ProgressFn, cancel: threading.Event) -> tuple[Any, Any]:
    from curation.rebalance import plan_from_options

    plan = plan_from_options(ws, v, progress=progress, cancel=cancel)
    t = _table(
        f"rebalance to {v['to']}: total variation {plan.tv_before:.3f} -> {plan.tv_after:.3f}; "
        f"{plan.train_rows:,} training rows",
        ["slice", "before", "before %", "target %", "records", "rows", "weight", "after %", "action"],
        [
            [r.slice, r.before_n, _pct(r.before_share), _pct(r.target_share), r.after_n, r.rows, f"{r.weight:g}",
             _pct(r.after_share), r.action]
            for r in plan.rows
        ],
    )  # fmt: skip
    note = Text(
        f"held-out {len(plan.pool.heldout):,} (split {plan.pool.split or 'none'}); excluded "
        f"{plan.pool.excluded or 'none'}; records without a response need the teacher first\n"
        + "\n".join(f"warning: {w}" for w in plan.warnings)
    )
    return plan, Group(t, note)


def apply_rebalance_op(ws: Workspace, plan: Any, v: Values) -> str:
    from curation.rebalance import apply_rebalance

    if not v["name"]:
        raise REBALANCE["name"].error("give a name to write the plan as a dataset version")
    info = apply_rebalance(ws, plan, v["name"])
    return f"wrote dataset version {info.name}: {describe_rows(ws, info.name)}"


def preview_oversample(ws: Workspace, v: Values, progress: ProgressFn, cancel: threading.Event) -> tuple[Any, Any]:
    from curation.oversample import expand_flagged, plan_oversample
    from train.store import failing_slices

    flagged = failing_slices(ws, v["eval_id"]) if v["flagged"] else []  # train's verdict, as slice names
    v = expand_flagged(v, flagged)
    if not v["factor"] and not v["request"]:
        raise OVERSAMPLE["factor"].error("give factors (with a version to start from) and/or input requests")
    plan = None
    parts: list[Any] = [Text(f"slices below their bar: {', '.join(flagged)}")] if flagged else []
    if v["factor"]:
        if not v["base"]:
            raise OVERSAMPLE["base"].error("needed with factors")
        plan = plan_oversample(ws, v["base"], v["factor"], mode=v["mode"], cap=v["cap"])
        parts.append(_table(
            f"oversample {plan.base} ({plan.mode}, cap {plan.cap:g})", ["slice", "records", "share before", "share after"],
            [[s, plan.counts.get(s, 0), _pct(plan.before.get(s, 0)), _pct(plan.after.get(s, 0))] for s in plan.after],
        ))  # fmt: skip
    if v["request"]:
        parts.append(_table(f"new teacher inputs to request ({v['reason']})", ["slice", "inputs"],
                            [[s, n] for s, n in v["request"].items()]))  # fmt: skip
    return (plan, v), Group(*parts)


def apply_oversample_op(ws: Workspace, state: Any, v: Values) -> str:
    from curation.oversample import apply_oversample, request_inputs

    plan, expanded = state
    if plan is not None and not v["name"]:
        raise OVERSAMPLE["name"].error("give a name for the oversampled version")
    done = []
    if plan is not None:
        done.append(f"wrote dataset version {apply_oversample(ws, plan, v['name']).name}")
    if expanded["request"]:
        ids = request_inputs(ws, expanded["request"], reason=expanded["reason"])
        done.append(f"queued {len(ids)} input request(s) for the teacher")
    return "; ".join(done)


# -- export ----------------------------------------------------------------------------------------------------


def preview_export(ws: Workspace, v: Values, progress: ProgressFn, cancel: threading.Event) -> tuple[Any, Any]:
    from curation.datasets import list_versions

    rows = [
        [v_.name + (" <" if v_.name == v["version"] else ""), v_.n_train, v_.n_heldout, v_.split or "-",
         " > ".join(s["op"] for s in v_.recipe)]
        for v_ in list_versions(ws)
    ]  # fmt: skip
    return v["version"], _table(f"export {v['version']} as {v['format']}",
                                ["version", "train rows", "held-out", "split", "recipe"], rows)  # fmt: skip


def apply_export(ws: Workspace, name: str, v: Values) -> str:
    from curation.export import export_from_options

    res = export_from_options(ws, v)
    return "; ".join(f"{s}: {res.lines[s]:,} lines -> {f}" for s, f in res.files.items()) + (
        f" ({'; '.join(res.warnings)})" if res.warnings else ""
    )


# In the order a data lead goes through them.
OPERATIONS: list[Operation] = [
    Operation("slices", "Slices", sl.SLICES, preview_slices, apply_slices,
              "shares per slice under a slicing; apply makes it the active one"),
    Operation("define", "Define slicing", sl.SLICES_DEFINE, preview_define, apply_define,
              "a slicing by field, SQL expression or k-means clusters; apply stores it and uses it"),
    Operation("dedupe", "Dedupe", DEDUPE, preview_dedupe, apply_dedupe_op,
              "exact or semantic near-duplicates; keeps accepted, then confident, then earliest; "
              "d: similarity distribution to choose the threshold"),
    Operation("split", "Held-out split", SPLIT_MAKE, preview_split, apply_split,
              "stratified by slice, whole clusters, frozen once made"),
    Operation("filter", "Filter", FILTER, preview_filter, apply_filter,
              "a confidence metric with a minimum, or a verifier; policy drop | review | keep; "
              "d: confidence distribution, review sample and error rate per band to choose the minimum"),
    Operation("rebalance", "Rebalance", REBALANCE, preview_rebalance, apply_rebalance_op,
              "towards production shares (since/until window), explicit or equal (uniform) shares or a minimum count; "
              "a budget sizes it exactly; writes a version"),
    Operation("oversample", "Oversample", OVERSAMPLE, preview_oversample, apply_oversample_op,
              "weight or duplicate slices of a version, or queue new inputs for the teacher"),
    Operation("export", "Export", EXPORT, preview_export, apply_export,
              "a dataset version as OpenAI JSONL, messages JSONL / Parquet, or the training file"),
]  # fmt: skip
