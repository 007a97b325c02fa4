"""Evaluate a student on the held-out split: generate, score per slice against the bar, store everything.

``evaluate_model`` judges one model (a run's best adapter, or the untuned base model as the baseline);
``evaluate_run`` does both for a run so the lift is visible. Reads for screens and the CLI are here too.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from curation.errors import UserError
from curation.oversample import request_inputs
from curation.progress import ProgressFn, report
from curation.workspace import Workspace
from train import store
from train.bars import QualityBar, get_bar_by_id, require_bar
from train.data import load_examples, prompt_text, spread_over_slices
from train.metrics import metric_name
from train.scoring import Item, SliceScore, cost_per_1k, percentile, score_all, verdict


@dataclass
class EvalResult:
    """An evaluation as stored: overall and per-slice scores, verdict and serving figures."""

    eval_id: int
    kind: str
    run_id: int | None
    base_model: str
    n_items: int
    overall: SliceScore
    slices: list[SliceScore]
    checks: dict[str, bool]
    passed: bool
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    throughput_rps: float
    tokens_per_s: float
    cost_per_1k: float | None
    teacher_cost_per_1k: float | None
    judges: dict[str, Any] = field(default_factory=dict)  # judge metric -> JudgeReport as a dict


def evaluate_model(
    ws: Workspace,
    *,
    base_model: str,
    data_path: str | Path,
    bar: QualityBar,
    adapter_path: str | None = None,
    run_id: int | None = None,
    kind: str = "tuned",
    limit: int | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 64,
    device: str = "auto",
    precision: str = "auto",
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> EvalResult:
    """Generate answers for the held-out rows of ``data_path``, score them with ``bar`` and store the evaluation."""
    from train.generate import generate, load_for_inference
    from train.judge import check_judges

    held = spread_over_slices([e for e in load_examples(data_path) if e.split != "train"], limit)
    if not held:
        raise UserError(f"{Path(data_path).name} has no held-out rows to evaluate on")
    if bar.bar_id is None:
        raise UserError("store the quality bar (set_bar) before evaluating against it")
    check_judges(ws, bar.metrics)
    report(progress, cancel, "load model", 0, None, base_model)
    model, tok, dev = load_for_inference(base_model, adapter_path, device, precision)
    prompts = [prompt_text(tok, e.prompt_messages) for e in held]
    t0 = time.perf_counter()
    gens = generate(model, tok, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens, device=dev,
                    progress=progress, cancel=cancel)  # fmt: skip
    wall = time.perf_counter() - t0
    items = [
        Item(e.record_id, e.slice, e.prompt_messages[-1]["content"] if e.prompt_messages else "", g.text, e.teacher,
             e.reference, g.latency_ms)
        for e, g in zip(held, gens, strict=True)
    ]  # fmt: skip
    judges = judge_all(ws, bar, items, progress=progress, cancel=cancel)
    overall, slices = score_all(items, bar)
    lat = [g.latency_ms for g in gens]
    rps = len(gens) / wall if wall > 0 else 0.0
    p50, p95 = percentile(lat, 50), percentile(lat, 95)
    cost = cost_per_1k(rps, bar.student_price_per_hour)
    checks = verdict(overall, slices, bar, p95, cost)
    result = EvalResult(
        0, kind, run_id, base_model, len(items), overall, slices, checks, all(checks.values()), p50, p95, rps,
        sum(g.new_tokens for g in gens) / wall if wall > 0 else 0.0, cost, bar.teacher_price_per_1k, judges,
    )  # fmt: skip
    result.eval_id = store_evaluation(ws, result, items, bar, adapter_path, str(data_path))
    return result


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


def store_evaluation(
    ws: Workspace, r: EvalResult, items: list[Item], bar: QualityBar, adapter_path: str | None, data_path: str
) -> int:
    """Write the evaluation, its slice rows and every item in one transaction (``store.insert_evaluation``); return
    the eval id."""
    summary = {"overall": asdict(r.overall), "checks": r.checks, "primary_metric": bar.primary_name,
               "judges": r.judges}  # fmt: skip
    evaluation = {
        "run_id": r.run_id, "kind": r.kind, "base_model": r.base_model, "adapter_path": adapter_path,
        "bar_id": bar.bar_id, "data_path": data_path, "n_items": r.n_items, "score": r.overall.score,
        "gap": r.overall.gap, "passed": r.passed, "summary": json.dumps(summary), "latency_p50_ms": r.latency_p50_ms,
        "latency_p95_ms": r.latency_p95_ms, "throughput_rps": r.throughput_rps, "tokens_per_s": r.tokens_per_s,
        "cost_per_1k": r.cost_per_1k, "teacher_cost_per_1k": r.teacher_cost_per_1k, "created_at": datetime.now(),
    }  # fmt: skip
    slices = [{"slice": s.slice, "n": s.n, "score": s.score, "student_vs_reference": s.student_vs_reference,
               "teacher_vs_reference": s.teacher_vs_reference, "gap": s.gap, "bar": s.bar, "passed": s.passed,
               "metrics": json.dumps(s.metrics)} for s in r.slices]  # fmt: skip
    rows = [{"record_id": i.record_id, "slice": i.slice, "prompt": i.prompt, "student_output": i.student,
             "teacher_output": i.teacher, "reference": i.reference, "scores": json.dumps(i.scores), "agree": i.agree,
             "latency_ms": i.latency_ms} for i in items]  # fmt: skip
    return store.insert_evaluation(ws, evaluation, slices, rows)


def evaluate_run(
    ws: Workspace,
    run_id: int,
    *,
    baseline: bool = True,
    bar_name: str = "default",
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    **kwargs: Any,
) -> list[EvalResult]:
    """Evaluate a finished run's best adapter, and (``baseline``) its untuned base model the same way."""
    run = store.get_run(ws, run_id)
    if run["status"] != "done" or not run["adapter_path"]:
        raise UserError(f"run {run_id} is {run['status']}; only finished runs can be evaluated")
    bar = require_bar(ws, bar_name)
    common = {"base_model": run["base_model"], "data_path": run["data_path"], "bar": bar, "run_id": run_id,
              "progress": progress, "cancel": cancel, **kwargs}  # fmt: skip
    out = [evaluate_model(ws, adapter_path=run["adapter_path"], kind="tuned", **common)]
    if baseline:
        out.append(evaluate_model(ws, adapter_path=None, kind="baseline", **common))
    return out


def list_evaluations(ws: Workspace, run_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Newest evaluations first (of one run, if given)."""
    where, params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
    return ws.query_dicts(
        f"SELECT eval_id, run_id, kind, base_model, bar_id, n_items, score, gap, passed, latency_p50_ms, "
        f"latency_p95_ms, throughput_rps, cost_per_1k, teacher_cost_per_1k, created_at FROM evaluations {where} "
        f"ORDER BY eval_id DESC LIMIT ?",
        [*params, limit],
    )


def get_evaluation(ws: Workspace, eval_id: int) -> dict[str, Any]:
    """An evaluation with its summary, bar and slice rows."""
    rows = ws.query_dicts("SELECT * FROM evaluations WHERE eval_id = ?", [eval_id])
    if not rows:
        raise UserError(f"no evaluation {eval_id} in this workspace")
    ev = rows[0]
    ev["summary"] = json.loads(ev["summary"])
    ev["bar"] = get_bar_by_id(ws, ev["bar_id"]).to_dict() if ev["bar_id"] is not None else None
    ev["slices"] = ws.query_dicts(
        "SELECT slice, n, score, student_vs_reference, teacher_vs_reference, gap, bar, passed, metrics "
        "FROM eval_slices WHERE eval_id = ? ORDER BY slice",
        [eval_id],
    )
    for s in ev["slices"]:
        s["metrics"] = json.loads(s["metrics"])
    return ev


def baseline_for(ws: Workspace, eval_id: int) -> int | None:
    """The newest baseline evaluation of the same run, to show the lift next to a tuned one."""
    return ws.scalar(
        "SELECT b.eval_id FROM evaluations e JOIN evaluations b ON b.run_id = e.run_id AND b.kind = 'baseline' "
        "WHERE e.eval_id = ? ORDER BY b.eval_id DESC LIMIT 1",
        [eval_id],
    )


def disagreements(
    ws: Workspace, eval_id: int, *, slice_name: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """A page of items where the student and the teacher disagree on the primary metric."""
    where = "eval_id = ? AND NOT agree" + (" AND slice = ?" if slice_name is not None else "")
    params: list[Any] = [eval_id] + ([slice_name] if slice_name is not None else [])
    rows = ws.query_dicts(
        f"SELECT record_id, slice, prompt, student_output, teacher_output, reference, scores, latency_ms "
        f"FROM eval_items WHERE {where} ORDER BY slice, record_id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    for r in rows:
        r["scores"] = json.loads(r["scores"])
    return rows


def count_disagreements(ws: Workspace, eval_id: int, slice_name: str | None = None) -> int:
    if slice_name is None:
        return int(ws.scalar("SELECT count(*) FROM eval_items WHERE eval_id = ? AND NOT agree", [eval_id]))
    return int(ws.scalar("SELECT count(*) FROM eval_items WHERE eval_id = ? AND NOT agree AND slice = ?",
                         [eval_id, slice_name]))  # fmt: skip


def request_more_inputs(ws: Workspace, eval_id: int, slice_name: str, n: int = 50) -> int:
    """Send a failing slice to curation's oversampling (``curation.oversample.request_inputs``): an open
    ``input_requests`` row the teacher fulfils; return its id."""
    return request_inputs(ws, {slice_name: n}, reason=f"evaluation {eval_id} failed the bar")[0]
