"""What a round would do, and what it may cost: planned from an evaluation before anything is sent or written.

From the tuned held-out evaluation a round starts from: the slices that fail their bar; in each, the items the
student got wrong (``eval_items``: it disagrees with the teacher, or its answer is not fully correct), whose
records seed the teacher's new inputs; N new inputs per slice; the weight of those inputs from the slice's gap
(``weights_from_gap``); the next version's name; and an upper bound on the teacher cost (``estimate_cost`` of the
synth requests, the most a synth sends, and of one answer per new input, priced at the longest failing prompt).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from curation.datasets import get_version
from curation.errors import UserError
from curation.teacher.budget import estimate_cost
from curation.teacher.config import TeacherConfig, get_teacher
from curation.teacher.synth import PER_REQUEST, max_requests, synth_request
from curation.workspace import Workspace
from train import store
from train.rounds.options import ROUND, only_teacher
from train.rounds.store import round_of_eval

STEPS = ("synth", "generate", "filter", "dedupe", "version", "train", "evaluate")
STEP_TEXT = {
    "synth": "ask the teacher for new inputs like the failing prompts",
    "generate": "answer the new inputs with the teacher",
    "filter": "re-run the version's filters (confidence, verifiers)",
    "dedupe": "drop new inputs that repeat a workspace record (the version's dedupe rule) or a held-out prompt",
    "version": "next version = previous version + the new records (weighted by gap)",
    "train": "train with the previous run's config",
    "evaluate": "evaluate on the held-out split (same sample as the start)",
}


def wrong_sql(alias: str = "") -> str:
    """SQL true for an ``eval_items`` row the student got wrong: it disagrees with the teacher, or its answer is
    not fully correct (``alias``: the table's alias with its dot)."""
    return f"(NOT {alias}agree OR coalesce({alias}correct, 1.0) < 1.0 - 1e-9)"


@dataclass
class SlicePlan:
    """One failing slice: its score against the bar, its wrong items (the seeds) and what the round adds."""

    slice: str
    n_items: int
    score: float
    score_low: float | None
    score_high: float | None
    bar: float
    gap: float
    n_wrong: int
    seeds: list[int]  # record ids of the wrong items (the prompts shown to the teacher)
    n_new: int
    weight: float


@dataclass
class RoundPlan:
    """A round before it runs (stored with it: a continued round follows the plan it started with)."""

    number: int
    base_eval_id: int
    base_run_id: int
    base_version: str
    split: str
    teacher: str
    version: str
    slices: list[SlicePlan]
    estimate_usd: float
    estimate_requests: int
    eval_limit: int | None
    eval_seed: int
    bar_name: str
    weights_rule: str
    skipped: list[str] = field(default_factory=list)  # failing slices with no wrong item to seed from
    steps: tuple[str, ...] = STEPS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoundPlan:
        return cls(**{**d, "slices": [SlicePlan(**s) for s in d["slices"]], "steps": tuple(d["steps"])})

    @property
    def n_new(self) -> int:
        return sum(s.n_new for s in self.slices)


def weights_from_gap(gaps: dict[str, float], rule: str, max_weight: float) -> dict[str, float]:
    """The weight of each failing slice's new inputs (``ROUND['weights']`` says the rule): ``gap`` scales
    1..``max_weight`` with the slice's gap over the largest gap (gaps below 0 count as 0); ``equal`` is 1 for all."""
    ROUND["weights"].check(rule)
    top = max((max(0.0, g) for g in gaps.values()), default=0.0)
    if rule == "equal" or top <= 0:
        return dict.fromkeys(gaps, 1.0)
    return {s: round(1.0 + (max_weight - 1.0) * max(0.0, g) / top, 6) for s, g in gaps.items()}


def newest_tuned_eval(ws: Workspace) -> int:
    """The newest tuned evaluation on the held-out split of a run."""
    eval_id = ws.scalar("SELECT max(eval_id) FROM evaluations WHERE kind = 'tuned' AND eval_set = 'heldout' "
                        "AND run_id IS NOT NULL")  # fmt: skip
    if eval_id is None:
        raise UserError("no tuned evaluation on the held-out split yet: train and evaluate first (`distill train "
                        "--dataset VERSION --eval`; in the studio: Training, then e on Evaluation)")  # fmt: skip
    return int(eval_id)


def next_version_name(base: str, number: int) -> str:
    """``v1`` -> ``v1-r1``; ``v1-r1`` -> ``v1-r2``."""
    return f"{re.sub(r'-r[0-9]+$', '', base)}-r{number}"


def plan_round(ws: Workspace, values: dict[str, Any]) -> RoundPlan:
    """The plan of a new round for parsed and resolved ``ROUND`` values. Sends and writes nothing."""
    eval_id = values.get("eval") or newest_tuned_eval(ws)
    rows = ws.query_dicts("SELECT eval_id, run_id, kind, eval_set, bar_id, CAST(summary AS VARCHAR) AS summary "
                          "FROM evaluations WHERE eval_id = ?", [eval_id])  # fmt: skip
    if not rows or rows[0]["kind"] != "tuned" or rows[0]["eval_set"] != "heldout" or rows[0]["run_id"] is None:
        raise ROUND["eval"].error(f"evaluation {eval_id} is not a tuned evaluation of a run on the held-out split")
    ev = rows[0]
    run = store.get_run(ws, int(ev["run_id"]))
    if not run["dataset_version"]:
        raise UserError(f"run {run['run_id']} was trained from a file; a round adds to a dataset version (train on "
                        "one with `distill train --dataset VERSION`)")  # fmt: skip
    base = get_version(ws, run["dataset_version"])
    if not base.split:
        raise UserError(f"dataset version {base.name!r} has no held-out split; a round needs one to evaluate on")
    number = (round_of_eval(ws, int(eval_id)) or 0) + 1
    version = values.get("version") or next_version_name(base.name, number)
    if ws.scalar("SELECT count(*) FROM dataset_versions WHERE name = ?", [version]):
        raise ROUND["version"].error(f"dataset version {version!r} exists already; name the new one")
    cfg = get_teacher(ws, values.get("teacher") or only_teacher(ws))
    failing = ws.query_dicts("SELECT slice, n, score, score_low, score_high, bar, gap FROM eval_slices "
                             "WHERE eval_id = ? AND NOT passed ORDER BY slice", [eval_id])  # fmt: skip
    wrong: dict[str, list[int]] = {}
    for s, ids in ws.query(
        f"SELECT slice, list(record_id ORDER BY record_id) FROM eval_items WHERE eval_id = ? AND {wrong_sql()} "
        "AND record_id IN (SELECT record_id FROM records) GROUP BY 1", [eval_id]
    ):  # fmt: skip
        wrong[str(s)] = [int(i) for i in ids]
    weights = weights_from_gap({f["slice"]: f["gap"] or 0.0 for f in failing if wrong.get(f["slice"])},
                               values["weights"], values["max_weight"])  # fmt: skip
    slices = [SlicePlan(f["slice"], int(f["n"]), f["score"], f["score_low"], f["score_high"], f["bar"],
                        f["gap"] or 0.0, len(wrong[f["slice"]]), wrong[f["slice"]], values["n"],
                        weights[f["slice"]]) for f in failing if wrong.get(f["slice"])]  # fmt: skip
    summary = json.loads(ev["summary"])
    sample = summary.get("sample") or {}
    usd, n_requests = estimate(ws, cfg, slices, values["examples"])
    bar_name = ws.scalar("SELECT name FROM quality_bars WHERE bar_id = ?", [ev["bar_id"]]) or "default"
    return RoundPlan(number, int(eval_id), int(run["run_id"]), base.name, base.split, cfg.name, version, slices, usd,
                     n_requests, sample.get("limit"), int(sample.get("seed") or 0), str(bar_name), values["weights"],
                     [f["slice"] for f in failing if not wrong.get(f["slice"])])  # fmt: skip


def estimate(ws: Workspace, cfg: TeacherConfig, slices: list[SlicePlan], n_examples: int) -> tuple[float, int]:
    """(USD, requests) at most: every synth request a slice may send (its first wave and the shortfall asked
    again), showing the longest failing prompts, and one answer per new input as long as the longest one."""
    usd, requests = 0.0, 0
    for s in slices:
        rows = ws.query("SELECT CAST(messages AS VARCHAR), coalesce(prompt, '') FROM records WHERE record_id IN "
                        "(SELECT unnest(?)) ORDER BY length(prompt) DESC", [s.seeds])  # fmt: skip
        if not rows:
            continue
        shown = [p for _, p in rows[:n_examples]]
        n_synth = max_requests(s.n_new)
        for k in range(n_synth):
            rq = synth_request(s.slice, shown, min(PER_REQUEST, s.n_new), k + 1, seeded=True)
            usd += estimate_cost(cfg, rq.messages, rq.params)
        usd += s.n_new * estimate_cost(cfg, json.loads(rows[0][0]))
        requests += n_synth + s.n_new
    return usd, requests
