"""Synthetic inputs for a weak slice: the teacher writes new prompts in the style of sampled examples.

Examples are a fresh random sample of the slice's records per request, or, with ``seed_records``, a sample of the
given records (a round seeds the teacher with the prompts the student got wrong, not with random examples). New
prompts are deduplicated against the whole workspace (normalised text: case and whitespace folded) and
against each other, then inserted as a new batch with ``origin='synthetic'`` and no response (``distill generate``
answers them). An input request (``input_requests``) is marked done with the number made.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from curation.effective import effective_sql
from curation.errors import UserError
from curation.oversample import close_request
from curation.progress import Progress, ProgressFn
from curation.records import finish_batch, insert_records, new_batch
from curation.teacher.options import SYNTH
from curation.teacher.requests import TeacherRequest, TeacherSession
from curation.workspace import Workspace

PURPOSE = "synth"
PER_REQUEST = 25  # prompts asked for in one request; larger asks are split
EXTRA_REQUESTS = 2  # duplicates are dropped, so the shortfall is asked again: at most this many requests more
NORM_SQL = r"lower(trim(regexp_replace(coalesce(r.prompt, ''), '\s+', ' ', 'g')))"
SYSTEM = (
    'You write new user inputs for a dataset. Reply with only a JSON object {{"prompts": [...]}} holding exactly '
    "{n} new user messages in the style, length and topic of the examples. Vary names, products and details; do "
    "not copy the examples and do not answer them."
)


@dataclass
class SynthResult:
    """What one synthetic-input run made."""

    slice: str
    n_requested: int
    n_inserted: int = 0
    n_duplicates: int = 0
    n_unparsed: int = 0
    cost_usd: float = 0.0
    n_requests: int = 0  # requests sent (answers from the cache cost nothing and are not counted)
    possibly_billed_usd: float = 0.0
    status: str = "done"  # done | budget | cancelled (what was made before the stop is kept)
    batch_id: int | None = None
    request_id: int | None = None
    record_ids: list[int] = field(default_factory=list)


@dataclass
class SliceShare:
    """Synthetic records in one (effective) slice."""

    slice: str
    records: int
    synthetic: int
    share: float


def normalise(text: str) -> str:
    """The form prompts are compared in: lower case, whitespace collapsed."""
    return " ".join(text.lower().split())


def parse_prompts(text: str | None) -> list[str]:
    """New prompts from the teacher's reply: a ``{"prompts": [...]}`` object, a JSON list, or one per line."""
    if not text:
        return []
    body = text.strip()
    m = re.search(r"```(?:json)?\s*(.*?)```", body, re.S)
    if m:
        body = m.group(1).strip()
    try:
        doc: Any = json.loads(body)
    except json.JSONDecodeError:
        doc = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", ln).strip() for ln in body.splitlines()]
    if isinstance(doc, dict):
        doc = doc.get("prompts") or next((v for v in doc.values() if isinstance(v, list)), [])
    if not isinstance(doc, list):
        return []
    return [p.strip() for p in doc if isinstance(p, str) and p.strip() and len(p) <= 8000]


def max_requests(n: int) -> int:
    """The most requests a synth of ``n`` prompts sends: enough for ``n`` at ``PER_REQUEST`` each, plus the
    shortfall asked again (``EXTRA_REQUESTS``)."""
    return -(-n // PER_REQUEST) + EXTRA_REQUESTS


def synth_request(slice_: str, examples: Sequence[str], want: int, set_no: int, *, seeded: bool) -> TeacherRequest:
    """The request for ``want`` new prompts in the style of ``examples`` (seeded: inputs a student got wrong)."""
    shown = "\n".join("- " + " ".join(e.split()) for e in examples)
    head = (f"Inputs of '{slice_}' that a student model answered wrongly (set {set_no}); write new ones like them"
            if seeded else f"Examples of '{slice_}' inputs (set {set_no})")  # fmt: skip
    messages = [{"role": "system", "content": SYSTEM.format(n=want)}, {"role": "user", "content": f"{head}:\n{shown}"}]
    return TeacherRequest(messages, {"temperature": 1.0, "max_tokens": max(256, want * 120)})


def _examples(
    ws: Workspace, slice_: str, k: int, seed: str, seeds: Sequence[int] | None = None
) -> list[tuple[int, list[dict[str, Any]], str]]:
    """A fresh sample of the slice's real (not synthetic) records for every request: the same examples would
    bring back the same prompts, which the dedupe then drops. With ``seeds``: a sample of those records only."""
    base, params = effective_sql(ws)
    where, more = ("slice = ?", [slice_]) if seeds is None else ("record_id IN (SELECT unnest(?))", [list(seeds)])
    rows = ws.query(
        f"SELECT record_id, CAST(messages AS VARCHAR), prompt FROM ({base}) b "
        f"WHERE {where} AND coalesce(prompt, '') <> '' "
        "ORDER BY origin = 'synthetic', md5(content_hash || ?) LIMIT ?",
        [*params, *more, seed, k],
    )
    return [(int(a), json.loads(b), c) for a, b, c in rows]


@dataclass(frozen=True)
class _Ask:
    """What one synth run asks for (the arguments ``_synth`` needs besides the session)."""

    slice: str
    n: int
    n_examples: int
    request_id: int | None
    seed: str | None
    seeds: tuple[int, ...] | None
    batch_options: Mapping[str, Any]
    run_id: int | None


def synth_inputs(
    ws: Workspace,
    teacher: str,
    slice_: str,
    n: int,
    *,
    n_examples: int = SYNTH.default("examples"),
    request_id: int | None = None,
    budget_usd: float | None = None,
    seed: str | None = None,
    seed_records: Sequence[int] | None = None,
    batch_options: Mapping[str, Any] | None = None,
    run_id: int | None = None,
    session: TeacherSession | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> SynthResult:
    """Ask ``teacher`` for ``n`` new prompts like those of ``slice_`` and insert the new, unique ones.

    Requests go through the request path (terms, cache, budget, retries, ledger). Each request shows a fresh random
    sample of examples; with ``seed`` the samples, and so the requests, are the same on every run (a re-run after a
    kill comes from the cache). ``seed_records``: the examples come from these records only (a round's failing
    prompts). ``batch_options`` are stored with the new batch (a round finds its records by them); ``run_id`` is the
    teacher run the ledger rows belong to. ``session`` shares one budget, client and cancel across calls
    (``fulfil_requests``, a round); ``budget_usd`` and ``cancel`` are then the session's."""
    if n < 1:
        raise UserError("-n must be >= 1")
    if session is not None and session.cfg.name != teacher:
        raise ValueError(f"session is for teacher {session.cfg.name!r}, not {teacher!r}")
    own = session is None
    s = session or TeacherSession(ws, teacher, budget_usd=budget_usd, cancel=cancel)
    seeds = None if seed_records is None else tuple(seed_records)
    ask = _Ask(slice_, n, max(1, n_examples), request_id, seed, seeds, dict(batch_options or {}), run_id)
    try:
        return _synth(ws, s, ask, progress)
    finally:
        if own:
            s.close()


def _synth(ws: Workspace, s: TeacherSession, ask: _Ask, progress: ProgressFn | None) -> SynthResult:
    cfg, slice_, n = s.cfg, ask.slice, ask.n
    rng = random.Random(ask.seed)
    examples = _examples(ws, slice_, ask.n_examples, str(rng.random()), ask.seeds)
    if not examples:
        what = "seed records" if ask.seeds is not None else "records"
        raise UserError(f"slice {slice_!r} has no {what} to take examples from")
    system_turns = [m for m in examples[0][1] if m.get("role") == "system"]  # the slice's system prompt, reused
    res = SynthResult(slice_, n, request_id=ask.request_id)
    seen: set[str] = set()
    new_rows: list[dict[str, Any]] = []
    asked = 0
    # Duplicates are dropped, so ask again for the shortfall: at most two requests more than N needs. The requests
    # of one wave go out together on the session's pool.
    while len(new_rows) < n and asked < max_requests(n) and s.stop is None:
        if progress is not None:
            progress(Progress("synth", len(new_rows), n, f"{len(new_rows)} new"))
        wants, left = [], n - len(new_rows)
        while left > 0 and asked + len(wants) < max_requests(n):
            wants.append(min(PER_REQUEST, left))
            left -= wants[-1]
        shown_sets, requests = [], []
        for i, want in enumerate(wants):
            if asked + i > 0:
                examples = _examples(ws, slice_, ask.n_examples, str(rng.random()), ask.seeds)
            shown_sets.append(examples)
            requests.append(synth_request(slice_, [e[2] for e in examples], want, asked + i + 1,
                                          seeded=ask.seeds is not None))  # fmt: skip
        asked += len(requests)
        rep = s.send(PURPOSE, requests, run_id=ask.run_id)
        res.cost_usd += rep.cost_usd
        res.possibly_billed_usd += rep.possibly_billed_usd
        res.n_requests += rep.requests
        failed = None
        for r, shown_examples in zip(rep.results, shown_sets, strict=True):
            a = r.answer
            if a is None:
                failed = failed or (r.error if r.source == "sent" else None)
                continue
            prompts = parse_prompts(a.response)
            fresh = _fresh(ws, [p for p in prompts if normalise(p) not in seen])
            res.n_duplicates += len(prompts) - len(fresh)
            res.n_unparsed += 0 if prompts else 1
            for p in fresh:
                seen.add(normalise(p))
                new_rows.append({"messages": [*system_turns, {"role": "user", "content": p}], "slice": slice_,
                                 "origin": "synthetic", "teacher_model": None,
                                 "metadata": {"synthetic": {"teacher": cfg.name, "model": cfg.model,
                                                            "examples": [e[0] for e in shown_examples]}}})  # fmt: skip
        if failed is not None:  # keep what was paid for; an input request stays open
            res.request_id = None
            _insert(ws, res, new_rows[:n], ask.batch_options)
            raise UserError(f"teacher {cfg.name!r} failed: {failed} ({res.n_inserted} prompts kept)")
    if len(new_rows) < n and s.stop is not None:  # the budget or a cancel: keep what was paid, the request stays open
        res.status, res.request_id = s.stop, None
    _insert(ws, res, new_rows[:n], ask.batch_options)
    return res


def _fresh(ws: Workspace, prompts: list[str]) -> list[str]:
    """The prompts whose normalised text is not in the workspace yet (and not repeated among themselves)."""
    unique: dict[str, str] = {}
    for p in prompts:
        unique.setdefault(normalise(p), p)
    if not unique:
        return []
    taken = {r[0] for r in ws.query(f"SELECT DISTINCT {NORM_SQL} FROM records r WHERE {NORM_SQL} IN "
                                    "(SELECT unnest(?))", [list(unique)])}  # fmt: skip
    return [p for k, p in unique.items() if k not in taken]


def _insert(ws: Workspace, res: SynthResult, rows: list[dict[str, Any]], options: Mapping[str, Any]) -> None:
    with ws.transaction() as cur:
        if rows:
            res.batch_id = new_batch(cur, f"synthetic:{rows[0]['metadata']['synthetic']['teacher']}:{res.slice}",
                                     "synthetic", {**options, "slice": res.slice, "request_id": res.request_id})  # fmt: skip
            res.record_ids = insert_records(cur, res.batch_id, rows)
            res.n_inserted = len(res.record_ids)
            finish_batch(cur, res.batch_id, n_lines=len(rows), n_imported=res.n_inserted,
                         n_duplicates=len(rows) - res.n_inserted, n_quarantined=0)  # fmt: skip
        if res.request_id is not None:
            close_request(cur, res.request_id, res.n_inserted)


def fulfil_requests(
    ws: Workspace, teacher: str, *, budget_usd: float | None = None, cancel: threading.Event | None = None
) -> list[SynthResult]:
    """Run ``synth_inputs`` for every open input request, oldest first, under one budget; stop at the first
    request the budget (or a cancel) cut short."""
    out: list[SynthResult] = []
    with TeacherSession(ws, teacher, budget_usd=budget_usd, cancel=cancel) as session:
        for rid, slice_, n in ws.query("SELECT request_id, slice, n FROM input_requests WHERE status = 'open' "
                                       "ORDER BY request_id"):  # fmt: skip
            out.append(synth_inputs(ws, teacher, slice_, int(n), request_id=int(rid), session=session))
            if out[-1].status != "done":
                break
    return out


def synthetic_share(ws: Workspace) -> list[SliceShare]:
    """Records and synthetic records per effective slice (``curation.effective``), largest first."""
    base, params = effective_sql(ws)
    rows = ws.query(
        f"SELECT slice, count(*), count(*) FILTER (WHERE origin = 'synthetic') FROM ({base}) b "
        "GROUP BY slice ORDER BY count(*) DESC, slice",
        params,
    )
    return [SliceShare(s, int(a), int(b), (b / a) if a else 0.0) for s, a, b in rows]
