"""The re-distill plan an alarm proposes: import the gateway's log files as a new batch (the import format ``log``,
unchanged), with the slices that drifted and those whose agreement or fallback failed, then the next round.

``propose`` only describes; ``apply_plan`` imports (``curation.importing.import_file``, one batch per file) and stops
there, saying which command comes next (``distill round next``: its plan and cost are shown before it spends). Nothing runs without being asked: the CLI needs ``--apply``, the studio a confirmation.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from curation.progress import ProgressFn, check_cancel
from curation.workspace import Workspace
from train.monitor.monitor import MonitorReport
from train.serve.logwriter import log_files

# A round is planned from the newest evaluation (train.rounds): look at its plan and cost, then run it.
NEXT_STEP = "the next round: distill round next --dry-run, then distill round next (evaluation screen: n)"


@dataclass
class PlannedFile:
    """A log file to import (``imported_at``: when it was last imported, if it was, before it grew)."""

    path: str
    bytes: int
    imported_at: str | None = None


@dataclass
class RedistillPlan:
    """What re-distilling from production would do, and why."""

    reasons: list[str]
    files: list[PlannedFile]
    drifted: list[str]
    failing: list[str]  # slices whose shadow agreement or fallback rate alarmed
    teacher_changed: list[str]
    student_answered: int  # requests in the window the student answered: their response is the student's
    next_step: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> list[str]:
        """The plan in lines a person reads before saying yes."""
        out = ["Re-distill plan (because: " + "; ".join(self.reasons) + ")"]
        if self.files:
            mb = sum(f.bytes for f in self.files) / 2**20
            out.append(f"1. import {len(self.files)} log file(s), {mb:,.1f} MB, as new batches (format log):")
            out += [f"     {f.path}" + (f" (grown since its import at {f.imported_at})" if f.imported_at else "")
                    for f in self.files]  # fmt: skip
        else:
            out.append("1. nothing to import: every log file is imported already")
        if self.drifted:
            out.append("2. slices that drifted from the training data: " + ", ".join(self.drifted))
        if self.failing:
            out.append("   slices failing agreement or fallback: " + ", ".join(self.failing))
        if self.teacher_changed:
            out.append("   the teacher answers as a new model: " + ", ".join(self.teacher_changed) + " (re-evaluate)")
        if self.student_answered:
            out.append(f"   {self.student_answered:,} request(s) were answered by the student: in the workspace their "
                       "response is the student's (records.teacher_model names it); have the teacher answer them or "
                       "leave them out of training")  # fmt: skip
        out.append(f"3. then: {self.next_step}")
        out += [f"   note: {n}" for n in self.notes]
        return out


def _imported(ws: Workspace) -> dict[str, datetime]:
    rows = ws.query("SELECT source_file, max(finished_at) FROM import_batches WHERE status = 'done' GROUP BY 1")
    return {str(p): t for p, t in rows if t is not None}


def propose(report: MonitorReport, logs: Path, ws: Workspace | None) -> RedistillPlan | None:
    """The plan the report's alarms call for; None when nothing alarms."""
    alarms = [a for a in report.alarms if a.level == "alarm"]
    if not alarms:
        return None
    reasons = [f"{a.kind} {a.slice}" if a.kind != "teacher_model" else "teacher model changed" for a in alarms]
    done = _imported(ws) if ws is not None else {}
    files = []
    for p in log_files(logs):
        st = p.stat()
        when = done.get(str(p.resolve()))
        if when is not None and datetime.fromtimestamp(st.st_mtime) <= when:
            continue  # imported since its last line was written
        files.append(PlannedFile(str(p.resolve()), st.st_size, when.isoformat(" ", "seconds") if when else None))
    drift = {d.slice: d for d in report.drift}
    drifted = sorted({f"{a.slice} (AUC {drift[a.slice].auc:.2f})" for a in alarms if a.kind == "drift"})
    failing = sorted({a.slice for a in alarms if a.kind in ("agreement", "fallback")})
    tr = report.traffic
    answered = tr.overall.routes.get("student", 0)
    notes = [] if ws is not None else ["the workspace is busy (the gateway holds it): stop `distill serve` to import"]
    return RedistillPlan(reasons, files, drifted, failing, report.new_teacher_models, answered, NEXT_STEP, notes)


@dataclass
class PlanResult:
    """What ``apply_plan`` did: one import result per file, and the step to take next."""

    imports: list[dict[str, Any]]
    next_step: str


def apply_plan(
    ws: Workspace, plan: RedistillPlan, progress: ProgressFn | None = None, cancel: threading.Event | None = None
) -> PlanResult:
    """Import the plan's files (each its own batch; a re-import adds only lines not yet in the workspace)."""
    from curation.importing import import_file

    results = []
    for f in plan.files:
        check_cancel(cancel)
        r = import_file(ws, f.path, fmt="log", slice_field="metadata.slice", progress=progress, cancel=cancel)
        results.append({"file": f.path, "batch_id": r.batch_id, "lines": r.n_lines, "imported": r.n_imported,
                        "duplicates": r.n_duplicates, "quarantined": r.n_quarantined})  # fmt: skip
    return PlanResult(results, plan.next_step)
