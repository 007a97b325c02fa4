"""Generation: the teacher's answers for selected records, as one run over the request path.

Records asking the exact same thing (same model, messages, parameters) share one request; the terms check, cache,
budget, retries, ledger and group commit are those of ``curation.teacher.requests`` (the one path every teacher
request takes). A run is recorded in ``teacher_runs`` so a killed one is closed as ``interrupted`` next time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from curation.progress import ProgressFn
from curation.teacher.budget import estimate_cost
from curation.teacher.requests import TeacherRequest, TeacherSession
from curation.teacher.selection import Selection, select_records
from curation.teacher.store import finish_run, start_run
from curation.workspace import Workspace

PURPOSE = "generate"


@dataclass
class GenerateResult:
    """What a run did. ``status``: done | cancelled | budget (stopped before exceeding it) | failed (the provider
    refused the key, the model or the URL: every further request would fail the same way). ``possibly_billed_usd``:
    the worst-case cost of attempts abandoned after a timeout (the provider may bill them), apart from ``cost_usd``."""

    run_id: int
    teacher: str
    total: int = 0
    done: int = 0
    failed: int = 0
    cached: int = 0
    requests: int = 0
    cost_usd: float = 0.0
    status: str = "done"
    errors: list[str] = field(default_factory=list)
    possibly_billed_usd: float = 0.0


def generate(
    ws: Workspace,
    teacher: str,
    selection: Selection | None = None,
    *,
    budget_usd: float | None = None,
    concurrency: int | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> GenerateResult:
    """Generate ``teacher``'s answers for the selected records; safe to stop and run again."""
    sel = selection or Selection()
    # the session checks terms, budget and key before anything is written
    with TeacherSession(ws, teacher, budget_usd=budget_usd, concurrency=concurrency, progress=progress,
                        cancel=cancel) as session:  # fmt: skip
        requests = [TeacherRequest(messages, record_ids=[rid]) for rid, messages in select_records(ws, teacher, sel)]
        run_id = start_run(ws, teacher, PURPOSE, sel.describe(), budget_usd)
        rep = session.send(PURPOSE, requests, run_id=run_id)
    finish_run(ws, run_id, rep.status, rep.done, rep.failed, rep.cached, rep.cost_usd)
    return GenerateResult(run_id, teacher, rep.total, rep.done, rep.failed, rep.cached, rep.requests, rep.cost_usd,
                          rep.status, rep.errors, rep.possibly_billed_usd)  # fmt: skip


__all__ = ["GenerateResult", "Selection", "estimate_cost", "generate"]
