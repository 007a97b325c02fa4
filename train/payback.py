"""Payback estimate: after how many days of serving the student does the project's one-off cost come back?

``estimate`` is a pure function of the inputs (hand numbers in the tests); ``gather`` reads them from the workspace:
- requests per day: the bar's ``requests_per_day`` when the user gave it, else the imported logs' ``logged_at``
  (production records, synthetic ones left out: count over the days they span);
- teacher cost per request: the bar's teacher price per 1,000 requests when given, else the ledger's mean cost of
  the teacher's answers to production prompts (generate and Batch requests), else the teacher's prices x the mean
  token counts of the logs;
- student cost per request: the student machine's price per hour (set with the bar) over the throughput the newest
  evaluation of the local student measured (a tuned one first), the definition ``train.scoring.cost_per_1k`` uses;
- one-off cost: the teacher spend so far (the ledger, every purpose but serving) + the runs' training hours x the
  same machine price.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curation.teacher.config import TeacherConfig, get_teacher
from curation.workspace import Workspace
from train.bars import QualityBar
from train.scoring import cost_per_1k

PRODUCTION_KINDS = ("generate", "batch")  # ledger purposes that answer production prompts (one request each)
RUNNING_KINDS = ("serve",)  # ledger purposes that are a running cost of serving, not part of the one-off cost


@dataclass
class PaybackInputs:
    """What the estimate is made of, each with where it came from (``*_source``, shown to the user)."""

    requests_per_day: float | None = None
    requests_source: str = ""
    teacher_cost_per_request: float | None = None
    teacher_source: str = ""
    student_cost_per_request: float | None = None
    student_source: str = ""
    price_per_hour: float | None = None  # the student machine, also what a training hour costs
    teacher_spent_usd: float = 0.0  # the one-off teacher cost so far
    training_hours: float = 0.0


@dataclass
class Payback:
    """The estimate, or what is missing for it (``missing``: one sentence each, naming what sets it)."""

    inputs: PaybackInputs
    one_off_usd: float | None = None
    savings_per_day: float | None = None
    payback_days: float | None = None  # None: missing inputs, or the student saves nothing per request
    missing: list[str] = field(default_factory=list)

    @property
    def estimated(self) -> bool:
        return not self.missing


MISSING_PRICE = "set the student machine's price per hour (`distill bar set --student-price X`) to estimate"
MISSING_REQUESTS = "no request timestamps in the logs; give the traffic (`distill bar set --requests-per-day N`)"
MISSING_TEACHER = ("no teacher cost known; set `distill bar set --teacher-price X` (per 1,000 requests) or add a "
                   "teacher with prices (`distill teachers add ... --price-in --price-out`)")  # fmt: skip
MISSING_STUDENT = (
    "no evaluation has measured the student's throughput yet (a zero- or few-shot `distill baseline`, "
    "or `distill eval RUN`)"
)


def estimate(inputs: PaybackInputs) -> Payback:
    """Savings per day = requests/day x (teacher - student cost per request); payback = one-off cost / savings."""
    i = inputs
    missing = [text for text, ok in ((MISSING_REQUESTS, i.requests_per_day is not None),
                                     (MISSING_TEACHER, i.teacher_cost_per_request is not None),
                                     (MISSING_PRICE, i.price_per_hour is not None),
                                     (MISSING_STUDENT, i.price_per_hour is None
                                      or i.student_cost_per_request is not None)) if not ok]  # fmt: skip
    one_off = None if i.price_per_hour is None else i.teacher_spent_usd + i.training_hours * i.price_per_hour
    if missing:
        return Payback(i, one_off, missing=missing)
    assert i.requests_per_day is not None and i.teacher_cost_per_request is not None
    assert i.student_cost_per_request is not None and one_off is not None
    savings = i.requests_per_day * (i.teacher_cost_per_request - i.student_cost_per_request)
    return Payback(i, one_off, savings, one_off / savings if savings > 0 else None)


def _span(days: float) -> str:
    """Days, or hours under a day (a busy endpoint repays a $1 training in minutes: "0.0 days" said nothing)."""
    if days == 0:
        return "at once (nothing spent yet)"
    return f"{days:,.1f} days" if days >= 1 else f"{days * 24:,.1f} hours"


def describe(p: Payback) -> list[str]:
    """The estimate as lines of text (what is missing, or the payback with its inputs and their sources)."""
    i = p.inputs
    if p.missing:
        return ["payback: not estimated", *(f"  - {m}" for m in p.missing)]
    assert p.savings_per_day is not None and p.one_off_usd is not None
    assert i.requests_per_day is not None and i.teacher_cost_per_request is not None
    assert i.student_cost_per_request is not None and i.price_per_hour is not None
    head = (f"payback: {_span(p.payback_days)}" if p.payback_days is not None else
            "payback: never; the student costs at least as much per request as the teacher")  # fmt: skip
    return [
        head,
        f"  saves ${p.savings_per_day:,.2f}/day = {i.requests_per_day:,.0f} requests/day x (teacher "
        f"${i.teacher_cost_per_request:.5f} - student ${i.student_cost_per_request:.5f} per request)",
        f"  one-off ${p.one_off_usd:,.2f} = teacher so far ${i.teacher_spent_usd:,.2f} + training "
        f"{i.training_hours:,.2f} h x ${i.price_per_hour:,.2f}/h",
        f"  requests/day: {i.requests_source}; teacher: {i.teacher_source}; student: {i.student_source}",
    ]


def gather(ws: Workspace, bar: QualityBar | None) -> PaybackInputs:
    """The estimate's inputs as this workspace knows them."""
    from curation.teacher.store import BILLED_SQL

    i = PaybackInputs(price_per_hour=bar.student_price_per_hour if bar else None)
    if bar is not None and bar.requests_per_day is not None:
        i.requests_per_day, i.requests_source = bar.requests_per_day, "set on the bar"
    else:
        n, first, last = ws.query("SELECT count(*), min(logged_at), max(logged_at) FROM records "
                                  "WHERE origin <> 'synthetic' AND logged_at IS NOT NULL")[0]  # fmt: skip
        days = (last - first).total_seconds() / 86400 if n >= 2 else 0.0
        if days > 0:
            i.requests_per_day, i.requests_source = n / days, f"{n:,} logged requests over {days:,.1f} days"
    i.teacher_cost_per_request, i.teacher_source = _teacher_cost(ws, bar)
    rows = ws.query_dicts(
        "SELECT eval_id, kind, throughput_rps FROM evaluations WHERE throughput_rps > 0 AND NOT starts_with(kind, "
        "'baseline:model:') ORDER BY (kind = 'tuned') DESC, eval_id DESC LIMIT 1"
    )
    if rows and i.price_per_hour is not None:
        per_1k = cost_per_1k(rows[0]["throughput_rps"], i.price_per_hour)
        i.student_cost_per_request = per_1k / 1000 if per_1k is not None else None
        i.student_source = (f"evaluation {rows[0]['eval_id']} ({rows[0]['kind']}): "
                            f"{rows[0]['throughput_rps']:.2f} requests/s at ${i.price_per_hour:,.2f}/h")  # fmt: skip
    running = ", ".join(f"'{k}'" for k in RUNNING_KINDS)
    i.teacher_spent_usd = float(ws.scalar(f"SELECT coalesce(sum(cost_usd), 0) FROM teacher_ledger WHERE {BILLED_SQL} "
                                          f"AND kind NOT IN ({running})"))  # fmt: skip
    i.training_hours = float(ws.scalar("SELECT coalesce(sum(epoch(finished_at - created_at)), 0) / 3600 FROM runs "
                                       "WHERE finished_at IS NOT NULL"))  # fmt: skip
    return i


def _teacher_cost(ws: Workspace, bar: QualityBar | None) -> tuple[float | None, str]:
    """The teacher's cost per request and where it came from (see the module's docstring for the order)."""
    if bar is not None and bar.teacher_price_per_1k is not None:
        return bar.teacher_price_per_1k / 1000, "price per 1,000 requests on the bar"
    kinds = ", ".join(f"'{k}'" for k in PRODUCTION_KINDS)
    n, mean = ws.query(f"SELECT count(*), avg(cost_usd) FROM teacher_ledger WHERE status = 'ok' AND kind IN ({kinds})")[
        0
    ]
    if n:
        return float(mean), f"ledger mean of {n:,} requests"
    teacher = _main_teacher(ws)
    row = ws.query("SELECT count(*), avg(prompt_tokens), avg(completion_tokens) FROM records "
                   "WHERE origin <> 'synthetic' AND prompt_tokens IS NOT NULL")[0]  # fmt: skip
    if teacher is None or not row[0] or teacher.price_in_per_m + teacher.price_out_per_m <= 0:
        return None, ""
    n, pt, ct = int(row[0]), float(row[1]), float(row[2] or 0.0)
    source = f"{teacher.name}'s prices x mean tokens of {n:,} logs ({pt:.0f} in, {ct:.0f} out)"
    return teacher.cost(round(pt), round(ct)), source


def _main_teacher(ws: Workspace) -> TeacherConfig | None:
    """The teacher with the most outputs (the only one when there is one); None without teachers."""
    name = ws.scalar("SELECT t.name FROM teachers t LEFT JOIN teacher_outputs o ON o.teacher = t.name "
                     "GROUP BY t.name ORDER BY count(o.record_id) DESC, t.name LIMIT 1")  # fmt: skip
    return None if name is None else get_teacher(ws, str(name))


def payback(ws: Workspace, bar: QualityBar | None) -> Payback:
    """The payback estimate for this workspace under ``bar`` (its prices and traffic)."""
    return estimate(gather(ws, bar))
