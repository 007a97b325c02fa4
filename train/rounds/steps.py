"""The steps of a round, each one of the existing operations: synth (seeded with the failing prompts), generate,
the version's filters, its dedupe plus the held-out guard, a dataset version, training, evaluation.

Each step reads what earlier steps recorded (``RoundContext.outputs``) and returns what it made; a step that is
continued after a kill or a cancel picks up what it finds in the workspace (the round's synthetic batches, the run
it started, the version or evaluation it made) instead of doing it twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.datasets import Member, create_version, get_version, version_members
from curation.dedupe import DEDUPE, DEFAULT_THRESHOLD
from curation.effective import effective_sql
from curation.errors import UserError
from curation.filters import run_filter
from curation.pool import latest_dedupe_runs, latest_drop_filter_runs, load_pool
from curation.progress import Progress, ProgressFn, check_cancel
from curation.splits import check_leakage
from curation.teacher import store as tstore
from curation.teacher.engine import generate
from curation.teacher.requests import TeacherSession
from curation.teacher.selection import Selection
from curation.teacher.synth import synth_inputs
from curation.workspace import Workspace
from train import store
from train.config import RunConfig
from train.evaluate import evaluate_run
from train.launcher import execute_run, start_run
from train.rounds.novelty import older_near_duplicates
from train.rounds.plan import RoundPlan
from train.rounds.store import round_records, update_step


@dataclass
class StepOutcome:
    """What a step made (its outputs), one line about it, and why the round stops here, if it does (cancelled |
    budget: the step is continued by the next `distill round next`)."""

    outputs: dict[str, Any]
    detail: str
    stop: str | None = None


@dataclass
class RoundContext:
    """A round at work: its plan and options, what its steps recorded, and the shared teacher session."""

    ws: Workspace
    round_id: int
    plan: RoundPlan
    options: dict[str, Any]
    recorded: dict[str, dict[str, Any]]  # step -> outputs recorded so far (also of an unfinished attempt)
    session: Callable[[], TeacherSession]
    progress: ProgressFn | None = None
    cancel: threading.Event | None = None
    step: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def outputs(self, step: str) -> dict[str, Any]:
        return self.recorded.get(step) or {}

    def save(self, outputs: dict[str, Any]) -> None:
        """Record the current step's outputs so far (before an action a kill must not lose track of)."""
        self.recorded[self.step] = outputs
        update_step(self.ws, self.round_id, self.step, outputs=outputs)

    def new_records(self) -> dict[str, list[int]]:
        return round_records(self.ws, self.round_id)

    def tick(self, p: Progress) -> None:
        if self.progress is not None:
            self.progress(p)


def _teacher_run(ctx: RoundContext, kind: str) -> int:
    """Open a teacher run for this step's requests and record it before anything is sent (the ledger rows carry
    its id: the round's cost survives a kill)."""
    run_id = tstore.start_run(ctx.ws, ctx.plan.teacher, kind, {"round": ctx.round_id}, ctx.session().budget.limit)
    out = ctx.outputs(ctx.step)
    ctx.save({**out, "teacher_runs": [*out.get("teacher_runs", []), run_id]})
    return run_id


def synth_step(ctx: RoundContext) -> StepOutcome:
    """New inputs for each failing slice, seeded with its wrong items; a continued step asks only for what is
    missing (the same requests come back from the cache)."""
    session, have = ctx.session(), ctx.new_records()
    todo = [s for s in ctx.plan.slices if len(have.get(s.slice, [])) < s.n_new]
    stop, cost, made = None, 0.0, 0
    if todo:
        run_id = _teacher_run(ctx, "synth")
        try:
            for s in todo:
                got = len(have.get(s.slice, []))
                res = synth_inputs(ctx.ws, ctx.plan.teacher, s.slice, s.n_new - got, n_examples=ctx.options["examples"],
                                   seed=f"round-{ctx.round_id}-{s.slice}-{got}", seed_records=s.seeds,
                                   batch_options={"round": ctx.round_id}, run_id=run_id, session=session,
                                   progress=ctx.progress)  # fmt: skip
                cost, made = cost + res.cost_usd, made + res.n_inserted
                if res.status != "done":
                    stop = res.status
                    break
        finally:
            tstore.finish_run(ctx.ws, run_id, stop or "done", made, 0, 0, cost)
    counts = {k: len(v) for k, v in ctx.new_records().items()}
    out = {**ctx.outputs("synth"), "records": counts}
    return StepOutcome(out, f"{sum(counts.values())} new inputs ({_per_slice(counts)})", stop)


def _per_slice(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def generate_step(ctx: RoundContext) -> StepOutcome:
    """The teacher's answers for the round's new inputs (those still without one)."""
    ids = [i for v in ctx.new_records().values() for i in v]
    if not ids:
        return StepOutcome(ctx.outputs("generate"), "no new inputs to answer")
    out = ctx.outputs("generate")

    def on_run(run_id: int) -> None:
        ctx.save({**out, "teacher_runs": [*out.get("teacher_runs", []), run_id]})

    res = generate(ctx.ws, ctx.plan.teacher, Selection(record_ids=ids), session=ctx.session(), on_run=on_run)
    base, params = effective_sql(ctx.ws)
    answered = int(ctx.ws.scalar(f"SELECT count(*) FROM ({base}) e WHERE record_id IN (SELECT unnest(?)) "
                                 "AND response IS NOT NULL", [*params, ids]))  # fmt: skip
    detail = f"{answered} of {len(ids)} answered ({res.cached} from the cache, {res.failed} failed)"
    stop = res.status if res.status in ("cancelled", "budget") else None
    if res.status == "failed":
        raise UserError(f"teacher {ctx.plan.teacher!r} failed: {res.errors[0] if res.errors else res.status}")
    return StepOutcome({**ctx.outputs("generate"), "answered": answered}, detail, stop)


def _last(recipe: list[dict[str, Any]], op: str) -> dict[str, Any] | None:
    return next((s for s in reversed(recipe) if s.get("op") == op), None)


def _slicing(ctx: RoundContext) -> str | None:
    sel = _last(get_version(ctx.ws, ctx.plan.base_version).recipe, "select")
    return sel.get("slicing") if sel else None


def version_filters(ws: Workspace, recipe: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], str]]:
    """(name, spec, policy) of the filters the version's recipe applied (else the latest drop and review runs)."""
    step = _last(recipe, "filter")
    ids = (step.get("drop_runs", []) + step.get("review_runs", [])) if step else (
        latest_drop_filter_runs(ws) + latest_drop_filter_runs(ws, "review"))  # fmt: skip
    rows = ws.query("SELECT name, CAST(spec AS VARCHAR), policy FROM filter_runs WHERE run_id IN (SELECT unnest(?)) "
                    "ORDER BY run_id", [ids])  # fmt: skip
    return [(str(n), json.loads(s), str(p)) for n, s, p in rows]


def filter_step(ctx: RoundContext) -> StepOutcome:
    """Run the version's filters again over the workspace, new records now included (a name's newest run applies)."""
    ids = {i for v in ctx.new_records().values() for i in v}
    runs, failed = [], 0
    for name, spec, policy in version_filters(ctx.ws, get_version(ctx.ws, ctx.plan.base_version).recipe):
        rep = run_filter(ctx.ws, name, spec, policy, apply=True, slicing=_slicing(ctx), progress=ctx.progress,
                         cancel=ctx.cancel)  # fmt: skip
        runs.append({"name": name, "run_id": rep.run_id, "policy": policy})
        failed += int(ctx.ws.scalar("SELECT count(*) FROM filter_results WHERE run_id = ? AND NOT ok AND record_id "
                                    "IN (SELECT unnest(?))", [rep.run_id, sorted(ids)]))  # fmt: skip
    detail = f"{len(runs)} filter(s): {failed} failures among the new records" if runs else "the version has no filters"
    return StepOutcome({"filter_runs": runs}, detail)


def version_dedupes(ws: Workspace, recipe: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The dedupe runs the version's recipe applied (else the latest of each kind) with their parameters."""
    step = _last(recipe, "dedupe")
    ids = step.get("runs", []) if step else latest_dedupe_runs(ws)
    return ws.query_dicts("SELECT run_id, kind, model, threshold, CAST(params AS VARCHAR) AS params FROM dedupe_runs "
                          "WHERE run_id IN (SELECT unnest(?)) ORDER BY run_id", [ids])  # fmt: skip


def dedupe_step(ctx: RoundContext) -> StepOutcome:
    """Which new records may enter: eligible in the pool (answered, not filtered, not a leak), no duplicate of an
    older record or an earlier new one by the version's dedupe definition (``novelty``; semantic at the default
    threshold when the version had no dedupe), and no exact or semantic near-duplicate of a held-out prompt. No
    workspace-wide dedupe run is stored: the older records are as the version's own dedupe left them."""
    ws, plan = ctx.ws, ctx.plan
    new = sorted(i for v in ctx.new_records().values() for i in v)
    runs = version_dedupes(ws, get_version(ws, plan.base_version).recipe)
    semantic = next((r for r in reversed(runs) if r["kind"] == "semantic"), None)
    threshold = (semantic["threshold"] if semantic else None) or (DEFAULT_THRESHOLD if semantic or not runs else None)
    model = semantic["model"] if semantic else None
    p = json.loads((semantic or (runs[-1] if runs else {})).get("params") or "{}")
    token_check = bool(p.get("token_check", DEDUPE.default("token_check")))
    older = older_near_duplicates(ws, new, threshold=threshold, model=model, token_check=token_check,
                                  progress=ctx.progress, cancel=ctx.cancel)  # fmt: skip
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold  # held-out: always semantic too
    check_cancel(ctx.cancel)
    pool = load_pool(ws, slicing=_slicing(ctx), split=plan.split, explain=new)
    leaks = check_leakage(ws, plan.split, threshold=threshold, model=model, record_ids=new, progress=ctx.progress,
                          cancel=ctx.cancel)  # fmt: skip
    leaked = {lp.train_id: lp for lp in leaks}
    eligible = {rid for rid, _ in pool.train}
    dropped: dict[str, int] = {}
    added = []
    for rid in new:
        why = ("leak: near-duplicate of held-out" if rid in leaked else pool.reasons.get(rid)
               or ("not eligible" if rid not in eligible else None)
               or ("near-duplicate of an existing record" if rid in older else None))  # fmt: skip
        if why is None:
            added.append(rid)
        else:
            dropped[why] = dropped.get(why, 0) + 1
    out = {"dedupe_runs": [r["run_id"] for r in runs], "added": added, "dropped": dropped,
           "leaks": [[lp.heldout_id, lp.train_id, round(lp.similarity, 4), lp.kind] for lp in leaks]}  # fmt: skip
    why = ", ".join(f"{n} {k}" for k, n in sorted(dropped.items()))
    return StepOutcome(out, f"{len(added)} of {len(new)} new records kept" + (f" (dropped: {why})" if why else ""))


def version_step(ctx: RoundContext) -> StepOutcome:
    """The next version: the previous version's members (those still answered and not rejected) plus the new
    records, each weighted by its slice's gap."""
    ws, plan = ctx.ws, ctx.plan
    existing = ws.query("SELECT CAST(recipe AS VARCHAR) FROM dataset_versions WHERE name = ?", [plan.version])
    if existing:  # made before a kill: this round's if its recipe says so
        last = json.loads(existing[0][0])[-1]
        if last.get("op") != "round" or last.get("round") != ctx.round_id:
            raise UserError(f"dataset version {plan.version!r} exists already and is not this round's")
        return StepOutcome({"version": plan.version, "added": last["added"]}, f"version {plan.version} (made before)")
    base = get_version(ws, plan.base_version)
    prev = version_members(ws, plan.base_version)
    sql, params = effective_sql(ws, _slicing(ctx))
    gone = {int(r) for (r,) in ws.query(f"SELECT record_id FROM ({sql}) e WHERE record_id IN (SELECT unnest(?)) AND "
                                        "(response IS NULL OR status = 'rejected')",
                                        [*params, [m.record_id for m in prev]])}  # fmt: skip
    weight = {s.slice: s.weight for s in plan.slices}
    slice_of = {rid: s for s, ids in ctx.new_records().items() for rid in ids}
    added = ctx.outputs("dedupe").get("added", [])
    members = [m for m in prev if m.record_id not in gone]
    members += [Member(rid, "train", slice_of[rid], weight=weight.get(slice_of[rid], 1.0)) for rid in added]
    dedupe, filters = ctx.outputs("dedupe"), ctx.outputs("filter").get("filter_runs", [])
    step = {"op": "round", "round": ctx.round_id, "number": plan.number, "base_version": plan.base_version,
            "base_eval": plan.base_eval_id, "added": len(added), "weights": weight, "rule": plan.weights_rule,
            "dropped_from_base": len(gone), "dropped_new": dedupe.get("dropped", {})}  # fmt: skip
    recipe = [*base.recipe,
              {"op": "filter", "drop_runs": [f["run_id"] for f in filters if f["policy"] == "drop"],
               "review_runs": [f["run_id"] for f in filters if f["policy"] == "review"]},
              {"op": "dedupe", "runs": dedupe.get("dedupe_runs", [])}, step]  # fmt: skip
    create_version(ws, plan.version, members, recipe, split=base.split, slicing=_slicing(ctx))
    more = f", {len(gone)} earlier members left out (rejected or unanswered since)" if gone else ""
    return StepOutcome({"version": plan.version, "added": len(added)},
                       f"version {plan.version}: {len(members)} members, {len(added)} new{more}")  # fmt: skip


def train_step(ctx: RoundContext) -> StepOutcome:
    """Train on the new version with the previous run's config (a continued step resumes the same run)."""
    ws, plan = ctx.ws, ctx.plan
    run_id = ctx.outputs("train").get("run_id") or ws.scalar(
        "SELECT max(run_id) FROM runs WHERE dataset_version = ?", [plan.version])  # fmt: skip
    half_made = None
    if run_id is not None and not (Path(store.get_run(ws, int(run_id))["out_dir"]) / "run.json").exists():
        half_made, run_id = int(run_id), None  # killed while its data was being exported: start it again
    if run_id is None:
        cfg = RunConfig.from_dict(store.get_run(ws, plan.base_run_id)["config"])
        cfg.out_dir, cfg.data_path = "", ""
        run_id = start_run(ws, cfg, dataset_version=plan.version)
        if half_made is not None:  # it never trained: say so, or it would read "running" for ever
            store.update_run(ws, half_made, status="failed",
                             error=f"killed while its training data was exported; round {ctx.round_id} trains run "
                                   f"{run_id} instead")  # fmt: skip
    ctx.save({"run_id": int(run_id)})
    if store.get_run(ws, int(run_id))["status"] != "done":
        res = execute_run(ws, int(run_id), progress=ctx.progress, cancel=ctx.cancel)
        if res.status == "cancelled":
            return StepOutcome({"run_id": int(run_id)}, f"run {run_id} cancelled", "cancelled")
        if res.status != "done":
            raise UserError(f"run {run_id} failed: {res.error}")
    run = store.get_run(ws, int(run_id))
    return StepOutcome({"run_id": int(run_id)}, f"run {run_id}: {run['steps_done']} steps, best held-out loss "
                       f"{run['best_eval_loss'] if run['best_eval_loss'] is None else round(run['best_eval_loss'], 4)}")  # fmt: skip


def evaluate_step(ctx: RoundContext) -> StepOutcome:
    """Evaluate the new run on the held-out split against the same bar, on the same sample as the start."""
    ws, plan = ctx.ws, ctx.plan
    run_id = int(ctx.outputs("train")["run_id"])
    eval_id = ws.scalar("SELECT max(eval_id) FROM evaluations WHERE run_id = ? AND kind = 'tuned' AND eval_set = "
                        "'heldout'", [run_id])  # fmt: skip
    if eval_id is None:
        res = evaluate_run(ws, run_id, baseline=False, bar_name=plan.bar_name, limit=plan.eval_limit,
                           seed=plan.eval_seed, max_new_tokens=ctx.options["max_new_tokens"],
                           batch_size=ctx.options["gen_batch_size"], progress=ctx.progress, cancel=ctx.cancel)  # fmt: skip
        eval_id = res[0].eval_id
    row = ws.query("SELECT score, passed FROM evaluations WHERE eval_id = ?", [eval_id])[0]
    return StepOutcome({"eval_id": int(eval_id)}, f"evaluation {eval_id}: score {row[0]:.3f}, "
                       f"{'passes' if row[1] else 'fails'} the bar")  # fmt: skip


STEP_FUNCS: dict[str, Callable[[RoundContext], StepOutcome]] = {
    "synth": synth_step, "generate": generate_step, "filter": filter_step, "dedupe": dedupe_step,
    "version": version_step, "train": train_step, "evaluate": evaluate_step,
}  # fmt: skip
