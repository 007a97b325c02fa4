"""Generation: the teacher's answers for selected records, as one run over the request path.

Records asking the exact same thing (same model, messages, parameters) share one request; the terms check, cache,
budget, retries, ledger and group commit are those of ``curation.teacher.requests`` (the one path every teacher
request takes). A run is recorded in ``teacher_runs`` so a killed one is closed as ``interrupted`` next time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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
    session: TeacherSession | None = None,
    on_run: Callable[[int], None] | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> GenerateResult:
    """Generate ``teacher``'s answers for the selected records; safe to stop and run again.

    ``session`` shares one budget, client and cancel with the caller's other requests (a round); ``budget_usd``,
    ``concurrency``, ``progress`` and ``cancel`` are then the session's. ``on_run`` hears the teacher run's id as
    soon as it is open, before anything is sent (a round records it, so a kill still knows what the run cost)."""
    sel = selection or Selection()
    if session is not None and session.cfg.name != teacher:
        raise ValueError(f"session is for teacher {session.cfg.name!r}, not {teacher!r}")
    # the session checks terms, budget and key before anything is written
    s = session or TeacherSession(ws, teacher, budget_usd=budget_usd, concurrency=concurrency, progress=progress,
                                  cancel=cancel)  # fmt: skip
    try:
        requests = [TeacherRequest(messages, record_ids=[rid]) for rid, messages in select_records(ws, teacher, sel)]
        run_id = start_run(ws, teacher, PURPOSE, sel.describe(), s.budget.limit)
        if on_run is not None:
            on_run(run_id)
        rep = s.send(PURPOSE, requests, run_id=run_id)
    finally:
        if session is None:
            s.close()
    finish_run(ws, run_id, rep.status, rep.done, rep.failed, rep.cached, rep.cost_usd)
    return GenerateResult(run_id, teacher, rep.total, rep.done, rep.failed, rep.cached, rep.requests, rep.cost_usd,
                          rep.status, rep.errors, rep.possibly_billed_usd)  # fmt: skip


__all__ = ["GenerateResult", "Selection", "estimate_cost", "generate"]
