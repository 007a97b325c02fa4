"""Phase-1 baselines, before any training: is a student worth training at all?

On the held-out split of a dataset version (the rows ``distill train --dataset`` evaluates on), against the quality
bar, per slice: the untuned student zero-shot, the untuned student few-shot (``k`` train examples chosen per test
prompt by embedding similarity, ``train.baseline_prompts``), and any cheaper model the user names as a workspace
teacher (asked through ``TeacherSession.send`` with purpose ``baseline``: cached, budgeted, in the ledger). Each is an
ordinary evaluation (``train.evaluate.evaluate_model``, kind ``baseline:<name>``: the same scoring, storage and
screens), and each saves the prompt it used. When one already meets the bar, the report says so: that is the
cheapest outcome, and training may not be needed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.errors import UserError
from curation.option_lists import ListOption
from curation.options import FlagOption, FloatOption, OptionSet, TextOption, omit
from curation.progress import ProgressFn, report
from curation.workspace import Workspace
from train.bars import QualityBar, require_bar
from train.baseline_prompts import choose_shots, few_shot_messages, prompt_spec, save_prompt, shot_of
from train.config import EVAL, eval_kwargs

if TYPE_CHECKING:  # torch comes with these: imported when baselines run, not when the CLI builds its parser
    from train.data import Example
    from train.evaluate import EvalResult

KIND_PREFIX = "baseline:"  # evaluations.kind of a phase-1 baseline (a run's untuned baseline is plain 'baseline')
PURPOSE = "baseline"  # the teacher ledger's kind for a model baseline's requests
ZERO_SHOT = "zero-shot"
K_CHOICES = (2, 4, 8)  # the k values `distill baseline --k 2,4,8` measures; DEFAULT_K was picked among them
# Measured: `distill baseline --k 2,4,8 --limit 60` on the sample (rounds bench's v1: 300 short tickets; SmolLM2-135M
# untuned) scored 0.867 / 0.867 / 0.850 for k = 2 / 4 / 8 (zero-shot 0.000 on 120 items): k = 2 ties the best with
# prompts half as long as k = 4, so it is the default.
DEFAULT_K = 2


def _k(text: str) -> int:
    k = int(text)
    if k < 1:
        raise UserError("k must be at least 1")
    return k


def _version(ws: Workspace, name: str | None) -> str:
    from curation.datasets import get_version

    try:
        return get_version(ws, name).name if name else newest_version(ws)
    except UserError as exc:
        raise BASELINE["version"].error(str(exc)) from None


def _teachers(ws: Workspace, names: list[str] | None) -> list[str]:
    from curation.teacher.config import get_teacher

    try:
        return [get_teacher(ws, n).name for n in names or []]
    except UserError as exc:
        raise BASELINE["models"].error(str(exc)) from None


# `distill baseline` and the evaluation screen's baselines form (with the evaluation's limit, seed and tokens).
BASELINE = OptionSet(
    "baseline",
    (
        TextOption(name="version", flag="--dataset", metavar="VERSION", label="Dataset version", resolve=_version,
                   help="dataset version whose held-out split to use (empty: the newest)"),
        TextOption(name="student", default="smollm2", required=True, metavar="MODEL", label="Untuned student",
                   help="the student as it is: smollm2, a folder, a .gguf or a hub id"),
        FlagOption(name="zero_shot", default=True, flag="--no-zero-shot", label="Zero-shot",
                   help="the untuned student on the prompts as logged (--no-zero-shot skips it)"),
        ListOption(name="ks", flag="--k", metavar="K[,K...]", item=_k, write_item=str, default=(DEFAULT_K,),
                   label="Few-shot k", shortcuts={"--no-few-shot": ("", "skip the few-shot student")},
                   help=f"train examples per prompt, nearest by embedding; several to compare "
                        f"({','.join(map(str, K_CHOICES))}); empty: none"),
        ListOption(name="models", flag="--model", metavar="TEACHER", label="Cheaper models", resolve=_teachers,
                   help="cheaper models to evaluate as they are: workspace teachers (distill teachers add)"),
        FloatOption(name="budget_usd", flag="--budget", minimum=0, metavar="USD", label="Budget (USD)",
                    help="spend limit for the model baselines' requests"),
    ),
)  # fmt: skip
BASELINE_EVAL = EVAL.without("baseline", operation="baseline")  # limit, seed, tokens, batch: as evaluations take them


def baseline_eval_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """Parsed ``BASELINE_EVAL`` values -> keywords of ``run_baselines`` (a baseline has no untuned twin to add)."""
    return omit(eval_kwargs({**values, "baseline": False}), "baseline")


def few_shot_name(k: int) -> str:
    return f"few-shot-k{k}"


def model_name(teacher: str) -> str:
    return f"model:{teacher}"


@dataclass
class BaselineResult:
    """One baseline's evaluation and the prompt it saved."""

    name: str
    evaluation: EvalResult
    prompt_id: int


@dataclass
class BaselineReport:
    """Every baseline of one call, on the same held-out rows of one dataset version."""

    dataset_version: str
    bar: QualityBar
    n_items: int
    results: list[BaselineResult]

    @property
    def cheapest(self) -> BaselineResult | None:
        """The cheapest baseline that meets the bar: zero-shot, then few-shot by k, then models by cost per 1k."""
        passing = [r for r in self.results if r.evaluation.passed]
        return min(passing, key=lambda r: _rank(r.name, r.evaluation.cost_per_1k), default=None)

    @property
    def message(self) -> str:
        return outcome_message([(r.name, r.evaluation.passed, r.evaluation.overall.score,
                                 r.evaluation.cost_per_1k) for r in self.results], self.bar.threshold)  # fmt: skip


def _rank(name: str, cost: float | None) -> tuple[int, float]:
    if name == ZERO_SHOT:
        return (0, 0.0)
    if name.startswith("few-shot-k"):
        return (1, float(name.removeprefix("few-shot-k")))
    return (2, cost if cost is not None else float("inf"))


def outcome_message(results: list[tuple[str, bool, float, float | None]], threshold: float) -> str:
    """What the baselines mean for the project, in one line: (name, passed, score, cost per 1k) each."""
    if not results:
        return "no baseline has run yet (`distill baseline`)"
    passing = [r for r in results if r[1]]
    if passing:
        best = min(passing, key=lambda r: _rank(r[0], r[3]))
        return f"the cheapest outcome: {best[0]} already meets the bar; training may not be needed"
    top = max(results, key=lambda r: r[2])
    return f"no baseline meets the bar (best: {top[0]} at {top[2]:.3f}, bar {threshold}); training is justified"


def newest_version(ws: Workspace) -> str:
    """The newest dataset version's name, or a ``UserError`` saying how to make one."""
    name = ws.scalar("SELECT name FROM dataset_versions ORDER BY created_at DESC, name LIMIT 1")
    if name is None:
        raise UserError("no dataset version yet; make one first (`distill rebalance --name V` or `distill versions "
                        "snapshot V`)")  # fmt: skip
    return str(name)


def heldout_and_pool(
    ws: Workspace, version: str, bar: QualityBar, limit: int | None, seed: int, folder: Path
) -> tuple[list[Example], list[Example]]:
    """The version's held-out rows (a ``limit`` sampled as evaluations sample it: seeded, stratified by slice and
    answer label) and its train rows, one per record (a rebalance's copies are the same example)."""
    from curation.datasets import export_training_file
    from train.data import load_examples
    from train.evaluate import sample_examples

    rows = load_examples(export_training_file(ws, version, folder / "version.parquet"))
    held = sample_examples([e for e in rows if e.split != "train"], bar, limit, seed)
    if not held:
        raise UserError(f"dataset version {version!r} has no held-out rows (freeze a split before making it)")
    seen: set[int | None] = set()
    pool = []
    for e in rows:
        if e.split == "train" and (e.record_id is None or e.record_id not in seen):
            seen.add(e.record_id)
            pool.append(e)
    return held, pool


def run_baselines(
    ws: Workspace,
    version: str | None = None,
    *,
    student: str = BASELINE.default("student"),
    zero_shot: bool = BASELINE.default("zero_shot"),
    ks: tuple[int, ...] | None = BASELINE.default("ks"),
    models: tuple[str, ...] | list[str] | None = (),
    bar_name: str = "default",
    limit: int | None = None,
    seed: int = EVAL.default("seed"),
    budget_usd: float | None = None,
    embedding_model: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    **eval_kwargs: Any,
) -> BaselineReport:
    """Evaluate every asked baseline on the same held-out rows of ``version`` (default: the newest) against the bar;
    store each as an evaluation with its prompt. ``eval_kwargs`` go to ``evaluate_model`` (batch size, tokens)."""
    from train.data import Example, write_examples
    from train.evaluate import evaluate_model

    bar = require_bar(ws, bar_name)
    ks, models = tuple(ks or ()), tuple(models or ())
    if not zero_shot and not ks and not models:
        raise UserError("nothing to run: ask for zero-shot, a few-shot k or a model")
    if any(k < 1 for k in ks):
        raise UserError("k must be at least 1")
    version = version or newest_version(ws)
    folder = ws.artifacts_dir / "baselines" / version
    held, pool = heldout_and_pool(ws, version, bar, limit, seed, folder)
    heldout_file = write_examples(held, folder / "heldout.parquet")
    common: dict[str, Any] = {"bar": bar, "limit": None, "progress": progress, "cancel": cancel, **eval_kwargs}
    local = {**common, "models": {}}  # the student loads once for zero-shot and every few-shot k
    results: list[BaselineResult] = []

    def done(name: str, ev: EvalResult, spec: dict[str, Any]) -> None:
        results.append(BaselineResult(name, ev, save_prompt(ws, name, ev.eval_id, version, spec)))

    if zero_shot:
        report(progress, cancel, f"baseline {ZERO_SHOT}", 0, None, student)
        ev = evaluate_model(ws, base_model=student, data_path=heldout_file, kind=KIND_PREFIX + ZERO_SHOT, **local)
        done(ZERO_SHOT, ev, prompt_spec(ZERO_SHOT, version, held, student=student))
    if ks:
        report(progress, cancel, "few-shot examples", 0, None)
        order = choose_shots(ws, held, pool, max(ks), model=embedding_model, progress=progress, cancel=cancel)
        shots = [shot_of(e) for e in pool]
        for k in sorted(set(ks)):
            name = few_shot_name(k)
            chosen = [ix[-k:] for ix in order]  # prompt order: the nearest last, so the k nearest are the tail
            used = sorted({i for ix in chosen for i in ix})
            at = {i: n for n, i in enumerate(used)}
            variant = [Example(e.record_id, e.split, e.slice, e.weight,
                               [*few_shot_messages(e.prompt_messages, [shots[i] for i in ix]), e.messages[-1]],
                               e.teacher_response, e.reference) for e, ix in zip(held, chosen, strict=True)]  # fmt: skip
            path = write_examples(variant, folder / f"{name}.parquet")
            report(progress, cancel, f"baseline {name}", 0, None, student)
            ev = evaluate_model(ws, base_model=student, data_path=path, kind=KIND_PREFIX + name, **local)
            spec = prompt_spec(name, version, held, student=student, template="chat-few-shot", k=k,
                               selection="nearest train prompts by embedding cosine, the nearest last",
                               embedding_model=embedding_model or "default",
                               examples=[{"record_id": shots[i].record_id, "messages": shots[i].messages,
                                          "answer": shots[i].answer} for i in used])  # fmt: skip
            for item, ix in zip(spec["items"], chosen, strict=True):
                item["examples"] = [at[i] for i in ix]
            done(name, ev, spec)
    for teacher in models:
        ev, cfg = _model_baseline(ws, teacher, heldout_file, budget_usd=budget_usd, **common)
        done(model_name(teacher), ev, prompt_spec(model_name(teacher), version, held, teacher=cfg))
    return BaselineReport(version, bar, len(held), results)


def _model_baseline(
    ws: Workspace, teacher: str, data_path: Path, *, budget_usd: float | None, **common: Any
) -> tuple[EvalResult, dict[str, Any]]:
    """A workspace teacher (a cheaper model) answers the held-out prompts through the one request path; its cost per
    1k is the mean cost of those requests (cache hits count at what they cost when sent)."""
    from curation.teacher.requests import TeacherRequest, TeacherSession
    from train.evaluate import evaluate_model
    from train.generate import Generation

    progress, cancel = common.get("progress"), common.get("cancel")
    with TeacherSession(ws, teacher, budget_usd=budget_usd, progress=progress, cancel=cancel) as session:

        def answer(held: list[Example]) -> tuple[list[Generation], float | None]:
            rep = session.send(PURPOSE, [TeacherRequest(e.prompt_messages) for e in held])
            answers = [r.answer for r in rep.results]
            missing = sum(a is None or a.response is None for a in answers)
            if missing:
                why = f" ({rep.errors[0]})" if rep.errors else ""
                raise UserError(f"model baseline {teacher!r}: {missing} of {len(held)} prompts got no answer, "
                                f"{rep.status}{why}; run it again (answers so far are cached)")  # fmt: skip
            gens = [Generation(a.response or "", a.latency_ms, a.completion_tokens) for a in answers if a is not None]
            return gens, 1000 * sum(a.cost_usd for a in answers if a is not None) / max(1, len(answers))

        cfg = session.cfg
        ev = evaluate_model(ws, base_model=cfg.model, data_path=data_path, kind=KIND_PREFIX + model_name(teacher),
                            answerer=answer, **common)  # fmt: skip
    return ev, {"name": cfg.name, "base_url": cfg.base_url, "model": cfg.model, "params": cfg.params}


def latest_baselines(ws: Workspace) -> list[dict[str, Any]]:
    """The newest evaluation of each baseline (kind ``baseline:<name>``), zero-shot first, then by name."""
    rows = ws.query_dicts(
        "SELECT eval_id, substr(kind, ?) AS name, base_model, n_items, score, gap, passed, cost_per_1k, created_at "
        "FROM evaluations WHERE starts_with(kind, ?) QUALIFY row_number() OVER (PARTITION BY kind ORDER BY eval_id "
        "DESC) = 1",
        [len(KIND_PREFIX) + 1, KIND_PREFIX],
    )
    return sorted(rows, key=lambda r: (_rank(r["name"], r["cost_per_1k"]), r["name"]))
