"""Evaluate a student on the held-out split (or an external gold set): generate, score per slice against the bar
with intervals and calibration, store everything.

``evaluate_model`` judges one model on one set (a run's best adapter, or the untuned base model as the baseline);
``evaluate_run`` does both for a run so the lift is visible, on the held-out split and, when given, a gold set.
Reads for screens and the CLI are in ``train.eval_reads`` (re-exported here).
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.errors import UserError
from curation.progress import ProgressFn, report
from curation.soft_labels import LabelSpec, label_set
from curation.verifiers import answer_label
from curation.workspace import Workspace
from train import store
from train.bars import QualityBar, require_bar
from train.config import EVAL
from train.data import Example, load_examples, prompt_text
from train.eval_reads import (
    baseline_for,
    count_disagreements,
    disagreements,
    get_evaluation,
    heldout_for,
    list_evaluations,
    request_more_inputs,
)
from train.gold import GoldSet
from train.metrics import metric_name
from train.sampling import label_field, stratified_sample
from train.scoring import Item, SliceScore, cost_per_1k, macro_for, percentile, score_all, verdict
from train.stats import MacroAverage

__all__ = [  # the evaluation API in one place for its callers (the reads live in train.eval_reads)
    "EvalResult", "baseline_for", "count_disagreements", "disagreements", "evaluate_model", "evaluate_run",
    "get_evaluation", "heldout_for", "list_evaluations", "request_more_inputs", "sample_examples",
]  # fmt: skip

if TYPE_CHECKING:
    from train.generate import Generation

# Answers from elsewhere than a local model (an API model as a baseline): the generations for the held-out rows, in
# their order, and the cost of 1,000 such requests when the model is billed per request (None: the bar's machine
# price over the measured throughput, as for a local student).
Answerer = Callable[[list[Example]], "tuple[list[Generation], float | None]"]


@dataclass
class EvalResult:
    """An evaluation as stored: overall and per-slice scores with their statistics, verdict, serving figures and
    what the evaluation itself cost (wall time, tokens, memory)."""

    eval_id: int
    kind: str
    run_id: int | None
    base_model: str
    n_items: int
    overall: SliceScore  # the micro average (all items pooled)
    slices: list[SliceScore]
    checks: dict[str, bool]
    passed: bool
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    throughput_rps: float
    tokens_per_s: float  # generation only
    cost_per_1k: float | None
    teacher_cost_per_1k: float | None
    judges: dict[str, Any] = field(default_factory=dict)  # judge metric -> JudgeReport as a dict
    eval_set: str = "heldout"  # heldout | gold
    data_path: str = ""
    macro: MacroAverage | None = None
    wall_s: float = 0.0  # the whole evaluation: model load, generation, scoring, judges
    new_tokens: int = 0
    overall_tokens_per_s: float = 0.0  # new tokens over the whole wall time
    peak_rss_mb: float | None = None
    peak_gpu_mb: float | None = None
    sample: dict[str, Any] = field(default_factory=dict)  # {"of": rows, "limit": N, "seed": S}
    note: str | None = None
    constrain: dict[str, Any] | None = None  # answers kept inside the label set: mode, field, labels, changed


def sample_examples(examples: list[Example], bar: QualityBar, limit: int | None, seed: int) -> list[Example]:
    """A ``limit`` sample stratified by slice and, when the bar names a label field, by the expected answer's label
    (the reference, else the teacher's answer); see ``train.sampling``."""
    labelled, fld = label_field(bar.metrics)
    label_of = None
    if labelled:

        def label_of(e: Example) -> str:
            return answer_label(e.reference if e.reference is not None else e.teacher, fld)

    return stratified_sample(examples, limit, slice_of=lambda e: e.slice, label_of=label_of, seed=seed)


def _reset_gpu_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory(device: str) -> tuple[float, float | None]:
    """(peak RSS of this process in MiB, peak CUDA memory allocated since the last reset in MiB or None)."""
    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
    gpu = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return rss, gpu


def evaluate_model(
    ws: Workspace,
    *,
    base_model: str,
    data_path: str | Path,
    bar: QualityBar,
    adapter_path: str | None = None,
    run_id: int | None = None,
    kind: str = "tuned",
    gold: GoldSet | None = None,
    limit: int | None = None,
    seed: int = EVAL.default("seed"),
    batch_size: int = EVAL.default("gen_batch_size"),
    max_new_tokens: int = EVAL.default("max_new_tokens"),
    device: str = "auto",
    precision: str = "auto",
    models: dict[tuple[str, str | None], Any] | None = None,
    constrain: str | None = None,
    answerer: Answerer | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> EvalResult:
    """Generate answers for the held-out rows of ``data_path`` (or the rows of ``gold``; a ``limit`` takes a seeded
    stratified sample), score them with ``bar`` and store the evaluation. ``models`` caches loaded models across
    the evaluations of one command (a model loads once; its load counts in the wall time of the first).
    ``constrain`` (``train.config.CONSTRAIN_MODES``): keep the answers' label field inside the bar's label set.
    ``answerer`` replaces the local model (``base_model`` is then only the name stored; no constraint applies)."""
    from train.constrain import LabelConstraint, score_labels
    from train.generate import generate, load_for_inference
    from train.judge import check_judges

    started = time.perf_counter()
    _reset_gpu_peak()
    if gold is not None:
        rows, source, eval_set = list(gold.examples), gold.path, "gold"
    else:
        rows, source, eval_set = [e for e in load_examples(data_path) if e.split != "train"], str(data_path), "heldout"
    if not rows:
        raise UserError(f"{Path(data_path).name} has no held-out rows to evaluate on")
    if bar.bar_id is None:
        raise UserError("store the quality bar (set_bar) before evaluating against it")
    spec, labels = eval_labels(bar, rows, constrain)
    check_judges(ws, bar.metrics)
    held = sample_examples(rows, bar, limit, seed)
    key = (base_model, adapter_path)
    billed_per_1k: float | None = None
    if answerer is not None:
        dev = "cpu"  # nothing runs on a device here: the peak memory is this process's
        t0 = time.perf_counter()
        gens, billed_per_1k = answerer(held)
    else:
        if models is not None and key in models:
            model, tok, dev = models[key]
        else:
            report(progress, cancel, "load model", 0, None, base_model)
            model, tok, dev = load_for_inference(base_model, adapter_path, device, precision)
            if models is not None:
                models[key] = (model, tok, dev)
        prompts = [prompt_text(tok, e.prompt_messages) for e in held]
        proc = LabelConstraint(tok, spec.field, labels).processor if spec is not None and constrain == "trie" else None
        t0 = time.perf_counter()
        gens = generate(model, tok, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens, device=dev,
                        progress=progress, cancel=cancel, logits_processor=proc)  # fmt: skip
    constrained = None
    if spec is not None and answerer is None:
        before = [g.text for g in gens]
        if constrain == "score":  # the confidence stays that of the generated answer
            gens = [replace(g, text=score_labels(model, tok, e.with_answer(g.text), spec.field, labels, device=dev))
                    for e, g in zip(held, gens, strict=True)]  # fmt: skip
        constrained = {"mode": constrain, "field": spec.field, "labels": len(labels),
                       "changed": sum(a != g.text for a, g in zip(before, gens, strict=True))}  # fmt: skip
    gen_wall = time.perf_counter() - t0
    items = [
        Item(e.record_id, e.slice, e.prompt_messages[-1]["content"] if e.prompt_messages else "", g.text, e.teacher,
             e.reference, g.latency_ms, confidence=g.confidence, source_line=getattr(e, "source_line", None))
        for e, g in zip(held, gens, strict=True)
    ]  # fmt: skip
    judges = judge_all(ws, bar, items, progress=progress, cancel=cancel)
    overall, slices = score_all(items, bar)
    lat = [g.latency_ms for g in gens]
    rps = len(gens) / gen_wall if gen_wall > 0 else 0.0
    p50, p95 = percentile(lat, 50), percentile(lat, 95)
    cost = billed_per_1k if answerer is not None else cost_per_1k(rps, bar.student_price_per_hour)
    checks = verdict(overall, slices, bar, p95, cost)
    new_tokens = sum(g.new_tokens for g in gens)
    wall = time.perf_counter() - started
    rss, gpu = peak_memory(dev)
    result = EvalResult(
        0, kind, run_id, base_model, len(items), overall, slices, checks, all(checks.values()), p50, p95, rps,
        new_tokens / gen_wall if gen_wall > 0 else 0.0, cost, bar.teacher_price_per_1k, judges, eval_set, source,
        macro_for(items, bar), wall, new_tokens, new_tokens / wall if wall > 0 else 0.0, rss, gpu,
        {"of": len(rows), "limit": limit, "seed": seed}, gold.note if gold is not None else None, constrained,
    )  # fmt: skip
    result.eval_id = store_evaluation(ws, result, items, bar, adapter_path)
    return result


def eval_labels(bar: QualityBar, rows: list[Example], constrain: str | None) -> tuple[LabelSpec | None, list[str]]:
    """The label field and set answers are kept in (``constrain``): the bar's label metric, else the values the
    references name. (None, []) when not constraining; ``UserError`` when there is nothing to constrain to."""
    from train.config import CONSTRAIN_MODES

    if constrain is None:
        return None, []
    if constrain not in CONSTRAIN_MODES:
        raise UserError(f"keep answers in the label set by one of {', '.join(CONSTRAIN_MODES)}, not {constrain!r}")
    spec = bar.label_spec()
    if spec is None:
        raise UserError("keeping answers in the label set needs a bar metric on a JSON field (exact:FIELD or a "
                        "label verifier on a field)")  # fmt: skip
    labels = label_set(spec, (e.reference for e in rows))
    if not labels:
        raise UserError(f"no label set for {spec.field!r}: the bar names none and no reference gives one")
    return spec, labels


def judge_all(
    ws: Workspace,
    bar: QualityBar,
    items: list[Item],
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Run every LLM-as-judge metric of the bar over ``items`` (fills ``item.judged``); return their reports."""
    from train.judge import judge_items

    out: dict[str, Any] = {}
    for spec in bar.metrics:
        if spec["kind"] != "judge":
            continue
        name = metric_name(spec)
        grades, rep = judge_items(ws, spec, bar.task, items, progress=progress, cancel=cancel)
        for it, g in zip(items, grades, strict=True):
            it.judged[name] = g
        out[name] = asdict(rep)
    return out


def _slice_row(s: SliceScore) -> dict[str, Any]:
    return {"slice": s.slice, "n": s.n, "score": s.score, "student_vs_reference": s.student_vs_reference,
            "teacher_vs_reference": s.teacher_vs_reference, "gap": s.gap, "bar": s.bar, "passed": s.passed,
            "metrics": json.dumps(s.metrics), "n_scored": s.n_scored, "score_low": s.score_low,
            "score_high": s.score_high, "diff": s.diff, "diff_low": s.diff_low, "diff_high": s.diff_high,
            "n_paired": s.n_paired, "more_items": s.more_items, "ece": s.ece,
            "reliability": json.dumps([asdict(b) for b in s.reliability])}  # fmt: skip


def store_evaluation(ws: Workspace, r: EvalResult, items: list[Item], bar: QualityBar, adapter_path: str | None) -> int:
    """Write the evaluation, its slice rows and every item in one transaction (``store.insert_evaluation``); return
    the eval id."""
    summary = {"overall": asdict(r.overall), "checks": r.checks, "primary_metric": bar.primary_name,
               "judges": r.judges, "macro": asdict(r.macro) if r.macro else None, "sample": r.sample,
               "note": r.note, "constrain": r.constrain}  # fmt: skip
    evaluation = {
        "run_id": r.run_id, "kind": r.kind, "base_model": r.base_model, "adapter_path": adapter_path,
        "bar_id": bar.bar_id, "data_path": r.data_path, "n_items": r.n_items, "score": r.overall.score,
        "gap": r.overall.gap, "passed": r.passed, "summary": json.dumps(summary), "latency_p50_ms": r.latency_p50_ms,
        "latency_p95_ms": r.latency_p95_ms, "throughput_rps": r.throughput_rps, "tokens_per_s": r.tokens_per_s,
        "cost_per_1k": r.cost_per_1k, "teacher_cost_per_1k": r.teacher_cost_per_1k, "created_at": datetime.now(),
        "eval_set": r.eval_set, "wall_s": r.wall_s, "new_tokens": r.new_tokens,
        "overall_tokens_per_s": r.overall_tokens_per_s, "peak_rss_mb": r.peak_rss_mb, "peak_gpu_mb": r.peak_gpu_mb,
        "ece": r.overall.ece,
    }  # fmt: skip
    rows = [{"record_id": i.record_id, "slice": i.slice, "prompt": i.prompt, "student_output": i.student,
             "teacher_output": i.teacher, "reference": i.reference, "scores": json.dumps(i.scores), "agree": i.agree,
             "latency_ms": i.latency_ms, "confidence": i.confidence, "correct": i.correct,
             "source_line": i.source_line} for i in items]  # fmt: skip
    return store.insert_evaluation(ws, evaluation, [_slice_row(s) for s in r.slices], rows)


def evaluate_run(
    ws: Workspace,
    run_id: int,
    *,
    baseline: bool = EVAL.default("baseline"),
    bar_name: str = "default",
    gold: GoldSet | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    **kwargs: Any,
) -> list[EvalResult]:
    """Evaluate a finished run's best adapter, and (``baseline``) its untuned base model the same way, on the
    held-out split and (``gold``) a gold set. Returns [tuned, baseline] on the held-out split, then the same on
    the gold set; each model is loaded once for both sets."""
    run = store.get_run(ws, run_id)
    if run["status"] != "done" or not run["adapter_path"]:
        raise UserError(f"run {run_id} is {run['status']}; only finished runs can be evaluated")
    bar = require_bar(ws, bar_name)
    common = {"base_model": run["base_model"], "data_path": run["data_path"], "bar": bar, "run_id": run_id,
              "progress": progress, "cancel": cancel, **kwargs}  # fmt: skip
    variants = [("tuned", run["adapter_path"])] + ([("baseline", None)] if baseline else [])
    held: list[EvalResult] = []
    on_gold: list[EvalResult] = []
    for kind, adapter in variants:
        models: dict[tuple[str, str | None], Any] = {}  # this variant's model, dropped before the next one loads
        held.append(evaluate_model(ws, adapter_path=adapter, kind=kind, models=models, **common))
        if gold is not None:
            on_gold.append(evaluate_model(ws, adapter_path=adapter, kind=kind, models=models, gold=gold, **common))
    return held + on_gold
