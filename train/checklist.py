"""The distillation project's checklist: seven phases, each item's state measured from the workspace, never ticked.

Every item is one function below, registered with ``@item(phase, title, screen)`` (``train.checklist_core``), taking
the ``Context`` (reads several items share, each made once) and returning ``(state, detail, next step)``: ``ok`` |
``open`` | ``n/a``, what was measured, and the command (or studio screen) that closes it. A feature added later adds
its item here in one place; ``distill checklist``, the studio's checklist screen and ``distill train``'s warnings all
read ``run``.
"""

from __future__ import annotations

import json
from pathlib import Path

from curation.workspace import Workspace
from train.checklist_core import ITEMS, PHASES, Context, ItemResult, ItemState, item, ok, todo

GATE_PHASES = ("define success", "data")  # what `distill train` warns about (and `--strict` refuses over)
# More than half of a slice made up by the teacher and the student learns the teacher's idea of the slice, not its
# traffic (rounds add synthetic inputs where the student fails; they should not become the slice).
MAX_SYNTHETIC_SHARE = 0.5
# Total variation between production's slice shares and the version's train side. Up-weighting rare slices moves
# some mass on purpose (taking a 2% slice to 10% moves 0.08); past 0.3 a third of the traffic is misrepresented.
MAX_TV = 0.3
MIN_TRAIN, MIN_HELDOUT = 20, 5  # per slice in a version: below 5 held-out items one answer moves the score 20 points
INSPECT_MIN = 20  # disagreements a person should have looked at (all of them when there are fewer)


def run(ws: Workspace, *, version: str | None = None, phases: tuple[str, ...] = PHASES) -> list[ItemResult]:
    """Every item of ``phases`` measured now, in phase order."""
    ctx = Context(ws, version)
    out = []
    for phase in phases:
        for it in (i for i in ITEMS if i.phase == phase):
            s = it.check(ctx)
            out.append(ItemResult(it.key, phase, it.title, s.state, s.detail, s.next_step, it.screen))
    return out


def open_items(ws: Workspace, *, version: str | None = None, phases: tuple[str, ...] = GATE_PHASES) -> list[ItemResult]:
    """The open items of ``phases`` (by default those ``distill train`` is gated on)."""
    return [r for r in run(ws, version=version, phases=phases) if r.state == "open"]


NO_BAR = todo("no quality bar yet", "distill bar set --task ... --metric ... --threshold X")
NO_VERSION = todo("no dataset version yet", "distill rebalance --to production --name V")
NO_RUN = todo("no finished training run", "distill train --dataset V")
NO_EVAL = todo("no evaluation of a trained student", "distill eval RUN")
NEXT_ROUND = "distill round next (evaluation screen: n)"


# -- 1. scope and justify ------------------------------------------------------------------------------------------


@item("scope and justify", "baselines run", "evaluation")
def baselines_run(c: Context) -> ItemState:
    from train.baselines import latest_baselines, outcome_message

    rows = latest_baselines(c.ws)
    if not rows:
        return todo("no baseline evaluated: zero-shot, few-shot, a cheaper model", "distill baseline")
    scores = ", ".join(f"{r['name']} {r['score']:.3f}" for r in rows)
    threshold = c.bar.threshold if c.bar else 0.0
    outcome = outcome_message([(r["name"], bool(r["passed"]), r["score"], r["cost_per_1k"]) for r in rows], threshold)
    return ok(f"{outcome} ({scores})")


@item("scope and justify", "payback estimated", "evaluation")
def payback_estimated(c: Context) -> ItemState:
    from train.payback import describe, payback

    p = payback(c.ws, c.bar)
    if p.missing:
        return todo("not estimated: " + "; ".join(p.missing), "distill bar show")
    return ok(describe(p)[0].removeprefix("payback: ") + " to pay back")


# -- 2. define success ---------------------------------------------------------------------------------------------


@item("define success", "quality bar set", "evaluation")
def bar_set(c: Context) -> ItemState:
    if c.bar is None:
        return NO_BAR
    from train.metrics import metric_name

    return ok(f"threshold {c.bar.threshold} on {', '.join(metric_name(m) for m in c.bar.metrics)}")


@item("define success", "per-slice bars", "evaluation")
def slice_bars(c: Context) -> ItemState:
    if c.bar is None:
        return NO_BAR
    if not c.bar.slice_bars:
        return todo("no critical slice has its own bar", "distill bar set --slice-bar SLICE=X")
    return ok(", ".join(f"{s} {v}" for s, v in sorted(c.bar.slice_bars.items())))


@item("define success", "cost and latency targets", "evaluation")
def cost_latency_targets(c: Context) -> ItemState:
    if c.bar is None:
        return NO_BAR
    lat, cost = c.bar.max_latency_p95_ms, c.bar.max_cost_per_1k
    if lat is None or cost is None:
        lacking = [n for n, v in (("p95 latency", lat), ("cost per 1k", cost)) if v is None]
        return todo(f"no target for {' and '.join(lacking)}", "distill bar set --max-latency-ms N --max-cost X")
    return ok(f"p95 <= {lat:g} ms, cost <= {cost:g} per 1,000 requests")


@item("define success", "max gap to the teacher", "evaluation")
def max_gap(c: Context) -> ItemState:
    if c.bar is None:
        return NO_BAR
    if c.bar.max_gap is None:
        return todo("no acceptable gap to the teacher set", "distill bar set --max-gap X")
    return ok(f"max gap {c.bar.max_gap:g}")


# -- 3. data -------------------------------------------------------------------------------------------------------


@item("data", "prompts from real logs", "overview")
def prompts_from_real_logs(c: Context) -> ItemState:
    from curation.teacher.synth import synthetic_share

    shares = synthetic_share(c.ws)
    if not shares:
        return todo("no records yet", "distill import LOGS")
    top = max(shares, key=lambda s: s.share)
    total = sum(s.synthetic for s in shares) / sum(s.records for s in shares)
    if not top.synthetic:
        return ok("every prompt comes from the logs (no synthetic inputs)")
    detail = f"synthetic share {total:.0%} overall, highest {top.slice} {top.share:.0%}"
    over = [s.slice for s in shares if s.share > MAX_SYNTHETIC_SHARE]
    if over:
        return todo(f"{detail}; over half synthetic: {', '.join(over)}",
                    "import more real logs for those slices (distill import), or review their synthetic inputs")  # fmt: skip
    return ok(detail)


@item("data", "distribution vs production", "curation")
def distribution_vs_production(c: Context) -> ItemState:
    from curation.overview import dataset_comparison

    if c.version is None:
        return NO_VERSION
    cmp = dataset_comparison(c.ws, c.slices, c.version)
    if cmp is None:
        return NO_VERSION
    detail = f"total variation {cmp.tv_distance:.3f} between production and {c.version}'s train side"
    if cmp.tv_distance > MAX_TV:
        return todo(f"{detail} (over {MAX_TV})", "distill rebalance --to production --name V")
    return ok(detail)


@item("data", "rare slices represented", "curation")
def rare_slices_represented(c: Context) -> ItemState:
    from curation.overview import production_shares

    if c.version is None:
        return NO_VERSION
    counts: dict[tuple[str, str], int] = {(str(s), str(side)): int(n) for s, side, n in c.ws.query(
        "SELECT slice, side, count(*) FROM dataset_members WHERE version = ? GROUP BY 1, 2", [c.version])}  # fmt: skip
    short = [f"{s} ({counts.get((s, 'train'), 0)} train, {counts.get((s, 'heldout'), 0)} held-out)"
             for s in sorted(production_shares(c.slices))
             if counts.get((s, "train"), 0) < MIN_TRAIN or counts.get((s, "heldout"), 0) < MIN_HELDOUT]  # fmt: skip
    if short:
        return todo(f"under {MIN_TRAIN} train or {MIN_HELDOUT} held-out in {c.version}: {', '.join(short)}",
                    "distill oversample --slice S -n N --request, then distill synth fulfil TEACHER")  # fmt: skip
    return ok(f"every production slice has >= {MIN_TRAIN} train and >= {MIN_HELDOUT} held-out rows in {c.version}")


@item("data", "held-out frozen and leak-free", "curation")
def heldout_frozen(c: Context) -> ItemState:
    from curation.datasets import get_version
    from curation.splits import DEFAULT_SPLIT, check_leakage, split_exists

    split = get_version(c.ws, c.version).split if c.version else DEFAULT_SPLIT
    if split is None:
        return todo(f"dataset version {c.version} was made without a held-out split", "distill split make")
    if not split_exists(c.ws, split):
        return todo("no frozen held-out split", "distill split make")
    leaks = check_leakage(c.ws, split, threshold=None)  # exact only: a semantic pass embeds every record
    if leaks:
        return todo(f"{len(leaks)} train records repeat a held-out prompt exactly", "distill dedupe --exact")
    return ok(f"split {split!r} frozen; no exact duplicates across it (semantic: distill split check)")


# -- 4. teacher outputs --------------------------------------------------------------------------------------------


@item("teacher outputs", "terms acknowledged", "teacher")
def terms_acknowledged(c: Context) -> ItemState:
    from curation.teacher.config import list_teachers

    teachers = list_teachers(c.ws)
    if not teachers:
        return ItemState("n/a", "no teacher configured: the answers came with the logs")
    missing = [t.name for t in teachers if not t.terms_ack]
    if missing:
        return todo(f"not acknowledged: {', '.join(missing)}", "distill teachers add NAME ... --replace --ack-terms")
    return ok(f"acknowledged for {', '.join(t.name for t in teachers)}")


@item("teacher outputs", "outputs filtered", "curation")
def outputs_filtered(c: Context) -> ItemState:
    from curation.filters import list_filter_runs

    runs = list_filter_runs(c.ws)
    if not runs:
        return todo("no filter has checked the teacher's answers",
                    "distill filter NAME --confidence min_logprob --min X --policy review (or --verifier ...)")  # fmt: skip
    return ok(", ".join(f"{r['name']} ({r['policy']}: {r['n_failed']} of {r['n_checked']})" for r in runs[:4]))


# -- 5. student ----------------------------------------------------------------------------------------------------


@item("student", "two student sizes tried", "training")
def two_student_sizes(c: Context) -> ItemState:
    models = sorted({r["base_model"] for r in c.runs})
    if not models:
        return NO_RUN
    if len(models) < 2:
        return todo(f"{len(models)} base model trained ({', '.join(models) or 'none'})",
                    "distill train --dataset V --model smollm2 --model LARGER")  # fmt: skip
    return ok(", ".join(models))


@item("student", "overfitting watched", "training")
def overfitting_watched(c: Context) -> ItemState:
    if not c.runs:
        return NO_RUN
    run = c.runs[0]
    cfg = json.loads(run["config"])
    evals = int(c.ws.scalar("SELECT count(*) FROM run_metrics WHERE run_id = ? AND phase = 'eval'", [run["run_id"]]))
    if evals < 2 or not cfg.get("patience"):
        return todo(f"run {run['run_id']} logged {evals} held-out losses", "distill train --eval-every 10 --patience 3")
    early = "; stopped early" if run["stopped_early"] else ""
    return ok(f"run {run['run_id']}: {evals} held-out losses, early stopping patience {cfg['patience']}{early}")


@item("student", "checkpoints kept", "training")
def checkpoints_kept(c: Context) -> ItemState:
    if not c.runs:
        return NO_RUN
    run = c.runs[0]
    if not run["adapter_path"] or not Path(run["adapter_path"]).exists():
        return todo(f"run {run['run_id']}'s best adapter is missing ({run['adapter_path']})",
                    "distill train --dataset V (again)")  # fmt: skip
    return ok(f"run {run['run_id']}: best adapter at {run['adapter_path']}")


# -- 6. evaluation -------------------------------------------------------------------------------------------------


@item("evaluation", "gap to the teacher measured", "evaluation")
def gap_measured(c: Context) -> ItemState:
    if c.evaluation is None:
        return NO_EVAL
    e, limit = c.evaluation, c.bar.max_gap if c.bar else None
    if e["gap"] is None:
        return todo(f"evaluation {e['eval_id']} has no teacher answers to compare with",
                    "distill generate TEACHER (the held-out rows), then distill eval RUN")  # fmt: skip
    return ok(f"evaluation {e['eval_id']} (run {e['run_id']}): gap {e['gap']:.3f}"
              + (f" (max {limit:g})" if limit is not None else ""))  # fmt: skip


@item("evaluation", "per-slice verdicts", "evaluation")
def per_slice_verdicts(c: Context) -> ItemState:
    if c.evaluation is None:
        return NO_EVAL
    rows = c.ws.query("SELECT slice, score, bar, passed FROM eval_slices WHERE eval_id = ? ORDER BY slice",
                      [c.evaluation["eval_id"]])  # fmt: skip
    failing = [f"{s} {score:.2f} < {bar:.2f}" if score < bar else f"{s} (gap)" for s, score, bar, p in rows if not p]
    if failing:
        return todo(f"failing: {', '.join(failing)}", NEXT_ROUND)
    return ok(f"all {len(rows)} slices pass (evaluation {c.evaluation['eval_id']})")


@item("evaluation", "rounds until the bar holds", "evaluation")
def rounds_until_the_bar_holds(c: Context) -> ItemState:
    from train.rounds_state import FINISHED, rounds_state

    if c.evaluation is None:
        return NO_EVAL
    r, e = rounds_state(c.ws), c.evaluation
    if r.rounds == 0:
        if e["passed"]:
            return ok(f"no round needed: evaluation {e['eval_id']} clears the bar")
        return todo(f"no round yet; evaluation {e['eval_id']} fails its bar", NEXT_ROUND)
    if r.status != FINISHED:
        return todo(f"round {r.number} {r.status} ({r.done} of {r.rounds} rounds done)", NEXT_ROUND)
    if r.passed:
        return ok(f"round {r.number} clears the bar (evaluation {r.eval_id}; {r.done} of {r.rounds} rounds done)")
    if r.stop:
        return ok(f"stop after round {r.number}: {r.stop}")
    return todo(f"round {r.number} done; evaluation {r.eval_id} still fails its bar", NEXT_ROUND)


@item("evaluation", "disagreements inspected", "evaluation")
def disagreements_inspected(c: Context) -> ItemState:
    if c.evaluation is None:
        return NO_EVAL
    n, seen = c.ws.query(
        "SELECT count(DISTINCT i.record_id), count(DISTINCT i.record_id) FILTER (WHERE EXISTS (SELECT 1 FROM "
        "review_events r WHERE r.record_id = i.record_id AND NOT r.undone AND r.action <> 'queue' "
        "AND r.created_at >= ?)) FROM eval_items i WHERE i.eval_id = ? AND NOT i.agree AND i.record_id IS NOT NULL",
        [c.evaluation["created_at"], c.evaluation["eval_id"]],
    )[0]
    if n == 0:
        return ok("no disagreements with the teacher")
    detail = f"{seen} of {n} disagreements reviewed since evaluation {c.evaluation['eval_id']}"
    if seen < min(n, INSPECT_MIN):
        return todo(f"{detail} (look at {min(n, INSPECT_MIN)})",
                    "evaluation screen: read the disagreements, then review those records")  # fmt: skip
    return ok(detail)


# -- 7. rollout ----------------------------------------------------------------------------------------------------

NOT_STARTED = "not started"


@item("rollout", "serving")
def serving(c: Context) -> ItemState:
    r = c.rollout
    if not r.started:
        return todo(NOT_STARTED, "distill serve RUN --mode shadow --teacher TEACHER")
    where = f"running at {r.running.get('base_url')}" if r.running else "not running now"
    return ok(f"gateway {where}; {r.requests:,} requests logged in {r.log_files} files")


@item("rollout", "shadow run")
def shadow_run(c: Context) -> ItemState:
    n = c.rollout.by_mode.get("shadow", 0)
    return ok(f"{n:,} requests in shadow") if n else todo(NOT_STARTED, "distill serve RUN --mode shadow")


@item("rollout", "canary")
def canary(c: Context) -> ItemState:
    n = c.rollout.by_mode.get("canary", 0)
    return ok(f"{n:,} requests in canary") if n else todo(NOT_STARTED, "distill serve control --mode canary")


@item("rollout", "monitoring alarms set")
def monitoring_alarms(c: Context) -> ItemState:
    n = c.rollout.alarms
    return ok(f"{n} alarms set") if n else todo(NOT_STARTED, "alarms on the gateway's /metrics (fallbacks, latency)")
