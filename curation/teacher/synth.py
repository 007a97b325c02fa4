"""Synthetic inputs for a weak slice: the teacher writes new prompts in the style of sampled examples.

New prompts are deduplicated against the whole workspace (normalised text: case and whitespace folded) and
against each other, then inserted as a new batch with ``origin='synthetic'`` and no response (``distill generate``
answers them). An input request (``input_requests``) is marked done with the number made.
"""

from __future__ import annotations

import json
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from curation.errors import UserError
from curation.oversample import close_request
from curation.progress import ProgressFn, report
from curation.records import finish_batch, insert_records, new_batch
from curation.teacher.client import call_chat, make_client
from curation.teacher.config import get_teacher, require_terms
from curation.teacher.selection import EFFECTIVE_SLICE_SQL
from curation.teacher.store import add_ledger
from curation.workspace import Workspace

PER_REQUEST = 25  # prompts asked for in one request; larger asks are split
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
    n_requests: int = 0
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


def _examples(ws: Workspace, slice_: str, k: int, seed: str) -> list[tuple[int, list[dict[str, Any]], str]]:
    """A fresh sample of the slice's real (not synthetic) records for every request: the same examples would
    bring back the same prompts, which the dedupe then drops."""
    rows = ws.query(
        f"SELECT r.record_id, CAST(r.messages AS VARCHAR), r.prompt FROM records r "
        f"WHERE {EFFECTIVE_SLICE_SQL} = ? AND coalesce(r.prompt, '') <> '' "
        "ORDER BY r.origin = 'synthetic', md5(r.content_hash || ?) LIMIT ?",
        [slice_, seed, k],
    )
    return [(int(a), json.loads(b), c) for a, b, c in rows]


def synth_inputs(
    ws: Workspace,
    teacher: str,
    slice_: str,
    n: int,
    *,
    n_examples: int = 8,
    request_id: int | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> SynthResult:
    """Ask ``teacher`` for ``n`` new prompts like those of ``slice_`` and insert the new, unique ones."""
    if n < 1:
        raise UserError("-n must be >= 1")
    cfg = get_teacher(ws, teacher)
    require_terms(cfg)
    rng = random.Random()
    examples = _examples(ws, slice_, max(1, n_examples), str(rng.random()))
    if not examples:
        raise UserError(f"slice {slice_!r} has no records to take examples from")
    system_turns = [m for m in examples[0][1] if m.get("role") == "system"]  # the slice's system prompt, reused
    res = SynthResult(slice_, n, request_id=request_id)
    seen: set[str] = set()
    new_rows: list[dict[str, Any]] = []
    client = make_client(cfg)
    rounds = 0
    try:
        # Duplicates are dropped, so ask again for the shortfall: at most two rounds more than N needs.
        while len(new_rows) < n and rounds < -(-n // PER_REQUEST) + 2:
            rounds += 1
            report(progress, cancel, "synth", len(new_rows), n, f"{len(new_rows)} new")
            if rounds > 1:
                examples = _examples(ws, slice_, max(1, n_examples), str(rng.random()))
            want = min(PER_REQUEST, n - len(new_rows))
            shown = "\n".join("- " + " ".join(e[2].split()) for e in examples)
            messages = [
                {"role": "system", "content": SYSTEM.format(n=want)},
                {"role": "user", "content": f"Examples of '{slice_}' inputs (set {rounds}):\n{shown}"},
            ]
            params = {"temperature": 1.0, "max_tokens": max(256, want * 120)}
            out = call_chat(client, cfg, messages, params, cancel=cancel)
            a = out.answer
            prompts = parse_prompts(a.response if a else None)
            fresh = _fresh(ws, [p for p in prompts if normalise(p) not in seen])
            res.n_duplicates += len(prompts) - len(fresh)
            for p in fresh:
                seen.add(normalise(p))
                new_rows.append({"messages": [*system_turns, {"role": "user", "content": p}], "slice": slice_,
                                 "origin": "synthetic", "teacher_model": None,
                                 "metadata": {"synthetic": {"teacher": cfg.name, "model": cfg.model,
                                                            "examples": [e[0] for e in examples]}}})  # fmt: skip
            res.n_unparsed += 0 if prompts or a is None else 1
            with ws.transaction() as cur:
                add_ledger(cur, run_id=None, teacher=cfg.name, kind="synth", key=None,
                           status="ok" if a else "failed", attempts=out.attempts, http_status=out.http_status,
                           prompt_tokens=a.prompt_tokens if a else None,
                           completion_tokens=a.completion_tokens if a else None,
                           cost_usd=a.cost_usd if a else 0.0, latency_ms=a.latency_ms if a else None,
                           error=out.error)  # fmt: skip
            res.cost_usd += a.cost_usd if a else 0.0
            res.n_requests += 1
            if a is None:  # keep what earlier rounds paid for; an input request stays open
                res.request_id = None
                _insert(ws, res, new_rows[:n])
                raise UserError(f"teacher {cfg.name!r} failed: {out.error} ({res.n_inserted} prompts kept)")
    finally:
        client.close()
    _insert(ws, res, new_rows[:n])
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


def _insert(ws: Workspace, res: SynthResult, rows: list[dict[str, Any]]) -> None:
    with ws.transaction() as cur:
        if rows:
            res.batch_id = new_batch(cur, f"synthetic:{rows[0]['metadata']['synthetic']['teacher']}:{res.slice}",
                                     "synthetic", {"slice": res.slice, "request_id": res.request_id})  # fmt: skip
            res.record_ids = insert_records(cur, res.batch_id, rows)
            res.n_inserted = len(res.record_ids)
            finish_batch(cur, res.batch_id, n_lines=len(rows), n_imported=res.n_inserted,
                         n_duplicates=len(rows) - res.n_inserted, n_quarantined=0)  # fmt: skip
        if res.request_id is not None:
            close_request(cur, res.request_id, res.n_inserted)


def fulfil_requests(ws: Workspace, teacher: str, *, cancel: threading.Event | None = None) -> list[SynthResult]:
    """Run ``synth_inputs`` for every open input request, oldest first."""
    out = []
    for rid, slice_, n in ws.query("SELECT request_id, slice, n FROM input_requests WHERE status = 'open' "
                                   "ORDER BY request_id"):  # fmt: skip
        out.append(synth_inputs(ws, teacher, slice_, int(n), request_id=int(rid), cancel=cancel))
    return out


def synthetic_share(ws: Workspace) -> list[SliceShare]:
    """Records and synthetic records per effective slice (reviews' relabels included), largest first."""
    rows = ws.query(
        f"SELECT {EFFECTIVE_SLICE_SQL} AS s, count(*), count(*) FILTER (WHERE r.origin = 'synthetic') "
        "FROM records r GROUP BY s ORDER BY count(*) DESC, s"
    )
    return [SliceShare(s, int(a), int(b), (b / a) if a else 0.0) for s, a, b in rows]
