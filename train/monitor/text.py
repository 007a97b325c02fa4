"""The monitor report in words: the per-slice table's cells and the summary lines, shared by ``distill monitor`` and
the studio's Production screen so both say the same thing the same way."""

from __future__ import annotations

from train.monitor.alarms import rate_text
from train.monitor.drift import DriftResult
from train.monitor.monitor import MonitorReport
from train.monitor.traffic import SliceTraffic

SLICE_HEADERS = ("slice", "requests", "student", "teacher", "shadow", "fallback", "agreement", "est. accuracy",
                 "drift AUC", "no neighbour", "p95 ms")  # fmt: skip


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _usd(x: float | None) -> str:
    return "?" if x is None else f"${x:,.4f}" if abs(x) < 1 else f"${x:,.2f}"


def drift_text(d: DriftResult | None) -> tuple[str, str]:
    """(AUC with its interval, share with no near neighbour) for the table."""
    if d is None:
        return "-", "-"
    nn = _pct(d.no_neighbour)
    if d.auc is None:
        return "too few", nn
    mark = " new slice" if d.new_slice else ""
    return f"{d.auc:.2f} [{d.auc_low:.2f}, {d.auc_high:.2f}]{mark}", nn


def slice_cells(report: MonitorReport) -> list[list[str]]:
    """One row of cells per slice, ``(all)`` first."""
    drift = {d.slice: d for d in report.drift}
    rows: list[SliceTraffic] = [report.traffic.overall, *report.traffic.slices]
    out = []
    for s in rows:
        auc, nn = drift_text(drift.get(s.slice))
        p95 = "-" if s.latency_p95_ms is None else f"{s.latency_p95_ms:,.0f}"
        out.append([s.slice, f"{s.requests:,}", _pct(s.share("student")), _pct(s.share("teacher")),
                    _pct(s.share("both")), rate_text(s.fallback), rate_text(s.agreement), _pct(s.estimated_accuracy),
                    auc, nn, p95])  # fmt: skip
    return out


def summary_lines(report: MonitorReport) -> list[str]:
    """Window and source, latency per route, cost, the teacher's model, notes."""
    tr = report.traffic
    span = f" ({tr.first:%Y-%m-%d %H:%M} .. {tr.last:%H:%M} UTC)" if tr.first and tr.last else ""
    modes = ", ".join(f"{m} {n:,}" for m, n in sorted(tr.modes.items())) or "no traffic"
    source = f"run {report.run_id}" if report.run_id is not None else "no run"
    source += f", trained on {report.version}" if report.version else ""
    source += " (from the snapshot: the workspace is busy)" if report.from_snapshot else ""
    out = [f"{report.window}{span}: {tr.overall.requests:,} requests ({modes}); {source}; {report.files} log file(s)"
           + (f", {report.bad_lines:,} unreadable line(s)" if report.bad_lines else "")]  # fmt: skip
    lat = "; ".join(f"{r} p50 {v['p50']:,.0f} / p95 {v['p95']:,.0f} / p99 {v['p99']:,.0f} ms (n {v['n']:,})"
                    for r, v in tr.latency.items())  # fmt: skip
    out.append(f"Latency per route: {lat or '-'}")
    c = tr.cost
    if c.teacher_only is None:
        out.append("Cost: no teacher price (set the teacher's prices, or --teacher-price on the bar)")
    else:
        student = "student machine price unknown (--student-price on the bar)" if c.student is None else \
            f"student {_usd(c.student)} for {c.hours:,.2f} h"  # fmt: skip
        out.append(f"Cost: {_usd(c.actual)} (teacher {_usd(c.teacher)}, {student}) vs teacher-only "
                   f"{_usd(c.teacher_only)}; per 1k requests {_usd(c.per_1k_actual)} vs {_usd(c.per_1k_teacher_only)}"
                   f"; {'saves' if (c.savings or 0) >= 0 else 'costs more by'} {_usd(abs(c.savings or 0))}")  # fmt: skip
    live = ", ".join(f"{m} ({n:,})" for m, n in sorted(tr.teacher_models.items())) or "-"
    trained = ", ".join(sorted(report.training_teacher_models)) or "unknown"
    flag = "  RE-EVALUATE: the teacher changed" if report.new_teacher_models else ""
    out.append(f"Teacher model live: {live}; training data from: {trained}{flag}")
    if report.drift_at is None and report.version:
        out.append("Drift: not tested yet")
    out += [f"Note: {n}" for n in report.notes]
    return out


def alarm_lines(report: MonitorReport) -> list[str]:
    """``ALARM ...`` / ``watch ...`` lines, or one line saying there is none."""
    if not report.alarms:
        return ["No alarm."]
    return [f"{'ALARM' if a.level == 'alarm' else 'watch'}  {a.message}" for a in report.alarms]
