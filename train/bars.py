"""The quality bar: written down before training, every evaluation is judged against it.

Each edit stores a new row (``quality_bars``); the newest row of a name is the current bar and evaluations keep the
``bar_id`` they were judged against, so old verdicts stay explainable.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from curation.errors import UserError
from curation.option_lists import ListOption, SharesOption
from curation.options import FloatOption, OptionSet, TextOption
from curation.soft_labels import LabelSpec
from curation.workspace import Workspace
from train.metrics import metric_name, metric_text, parse_metric, split_metrics, validate_metric
from train.sampling import label_field

METRIC_HELP = ("exact:FIELD | json_f1 | valid_json | exact | label_in_set:FIELD=a|b | regex:RE | json_schema:FILE | "
               "verifier:json | verifier:label:FIELD=a|b | verifier:regex:[FIELD=]RE | verifier:exact_match[:FIELD] | "
               "verifier:{JSON spec} | verifier:@FILTER (a curation verifier filter) | judge:TEACHER (LLM-as-judge); "
               "several, the first is primary")  # fmt: skip
# Monitoring defaults (a bar may set its own with `distill bar set`):
# - Drift: a domain classifier's ROC AUC between live prompts and the training version's, per slice. Measured on the
#   sample's slices (MiniLM embeddings, 5-fold logistic regression, 400 training vs 50-740 live prompts): the same
#   distribution gave 0.45-0.55 (0.61 at most over 10 draws of 50), 20% of another slice mixed in 0.57-0.63, 40%
#   0.65-0.73, another slice 1.0. 0.6 alarms once about a quarter of a slice's traffic looks unlike its training data;
#   the alarm also needs the AUC to beat 95% of label shuffles (small samples reach 0.6 by chance).
DEFAULT_MAX_DRIFT_AUC = 0.6
# - Fallback: the share of the student's requests sent back to the teacher. Above a quarter, the teacher still
#   answers one request in four, so the student saves at most three quarters of the teacher's bill and its calibrated
#   thresholds no longer describe the traffic.
DEFAULT_MAX_FALLBACK_RATE = 0.25
# - Agreement in shadow: by default each slice's own bar (the same primary metric the offline verdict used).

# `distill bar set` and the studio's bar editor; every default is None: an option not given keeps its current value.
BAR = OptionSet(
    "bar",
    (
        TextOption(name="name", default="default", required=True, help="bar name"),
        TextOption(name="task", help="what the student must do, in words"),
        ListOption(
            name="metrics",
            flag="--metric",
            metavar="SPEC",
            item=parse_metric,
            write_item=metric_text,
            split=split_metrics,
            help=METRIC_HELP,
        ),
        FloatOption(name="threshold", minimum=0, maximum=1, help="overall bar on the primary metric, 0..1"),
        SharesOption(
            name="slice_bars",
            flag="--slice-bar",
            metavar="SLICE=X",
            minimum=0,
            maximum=1,
            label="Slice bars",
            help="bar for a critical slice: billing=0.9,security=0.95",
        ),
        FloatOption(name="max_gap", minimum=0, maximum=1, help="acceptable gap to the teacher, 0..1"),
        FloatOption(
            name="max_latency_p95_ms",
            flag="--max-latency-ms",
            minimum=0,
            label="Max p95 latency (ms)",
            help="p95 latency target per request",
        ),
        FloatOption(
            name="max_cost_per_1k",
            flag="--max-cost",
            minimum=0,
            label="Max cost per 1k",
            help="student cost target per 1,000 requests",
        ),
        FloatOption(
            name="teacher_price_per_1k",
            flag="--teacher-price",
            minimum=0,
            label="Teacher price per 1k",
            help="teacher cost per 1,000 requests",
        ),
        FloatOption(
            name="student_price_per_hour",
            flag="--student-price",
            minimum=0,
            label="Student price per hour",
            help="student machine cost per hour",
        ),
        FloatOption(
            name="requests_per_day",
            minimum=0,
            label="Requests per day",
            help="traffic for the payback estimate (empty: measured from the logs' timestamps)",
        ),
        FloatOption(
            name="max_drift_auc",
            minimum=0.5,
            maximum=1,
            metavar="AUC",
            label="Monitoring: max drift AUC",
            help="alarm when a classifier tells live inputs from the training data apart with a ROC AUC above this, "
            f"0.5..1 (a new bar: {DEFAULT_MAX_DRIFT_AUC})",
        ),
        FloatOption(
            name="max_fallback_rate",
            minimum=0,
            maximum=1,
            label="Monitoring: max fallback rate",
            help="alarm when a larger share of the student's requests goes back to the teacher, 0..1 "
            f"(a new bar: {DEFAULT_MAX_FALLBACK_RATE})",
        ),
        FloatOption(
            name="min_agreement",
            minimum=0,
            maximum=1,
            label="Monitoring: min shadow agreement",
            help="alarm when student-teacher agreement in shadow is below this, 0..1 (a new bar: each slice's bar)",
        ),
    ),
)


@dataclass
class QualityBar:
    """What "good enough" means for the student. Scores are in [0, 1]; the first metric is the primary one."""

    task: str
    metrics: list[dict[str, Any]]
    threshold: float
    slice_bars: dict[str, float] = field(default_factory=dict)
    max_gap: float | None = None  # acceptable teacher-minus-student gap on the primary metric
    max_latency_p95_ms: float | None = None
    max_cost_per_1k: float | None = None
    teacher_price_per_1k: float | None = None
    student_price_per_hour: float | None = None
    requests_per_day: float | None = None  # traffic for the payback estimate (None: measured from the logs)
    max_drift_auc: float = DEFAULT_MAX_DRIFT_AUC
    max_fallback_rate: float = DEFAULT_MAX_FALLBACK_RATE
    min_agreement: float | None = None  # None: each slice's own bar
    name: str = "default"
    bar_id: int | None = None
    created_at: datetime | None = None

    @property
    def primary(self) -> dict[str, Any]:
        return self.metrics[0]

    @property
    def primary_name(self) -> str:
        return metric_name(self.primary)

    def labels(self) -> list[str]:
        """Every label the bar's checks allow (``label_in_set`` labels, ``verifier:label`` allowed values), in order:
        the review's fixed label set offers them for relabels and reject reasons."""
        found: list[str] = []
        for m in self.metrics:
            found += [str(x) for x in m.get("labels") or []]
            v = m.get("verifier") if m.get("kind") == "verifier" else None
            if isinstance(v, dict) and v.get("type") == "label":
                found += [str(x) for x in v.get("allowed") or []]
        return list(dict.fromkeys(found))

    def bar_for(self, slice_name: str) -> float:
        """The threshold for a slice (its own bar if it is a critical slice, else the overall one)."""
        return self.slice_bars.get(slice_name, self.threshold)

    def label_spec(self) -> LabelSpec | None:
        """The answers' labelled JSON field (``train.sampling.label_field``: the first metric naming one), with the
        label set of a label metric on that field when the bar has one (else None: the references' values). None
        when the bar names no labelled field of a JSON answer. Labels compare case- and space-insensitively, as
        the metrics do."""
        from train.sampling import label_field

        labelled, name = label_field(self.metrics)
        if not labelled or name is None:
            return None
        for m in self.metrics:
            v = m.get("verifier") or {}
            if m["kind"] == "label_in_set" and m.get("field") == name and m.get("labels"):
                return LabelSpec(name, tuple(m["labels"]))
            if m["kind"] == "verifier" and v.get("type") == "label" and v.get("field") == name and v.get("allowed"):
                return LabelSpec(name, tuple(v["allowed"]))
        return LabelSpec(name)

    def agreement_bar(self, slice_name: str) -> float:
        """The least student-teacher agreement a slice may show in shadow: ``min_agreement``, else its own bar."""
        return self.min_agreement if self.min_agreement is not None else self.bar_for(slice_name)

    def validate(self) -> None:
        """Raise ``UserError`` on a bar that cannot be applied."""
        if not self.task.strip():
            raise UserError("a quality bar needs a task description")
        if not self.metrics:
            raise UserError("a quality bar needs at least one metric")
        for m in self.metrics:
            validate_metric(m)
        for name, v in [("threshold", self.threshold), *self.slice_bars.items(), ("max gap", self.max_gap),
                        ("max fallback rate", self.max_fallback_rate), ("min agreement", self.min_agreement)]:  # fmt: skip
            if v is not None and not 0.0 <= v <= 1.0:
                raise UserError(f"{name} must be between 0 and 1 (got {v})")
        if not 0.5 <= self.max_drift_auc <= 1.0:
            raise UserError(f"max drift AUC must be between 0.5 (no drift) and 1 (got {self.max_drift_auc})")
        for name, v in [
            ("latency", self.max_latency_p95_ms),
            ("cost", self.max_cost_per_1k),
            ("teacher price", self.teacher_price_per_1k),
            ("student price", self.student_price_per_hour),
            ("requests per day", self.requests_per_day),
        ]:
            if v is not None and v < 0:
                raise UserError(f"{name} must not be negative")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_COLS = ("name", "task", "metrics", "threshold", "slice_bars", "max_gap", "max_latency_p95_ms", "max_cost_per_1k",
         "teacher_price_per_1k", "student_price_per_hour", "requests_per_day",
         "max_drift_auc", "max_fallback_rate", "min_agreement")  # fmt: skip
# Columns added after bars were first stored: NULL in an older row reads as the default.
_LATER_DEFAULTS = {"max_drift_auc": DEFAULT_MAX_DRIFT_AUC, "max_fallback_rate": DEFAULT_MAX_FALLBACK_RATE}


def resolve_metrics(ws: Workspace, bar: QualityBar) -> None:
    """Make the bar self-contained: a ``verifier:@NAME`` metric takes the verifier of curation's newest filter run
    called NAME; a judge metric must name a configured teacher."""
    for m in bar.metrics:
        if m.get("kind") == "verifier" and m.get("filter") and not m.get("verifier"):
            rows = ws.query("SELECT spec FROM filter_runs WHERE name = ? ORDER BY run_id DESC LIMIT 1", [m["filter"]])
            spec = json.loads(rows[0][0]) if rows else {}
            if spec.get("kind") != "verifier":
                raise UserError(f"no curation verifier filter named {m['filter']!r} (see `distill filter --list`)")
            m["verifier"] = spec["verifier"]
        elif m.get("kind") == "judge" and m.get("teacher"):
            from curation.teacher.config import get_teacher

            get_teacher(ws, m["teacher"])  # UserError listing the known teachers


def bar_from_options(current: QualityBar | None, values: dict[str, Any]) -> QualityBar:
    """Parsed bar options over the current bar: what is given replaces, slice bars merge, the rest stays."""
    d: dict[str, Any] = current.to_dict() if current else {"task": "", "metrics": [], "threshold": None}
    d.pop("bar_id", None), d.pop("created_at", None)
    given = {k: v for k, v in values.items() if v is not None}
    d.update({**given, "slice_bars": {**(d.get("slice_bars") or {}), **(given.get("slice_bars") or {})}})
    if d["threshold"] is None:
        raise BAR["threshold"].error("a new bar needs a threshold")
    return QualityBar(**d)


def set_bar(ws: Workspace, bar: QualityBar) -> QualityBar:
    """Validate and store ``bar`` as the current bar of its name; return it with its new id."""
    resolve_metrics(ws, bar)
    bar.validate()
    values = [getattr(bar, c) for c in _COLS]
    values[2], values[4] = json.dumps(bar.metrics), json.dumps(bar.slice_bars)
    now = datetime.now()
    with ws.transaction() as cur:
        bar_id = cur.execute(
            f"INSERT INTO quality_bars ({', '.join(_COLS)}, created_at) VALUES ({', '.join('?' * (len(_COLS) + 1))}) "
            "RETURNING bar_id",
            [*values, now],
        ).fetchall()[0][0]
    bar.bar_id, bar.created_at = int(bar_id), now
    return bar


def _from_row(row: dict[str, Any]) -> QualityBar:
    row = dict(row)
    row["metrics"] = json.loads(row["metrics"])
    row["slice_bars"] = json.loads(row["slice_bars"])
    for col, default in _LATER_DEFAULTS.items():
        if row[col] is None:
            row[col] = default
    return QualityBar(**row)


def get_bar(ws: Workspace, name: str = "default") -> QualityBar | None:
    """The current bar of ``name``, or None when none was set."""
    rows = ws.query_dicts(
        f"SELECT bar_id, created_at, {', '.join(_COLS)} FROM quality_bars WHERE name = ? ORDER BY bar_id DESC LIMIT 1",
        [name],
    )
    return _from_row(rows[0]) if rows else None


def get_bar_by_id(ws: Workspace, bar_id: int) -> QualityBar:
    rows = ws.query_dicts(f"SELECT bar_id, created_at, {', '.join(_COLS)} FROM quality_bars WHERE bar_id = ?", [bar_id])
    if not rows:
        raise UserError(f"no quality bar {bar_id}")
    return _from_row(rows[0])


def require_bar(ws: Workspace, name: str = "default") -> QualityBar:
    """The current bar, or a ``UserError`` saying how to set one."""
    bar = get_bar(ws, name)
    if bar is None:
        raise UserError(f"no quality bar {name!r} yet; set one first with `distill bar set`")
    return bar


def bar_label(ws: Workspace, name: str = "default") -> tuple[bool, str | None]:
    """Whether the current bar compares a label, and its field (``train.sampling.label_field``); (False, None)
    without a bar. Curation's dedupe takes it as an argument (``answers=auto``) and never reads the bar itself."""
    bar = get_bar(ws, name)
    return label_field(bar.metrics) if bar is not None else (False, None)
