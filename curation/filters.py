"""Filters over teacher answers: confidence from token logprobs, and verifiers for checkable answers.

Each filter has a policy: ``drop`` (dataset versions leave failing records out), ``review`` (failing records are
queued for a human: reviews.status = needs_review, never overriding a human accept/reject) or ``keep`` (only
recorded). A filter spec is a dict:
  {"kind": "confidence", "metric": "mean_logprob" | "min_logprob" | "answer_prob", "min": X, "field": "intent"}
  {"kind": "verifier", "verifier": {<curation.verifiers spec>}}
``answer_prob`` is the probability of the tokens of one labelled field's value in the JSON answer.
"""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from curation.effective import effective_sql
from curation.errors import UserError
from curation.options import ChoiceOption, FloatOption, OptionSet, TextOption
from curation.pool_options import SLICING
from curation.progress import ProgressFn, report
from curation.review import queue_records
from curation.verifiers import Verifier
from curation.workspace import Workspace

POLICIES = ("drop", "review", "keep")
METRICS = ("mean_logprob", "min_logprob", "answer_prob")


def _json_spec(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"verifier spec is not JSON: {exc}") from None


def _json_file(path: str) -> Any:
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _json_spec(text)


FILTER = OptionSet(
    "filter",
    (
        TextOption(name="name", positional=True, help="filter name (re-running a name replaces its previous result)"),
        ChoiceOption(
            name="confidence",
            choices=METRICS,
            help="teacher confidence from token logprobs: mean / minimum token logprob, or the probability "
            "of the answer tokens of one labelled JSON field",
        ),
        FloatOption(name="min", help="fail below this (logprob, or probability for answer_prob)"),
        TextOption(name="field", help="labelled field for answer_prob (e.g. intent)"),
        TextOption(
            name="verifier",
            metavar="JSON",
            help="verifier spec (see curation.verifiers)",
            read=_json_spec,
            write=json.dumps,
        ),
        TextOption(
            name="verifier_file", metavar="PATH", help="verifier spec in a JSON file", read=_json_file, write=json.dumps
        ),
        ChoiceOption(
            name="policy",
            choices=POLICIES,
            default="review",
            required=True,
            help="failing records: drop (left out of versions), review (queued as needs_review and left "
            "out until accepted), keep (only recorded)",
        ),
        SLICING,
    ),
)


def filter_spec(values: dict[str, Any]) -> dict[str, Any]:
    """Parsed filter options -> the spec ``run_filter`` takes (a confidence metric, or a verifier)."""
    conf, low = FILTER["confidence"], FILTER["min"]
    if values.get("confidence"):
        if values.get("min") is None:
            raise low.error(f"needed with {conf.label} ({conf.flag})")
        spec = {"kind": "confidence", "metric": values["confidence"], "min": values["min"], "field": values["field"]}
        _check_spec(spec)
        return spec
    verifier = values.get("verifier") or values.get("verifier_file")
    if not verifier:
        ver, vfile = FILTER["verifier"], FILTER["verifier_file"]
        raise UserError(f"give {conf.label} ({conf.flag}) with {low.label} ({low.flag}), {ver.label} ({ver.flag}) "
                        f"or {vfile.label} ({vfile.flag})")  # fmt: skip
    return {"kind": "verifier", "verifier": verifier}


def answer_span(text: str, field_path: str) -> tuple[int, int] | None:
    """Character span of a field's value in a JSON answer (string values without their quotes)."""
    key = field_path.split(".")[-1]
    m = re.search(r'"' + re.escape(key) + r'"\s*:\s*', text)
    if not m:
        return None
    start = m.end()
    if start < len(text) and text[start] == '"':
        end = start + 1
        while end < len(text) and text[end] != '"':
            end += 2 if text[end] == "\\" else 1
        return (start + 1, end) if end < len(text) else None
    lit = re.match(r"[^,}\]\s]+", text[start:])
    return (start, start + lit.end()) if lit else None


def answer_prob(logprobs: list[dict[str, Any]] | None, field_path: str) -> float | None:
    """Probability of the tokens that spell a labelled field's value (product of their token probabilities)."""
    if not logprobs:
        return None
    toks = [str(t.get("token", "")) for t in logprobs]
    text = "".join(toks)
    span = answer_span(text, field_path)
    if span is None:
        return None
    pos, total = 0, 0.0
    for tok, lp in zip(toks, (t.get("logprob") for t in logprobs), strict=True):
        end = pos + len(tok)
        if end > span[0] and pos < span[1] and lp is not None:
            total += float(lp)
        pos = end
    return math.exp(total)


def teacher_score(
    metric: str, field_path: str | None, mean: float | None, minimum: float | None, logprobs_json: str | None
) -> float | None:
    """A confidence metric of the teacher's answer: its mean or minimum token logprob, or ``answer_prob`` of a
    labelled field (from the answer's token logprobs as stored JSON); None when it cannot be scored."""
    if metric == "answer_prob":
        return answer_prob(json.loads(logprobs_json) if logprobs_json else None, field_path or "")
    return mean if metric == "mean_logprob" else minimum


@dataclass
class FilterReport:
    """What a filter found (and, when applied, did)."""

    name: str
    policy: str
    n_checked: int
    n_failed: int
    n_unscored: int  # confidence filters: no logprobs (or edited answers) - not judged
    n_to_queue: int
    n_protected: int  # failing but a human already accepted/rejected: left alone
    per_slice: list[tuple[str, int, int]]  # slice, checked, failed
    sample: list[dict[str, Any]] = field(default_factory=list)
    run_id: int | None = None
    score_quantiles: dict[str, float] = field(default_factory=dict)  # confidence filters: min, p5, median, max

    @property
    def range_hint(self) -> str:
        """When a confidence cut-off catches nothing: where the scores actually are, so the next one can."""
        q = self.score_quantiles
        if self.n_failed or not q:
            return ""
        return (f"no record is below the cut-off: scores range {q['min']:.3f} .. {q['max']:.3f} (5th percentile "
                f"{q['p5']:.3f}, median {q['median']:.3f})")  # fmt: skip


def _check_spec(spec: dict[str, Any]) -> Verifier | None:
    kind = spec.get("kind")
    if kind == "verifier":
        return Verifier.from_spec(spec.get("verifier") or {})
    if kind != "confidence":
        raise UserError("filter kind must be confidence or verifier")
    FILTER["confidence"].check(spec.get("metric"))
    if spec["metric"] == "answer_prob" and not spec.get("field"):
        raise FILTER["field"].error("answer_prob needs the labelled field (e.g. intent)")
    if not isinstance(spec.get("min"), int | float):
        raise FILTER["min"].error("a confidence filter needs a number")
    return None


def run_filter(
    ws: Workspace,
    name: str,
    spec: dict[str, Any],
    policy: str,
    *,
    apply: bool = False,
    slicing: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> FilterReport:
    """Check every record with a response (not rejected); with ``apply``, store results and carry out the policy."""
    FILTER["policy"].check(policy)
    verifier = _check_spec(spec)
    base, params = effective_sql(ws, slicing)
    rows = ws.query(
        f"SELECT e.record_id, e.slice, e.response, e.reference, e.status, e.mean_logprob, e.min_logprob, "
        "CAST(e.response_logprobs AS VARCHAR), e.response IS DISTINCT FROM e.original_response, e.prompt "
        f"FROM ({base}) e "
        "WHERE e.response IS NOT NULL AND e.status <> 'rejected' ORDER BY e.record_id",
        params,
    )
    results: list[tuple[int, bool, float | None, str]] = []
    per: dict[str, list[int]] = {}
    unscored = 0
    for k, (rid, slc, resp, ref, _st, mean, mn, lps, edited, _p) in enumerate(rows):
        if k % 2000 == 0:
            report(progress, cancel, f"filter {name}", k, len(rows))
        score: float | None = None
        if verifier is not None:
            res = verifier.check(resp, ref)
            ok, why = res.ok, res.reason
        else:
            metric = spec["metric"]
            # An edited answer is not the teacher's: its logprobs say nothing about it.
            score = None if edited else teacher_score(metric, spec.get("field"), mean, mn, lps)
            ok = score is None or score >= float(spec["min"])
            why = "" if ok else f"{metric} {score:.3f} < {float(spec['min']):g}"
            unscored += score is None
        results.append((int(rid), ok, score, why))
        c = per.setdefault(str(slc), [0, 0])
        c[0] += 1
        c[1] += not ok
    status = {int(r[0]): r[4] for r in rows}
    prompts = {int(r[0]): r[9] for r in rows}
    failed = [r for r in results if not r[1]]
    protected = [r for r in failed if status[r[0]] in ("accepted", "rejected")]
    to_queue = [r for r in failed if status[r[0]] not in ("accepted", "rejected")] if policy == "review" else []
    rep = FilterReport(
        name,
        policy,
        len(results),
        len(failed),
        unscored,
        len(to_queue),
        len(protected) if policy == "review" else 0,
        sorted(((s, c[0], c[1]) for s, c in per.items()), key=lambda x: -x[2]),
        [{"record_id": r, "score": s, "reason": w, "prompt": (prompts[r] or "")[:120]} for r, _o, s, w in failed[:10]],
    )
    scores = [r[2] for r in results if r[2] is not None]
    if scores:
        scores.sort()  # nearest-rank quantiles: numpy stays unloaded (the CLI reads FILTER at every start)
        at = {"min": 0.0, "p5": 0.05, "median": 0.5, "max": 1.0}
        rep.score_quantiles = {k: scores[round(q * (len(scores) - 1))] for k, q in at.items()}
    report(progress, cancel, f"filter {name}", len(rows), len(rows))
    if apply:
        rep.run_id = _store(ws, name, spec, policy, results, to_queue)
    return rep


def _store(ws: Workspace, name: str, spec: dict, policy: str, results: list, to_queue: list) -> int:
    import pyarrow as pa

    now = datetime.now()
    tbl = pa.table(
        {
            "record_id": pa.array([r[0] for r in results], pa.int64()),
            "ok": pa.array([r[1] for r in results], pa.bool_()),
            "score": pa.array([r[2] for r in results], pa.float64()),
            "reason": pa.array([r[3] or None for r in results], pa.string()),
        }
    )
    with ws.transaction() as cur:
        run_id = cur.execute(
            "INSERT INTO filter_runs (name, spec, policy, n_checked, n_failed, n_queued, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING run_id",
            [name, json.dumps(spec), policy, len(results), sum(1 for r in results if not r[1]), len(to_queue), now],
        ).fetchall()[0][0]
        cur.register("_fr", tbl)
        cur.execute("INSERT INTO filter_results SELECT ?, record_id, ok, score, reason FROM _fr", [run_id])
        cur.unregister("_fr")
        # Folded like a reviewer's queue (edits and relabels stay); a human accept/reject was left out above.
        queue_records(cur, [r[0] for r in to_queue], name, f"filter:{name}")
    return int(run_id)


def list_filter_runs(ws: Workspace) -> list[dict]:
    """Stored filter runs, newest first."""
    return ws.query_dicts(
        "SELECT run_id, name, policy, n_checked, n_failed, n_queued, CAST(spec AS VARCHAR) AS spec, created_at "
        "FROM filter_runs ORDER BY run_id DESC"
    )
