"""What the gateway did in a window of its log, per slice: traffic, route shares, fallback to the teacher (by reason),
student-teacher agreement in shadow, the label-free accuracy estimate, latency per route and cost vs teacher-only.

Counts are aggregated by DuckDB over the window's Arrow rows; intervals are Wilson's (``train.stats``), percentiles
the evaluation's (``train.scoring.percentile``), agreement the bar's primary metric on the student's vs the teacher's
answer (``train.scoring.score_item``), cost the teacher's own ``cost`` of the logged usage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from curation.teacher.config import TeacherConfig
from train.bars import QualityBar
from train.calibration import IsotonicMap
from train.scoring import Item, percentile, score_item
from train.serve.settings import SHADOW_LATE
from train.stats import wilson

ALL = "(all)"
ROUTES = ("student", "teacher", "both")
PERCENTILES = (50, 95, 99)


def is_student_reason(reason: str | None) -> bool:
    """Whether a fallback reason says the student's answer was not served (not ``teacher_error``, the reverse)."""
    return reason is not None and (reason in ("low_confidence", "student_error") or reason.startswith("verifier:"))


def enricher(bar: QualityBar | None) -> Callable[[pa.Table], pa.Table]:
    """Adds, once per chunk of rows: ``agree`` (shadow rows: 1/0 by the bar's primary metric, null when it cannot
    score), ``student_asked`` and ``student_fallback`` (the reason the student's answer was, or in shadow would have
    been, sent back: the gateway's ``fallback_check``, or ``student_error``)."""

    def enrich(table: pa.Table) -> pa.Table:
        agree: list[float | None] = []
        asked: list[bool] = []
        fallback: list[str | None] = []
        for r in table.select(["route", "slice", "fallback_reason", "student_text", "student_check",
                               "student_error", "teacher_text"]).to_pylist():  # fmt: skip
            # a shadow student still generating when the teacher's answer went out was not judged: no would-be fallback
            late = r["route"] == "both" and (r["student_error"] or "").startswith(SHADOW_LATE)
            part = (r["student_text"] is not None or r["student_error"] is not None) and not late
            asked.append(part or r["route"] == "student")
            if r["route"] == "both":
                fallback.append(r["student_check"] or ("student_error" if r["student_error"] else None) if part
                                else None)  # fmt: skip
            else:
                fallback.append(r["fallback_reason"] if is_student_reason(r["fallback_reason"]) else None)
            a = None
            if bar is not None and r["route"] == "both" and r["student_text"] is not None and r["teacher_text"]:
                item = Item(None, r["slice"], "", r["student_text"], r["teacher_text"], None)
                score_item(item, bar)
                a = None if item.agree is None else float(item.agree)
            agree.append(a)
        return (table.append_column("agree", pa.array(agree, pa.float64()))
                .append_column("student_asked", pa.array(asked, pa.bool_()))
                .append_column("student_fallback", pa.array(fallback, pa.string())))  # fmt: skip

    return enrich


@dataclass
class Rate:
    """``k`` of ``n`` with its 95% Wilson interval."""

    k: float
    n: int
    value: float | None = None
    low: float | None = None
    high: float | None = None

    @staticmethod
    def of(k: float, n: int) -> Rate:
        ci = wilson(k, n)
        return Rate(k, n, k / n if n else None, *(ci or (None, None)))


@dataclass
class SliceTraffic:
    """One slice (or ``(all)``) in the window."""

    slice: str
    requests: int
    routes: dict[str, int]
    fallback: Rate  # of the requests the student was asked, those whose answer went (or would go) to the teacher
    fallback_reasons: dict[str, int]
    agreement: Rate  # shadow requests whose student and teacher answers agree on the bar's primary metric
    estimated_accuracy: float | None  # CBPE: mean calibrated confidence of the student's answers
    n_confidence: int
    latency_p95_ms: float | None
    student_errors: int
    teacher_errors: int

    def share(self, route: str) -> float:
        return self.routes.get(route, 0) / self.requests if self.requests else 0.0


@dataclass
class Pricing:
    """What a request costs: the teacher by its prices and the logged usage (else a flat price per 1,000
    requests), the student by its machine's price per hour."""

    teacher: TeacherConfig | None = None
    teacher_per_1k: float | None = None
    student_per_hour: float | None = None

    def teacher_cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
        if self.teacher is not None and (self.teacher.price_in_per_m or self.teacher.price_out_per_m):
            return self.teacher.cost(prompt_tokens or 0, completion_tokens or 0)
        return None if self.teacher_per_1k is None else self.teacher_per_1k / 1000


@dataclass
class Cost:
    """Spend in the window vs sending every request to the teacher (USD; None where a price is unknown)."""

    requests: int
    hours: float
    teacher_only: float | None
    teacher: float | None  # the teacher's part: requests it answered or was asked
    student: float | None  # the student's machine for the window
    actual: float | None
    per_1k_teacher_only: float | None = None
    per_1k_actual: float | None = None
    savings: float | None = None


@dataclass
class Traffic:
    """The window's traffic summary."""

    first: datetime | None
    last: datetime | None
    overall: SliceTraffic
    slices: list[SliceTraffic]
    latency: dict[str, dict[str, float | None]]  # route -> {n, p50, p95, p99}
    cost: Cost
    teacher_models: dict[str, int]
    modes: dict[str, int] = field(default_factory=dict)


_COUNTS = """SELECT slice, count(*) AS n,
    count(*) FILTER (route = 'student') AS student, count(*) FILTER (route = 'teacher') AS teacher,
    count(*) FILTER (route = 'both') AS both_, count(*) FILTER (student_asked) AS asked,
    count(student_fallback) AS fell_back, count(agree) AS n_agree, coalesce(sum(agree), 0) AS agree,
    avg(calibrated) AS cbpe, count(student_confidence) AS n_conf, count(student_error) AS s_err, count(teacher_error) AS t_err,
    list(latency_ms) FILTER (latency_ms IS NOT NULL) AS lat
    FROM t GROUP BY ROLLUP (slice) ORDER BY slice NULLS FIRST"""


def summarize(
    rows: pa.Table, pricing: Pricing, calibration: IsotonicMap | None = None, hours: float | None = None
) -> Traffic:
    """The window's summary from rows enriched by ``enricher``. ``hours``: how long the student's machine ran (the
    window's length; default the span from the first to the last request)."""
    conf = rows["student_confidence"].to_numpy(zero_copy_only=False).astype(np.float64)
    cal = calibration(np.nan_to_num(conf)) if calibration is not None else np.full(len(conf), np.nan)
    cal[np.isnan(conf)] = np.nan
    t = rows.append_column("calibrated", pa.array(cal, pa.float64(), from_pandas=True))
    con = duckdb.connect()
    try:
        con.register("t", t)
        counts = con.sql(_COUNTS).fetchall()
        reasons = con.sql("SELECT slice, student_fallback, count(*) FROM t WHERE student_fallback IS NOT NULL "
                          "GROUP BY GROUPING SETS ((slice, student_fallback), (student_fallback))").fetchall()  # fmt: skip
        lat = con.sql("SELECT route, list(latency_ms) FROM t WHERE latency_ms IS NOT NULL GROUP BY route").fetchall()
        first, last = con.sql("SELECT min(started_at), max(started_at) FROM t").fetchall()[0]
        models = con.sql("SELECT coalesce(teacher_model, response_model), count(*) FROM t "
                         "WHERE teacher_text IS NOT NULL GROUP BY 1").fetchall()  # fmt: skip
        modes = con.sql("SELECT mode, count(*) FROM t GROUP BY 1").fetchall()
        usage = con.sql("SELECT prompt_tokens, completion_tokens, teacher_cost_usd, "
                        "teacher_text IS NOT NULL OR teacher_error IS NOT NULL FROM t").fetchall()  # fmt: skip
    finally:
        con.close()
    by_reason: dict[str, dict[str, int]] = {}
    for s, reason, n in reasons:
        if reason is not None:
            by_reason.setdefault(s or ALL, {})[reason] = int(n)
    out = []
    for s, n, st, te, bo, asked, fell, n_agree, agree, cbpe, n_conf, s_err, t_err, lats in counts:
        name = ALL if s is None else s
        routes = {k: int(v) for k, v in (("student", st), ("teacher", te), ("both", bo)) if v}
        out.append(SliceTraffic(name, int(n), routes, Rate.of(int(fell), int(asked)), by_reason.get(name, {}),
                                Rate.of(float(agree), int(n_agree)), None if cbpe is None else float(cbpe),
                                int(n_conf), percentile(lats, 95), int(s_err), int(t_err)))  # fmt: skip
    if not out:
        out = [SliceTraffic(ALL, 0, {}, Rate.of(0, 0), {}, Rate.of(0, 0), None, 0, None, 0, 0)]
    latency = {str(r): {"n": len(v), **{f"p{q}": percentile(v, q) for q in PERCENTILES}} for r, v in lat}
    span = hours if hours is not None else ((last - first).total_seconds() / 3600 if first and last else 0.0)
    return Traffic(first, last, out[0], out[1:], dict(sorted(latency.items())), _cost(usage, pricing, span),
                   {str(m): int(n) for m, n in models if m}, {str(m): int(n) for m, n in modes if m})  # fmt: skip


def _cost(usage: list[tuple[Any, ...]], pricing: Pricing, hours: float) -> Cost:
    teacher_only = teacher = 0.0
    priced = True
    for prompt, completion, logged, asked in usage:
        c = pricing.teacher_cost(prompt, completion)
        if c is None:
            priced = False
            break
        teacher_only += c
        if asked:
            teacher += logged if logged is not None else c  # what the gateway booked, else the estimate
    n = len(usage)
    student = None if pricing.student_per_hour is None else pricing.student_per_hour * hours
    if not priced:
        return Cost(n, hours, None, None, student, None)
    actual = teacher + (student or 0.0)
    per_1k = (teacher_only / n * 1000, actual / n * 1000) if n else (None, None)
    return Cost(n, hours, teacher_only, teacher, student, actual, *per_1k, teacher_only - actual)
